"""watch, log, cancel and list through the real entry point, on chains written to disk.

watch and log must never ask Slurm anything: the Env's client factory and the
subprocess runner both raise here unless a test passes a fake on purpose.
Waiting goes through the Env's clock: the tests that follow a chain while it
changes use a clock that makes the change itself, instead of racing a thread.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import pytest

from slurm_escalate.cli import main as cli
from slurm_escalate.core.chain import Attempt, Chain, Submission, SubmissionStatus, TaskStatus
from slurm_escalate.core.models import ChainState, TaskState
from slurm_escalate.service.env import Env
from slurm_escalate.service.ops import CANCEL_REASON
from slurm_escalate.slurm.runner import SubprocessRunner
from slurm_escalate.state.store import ChainStore
from slurm_escalate.testing import FakeSlurm, FastClock, ok

CHAIN_ID = "20261122-101500-ab12"


class StepClock(FastClock):
    """A fast clock that runs the next step (a change to the chain) at each wait."""

    def __init__(self, *steps: Callable[[], None]) -> None:
        super().__init__()
        self.steps = list(steps)

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        if self.steps:
            self.steps.pop(0)()
        return super().wait(stop, seconds)


def no_slurm(*args: object, **kwargs: object) -> NoReturn:
    raise AssertionError("this command must not call Slurm")


class CancelSlurm(FakeSlurm):
    def cancel(self, job_ids):
        self.calls["scancel"] += 1
        self.cancelled = list(job_ids)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ChainStore:
    monkeypatch.setenv("SLURM_ESCALATE_HOME", str(tmp_path / "state"))
    monkeypatch.setattr(SubprocessRunner, "run", no_slurm)
    return ChainStore()


def make_chain(store: ChainStore, state: ChainState = ChainState.RUNNING) -> Chain:
    def attempt(job: str, level: int, outcome: str | None = None) -> Attempt:
        return Attempt(job_id=job, level=level, submission=1, outcome=outcome)

    chain = Chain(
        chain_id=CHAIN_ID,
        created_at=time.time() - 30,
        cwd="/tmp",
        script="job.sh",
        script_copy=None,
        sbatch_args=["--array=0-3"],
        script_args=[],
        config=None,
        state=state,
        tasks=[
            TaskStatus(0, TaskState.COMPLETED, 0, [attempt("100", 0, "COMPLETED")]),
            TaskStatus(
                1, TaskState.RUNNING, 1, [attempt("100", 0, "OUT_OF_MEMORY"), attempt("101", 1)]
            ),
            TaskStatus(2, TaskState.FAILED, 0, [attempt("100", 0, "FAILED")], exit_code=3),
            TaskStatus(3, TaskState.PENDING, 0, [attempt("100", 0)]),
        ],
        submissions=[
            Submission(1, 0, 1, "0-3", "0-3", [], 0.0, SubmissionStatus.SUBMITTED, "100"),
            Submission(2, 1, 2, "1", "1", [], 0.0, SubmissionStatus.SUBMITTED, "101"),
        ],
    )
    store.create(chain)
    store.save(chain)
    log = store.log_path(CHAIN_ID)
    log.write_text(
        "2026-11-22 10:15:00 INFO    submitted array 0-3 at level 0 (attempt 1) as job 100\n"
        "2026-11-22 10:15:05 DEBUG   next poll in 1s\n"
        "2026-11-22 10:15:31 WARNING task 100_1 OUT_OF_MEMORY: escalating to level 1\n"
        "2026-11-22 10:15:31 INFO    submitted array 1 at level 1 (attempt 2) as job 101\n"
    )
    return chain


def invoke(
    capsys: pytest.CaptureFixture[str],
    *args: str,
    client: FakeSlurm | None = None,
    clock: FastClock | None = None,
) -> tuple[int, str, str]:
    env = Env(client_factory=no_slurm if client is None else lambda: client)
    if clock is not None:
        env.clock = clock
    with pytest.raises(SystemExit) as e:
        cli._run(cli.cli, "slurm-escalate", list(args), env)
    out, err = capsys.readouterr()
    return e.value.code, out, err


def beat(store: ChainStore, pid: int, **kw: object) -> None:
    data = {"at": time.time() - 2, "pid": pid, "host": socket.gethostname(), "failures": 0}
    store.beat(CHAIN_ID, {**data, "next_poll_s": 30, "error": None, **kw})


def claim(store: ChainStore, pid: int, host: str | None = None) -> None:
    path = store.chain_dir(CHAIN_ID) / "monitor.pid"
    path.write_text(f"{host or socket.gethostname()} {pid}\n")


# -------------------------------------------------------------------- watch


def test_watch_once_shows_counts_health_and_events_without_slurm(store, capsys):
    make_chain(store)
    claim(store, os.getpid())
    beat(store, os.getpid())
    code, out, err = invoke(capsys, "watch", "ab12", "--once")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith(f"chain {CHAIN_ID}  RUNNING  elapsed 0:00:")
    assert lines[1] == "  tasks 4: pending 1  running 1  completed 1  failed 1"
    assert lines[2] == "  monitor: alive, last poll 2s ago"
    assert lines[4].split() == ["L0", "1", "0", "1", "1", "0", "1", "0"]
    assert lines[5].split() == ["L1", "0", "1", "0", "0", "0", "0", "0"]
    assert lines[-1] == "    10:15:31 INFO    submitted array 1 at level 1 (attempt 2) as job 101"
    assert not any("DEBUG" in line for line in lines)


def test_watch_degraded_and_dead_monitors(store, capsys):
    make_chain(store)
    claim(store, os.getpid())
    beat(store, os.getpid(), failures=2, error="sacct exited 1: slurmdbd down")
    _, out, _ = invoke(capsys, "watch", CHAIN_ID, "--once")
    assert "  monitor: degraded: 2 failed Slurm queries (sacct exited 1: slurmdbd down)" in out
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    claim(store, dead.pid)
    _, out, _ = invoke(capsys, "watch", CHAIN_ID, "--once")
    assert f"  monitor: dead (pid {dead.pid} gone), last poll 2s ago" in out
    assert f"  resume with: slurm-escalate resume {CHAIN_ID}" in out
    claim(store, 1, host="login9")
    _, out, _ = invoke(capsys, "watch", CHAIN_ID, "--once")
    assert "  monitor: elsewhere (host login9), last poll 2s ago" in out


def test_watch_prints_a_block_per_change_and_exits_with_the_chains_status(store, capsys):
    chain = make_chain(store)

    def finish() -> None:
        chain.tasks[1].state = chain.tasks[3].state = TaskState.COMPLETED
        chain.state, chain.finished_at = ChainState.FAILED, time.time()
        store.save(chain)

    clock = StepClock(lambda: None, lambda: None, finish)
    code, out, _ = invoke(capsys, "watch", CHAIN_ID, "--interval", "0.05", clock=clock)
    assert code == 1  # FAILED: task 2 exited 3
    assert clock.waits == [0.05, 0.05, 0.05]
    blocks = out.split("\n\n")
    assert len(blocks) == 2, out  # nothing changed between the first frame and the last
    assert "RUNNING" in blocks[0].splitlines()[0] and "FAILED" in blocks[1].splitlines()[0]
    assert "monitor: none needed (FAILED)" in blocks[1]


def test_watch_reads_the_summary_and_never_loads_the_chain(
    store, capsys, monkeypatch
):
    chain = make_chain(store)
    loads: list[str] = []
    load = ChainStore.load

    def counted(self: ChainStore, chain_ref: str) -> Chain:
        loads.append(chain_ref)
        return load(self, chain_ref)

    monkeypatch.setattr(ChainStore, "load", counted)

    before: list[int] = []

    def finish() -> None:
        before.append(len(loads))
        chain.state, chain.finished_at = ChainState.COMPLETED, time.time()
        store.save(chain)
        loads.clear()

    idle = [lambda: None] * 5
    code, out, _ = invoke(capsys, "watch", CHAIN_ID, clock=StepClock(*idle, finish))
    assert code == 0 and "COMPLETED" in out.split("\n\n")[-1].splitlines()[0]
    assert before == [0]  # the summary is current: no frame loaded the chain
    assert loads == []  # nor did the change


def test_watch_of_a_completed_chain_exits_0_and_ctrl_c_exits_130(store, capsys):
    make_chain(store, ChainState.COMPLETED)
    assert invoke(capsys, "watch", CHAIN_ID)[0] == 0
    make_running = store.load(CHAIN_ID)
    make_running.state = ChainState.RUNNING
    store.save(make_running)

    def interrupt() -> None:
        raise KeyboardInterrupt

    assert invoke(capsys, "watch", CHAIN_ID, clock=StepClock(interrupt))[0] == 130


def test_watch_of_an_unknown_chain(store, capsys):
    code, _, err = invoke(capsys, "watch", "nope", "--once")
    assert code == 2 and err.startswith("slurm-escalate: error: no chain 'nope'")


# ---------------------------------------------------------------------- log


def test_log_prints_all_or_the_last_lines(store, capsys):
    make_chain(store)
    code, out, _ = invoke(capsys, "log", CHAIN_ID)
    assert code == 0 and len(out.splitlines()) == 4
    code, out, _ = invoke(capsys, "log", CHAIN_ID, "-n", "1")
    assert (
        out == "2026-11-22 10:15:31 INFO    submitted array 1 at level 1 (attempt 2) as job 101\n"
    )
    assert invoke(capsys, "log", CHAIN_ID, "-n", "0")[1] == ""


def test_log_follow_prints_new_lines_until_the_chain_is_final(store, capsys):
    chain = make_chain(store)
    log = store.log_path(CHAIN_ID)

    def line() -> None:
        with log.open("a") as f:
            f.write("2026-11-22 10:16:00 INFO    task 101_1 COMPLETED at level 1\n")

    def finish() -> None:
        chain.state = ChainState.COMPLETED
        store.save(chain)
        with log.open("a") as f:
            f.write("2026-11-22 10:16:01 INFO    chain COMPLETED after 0:01:01\n")

    clock = StepClock(lambda: None, line, lambda: None, finish)
    code, out, _ = invoke(capsys, "log", CHAIN_ID, "-f", clock=clock)
    assert code == 0
    assert clock.waits == [0.5] * 4
    assert out.splitlines()[-2:] == [
        "2026-11-22 10:16:00 INFO    task 101_1 COMPLETED at level 1",
        "2026-11-22 10:16:01 INFO    chain COMPLETED after 0:01:01",
    ]


def test_log_follow_of_a_final_chain_returns_at_once(store, capsys):
    make_chain(store, ChainState.CANCELLED)
    started = time.monotonic()
    code, out, _ = invoke(capsys, "log", CHAIN_ID, "--follow")
    assert code == 1 and len(out.splitlines()) == 4
    assert time.monotonic() - started < 5


# ------------------------------------------------------------------- cancel


def test_cancel_scancels_only_the_chains_live_jobs_once(store, capsys):
    make_chain(store)
    slurm = CancelSlurm(ok)
    code, out, err = invoke(capsys, "cancel", CHAIN_ID, client=slurm)
    assert (code, err) == (0, "")
    assert slurm.calls["scancel"] == 1 and slurm.cancelled == ["100", "101"]
    assert out == f"chain {CHAIN_ID} CANCELLED: scancel 100 101; 2 task(s) marked CANCELLED\n"
    chain = store.load(CHAIN_ID)
    assert chain.state is ChainState.CANCELLED and chain.finished_at is not None
    assert [t.state for t in chain.tasks] == [
        TaskState.COMPLETED,
        TaskState.CANCELLED,
        TaskState.FAILED,
        TaskState.CANCELLED,
    ]
    assert chain.tasks[1].reason == CANCEL_REASON
    assert "CANCELLED: scancel 100 101" in store.log_path(CHAIN_ID).read_text()
    status = json.loads(invoke(capsys, "status", CHAIN_ID, "--json")[1])
    assert status["state"] == "CANCELLED"
    # Idempotent: a second cancel touches nothing.
    code, out, _ = invoke(capsys, "cancel", CHAIN_ID, client=slurm)
    assert (code, out) == (0, f"chain {CHAIN_ID} is already CANCELLED: nothing to cancel\n")
    assert slurm.calls["scancel"] == 1


def test_cancel_stops_the_monitor_first(store, capsys):
    make_chain(store)
    slurm = CancelSlurm(ok)
    # Stands in for a foreground monitor: no SIGTERM handler, "escalate" in its argv.
    monitor = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "escalate"])
    try:
        cmdline = Path(f"/proc/{monitor.pid}/cmdline")
        for _ in range(100):  # until the child has exec'd: before that it shows our own argv
            if b"escalate" in cmdline.read_bytes():
                break
            time.sleep(0.05)
        claim(store, monitor.pid)
        code, out, _ = invoke(capsys, "cancel", CHAIN_ID, client=slurm)
        assert code == 0 and f"monitor pid {monitor.pid} stopped" in out
        assert monitor.wait(timeout=10) == -signal.SIGTERM
    finally:
        monitor.kill()


def test_cancel_never_signals_a_recycled_pid(store, capsys):
    make_chain(store)
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        claim(store, bystander.pid)
        assert invoke(capsys, "cancel", CHAIN_ID, client=CancelSlurm(ok))[0] == 0
        assert bystander.poll() is None
    finally:
        bystander.kill()


def test_cancel_refuses_while_a_monitor_elsewhere_holds_the_chain(store, capsys):
    make_chain(store)
    code = (
        "import sys, time\n"
        "from slurm_escalate.state.store import ChainStore\n"
        "with ChainStore().lock(sys.argv[1]):\n"
        "    print('locked', flush=True)\n"
        "    time.sleep(60)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, CHAIN_ID], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        claim(store, holder.pid, host="login9")
        code_, _, err = invoke(capsys, "cancel", CHAIN_ID, client=CancelSlurm(ok))
        assert code_ == 2
        assert "already being monitored (host login9" in err and "stop that monitor first" in err
        assert store.load(CHAIN_ID).state is ChainState.RUNNING
    finally:
        holder.kill()


def test_cancel_when_scancel_fails_changes_nothing(store, capsys):
    from slurm_escalate.errors import SlurmCommandError

    class Refusing(FakeSlurm):
        def cancel(self, job_ids):
            raise SlurmCommandError(["scancel"], 1, "scancel: error: Socket timed out")

    make_chain(store)
    code, _, err = invoke(capsys, "cancel", CHAIN_ID, client=Refusing(ok))
    assert code == 3 and "Socket timed out" in err
    assert store.load(CHAIN_ID).state is ChainState.RUNNING


# --------------------------------------------------------------------- list


def test_list_shows_a_dead_monitor_and_how_to_resume(store, capsys):
    make_chain(store)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    claim(store, dead.pid)
    code, out, _ = invoke(capsys, "list")
    assert code == 0
    assert out.splitlines()[1].split()[5] == "dead"
    assert out.splitlines()[-1] == f"resume with: slurm-escalate resume {CHAIN_ID}"
    assert json.loads(invoke(capsys, "list", "--json")[1])[0]["monitor"] == "dead"
