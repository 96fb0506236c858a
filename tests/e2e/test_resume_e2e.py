"""A monitor killed with SIGKILL in the middle of a mixed chain; `resume` finishes it.

Every test checks that the final task states are those of an undisturbed run and,
from sacct, that no index ran twice for one attempt: each task has exactly as
many sacct rows (under this test's unique job name) as the attempts it needed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

OOM = {1, 4}  # need 400M: OUT_OF_MEMORY at level 0 (200M), complete at level 1
BUG = 3  # exits 3: FAILED, not retried
TASKS = range(6)
EXPECTED = {
    i: ("FAILED", 1) if i == BUG else ("COMPLETED", 2) if i in OOM else ("COMPLETED", 1)
    for i in TASKS
}
SBATCH = [f"--array=0-{TASKS[-1]}", "--output=%x-%a.out"]
LADDER = [
    {"partition": "week", "mem": "200M", "time": "00:02:00"},
    {"partition": "week", "mem": "600M", "time": "00:02:00"},
]


def _script(e2e):
    cases = " | ".join(map(str, sorted(OOM)))
    body = f'case "$idx" in {cases}) use_memory 400 ;; {BUG}) exit 3 ;; *) sleep 2 ;; esac'
    return e2e.job_script(body)


def _check_finished(e2e, chain_id: str) -> None:
    status = e2e.wait_chain(chain_id)
    tasks = e2e.by_index(status)
    got = {i: (t["state"], t["attempts"]) for i, t in tasks.items()}
    assert got == EXPECTED, status
    for _ in range(30):  # slurmdbd records a job a moment after it ends
        rows = e2e.rows_per_index()
        if rows == {i: n for i, (_, n) in EXPECTED.items()}:
            break
        time.sleep(2)
    assert rows == {i: n for i, (_, n) in EXPECTED.items()}, (rows, status["submissions"])
    for path in e2e.chain_dirs():  # every state file still loads
        assert e2e.slurm_escalate("status", path.name).returncode in (0,)


@pytest.mark.timeout(600)
@pytest.mark.parametrize(
    "crash_at",
    [
        # intent of the first resubmission on disk, sbatch not run
        pytest.param("before-sbatch:2", marks=pytest.mark.core),
        # the resubmission exists in Slurm, its job id is not recorded
        pytest.param("after-sbatch:2", marks=pytest.mark.core),
        "after-record:2",  # recorded, killed right after
        "after-classify:1",  # tasks classified in memory only
        "mid-save:5",  # a whole file (summary, heartbeat) half written
        "mid-append:4",  # half a journal line on disk
        "mid-compaction:2",  # a snapshot being made (compaction after every poll)
        "after-snapshot:2",  # the snapshot in place, the journal not yet restarted
    ],
)
def test_resume_after_sigkill_at_each_step(e2e, crash_at):
    env = {**e2e.env, "SLURM_ESCALATE_CRASH_AT": crash_at, "SLURM_ESCALATE_COMPACT_BYTES": "1"}
    argv = e2e.chain_argv(_script(e2e), config=e2e.ladder(LADDER), sbatch=SBATCH)
    crashed = e2e._run(argv, 600, env)
    assert crashed.returncode == -signal.SIGKILL, crashed.describe()
    chain_id = crashed.stdout.split()[0] if crashed.stdout.strip() else e2e.chain_dirs()[0].name

    listed = e2e.slurm_escalate("list")
    assert chain_id in listed.stdout and "RUNNING" in listed.stdout, listed.describe()
    resumed = e2e.slurm_escalate("resume", chain_id, "--min-poll", "1", timeout=600)
    assert resumed.returncode == 1, resumed.describe()  # task 3's bug, and only that
    _check_finished(e2e, chain_id)


@pytest.mark.timeout(600)
def test_resume_after_sigkill_from_outside_mid_chain(e2e):
    argv = e2e.chain_argv(_script(e2e), config=e2e.ladder(LADDER), sbatch=SBATCH)
    monitor = subprocess.Popen(
        argv,
        cwd=e2e.dir,
        env=e2e.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        chain_id = monitor.stdout.readline().strip()  # --parsable: the chain id, flushed
        assert chain_id, monitor.stderr.read()
        e2e.wait_until(
            lambda: any(
                t["state"] in ("RETRY", "COMPLETED", "FAILED")
                for t in e2e.status(chain_id)["tasks"]
            ),
            timeout=120,
        )
        os.kill(monitor.pid, signal.SIGKILL)
        assert monitor.wait(30) == -signal.SIGKILL
    finally:
        if monitor.poll() is None:
            monitor.kill()
    resumed = e2e.slurm_escalate("resume", chain_id, "--min-poll", "1", timeout=600)
    assert resumed.returncode == 1, resumed.describe()
    _check_finished(e2e, chain_id)


@pytest.mark.timeout(300)
def test_a_second_monitor_is_refused_naming_the_first(e2e):
    script = e2e.job_script("sleep 30")
    argv = e2e.chain_argv(script, own=["--detached"], sbatch=["--array=0-1"])
    started = e2e._run(argv, 60, None)
    assert started.returncode == 0, started.describe()
    chain_id = started.stdout.split()[0]
    pid = e2e.wait_until(lambda: (e2e.home / "chains" / chain_id / "monitor.pid").is_file(), 30)
    assert pid
    holder = (e2e.home / "chains" / chain_id / "monitor.pid").read_text().split()
    second = e2e.slurm_escalate("resume", chain_id)
    assert second.returncode == 2, second.describe()
    assert f"is already being monitored (host {holder[0]}, pid {holder[1]})" in second.stderr, (
        second.describe()
    )
