"""Scenario a: checkpoint-resume, sbatch_escalate against slurm-longrun on the same job.

    python benchmarks/checkpoint_resume.py   # alone: writes results/bench-checkpoint.json

The job (benchmarks/jobs/checkpoint-job.sh) needs 100 s of work, checkpoints after
every second and has a 1-minute limit, so it needs two or three attempts. Both
tools run at the same moment, each with its own job name, checkpoint directory
and counting wrappers on PATH, so they see the same cluster and the same
time-limit sweeps of slurmctld:

* ours: ``sbatch_escalate --config checkpoint-ladder.yaml --min-poll 2`` (TIMEOUT: resubmit)
* theirs: ``sbatch_longrun`` from PyPI's slurm-longrun, installed into its own
  virtualenv by this script (never a dependency of the project)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import harness
import metrics

LONGRUN_VERSION = "0.1.4"
MIN_POLL = 2.0
UNITS, SECONDS_PER_UNIT = 100, 1
SBATCH = ["--partition=devel", "--mem=100M", "--time=1"]
OURS, THEIRS = "slurm-escalate", "slurm-longrun"


def longrun_venv(root: Path) -> Path:
    """``sbatch_longrun`` from its own virtualenv (made once, reused while the version matches)."""
    venv = root / f"longrun-venv-{LONGRUN_VERSION}"
    exe = venv / "bin" / "sbatch_longrun"
    if exe.exists():
        return exe
    harness.log(f"installing slurm-longrun=={LONGRUN_VERSION} into {venv}")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [
            str(venv / "bin" / "pip"),
            "install",
            "-q",
            "--disable-pip-version-check",
            f"slurm-longrun=={LONGRUN_VERSION}",
        ],
        check=True,
    )
    return exe


def _plan(tool: str, d: Path, name: str, longrun: Path) -> tuple[list[str], dict[str, str]]:
    d.mkdir(parents=True)
    # one user's runs share one state home (as they would), so what one chain learned
    # about the cluster (the time-limit sweep) serves the next
    env = harness.wrapped_env(
        harness.make_wrappers(d / "bin", d / "calls.log"),
        {"SLURM_ESCALATE_HOME": str(d.parent / "ours-state")},
    )
    sbatch = [f"--job-name={name}", f"--output={d}/%x-%j.out", *SBATCH]
    job = [
        str(harness.JOBS / "checkpoint-job.sh"),
        str(d / "checkpoint"),
        str(UNITS),
        str(SECONDS_PER_UNIT),
    ]
    if tool == OURS:
        ladder = harness.JOBS / "checkpoint-ladder.yaml"
        argv = [
            harness.our_command(),
            "--config",
            str(ladder),
            "--min-poll",
            f"{MIN_POLL:g}",
            "-v",
            *sbatch,
            *job,
        ]
    else:
        argv = [str(longrun), "--max-restarts", "10", "--use-verbosity", "VERBOSE", *sbatch, *job]
    return argv, env


def _measure(tool: str, d: Path, name: str, r: harness.ToolRun, since: float) -> dict:  # type: ignore[type-arg]
    harness.cancel_leftovers(name)
    text, attempts = harness.sacct_attempts(name, since)
    (d / "sacct.txt").write_text(text)
    calls = metrics.parse_call_log((d / "calls.log").read_text())
    s = metrics.summarize(attempts, cores=1, tool_exit=r.exited)
    progress = d / "checkpoint" / "progress"
    entry = {
        **s,
        **harness.as_dict(r),
        "job_name": name,
        "work_done_units": int(progress.read_text()) if progress.exists() else 0,
        "slurm_calls": metrics.count_calls(calls),
        "slurm_calls_total": len(calls),
        "detection_latencies_s": [*s["resubmit_latencies_s"], s["end_latency_s"]],
    }
    if tool == OURS:
        entry.update(metrics.poll_budget(calls, _polls(d.parent / "ours-state", name)))
    harness.log(
        f"  {name}: exit {r.returncode}, makespan {s['makespan_s']} s, "
        f"{s['attempts']} attempts, {len(calls)} Slurm commands"
    )
    return entry


def _polls(home: Path, name: str) -> int:
    """Polls of this run's chain (the home is shared by the runs of one benchmark)."""
    for log in (home / "chains").glob("*/monitor.log"):
        if name in log.read_text(errors="replace"):
            return harness.polls_from_monitor_log(log.parent.parent.parent, log.parent.name)
    return 0


def _median(values: list) -> float | None:  # type: ignore[type-arg]
    return metrics.median([v for v in values if v is not None])


def combine(entries: list[dict]) -> dict:  # type: ignore[type-arg]
    """One tool over its repeats: medians of the per-run numbers, detections pooled."""
    out: dict = {"runs": len(entries)}  # type: ignore[type-arg]
    for key in (
        "makespan_s",
        "slurm_span_s",
        "makespan_over_slurm_span",
        "wall_s",
        "attempts",
        "slurm_calls_total",
        "cpu_self_s",
        "cpu_total_s",
        "maxrss_mb",
        "sacct_per_poll",
        "polls",
    ):
        if all(key in e for e in entries):
            out[key] = _median([e[key] for e in entries])
    pooled = [x for e in entries for x in e["detection_latencies_s"]]
    out["detection_latencies_s"] = pooled
    out["detection_latency_median_s"] = _median(pooled)
    out["detection_latency_max_s"] = max(pooled) if pooled else None
    calls: dict[str, int] = {}
    for e in entries:
        for k, v in e["slurm_calls"].items():
            calls[k] = calls.get(k, 0) + v
    out["slurm_calls"] = dict(sorted(calls.items()))
    for key in ("per_task_calls", "scontrol_in_loop", "scontrol_show_job_in_loop"):
        if all(key in e for e in entries):
            out[key] = sum(e[key] for e in entries)
    if all("max_sbatch_per_level_per_poll" in e for e in entries):
        out["max_sbatch_per_level_per_poll"] = max(
            e["max_sbatch_per_level_per_poll"] for e in entries
        )
        out["sacct_per_poll"] = max(e["sacct_per_poll"] for e in entries)
    out["all_work_done"] = all(e["work_done_units"] == UNITS for e in entries)
    return out


def run(work: Path, tag: str, repeats: int = 3, stagger_s: float = 10.0) -> dict:  # type: ignore[type-arg]
    """``repeats`` pairs, each pair's two tools started together, pairs ``stagger_s`` apart
    (so they meet slurmctld's 30-second time-limit sweep at different phases)."""
    longrun = longrun_venv(harness.WORK_ROOT)
    plans = []
    for i in range(repeats):
        for tool in (OURS, THEIRS):
            d = work / f"{'ours' if tool == OURS else 'longrun'}-{i + 1}"
            name = f"bench-{tag}-ckpt{i + 1}-{'ours' if tool == OURS else 'longrun'}"
            argv, env = _plan(tool, d, name, longrun)
            plans.append((i, tool, d, name, argv, env))
    runs: dict[str, harness.ToolRun] = {}

    def go(name: str, argv: list[str], env: dict[str, str], d: Path) -> None:
        runs[name] = harness.run_measured(argv, env=env, cwd=d, output=d / "tool.out", timeout=900)

    harness.log(
        f"checkpoint-resume: {repeats} pairs of {OURS} and {THEIRS}, "
        f"{stagger_s:g} s apart ({UNITS} x {SECONDS_PER_UNIT} s of work, 1-minute limit)"
    )
    since = time.time()
    threads = []
    with harness.Interference("bench-") as seen:
        for i, _tool, d, name, argv, env in plans:
            wait = since + i * stagger_s - time.time()
            if wait > 0:
                time.sleep(wait)
            t = threading.Thread(target=go, args=(name, argv, env, d))
            t.start()
            threads.append(t)
        for t in threads:
            t.join()

    pairs: list[dict] = [{} for _ in range(repeats)]  # type: ignore[type-arg]
    for i, tool, d, name, _argv, _env in plans:
        pairs[i][tool] = _measure(tool, d, name, runs[name], since)
    per_pair = [
        {
            "makespan ours / longrun": metrics.ratio(
                p[OURS]["makespan_s"], p[THEIRS]["makespan_s"]
            ),
            "time to result ours / longrun": metrics.ratio(p[OURS]["wall_s"], p[THEIRS]["wall_s"]),
            "Slurm commands ours / longrun": metrics.ratio(
                p[OURS]["slurm_calls_total"], p[THEIRS]["slurm_calls_total"]
            ),
            "monitor CPU ours / longrun": metrics.ratio(
                p[OURS]["cpu_self_s"], p[THEIRS]["cpu_self_s"]
            ),
            "makespan ours / Slurm span": p[OURS]["makespan_over_slurm_span"],
        }
        for p in pairs
    ]
    ratios = {k: metrics.ratio(_median([r[k] for r in per_pair]), 1) for k in per_pair[0]}
    return {
        **harness.stamp(),
        "description": (
            f"One job, {UNITS} x {SECONDS_PER_UNIT} s of work with a checkpoint after each unit, "
            f"`{' '.join(SBATCH)}`; Slurm ends a TIMEOUT 0-30 s after the limit (its "
            "time-limit sweep) plus KillWait. "
            f"{OURS}: `--min-poll {MIN_POLL:g}`, ladder `benchmarks/jobs/checkpoint-ladder.yaml` "
            f"(TIMEOUT: resubmit). {THEIRS} {LONGRUN_VERSION} from PyPI in its own venv. "
            f"{repeats} pairs; in each pair both tools start together, pairs {stagger_s:g} s "
            "apart. Numbers are medians over the pairs (detections pooled); the ratio "
            "column divides those medians, the targets use the median of the per-pair "
            "ratios (table below). Slurm commands counted by wrappers "
            "on PATH. Detection latency: each next Submit minus the previous End (sacct, 1 s "
            "resolution), then the tool's exit minus the last End."
        ),
        "tools": {tool: combine([p[tool] for p in pairs]) for tool in (OURS, THEIRS)},
        "pairs": pairs,
        "per_pair_ratios": per_pair,
        "ratios": ratios,
        "min_poll_s": MIN_POLL,
        "repeats": repeats,
        "notes": seen.notes("checkpoint"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3, help="pairs of runs (default 3)")
    args = ap.parse_args()
    tag = time.strftime("%H%M%S")
    work = harness.WORK_ROOT / f"run-{time.strftime('%Y%m%d-%H%M%S')}" / "checkpoint"
    for note in harness.wait_for_quiet_cluster():
        harness.log(note)
    result = run(work, tag, repeats=args.repeats)
    harness.RESULTS.mkdir(parents=True, exist_ok=True)
    out = harness.RESULTS / "bench-checkpoint.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["ratios"], indent=2))
    harness.log(f"wrote {out}")


if __name__ == "__main__":
    main()
