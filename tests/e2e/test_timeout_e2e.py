"""End to end on the real cluster: a TIMEOUT moves the job one level up.

Slurm limits are whole minutes and the TIMEOUT lands 5-30 s after the limit,
so this test alone takes about three minutes; it has its own file so that xdist
starts it early next to the others.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(600)
def test_timeout_escalates_to_next_level_and_completes(e2e):
    ladder = e2e.ladder(
        [
            {"partition": "day", "mem": "100M", "time": "00:01:00"},
            {"partition": "week", "mem": "100M", "time": "00:02:00"},
        ]
    )
    # Longer than level 0's minute plus Slurm's grace (the kill comes 5-35 s after
    # the limit), well within level 1's two minutes.
    script = e2e.job_script("sleep 100")

    r = e2e.run_chain(script, config=ladder, sbatch=["--output=%x.out"])

    assert r.returncode == 0, r.describe()
    status = e2e.status(r.chain_id)
    assert status["state"] == "COMPLETED", status
    (task,) = status["tasks"]
    assert task["index"] is None, task
    assert (task["state"], task["level"], task["attempts"]) == ("COMPLETED", 1, 2), task

    first, second = e2e.task_sacct(task)
    assert (first.state, first.partition, first.timelimit) == ("TIMEOUT", "day", "00:01:00")
    assert (second.state, second.exit_code) == ("COMPLETED", "0:0"), second
    assert (second.partition, second.timelimit) == ("week", "00:02:00"), second
    assert [s["level"] for s in status["submissions"]] == [0, 1]

    log = (e2e.dir / f"{e2e.job_name}.out").read_text()
    first_at = log.find("attempt=1 level=0")
    second_at = log.find("attempt=2 level=1")
    assert 0 <= first_at < second_at, log
    assert "DUE TO TIME LIMIT" in log[first_at:second_at], log
    assert log.count("done task=none") == 1, log
