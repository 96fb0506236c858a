"""Signals on the real cluster: SIGTERM to a detached monitor, Ctrl-C in the foreground.

Both stop monitoring only: the jobs keep running, the state is saved, and
`resume` finishes the chain.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest


def _queued(e2e) -> list[str]:
    out = subprocess.run(
        ["squeue", "-h", f"--name={e2e.job_name}", "-o", "%i"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return out.split()


@pytest.mark.timeout(300)
def test_sigterm_to_a_detached_monitor_exits_0_and_leaves_jobs_running(e2e):
    script = e2e.job_script("sleep 20")
    r = e2e._run(e2e.chain_argv(script, own=["--detached"], sbatch=["--array=0-1"]), 60, None)
    assert r.returncode == 0, r.describe()
    chain_id = r.stdout.split()[0]
    pid_file = e2e.home / "chains" / chain_id / "monitor.pid"
    assert e2e.wait_until(pid_file.is_file, 30)
    pid = int(pid_file.read_text().split()[1])
    assert e2e.wait_until(lambda: _queued(e2e), 30)

    os.kill(pid, signal.SIGTERM)
    assert e2e.wait_until(lambda: not e2e.pid_alive(pid), 30), "daemon ignored SIGTERM"
    assert _queued(e2e), "SIGTERM must not cancel the jobs"
    summary = json.loads((e2e.home / "chains" / chain_id / "summary.json").read_text())
    assert summary["state"] == "RUNNING"
    assert e2e.status(chain_id)["state"] == "RUNNING"
    log = (e2e.home / "chains" / chain_id / "monitor.log").read_text()
    assert f"Pick up again with: slurm-escalate resume {chain_id}" in log, log

    resumed = e2e.slurm_escalate("resume", chain_id, "--min-poll", "1", timeout=300)
    assert resumed.returncode == 0, resumed.describe()
    assert e2e.status(chain_id)["state"] == "COMPLETED"


@pytest.mark.timeout(300)
def test_ctrl_c_in_the_foreground_stops_monitoring_and_says_how_to_resume(e2e):
    script = e2e.job_script("sleep 20")
    argv = e2e.chain_argv(script, sbatch=["--array=0-1"])
    monitor = subprocess.Popen(
        argv, cwd=e2e.dir, env=e2e.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    chain_id = monitor.stdout.readline().strip()
    assert e2e.wait_until(lambda: _queued(e2e), 30)
    monitor.send_signal(signal.SIGINT)  # what Ctrl-C delivers
    out, err = monitor.communicate(timeout=60)
    assert monitor.returncode == 130, err
    assert f"slurm-escalate resume {chain_id}" in err, err
    assert "Traceback" not in err, err
    assert _queued(e2e), "Ctrl-C must not cancel the jobs"
    time.sleep(1)
    resumed = e2e.slurm_escalate("resume", chain_id, "--min-poll", "1", timeout=300)
    assert resumed.returncode == 0, resumed.describe()
