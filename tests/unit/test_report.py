"""`slurm-escalate report`, the pure part: a finished mixed chain run against the fake
Slurm, then exact numbers (core-hours, medians, advice text) from its ReportData.

The chain (array 0-6, --cpus-per-task=2, ladder devel 400M/1m, day 1000M/2m,
week 3000M/4m), as sacct reports it in PLAN:
  0, 1  complete at level 0
  2     OUT_OF_MEMORY at level 0, completes at level 1
  3     TIMEOUT at level 0, completes at level 1
  4     FAILED exit 3 (a bug): not retried
  5     NODE_FAIL on d2, resubmitted at level 0, completes
  6     OUT_OF_MEMORY at every level: EXHAUSTED
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from slurm_escalate.core.chain import Chain
from slurm_escalate.core.models import Level, SlurmState
from slurm_escalate.reporting import fmt
from slurm_escalate.reporting.advice import right_size
from slurm_escalate.reporting.model import (
    AttemptRow,
    Cost,
    CostRow,
    NodeRow,
    ReportData,
    Spread,
    TaskRow,
)
from slurm_escalate.reporting.stats import build_report, req_mem_mb
from slurm_escalate.service import prepare as app
from slurm_escalate.service.collect import chain_report, levels_for
from slurm_escalate.state.store import ChainStore
from slurm_escalate.testing import FakeSlurm, FastClock

LADDER = """\
levels:
  - {partition: devel, mem: 400M, time: "00:01:00"}
  - {partition: day, mem: 1000M, time: "00:02:00"}
  - {partition: week, mem: 3000M, time: "00:04:00"}
max_resubmits: 2
"""
C, OOM, TO, F, NF = "COMPLETED", "OUT_OF_MEMORY", "TIMEOUT", "FAILED", "NODE_FAIL"
#: (index, attempt) -> (outcome, ExitCode, Elapsed s, MaxRSS MiB or None, node)
PLAN: dict[tuple[int, int], tuple[str, str, int, int | None, str]] = {
    (0, 1): (C, "0:0", 10, 100, "d1"),
    (1, 1): (C, "0:0", 20, 200, "d2"),
    (2, 1): (OOM, "0:125", 30, 390, "d1"),
    (2, 2): (C, "0:0", 40, 700, "n1"),
    (3, 1): (TO, "0:0", 60, 50, "d2"),
    (3, 2): (C, "0:0", 90, 60, "n2"),
    (4, 1): (F, "3:0", 5, None, "d1"),
    (5, 1): (NF, "0:0", 15, None, "d2"),
    (5, 2): (C, "0:0", 25, 300, "d1"),
    (6, 1): (OOM, "0:125", 12, 0, "d2"),  # sacct prints MaxRSS 0 when it sampled nothing
    (6, 2): (OOM, "0:125", 24, 950, "n1"),
    (6, 3): (OOM, "0:125", 48, 2900, "w1"),
}
LEVELS = {0: ("devel", "400M", 60), 1: ("day", "1000M", 120), 2: ("week", "3000M", 240)}
T0 = datetime(2026, 11, 22, 10, 0, 0)


def _outcome(index: int | None, level: int, attempt: int) -> tuple[SlurmState, str]:
    state, code, *_ = PLAN[(index or 0, attempt)]
    return SlurmState(state), code


def _detail(index: int | None, level: int, attempt: int) -> dict[str, Any]:
    _, _, elapsed, rss, node = PLAN[(index or 0, attempt)]
    partition, mem, limit = LEVELS[level]
    start = T0 + timedelta(minutes=5 * (attempt - 1))
    return {
        "start": start.isoformat(),
        "end": (start + timedelta(seconds=elapsed)).isoformat(),
        "elapsed_s": elapsed,
        "nodes": node,
        "partition": partition,
        "req_mem": mem,
        "timelimit_s": limit,
        "max_rss_kb": None if rss is None else rss * 1024,
    }


def mixed_chain(tmp_path: Path) -> tuple[Chain, ChainStore]:
    """Run the PLAN chain to its end with the fake Slurm; logs go to t-<index>.log."""
    (tmp_path / "job.sh").write_text("#!/bin/bash\n#SBATCH --job-name=t\necho hi\n")
    (tmp_path / "ladder.yaml").write_text(LADDER)
    slurm = FakeSlurm(_outcome, detail=_detail)
    options = app.SubmitOptions(config="ladder.yaml", min_poll=1)
    tokens = ["--array=0-6", "--cpus-per-task=2", "--output=%x-%a.log", "job.sh"]
    prepared = app.prepare(tokens, options, slurm, str(tmp_path))
    store = ChainStore(tmp_path / "state")
    chain = app.create_chain(prepared, options, store, str(tmp_path), 1_790_000_000.0)
    # The monitor's clock stands after PLAN's sacct End times, as a real one does: a
    # NODE_FAIL is believed only once its End is REQUEUE_GRACE_S old (core/step.py).
    clock = FastClock()
    clock.t = max(clock.t, T0.timestamp() + 86_400)
    monitor = app.make_monitor(
        chain,
        prepared,
        store,
        slurm,
        {"PATH": "/bin"},
        clock=clock,
    )
    monitor.start()
    monitor.run(threading.Event())
    return store.load(chain.chain_id), store


@pytest.fixture
def data(tmp_path: Path) -> ReportData:
    chain, store = mixed_chain(tmp_path)
    (tmp_path / "t-4.log").write_text("".join(f"line {i}\n" for i in range(1, 8)))
    return chain_report(chain, store)


def test_summary(data: ReportData) -> None:
    s = data.summary
    assert (s.tasks, s.completed, s.failed, s.exhausted, s.cancelled) == (7, 5, 1, 1, 0)
    assert s.resubmissions == 3
    assert s.text == "5 of 7 tasks completed; 1 failed (not retried); 1 exhausted"


def test_rounds_and_submissions(data: ReportData) -> None:
    rows = [
        (r.round, r.job_id, r.level, r.mem_mb, r.time_s, r.partition, r.tasks)
        + (r.done, r.oom, r.timeout, r.failed, r.status)
        for r in data.submissions
    ]
    assert rows == [
        (1, "100", 0, 400, 60, "devel", 7, 2, 2, 1, 2, "FINISHED"),
        (2, "101", 0, 400, 60, "devel", 1, 1, 0, 0, 0, "FINISHED"),
        (2, "102", 1, 1000, 120, "day", 3, 2, 1, 0, 0, "FINISHED"),
        (3, "103", 2, 3000, 240, "week", 1, 0, 1, 0, 0, "FINISHED"),
    ]


@pytest.mark.parametrize(
    ("level", "attempts", "outcomes", "runtime", "rss", "peak"),
    [
        (
            0,
            8,
            ((C, 3), (OOM, 2), (F, 1), (NF, 1), (TO, 1)),
            Spread(5, 17.5, 60, 8),
            Spread(50, 200, 390, 5),
            97.5,
        ),
        (1, 3, ((C, 2), (OOM, 1)), Spread(24, 40, 90, 3), Spread(60, 700, 950, 3), 95.0),
        (2, 1, ((OOM, 1),), Spread(48, 48, 48, 1), Spread(2900, 2900, 2900, 1), 96.7),
    ],
)
def test_levels(data: ReportData, level, attempts, outcomes, runtime, rss, peak) -> None:
    row = data.levels[level]
    assert row.level == level
    assert (row.partition, row.mem_mb, row.time_s) == LEVELS[level][:1] + (
        int(LEVELS[level][1][:-1]),
        LEVELS[level][2],
    )
    assert (row.attempts, row.outcomes, row.runtime_s, row.rss_mb, row.peak_pct) == (
        attempts,
        outcomes,
        runtime,
        rss,
        peak,
    )


def test_cost_in_core_seconds(data: ReportData) -> None:
    # elapsed x 2 cores: useful 10+20+40+90+25 = 185 s; OOM 30+12+24+48 = 114 s
    assert data.cost == Cost(
        useful_core_s=370,
        useful_attempts=5,
        failed=(
            CostRow(OOM, 4, 228),
            CostRow(TO, 1, 120),
            CostRow(NF, 1, 30),
            CostRow(F, 1, 10),
        ),
        failed_core_s=388,
    )
    assert data.cost.total_core_s == 758
    assert [fmt.core_hours(x) for x in (370, 388, 758)] == ["0.103", "0.108", "0.211"]


def test_nodes_and_node_fail(data: ReportData) -> None:
    assert data.nodes == (
        NodeRow("d1", 4, 2, 2, 0),
        NodeRow("d2", 4, 1, 3, 1),
        NodeRow("n1", 2, 1, 1, 0),
        NodeRow("n2", 1, 1, 0, 0),
        NodeRow("w1", 1, 0, 1, 0),
    )
    assert data.node_fail_nodes == ("d2",)


def test_advice(data: ReportData) -> None:
    # Task 6 ran out of memory at every level, 3000M included: one of the six tasks that tell
    # something of their size (4 failed with a bug) is over 5%, so no level fits them.
    assert data.advice.lines == (
        "95% of tasks ran under 1m30s; over 5% needed more than 3000M (they ran out of memory "
        "there); no level has room for them: add a level above level 2",
        "2 of 5 completed tasks (40%) needed no retry at level 0",
        "3 of 5 completed tasks had to be retried; their failed attempts cost 0.058 core-hours",
        'add above level 2 of the ladder: - {partition: week, mem: 3700M, time: "00:04:00"}',
    )
    assert (data.advice.recommended_start_level, data.advice.p95_rss_mb) == (None, None)
    assert (data.advice.p95_elapsed_s, data.advice.sample) == (90, 6)


def test_advice_without_the_exhausted_task(tmp_path: Path) -> None:
    chain, store = mixed_chain(tmp_path)
    chain.tasks = [t for t in chain.tasks if t.index != 6]
    advice = chain_report(chain, store).advice
    assert advice.lines == (
        "95% of tasks peaked under 700M and ran under 1m30s; start at level 1 next time",
        "2 of 5 completed tasks (40%) needed no retry at level 0",
        "3 of 5 completed tasks had to be retried; their failed attempts cost 0.058 core-hours",
        "next time: --start-level 1",
    )
    assert (advice.recommended_start_level, advice.p95_rss_mb) == (1, 700)
    assert (advice.p95_elapsed_s, advice.sample) == (90, 5)


def test_failures_not_retried_with_log_tail(data: ReportData, tmp_path: Path) -> None:
    failed, exhausted = data.problems
    assert (failed.index, failed.job_id, failed.state, failed.exit_code) == (4, "100_4", F, 3)
    assert (failed.node, failed.elapsed_s, failed.reason) == (
        "d1",
        5,
        "FAILED exit 3 (not retried)",
    )
    assert failed.log is not None
    assert failed.log.path == str(tmp_path / "t-4.log")
    assert failed.log.lines == ("line 3", "line 4", "line 5", "line 6", "line 7")
    assert (exhausted.index, exhausted.job_id, exhausted.state) == (6, "103_6", "EXHAUSTED")
    assert exhausted.log is not None and exhausted.log.lines is None
    assert exhausted.log.note.startswith("log not readable")


def test_attempt_rows_carry_round_cpus_and_cost(data: ReportData) -> None:
    task6 = data.tasks[6]
    assert [(a.job_id, a.round, a.level, a.req_mem_mb, a.core_s) for a in task6.attempts] == [
        ("100_6", 1, 0, 400, 24),
        ("102_6", 2, 1, 1000, 48),
        ("103_6", 3, 2, 3000, 96),
    ]
    assert {a.cpus for t in data.tasks for a in t.attempts} == {2}


def test_levels_for_reads_the_ladder_copy(tmp_path: Path) -> None:
    chain, store = mixed_chain(tmp_path)
    (tmp_path / "ladder.yaml").unlink()  # the chain's own copy is what counts
    assert levels_for(chain, store) == {
        0: Level(partition="devel", mem_mb=400, time_s=60),
        1: Level(partition="day", mem_mb=1000, time_s=120),
        2: Level(partition="week", mem_mb=3000, time_s=240),
    }


def test_without_sacct_details_the_ladder_fills_in(tmp_path: Path) -> None:
    chain, store = mixed_chain(tmp_path)
    for task in chain.tasks:
        for a in task.attempts:
            a.req_mem, a.timelimit_s, a.partition = None, None, None
    report = build_report(chain, levels_for(chain, store))
    assert [(r.mem_mb, r.time_s, r.partition) for r in report.submissions] == [
        (400, 60, "devel"),
        (400, 60, "devel"),
        (1000, 120, "day"),
        (3000, 240, "week"),
    ]


# ---------------------------------------------------------------- advice, table-tested


def _task(index: int, state: str, *attempts: tuple[int, str, int | None, int]) -> TaskRow:
    """attempts: (level, outcome, MaxRSS MiB, elapsed s)."""
    rows = tuple(
        AttemptRow(
            index=index, attempt=n, job_id=f"9_{index}", array_job_id="9", round=n,
            submission=n, level=lv, outcome=out, exit_code=0, reason="", start=None,
            end=None, elapsed_s=el, node=None, partition=None, req_mem_mb=None,
            timelimit_s=None, max_rss_kb=None if rss is None else rss * 1024, cpus=1,
            core_s=el, submitted_at=None,
        )
        for n, (lv, out, rss, el) in enumerate(attempts, 1)
    )  # fmt: skip
    return TaskRow(index, state, rows[-1].level if rows else 0, 0, "", rows)


LADDER_LEVELS = {
    0: Level(mem_mb=1024, time_s=600),
    1: Level(mem_mb=2048, time_s=1800),
    2: Level(mem_mb=8192, time_s=3600),
}
SMALL = [_task(i, C, (0, C, 300, 100 + i)) for i in range(19)]


@pytest.mark.parametrize(
    ("tasks", "start", "first", "best"),
    [
        # 19 of 20 small, one big task: the 95th percentile ignores the one outlier
        (
            [*SMALL, _task(19, C, (0, OOM, 1000, 5), (1, C, 1400, 300))],
            0,
            "95% of tasks peaked under 300M and ran under 1m58s; "
            "level 0 fits them: keep starting at level 0",
            0,
        ),
        # three big ones of twenty: the percentile lands on them
        (
            [
                *SMALL[:17],
                *[_task(17 + i, C, (0, OOM, 900, 5), (1, C, 1400, 200)) for i in range(3)],
            ],
            0,
            "95% of tasks peaked under 1.4G and ran under 3m20s; start at level 1 next time",
            1,
        ),
        # started too high: advise going down
        (
            SMALL,
            2,
            "95% of tasks peaked under 300M and ran under 1m58s; start at level 0 next time",
            0,
        ),
        # the runtime decides: 2000 s needs level 2's hour
        (
            [_task(0, C, (0, TO, 100, 600), (1, TO, 100, 1800), (2, C, 100, 2000))],
            0,
            "95% of tasks peaked under 100M and ran under 33m20s; start at level 2 next time",
            2,
        ),
        # nothing fits: 7.9G needs more than 8G with 20% headroom
        (
            [_task(0, C, (2, C, 7900, 10))],
            0,
            "95% of tasks peaked under 7.8G and ran under 10s; "
            "no level has room for them: add a level above level 2",
            None,
        ),
        # no MaxRSS sampled: judged on time only
        (
            [_task(0, C, (0, C, None, 10))],
            0,
            "95% of tasks ran under 10s; level 0 fits them: keep starting at level 0",
            0,
        ),
    ],
)
def test_right_size(tasks, start, first, best) -> None:
    advice = right_size(tasks, LADDER_LEVELS, start)
    assert advice.lines[0] == first
    assert advice.recommended_start_level == best


def test_right_size_flags_an_oversized_level() -> None:
    tasks = [_task(0, C, (2, C, 1000, 10))]
    advice = right_size(tasks, {0: Level(mem_mb=8192)}, 0)
    assert advice.lines[-2:] == (
        "level 0's 8G is over 2x what they need: 1.2G would do (MaxRSS + 20%)",
        "next time: --start-level 0",
    )


def test_right_size_without_completed_tasks() -> None:
    advice = right_size([_task(0, F, (0, F, 10, 1))], LADDER_LEVELS, 0)
    assert advice.lines == ("no task has completed yet: nothing to size from",)
    assert advice.recommended_start_level is None


# ---------------------------------------------------------------- units


@pytest.mark.parametrize(
    ("text", "cpus", "mb"),
    [("400M", 1, 400), ("2G", 4, 2048), ("400Mn", 2, 400), ("100Mc", 4, 400), ("", 1, None),
     (None, 1, None), ("?", 1, None)],
)  # fmt: skip
def test_req_mem_mb(text, cpus, mb) -> None:
    assert req_mem_mb(text, cpus) == mb


@pytest.mark.parametrize(
    ("mb", "up", "text"),
    [(0.41, False, "420K"), (400, False, "400M"), (607.4, False, "607M"), (607.1, True, "608M"),
     (1024, False, "1G"), (1400, True, "1.4G"), (1434, True, "1.5G"), (2900, False, "2.8G"),
     (None, False, "-")],
)  # fmt: skip
def test_fmt_mem(mb, up, text) -> None:
    assert fmt.mem(mb, up=up) == text


@pytest.mark.parametrize(
    ("s", "text"),
    [(0, "0s"), (45, "45s"), (60, "1m"), (100, "1m40s"), (17.5, "18s"), (3600, "1h"),
     (3725, "1h02m05s"), (5400, "1h30m"), (None, "-")],
)  # fmt: skip
def test_fmt_duration(s, text) -> None:
    assert fmt.duration(s) == text
