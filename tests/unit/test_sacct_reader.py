"""SacctReader reads lines in batches and gathers rows by task as it reads.

What it gives must not depend on how the lines arrive (one by one, all at once,
across batch boundaries) and ``records()`` must be ``group_task_records(rows)``,
which itself must group as the implementation before the batched reader did: a
copy of that one is kept below as the reference. The recorded-output golden tables
in test_slurm_parse.py pin what each row holds.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slurm_escalate.core.models import SacctRow, TaskRecord
from slurm_escalate.errors import SlurmParseError
from slurm_escalate.slurm import parse
from slurm_escalate.slurm.parse import SACCT_FIELDS, SacctReader, group_task_records, parse_sacct


def reference_group(rows: Iterable[SacctRow]) -> list[TaskRecord]:
    """group_task_records as it was before the batched reader (commit 4339799)."""
    jobs: dict[tuple[str, int | None], SacctRow] = {}
    steps: defaultdict[tuple[str, int | None], list[SacctRow]] = defaultdict(list)
    placeholders: dict[tuple[str, int | None], SacctRow] = {}
    for row in rows:
        if row.step is not None:
            steps[row.array_job_id, row.array_index].append(row)
        elif row.job_id.endswith("]") and (spec := parse._pending_spec(row)) is not None:
            for index in parse._expand_pending(row, spec):
                placeholders[(row.array_job_id, index)] = row
        else:
            jobs[row.array_job_id, row.array_index] = row
    for key, row in placeholders.items():
        jobs.setdefault(key, row)
    numbers = {job: int(job) for job in {job for job, _ in jobs}}
    keys = sorted(jobs, key=lambda k: (numbers[k[0]], -1 if k[1] is None else k[1]))
    return [
        TaskRecord(job, index, jobs[job, index], tuple(steps.get((job, index), [])))
        for job, index in keys
    ]


def line(job_id: str, state: str = "COMPLETED", code: str = "0:0", rss: str = "") -> str:
    values = {"JobID": job_id, "State": state, "ExitCode": code, "MaxRSS": rss}
    return "|".join(values.get(f, "") for f in SACCT_FIELDS)


JOBS = ["7", "8", "12", "100"]
STEPS = ["batch", "extern", "0", "1"]
STATES = ["COMPLETED", "RUNNING", "PENDING", "OUT_OF_MEMORY", "FAILED", "CANCELLED by 0"]

job_ids = st.one_of(
    st.builds(lambda j, i: f"{j}_{i}", st.sampled_from(JOBS), st.integers(0, 12)),  # a task
    st.sampled_from(JOBS),  # a job that is not an array
    st.builds(
        lambda j, a, n: f"{j}_[{a}-{a + n}%2]",
        st.sampled_from(JOBS),
        st.integers(0, 12),
        st.integers(0, 4),
    ),
    st.builds(lambda j, c: f"{j}+{c}", st.sampled_from(JOBS), st.integers(0, 2)),  # het
)


@st.composite
def sacct_lines(draw: st.DrawFn) -> list[str]:
    """Lines as sacct prints them (a task's steps after its job row) and as it may not
    (steps alone, duplicates, tasks interleaved), with blank lines here and there."""
    lines = []
    for _ in range(draw(st.integers(0, 30))):
        base = draw(job_ids)
        shape = draw(st.sampled_from(["job", "job+steps", "steps", "blank"]))
        if shape == "blank":
            lines.append(draw(st.sampled_from(["", "   "])))
            continue
        if shape != "steps":
            lines.append(line(base, draw(st.sampled_from(STATES))))
        if shape != "job" and "[" not in base:
            for step in draw(st.lists(st.sampled_from(STEPS), max_size=3)):
                lines.append(line(f"{base}.{step}", draw(st.sampled_from(STATES)), rss="1024K"))
    if draw(st.booleans()):
        draw(st.randoms(use_true_random=False)).shuffle(lines)
    return lines


def read(
    lines: list[str], keep: Callable[[str, int | None], bool] | None = None, whole: bool = False
) -> SacctReader:
    reader = SacctReader(keep)
    if whole:
        reader.feed_lines(lines)
    else:
        for one in lines:
            reader.feed(one)
    return reader


@settings(max_examples=300, deadline=None)
@given(sacct_lines(), st.sampled_from([1, 2, 3, 7, 4096]))
def test_records_are_the_rows_grouped_however_the_lines_arrive(
    lines: list[str], batch: int
) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(parse, "_BATCH", batch)
        by_line, whole = read(lines), read(lines, whole=True)
        rows = by_line.rows
        assert rows == whole.rows == parse_sacct("\n".join(lines))
        expected = reference_group(rows)
        assert group_task_records(rows) == expected
        assert by_line.records() == whole.records() == expected
        assert by_line.lines == whole.lines == len(lines)


@settings(max_examples=200, deadline=None)
@given(
    sacct_lines(),
    st.sets(st.tuples(st.sampled_from(JOBS), st.integers(0, 12))),
    st.sampled_from([1, 3, 4096]),
)
def test_records_of_a_filtered_read_are_its_rows_grouped(
    lines: list[str], wanted: set[tuple[str, int]], batch: int
) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(parse, "_BATCH", batch)
        reader = read(lines, lambda job, index: (job, index) in wanted)
        assert reader.records() == reference_group(reader.rows)


def test_a_task_keeps_its_steps_when_its_lines_come_apart_or_twice() -> None:
    lines = [
        line("7_1"),
        line("7_1.batch", "OUT_OF_MEMORY", "0:125"),
        line("7_2"),
        line("7_1.extern"),  # back to task 1
        line("7_1", "FAILED", "1:0"),  # a second job row: the last one wins
        line("7_3.batch"),  # steps without a job row: no record
        line("7_[2-4%1]", "PENDING"),  # covers 2 (listed) and 3, 4 (not yet)
    ]
    records = read(lines).records()
    assert [(r.index, r.job.state_text, [s.step for s in r.steps]) for r in records] == [
        (1, "FAILED", ["batch", "extern"]),
        (2, "COMPLETED", []),
        (3, "PENDING", ["batch"]),
        (4, "PENDING", []),
    ]
    assert records == reference_group(parse_sacct("\n".join(lines)))


def test_a_bad_line_is_named_by_its_number_across_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parse, "_BATCH", 4)
    lines = [line(f"7_{i}") for i in range(9)] + ["7_9|oops"] + [line("7_10")]
    reader = SacctReader()
    for one in lines[:8]:
        reader.feed(one)  # two full batches, read as they fill
    assert len(reader._rows) == 8
    with pytest.raises(SlurmParseError, match="sacct output line 10: expected 13 fields, got 2"):
        for one in lines[8:]:
            reader.feed(one)
        reader.rows  # noqa: B018  (the last, partial batch is read here)
    with pytest.raises(SlurmParseError, match="sacct output line 3: unreadable JobID '7_x'"):
        parse_sacct("\n".join([line("7_0"), "", line("7_x")]))
