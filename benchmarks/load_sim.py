"""The load budget of a 10,000-task chain at the default settings, without a cluster.

    python benchmarks/load_sim.py     # alone; writes benchmarks/results/bench-budget.json

The real monitor (default ``--min-poll 30``, so ``--max-poll 300``) drives a
simulated Slurm through a fast-forward clock: each client call is one Slurm
command (the cluster scenarios check that mapping with wrappers on PATH).
Two phases of simulated time:

* waiting: 10,000 tasks run for 6 hours (8-hour limit) and nothing changes;
* finishing: 10,000 tasks end evenly over 2 hours, 10% of them OUT_OF_MEMORY at
  level 0, resubmitted to level 1 where they run 20 more minutes.

It counts calls per simulated hour and the most sbatch calls in any one poll.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path

import harness
from loguru import logger

from slurm_escalate.arrays.spec import expand
from slurm_escalate.core.models import (
    ClusterLimits,
    PartitionInfo,
    SacctRow,
    SlurmState,
    TaskRecord,
)
from slurm_escalate.engine.monitor import Clock
from slurm_escalate.service import prepare as app
from slurm_escalate.slurm.parse import Keep
from slurm_escalate.state.store import ChainStore

TASKS = 10_000
HOUR = 3600.0


class SimClock(Clock):
    def __init__(self) -> None:
        self.t = 1_790_000_000.0

    def now(self) -> float:
        return self.t

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        self.t += seconds
        return stop.is_set()


# (index, level) -> (seconds the attempt runs, its final state, "exit:signal")
Behaviour = Callable[[int, int], tuple[float, SlurmState, str]]


class SimSlurm:
    """A SlurmClient stand-in answering from ``behaviour`` at the clock's time."""

    def __init__(self, clock: SimClock, behaviour: Behaviour, timelimit_s: int) -> None:
        self.clock = clock
        self.behaviour = behaviour
        self.timelimit_s = timelimit_s
        self.calls: Counter[str] = Counter()
        self.jobs: dict[str, tuple[list[int], int, float]] = {}  # id -> (indices, level, t)
        self.next_id = 1000

    def submit(
        self, args: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None
    ) -> str:
        self.calls["sbatch"] += 1
        assert env is not None
        spec = next(a.split("=", 1)[1] for a in args if a.startswith("--array="))
        job_id = str(self.next_id)
        self.next_id += 1
        self.jobs[job_id] = (expand(spec), int(env["SLURM_ESCALATE_LEVEL"]), self.clock.now())
        return job_id

    def query(self, job_ids: Sequence[str], keep: Keep | None = None) -> list[TaskRecord]:
        """Like the real client: with ``keep``, the rows of tasks not kept are dropped, but
        for one job row per array (it shows the array is listed)."""
        self.calls["sacct"] += 1
        now = self.clock.now()
        records = []
        for job_id in job_ids:
            indices, level, t0 = self.jobs[job_id]
            start = datetime.fromtimestamp(t0).isoformat(timespec="seconds")
            shown = False
            for i in indices:
                if keep is not None and not keep(job_id, i):
                    if shown:
                        continue
                    shown = True
                runs_s, state, code = self.behaviour(i, level)
                if now < t0 + runs_s:
                    state, code = SlurmState.RUNNING, "0:0"
                exit_code, signal = (int(x) for x in code.split(":"))
                row = SacctRow(
                    job_id=f"{job_id}_{i}",
                    array_job_id=job_id,
                    array_index=i,
                    step=None,
                    state=state,
                    state_text=state.value,
                    exit_code=exit_code,
                    exit_signal=signal,
                    start=start,
                    timelimit_s=self.timelimit_s,
                    elapsed_s=int(min(now - t0, runs_s)),
                    max_rss_kb=None,
                )
                records.append(TaskRecord(array_job_id=job_id, index=i, job=row))
        return records

    def find_tokens(self, prefix: str, since: float) -> dict[str, str]:
        self.calls["sacct"] += 1
        self.calls["squeue"] += 1
        return {}

    def cancel(self, job_ids: Sequence[str]) -> None:
        self.calls["scancel"] += 1

    def limits(self) -> ClusterLimits:
        self.calls["scontrol show config"] += 1
        return ClusterLimits(max_array_size=TASKS + 1)

    def partitions(self, node_memory: bool = True) -> dict[str, PartitionInfo]:
        self.calls["scontrol show partition"] += 1
        self.calls["scontrol show node"] += node_memory
        return {"day": PartitionInfo("day", None, 64000 if node_memory else None, True)}


def simulate(phase: str, behaviour: Behaviour, timelimit_s: int) -> dict:  # type: ignore[type-arg]
    work = Path(tempfile.mkdtemp(prefix="load-sim-"))
    (work / "job.sh").write_text("#!/bin/bash\ntrue\n")
    (work / "ladder.yaml").write_text(
        "levels:\n  - {partition: day, mem: 1G, time: '08:00:00'}\n"
        "  - {partition: day, mem: 4G, time: '08:00:00'}\n"
    )
    clock = SimClock()
    slurm = SimSlurm(clock, behaviour, timelimit_s)
    opts = app.SubmitOptions(config="ladder.yaml")  # the defaults: --min-poll 30
    prepared = app.prepare([f"--array=0-{TASKS - 1}", "job.sh"], opts, slurm, str(work))  # type: ignore[arg-type]
    setup = Counter(slurm.calls)
    store = ChainStore(work / "state")  # the journal is written for real, to a temp dir
    chain = app.create_chain(prepared, opts, store, str(work), clock.now())
    per_poll: list[Counter[str]] = []
    last = Counter(slurm.calls)

    def on_poll(chain, report) -> None:  # type: ignore[no-untyped-def]
        nonlocal last
        now = Counter(slurm.calls)
        per_poll.append(now - last)
        last = now

    monitor = app.make_monitor(
        chain,
        prepared,
        store,
        slurm,
        {},
        clock=clock,  # type: ignore[arg-type]
        on_poll=on_poll,
    )
    t0 = clock.now()
    cpu0 = time.process_time()
    monitor.start()
    first_submit = Counter(slurm.calls) - setup
    last = Counter(slurm.calls)
    state = monitor.run(threading.Event())
    hours = (clock.now() - t0) / HOUR
    cpu = time.process_time() - cpu0
    loop = Counter()
    for c in per_poll:
        loop.update(c)
    return {
        "phase": phase,
        "tasks": TASKS,
        "final_state": state.value,
        "hours": round(hours, 2),
        "polls": len(per_poll),
        "calls": dict(sorted((setup + first_submit + loop).items())),
        "setup_calls": dict(sorted((setup + first_submit).items())),
        "loop_calls": dict(sorted(loop.items())),
        "sacct_per_poll": round(loop["sacct"] / len(per_poll), 3),
        "sacct_per_hour": round(loop["sacct"] / hours, 1),
        "sbatch_per_hour": round(loop["sbatch"] / hours, 1),
        "max_sbatch_per_poll": max((c["sbatch"] for c in per_poll), default=0),
        "scontrol_in_loop": sum(v for k, v in loop.items() if k.startswith("scontrol")),
        "monitor_cpu_s": round(cpu, 1),
    }


def waiting(index: int, level: int) -> tuple[float, SlurmState, str]:
    return 6 * HOUR, SlurmState.COMPLETED, "0:0"


def finishing(index: int, level: int) -> tuple[float, SlurmState, str]:
    if level == 0:
        ends = 60 + index * (2 * HOUR / TASKS)
        if index % 10 == 7:
            return ends, SlurmState.OUT_OF_MEMORY, "0:125"
        return ends, SlurmState.COMPLETED, "0:0"
    return 20 * 60, SlurmState.COMPLETED, "0:0"


def run() -> dict:  # type: ignore[type-arg]
    logger.remove()
    phases = []
    for name, behaviour in (
        ("waiting: 10,000 tasks run 6 h, nothing changes", waiting),
        ("finishing: 10,000 tasks end over 2 h, 10% OOM once", finishing),
    ):
        harness.log(f"load simulation, {name}")
        phases.append(simulate(name, behaviour, timelimit_s=8 * 3600))
    return {
        **harness.stamp(),
        "description": (
            "The real monitor at the default settings (`--min-poll 30`, `--max-poll 300`) "
            "against a simulated Slurm on a fast-forward clock, 10,000 tasks; each client "
            "call is one Slurm command (checked on the real cluster by the wrappers). "
            "Setup calls (3 scontrol and the first sbatch) are outside the loop."
        ),
        "phases": phases,
    }


def main() -> None:
    result = run()
    harness.RESULTS.mkdir(parents=True, exist_ok=True)
    out = harness.RESULTS / "bench-budget.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    for p in result["phases"]:
        print(json.dumps(p))
    harness.log(f"wrote {out}")


if __name__ == "__main__":
    main()
