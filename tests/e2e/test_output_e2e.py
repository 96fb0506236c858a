"""End to end on the real cluster: what a foreground run prints, and when.

A script captures the chain id from ``--parsable`` while the chain is still
running (e.g. ``sbatch_escalate --parsable ... | { read id; ...; }``), so the
id must be flushed as soon as the first sbatch succeeds, not at exit.
"""

from __future__ import annotations

import selectors
import subprocess
import time

import pytest

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(300)
def test_parsable_chain_id_is_flushed_while_the_chain_runs(e2e):
    ladder = e2e.ladder([{"partition": "week", "mem": "100M", "time": "00:02:00"}])
    script = e2e.job_script("sleep 20")
    argv = e2e.chain_argv(script, config=ladder, sbatch=["--output=%x.out"])

    started = time.monotonic()
    proc = subprocess.Popen(
        argv,
        cwd=e2e.dir,
        env=e2e.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        first = b""
        while not first.endswith(b"\n") and time.monotonic() - started < 15:
            if sel.select(timeout=0.5):
                chunk = proc.stdout.read1(4096)  # type: ignore[attr-defined]
                if not chunk:
                    break
                first += chunk
        waited = time.monotonic() - started
        assert first.endswith(b"\n"), f"no chain id on stdout after {waited:.0f}s: {first!r}"
        assert proc.poll() is None, "the chain ended before the job could have"
        chain = first.decode().splitlines()[0].strip()
        assert chain and " " not in chain, first
        # The chain exists on disk and reports itself running meanwhile.
        assert e2e.status(chain)["state"] == "RUNNING"

        rest_out, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = (first + rest_out).decode()
    assert proc.returncode == 0, (out, err.decode())
    assert out.splitlines()[0] == chain
    # Not a terminal: plain text, no colours or cursor movement.
    assert "\x1b[" not in out and "\x1b[" not in err.decode(), (out, err.decode())
    assert e2e.status(chain)["state"] == "COMPLETED"
