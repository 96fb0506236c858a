"""The benchmark harness: one command, every scenario, one JSON and one markdown table.

    python benchmarks/run.py                       # everything (about 20 minutes)
    python benchmarks/run.py --quick               # smoke run: 20-task mixed array
    python benchmarks/run.py --only checkpoint,mixed

Scenarios (each also runs alone, see its module):

* checkpoint  a. checkpoint-resume against slurm-longrun (benchmarks/checkpoint_resume.py)
* mixed       b. mixed array: rolling, --rounds, escalation skip (benchmarks/mixed_array.py)
* budget      the load budget of a 10,000-task chain at the default settings (load_sim.py)
* scale       c. scale without a cluster (benchmarks/scale.py, run as a subprocess)

Writes benchmarks/results/bench.json and bench.md (machine, date, commit), and the raw
sacct rows and Slurm call logs of the cluster runs under benchmarks/results/raw/ (scale.py's
own scale.json/scale.md are left as they were; this run's copies go to raw/ too). With
--only, the other scenarios' previous results are kept, each with its own date and commit.
The cluster scenarios wait until no pytest runs and the queue is empty (CI's disruptive
tests stop slurmctld), and note any other job that shared the cluster.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import checkpoint_resume
import harness
import load_sim
import metrics
import mixed_array

SCENARIOS = ("checkpoint", "mixed", "budget", "scale")
CLUSTER = ("checkpoint", "mixed")


def run_scale() -> dict:  # type: ignore[type-arg]
    """Run benchmarks/scale.py and read what it wrote. scale.json and scale.md belong to
    scale.py's owner: they are put back as they were, and this run's copies are kept as
    raw/scale-run.json and raw/scale-run.md."""
    harness.log("scale without a cluster: benchmarks/scale.py")
    owned = [harness.RESULTS / "scale.json", harness.RESULTS / "scale.md"]
    before = {p: p.read_bytes() if p.exists() else None for p in owned}
    raw = harness.RESULTS / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(
            [sys.executable, str(harness.REPO / "benchmarks" / "scale.py")],
            cwd=harness.REPO,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        data = json.loads(owned[0].read_text())
        table = owned[1].read_text()
        (raw / "scale-run.json").write_text(json.dumps(data, indent=2) + "\n")
        (raw / "scale-run.md").write_text(table)
    finally:
        for path, content in before.items():
            if content is None:
                path.unlink(missing_ok=True)
            else:
                path.write_bytes(content)
    rows = []
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or cells[0] in ("measurement", "---"):
            continue
        value, unit = cells[1].split(" ", 1)
        target = float(cells[2].lstrip("< ").split(" ", 1)[0])
        rows.append(
            {
                "name": cells[0],
                "value": float(value),
                "unit": unit,
                "target": target,
                "ratio": float(cells[3]),
            }
        )
    return {
        "date": data.get("date"),
        "commit": data.get("commit"),
        "machine": data.get("machine"),
        "rows": rows,
        "raw": data,
    }


def targets(results: dict) -> list[dict]:  # type: ignore[type-arg]
    out = []

    def add(name: str, value: float | None, op: str, limit: float) -> None:
        out.append(
            {
                "name": name,
                "value": value,
                "op": op,
                "limit": limit,
                "verdict": metrics.verdict(value, op, limit),
            }
        )

    ck = results.get("checkpoint")
    if ck:
        ours = ck["tools"]["slurm-escalate"]
        n = ck.get("repeats", 1)
        r = ck["ratios"]
        add(
            f"a. Slurm commands, ours / slurm-longrun (median of {n} pairs)",
            r["Slurm commands ours / longrun"],
            "<=",
            1.0,
        )
        add("a. detection latency median, ours (s)", ours["detection_latency_median_s"], "<=", 5)
        add(
            f"a. makespan / Slurm span, ours (median of {n})",
            r.get("makespan ours / Slurm span"),
            "<=",
            1.05,
        )
        add(
            f"a. makespan, ours / slurm-longrun (sacct: first Submit to last End; median of {n})",
            r["makespan ours / longrun"],
            "<=",
            1.0,
        )
        add(
            f"a. monitor CPU, ours / slurm-longrun (own process; median of {n})",
            r.get("monitor CPU ours / longrun"),
            "<=",
            1.0,
        )
    mx = results.get("mixed")
    if mx:
        r = mx["ratios"]
        add("b. makespan, rolling / rounds", r.get("makespan rolling / rounds"), "<=", 0.75)
        add(
            "b. makespan / max(capacity bound, lower bound) (rolling)",
            r.get("makespan rolling / max(bounds)"),
            "<=",
            1.2,
        )
        add("b. failed core-seconds, skip / step", r.get("failed core-s skip / step"), "<", 1.0)
    runs = []
    if ck:
        runs.append(ck["tools"]["slurm-escalate"])
    if mx:
        runs += list(mx["modes"].values())
    if runs:
        add(
            "load: sacct calls per poll (max over our cluster runs)",
            max(x["sacct_per_poll"] for x in runs),
            "<=",
            1.0,
        )
        add(
            "load: per-task Slurm calls (all our cluster runs)",
            sum(x["per_task_calls"] for x in runs),
            "<=",
            0,
        )
        add(
            "load: scontrol calls in the poll loop (all our cluster runs)",
            sum(x["scontrol_in_loop"] for x in runs),
            "<=",
            0,
        )
        add(
            "load: sbatch per target level per poll (max)",
            max(x["max_sbatch_per_level_per_poll"] for x in runs),
            "<=",
            1,
        )
    return out


def _tool_runs(results: dict) -> list[dict]:  # type: ignore[type-arg]
    runs = []
    for pair in results.get("checkpoint", {}).get("pairs", []):
        runs += list(pair.values())
    runs += list(results.get("mixed", {}).get("modes", {}).values())
    return runs


def statement(results: dict) -> str | None:  # type: ignore[type-arg]
    """The calls per hour of a 10,000-task chain at the default settings, in one sentence."""
    b = results.get("budget")
    if not b:
        return None
    wait, busy = b["phases"][0], b["phases"][1]
    return (
        f"A 10,000-task chain at the default settings (`--min-poll 30`, `--max-poll 300`) "
        f"costs {wait['sacct_per_hour']:g} sacct calls per hour while it waits and "
        f"{busy['sacct_per_hour']:g} sacct + {busy['sbatch_per_hour']:g} sbatch calls per hour "
        f"while tasks end at every poll (at most {busy['max_sbatch_per_poll']} sbatch in one "
        f"poll), {wait['sacct_per_poll']:g} sacct call per poll and "
        f"{wait['scontrol_in_loop'] + busy['scontrol_in_loop']} scontrol calls in the loop; "
        f"at start: {metrics.calls_text(wait['setup_calls'])}."
    )


def save_raw(work: Path, scenarios: list[str]) -> None:
    raw = harness.RESULTS / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for scenario in scenarios:
        if scenario not in CLUSTER:
            continue
        for old in raw.glob(f"{scenario}-*"):
            old.unlink()
        for run_dir in sorted((work / scenario).iterdir()):
            if not run_dir.is_dir() or not (run_dir / "calls.log").exists():
                continue
            for src, suffix in (("sacct.txt", "sacct.txt"), ("calls.log", "calls.log")):
                if (run_dir / src).exists():
                    shutil.copyfile(run_dir / src, raw / f"{scenario}-{run_dir.name}.{suffix}")


def render_only() -> None:
    path = harness.RESULTS / "bench.json"
    results = json.loads(path.read_text())
    results["targets"] = targets(results)
    results["statement"] = statement(results)
    path.write_text(json.dumps(results, indent=2) + "\n")
    (harness.RESULTS / "bench.md").write_text(metrics.render_markdown(results))
    harness.log(f"rewrote {harness.RESULTS / 'bench.md'} from {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description="Run the benchmarks; results in benchmarks/results/")
    ap.add_argument(
        "--only",
        default=",".join(SCENARIOS),
        help=f"comma-separated scenarios out of {','.join(SCENARIOS)}",
    )
    ap.add_argument(
        "--quick", action="store_true", help="smoke run: one checkpoint pair, a 20-task mixed array"
    )
    ap.add_argument("--tasks", type=int, help="tasks of the mixed array (default 100, 20 quick)")
    ap.add_argument(
        "--render",
        action="store_true",
        help="measure nothing: rewrite bench.md (and the targets) from bench.json",
    )
    args = ap.parse_args()
    if args.render:
        render_only()
        return
    wanted = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(wanted) - set(SCENARIOS))
    if unknown:
        ap.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    tasks = args.tasks or (20 if args.quick else 100)
    command = " ".join(["python benchmarks/run.py", *sys.argv[1:]])
    t0 = time.time()
    out_json = harness.RESULTS / "bench.json"
    previous = json.loads(out_json.read_text()) if out_json.exists() else {}
    results: dict = {k: previous[k] for k in SCENARIOS if k in previous and k not in wanted}  # type: ignore[type-arg]
    notes: list[str] = []
    tag = time.strftime("%H%M%S")
    work = harness.WORK_ROOT / f"run-{time.strftime('%Y%m%d-%H%M%S')}"
    harness.log(f"scenarios {', '.join(wanted)}; work directory {work}")
    if any(s in CLUSTER for s in wanted):
        subprocess.run(["sinfo"], check=True, stdout=subprocess.DEVNULL)
        notes += harness.wait_for_quiet_cluster()
    if "checkpoint" in wanted:
        results["checkpoint"] = checkpoint_resume.run(
            work / "checkpoint", tag, repeats=1 if args.quick else 3
        )
        notes += results["checkpoint"]["notes"]
    if "mixed" in wanted:
        results["mixed"] = mixed_array.run(work / "mixed", tag, tasks)
        notes += results["mixed"]["notes"]
    if "budget" in wanted:
        results["budget"] = load_sim.run()
    if "scale" in wanted:
        results["scale"] = run_scale()
    save_raw(work, wanted)
    results.update(harness.stamp())
    results["command"] = command
    results["duration_s"] = round(time.time() - t0)
    codes = sorted({c for r in _tool_runs(results) if (c := r.get("code", "")).startswith("ours")})
    if len(codes) > 1:
        notes.append(
            f"HEAD moved during the run: our tool ran from {len(codes)} commits "
            f"({', '.join(codes)})"
        )
    results["targets"] = targets(results)
    results["statement"] = statement(results)
    results["notes"] = notes
    harness.RESULTS.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps(results, indent=2) + "\n")
    md = metrics.render_markdown(results)
    (harness.RESULTS / "bench.md").write_text(md)
    print(md)
    harness.log(f"done in {results['duration_s']} s: {out_json} and bench.md")


if __name__ == "__main__":
    main()
