"""Slurm daemons going away mid-chain (issue 4). These stop slurmctld or slurmdbd
for everyone, so they are marked ``disruptive`` and run alone, after the
parallel suite (see dev.sh).

- slurmctld stopped for ~90 s exactly when a resubmission is due: the monitor
  logs it, reports itself degraded, backs off, never submits twice, and
  completes the chain once the controller is back.
- slurmdbd stopped while tasks run and fail: sacct fails, nothing is
  misclassified, and the monitor catches up when accounting returns.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.disruptive, pytest.mark.timeout(900)]

OOM_LADDER = [
    {"partition": "week", "mem": "200M", "time": "00:03:00"},
    {"partition": "week", "mem": "600M", "time": "00:03:00"},
]
REAL_SBATCH = shutil.which("sbatch") or "/usr/bin/sbatch"
CLUSTER = Path(__file__).resolve().parents[2] / "docker-cluster" / "cluster.sh"
CHROOT = CLUSTER.with_name("chroot.sh")
# In a chroot cluster of another release (docker-cluster/chroot.sh run sets both), the daemons
# are named a24-slurmdbd etc. /proc is the host's, so `pkill -x slurmdbd` there would stop the
# HOST's slurmdbd; and they are restarted the chroot's way (`chroot.sh start REL`, from inside).
DAEMON_PREFIX = os.environ.get("SLURM_ESCALATE_TEST_DAEMON_PREFIX", "")
CHROOT_RELEASE = os.environ.get("SLURM_ESCALATE_CHROOT_RELEASE", "")


def _daemon(name: str) -> str:
    """The command name of this cluster's daemon `name` (slurmdbd, slurmctld)."""
    if Path("/.slurm-escalate-debootstrap").exists() and not (DAEMON_PREFIX and CHROOT_RELEASE):
        pytest.fail(
            "inside a chroot cluster without SLURM_ESCALATE_TEST_DAEMON_PREFIX and "
            "SLURM_ESCALATE_CHROOT_RELEASE (run the tests through docker-cluster/chroot.sh run): "
            f"stopping {name} would stop the host's",
            pytrace=False,
        )
    return DAEMON_PREFIX + name


def _running(name: str) -> bool:
    return subprocess.run(["pgrep", "-x", _daemon(name)], capture_output=True).returncode == 0


def _stop(name: str) -> None:
    subprocess.run(["pkill", "-x", _daemon(name)], check=True)


def _restore_cluster() -> None:
    if CHROOT_RELEASE:
        argv = ["bash", str(CHROOT), "start", CHROOT_RELEASE]
    else:
        argv = ["bash", str(CLUSTER), "up"]
    p = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, f"{' '.join(argv)} exited {p.returncode}:\n{p.stderr[-3000:]}"


def _heartbeat(e2e, chain_id: str) -> dict:
    path = e2e.home / "chains" / chain_id / "heartbeat.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _finish_and_check(e2e, chain_id: str, pid: int) -> None:
    status = e2e.wait_chain(chain_id, timeout=400)
    got = {i: (t["state"], t["attempts"]) for i, t in e2e.by_index(status).items()}
    assert got == {0: ("COMPLETED", 1), 1: ("COMPLETED", 2), 2: ("COMPLETED", 1)}, status
    for _ in range(30):
        rows = e2e.rows_per_index()
        if rows == {0: 1, 1: 2, 2: 1}:
            break
        time.sleep(2)
    assert rows == {0: 1, 1: 2, 2: 1}, (rows, status["submissions"])
    log = (e2e.home / "chains" / chain_id / "monitor.log").read_text()
    assert "monitor crashed" not in log and "Traceback" not in log, log


def test_slurmctld_outage_during_a_resubmission(e2e):
    bin_dir = e2e.dir / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "sbatch"
    ctld = _daemon("slurmctld")
    wrapper.write_text(f"""#!/bin/bash
n=$(( $(cat {e2e.dir}/calls 2>/dev/null || echo 0) + 1 )); echo $n > {e2e.dir}/calls
if [ "$n" = 2 ]; then date +%s > {e2e.dir}/outage-start; pkill -x {ctld}; sleep 2; fi
exec {REAL_SBATCH} "$@"
""")
    wrapper.chmod(0o755)
    env = {**e2e.env, "PATH": f"{bin_dir}:{e2e.env['PATH']}", "SLURM_ESCALATE_SBATCH_TIMEOUT": "30"}
    script = e2e.job_script('case "$idx" in 1) use_memory 400 ;; *) sleep 5 ;; esac')
    argv = e2e.chain_argv(
        script, config=e2e.ladder(OOM_LADDER), own=["--detached"], sbatch=["--array=0-2"]
    )
    try:
        r = e2e._run(argv, 60, env)
        assert r.returncode == 0, r.describe()
        chain_id = r.stdout.split()[0]
        pid = int((e2e.home / "chains" / chain_id / "monitor.pid").read_text().split()[1])
        assert e2e.wait_until(lambda: (e2e.dir / "outage-start").is_file(), 120)
        assert e2e.wait_until(lambda: not _running("slurmctld"), 30)
        degraded = e2e.wait_until(lambda: _heartbeat(e2e, chain_id).get("failures"), 120)
        assert degraded, _heartbeat(e2e, chain_id)
        start = int((e2e.dir / "outage-start").read_text())
        while time.time() < start + 90:  # about 90 s without a controller
            assert e2e.pid_alive(pid), "the monitor died during the outage"
            time.sleep(5)
        watch = e2e.slurm_escalate("status", chain_id, "--json")
        assert json.loads(watch.stdout)["state"] == "RUNNING", watch.describe()
    finally:
        _restore_cluster()
    # The monitor lived through the outage (above); once the controller is back it finishes
    # the chain by itself, possibly while cluster.sh was still waiting for the nodes.
    _finish_and_check(e2e, chain_id, pid)
    log = (e2e.home / "chains" / chain_id / "monitor.log").read_text()
    assert "resubmission at level 1 failed" in log, log
    assert f"chain {chain_id} COMPLETED" in log, log  # the daemon's own work, not a resume


@pytest.mark.core
def test_slurmdbd_outage_while_tasks_finish(e2e):
    script = e2e.job_script('sleep 15; case "$idx" in 1) use_memory 400 ;; esac')
    argv = e2e.chain_argv(
        script, config=e2e.ladder(OOM_LADDER), own=["--detached"], sbatch=["--array=0-2"]
    )
    try:
        r = e2e._run(argv, 60, None)
        assert r.returncode == 0, r.describe()
        chain_id = r.stdout.split()[0]
        pid = int((e2e.home / "chains" / chain_id / "monitor.pid").read_text().split()[1])
        assert e2e.wait_until(
            lambda: any(t["state"] == "RUNNING" for t in e2e.status(chain_id)["tasks"]), 120
        )
        _stop("slurmdbd")
        assert e2e.wait_until(lambda: not _running("slurmdbd"), 30)
        degraded = e2e.wait_until(lambda: _heartbeat(e2e, chain_id).get("failures"), 60)
        assert degraded, _heartbeat(e2e, chain_id)
        time.sleep(45)  # the tasks end (one by OOM) while accounting is down
        during = e2e.status(chain_id)
        assert all(t["state"] in ("PENDING", "RUNNING") for t in during["tasks"]), during
        assert e2e.pid_alive(pid), "the monitor died during the outage"
    finally:
        _restore_cluster()
    _finish_and_check(e2e, chain_id, pid)
