"""parse_sacct and group_task_records against the implementation they replaced.

Both were rewritten for speed (100,000 tasks per poll): memoised columns, the
common JobIDs split without a regex, rows built without the frozen dataclass's
__init__ and the garbage collector paused. None of that may change a value;
the reference below is the previous code, verbatim but for docstrings and its
lru_caches, and is the oracle here.
"""

from __future__ import annotations

import gc
import pickle
import re
from collections.abc import Iterable
from dataclasses import FrozenInstanceError, asdict, dataclass, replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slurm_escalate.arrays.spec import expand
from slurm_escalate.core.models import SacctRow, SlurmState, TaskRecord
from slurm_escalate.core.units import parse_rss_kb, parse_slurm_duration
from slurm_escalate.errors import ArraySpecError, SlurmParseError
from slurm_escalate.slurm import fastbuild, parse
from slurm_escalate.slurm.parse import SACCT_FIELDS, group_task_records, parse_sacct

DATA = Path(__file__).parent / "data"

# --- the reference (the implementation before the "Scale and speed" rewrite) -------------

_JOB_ID_RE = re.compile(
    r"(?P<job>\d+)"
    r"(?:_(?P<index>\d+)|_\[(?P<spec>[^\]]+)\]|\+(?P<het>\d+))?"
    r"(?:\.(?P<step>[A-Za-z0-9_+-]+))?"
)
_EXIT_RE = re.compile(r"(\d+):(\d+)")
_NO_TIME = {"", "UNKNOWN", "NONE"}
_NO_TEXT = {"", "NONE ASSIGNED", "(NULL)"}
_duration = parse_slurm_duration
_rss = parse_rss_kb


def reference_parse_sacct(text: str) -> list[SacctRow]:
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            rows.append(_parse_sacct_line(line, number))
    return rows


def _parse_sacct_line(line: str, number: int) -> SacctRow:
    parts = line.split("|", len(SACCT_FIELDS) - 1)
    if len(parts) != len(SACCT_FIELDS):
        raise _line_error(number, line, f"expected {len(SACCT_FIELDS)} fields, got {len(parts)}")
    (
        job_id,
        _raw,
        state,
        exit_code,
        max_rss,
        elapsed,
        limit,
        start,
        end,
        nodes,
        partition,
        req_mem,
        name,
    ) = parts
    m = _JOB_ID_RE.fullmatch(job_id.strip())
    if m is None:
        raise _line_error(number, line, f"unreadable JobID {job_id!r}")
    codes = _exit_code(exit_code)
    if codes is None:
        raise _line_error(number, line, f"unreadable ExitCode {exit_code!r}")
    index = m.group("index")
    return SacctRow(
        job_id=m.group(0),
        array_job_id=m.group("job"),
        array_index=int(index) if index is not None else None,
        step=_step_name(m.group("het"), m.group("step")),
        state=_state(state),
        state_text=state.strip(),
        exit_code=codes[0],
        exit_signal=codes[1],
        max_rss_kb=_rss(max_rss),
        elapsed_s=_duration(elapsed),
        timelimit_s=_duration(limit),
        start=_time(start),
        end=_time(end),
        nodes=_text(nodes),
        partition=_text(partition),
        req_mem=_text(req_mem),
        name=_text(name),
    )


def _exit_code(text: str) -> tuple[int, int] | None:
    m = _EXIT_RE.fullmatch(text.strip() or "0:0")
    return None if m is None else (int(m.group(1)), int(m.group(2)))


def _line_error(number: int, line: str, reason: str) -> SlurmParseError:
    shown = line if len(line) <= 160 else line[:157] + "..."
    return SlurmParseError(f"sacct output line {number}: {reason}: {shown!r}")


def _step_name(het: str | None, step: str | None) -> str | None:
    if het is None or het == "0":
        return step
    return f"+{het}" if step is None else f"+{het}.{step}"


def _state(text: str) -> SlurmState:
    words = text.split()
    if not words:
        return SlurmState.UNKNOWN
    try:
        return SlurmState(words[0].rstrip("+").upper())
    except ValueError:
        return SlurmState.UNKNOWN


def _time(text: str) -> str | None:
    text = text.strip()
    return None if text.upper() in _NO_TIME else text


def _text(text: str) -> str | None:
    text = text.strip()
    return None if text.upper() in _NO_TEXT else text


def _pending_spec(row: SacctRow) -> str | None:
    if row.step is None and row.job_id.endswith("]") and ("_[" in row.job_id):
        return row.job_id.split("_[", 1)[1][:-1]
    return None


def reference_group_task_records(rows: Iterable[SacctRow]) -> list[TaskRecord]:
    jobs: dict[tuple[str, int | None], SacctRow] = {}
    steps: dict[tuple[str, int | None], list[SacctRow]] = {}
    placeholders: dict[tuple[str, int | None], SacctRow] = {}
    for row in rows:
        key = (row.array_job_id, row.array_index)
        spec = _pending_spec(row)
        if spec is not None:
            for index in _expand_pending(row, spec):
                placeholders[row.array_job_id, index] = replace(row, array_index=index)
        elif row.step is None:
            jobs[key] = row
        else:
            steps.setdefault(key, []).append(row)
    for key, row in placeholders.items():
        jobs.setdefault(key, row)
    records = [
        TaskRecord(array_job_id=key[0], index=key[1], job=job, steps=tuple(steps.get(key, ())))
        for key, job in jobs.items()
    ]
    records.sort(key=lambda r: (int(r.array_job_id), -1 if r.index is None else r.index))
    return records


def _expand_pending(row: SacctRow, spec: str) -> list[int]:
    body = spec.partition("%")[0]
    try:
        return expand(body)
    except ArraySpecError as exc:
        raise SlurmParseError(f"sacct array record {row.job_id!r}: {exc}") from exc


def outcome(fn, *args):  # type: ignore[no-untyped-def]
    try:
        return fn(*args)
    except (SlurmParseError, ArraySpecError) as exc:
        return f"{type(exc).__name__}: {exc}"


# --- rows built without the frozen __init__ ----------------------------------------------

FIELDS = ("7_1.batch", "7", 1, "batch", SlurmState.OUT_OF_MEMORY, "OUT_OF_MEMORY", 0, 125)
MORE = (388, 61, None, "2026-11-22T02:43:29", None, "d1", None, "100M", "batch")


def test_built_rows_are_ordinary_frozen_instances() -> None:
    built, made = parse._build_row(*FIELDS, *MORE), SacctRow(*FIELDS, *MORE)
    assert type(built) is SacctRow
    assert built == made and hash(built) == hash(made) and repr(built) == repr(made)
    assert asdict(built) == asdict(made) and vars(built) == vars(made)
    assert pickle.loads(pickle.dumps(built)) == made
    assert replace(built, step=None) == replace(made, step=None)
    with pytest.raises(FrozenInstanceError):
        built.step = "extern"  # type: ignore[misc]
    record = parse._build_record("7", 1, built, (built,))
    assert type(record) is TaskRecord and record == TaskRecord("7", 1, made, (made,))


def test_fast_builder_refuses_classes_it_would_get_wrong() -> None:
    @dataclass(frozen=True)
    class Checked:
        value: int

        def __post_init__(self) -> None:
            assert self.value >= 0

    with pytest.raises(TypeError, match="Checked needs its own __init__"):
        fastbuild.unfrozen_builder(Checked)


# --- parse_sacct ---------------------------------------------------------------------------

job_ids = st.one_of(
    st.sampled_from(["123", "123_4", "123_4.batch", "123_4.extern", "123_4.0", "123.batch"]),
    st.sampled_from(["123_[1-5%2]", "123+0", "123+0.batch", "123+2", "123+2.batch", "9_[0,3-7]"]),
    st.sampled_from([" 12_3 ", "12_", "12.", "12_3.a.b", "12_3.bä", "\u0663_4", "12_\u00b2"]),
    st.sampled_from(["12_3_4", "12_3+1", "12.batch_x", "12_3.0+1", "abc", "", "7_[5-3]"]),
    st.text(alphabet="0123456789_[]+.-%, ab\u0663\u00b2\t", max_size=12),
)
columns = {
    "State": [
        "COMPLETED",
        "CANCELLED by 0",
        "RUNNING+",
        "",
        " ",
        "out_of_memory",
        "NEW",
        "PENDING",
    ],
    "ExitCode": ["0:0", "0:125", "137:0", "", " 3:0 ", "1:", "x", "0:9"],
    "MaxRSS": ["", "0", "123456K", "1.5G", "388", "12Q", " 7M "],
    "Elapsed": ["00:01:00", "1-02:03:04", "", "INVALID", "61", "00:99:00"],
    "Timelimit": ["UNLIMITED", "Partition_Limit", "00:10:00", "", "2-00:00:00"],
    "Start": ["2026-11-22T10:00:00", "Unknown", "None", "", " 2026-11-22T10:00:00 "],
    "End": ["2026-11-22T10:01:00", "Unknown", ""],
    "NodeList": ["n1", "None assigned", "n[1-2]", "(null)", ""],
    "Partition": ["day", "", "devel"],
    "ReqMem": ["1000M", "", "4G"],
    "JobName": ["job", "batch", "a|b|c", "", " x "],
}
lines = st.builds(
    lambda job_id, values: "|".join([job_id, "1", *values]),
    job_ids,
    st.tuples(*(st.one_of(st.sampled_from(v), st.text(max_size=6)) for v in columns.values())),
) | st.text(alphabet="1_|.ab ", max_size=30)


@settings(max_examples=1500, deadline=None)
@given(st.lists(lines, max_size=6))
def test_parse_sacct_matches_the_reference(text_lines: list[str]) -> None:
    text = "\n".join(text_lines)
    assert outcome(parse_sacct, text) == outcome(reference_parse_sacct, text)


@pytest.mark.parametrize("path", sorted(DATA.glob("sacct_*.txt")), ids=lambda p: p.name)
def test_recorded_output_matches_the_reference(path: Path) -> None:
    text = path.read_text()
    rows = parse_sacct(text)
    assert rows == reference_parse_sacct(text)
    assert group_task_records(rows) == reference_group_task_records(rows)


# --- group_task_records --------------------------------------------------------------------

task_ids = st.sampled_from(
    ["5", "5.batch", "5_1", "5_1.batch", "5_1.extern", "5_2", "5_2.0", "10_0", "10_0.batch"]
    + ["9", "9.batch", "20+0", "20+0.batch", "20+1", "20+1.batch", "007_1", "7_1", "7_1.batch"]
    + ["5_[1-3%1]", "5_[2,4]", "10_[0-1]", "7_[5-3]"]
)
states = st.sampled_from(["PENDING", "RUNNING", "COMPLETED", "OUT_OF_MEMORY", "CANCELLED by 0"])


@settings(max_examples=800, deadline=None)
@given(st.lists(st.tuples(task_ids, states, st.sampled_from(["0:0", "0:125", "3:0"])), max_size=14))
def test_group_task_records_matches_the_reference(rows: list[tuple[str, str, str]]) -> None:
    fields = dict.fromkeys(SACCT_FIELDS, "")
    text = "\n".join(
        "|".join({**fields, "JobID": j, "State": s, "ExitCode": c}.values()) for j, s, c in rows
    )
    parsed = parse_sacct(text)
    assert parsed == reference_parse_sacct(text)
    grouped = outcome(group_task_records, parsed)
    assert grouped == outcome(reference_group_task_records, parsed)


# --- the garbage collector and the memos ---------------------------------------------------


@pytest.mark.parametrize("enabled", [True, False])
def test_parsing_leaves_the_garbage_collector_as_it_was(enabled: bool) -> None:
    good = "|".join(["7_1", "1", "COMPLETED", "0:0", *[""] * 9])
    (gc.enable if enabled else gc.disable)()
    try:
        group_task_records(parse_sacct(good))
        with pytest.raises(SlurmParseError):
            parse_sacct(good + "\n" + "x|1")
        assert gc.isenabled() is enabled
    finally:
        gc.enable()


def test_memo_forgets_everything_when_full() -> None:
    memo = fastbuild.Memo(str.upper, size=2)
    assert (memo["a"], memo["b"], memo["a"]) == ("A", "B", "A")
    assert memo["c"] == "C" and list(memo) == ["c"]


def test_expand_is_the_one_group_task_records_uses() -> None:
    assert parse.expand is expand
