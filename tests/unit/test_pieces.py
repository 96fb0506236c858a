"""Splitting arrays into pieces the cluster accepts, and running indices above MaxArraySize."""

from __future__ import annotations

import os
import random
import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slurm_escalate.arrays.pieces import (
    Piece,
    block_size,
    directive_header,
    map_pattern,
    plan_pieces,
    wrapper_script,
)
from slurm_escalate.arrays.spec import compress


@pytest.mark.parametrize(
    ("max_array_size", "block"),
    [(1001, 1000), (2001, 1000), (1000, 1000), (999, 100), (10, 10), (9, 1), (100001, 100000)],
)
def test_block_size_is_the_largest_power_of_ten_not_above_the_limit(
    max_array_size: int, block: int
) -> None:
    assert block_size(max_array_size) == block


def test_seed_case_0_to_10499_with_max_array_size_2001() -> None:
    pieces = plan_pieces(range(10500), 2001, None, 10_000)
    assert pieces[0] == Piece(tuple(range(2001)), 0)
    assert [(p.indices[0], p.indices[-1], p.offset) for p in pieces[1:]] == [
        (2001, 2999, 2000),
        *[(b * 1000, b * 1000 + 999, b * 1000) for b in range(3, 10)],
        (10000, 10499, 10000),
    ]
    assert all(max(p.slots) < 2001 for p in pieces)
    assert pieces[1].slots[0] == 1


def test_max_array_tasks_caps_every_piece() -> None:
    pieces = plan_pieces(range(0, 5000), 100001, 1200, 10_000)
    assert [len(p.indices) for p in pieces] == [1200, 1200, 1200, 1200, 200]
    assert all(p.offset == 0 for p in pieces)


def test_spec_length_splits_a_scattered_set() -> None:
    indices = sorted(random.Random(1).sample(range(100_000), 3000))
    pieces = plan_pieces(indices, 100001, None, 200)
    assert len(pieces) > 10
    assert [i for p in pieces for i in p.indices] == indices
    assert all(len(compress(p.slots)) <= 200 for p in pieces)


@settings(max_examples=200, deadline=None)
@given(
    st.sets(st.integers(0, 30000), min_size=1, max_size=400),
    st.sampled_from([11, 101, 1001, 2001]),
    st.one_of(st.none(), st.integers(1, 300)),
    st.integers(30, 400),
)
def test_pieces_cover_every_index_once_and_fit_the_limits(
    indices: set[int], max_size: int, max_tasks: int | None, chars: int
) -> None:
    pieces = plan_pieces(sorted(indices), max_size, max_tasks, chars)
    flat = [i for p in pieces for i in p.indices]
    assert sorted(flat) == sorted(indices) and len(flat) == len(indices)
    block = block_size(max_size)
    for p in pieces:
        assert all(0 <= s < max_size for s in p.slots)
        assert len(compress(p.slots)) <= chars
        assert max_tasks is None or len(p.indices) <= max_tasks
        assert p.offset % block == 0
        assert p.offset == 0 or p.offset >= block


def slurm_expand(pattern: str, task_id: int) -> str:
    """How Slurm expands %a (and %%) in a file pattern, per the sbatch man page."""
    if "\\" in pattern:
        return pattern

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "%%":
            return "%"
        return str(task_id).zfill(min(int(m.group(1) or 0), 10))

    return re.sub(r"%%|%(\d*)a", one, pattern)


@pytest.mark.parametrize(
    ("pattern", "offset", "mapped"),
    [
        ("out-%a.log", 10000, "out-10%3a.log"),
        ("slurm-%A_%a.out", 2000, "slurm-%A_2%3a.out"),
        ("%5a.out", 2000, "02%3a.out"),
        ("%2a.out", 3000, "3%3a.out"),
        ("no-index-%j.out", 2000, "no-index-%j.out"),
        ("100%%a.out", 2000, "100%%a.out"),
        ("lit\\%a.out", 2000, "lit\\%a.out"),
        ("out-%a.log", 0, "out-%a.log"),
    ],
)
def test_map_pattern_table(pattern: str, offset: int, mapped: str) -> None:
    assert map_pattern(pattern, offset, 2001) == mapped


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 400_000),
    st.sampled_from([11, 101, 1001, 2001, 100001]),
    st.sampled_from(["o-%a", "%A_%a.out", "%4a-%a", "x%7a", "%12a", "%%a-%a", "%a%%"]),
)
def test_a_mapped_pattern_names_the_original_index(index: int, max_size: int, pattern: str) -> None:
    [piece] = plan_pieces([index], max_size, None, 10_000)
    [slot] = piece.slots
    mapped = map_pattern(pattern, piece.offset, max_size)
    assert slurm_expand(mapped, slot) == slurm_expand(pattern, index)


SCRIPT = """#!/bin/bash
#SBATCH --job-name=big   # a comment
#SBATCH --output=out-%a.log

  # indented comment
#SBATCH --mem=100M
echo body
#SBATCH --not-read
"""


def test_directive_header_stops_at_the_first_command() -> None:
    assert directive_header(SCRIPT) == [
        "#SBATCH --job-name=big   # a comment",
        "#SBATCH --output=out-%a.log",
        "",
        "  # indented comment",
        "#SBATCH --mem=100M",
    ]


def test_wrapper_runs_the_script_as_the_original_index_with_arguments_untouched(
    tmp_path: Path,
) -> None:
    target = tmp_path / "user script.sh"
    target.write_text(
        "#!/bin/bash\n"
        'echo "$SLURM_ARRAY_TASK_ID $SLURM_ESCALATE_TASK_ID $SLURM_ESCALATE_ARRAY_SLOT"\n'
        'printf "[%s]\\n" "$@"\n'
    )
    target.chmod(0o700)
    wrapper = tmp_path / "wrapper.sh"
    wrapper.write_text(wrapper_script(SCRIPT, str(target), 10000))
    assert wrapper.read_text().splitlines()[1:6] == directive_header(SCRIPT)
    args = ["$(touch /tmp/pwned)", "a b", "x\ny", "ünï", "'\""]
    out = subprocess.run(
        ["/bin/sh", str(wrapper), *args],
        env={**os.environ, "SLURM_ARRAY_TASK_ID": "499"},
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout
    lines = out.split("\n")
    assert lines[0] == "10499 10499 499"
    assert "\n".join(lines[1:]) == "".join(f"[{a}]\n" for a in args)
