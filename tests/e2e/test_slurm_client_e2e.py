"""SlurmClient against the live local cluster (docker-cluster/cluster.sh up).

A 3-task array on ``devel`` where task 1 allocates 300MB under ``--mem=100M``:
the cgroup OOM killer must show up as OUT_OF_MEMORY with ExitCode 0:125, the
other tasks must complete, and the script arguments must arrive unchanged.
"""

from __future__ import annotations

import shlex
import shutil
import sys
import time
from pathlib import Path

import pytest

from slurm_escalate.core.classify import classify
from slurm_escalate.core.models import FailureKind, Policy, SlurmState, TaskRecord
from slurm_escalate.slurm.client import SlurmClient, SlurmCommands
from slurm_escalate.slurm.runner import SubprocessRunner

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("sbatch") is None, reason="no Slurm on PATH"),
]

POLL_TIMEOUT_S = 120
SCRIPT_ARGS = ["a b", "$HOME", ";", "*", "'q'", '"dq"', "tab\there"]
SCRIPT = """#!/bin/bash
printf '%s\\0' "$@" > "args_${{SLURM_ARRAY_TASK_ID}}.bin"
if [ "$SLURM_ARRAY_TASK_ID" = 1 ]; then
    {python} -c 'import time; b = b"x" * (300 << 20); time.sleep(2)'
fi
echo "task $SLURM_ARRAY_TASK_ID done"
"""


def wait_until_final(client: SlurmClient, job_id: str, count: int) -> list[TaskRecord]:
    deadline = time.monotonic() + POLL_TIMEOUT_S
    records: list[TaskRecord] = []
    while time.monotonic() < deadline:
        records = client.query([job_id])
        if len(records) == count and all(r.job.state.is_final for r in records):
            return records
        time.sleep(2)
    states = [(r.index, r.job.state_text) for r in records]
    pytest.fail(f"job {job_id} not final after {POLL_TIMEOUT_S}s: {states}")


def test_oom_task_is_classified_out_of_memory(tmp_path: Path) -> None:
    script = tmp_path / "job.sh"
    script.write_text(SCRIPT.format(python=shlex.quote(sys.executable)))
    runner = SubprocessRunner()
    client = SlurmCommands(runner)
    job_id = client.submit(
        [
            "-p", "devel", "-t", "1", "--mem=100M", "--array=0-2",
            "-J", "e2e oom; $name", f"--chdir={tmp_path}", "-o", "slurm-%A_%a.out",
            str(script), *SCRIPT_ARGS,
        ],
        cwd=str(tmp_path),
    )  # fmt: skip
    finished = False
    try:
        records = wait_until_final(client, job_id, 3)
        finished = True
    finally:
        if not finished:
            client.cancel([job_id])  # our own job only

    assert [(r.array_job_id, r.index) for r in records] == [(job_id, 0), (job_id, 1), (job_id, 2)]
    kinds = {r.index: classify(r, Policy()).kind for r in records}
    K = FailureKind
    assert kinds == {0: K.COMPLETED, 1: K.OUT_OF_MEMORY, 2: K.COMPLETED}
    oom = records[1]
    assert any(row.exit_signal == 125 for row in (oom.job, *oom.steps))
    assert any(row.state is SlurmState.OUT_OF_MEMORY for row in (oom.job, *oom.steps))
    for ok in (records[0], records[2]):
        assert ok.job.state is SlurmState.COMPLETED and ok.job.name == "e2e oom; $name"
        raw = (tmp_path / f"args_{ok.index}.bin").read_bytes()
        assert raw.split(b"\0")[:-1] == [a.encode() for a in SCRIPT_ARGS]
    assert runner.calls["sbatch"] == 1
    assert runner.calls["sacct"] >= 1
