"""End to end on the real cluster: OUT_OF_MEMORY escalation, no-retry failures,
only-the-failed-indices resubmission, appended per-task logs, ladder bounds.

Memory tests run on day/week (devel is kept for tests that need its limits) with
short jobs: an OOM shows up within seconds, so each of these takes well under a
minute when the cluster is idle.
"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.e2e

# Level 0 is too small for 400 MiB, level 1 is big enough.
OOM_LADDER = [
    {"partition": "day", "mem": "150M", "time": "00:02:00"},
    {"partition": "week", "mem": "700M", "time": "00:02:00"},
]
NEEDS_400M = "use_memory 400 || exit 1"


@pytest.mark.core
@pytest.mark.timeout(600)
def test_oom_escalates_to_next_level_and_completes(e2e):
    ladder = e2e.ladder(OOM_LADDER)
    script = e2e.job_script(f'if [ "$idx" = 1 ]; then {NEEDS_400M}; fi')

    r = e2e.run_chain(script, config=ladder, sbatch=["--array=0-1", "--output=%x-%a.out"])

    assert r.returncode == 0, r.describe()
    status = e2e.status(r.chain_id)
    assert status["state"] == "COMPLETED", status
    tasks = e2e.by_index(status)
    assert sorted(tasks) == [0, 1]
    assert (tasks[0]["state"], tasks[0]["level"], tasks[0]["attempts"]) == ("COMPLETED", 0, 1)
    assert (tasks[1]["state"], tasks[1]["level"], tasks[1]["attempts"]) == ("COMPLETED", 1, 2)
    assert len(tasks[1]["job_ids"]) == 2

    first, second = e2e.task_sacct(tasks[1])
    assert (first.state, first.exit_code) == ("OUT_OF_MEMORY", "0:125"), first
    assert (first.partition, first.req_mem) == ("day", "150M"), first
    assert (second.state, second.exit_code) == ("COMPLETED", "0:0"), second
    assert (second.partition, second.req_mem) == ("week", "700M"), second
    (only,) = e2e.task_sacct(tasks[0])
    assert (only.state, only.partition) == ("COMPLETED", "day"), only


@pytest.mark.timeout(600)
def test_oom_non_array_job_is_a_one_task_chain(e2e):
    ladder = e2e.ladder(OOM_LADDER)
    script = e2e.job_script(NEEDS_400M)

    r = e2e.run_chain(script, config=ladder, sbatch=["--output=%x.out"])

    assert r.returncode == 0, r.describe()
    status = e2e.status(r.chain_id)
    assert status["state"] == "COMPLETED", status
    assert len(status["tasks"]) == 1, status
    (task,) = status["tasks"]
    assert task["index"] is None, task
    assert (task["state"], task["level"], task["attempts"]) == ("COMPLETED", 1, 2)
    assert [e2e.job_base(s["job_id"]) for s in status["submissions"]] == [
        e2e.job_base(j) for j in task["job_ids"]
    ]
    assert [row.state for row in e2e.task_sacct(task)] == ["OUT_OF_MEMORY", "COMPLETED"]
    log = (e2e.dir / f"{e2e.job_name}.out").read_text()
    assert "attempt=1 level=0" in log and "attempt=2 level=1" in log, log

    # The chain is listed (this test's SLURM_ESCALATE_HOME holds only it).
    listed = e2e.slurm_escalate("list", "--json")
    assert listed.returncode == 0, listed.describe()
    chains = json.loads(listed.stdout)
    assert [(c["chain_id"], c["state"]) for c in chains] == [(r.chain_id, "COMPLETED")]
    text = e2e.slurm_escalate("list")
    assert text.returncode == 0 and r.chain_id in text.stdout, text.describe()


@pytest.mark.core
@pytest.mark.timeout(600)
def test_code_error_is_not_retried(e2e):
    ladder = e2e.ladder(
        [
            {"partition": "week", "mem": "100M", "time": "00:02:00"},
            {"partition": "week", "mem": "200M", "time": "00:02:00"},
        ]
    )
    script = e2e.job_script('if [ "$idx" = 1 ]; then echo "bug in task 1" >&2; exit 3; fi')

    r = e2e.run_chain(script, config=ladder, sbatch=["--array=0-1", "--output=%x-%a.out"])

    assert r.returncode == 1, r.describe()
    status = e2e.status(r.chain_id)
    assert status["state"] == "FAILED", status
    tasks = e2e.by_index(status)
    assert (tasks[0]["state"], tasks[0]["attempts"]) == ("COMPLETED", 1)
    bad = tasks[1]
    assert (bad["state"], bad["level"], bad["attempts"]) == ("FAILED", 0, 1), bad
    assert e2e.exit_code_of(bad["exit_code"]) == 3, bad
    assert len(bad["job_ids"]) == 1, bad
    assert len(status["submissions"]) == 1, status["submissions"]
    (row,) = e2e.task_sacct(bad)
    assert (row.state, row.exit_code) == ("FAILED", "3:0"), row
    # Nothing else was ever submitted under this job name.
    first_id = e2e.job_base(status["submissions"][0]["job_id"])
    assert {e2e.job_base(j) for j in e2e.jobs_named()} == {first_id}


@pytest.mark.timeout(600)
def test_mixed_array_resubmits_only_failed_indices_under_their_own_index(e2e):
    oom = {1, 4, 6}
    ladder = e2e.ladder(OOM_LADDER)
    cases = " | ".join(str(i) for i in sorted(oom))
    script = e2e.job_script(f'case "$idx" in {cases}) {NEEDS_400M} ;; *) sleep 1 ;; esac')

    r = e2e.run_chain(script, config=ladder, sbatch=["--array=0-7", "--output=%x-%a.out"])

    assert r.returncode == 0, r.describe()
    status = e2e.status(r.chain_id)
    assert status["state"] == "COMPLETED", status
    tasks = e2e.by_index(status)
    assert sorted(tasks) == list(range(8))
    for i, task in tasks.items():
        want = ("COMPLETED", 1, 2) if i in oom else ("COMPLETED", 0, 1)
        assert (task["state"], task["level"], task["attempts"]) == want, task

    subs = status["submissions"]
    assert e2e.array_indices(subs[0]["array"]) == set(range(8)), subs
    assert subs[0]["level"] == 0, subs
    later = subs[1:]
    assert later, subs
    # Usually one resubmission holds all three; if the OOMs were seen in different
    # polls there may be more, but together they hold exactly the failed indices once.
    resubmitted = [i for s in later for i in sorted(e2e.array_indices(s["array"]))]
    assert sorted(resubmitted) == sorted(oom), later
    assert all(s["level"] == 1 for s in later), later

    first_id = e2e.job_base(subs[0]["job_id"])
    rows = e2e.sacct(first_id, want=[f"{first_id}_{i}" for i in range(8)])
    assert {k: v.state for k, v in rows.items()} == {
        f"{first_id}_{i}": "OUT_OF_MEMORY" if i in oom else "COMPLETED" for i in range(8)
    }
    seen: set[str] = set()
    for sub in later:
        job = e2e.job_base(sub["job_id"])
        want = {f"{job}_{i}" for i in e2e.array_indices(sub["array"])}
        rows = e2e.sacct(job, want=want)
        assert set(rows) == want, (sub, rows)
        assert all(v.state == "COMPLETED" and v.partition == "week" for v in rows.values()), rows
        seen |= set(rows)
    assert {k.split("_")[1] for k in seen} == {str(i) for i in oom}


@pytest.mark.timeout(600)
def test_per_task_log_is_appended_across_attempts(e2e):
    ladder = e2e.ladder(
        [
            {"partition": "devel", "mem": "150M", "time": "00:02:00"},
            {"partition": "day", "mem": "700M", "time": "00:02:00"},
        ]
    )
    # The output pattern comes from the script itself; %A would change between
    # submissions, %x-%a stays the same file for a task.
    script = e2e.job_script(
        f'if [ "$idx" = 0 ]; then {NEEDS_400M}; fi', sbatch=["--output=%x-%a.out"]
    )

    r = e2e.run_chain(script, config=ladder, sbatch=["--array=0-1"])

    assert r.returncode == 0, r.describe()
    status = e2e.status(r.chain_id)
    tasks = e2e.by_index(status)
    jobs = [e2e.job_base(j) for j in tasks[0]["job_ids"]]
    assert len(jobs) == 2, tasks[0]

    log = (e2e.dir / f"{e2e.job_name}-0.out").read_text()
    first = log.find(f"attempt=1 level=0 chain={r.chain_id} task=0")
    second = log.find(f"attempt=2 level=1 chain={r.chain_id} task=0")
    assert 0 <= first < second, log
    assert "oom" in log[first:second].lower() or "Killed" in log[first:second], log
    assert log.count("done task=0") == 1 and log.rfind("done task=0") > second, log

    other = (e2e.dir / f"{e2e.job_name}-1.out").read_text()
    assert other.count("attempt=") == 1 and "attempt=1 level=0" in other, other
    # No stray per-job files: every attempt wrote into the task's own log.
    outs = sorted(p.name for p in e2e.dir.glob("*.out"))
    assert outs == [f"{e2e.job_name}-0.out", f"{e2e.job_name}-1.out"], outs


@pytest.mark.timeout(600)
def test_max_level_caps_the_ladder_and_task_ends_exhausted(e2e):
    ladder = e2e.ladder(
        [
            {"partition": "day", "mem": "100M", "time": "00:02:00"},
            {"partition": "day", "mem": "150M", "time": "00:02:00"},
            {"partition": "week", "mem": "700M", "time": "00:02:00"},  # never reached
        ]
    )
    script = e2e.job_script(NEEDS_400M)

    r = e2e.run_chain(script, config=ladder, own=["--max-level", "1"], sbatch=["--output=%x.out"])

    assert r.returncode == 1, r.describe()
    status = e2e.status(r.chain_id)
    assert status["state"] == "FAILED", status
    (task,) = status["tasks"]
    assert (task["state"], task["level"], task["attempts"]) == ("EXHAUSTED", 1, 2), task
    rows = e2e.task_sacct(task)
    assert [(x.state, x.req_mem) for x in rows] == [
        ("OUT_OF_MEMORY", "100M"),
        ("OUT_OF_MEMORY", "150M"),
    ]
    assert [s["level"] for s in status["submissions"]] == [0, 1]


@pytest.mark.timeout(600)
def test_start_level_skips_the_lower_rungs(e2e):
    ladder = e2e.ladder(OOM_LADDER)
    script = e2e.job_script(NEEDS_400M)

    r = e2e.run_chain(script, config=ladder, own=["--start-level", "1"], sbatch=["--output=%x.out"])

    assert r.returncode == 0, r.describe()
    status = e2e.status(r.chain_id)
    (task,) = status["tasks"]
    assert (task["state"], task["level"], task["attempts"]) == ("COMPLETED", 1, 1), task
    (row,) = e2e.task_sacct(task)
    assert (row.state, row.partition, row.req_mem) == ("COMPLETED", "week", "700M")
    env = e2e.envs(None)[0]
    assert env.get("SLURM_ESCALATE_LEVEL") == "1", env.get("SLURM_ESCALATE_LEVEL")
    assert env.get("SLURM_ESCALATE_ATTEMPT") == "1"
