"""Scale without a cluster (issue 5, scenario c; issue 12, part 2). One command, results
under benchmarks/results/.

    nice -n 19 python benchmarks/scale.py

1. Parse and classify sacct output for 100,000 array tasks with their steps
   (job row + .batch + .extern per task: 300,000 lines, recorded-style text), by the
   path the monitor takes every poll: SlurmCommands.query with the monitor's ``keep``
   (every task open), fed line by line, then classify() once per task record.
   ``--parse-only`` measures this ratio alone and writes nothing.
2. Compress and expand 1,000,000 indices (a stride pattern and a random 30% subset).
3. The monitor with 20,000 tasks in its state: RSS, and CPU seconds per poll
   (fake Slurm at the client boundary, so only our own work is measured).

Absolute times drift between machines and with load, so the two core targets are
ratios to a floor measured in the same run, on the same input, in alternation
(best of ROUNDS each; a load spike hits both sides alike):

* parse + classify, against a bare ``splitlines()`` plus ``split('|')`` of the same
  text, the fields kept (what any reader of the text must at least do), both with
  the garbage collector off (see side_by_side); the note under the table gives the
  ratio with it on, as a plain script runs, too;
* compress of the random million, against a plain ``','.join`` of the same indices.

The other times are wall-clock best of 3; the JSON records the machine, date and
commit beside them.
"""

from __future__ import annotations

import gc
import json
import math
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from slurm_escalate.arrays.spec import compress, expand
from slurm_escalate.core.classify import classify
from slurm_escalate.core.models import Classification, ClusterLimits, Policy, SlurmState
from slurm_escalate.service import prepare as app
from slurm_escalate.slurm.client import SlurmCommands
from slurm_escalate.slurm.fastbuild import gc_paused
from slurm_escalate.slurm.runner import CommandResult
from slurm_escalate.state.store import ChainStore
from slurm_escalate.testing import FakeSlurm, FastClock, UnsimulatedRunner

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
ROUNDS = 7  # rounds of each target and its floor, in alternation
PARSE_TARGET = 1.5  # parse + classify / bare split (issue 12)
COMPRESS_TARGET = 5.0  # compress / join (issue 12)


def best_of(fn, n: int = 3) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


SACCT_JOB = "9000"  # the array job of sacct_text


def sacct_text(tasks: int) -> str:
    states = ["COMPLETED|0:0", "OUT_OF_MEMORY|0:125", "TIMEOUT|0:15", "FAILED|3:0"]
    lines = []
    for i in range(tasks):
        state = states[i % 37 % 4] if i % 37 < 4 else states[0]
        raw = 500000 + i
        start = "2026-11-22T10:00:00|2026-11-22T10:01:00"
        task = f"{SACCT_JOB}_{i}"
        lines.append(f"{task}|{raw}|{state}||00:01:00|00:10:00|{start}|n1|day|1000M|job")
        lines.append(f"{task}.batch|{raw}.batch|{state}|123456K|00:01:00||{start}|n1|||batch")
        lines.append(
            f"{task}.extern|{raw}.extern|COMPLETED|0:0|1024K|00:01:00||{start}|n1|||extern"
        )
    return "\n".join(lines) + "\n"


def side_by_side(
    fns: dict[str, Callable[[], object]], rounds: int = ROUNDS, collector: bool = False
) -> dict[str, float]:
    """Best wall-clock time of each function over ``rounds`` rounds, each round running
    all of them in turn, from a collected heap, with the result freed untimed.

    By default the garbage collector is off while they run: a collection that Python
    happens to start at the end of one of them (after a paused stretch, the floor's
    300,000 kept lists are walked) would be charged to that side alone.
    """
    best = dict.fromkeys(fns, math.inf)
    enabled = gc.isenabled()
    if collector:
        gc.enable()
    else:
        gc.disable()
    try:
        for _ in range(rounds):
            for name, fn in fns.items():
                gc.collect()
                t0 = time.perf_counter()
                result = fn()
                best[name] = min(best[name], time.perf_counter() - t0)
                del result
    finally:
        if enabled:
            gc.enable()
        else:
            gc.disable()
    return best


class CannedSacct(UnsimulatedRunner):
    """A CommandRunner whose every command prints ``text``, handed over line by line
    (``run_lines``, as for any runner that holds its output whole) as
    SubprocessRunner.run_lines hands over a real sacct's pipe; the pipe itself, I/O, is
    not measured: the floor starts from the same text in memory."""

    def __init__(self, text: str) -> None:
        self.text = text

    def run(self, argv: Sequence[str], **_: Any) -> CommandResult:
        return CommandResult(tuple(argv), 0, self.text, "")


def parse_and_classify(text: str, wanted: set[tuple[str, int | None]]) -> list[Classification]:
    """One poll's work on sacct's answer, as the monitor does it: ``SlurmCommands.query``
    with the monitor's ``keep`` (the tasks still open: here all of them) reads the lines
    as they arrive into task records (SacctReader), and each one is classified (as
    core.step does, once per record)."""
    client = SlurmCommands(CannedSacct(text))
    records = client.query([SACCT_JOB], lambda job, i: (job, i) in wanted)
    policy = Policy()
    return [classify(record, policy) for record in records]


def split_floor(text: str) -> list[list[str]]:
    """The floor of parse_and_classify: the lines cut into fields and kept, nothing else."""
    with gc_paused():
        return [line.split("|") for line in text.splitlines()]


def join_floor(indices: list[int]) -> str:
    """The floor of compress: the indices written out as a plain comma list."""
    return ",".join(map(str, indices))


def measure_parse() -> tuple[dict[str, float], dict[str, float]]:
    """Parse + classify and its floor side by side: with the collector off, and on."""
    text = sacct_text(100_000)
    wanted: set[tuple[str, int | None]] = {(SACCT_JOB, i) for i in range(100_000)}
    parse_pair = {
        "parse": lambda: parse_and_classify(text, wanted),
        "floor": lambda: split_floor(text),
    }
    return side_by_side(parse_pair), side_by_side(parse_pair, collector=True)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def monitor_with(tasks: int) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="scale-"))
    (work / "job.sh").write_text("#!/bin/bash\ntrue\n")
    (work / "ladder.yaml").write_text("levels:\n  - {mem: 1G}\n  - {mem: 2G}\n")
    slurm = FakeSlurm(lambda i, lv, a: (SlurmState.COMPLETED, "0:0"), run_polls=10**9)
    slurm.limits = lambda: ClusterLimits(max_array_size=tasks + 1)  # type: ignore[method-assign]
    opts = app.SubmitOptions(config="ladder.yaml", min_poll=1)
    prepared = app.prepare([f"--array=0-{tasks - 1}", "job.sh"], opts, slurm, str(work))
    store = ChainStore(work / "state")
    chain = app.create_chain(prepared, opts, store, str(work), time.time())
    monitor = app.make_monitor(chain, prepared, store, slurm, {}, clock=FastClock())
    before = rss_mb()
    monitor.start()
    cpu0 = time.process_time()
    polls = 10
    for _ in range(polls):  # every task RUNNING: a full sacct answer per poll, nothing final
        monitor.poll_once()
    cpu = (time.process_time() - cpu0) / polls
    return {
        "tasks": tasks,
        "rss_mb_before_chain": round(before, 1),
        "rss_mb_with_chain": round(rss_mb(), 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "cpu_s_per_poll": round(cpu, 3),
    }


def main() -> None:
    if sys.argv[1:2] == ["--monitor-only"]:  # a fresh process, so RSS is the monitor's alone
        print(json.dumps(monitor_with(int(sys.argv[2]))))
        return
    if sys.argv[1:2] == ["--parse-only"]:  # the parse + classify ratio alone; writes nothing
        parse, _ = measure_parse()
        print(
            f"parse + classify {parse['parse']:.3f} s, bare split {parse['floor']:.3f} s, "
            f"ratio {parse['parse'] / parse['floor']:.2f}"
        )
        return
    child = subprocess.run(
        [sys.executable, __file__, "--monitor-only", "20000"],
        capture_output=True,
        text=True,
        check=True,
    )
    mon = json.loads(child.stdout.strip().splitlines()[-1])
    parse, parse_gc = measure_parse()
    parse_s = parse["parse"]
    stride = list(range(3, 3_000_000, 3))[:1_000_000]
    rng = random.Random(1)
    subset = sorted(rng.sample(range(3_333_334), 1_000_000))
    compress_stride = best_of(lambda: compress(stride))
    packing = side_by_side(
        {"compress": lambda: compress(subset), "floor": lambda: join_floor(subset)}
    )
    compress_random = packing["compress"]
    spec_random = compress(subset)
    expand_random = best_of(lambda: expand(spec_random))
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    results = {
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus, "
        f"Python {platform.python_version()}",
        "date": datetime.now().isoformat(timespec="seconds"),
        "commit": commit,
        "rounds": ROUNDS,
        "parse_classify_100k_tasks_s": round(parse_s, 3),
        "parse_floor_split_s": round(parse["floor"], 3),
        "parse_ratio_to_floor": round(parse_s / parse["floor"], 2),
        "parse_ratio_to_floor_collector_on": round(parse_gc["parse"] / parse_gc["floor"], 2),
        "compress_1M_stride_s": round(compress_stride, 3),
        "compress_1M_random_s": round(compress_random, 3),
        "compress_floor_join_s": round(packing["floor"], 3),
        "compress_ratio_to_floor": round(compress_random / packing["floor"], 2),
        "expand_1M_random_s": round(expand_random, 3),
        "random_spec_chars": len(spec_random),
        "monitor_20k": mon,
    }
    targets = [
        (
            "parse + classify 100,000 tasks / bare split of the same text (same run)",
            results["parse_ratio_to_floor"],
            PARSE_TARGET,
            "×",
        ),
        (
            "compress 1,000,000 indices (random 30%) / ','.join of them (same run)",
            results["compress_ratio_to_floor"],
            COMPRESS_TARGET,
            "×",
        ),
        ("parse + classify 100,000 tasks (300,000 sacct lines)", parse_s, 1.5, "s"),
        ("compress 1,000,000 indices (stride 3)", compress_stride, 1.0, "s"),
        ("compress 1,000,000 indices (random 30%)", compress_random, 1.0, "s"),
        ("expand 1,000,000 indices", expand_random, 1.0, "s"),
        ("monitor RSS with 20,000 tasks", mon["rss_mb_with_chain"], 80.0, "MB"),
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "scale.json").write_text(json.dumps(results, indent=2) + "\n")
    md = [
        f"# Scale without a cluster\n\n{results['machine']}; {results['date']}; commit {commit}\n",
        "| measurement | result | target | ratio to target |",
        "| --- | --- | --- | --- |",
    ]
    for name, value, target, unit in targets:
        md.append(f"| {name} | {value:.3f} {unit} | < {target:g} {unit} | {value / target:.2f} |")
    md.append(
        f"\nRatios: best of {ROUNDS} rounds, each running the target and its floor in turn on "
        f"the same input. Parse + classify (SlurmCommands.query with the monitor's keep, "
        f"then classify per task) {parse_s:.3f} s, bare split {parse['floor']:.3f} s; "
        f"compress {compress_random:.3f} s, join {packing['floor']:.3f} s. With the garbage "
        f"collector on, as a plain script runs (its walks over the floor's kept lists "
        f"counted): parse + classify {parse_gc['parse']:.3f} s, bare split "
        f"{parse_gc['floor']:.3f} s, ratio {results['parse_ratio_to_floor_collector_on']:.2f}."
    )
    md.append(f"\nMonitor CPU per poll with 20,000 running tasks: {mon['cpu_s_per_poll']} s.")
    (RESULTS / "scale.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
