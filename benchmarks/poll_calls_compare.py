"""The 10,500-task run on the real local cluster, previous release and new side by side.

Runs each side's own ``benchmarks/poll_calls.py`` (which drives the monitor in-process,
with no log sink, so what the process writes is its chain state) at the same time, on
the same cluster, and records per side, from the kernel at the process's exit:
- bytes written (``/proc/self/io`` wchar and write_bytes),
- CPU seconds (user + system, ``getrusage``),
- the size of its state directory at the end,
and the poll_calls report itself. Sides are directories holding ``benchmarks/poll_calls.py``
and a ``.venv`` with that release installed, as ``benchmarks/state_cost.py`` builds them:

    python benchmarks/state_cost.py --new-commit HEAD      # builds both under /tmp/...
    python benchmarks/poll_calls_compare.py --prev /tmp/slurm-escalate-bench/prev/<sha> \\
        --new /tmp/slurm-escalate-bench/prev/<sha> [--tasks 10500 --min-poll 5]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"

# Runs poll_calls.py in this process and reports what the kernel counted at exit.
WRAPPER = r"""
import atexit, json, os, resource, runpy, sys
def report():
    io = dict(l.split(": ") for l in open("/proc/self/io").read().splitlines())
    ru = resource.getrusage(resource.RUSAGE_SELF)
    print("KERNEL " + json.dumps({"wchar": int(io["wchar"]), "write_bytes": int(io["write_bytes"]),
          "cpu_s": ru.ru_utime + ru.ru_stime, "maxrss_kb": ru.ru_maxrss}), flush=True)
atexit.register(report)
sys.argv = ["poll_calls.py", *sys.argv[1:]]
runpy.run_path("benchmarks/poll_calls.py", run_name="__main__")
"""


def tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--prev", required=True, help="directory of the previous release")
    ap.add_argument("--new", required=True, help="directory of the new release")
    ap.add_argument("--tasks", type=int, default=10_500)
    ap.add_argument("--min-poll", type=float, default=5.0)
    ap.add_argument("--out", default=str(RESULTS / "poll_calls_compare"))
    args = ap.parse_args()
    procs, tmps = {}, {}
    t0 = time.time()
    for name in ("previous", "new"):
        side = Path(getattr(args, "prev" if name == "previous" else "new"))
        tmps[name] = Path(tempfile.mkdtemp(prefix=f"poll-compare-{name}-"))
        argv = [
            str(side / ".venv/bin/python"),
            "-c",
            WRAPPER,
            "--tasks",
            str(args.tasks),
            "--min-poll",
            str(args.min_poll),
        ]
        env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "TMPDIR": str(tmps[name]), "HOME": "/root"}
        procs[name] = subprocess.Popen(
            argv, cwd=side, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    results: dict[str, dict] = {}
    for name, proc in procs.items():
        out, _ = proc.communicate()
        kernel = {}
        for line in out.splitlines():
            if line.startswith("KERNEL "):
                kernel = json.loads(line[len("KERNEL ") :])
        state = next(tmps[name].glob("poll-calls-*/state"), None)
        results[name] = {
            "returncode": proc.returncode,
            "report": [line for line in out.splitlines() if not line.startswith("KERNEL ")],
            **kernel,
            "state_dir_bytes": tree_bytes(state) if state else None,
        }
        print(f"{name}: exit {proc.returncode}, {kernel}", file=sys.stderr)
    p, n = results["previous"], results["new"]
    ratios = {
        key: (n[key] / p[key]) if p.get(key) and n.get(key) is not None else None
        for key in ("wchar", "write_bytes", "cpu_s", "maxrss_kb", "state_dir_bytes")
    }
    data = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "command": " ".join(["python benchmarks/poll_calls_compare.py", *sys.argv[1:]]),
        "sides": {"previous": args.prev, "new": args.new},
        "wall_s": time.time() - t0,
        "results": results,
        "ratios_new_over_previous": ratios,
    }
    Path(args.out).with_suffix(".json").write_text(json.dumps(data, indent=2) + "\n")
    lines = [
        "# 10,500-task chain on the local cluster: previous release and new, side by side",
        "",
        f"{data['date']}; `{data['command']}`; both ran at the same time on the same cluster.",
        "",
        "| measurement | previous | new | new / previous | target |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    targets = {"wchar": "≤ 1/50 (0.02)", "cpu_s": "≤ 1/5 (0.2)"}
    for key, label in (
        ("wchar", "bytes written by the monitor process (wchar; no log sink: its state)"),
        ("write_bytes", "bytes that reached the disk (write_bytes)"),
        ("cpu_s", "monitor CPU, user + system (s)"),
        ("maxrss_kb", "peak RSS (KiB)"),
        ("state_dir_bytes", "state directory at the end (bytes)"),
    ):
        r = ratios[key]
        lines.append(
            f"| {label} | {p.get(key)} | {n.get(key)} | "
            f"{'' if r is None else f'{r:.4f}'} | {targets.get(key, '')} |"
        )
    for name in ("previous", "new"):
        lines += ["", f"## {name}: poll_calls report", "", "```", *results[name]["report"], "```"]
    Path(args.out).with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
