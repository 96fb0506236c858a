"""SacctReader with ``keep`` (what the monitor passes every poll) keeps exactly the lines
the plain rule keeps, however the lines arrive.

The reader asks ``keep`` once per task (a task's job line and its step lines share the
JobID before the ".") instead of once per line. ``kept_lines`` below is the rule written
plainly, one line at a time, as it stood before (commit 82c5c72): a line of task
``J_I`` (J and I decimal) that ``keep`` does not want is dropped, except the first job
line of each array, which shows the array is listed. The reader's rows must be those
of the kept lines read without ``keep``, and its records those rows grouped
(``reference_group``, the grouping written plainly in test_sacct_reader.py).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_sacct_reader import reference_group

from slurm_escalate.slurm import parse
from slurm_escalate.slurm.parse import SACCT_FIELDS, SacctReader, parse_sacct

Keep = Callable[[str, int | None], bool]


def kept_lines(lines: list[str], keep: Keep) -> list[str]:
    """The lines a reader with ``keep`` reads, decided line by line."""
    visible: set[str] = set()
    out = []
    for line in lines:
        base, dot, _ = line.partition("|")[0].strip().partition(".")
        job, _, index = base.partition("_")
        if index.isdecimal() and job.isdecimal() and not keep(job, int(index)):
            if dot or job in visible:
                continue
            visible.add(job)
        out.append(line)
    return out


def sacct_line(job_id: str, state: str, code: str, rss: str, name: str) -> str:
    values = {"JobID": job_id, "State": state, "ExitCode": code, "MaxRSS": rss, "JobName": name}
    return "|".join(values.get(f, "") for f in SACCT_FIELDS)


# not "07" beside "7": records of two job ids of one number are in no defined order, and
# the reader and reference_group order a placeholder among them differently (as before)
JOBS = ["7", "8", "100"]
tasks = st.builds(
    lambda j, i: f"{j}_{i}", st.sampled_from(JOBS), st.sampled_from(["0", "1", "2", "01"])
)
job_ids = st.one_of(
    tasks,
    st.sampled_from(JOBS),  # a job that is not an array
    st.builds(  # a pending array, ranges and a throttle
        lambda j, a, n: f"{j}_[{a}-{a + n}%2]",
        st.sampled_from(JOBS),
        st.integers(0, 2),
        st.integers(0, 3),
    ),
    st.builds(lambda j, c: f"{j}+{c}", st.sampled_from(JOBS), st.integers(0, 2)),  # het job
    st.builds(lambda t: f" {t} ", tasks),  # spaces around the JobID
)
steps = st.sampled_from(["batch", "extern", "0", "1", "0+1"])
names = st.sampled_from(["job", "", "a|b", "x|"])  # "|" in JobName: a trailing one too
states = st.sampled_from(["COMPLETED", "RUNNING", "OUT_OF_MEMORY", "FAILED", "CANCELLED by 0"])
codes = st.sampled_from(["0:0", "0:125", "1:0", ""])


@st.composite
def sacct_lines(draw: st.DrawFn) -> list[str]:
    """Tasks as sacct prints them (job line, then steps; a step may be missing) and as it
    may not (steps alone, a task twice, lines shuffled), with blank lines."""
    lines = []
    for _ in range(draw(st.integers(0, 25))):
        shape = draw(st.sampled_from(["job", "job+steps", "job+steps", "steps", "blank"]))
        if shape == "blank":
            lines.append(draw(st.sampled_from(["", "  "])))
            continue
        base = draw(job_ids)
        if shape != "steps":
            lines.append(sacct_line(base, draw(states), draw(codes), "", draw(names)))
        if shape != "job" and "[" not in base:
            for step in draw(st.lists(steps, max_size=3)):
                row = sacct_line(f"{base.strip()}.{step}", draw(states), draw(codes), "1024K", "")
                lines.append(row)
    if draw(st.booleans()):
        draw(st.randoms(use_true_random=False)).shuffle(lines)
    return lines


wanted_sets = st.sets(st.tuples(st.sampled_from(JOBS), st.integers(0, 2)))


@settings(max_examples=400, deadline=None)
@given(sacct_lines(), wanted_sets, st.sampled_from([1, 2, 3, 7, 4096]))
def test_a_reader_with_keep_reads_what_the_plain_rule_keeps(
    lines: list[str], wanted: set[tuple[str, int]], batch: int
) -> None:
    def keep(job: str, index: int | None) -> bool:
        return (job, index) in wanted

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(parse, "_BATCH", batch)
        reader = SacctReader(keep)
        for one in lines:
            reader.feed(one)
        expected = parse_sacct("\n".join(kept_lines(lines, keep)))
        assert reader.rows == expected
        assert reader.records() == reference_group(expected)


def test_keep_is_asked_once_per_task_and_only_of_array_tasks() -> None:
    asked: list[tuple[str, int | None]] = []

    def keep(job: str, index: int | None) -> bool:
        asked.append((job, index))
        return index != 2

    lines = [
        sacct_line("7_1", "COMPLETED", "0:0", "", "job"),
        sacct_line("7_1.batch", "COMPLETED", "0:0", "1024K", "batch"),
        sacct_line("7_1.extern", "COMPLETED", "0:0", "1024K", "extern"),
        sacct_line("7_2", "FAILED", "1:0", "", "job"),
        sacct_line("7_2.batch", "FAILED", "1:0", "1024K", "batch"),
        sacct_line("7_3", "RUNNING", "0:0", "", "job"),
        sacct_line("7_3.batch", "RUNNING", "0:0", "1024K", "batch"),
        sacct_line("7_[4-5]", "PENDING", "0:0", "", "job"),
        sacct_line("8", "COMPLETED", "0:0", "", "job"),
    ]
    reader = SacctReader(keep)
    reader.feed_lines(lines)
    assert asked == [("7", 1), ("7", 2), ("7", 3)]
    # 7_2 is not wanted: its job line stays (the first of array 7 not wanted), not its step
    kept = ["7_1", "7_1.batch", "7_1.extern", "7_2", "7_3", "7_3.batch", "7_[4-5]", "8"]
    assert [r.job_id for r in reader.rows] == kept
