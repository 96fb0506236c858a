"""End to end on the real cluster: watch, log -f, cancel and adopt.

watch runs with a PATH that holds no Slurm command at all, so any Slurm call it
made would fail the command: that is the proof that it reads saved state only.
"""

from __future__ import annotations

import subprocess

import pytest

pytestmark = pytest.mark.e2e

LADDER = [
    {"partition": "week", "mem": "150M", "time": "00:02:00"},
    {"partition": "week", "mem": "700M", "time": "00:02:00"},
]
ACTIVE = {"PENDING", "RUNNING", "REQUEUED", "COMPLETING", "CONFIGURING", "SUSPENDED"}


def _detached(e2e, body: str, array: str, *, mem_ladder: bool = True) -> str:
    script = e2e.job_script(body)
    r = e2e.run_chain(
        script,
        config=e2e.ladder(LADDER) if mem_ladder else None,
        own=["--detached"],
        sbatch=[f"--array={array}", "--output=%x-%a.out"],
        timeout=90,
    )
    assert r.returncode == 0, r.describe()
    return r.chain_id


def _without_slurm(e2e, *args: str, timeout: float = 60):
    """slurm-escalate with no Slurm command reachable on PATH."""
    empty = e2e.dir / "no-slurm-here"
    empty.mkdir(exist_ok=True)
    return e2e._run([*_cli(e2e), *args], timeout, {**e2e.env, "PATH": str(empty)})


def _cli(e2e) -> list[str]:
    # The argv e2e.slurm_escalate uses, minus the arguments.
    probe = e2e.slurm_escalate("--help")
    assert probe.returncode == 0, probe.describe()
    return probe.argv[:-1]


def _sbatch(e2e, *args: str) -> str:
    p = subprocess.run(
        ["sbatch", "--parsable", *args],
        cwd=e2e.dir,
        env=e2e.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0, p.stderr
    return p.stdout.strip().split(";")[0]


def _final_rows(e2e, job: str, keys: list[str], timeout: float = 300) -> dict:
    """sacct rows of ``keys`` once each exists and is final (the cluster may be busy)."""

    def final():
        rows = e2e.sacct(job)
        done = all(k in rows and rows[k].state not in ACTIVE for k in keys)
        return rows if done else None

    rows = e2e.wait_until(final, timeout, interval=2)
    assert rows, f"job {job} did not finish within {timeout:.0f}s\n{e2e.debug()}"
    return rows


@pytest.mark.timeout(600)
def test_watch_once_then_watch_until_the_chain_ends(e2e):
    # Task 1 has a bug (exit 3): the chain ends FAILED, and watch must exit 1.
    chain = _detached(e2e, 'sleep 20; if [ "$idx" = 1 ]; then exit 3; fi', "0-2")
    beat = e2e.home / "chains" / chain / "heartbeat.json"
    assert e2e.wait_until(beat.is_file, 60), e2e.debug()

    r = _without_slurm(e2e, "watch", chain, "--once")
    assert r.returncode == 0, r.describe()
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"chain {chain}  RUNNING"), r.describe()
    assert lines[1].startswith("  tasks 3: "), r.describe()
    assert lines[2].startswith("  monitor: alive, last poll "), r.describe()
    assert lines[3].split() == "level pending running done OOM timeout failed cancelled".split()
    l0 = lines[4].split()
    assert l0[0] == "L0" and int(l0[1]) + int(l0[2]) == 3, r.describe()  # pending + running
    assert "recent events:" in r.stdout and "submitted array 0-2 at level 0" in r.stdout

    r = _without_slurm(e2e, "watch", chain, "--interval", "1", timeout=480)
    assert r.returncode == 1, r.describe()
    last = r.stdout.split("\n\n")[-1]
    assert last.startswith(f"chain {chain}  FAILED"), r.describe()
    assert last.splitlines()[4].split() == ["L0", "0", "0", "2", "0", "0", "1", "0"], last
    assert e2e.status(chain)["state"] == "FAILED"


@pytest.mark.timeout(600)
def test_log_follow_follows_a_detached_chain_to_its_end(e2e):
    # Task 1 runs out of memory at level 0 and completes at level 1.
    chain = _detached(e2e, 'sleep 5; if [ "$idx" = 1 ]; then use_memory 400 || exit 1; fi', "0-1")
    r = e2e.slurm_escalate("log", chain, "-f", timeout=400)
    assert r.returncode == 0, r.describe()
    status = e2e.status(chain)
    assert status["state"] == "COMPLETED"
    subs = status["submissions"]
    assert [s["level"] for s in subs] == [0, 1], subs
    assert f"submitted array 0-1 at level 0 (attempt 1) as job {subs[0]['job_id']}" in r.stdout
    assert f"submitted array 1 at level 1 (attempt 2) as job {subs[1]['job_id']}" in r.stdout
    assert "OUT_OF_MEMORY" in r.stdout
    assert f"chain {chain} COMPLETED after" in r.stdout, r.describe()  # the summary, too
    log = (e2e.home / "chains" / chain / "monitor.log").read_text()
    assert r.stdout == log


@pytest.mark.timeout(600)
def test_cancel_stops_the_chain_and_nothing_else(e2e):
    chain = _detached(e2e, "sleep 300", "0-2", mem_ladder=False)
    other = _sbatch(
        e2e, f"--job-name={e2e.job_name}_other", "-p", "devel", "-t", "2", "--wrap", "sleep 110"
    )
    try:
        pid_file = e2e.home / "chains" / chain / "monitor.pid"
        assert e2e.wait_until(pid_file.is_file, 30), e2e.debug()
        daemon = int(pid_file.read_text().split()[1])
        assert e2e.pid_alive(daemon)
        job = e2e.status(chain)["submissions"][0]["job_id"]

        r = e2e.slurm_escalate("cancel", chain)
        assert r.returncode == 0, r.describe()
        assert f"scancel {job};" in r.stdout and "3 task(s) marked CANCELLED" in r.stdout

        # Tasks cancelled while pending stay one "<job>_[0-2]" row in sacct.
        states = {}
        for row in e2e.sacct(job).values():
            for i in e2e.array_indices(row.job_id.partition("_")[2]):
                states[i] = row.state
        assert states == dict.fromkeys(range(3), "CANCELLED"), states
        assert e2e.wait_until(lambda: not e2e.pid_alive(daemon), 30), "monitor still running"
        status = e2e.status(chain)
        assert status["state"] == "CANCELLED"
        assert {t["state"] for t in status["tasks"]} == {"CANCELLED"}

        queued = subprocess.run(
            ["squeue", "-h", "-j", other, "-o", "%T"], capture_output=True, text=True, timeout=60
        )
        assert queued.stdout.strip() in ("PENDING", "RUNNING"), queued

        again = e2e.slurm_escalate("cancel", chain)
        assert again.returncode == 0 and "already CANCELLED" in again.stdout, again.describe()
    finally:
        subprocess.run(["scancel", other], capture_output=True, timeout=60)


@pytest.mark.timeout(600)
def test_adopt_a_plain_sbatch_array_dry_run_then_for_real(e2e):
    # Tasks 1 and 3 need 400M: OUT_OF_MEMORY with the 150M they were given.
    script = e2e.job_script('case "$idx" in 1|3) use_memory 400 || exit 1 ;; *) sleep 2 ;; esac')
    job = _sbatch(
        e2e,
        "--array=0-3",
        f"--job-name={e2e.job_name}",
        "-p",
        "week",
        "--mem=150M",
        "-t",
        "2",
        "--output=%x-%a.out",
        str(script),
        "some-arg",
    )
    keys = [f"{job}_{i}" for i in range(4)]
    rows = _final_rows(e2e, job, keys)
    assert [rows[k].state for k in keys] == [
        "COMPLETED",
        "OUT_OF_MEMORY",
        "COMPLETED",
        "OUT_OF_MEMORY",
    ], rows
    ladder = e2e.ladder(LADDER)

    dry = e2e.slurm_escalate("adopt", job, "--config", str(ladder), "--dry-run")
    assert dry.returncode == 0, dry.describe()
    assert "OUT_OF_MEMORY" in dry.stdout and "task(s) 1,3" in dry.stdout, dry.describe()
    (line,) = [x for x in dry.stdout.splitlines() if x.startswith("would run: sbatch")]
    words = line.split()
    assert "--array=1,3" in words and "--mem=700M" in words, line
    assert words[-2:] == [str(script), "some-arg"], line
    assert e2e.chain_dirs() == [], "a dry run created a chain"
    assert {e2e.job_base(j) for j in e2e.jobs_named()} == {job}, "a dry run submitted a job"

    r = e2e.slurm_escalate(
        "adopt", job, "--config", str(ladder), "--min-poll", "1", "--max-poll", "5", timeout=400
    )
    assert r.returncode == 0, r.describe()
    (chain_dir,) = e2e.chain_dirs()
    status = e2e.status(chain_dir.name)
    assert status["state"] == "COMPLETED"
    first = status["submissions"][0]
    assert (first["job_id"], first["status"], first["level"]) == (job, "SUBMITTED", 0)
    tasks = e2e.by_index(status)
    for i in (0, 2):
        assert (tasks[i]["state"], tasks[i]["attempts"], tasks[i]["level"]) == ("COMPLETED", 1, 0)
    for i in (1, 3):
        assert (tasks[i]["state"], tasks[i]["attempts"], tasks[i]["level"]) == ("COMPLETED", 2, 1)
        assert tasks[i]["job_ids"][0] == f"{job}_{i}"
    (retry,) = status["submissions"][1:]
    assert e2e.array_indices(retry["array"]) == {1, 3}
    for i in (1, 3):
        out = (e2e.dir / f"{e2e.job_name}-{i}.out").read_text()
        assert "attempt=unset level=unset" in out and "attempt=2 level=1" in out, out
        env = e2e.envs(i)[-1]
        assert env["SLURM_ESCALATE_INITIAL_JOB_ID"] == job

    twice = e2e.slurm_escalate("adopt", job, "--config", str(ladder))
    assert twice.returncode == 2, twice.describe()
    assert f"already belongs to chain {chain_dir.name}" in twice.stderr
