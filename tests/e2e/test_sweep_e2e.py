"""Slurm ends a timed-out job at its 30-second time-limit sweep, whose phase holds: the
poll schedule (core/interval.py) is built on that, so it is proven here on a real cluster
(and on every release of the matrix: this test is in the core set).

One chain, two attempts that both time out (TIMEOUT: resubmit, one resubmission):
- each TIMEOUT's End is at or after Start + limit and less than one sweep period later;
- the two Ends, minutes apart, are a whole number of sweep periods apart (within the
  second or two the sweep slips);
- the monitor learned the sweep from the first End (the home's sweeps.json), and saw the
  second TIMEOUT with one poll after the deadline (two if the sweep slipped), where an
  unknown phase costs a poll every WINDOW_STEP seconds.
"""

from __future__ import annotations

import json
import re
from datetime import datetime

import pytest

from slurm_escalate.core.interval import SWEEP_PERIOD

pytestmark = pytest.mark.e2e

LIMIT_S = 60


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


STAMP = r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)"


def _stamps(log: str, pattern: str) -> list[float]:
    """Times (whole seconds) of the monitor.log lines that match ``pattern``."""
    return [
        datetime.strptime(m, "%Y-%m-%d %H:%M:%S").timestamp()
        for m in re.findall(STAMP + r".*" + pattern, log, re.M)
    ]


@pytest.mark.core
@pytest.mark.timeout(600)
def test_timeouts_end_on_the_sweep_and_the_second_is_seen_with_one_poll(e2e):
    ladder = e2e.ladder(
        [{"partition": "devel", "mem": "100M", "time": "00:01:00"}],
        state_handling={"TIMEOUT": "resubmit"},
        max_resubmits=1,
    )
    job = e2e.job_script("sleep 600\n")

    r = e2e.run_chain(job, config=ladder, own=["--max-poll", "300"], timeout=540)

    assert r.returncode == 1, r.describe()  # the resubmission cap ends it
    status = e2e.status(r.chain_id)
    (task,) = e2e.by_index(status).values()
    rows = e2e.task_sacct(task)
    assert [x.state for x in rows] == ["TIMEOUT", "TIMEOUT"], rows
    (s1, e1), (s2, e2_) = (map(_epoch, e2e.sacct_row(x.job_id, "Start", "End")) for x in rows)

    # Slurm: the End is the first sweep at or after the deadline
    for start, end in ((s1, e1), (s2, e2_)):
        assert start + LIMIT_S <= end < start + LIMIT_S + SWEEP_PERIOD + 1, (start, end)
    # Slurm: the phase holds from one TIMEOUT to the next (a slip of a second or two)
    off = (e2_ - e1) % SWEEP_PERIOD
    assert min(off, SWEEP_PERIOD - off) <= 2, (e1, e2_)

    # the monitor learned it, for this chain and the next ones of this home
    sweeps = json.loads((e2e.home / "sweeps.json").read_text())
    assert [round(v["at"]) for v in sweeps.values()] == [round(e2_)], sweeps
    log = (e2e.home / "chains" / r.chain_id / "monitor.log").read_text()
    assert "time-limit sweep seen at" in log, log
    # the second TIMEOUT: the poll that saw it, and the polls between its deadline and
    # that one (each poll but the chain's last logs "next poll in")
    (seen,) = _stamps(log, rf"task {rows[1].job_id} ")[:1]
    polls = [t for t in _stamps(log, "next poll in") if s2 + LIMIT_S <= t < seen]
    assert len(polls) + 1 <= 2, (s2 + LIMIT_S, e2_, seen, polls, log)
