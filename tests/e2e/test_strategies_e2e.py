"""End to end: escalation "skip" on a real MaxRSS, and --rounds against rolling resubmission."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime

import pytest
from conftest import PYTHON

pytestmark = pytest.mark.e2e

# Holds ~135 MiB for 5 s (sacct samples MaxRSS every 2 s here), then needs 400 MiB.
GROW = f"""{PYTHON} -c '
import time
held = []
def grab(mib):
    block = bytearray(mib * 1024 * 1024)
    for i in range(0, len(block), 4096):
        block[i] = 1
    held.append(block)
for _ in range(27):
    grab(5)
time.sleep(5)
for _ in range(53):
    grab(5)
print("held 400 MiB", flush=True)
'"""


@pytest.mark.core  # status --json and report --format json, on a real MaxRSS
@pytest.mark.timeout(600)
def test_skip_jumps_past_a_rung_that_measured_maxrss_rules_out(e2e):
    ladder = e2e.ladder(
        [
            {"partition": "day", "mem": "150M", "time": "00:02:00"},
            {"partition": "day", "mem": "155M", "time": "00:02:00"},
            {"partition": "week", "mem": "700M", "time": "00:02:00"},
        ],
        escalation="skip",
    )
    script = e2e.job_script(GROW)

    r = e2e.run_chain(script, config=ladder, sbatch=["--array=0", "--output=%x-%a.out"])

    assert r.returncode == 0, r.describe()
    (task,) = e2e.status(r.chain_id)["tasks"]
    assert task["state"] == "COMPLETED", task
    first, second = e2e.task_sacct(task)  # level 1 was never tried
    assert (first.state, first.req_mem) == ("OUT_OF_MEMORY", "150M"), first
    assert (second.state, second.req_mem) == ("COMPLETED", "700M"), second
    report = e2e.slurm_escalate("report", r.chain_id, "--format", "json")
    assert report.returncode == 0, report.describe()
    (chain,) = json.loads(report.stdout)["chains"]
    (skip,) = chain["skips"]
    assert (skip["from_level"], skip["to_level"], skip["indices"]) == (0, 2, [0]), skip
    assert "+ 20% headroom" in skip["reason"] and skip["reason"].startswith("MaxRSS 1"), skip


def _times(job_ids: list[str]) -> dict[str, tuple[datetime, datetime]]:
    out = subprocess.run(
        ["sacct", "-n", "-P", "-X", "-j", ",".join(job_ids), "-o", "JobID,Submit,End"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    rows = {}
    for line in out.split():
        job, submit, end = line.split("|")
        rows[job] = (datetime.fromisoformat(submit), datetime.fromisoformat(end))
    return rows


@pytest.mark.timeout(600)
@pytest.mark.parametrize("rounds", [False, True], ids=["rolling", "rounds"])
def test_rounds_wait_for_the_slowest_task_rolling_does_not(e2e, rounds):
    ladder = e2e.ladder(
        [
            {"partition": "day", "mem": "150M", "time": "00:02:00"},
            {"partition": "week", "mem": "700M", "time": "00:02:00"},
        ]
    )
    script = e2e.job_script(
        'if [ "$idx" = 0 ]; then sleep 25; fi\n'
        'if [ "$idx" = 1 ] && [ "$SLURM_ESCALATE_LEVEL" = 0 ]; then use_memory 400; fi'
    )
    own = ["--rounds"] if rounds else []

    r = e2e.run_chain(script, config=ladder, own=own, sbatch=["--array=0-1"])

    assert r.returncode == 0, r.describe()
    tasks = e2e.by_index(e2e.status(r.chain_id))
    slow_id, (oom_id, retry_id) = tasks[0]["job_ids"][0], tasks[1]["job_ids"]
    times = _times([slow_id, oom_id, retry_id])
    slow_end, retry_submit = times[slow_id][1], times[retry_id][0]
    if rounds:
        assert retry_submit >= slow_end, times
    else:
        assert (slow_end - retry_submit).total_seconds() >= 10, times
