"""End to end on the real cluster: --detached hands the chain to a daemon that
outlives the session it was started from.

Each test's chain needs work after the parent is gone: task 1 runs out of memory
at level 0, so the daemon has to notice and resubmit it at level 1.
"""

from __future__ import annotations

import os
import pty
import re
import shlex
import signal
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

LADDER = [
    {"partition": "week", "mem": "150M", "time": "00:02:00"},
    {"partition": "week", "mem": "700M", "time": "00:02:00"},
]
# Task 1 works 15 s before it runs out of memory, so the chain is still running
# (and the daemon still needed) when the session ends.
BODY = 'if [ "$idx" = 1 ]; then sleep 15; use_memory 400 || exit 1; fi'
RETURNS_WITHIN = 30.0  # "returns within a few seconds"; generous for a loaded machine


def _check_finished_chain(e2e, chain: str, daemons: list[int]) -> None:
    status = e2e.wait_chain(chain, timeout=420)
    assert status["state"] == "COMPLETED", status
    tasks = e2e.by_index(status)
    assert (tasks[0]["state"], tasks[0]["attempts"]) == ("COMPLETED", 1), tasks[0]
    assert (tasks[1]["state"], tasks[1]["level"], tasks[1]["attempts"]) == ("COMPLETED", 1, 2)

    # The monitor log lives in the chain directory and tells the story.
    chain_dir = e2e.home / "chains" / chain
    assert (chain_dir / "chain.json").is_file() and (chain_dir / "journal.jsonl").is_file()
    log = Path(status["log_file"])
    assert log.is_file(), status["log_file"]
    assert log.resolve() == (chain_dir / "monitor.log").resolve()
    text = log.read_text()
    for sub in status["submissions"]:
        assert e2e.job_base(sub["job_id"]) in text, (sub, text)
    assert "OUT_OF_MEMORY" in text, text

    # The jobs ran in the directory the chain was submitted from, not the daemon's.
    out = (e2e.dir / f"{e2e.job_name}-1.out").read_text()
    assert "attempt=1 level=0" in out and "attempt=2 level=1" in out, out

    # Its work done, the daemon goes away.
    gone = e2e.wait_until(lambda: not any(e2e.pid_alive(p) for p in daemons), 60)
    assert gone, f"daemon {daemons} still running after the chain finished"


@pytest.mark.timeout(600)
def test_detached_daemon_survives_the_end_of_its_session(e2e):
    ladder = e2e.ladder(LADDER)
    script = e2e.job_script(BODY)
    argv = e2e.chain_argv(
        script, config=ladder, own=["--detached"], sbatch=["--array=0-1", "--output=%x-%a.out"]
    )
    shell = (
        f"{shlex.join(argv)} > detached.out 2> detached.err; echo $? > detached.rc; "
        "exec sleep 600"  # the 'login session' stays open until we hang it up
    )
    started = time.monotonic()
    leader, master = pty.fork()  # new session with a controlling terminal, like a login
    if leader == 0:  # child
        try:
            os.chdir(e2e.dir)
            os.execvpe("bash", ["bash", "-c", shell], e2e.env)
        finally:
            os._exit(127)
    try:
        rc_file = e2e.dir / "detached.rc"
        assert e2e.wait_until(lambda: rc_file.is_file() and rc_file.read_text().strip(), 90)
        returned_after = time.monotonic() - started
        rc = rc_file.read_text().strip()
        stdout = (e2e.dir / "detached.out").read_text()
        stderr = (e2e.dir / "detached.err").read_text()
        assert rc == "0", (stdout, stderr)
        assert returned_after < RETURNS_WITHIN, returned_after
        # --parsable: only the chain id on stdout.
        assert len(stdout.splitlines()) == 1 and stdout.strip(), stdout
        chain = stdout.strip()
        daemons = e2e.escalate_processes()
        assert daemons, "no slurm-escalate process left running after --detached returned"
        assert all(os.getsid(p) != leader for p in daemons), "the daemon kept the login session"
    finally:
        # Log out: hang up the terminal, then make sure the whole session is gone.
        os.close(master)
        for sig in (signal.SIGHUP, signal.SIGKILL):
            time.sleep(1)
            try:
                os.killpg(leader, sig)
            except ProcessLookupError:
                pass
        os.waitpid(leader, 0)

    time.sleep(2)
    assert any(e2e.pid_alive(p) for p in daemons), "the daemon died with its session"
    assert e2e.status(chain)["state"] == "RUNNING"  # so it still has work to do
    _check_finished_chain(e2e, chain, daemons)


@pytest.mark.timeout(600)
def test_detached_prints_chain_pid_and_log_and_ignores_sighup(e2e):
    ladder = e2e.ladder(LADDER)
    script = e2e.job_script(BODY)

    # capture_output waits for EOF: a daemon still holding our stdout would hang here.
    r = e2e.run_chain(
        script,
        config=ladder,
        own=["--detached"],
        parsable=False,
        sbatch=["--array=0-1", "--output=%x-%a.out"],
        timeout=RETURNS_WITHIN + 30,
    )

    assert r.returncode == 0, r.describe()
    assert r.seconds < RETURNS_WITHIN, r.describe()
    chains = e2e.chain_dirs()
    assert len(chains) == 1, chains
    chain = chains[0].name
    assert chain in r.stdout, r.describe()
    log_file = chains[0] / "monitor.log"
    assert str(log_file) in r.stdout or str(log_file.resolve()) in r.stdout, r.describe()
    pids = [int(p) for p in re.findall(r"\b\d+\b", r.stdout) if e2e.pid_alive(int(p))]
    daemons = [p for p in pids if p in e2e.escalate_processes()]
    assert daemons, f"no live daemon pid in the output\n{r.describe()}"
    daemon = daemons[0]
    assert e2e.status(chain)["state"] == "RUNNING"

    # A hangup sent straight to the daemon (as nohup would ignore) does not stop it.
    os.kill(daemon, signal.SIGHUP)
    time.sleep(2)
    assert e2e.pid_alive(daemon), "the daemon died of SIGHUP"
    _check_finished_chain(e2e, chain, [daemon])
