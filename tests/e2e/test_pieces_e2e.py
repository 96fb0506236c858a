"""End to end: an array with indices above the cluster's MaxArraySize (2001 here).

Slurm refuses such indices, so they run under in-range array indices through
a generated wrapper. The job must still see its own index, its output file
must be named after it, its arguments must arrive untouched, and a task that
runs out of memory must climb the ladder like any other.
"""

from __future__ import annotations

import re
import subprocess

import pytest

pytestmark = pytest.mark.e2e

LADDER = [
    {"partition": "day", "mem": "150M", "time": "00:02:00"},
    {"partition": "week", "mem": "700M", "time": "00:02:00"},
]
INDICES = [0, 1999, 2000, 2001, 2002, 2999, 3000, 3001, 10499]
ARGS = ["a b", "$(touch /tmp/pieces-pwned)", "ünï"]


def _max_array_size() -> int:
    """The cluster's own MaxArraySize (2001 on the test clusters, 1001 by Slurm's default)."""
    out = subprocess.run(
        ["scontrol", "show", "config"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    found = re.search(r"^MaxArraySize\s*=\s*(\d+)", out, re.M)
    assert found, out
    return int(found.group(1))


@pytest.mark.core
@pytest.mark.timeout(900)
def test_indices_above_max_array_size_keep_their_identity(e2e):
    ladder = e2e.ladder(LADDER)
    script = e2e.job_script(
        'printf "arg=[%s]\\n" "$@"\n'
        'echo "escalate_task_id=${SLURM_ESCALATE_TASK_ID:-unset}"\n'
        'if [ "$idx" = 3001 ] && [ "$SLURM_ESCALATE_LEVEL" = 0 ]; then use_memory 400; fi'
    )
    spec = "0,1999-2002,2999-3001,10499"

    r = e2e.run_chain(
        script, *ARGS, config=ladder, sbatch=[f"--array={spec}", "--output=%x-%a.out"]
    )

    assert r.returncode == 0, r.describe()
    status = e2e.status(r.chain_id)
    tasks = e2e.by_index(status)
    assert sorted(tasks) == INDICES
    assert {t["state"] for t in tasks.values()} == {"COMPLETED"}, status
    assert (tasks[3001]["level"], tasks[3001]["attempts"]) == (1, 2)
    # MaxArraySize 2001: 0,1999,2000 | 2001,2002,2999 (+2000) | 3000,3001 (+3000) | 10499 (+10000)
    # | the retry of 3001 (+3000). Blocks are the largest power of ten not above the limit.
    limit = _max_array_size()
    block = 10 ** (len(str(limit)) - 1)
    offsets = sorted({0 if i < limit else i // block * block for i in INDICES})
    retry = 0 if 3001 < limit else 3001 // block * block
    assert [s["offset"] for s in status["submissions"]] == [*offsets, retry], limit

    for index in INDICES:
        log = (e2e.dir / f"{e2e.job_name}-{index}.out").read_text()
        assert f"task={index} " in log, log
        assert "".join(f"arg=[{a}]\n" for a in ARGS) in log, log
        mapped = index >= limit
        assert f"escalate_task_id={index if mapped else 'unset'}" in log, log
        (env,) = e2e.envs(index)[-1:]
        assert env["SLURM_ARRAY_TASK_ID"] == str(index)
    log_3001 = (e2e.dir / f"{e2e.job_name}-3001.out").read_text()
    assert "attempt=1 level=0" in log_3001 and "attempt=2 level=1" in log_3001, log_3001

    # Slurm itself only ever saw in-range indices, one row per attempt.
    rows = e2e.rows_per_index()
    assert max(rows) < limit, rows
    assert sum(rows.values()) == len(INDICES) + 1, rows
    first, second = e2e.task_sacct(tasks[3001])
    assert (first.state, second.state) == ("OUT_OF_MEMORY", "COMPLETED")
    assert first.job_id.endswith("_1") and second.job_id.endswith("_1")


@pytest.mark.timeout(600)
def test_a_long_pending_array_record_is_read_whole(e2e):
    # 40 scattered indices throttled to 2 at a time: sacct shows the pending rest as
    # one "<job>_[...]" record far longer than the 64 characters sacct keeps by default.
    indices = [i * 37 + i * i % 11 for i in range(40)]
    spec = ",".join(map(str, indices))
    script = e2e.job_script("sleep 1")

    r = e2e.run_chain(script, sbatch=[f"--array={spec}%2", "--output=/dev/null"])

    assert r.returncode == 0, r.describe()
    tasks = e2e.by_index(e2e.status(r.chain_id))
    assert sorted(tasks) == sorted(indices)
    assert {t["state"] for t in tasks.values()} == {"COMPLETED"}
    assert {t["attempts"] for t in tasks.values()} == {1}
    (log,) = [d / "monitor.log" for d in e2e.chain_dirs()]
    assert "Slurm query failed" not in log.read_text(), log.read_text()[-2000:]
