"""Scenario b: a mixed array in three modes, one after another on the same cluster.

    python benchmarks/mixed_array.py [--tasks 100]   # alone: writes results/bench-mixed.json

The array (benchmarks/jobs/mixed-job.sh with benchmarks/jobs/mixed-ladder.yaml)
has, by index % 5, quick, OOM-once, OOM-twice, TIMEOUT-once and code-error
tasks. Modes:

* rolling (step): our default, failed tasks are resubmitted at the next poll;
* rounds (step): ``--rounds``, a submission's failures are resubmitted only once all
  of its tasks have ended;
* rolling (skip): the same ladder with ``escalation: skip``.

For each: makespan, the lower bound (longest chain of one task's attempts), the
capacity bound, failed core-seconds, and every Slurm command (wrappers on PATH),
per poll of the monitor.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import harness
import metrics

MIN_POLL = 2.0
ROLLING, ROUNDS, SKIP = "rolling (step)", "rounds (step)", "rolling (skip)"


def ladder_for(mode: str, work: Path) -> Path:
    src = harness.JOBS / "mixed-ladder.yaml"
    if mode != SKIP:
        return src
    text = src.read_text()
    assert "\nescalation: step\n" in text, "mixed-ladder.yaml must say `escalation: step`"
    dst = work / "mixed-ladder-skip.yaml"
    dst.write_text(text.replace("\nescalation: step\n", "\nescalation: skip\n"))
    return dst


def run_mode(mode: str, work: Path, tag: str, tasks: int) -> dict:  # type: ignore[type-arg]
    slug = {ROLLING: "rolling", ROUNDS: "rounds", SKIP: "skip"}[mode]
    d = work / slug
    d.mkdir(parents=True)
    name = f"bench-{tag}-mixed-{slug}"
    calls_log = d / "calls.log"
    env = harness.wrapped_env(
        harness.make_wrappers(d / "bin", calls_log), {"SLURM_ESCALATE_HOME": str(d / "state")}
    )
    own = ["--config", str(ladder_for(mode, work)), "--min-poll", f"{MIN_POLL:g}", "-v"]
    if mode == ROUNDS:
        own.append("--rounds")
    argv = [
        harness.our_command(),
        *own,
        f"--job-name={name}",
        f"--array=0-{tasks - 1}",
        f"--output={d}/%x-%a.out",
        str(harness.JOBS / "mixed-job.sh"),
    ]
    harness.log(f"mixed array, {mode}: {tasks} tasks")
    since = time.time()
    with harness.Interference("bench-") as seen:
        r = harness.run_measured(argv, env=env, cwd=d, output=d / "tool.out", timeout=1800)
    harness.cancel_leftovers(name)
    text, attempts = harness.sacct_attempts(name, since)
    (d / "sacct.txt").write_text(text)
    calls = metrics.parse_call_log(calls_log.read_text())
    polls = harness.polls_from_monitor_log(d / "state")
    s = metrics.summarize(attempts, cores=harness.cluster_cores(), tool_exit=r.exited)
    harness.log(
        f"  exit {r.returncode}: makespan {s['makespan_s']} s, lower bound "
        f"{s['lower_bound_s']} s, failed core-s {s['failed_core_s']}, {polls} polls"
    )
    return {
        **s,
        **harness.as_dict(r),
        **metrics.poll_budget(calls, polls),
        "job_name": name,
        "slurm_calls": metrics.count_calls(calls),
        "slurm_calls_total": len(calls),
        "notes": seen.notes(mode),
    }


def run(work: Path, tag: str, tasks: int, modes: list[str] | None = None) -> dict:  # type: ignore[type-arg]
    work.mkdir(parents=True, exist_ok=True)
    has_rounds = "--rounds" in harness.our_help()
    wanted = modes or [ROLLING, ROUNDS, SKIP]
    results, notes = {}, []
    for mode in wanted:
        if mode == ROUNDS and not has_rounds:
            notes.append("rounds mode not run: this sbatch_escalate has no --rounds option")
            continue
        notes += harness.wait_for_quiet_cluster()
        results[mode] = run_mode(mode, work, tag, tasks)
        notes += results[mode].pop("notes")
    ratios = {}
    if ROLLING in results and ROUNDS in results:
        ratios["makespan rolling / rounds"] = metrics.ratio(
            results[ROLLING]["makespan_s"], results[ROUNDS]["makespan_s"]
        )
    if ROLLING in results:
        ratios["makespan rolling / lower bound"] = results[ROLLING]["makespan_over_lower_bound"]
        ratios["makespan rolling / max(bounds)"] = results[ROLLING]["makespan_over_best_bound"]
    if ROLLING in results and SKIP in results:
        ratios["failed core-s skip / step"] = metrics.ratio(
            results[SKIP]["failed_core_s"], results[ROLLING]["failed_core_s"]
        )
        ratios["makespan skip / step"] = metrics.ratio(
            results[SKIP]["makespan_s"], results[ROLLING]["makespan_s"]
        )
    return {
        **harness.stamp(),
        "description": (
            f"{tasks} tasks of `benchmarks/jobs/mixed-job.sh`, by index % 5: quick (10 s), "
            "OOM-once (needs 315 MB, 20 s), OOM-twice (needs 600 MB, 40 s), TIMEOUT-once "
            "(100 s) and code error (exit 3 after 3 s); ladder "
            "`benchmarks/jobs/mixed-ladder.yaml` (300M/1 min on devel,day,week; 330M/2 min; "
            f"800M/3 min on day,week: 22 tasks fit at once at 300-330M, 12 at 800M); "
            f"`--min-poll {MIN_POLL:g}`. Modes ran one after another "
            f"on the same {harness.cluster_cores()}-core cluster. Makespan: first Submit to "
            "last End; lower bound: the longest sum of one task's attempts' Elapsed; "
            "capacity bound: all attempts' core-seconds / cores."
        ),
        "tasks": tasks,
        "modes": results,
        "ratios": ratios,
        "notes": notes,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", type=int, default=100)
    ap.add_argument(
        "--mode",
        action="append",
        choices=[ROLLING, ROUNDS, SKIP],
        help="run only this mode (repeatable)",
    )
    args = ap.parse_args()
    tag = time.strftime("%H%M%S")
    work = harness.WORK_ROOT / f"run-{time.strftime('%Y%m%d-%H%M%S')}" / "mixed"
    result = run(work, tag, args.tasks, args.mode)
    harness.RESULTS.mkdir(parents=True, exist_ok=True)
    out = harness.RESULTS / "bench-mixed.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["ratios"], indent=2))
    harness.log(f"wrote {out}")


if __name__ == "__main__":
    main()
