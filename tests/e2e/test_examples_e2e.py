"""End to end on the real cluster: the shipped examples do what examples/README.md says.

Both run the example files in place (job output lands in the test's directory)
with a unique --job-name on the command line overriding the scripts' own.
"""

from __future__ import annotations

import re
import subprocess

import pytest

pytestmark = pytest.mark.e2e


def test_example_files_are_valid(e2e):
    from slurm_escalate.state.ladder_file import load_policy

    for name in ("ladder.yaml", "ladder-checkpoint.yaml"):
        assert load_policy(e2e.examples / name).levels, name
    for name in ("variable-job.sh", "checkpoint-job.sh"):
        path = e2e.examples / name
        assert path.stat().st_mode & 0o111, f"{name} is not executable"
        subprocess.run(["bash", "-n", str(path)], check=True)


@pytest.mark.timeout(900)
def test_variable_job_example(e2e):
    oom, slow, bug = {3, 7}, {5, 10}, 9

    r = e2e.run_chain(
        e2e.examples / "variable-job.sh",
        config=e2e.examples / "ladder.yaml",
        sbatch=["--array=0-11"],
        timeout=840,
    )

    assert r.returncode == 1, r.describe()  # task 9 fails on purpose
    status = e2e.status(r.chain_id)
    assert status["state"] == "FAILED", status
    tasks = e2e.by_index(status)
    assert sorted(tasks) == list(range(12))
    for i, task in tasks.items():
        if i in oom | slow:
            want = ("COMPLETED", 1, 2)
        elif i == bug:
            want = ("FAILED", 0, 1)
        else:
            want = ("COMPLETED", 0, 1)
        assert (task["state"], task["level"], task["attempts"]) == want, task
    assert e2e.exit_code_of(tasks[bug]["exit_code"]) == 3, tasks[bug]

    for i in oom | slow:
        first, second = e2e.task_sacct(tasks[i])
        assert first.state == ("OUT_OF_MEMORY" if i in oom else "TIMEOUT"), (i, first)
        assert (first.partition, second.partition, second.state) == ("devel", "day", "COMPLETED")
    resubmitted = [i for s in status["submissions"][1:] for i in e2e.array_indices(s["array"])]
    assert sorted(resubmitted) == sorted(oom | slow), status["submissions"]

    for i in oom | slow:
        log = (e2e.dir / f"variable-{i}.out").read_text()
        banners = re.findall(r"attempt (\d+) level (\d+) chain (\S+)", log)
        assert banners == [("1", "0", r.chain_id), ("2", "1", r.chain_id)], log
    log = (e2e.dir / f"variable-{bug}.out").read_text()
    assert "exits 3" in log and log.count("=== ") == 1, log


@pytest.mark.core
@pytest.mark.timeout(900)
def test_checkpoint_example_resumes_after_timeout(e2e):
    # 21 units of 5 s: more than a 1-minute limit can hold even with Slurm's grace
    # (so attempt 1 times out), little enough that attempt 2 always finishes.
    units = 21

    r = e2e.run_chain(
        e2e.examples / "checkpoint-job.sh",
        str(units),
        "5",
        config=e2e.examples / "ladder-checkpoint.yaml",
        sbatch=["--array=0-1"],
        timeout=840,
    )

    assert r.returncode == 0, r.describe()
    status = e2e.status(r.chain_id)
    assert status["state"] == "COMPLETED", status
    for index, task in e2e.by_index(status).items():
        assert task["state"] == "COMPLETED" and task["level"] == 0, task
        assert task["attempts"] >= 2, task
        rows = e2e.task_sacct(task)
        assert [x.state for x in rows] == ["TIMEOUT"] * (len(rows) - 1) + ["COMPLETED"], rows
        assert {x.partition for x in rows} == {"devel"}, rows

        log = (e2e.dir / f"checkpoint-{index}.out").read_text()
        starts = [int(u) for u in re.findall(r"resuming at unit (\d+) of", log)]
        assert len(starts) == task["attempts"], log
        assert starts[0] == 0 and starts == sorted(set(starts)), starts  # progress kept
        assert f"all {units} units done" in log, log
        ckpt = e2e.dir / "checkpoints" / f"{r.chain_id}-{index}.ckpt"
        assert ckpt.read_text().strip() == str(units)
