"""benchmarks/metrics.py: sacct rows and Slurm call logs to the benchmark's numbers.

The sacct lines are recorded from benchmark runs on the local cluster
(``sacct -X -P -n --format=JobID,JobName,Submit,Start,End,Elapsed,State,AllocCPUS``
with SLURM_TIME_FORMAT=standard); the expected numbers were worked out by hand.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "metrics.py"
_spec = importlib.util.spec_from_file_location("bench_metrics", _PATH)
assert _spec is not None and _spec.loader is not None
m = importlib.util.module_from_spec(_spec)
sys.modules["bench_metrics"] = m  # dataclasses look their module up
_spec.loader.exec_module(m)

# Mixed array, rolling mode (tasks 0, 2, 3, 4 of a 20-task run): 2 is OOM-twice,
# 3 TIMEOUT-once, 4 a code error.
MIXED = """\
594_0|bench-mixed-rolling|2026-12-01T06:18:53|2026-12-01T06:18:53|2026-12-01T06:19:03|00:00:10|COMPLETED|1
594_2|bench-mixed-rolling|2026-12-01T06:18:53|2026-12-01T06:18:53|2026-12-01T06:19:09|00:00:16|OUT_OF_MEMORY|1
594_3|bench-mixed-rolling|2026-12-01T06:18:53|2026-12-01T06:18:53|2026-12-01T06:20:10|00:01:17|TIMEOUT|1
594_4|bench-mixed-rolling|2026-12-01T06:18:53|2026-12-01T06:18:53|2026-12-01T06:18:57|00:00:04|FAILED|1
614_2|bench-mixed-rolling|2026-12-01T06:19:11|2026-12-01T06:19:13|2026-12-01T06:19:31|00:00:18|OUT_OF_MEMORY|1
623_2|bench-mixed-rolling|2026-12-01T06:19:33|2026-12-01T06:19:35|2026-12-01T06:20:24|00:00:49|COMPLETED|1
628_3|bench-mixed-rolling|2026-12-01T06:20:23|2026-12-01T06:20:23|2026-12-01T06:22:03|00:01:40|COMPLETED|1
"""

# Checkpoint-resume: the same job under both tools, started together.
OURS = """\
579|bench-ckpt-ours|2026-12-01T06:15:45|2026-12-01T06:15:46|2026-12-01T06:17:10|00:01:24|TIMEOUT|1
592|bench-ckpt-ours|2026-12-01T06:17:21|2026-12-01T06:17:21|2026-12-01T06:17:38|00:00:17|COMPLETED|1
"""
LONGRUN = """\
578|bench-ckpt-longrun|2026-12-01T06:15:45|2026-12-01T06:15:46|2026-12-01T06:17:10|00:01:24|TIMEOUT|1
591|bench-ckpt-longrun|2026-12-01T06:17:16|2026-12-01T06:17:17|2026-12-01T06:17:34|00:00:17|COMPLETED|1
"""

# Rows that are not attempts, a cancelled task, a 4-core attempt, a multi-day Elapsed.
ODD = """\
700_[3-5]|odd|2026-12-01T07:00:00|Unknown|Unknown|00:00:00|PENDING|1
700_0|odd|2026-12-01T07:00:00|2026-12-01T07:00:01|2026-12-01T07:00:31|00:00:30|CANCELLED by 0|4
700_0.batch|batch|2026-12-01T07:00:01|2026-12-01T07:00:01|2026-12-01T07:00:31|00:00:30|CANCELLED|4
700_1|odd|2026-12-01T07:00:00|2026-12-01T07:00:01|2026-12-03T09:03:05|2-02:03:04|COMPLETED|4
"""


@pytest.mark.parametrize(
    ("text", "makespan", "lower_bound", "failed", "latencies", "final", "per_task"),
    [
        (
            MIXED,
            190,
            177,
            16 + 77 + 4 + 18,
            [2, 2, 13],
            {"COMPLETED": 3, "FAILED": 1},
            {1: 2, 2: 1, 3: 1},
        ),
        (OURS, 113, 84 + 17, 84, [11], {"COMPLETED": 1}, {2: 1}),
        (LONGRUN, 109, 84 + 17, 84, [6], {"COMPLETED": 1}, {2: 1}),
        (
            ODD,
            2 * 86400 + 2 * 3600 + 3 * 60 + 5,
            2 * 86400 + 7384,
            30 * 4,
            [],
            {"CANCELLED": 1, "COMPLETED": 1},
            {1: 2},
        ),
    ],
    ids=["mixed", "ours", "longrun", "odd-rows"],
)
def test_metrics_from_recorded_sacct(
    text: str,
    makespan: float,
    lower_bound: int,
    failed: int,
    latencies: list[float],
    final: dict[str, int],
    per_task: dict[int, int],
) -> None:
    attempts = m.parse_sacct_x(text)
    assert m.makespan(attempts) == makespan
    assert m.lower_bound(attempts) == lower_bound
    assert m.failed_core_seconds(attempts) == failed
    assert sorted(m.resubmit_latencies(attempts)) == latencies
    assert m.final_states(attempts) == final
    assert m.attempts_per_task(attempts) == per_task


def test_parse_drops_steps_and_pending_placeholders_and_reads_fields() -> None:
    attempts = m.parse_sacct_x(ODD)
    assert [a.job_id for a in attempts] == ["700_0", "700_1"]
    cancelled, long = attempts
    assert (cancelled.task, cancelled.state, cancelled.cpus, cancelled.core_s) == (
        0,
        "CANCELLED",
        4,
        120,
    )
    assert long.elapsed_s == 2 * 86400 + 2 * 3600 + 3 * 60 + 4
    assert m.parse_sacct_x(OURS)[0].task is None  # a plain job, not an array task


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("00:00:07", 7),
        ("01:02:03", 3723),
        ("12:34", 754),
        ("1-00:00:01", 86401),
        ("5", 5),
        ("00:00:01.500", 1),
    ],
)
def test_parse_elapsed(text: str, seconds: int) -> None:
    assert m.parse_elapsed(text) == seconds


def test_failed_core_seconds_by_state_splits_the_mixed_run() -> None:
    attempts = m.parse_sacct_x(MIXED)
    assert m.failed_core_seconds_by_state(attempts) == {
        "FAILED": 4,
        "OUT_OF_MEMORY": 16 + 18,
        "TIMEOUT": 77,
    }


def test_capacity_bound_is_core_seconds_over_cores() -> None:
    attempts = m.parse_sacct_x(MIXED)
    total = 10 + 16 + 77 + 4 + 18 + 49 + 100
    assert m.capacity_bound(attempts, cores=24) == pytest.approx(total / 24)


def test_a_running_attempt_has_no_makespan_yet() -> None:
    running = "900|x|2026-12-01T07:00:00|2026-12-01T07:00:01|Unknown|00:00:09|RUNNING|1\n"
    with pytest.raises(ValueError, match="ended"):
        m.makespan(m.parse_sacct_x(running))


def test_malformed_line_is_an_error_naming_the_format() -> None:
    with pytest.raises(ValueError, match="expected 8 fields"):
        m.parse_sacct_x("579|TIMEOUT|1\n")


def test_summarize_adds_the_tools_exit_as_the_last_detection() -> None:
    attempts = m.parse_sacct_x(LONGRUN)
    last_end = max(a.end for a in attempts)
    s = m.summarize(attempts, cores=1, tool_exit=last_end + 43.14)
    assert s["resubmit_latencies_s"] == [6.0]
    assert s["end_latency_s"] == 43.14
    assert s["detection_latency_median_s"] == pytest.approx((6 + 43.14) / 2, abs=0.05)
    assert s["detection_latency_max_s"] == 43.1
    assert s["makespan_over_lower_bound"] == round(109 / 101, 3)
    assert s["total_core_s"] == 101


# ------------------------------------------------------------------ Slurm call logs

# Recorded wrapper lines (argv shortened): our monitor's set-up, first submission and
# polls; one poll with two sbatch calls at level 2 (attempts 2 and 3), as skip can do.
CALLS = (
    "\n".join(
        "\t".join(fields)
        for fields in [
            ("1796105933.188", "-", "-", "scontrol --all --oneliner show partition"),
            ("1796105933.197", "-", "-", "scontrol --all --oneliner show node"),
            ("1796105933.209", "-", "-", "scontrol show config"),
            ("1796105933.251", "0", "1", "sbatch --parsable --array=0-19 job.sh"),
            ("1796105933.273", "-", "-", "sacct --noheader --parsable2 --jobs=594"),
            ("1796105951.600", "-", "-", "sacct --noheader --parsable2 --jobs=594"),
            ("1796105951.700", "1", "2", "sbatch --parsable --array=1-16:5,2-17:5 job.sh"),
            ("1796105973.600", "-", "-", "sacct --noheader --parsable2 --jobs=594,614"),
            ("1796105973.696", "2", "2", "sbatch --parsable --array=7 job.sh"),
            ("1796105973.699", "2", "3", "sbatch --parsable --array=2-17:5 job.sh"),
            ("1796105990.000", "-", "-", "sacct --noheader --parsable2 --jobs=594,614,623"),
        ]
    )
    + "\n"
)


@pytest.mark.parametrize(
    ("argv", "kind"),
    [
        (["sacct", "-j", "578"], "sacct"),
        (["/usr/bin/sbatch", "--parsable", "x.sh"], "sbatch"),
        (["scontrol", "show", "job", "578"], "scontrol show job"),
        (["scontrol", "--all", "--oneliner", "show", "partition"], "scontrol show partition"),
        (["scontrol", "-o", "show", "nodes"], "scontrol show node"),
        (["scontrol", "show", "config"], "scontrol show config"),
        (["scontrol", "requeue", "5"], "scontrol requeue"),
        (["squeue", "--noheader"], "squeue"),
    ],
)
def test_call_kind(argv: list[str], kind: str) -> None:
    assert m.call_kind(argv) == kind


def test_poll_budget_from_a_recorded_call_log() -> None:
    calls = m.parse_call_log(CALLS)
    assert m.count_calls(calls) == {
        "sacct": 4,
        "sbatch": 4,
        "scontrol show config": 1,
        "scontrol show node": 1,
        "scontrol show partition": 1,
    }
    b = m.poll_budget(calls, polls=4)
    assert b["setup_calls"] == {
        "sbatch": 1,
        "scontrol show config": 1,
        "scontrol show node": 1,
        "scontrol show partition": 1,
    }
    assert b["loop_calls"] == {"sacct": 4, "sbatch": 3}
    assert b["sacct_per_poll"] == 1.0
    assert b["max_sbatch_per_level_per_poll"] == 2  # level 2, attempts 2 and 3, one poll
    assert b["max_sbatch_per_level_attempt_per_poll"] == 1
    assert b["scontrol_in_loop"] == 0
    assert b["per_task_calls"] == 0


def test_poll_budget_counts_extra_sacct_calls_per_poll() -> None:
    calls = m.parse_call_log(CALLS)
    assert m.poll_budget(calls, polls=2)["sacct_per_poll"] == 2.0


@pytest.mark.parametrize(
    ("command", "per_task"),
    [
        ("sacct --noheader --jobs=594,614", 0),
        ("sacct -j 578 --format=JobID -P", 0),
        ("sacct --noheader --jobs=594_3", 1),
        ("sacct -j 594,594_7", 1),
        ("scontrol show job 578", 0),
        ("scontrol show job 594_3", 1),
    ],
)
def test_per_task_calls(command: str, per_task: int) -> None:
    calls = m.parse_call_log(f"1.0\t-\t-\t{command}\n")
    assert m.per_task_calls(calls) == per_task


# ---------------------------------------------------------------------- rendering


def _tool(text: str, exit_after_end: float, calls: dict[str, int]) -> dict[str, object]:
    attempts = m.parse_sacct_x(text)
    s = m.summarize(attempts, cores=1, tool_exit=max(a.end for a in attempts) + exit_after_end)
    return {
        **s,
        "wall_s": 115.0,
        "cpu_self_s": 0.5,
        "cpu_total_s": 0.7,
        "maxrss_mb": 31.0,
        "slurm_calls": calls,
        "slurm_calls_total": sum(calls.values()),
        "detection_latencies_s": [*s["resubmit_latencies_s"], s["end_latency_s"]],
    }


def test_render_markdown_puts_both_tools_and_their_ratio_side_by_side() -> None:
    results = {
        "machine": "vm x86_64",
        "date": "2026-12-01",
        "commit": "abc1234+dirty",
        "command": "python benchmarks/run.py",
        "targets": [
            {
                "name": "a. makespan ratio",
                "value": 1.037,
                "op": "<=",
                "limit": 0.8,
                "verdict": m.verdict(1.037, "<=", 0.8),
            },
            {
                "name": "a. commands ratio",
                "value": 0.955,
                "op": "<=",
                "limit": 1.0,
                "verdict": m.verdict(0.955, "<=", 1.0),
            },
        ],
        "checkpoint": {
            "date": "2026-12-01",
            "commit": "abc1234",
            "description": "same job",
            "tools": {
                "slurm-escalate": _tool(OURS, 2.15, {"sacct": 16, "sbatch": 2}),
                "slurm-longrun": _tool(
                    LONGRUN, 43.14, {"sacct": 10, "sbatch": 2, "scontrol show job": 10}
                ),
            },
        },
    }
    tools = results["checkpoint"]["tools"]  # type: ignore[index]
    results["checkpoint"]["pairs"] = [dict(tools)]  # type: ignore[index]
    md = m.render_markdown(results)
    assert "Commit: abc1234+dirty" in md
    # the per-pair table: makespans, their ratio, times to result, commands, detections
    assert "| 1 | 113 s | 109 s | 1.04 | 115 s | 115 s | 18 | 22 | 11.0 s, 2.15 s |" in md
    assert "| a. makespan ratio | 1.04 | <= 0.8 | **missed** |" in md
    assert "| a. commands ratio | 0.95 | <= 1.0 | met |" in md
    assert "| makespan (first Submit to last End) | 113 s | 109 s | 1.04 |" in md
    assert "| Slurm commands per run | 18 | 22 | 0.82 |" in md
    assert "sacct 10, sbatch 2, scontrol show job 10" in md
    detections = "| detection latencies (each resubmit, then the exit) |"
    assert f"{detections} 11.0 s, 2.15 s | 6.00 s, 43.1 s |" in md


@pytest.mark.parametrize(
    ("value", "op", "limit", "verdict"),
    [
        (0.75, "<=", 0.75, "met"),
        (0.76, "<=", 0.75, "**missed**"),
        (1.0, "<", 1.0, "**missed**"),
        (0.99, "<", 1.0, "met"),
        (None, "<=", 1.0, "not measured"),
    ],
)
def test_verdict(value: float | None, op: str, limit: float, verdict: str) -> None:
    assert m.verdict(value, op, limit) == verdict
