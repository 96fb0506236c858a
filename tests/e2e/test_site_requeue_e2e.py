"""Site profile d of issue 11, end to end on the "site" cluster (docker-cluster/site/): Slurm's own
requeue (JobRequeue=1, PreemptMode=REQUEUE).

Slurm reruns a requeued batch job under the same job id: the running task is killed, goes
REQUEUED, then PENDING with a BeginTime about two minutes later, then runs again. ``sacct -j``
shows only the newest run of a job id (``--duplicates`` shows every run). A preempted task shows
PREEMPTED for a few seconds before it is PENDING again. Before this change a preempted task was
resubmitted at once while Slurm reran it too (the task ran twice to completion), and a task
requeued with ``scontrol requeue`` was followed without a word about it.

Here each test requeues a running task, one with ``scontrol requeue`` and one by preemption
(a blocker in ``high`` that needs the whole node s3 of ``low``), and checks that the chain
completes with that task's one job id and no resubmission, that the job ran twice under that id
(the job's own log, Slurm's accounting), and that the monitor's log, ``status --json`` and the
report say that Slurm requeued it.

Neither test is ``disruptive``: the first requeues only its own task (in ``large``), the second
fills node s3, which belongs only to ``low`` and ``high``, which no other test uses.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

pytestmark = pytest.mark.e2e

SBATCH = ["--array=0-1", "--output=%x-%a.out", "--open-mode=append"]
MARKER = "first-run-0"  # written by task 0's first run, which then sleeps until it is requeued
# Task 0 sleeps on its first run only: Slurm's rerun of it (and any resubmission) ends at once.
BODY = f"""echo "run restart=${{SLURM_RESTART_COUNT:-0}} job=$SLURM_JOB_ID"
if [ "$idx" = 0 ] && [ ! -e {MARKER} ]; then touch {MARKER}; sleep 150; fi"""
REQUEUED_NOTE = "followed under its job id, not resubmitted"


def _slurm(site, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """A Slurm command against the site cluster."""
    return subprocess.run(
        list(argv), capture_output=True, text=True, timeout=60, env=site.slurm_env, check=check
    )


def _start_monitor(site, ladder: list[dict[str, str]]) -> tuple[subprocess.Popen[bytes], str]:
    """sbatch_escalate in the background (foreground mode, output to files); its chain id."""
    argv = site.chain_argv(site.job_script(BODY), config=site.ladder(ladder), sbatch=SBATCH)
    with open(site.dir / "monitor.out", "w") as out, open(site.dir / "monitor.err", "w") as err:
        monitor = subprocess.Popen(argv, cwd=site.dir, env=site.env, stdout=out, stderr=err)
    dirs = site.wait_until(site.chain_dirs, timeout=120)
    assert dirs, (site.dir / "monitor.err").read_text() + site.debug()
    return monitor, dirs[0].name


def _wait_monitor(site, monitor: subprocess.Popen[bytes], timeout: float = 600) -> int:
    try:
        return monitor.wait(timeout)
    except subprocess.TimeoutExpired:
        monitor.kill()
        monitor.wait(30)
        pytest.fail(f"the monitor did not finish within {timeout:.0f}s\n{site.debug()}")


def _first_run_going(site, chain_id: str) -> str | None:
    """Task 0's Slurm id ("123_0") once the monitor has seen it RUNNING, its first run has
    begun (the marker) and task 1 has completed; else None."""
    tasks = site.by_index(site.status(chain_id))
    zero = tasks.get(0)
    if not zero or zero["state"] != "RUNNING" or tasks.get(1, {}).get("state") != "COMPLETED":
        return None
    return zero["job_ids"][0] if (site.dir / MARKER).exists() else None


def _runs(site, job: str, task_id: str) -> list[dict[str, str]]:
    """Every run of one array task in accounting, oldest first: ``--duplicates`` shows each
    run of a requeued job under its one job id (JobIDRaw is the task's own id)."""
    fields = "JobID,JobIDRaw,State,Start,End,NodeList,Partition"
    out = _slurm(site, "sacct", "-n", "-P", "-X", "--duplicates", "-j", job, "-o", fields).stdout
    keys = ("job_id", "raw", "state", "start", "end", "node", "partition")
    lines = [line for line in out.splitlines() if line.strip()]
    rows = [dict(zip(keys, line.split("|"), strict=True)) for line in lines]
    for row in rows:
        row["state"] = row["state"].split()[0]
    return [row for row in rows if row["job_id"] == task_id]


def _wait_runs(site, job: str, task_id: str, states: list[str]) -> list[dict[str, str]]:
    """The task's runs once accounting has recorded them all (slurmdbd lags slurmctld)."""
    runs = site.wait_until(
        lambda: (r := _runs(site, job, task_id)) and [x["state"] for x in r] == states and r,
        timeout=60,
        interval=2,
    )
    assert runs, (_runs(site, job, task_id), states)
    return runs


def _job_log_runs(site, index: int) -> list[tuple[int, str]]:
    """(SLURM_RESTART_COUNT, SLURM_JOB_ID) of every run the task's own log (appended) shows."""
    log = (site.dir / f"{site.job_name}-{index}.out").read_text()
    return [(int(r), j) for r, j in re.findall(r"^run restart=(\d+) job=(\d+)$", log, re.M)]


def _check_followed_not_resubmitted(site, chain_id: str, job: str, task_id: str) -> None:
    """The chain completed with task 0 rerun by Slurm under its one job id, nothing resubmitted;
    the monitor's log, status --json and the report (md, json, html) say Slurm requeued it."""
    status = site.status(chain_id)
    assert status["state"] == "COMPLETED", status
    tasks = site.by_index(status)
    got = {i: (t["state"], t["level"], t["attempts"], t["job_ids"]) for i, t in tasks.items()}
    assert got == {
        0: ("COMPLETED", 0, 1, [task_id]),
        1: ("COMPLETED", 0, 1, [f"{job}_1"]),
    }, status
    assert [s["job_id"] for s in status["submissions"]] == [job], status["submissions"]
    assert [h["requeues"] for h in tasks[0]["history"]] == [1], tasks[0]["history"]
    assert [h["requeues"] for h in tasks[1]["history"]] == [0], tasks[1]["history"]

    # Slurm's facts: one job id under this job name, nothing left queued, one row per task
    # without --duplicates
    assert {site.job_base(j) for j in site.jobs_named()} == {job}, site.jobs_named()
    queued = _slurm(site, "squeue", "-h", "-n", site.job_name, "-o", "%i").stdout.strip()
    assert queued == "", queued
    rows = site.wait_until(
        lambda: (r := site.rows_per_index()) == {0: 1, 1: 1} and r, timeout=60, interval=2
    )
    assert rows == {0: 1, 1: 1}, site.rows_per_index()
    final = site.sacct(job, want=[task_id, f"{job}_1"])
    assert (final[task_id].state, final[f"{job}_1"].state) == ("COMPLETED", "COMPLETED"), final

    # the job's own log: two runs of task 0 under one job id, the second one Slurm's restart
    runs_0 = _job_log_runs(site, 0)
    assert len(runs_0) == 2 and runs_0[0][1] == runs_0[1][1], runs_0
    assert [r for r, _ in runs_0] == [0, 1], runs_0
    assert [r for r, _ in _job_log_runs(site, 1)] == [0], _job_log_runs(site, 1)
    (env_0,) = site.envs(0)  # one job id: the rerun wrote over the first run's dump
    assert env_0["SLURM_RESTART_COUNT"] == "1", env_0.get("SLURM_RESTART_COUNT")
    assert env_0["SLURM_ESCALATE_ATTEMPT"] == "1"

    log = (site.home / "chains" / chain_id / "monitor.log").read_text()
    note = f"task {task_id} was requeued by Slurm ("
    requeued = [line for line in log.splitlines() if note in line]
    assert len(requeued) == 1, log
    assert "requeue 1 of this attempt" in requeued[0] and REQUEUED_NOTE in requeued[0], log
    assert len(re.findall(r"submitted .* as job ", log)) == 1, log
    assert "resubmitting" not in log and "PREEMPTED:" not in log, log
    assert f"task {task_id} COMPLETED at level 0" in log, log

    md = site.slurm_escalate("report", chain_id)
    assert md.returncode == 0, md.describe()
    assert "- resubmissions: 0\n" in md.stdout, md.stdout
    assert (
        f"- requeued by Slurm: 1 requeue(s) of 1 attempt(s): {task_id} (1x) "
        "(Slurm reran them under their job ids; not resubmitted)\n"
    ) in md.stdout, md.stdout
    js = site.slurm_escalate("report", chain_id, "--format", "json")
    assert js.returncode == 0, js.describe()
    (chain,) = json.loads(js.stdout)["chains"]
    assert chain["summary"]["resubmissions"] == 0, chain["summary"]
    attempts = {t["index"]: t["attempts"] for t in chain["tasks"]}
    assert [(a["job_id"], a["outcome"], a["requeues"]) for a in attempts[0]] == [
        (task_id, "COMPLETED", 1)
    ], attempts[0]
    assert [a["requeues"] for a in attempts[1]] == [0], attempts[1]
    html = site.slurm_escalate("report", chain_id, "--format", "html")
    assert html.returncode == 0, html.describe()
    assert "requeued by Slurm" in html.stdout and f"{task_id} (1x)" in html.stdout


# --------------------------------------------------------------------------- scontrol requeue


@pytest.mark.timeout(900)
def test_scontrol_requeue_of_a_running_task_is_followed_under_its_job_id(site):
    ladder = [
        {"partition": "large", "mem": "100M", "time": "00:05:00"},
        {"partition": "large", "mem": "200M", "time": "00:06:00"},
    ]
    monitor, chain_id = _start_monitor(site, ladder)
    try:
        task_id = site.wait_until(lambda: _first_run_going(site, chain_id), timeout=240, interval=2)
        assert task_id, json.dumps(site.status(chain_id), indent=1) + site.debug()
        job = site.job_base(task_id)

        requeue = _slurm(site, "scontrol", "requeue", task_id, check=False)

        assert requeue.returncode == 0, requeue
        rc = _wait_monitor(site, monitor)
    finally:
        if monitor.poll() is None:
            monitor.kill()
            monitor.wait(30)
    assert rc == 0, (site.dir / "monitor.err").read_text() + site.debug()

    # Slurm requeued it: the first run's row is REQUEUED, the rerun's COMPLETED, one job id
    first, second = _wait_runs(site, job, task_id, ["REQUEUED", "COMPLETED"])
    assert first["raw"] == second["raw"], (first, second)
    assert first["partition"] == second["partition"] == "large", (first, second)
    assert second["start"] >= first["end"], (first, second)
    log_0 = (site.dir / f"{site.job_name}-0.out").read_text()
    killed = rf"JOB {first['raw']} ON {first['node']} CANCELLED AT \S+ DUE TO JOB REQUEUE"
    assert re.search(killed, log_0), log_0
    _check_followed_not_resubmitted(site, chain_id, job, task_id)
    assert site.by_index(site.status(chain_id))[0]["history"][0]["start"] == second["start"]


# --------------------------------------------------------------------------- preemption


@pytest.mark.timeout(900)
def test_task_preempted_with_preempt_mode_requeue_is_followed_under_its_job_id(site):
    ladder = [
        {"partition": "low", "mem": "100M", "time": "00:05:00"},
        {"partition": "low", "mem": "200M", "time": "00:06:00"},
    ]
    config = _slurm(site, "scontrol", "show", "config").stdout
    assert re.search(r"^PreemptMode\s*=\s*REQUEUE$", config, re.M), "PreemptMode=REQUEUE expected"
    assert re.search(r"^PreemptType\s*=\s*preempt/partition_prio$", config, re.M)
    monitor, chain_id = _start_monitor(site, ladder)
    blocker = None
    try:
        task_id = site.wait_until(lambda: _first_run_going(site, chain_id), timeout=240, interval=2)
        assert task_id, json.dumps(site.status(chain_id), indent=1) + site.debug()
        job = site.job_base(task_id)

        # all four CPUs of s3 in the higher-tier partition: Slurm preempts (requeues) task 0
        sub = _slurm(
            site,
            "sbatch",
            "--parsable",
            "--partition=high",
            "--cpus-per-task=4",
            "--mem=100M",
            "--time=1",
            f"--job-name={site.job_name}-blocker",
            "--output=/dev/null",
            "--wrap",
            "sleep 15",
        )
        blocker = sub.stdout.strip().split(";")[0]

        rc = _wait_monitor(site, monitor)
    finally:
        if monitor.poll() is None:
            monitor.kill()
            monitor.wait(30)
        if blocker:
            _slurm(site, "scancel", blocker, check=False)
    assert rc == 0, (site.dir / "monitor.err").read_text() + site.debug()

    # Slurm preempted it for the blocker and reran it under the same job id once s3 was free
    first, second = _wait_runs(site, job, task_id, ["PREEMPTED", "COMPLETED"])
    assert first["raw"] == second["raw"], (first, second)
    assert first["node"] == second["node"] == "s3", (first, second)
    (b,) = _wait_runs(site, blocker, blocker, ["COMPLETED"])
    assert (b["state"], b["partition"], b["node"]) == ("COMPLETED", "high", "s3"), b
    assert first["end"] <= b["start"] and second["start"] >= b["end"], (first, b, second)
    log_0 = (site.dir / f"{site.job_name}-0.out").read_text()
    assert re.search(rf"JOB {first['raw']} ON s3 CANCELLED AT \S+ DUE TO PREEMPTION", log_0), log_0
    _check_followed_not_resubmitted(site, chain_id, job, task_id)
    assert site.by_index(site.status(chain_id))[0]["history"][0]["start"] == second["start"]
