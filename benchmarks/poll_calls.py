"""Slurm calls per poll for a large chain, on the real local cluster (also the soak test).

Submits a FAILING_EVERY-th-task-fails array of N tasks through the real
SlurmClient with a counting runner, monitors it to the end, and prints how
many sacct/sbatch/scontrol calls were made per poll, and the time spent
parsing sacct output per poll. Run from the repository root, cluster up:

    python benchmarks/poll_calls.py --tasks 1000
    python benchmarks/poll_calls.py --tasks 2000    # the soak: no task lost, RSS flat
    python benchmarks/poll_calls.py --tasks 10500 --min-poll 5   # past MaxArraySize (2001)
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from loguru import logger

from slurm_escalate.engine.monitor import PollReport
from slurm_escalate.service import prepare as app
from slurm_escalate.slurm.client import SlurmCommands
from slurm_escalate.slurm.runner import SubprocessRunner
from slurm_escalate.state.store import ChainStore

SCRIPT = """#!/bin/bash
if [ $((SLURM_ARRAY_TASK_ID % {every})) -eq 8 ] && [ "$SLURM_ESCALATE_LEVEL" = 0 ]; then
    python3 -c 'b = bytearray(300 * 1024 * 1024); b[::4096] = b"x" * len(b[::4096])'
fi
"""
LADDER = """levels:
  - {partition: "devel,day,week", mem: 100M, time: "00:01:00"}
  - {partition: "devel,day,week", mem: 500M, time: "00:01:00"}
"""


class TimedRunner(SubprocessRunner):
    def __init__(self) -> None:
        super().__init__()
        self.seconds: Counter[str] = Counter()

    def run(self, argv, **kw):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        try:
            return super().run(argv, **kw)
        finally:
            self.seconds[os.path.basename(argv[0])] += time.perf_counter() - t0


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=1000)
    ap.add_argument("--every", type=int, default=10, help="every Nth task (index %% N == 8) OOMs")
    ap.add_argument("--min-poll", type=float, default=2.0)
    args = ap.parse_args()
    logger.remove()
    work = Path(tempfile.mkdtemp(prefix="poll-calls-"))
    (work / "job.sh").write_text(SCRIPT.format(every=args.every))
    (work / "ladder.yaml").write_text(LADDER)
    runner = TimedRunner()
    client = SlurmCommands(runner)
    store = ChainStore(work / "state")
    opts = app.SubmitOptions(config="ladder.yaml", min_poll=args.min_poll)
    tokens = [f"--array=0-{args.tasks - 1}", "--output=/dev/null", "job.sh"]
    prepared = app.prepare(tokens, opts, client, str(work))
    before = Counter(runner.calls)
    chain = app.create_chain(prepared, opts, store, str(work), time.time())
    polls: list[tuple[Counter[str], PollReport]] = []
    last = Counter(runner.calls)

    def on_poll(chain, report):  # type: ignore[no-untyped-def]
        nonlocal last
        now = Counter(runner.calls)
        polls.append((now - last, report))
        last = now

    monitor = app.make_monitor(chain, prepared, store, client, os.environ, on_poll=on_poll)
    rss_start = _rss_mb()
    t0 = time.time()
    monitor.start()
    last = Counter(runner.calls)
    first_sbatch = last["sbatch"] - before["sbatch"]
    state = monitor.run(threading.Event())
    wall = time.time() - t0
    sacct_per_poll = Counter(c["sacct"] for c, _ in polls)
    print(f"tasks: {args.tasks}; chain {state.value} in {wall:.0f}s; polls: {len(polls)}")
    print(f"set-up calls before the first sbatch: {dict(before)}")
    print(f"sacct calls per poll -> number of polls: {dict(sacct_per_poll)}")
    print(
        f"sbatch calls in all: {runner.calls['sbatch']} ({first_sbatch} for the first "
        f"submission, {runner.calls['sbatch'] - first_sbatch} resubmissions)"
    )
    per_poll = Counter(c["sbatch"] for c, _ in polls)
    print(f"sbatch calls per poll -> number of polls: {dict(sorted(per_poll.items()))}")
    print(f"scontrol calls in all: {runner.calls['scontrol']}")
    mean = runner.seconds["sacct"] / max(1, runner.calls["sacct"])
    print(f"mean sacct wall time per poll: {mean:.3f}s")
    print(f"monitor RSS: {rss_start:.1f} MB at start, {_rss_mb():.1f} MB at end")
    counts = Counter(t.state.value for t in monitor.chain.tasks)
    print(f"task states: {dict(counts)}")


if __name__ == "__main__":
    main()
