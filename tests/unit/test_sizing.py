"""The first attempt sized from history, the pure rule (reporting/sizing.py): what a task
needed (measurements and lower bounds), the 95th percentile, the headroom, the level."""

from __future__ import annotations

import pytest

from slurm_escalate.core.models import Level
from slurm_escalate.reporting.model import AttemptRow, Figure, Need, Percentile, Sizing, Verdict
from slurm_escalate.reporting.sizing import (
    evidence,
    ladder_line,
    percentile,
    size,
    sizing_json,
    task_need,
)

C, OOM, TO, F = "COMPLETED", "OUT_OF_MEMORY", "TIMEOUT", "FAILED"


def attempt(
    outcome: str | None,
    *,
    rss_mb: float | None = None,
    elapsed: int | None = None,
    mem: int | None = None,
    limit: int | None = None,
) -> AttemptRow:
    return AttemptRow(
        index=0, attempt=1, job_id="9_0", array_job_id="9", round=1, submission=1, level=0,
        outcome=outcome, exit_code=0, reason="", start=None, end=None, elapsed_s=elapsed,
        node=None, partition=None, req_mem_mb=mem, timelimit_s=limit,
        max_rss_kb=None if rss_mb is None else int(rss_mb * 1024), cpus=1,
        core_s=elapsed or 0, submitted_at=None,
    )  # fmt: skip


def measured(mem: float | None = None, time: float | None = None) -> Need:
    return Need(
        None if mem is None else Figure(mem),
        None if time is None else Figure(time),
    )


LADDER = {
    0: Level(partition="small", mem_mb=1000, time_s=600),
    1: Level(partition="mid", mem_mb=2000, time_s=1800),
    2: Level(partition="big", mem_mb=8000, time_s=3600),
}


# ---------------------------------------------------------------- the percentile


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], None),
        ([7.0], 7.0),
        ([float(v) for v in range(1, 21)], 19.0),  # 20 values: rank ceil(19) = 19th
        ([float(v) for v in range(1, 101)], 95.0),
        ([float(v) for v in range(100, 0, -1)], 95.0),  # order does not matter
        ([1.0, 2.0], 2.0),  # two values: the larger (rank ceil(1.9) = 2)
        ([float(v) for v in range(1, 11)], 10.0),  # ten values: rank ceil(9.5) = 10
    ],
)
def test_nearest_rank_percentile(values, expected) -> None:
    assert percentile(values) == expected


# ---------------------------------------------------------------- what one task needed


def test_a_completed_attempt_measures_both() -> None:
    assert task_need([attempt(C, rss_mb=300, elapsed=40)]) == measured(300, 40)


@pytest.mark.parametrize("rss", [None, 0])
def test_maxrss_0_or_none_is_not_sampled_not_a_figure(rss) -> None:
    a = attempt(C, elapsed=40)
    a = AttemptRow(**{**a.__dict__, "max_rss_kb": rss})
    assert task_need([a]) == Need(None, Figure(40))


def test_out_of_memory_is_a_lower_bound_at_its_request() -> None:
    # 22.05 reports MaxRSS 0 for the OOM-killed step: the request is what is known
    need = task_need([attempt(OOM, rss_mb=0, elapsed=12, mem=400, limit=60)])
    assert need == Need(Figure(400, lower_bound=True), None)  # an OOM tells nothing of time


def test_timeout_is_a_lower_bound_at_its_limit() -> None:
    need = task_need([attempt(TO, rss_mb=50, elapsed=75, mem=400, limit=60)])
    assert need == Need(None, Figure(60, lower_bound=True))  # not its MaxRSS: it never finished


def test_the_largest_figure_wins_a_tie_goes_to_the_bound() -> None:
    climbed = [
        attempt(OOM, mem=400),
        attempt(TO, mem=1000, limit=60),
        attempt(C, rss_mb=700, elapsed=90, mem=3000, limit=240),
    ]
    assert task_need(climbed) == measured(700, 90)  # measured above both bounds
    # sacct sampled less than the request it ran out of: the task needed more than 400M
    sampled_low = [attempt(OOM, mem=400), attempt(C, rss_mb=380, elapsed=5, mem=1000)]
    assert task_need(sampled_low) == Need(Figure(400, lower_bound=True), Figure(5))
    tie = [attempt(OOM, mem=400), attempt(C, rss_mb=400, elapsed=5, mem=1000)]
    assert task_need(tie) == Need(Figure(400, lower_bound=True), Figure(5))


def test_exhausted_task_keeps_its_highest_bound() -> None:
    attempts = [attempt(OOM, mem=m) for m in (1000, 2000, 8000)]
    assert task_need(attempts) == Need(Figure(8000, lower_bound=True), None)


@pytest.mark.parametrize("outcome", [F, "CANCELLED", "NODE_FAIL", "PREEMPTED", "DEADLINE", None])
def test_other_outcomes_tell_nothing(outcome) -> None:
    assert task_need([attempt(outcome, rss_mb=500, elapsed=30, mem=1000, limit=60)]) is None


# ---------------------------------------------------------------- the level


def test_no_history_is_level_0() -> None:
    s = size([], LADDER)
    assert (s.verdict, s.start_level, s.tasks, s.mem, s.time) == (
        Verdict.NO_EVIDENCE,
        0,
        0,
        None,
        None,
    )
    assert s.option == "--start-level 0"


def test_the_lowest_level_that_covers_both() -> None:
    s = size([measured(300, 100)] * 18 + [measured(1500, 100)] * 2, LADDER)
    assert (s.verdict, s.start_level, s.level) == (Verdict.FITS, 1, LADDER[1])
    assert s.mem == Percentile(Figure(1500), 0.2, 20, 0)
    assert s.mem.need == 1800


def test_one_outlier_in_twenty_is_above_the_percentile() -> None:
    needs = [measured(300, 100)] * 19 + [Need(Figure(8000, lower_bound=True), None)]
    s = size(needs, LADDER)
    assert (s.verdict, s.start_level) == (Verdict.FITS, 0)
    assert s.mem == Percentile(Figure(300), 0.2, 20, 1)


def test_time_alone_can_decide() -> None:
    s = size([measured(100, 1700)], LADDER)  # 1700 s + 10% = 1870 s: more than level 1's 30m
    assert s.start_level == 2


@pytest.mark.parametrize(
    ("need", "level"),
    [
        (measured(800), 0),  # 800 + 20% = 960 <= 1000
        (measured(834), 1),  # 834 + 20% = 1000.8 > 1000
        (measured(500, 545), 0),  # 545 + 10% = 599.5 <= 600
        (measured(500, 546), 1),  # 546 + 10% = 600.6 > 600
        # a bound needs *more* than itself plus headroom: 1000 x 1.2 = 1200 is not enough
        (Need(Figure(1000, lower_bound=True), None), 1),
        (Need(None, Figure(600, lower_bound=True)), 1),  # 660 s < level 1's 30m
    ],
)
def test_headroom(need, level) -> None:
    assert size([need], LADDER).start_level == level


def test_a_bound_exactly_at_the_headroom_is_not_covered() -> None:
    levels = {0: Level(mem_mb=1000), 1: Level(mem_mb=1200), 2: Level(mem_mb=1201)}
    assert size([Need(Figure(1000, lower_bound=True))], levels).start_level == 2
    assert size([Need(Figure(1000))], levels).start_level == 1  # a measurement: >= is enough


def test_a_level_that_does_not_set_a_resource_is_not_judged_on_it() -> None:
    levels = {0: Level(mem_mb=1000), 1: Level(mem_mb=4000)}  # no time on either
    assert size([measured(900, 86_400)], levels).start_level == 1


def test_no_level_fits_start_at_the_top_and_add_a_level() -> None:
    needs = [Need(Figure(8000, lower_bound=True), Figure(3500))] * 2 + [measured(100, 10)] * 3
    s = size(needs, LADDER)
    assert (s.verdict, s.start_level, s.level) == (Verdict.NONE_FITS, 2, LADDER[2])
    # over 8000M x 1.2 = 9600M, in steps of 100M: 9700M; 3500 s x 1.1 = 3850 s: 65 minutes
    assert s.new_level == Level(partition="big", mem_mb=9700, time_s=3900)
    assert ladder_line(s.new_level) == '- {partition: big, mem: 9700M, time: "01:05:00"}'
    assert s.mem is not None and s.mem.figure.covered_by(9700, 0.2)


def test_a_new_level_never_lowers_what_the_top_has() -> None:
    s = size([measured(9000, 10)], LADDER)  # time: 11 s, far below the top's hour
    assert s.new_level == Level(partition="big", mem_mb=10_800, time_s=3600)


def test_without_evidence_the_lowest_level_given() -> None:
    levels = {2: LADDER[2]}
    assert size([], levels).start_level == 2


# ---------------------------------------------------------------- the evidence


def test_evidence_names_chains_tasks_figures_and_the_level() -> None:
    needs = [measured(412, 25)] * 6 + [Need(Figure(150, lower_bound=True), Figure(8))] * 2
    s = size(needs, {0: Level(mem_mb=150, time_s=120), 1: Level(partition="week", mem_mb=700)})
    assert evidence(s, ["20261203-101500-ab12"]) == (
        "8 tasks of 1 earlier chain of this script (20261203-101500-ab12): "
        "p95 MaxRSS 412M + 20% = 495M, p95 Elapsed 25s + 10% = 28s; "
        "level 1 (700M, week) is the lowest that covers them"
    )


def test_evidence_of_a_lower_bound_and_of_many_chains() -> None:
    s = size([Need(Figure(150, lower_bound=True), None)], LADDER)
    chains = [f"2026120{i}-000000-abcd" for i in range(1, 6)]
    assert evidence(s, chains) == (
        "1 task of 5 earlier chains of this script (20261201-000000-abcd, "
        "20261202-000000-abcd, 20261203-000000-abcd and 2 more): "
        "p95 memory over 150M (OUT_OF_MEMORY there) + 20% = over 180M; "
        "level 0 (1000M, 10m, small) is the lowest that covers them"
    )


def test_evidence_without_history() -> None:
    assert evidence(size([], LADDER), []) == "no earlier chain of this script: level 0"
    assert evidence(size([], LADDER), ["c1"]) == (
        "1 earlier chain of this script (c1), but no task of them completed, ran out of memory "
        "or timed out: level 0"
    )


def test_evidence_when_no_level_fits() -> None:
    s = size([measured(9000, 10)], LADDER)
    assert evidence(s, ["c1"]).endswith(
        "no level covers them, not even the top, level 2 (8000M, 1h, big): start there and "
        'add a level above it: - {partition: big, mem: 10800M, time: "01:00:00"}'
    )


def test_sizing_json() -> None:
    s = size([Need(Figure(150, lower_bound=True), Figure(25))], LADDER)
    assert isinstance(s, Sizing)
    assert sizing_json(s) == {
        "verdict": "fits",
        "start_level": 0,
        "option": "--start-level 0",
        "tasks": 1,
        "memory": {
            "p95_mb": 150.0,
            "lower_bound": True,
            "tasks": 1,
            "lower_bounds": 1,
            "headroom": 0.2,
            "need_mb": 180.0,
        },
        "time": {
            "p95_s": 25.0,
            "lower_bound": False,
            "tasks": 1,
            "lower_bounds": 0,
            "headroom": 0.1,
            "need_s": 27.5,
        },
        "level": {"partition": "small", "mem_mb": 1000, "time_s": 600},
        "new_level": None,
    }
