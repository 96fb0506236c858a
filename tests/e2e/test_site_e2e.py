"""Site profiles a, b and e of issue 11, end to end on the "site" cluster (docker-cluster/site/).

The site cluster is configured with Slurm's defaults where it matters here: accounting keeps no
job comments and a finished job leaves slurmctld's memory after MinJobAge (10 s; the purge runs
about once a minute), MaxArraySize is 1001, and it is a second cluster registered in the host's
slurmdbd, so ``-M site`` from the host's configuration reaches it.

a. A monitor killed inside sbatch (or whose sbatch timed out after submitting) and resumed after
   the job has left slurmctld's memory must find the job by its token, which then survives only
   in sacct's SubmitLine (``--comment=<token>``), and must not submit the same tasks again.
b. Indices above MaxArraySize=1001 keep their identity.
e. ``sbatch_escalate -M site`` from the host's configuration: every Slurm call follows the chain
   to the site cluster (the ladder check, the poll, resubmissions, cancel).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

LADDER = [
    {"partition": "small", "mem": "100M", "time": "00:01:00"},
    {"partition": "large", "mem": "500M", "time": "00:02:00"},
]
OOM = 1  # needs 300M: OUT_OF_MEMORY at level 0 (100M), completes at level 1
EXPECTED_ROWS = {0: 1, 1: 2, 2: 1}  # sacct rows per index: one per attempt, nothing twice
SBATCH = ["--array=0-2", "--output=%x-%a.out"]


def _script(site):
    return site.job_script(
        f'if [ "$idx" = {OOM} ] && [ "$SLURM_ESCALATE_LEVEL" = 0 ]; then use_memory 300; '
        "else sleep 1; fi"
    )


def _slurm(site, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """A Slurm command against the site cluster."""
    return subprocess.run(
        list(argv), capture_output=True, text=True, timeout=60, env=site.slurm_env, check=check
    )


def _in_controller(site, job_id: str) -> bool:
    return _slurm(site, "scontrol", "show", "job", job_id, check=False).returncode == 0


def _wait_left_controller(site, job_id: str) -> None:
    """Until slurmctld has purged the job (MinJobAge 10 s, purge about once a minute)."""
    gone = site.wait_until(lambda: not _in_controller(site, job_id), timeout=300, interval=2)
    assert gone, f"job {job_id} still in slurmctld's memory after 300 s\n{site.debug()}"
    # ... and squeue no longer shows its comment: only accounting is left
    q = _slurm(site, "squeue", "-h", "--states=all", "-j", job_id, "-o", "%k", check=False)
    assert q.stdout.strip() == "", q


def _base_jobs(site) -> list[str]:
    return sorted({site.job_base(j) for j in site.jobs_named()}, key=int)


def _accounting(site, job_id: str) -> tuple[str, str]:
    """(Comment, SubmitLine) of a job as sacct has them (SubmitLine last: it may hold '|')."""
    out = _slurm(
        site, "sacct", "-n", "-P", "-X", "-j", job_id, "--format=Comment,SubmitLine"
    ).stdout
    comment, _, submit_line = out.splitlines()[0].partition("|")
    return comment, submit_line


def _monitor_log(site, chain_id: str) -> str:
    return (site.home / "chains" / chain_id / "monitor.log").read_text()


def _check_no_duplicate(site, chain_id: str) -> None:
    status = site.wait_chain(chain_id)
    tasks = site.by_index(status)
    got = {i: (t["state"], t["level"], t["attempts"]) for i, t in tasks.items()}
    assert got == {0: ("COMPLETED", 0, 1), 1: ("COMPLETED", 1, 2), 2: ("COMPLETED", 0, 1)}, status
    rows = site.wait_until(
        lambda: (r := site.rows_per_index()) == EXPECTED_ROWS and r, timeout=60, interval=2
    )
    assert rows == EXPECTED_ROWS, (site.rows_per_index(), status["submissions"])
    # the first submission and the escalation of task 1, nothing else under this job name
    assert len(_base_jobs(site)) == 2, (_base_jobs(site), status["submissions"])


# --------------------------------------------------------------------------- profile a


@pytest.mark.timeout(900)
def test_sigkill_after_sbatch_resumed_after_the_job_left_slurmctld(site):
    env = {**site.env, "SLURM_ESCALATE_CRASH_AT": "after-sbatch:1"}
    argv = site.chain_argv(_script(site), config=site.ladder(LADDER), sbatch=SBATCH)
    crashed = site._run(argv, 300, env)
    assert crashed.returncode == -signal.SIGKILL, crashed.describe()
    (chain_dir,) = site.chain_dirs()
    chain_id = chain_dir.name

    jobs = site.wait_until(lambda: _base_jobs(site), timeout=60)
    assert len(jobs) == 1, jobs
    (job,) = jobs
    _wait_left_controller(site, job)
    comment, submit_line = _accounting(site, job)
    token = f"slurm-escalate:{chain_id}:1"
    assert comment == "", "this site must not store comments in accounting"
    assert f"--comment={token}" in submit_line.split(), submit_line

    resumed = site.slurm_escalate("resume", chain_id, "--min-poll", "1", timeout=600)

    assert resumed.returncode == 0, resumed.describe() + site.debug()
    log = _monitor_log(site, chain_id)
    assert f"submission 1 was interrupted; found it as job {job}" in log, log
    assert "never reached Slurm" not in log, log
    _check_no_duplicate(site, chain_id)


SBATCH_HANGS = """#!/bin/bash
# test harness: the second sbatch submits for real, then hangs past the tool's sbatch timeout
state={state}
n=$(( $(cat "$state/sbatch-calls" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "$state/sbatch-calls"
[ "$n" = 2 ] || exec /usr/bin/sbatch "$@"
out=$(/usr/bin/sbatch "$@") || {{ echo "$out"; exit 1; }}
echo "${{out%%;*}}" > "$state/hung-job"
exec sleep 600
"""
UNREACHABLE = """#!/bin/bash
# test harness: once sbatch hung, Slurm cannot be asked either (the token lookup fails)
if [ -f {state}/hung-job ]; then
    echo "{name}: error: Socket timed out on send/recv operation" >&2
    exit 1
fi
exec /usr/bin/{name} "$@"
"""


def _unknown_recorded(chain_dir: Path) -> bool:
    """The journal holds a submission whose sbatch timed out and whose fate is unknown."""
    journal = chain_dir / "journal.jsonl"
    if not journal.is_file():
        return False
    for line in journal.read_text().splitlines():
        try:
            ev = json.loads(line).get("ev", {})
        except json.JSONDecodeError:
            continue
        if ev.get("t") == "sub" and ev.get("status") == "UNKNOWN":
            return True
    return False


@pytest.mark.timeout(900)
def test_sbatch_timed_out_after_submitting_resumed_after_the_job_left_slurmctld(site):
    state = site.dir / "harness"
    bin_dir = state / "bin"
    bin_dir.mkdir(parents=True)
    for name, text in [
        ("sbatch", SBATCH_HANGS.format(state=state)),
        ("sacct", UNREACHABLE.format(state=state, name="sacct")),
        ("squeue", UNREACHABLE.format(state=state, name="squeue")),
    ]:
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    env = {
        **site.env,
        "PATH": f"{bin_dir}:{site.env['PATH']}",
        "SLURM_ESCALATE_SBATCH_TIMEOUT": "5",
    }
    argv = site.chain_argv(_script(site), config=site.ladder(LADDER), sbatch=SBATCH)
    with open(site.dir / "monitor.out", "w") as out, open(site.dir / "monitor.err", "w") as err:
        monitor = subprocess.Popen(argv, cwd=site.dir, env=env, stdout=out, stderr=err)
    try:
        unknown = site.wait_until(
            lambda: site.chain_dirs() and _unknown_recorded(site.chain_dirs()[0]), timeout=240
        )
        assert unknown, (site.dir / "monitor.err").read_text() + site.debug()
        os.kill(monitor.pid, signal.SIGKILL)
        assert monitor.wait(30) == -signal.SIGKILL
    finally:
        if monitor.poll() is None:
            monitor.kill()
            monitor.wait(30)
    (chain_dir,) = site.chain_dirs()
    chain_id = chain_dir.name
    log = _monitor_log(site, chain_id)
    assert "no answer after 5s" in log, log
    hung = (state / "hung-job").read_text().strip()
    _wait_left_controller(site, hung)
    comment, submit_line = _accounting(site, hung)
    assert comment == ""
    assert f"--comment=slurm-escalate:{chain_id}:2" in submit_line.split(), submit_line

    resumed = site.slurm_escalate("resume", chain_id, "--min-poll", "1", timeout=600)

    assert resumed.returncode == 0, resumed.describe() + site.debug()
    log = _monitor_log(site, chain_id)
    assert f"submission 2 was interrupted; found it as job {hung}" in log, log
    assert "never reached Slurm" not in log, log
    _check_no_duplicate(site, chain_id)


# --------------------------------------------------------------------------- profile b


@pytest.mark.timeout(900)
def test_indices_above_the_default_max_array_size_keep_their_identity(site):
    config = _slurm(site, "scontrol", "show", "config").stdout
    assert re.search(r"^MaxArraySize\s*=\s*1001$", config, re.M), "Slurm's default expected"
    indices = [0, 999, 1000, 1001, 1002, 1003, 1500]
    script = site.job_script(
        'echo "escalate_task_id=${SLURM_ESCALATE_TASK_ID:-unset}"\n'
        'if [ "$idx" = 1002 ] && [ "$SLURM_ESCALATE_LEVEL" = 0 ]; then use_memory 300; fi'
    )

    r = site.run_chain(
        script,
        config=site.ladder(LADDER),
        sbatch=["--array=0,999-1003,1500", "--output=%x-%a.out"],
    )

    assert r.returncode == 0, r.describe()
    status = site.status(r.chain_id)
    tasks = site.by_index(status)
    assert sorted(tasks) == indices
    assert {t["state"] for t in tasks.values()} == {"COMPLETED"}, status
    assert (tasks[1002]["level"], tasks[1002]["attempts"]) == (1, 2)
    # 0,999,1000 as they are | 1001-1003,1500 on slots 1-3,500 (+1000) | the retry of 1002 (+1000)
    assert [s["offset"] for s in status["submissions"]] == [0, 1000, 1000], status["submissions"]
    for index in indices:
        log = (site.dir / f"{site.job_name}-{index}.out").read_text()
        assert f"task={index} " in log, log
        assert f"escalate_task_id={index if index >= 1001 else 'unset'}" in log, log
        assert site.envs(index)[-1]["SLURM_ARRAY_TASK_ID"] == str(index)
    log_1002 = (site.dir / f"{site.job_name}-1002.out").read_text()
    assert "attempt=1 level=0" in log_1002 and "attempt=2 level=1" in log_1002, log_1002
    rows = site.rows_per_index()
    assert max(rows) <= 1000 and sum(rows.values()) == len(indices) + 1, rows
    first, second = site.task_sacct(tasks[1002])
    assert (first.state, second.state) == ("OUT_OF_MEMORY", "COMPLETED")
    assert first.job_id.endswith("_2") and second.job_id.endswith("_2")


# --------------------------------------------------------------------------- profile e


def _host_names(site) -> str:
    """This test's jobs as the HOST cluster's accounting knows them (must be none)."""
    env = site.host_env
    return subprocess.run(
        ["sacct", "-n", "-X", "-P", "--name", site.job_name, "-S", "now-2hours", "-o", "JobID"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=True,
    ).stdout.strip()


@pytest.mark.timeout(900)
@pytest.mark.parametrize("given", ["option", "environment"])
def test_clusters_option_from_the_host_config_follows_the_chain_to_that_cluster(site, given):
    """``-M site``, or SLURM_CLUSTERS=site as sbatch also reads it (then the chain writes
    ``--clusters=site`` out, so a resume from a shell without it asks the same cluster)."""
    assert "SLURM_CONF" not in site.host_env
    option = ["-M", "site"] if given == "option" else []
    env = site.host_env if option else {**site.host_env, "SLURM_CLUSTERS": "site"}
    argv = site.chain_argv(_script(site), config=site.ladder(LADDER), sbatch=[*option, *SBATCH])

    r = site._run(argv, 600, env)

    assert r.returncode == 0, r.describe() + site.debug()
    chain_id = r.chain_id
    _check_no_duplicate(site, chain_id)  # site.sacct and friends ask the site cluster
    assert _host_names(site) == "", "nothing ran on the host cluster"
    status = site.status(chain_id)
    log = _monitor_log(site, chain_id)
    for sub in status["submissions"]:
        assert f"as job {sub['job_id']}" in log, log
    rows = site.sacct(*[s["job_id"] for s in status["submissions"]])
    assert {row.partition for row in rows.values()} == {"small", "large"}, rows
    if given == "environment":
        assert "--clusters=site" in status["sbatch_args"], status  # kept for a resume


@pytest.mark.timeout(600)
def test_cancel_of_a_chain_submitted_with_clusters_cancels_on_that_cluster(site):
    script = site.job_script("sleep 300")
    argv = site.chain_argv(
        script,
        own=["--detached"],
        sbatch=["--clusters=site", "--array=0-1", "--mem=50M", "-o", "/dev/null"],
    )
    started = site._run(argv, 60, site.host_env)
    assert started.returncode == 0, started.describe()
    chain_id = started.stdout.split()[0]
    running = site.wait_until(
        lambda: {t["state"] for t in site.status(chain_id)["tasks"]} == {"RUNNING"}, timeout=120
    )
    assert running, site.status(chain_id)
    (job,) = _base_jobs(site)

    cancelled = site._run([*site.slurm_escalate_cli, "cancel", chain_id], 60, site.host_env)

    assert cancelled.returncode == 0, cancelled.describe()
    assert job in cancelled.stdout + cancelled.stderr, cancelled.describe()
    gone = site.wait_until(
        lambda: _slurm(site, "squeue", "-h", "-j", job, check=False).stdout.strip() == "",
        timeout=60,
    )
    assert gone, _slurm(site, "squeue", "-j", job, check=False).stdout
    rows = site.sacct(job)
    assert {row.state for row in rows.values()} == {"CANCELLED"}, rows
    assert _host_names(site) == ""


@pytest.mark.timeout(600)
def test_adopt_with_clusters_finds_and_escalates_a_job_of_that_cluster(site):
    """A plain sbatch array on the site cluster, adopted from the host's config with -M."""
    script = site.job_script(
        f'if [ "$idx" = {OOM} ] && [ "${{SLURM_ESCALATE_LEVEL:-0}}" = 0 ]; then use_memory 300; '
        "else sleep 1; fi"
    )
    sub = _slurm(
        site,
        "sbatch",
        "--parsable",
        f"--job-name={site.job_name}",
        "--array=0-2",
        "-p",
        "small",
        "--mem=100M",
        "-t",
        "1",
        f"--output={site.dir}/%x-%a.out",
        f"--chdir={site.dir}",
        str(script),
    )
    job = sub.stdout.strip().split(";")[0]
    done = site.wait_until(
        lambda: (rows := site.sacct(job)) and len(rows) == 3 and all(
            r.state in ("COMPLETED", "OUT_OF_MEMORY") for r in rows.values()
        ),
        timeout=240,
        interval=2,
    )
    assert done, site.sacct(job)
    ladder = site.ladder(LADDER)

    r = site._run(
        [*site.slurm_escalate_cli, "adopt", job, "-M", "site", "--config", str(ladder)]
        + ["--min-poll", "1"],
        400,
        site.host_env,
    )

    assert r.returncode == 0, r.describe() + site.debug()
    (chain_dir,) = site.chain_dirs()
    status = site.status(chain_dir.name)
    assert "--clusters=site" in status["sbatch_args"], status
    tasks = site.by_index(status)
    assert (tasks[OOM]["state"], tasks[OOM]["level"], tasks[OOM]["attempts"]) == (
        "COMPLETED",
        1,
        2,
    )
    (retry,) = status["submissions"][1:]
    rows = site.sacct(retry["job_id"])
    assert {(row.partition, row.state) for row in rows.values()} == {("large", "COMPLETED")}
    assert _host_names(site) == "", "nothing ran on the host cluster"
