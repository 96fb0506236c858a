"""Loading a 100,000-task chain with three attempts per task (issue 10's load target).

Builds the chain through its own journal (three submissions; each task fails twice and
completes at the third level; 1,000 task changes per commit, as a poll makes them), then
times ``ChainStore.load`` in this process with a fresh store each time: first from the
journal alone (every event replayed), then from a snapshot. Wall time, best of 3:

    python benchmarks/load_journal.py [--tasks 100000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from slurm_escalate.core.chain import Chain, TaskStatus
from slurm_escalate.core.events import Intent, Submitted
from slurm_escalate.core.models import TaskState
from slurm_escalate.state.store import ChainStore

CHAIN_ID = "20261202-101500-ab12"


def build(home: Path, tasks: int) -> None:
    chain = Chain(
        chain_id=CHAIN_ID,
        created_at=1.0,
        cwd="/tmp",
        script="job.sh",
        script_copy=None,
        sbatch_args=[f"--array=0-{tasks - 1}"],
        script_args=[],
        config=None,
        tasks=[TaskStatus(i) for i in range(tasks)],
    )
    store = ChainStore(home)
    store.create(chain)
    book = store.open_book(CHAIN_ID, time.time())
    for level in range(3):
        seq = level + 1
        book.record(
            Intent(seq, level, seq, f"0-{tasks - 1}", None, [], 1.0),
            Submitted(seq, str(100 + level), 2.0),
        )
        done = level == 2
        for low in range(0, tasks, 1000):
            for i in range(low, min(low + 1000, tasks)):
                book.patch(
                    book.chain.tasks[i],
                    {
                        "state": TaskState.COMPLETED if done else TaskState.RETRY,
                        "a.outcome": "COMPLETED" if done else "OUT_OF_MEMORY",
                        "a.exit_code": 0,
                        "a.reason": "OUT_OF_MEMORY on step batch (0:125)",
                        "a.max_rss_kb": 1000 + i,
                        "a.start": "2026-12-02T10:00:00",
                        "a.end": f"2026-12-02T10:{i % 60:02d}:00",
                        "a.elapsed_s": 60 + i % 60,
                        "a.node": f"n{i % 7}",
                        "a.partition": "day",
                        "a.req_mem": "100M",
                        "a.timelimit_s": 600,
                        "exit_code": 0,
                        "reason": "COMPLETED" if done else "escalating",
                    },
                )
            book.commit()
    book.close()


def best_load(home: Path) -> float:
    times = []
    for _ in range(3):
        store = ChainStore(home)  # a new process's view: nothing remembered
        t0 = time.perf_counter()
        chain = store.load(CHAIN_ID)
        times.append(time.perf_counter() - t0)
        assert sum(len(t.attempts) for t in chain.tasks) == 3 * len(chain.tasks)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=100_000)
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="load-journal-"))
    build(home, args.tasks)
    directory = home / "chains" / CHAIN_ID
    size = (directory / "journal.jsonl").stat().st_size
    print(f"{args.tasks} tasks, 3 attempts each; journal {size / 1e6:.1f} MB")
    print(f"load from the journal alone: {best_load(home):.3f} s")
    store = ChainStore(home)
    book = store.open_book(CHAIN_ID, time.time())
    book.journal.compact(book.chain)
    book.close()
    size = (directory / "snapshot.json").stat().st_size
    print(f"load from a snapshot ({size / 1e6:.1f} MB): {best_load(home):.3f} s")


if __name__ == "__main__":
    main()
