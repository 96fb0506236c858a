"""Site profile c of issue 11, end to end on the "site" cluster (docker-cluster/site/): QOS limits.

The site enforces limits (AccountingStorageEnforce=associations,limits,qos). Partition ``limited``
carries the partition QOS ``limited`` with MaxSubmitJobsPerUser=4; every array task counts as one
job (Slurm 22.05: a held 3-task array plus one job fill it, a fifth is refused). A blocker array of
4 tasks, pending until well after the test, fills root's quota there; sbatch then refuses any job
in ``limited`` with ``sbatch: error: QOSMaxSubmitJobPerUserLimit``.

c. A resubmission refused by that limit waits and is tried again with backoff (min-poll doubling,
   at most max-poll), the log names the limit, status and watch show the chain as waiting, no task
   ever fails for it, and once the limit lifts the task completes at the next level with exactly
   one Slurm job per attempt. (Release 0.1 failed the task after 3 refusals, 3 s apart.)
   A first submission refused the same way exits 3 with one error line naming the limit, and
   leaves nothing submitted.

The QOS limit is per user, and every test runs as the same user (root): the tests that fill it
hold a lock (``QUOTA_LOCK``), so they never run at the same time even under xdist. Nothing else
submits to ``limited`` (the other site tests use small/large/low/high), so they need not be
disruptive.
"""

from __future__ import annotations

import fcntl
import json
import os
import pwd
import re
import subprocess
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

LIMIT = "QOSMaxSubmitJobPerUserLimit"
QUOTA = 4  # MaxSubmitJobsPerUser of the QOS "limited"
MIN_POLL, MAX_POLL = 1.0, 5.0  # conftest's FAST_POLL, which every chain_argv passes
QUOTA_LOCK = Path(tempfile.gettempdir()) / "slurm-escalate-site-limited.lock"
BLOCKER = "site_limits_blocker"  # one name for every blocker: a leftover is known by it
USER = pwd.getpwuid(os.getuid()).pw_name  # the quota is this user's (root in CI)

LADDER = [
    {"partition": "small", "mem": "100M", "time": "00:01:00"},
    {"partition": "limited", "mem": "500M", "time": "00:02:00"},
]
OOM = 1  # needs 300M: OUT_OF_MEMORY at level 0 (100M), completes at level 1 (limited)


def _slurm(site, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """A Slurm command against the site cluster."""
    return subprocess.run(
        list(argv), capture_output=True, text=True, timeout=60, env=site.slurm_env, check=check
    )


def _in_limited(site, *filters: str) -> list[str]:
    """Our job ids queued in partition ``limited`` (array tasks one by one)."""
    out = _slurm(site, "squeue", "-h", "-r", "-p", "limited", "-u", USER, *filters, "-o", "%i")
    return out.stdout.split()


@pytest.fixture
def full_quota(site):
    """Our whole submit quota in ``limited``, taken by a blocker array while the test runs.

    The blocker is pending (BeginTime 20 minutes ahead, beyond any test's timeout) and would only
    run ``true``: a blocker a killed test left behind frees the quota by itself, and the next test
    cancels it first.
    """
    with open(QUOTA_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one test at a time holds the quota
        qos = _slurm(site, "sacctmgr", "-n", "-P", "show", "qos", "limited", "format=MaxSubmitPU")
        assert qos.stdout.split() == [str(QUOTA)], qos
        _slurm(site, "scancel", "-n", BLOCKER, "-u", USER)  # a killed run's leftover
        site.wait_until(lambda: not _in_limited(site), timeout=60)
        assert _in_limited(site) == [], f"{USER} has other jobs in limited: the quota is not ours"
        blocker = _slurm(
            site,
            "sbatch",
            "--parsable",
            "-p",
            "limited",
            f"--array=0-{QUOTA - 1}",
            "--begin=now+20minutes",
            "--time=00:01:00",
            "--mem=10M",
            f"--job-name={BLOCKER}",
            "--output=/dev/null",
            "--wrap",
            "true",
        ).stdout.strip()
        try:
            assert len(_in_limited(site)) == QUOTA
            yield blocker
        finally:
            _slurm(site, "scancel", blocker, check=False)
            site.wait_until(lambda: not _in_limited(site, "-n", BLOCKER), timeout=60)


def _monitor_log(site, chain_id: str) -> str:
    path = site.home / "chains" / chain_id / "monitor.log"
    return path.read_text() if path.is_file() else ""


def _journal(site, chain_id: str) -> list[dict]:
    """The chain's journal events, oldest first (the journal is compacted only past 8 MB)."""
    lines = (site.home / "chains" / chain_id / "journal.jsonl").read_text().splitlines()
    return [json.loads(line)["ev"] for line in lines if '"ev"' in line]


def _task_states_ever(events: list[dict]) -> set[str]:
    """Every state the journal ever gave a task."""
    states: set[str] = set()
    for ev in events:
        if ev.get("t") == "tasks":
            if "state" in ev.get("set", {}):
                states.add(ev["set"]["state"])
            states.update(ev.get("col", {}).get("state", []))
    return states


def _refusals(events: list[dict]) -> list[tuple[float, float]]:
    """(intent_at, retry_at) of every submission refused by a limit, in order."""
    intents = {ev["seq"]: ev for ev in events if ev.get("t") == "intent"}
    return [
        (intents[ev["seq"]]["intent_at"], ev["retry_at"])
        for ev in events
        if ev.get("t") == "sub" and ev.get("status") == "REFUSED" and ev.get("limit")
    ]


@pytest.mark.timeout(900)
def test_resubmission_refused_by_a_qos_limit_waits_until_it_lifts(site, full_quota):
    script = site.job_script(
        f'if [ "$idx" = {OOM} ] && [ "$SLURM_ESCALATE_LEVEL" = 0 ]; then use_memory 300; '
        "else sleep 1; fi"
    )
    argv = site.chain_argv(
        script, config=site.ladder(LADDER), sbatch=["--array=0-2", "--output=%x-%a.out"]
    )
    with open(site.dir / "monitor.out", "w") as out, open(site.dir / "monitor.err", "w") as err:
        monitor = subprocess.Popen(argv, cwd=site.dir, env=site.env, stdout=out, stderr=err)
    try:
        found = site.wait_until(site.chain_dirs, timeout=120)
        assert found, (site.dir / "monitor.err").read_text()
        chain_id = found[0].name
        # three refusals in a row: tries 1 s, 2 s and 4 s apart by now
        site.wait_until(
            lambda: (
                _monitor_log(site, chain_id).count(f"refused by {LIMIT}") >= 3
                or monitor.poll() is not None
            ),
            timeout=300,
        )
        refused = _monitor_log(site, chain_id).count(f"refused by {LIMIT}")
        assert refused >= 3, _monitor_log(site, chain_id) + site.debug()

        # ---- while the limit holds: waiting, nothing failed, nothing submitted at level 1
        assert monitor.poll() is None, (site.dir / "monitor.err").read_text()
        status = site.status(chain_id)
        assert status["state"] == "RUNNING", status
        (wait,) = status["waiting"]
        assert (wait["level"], wait["limit"]) == (1, LIMIT), wait
        assert wait["refusals"] >= 3, wait
        tasks = site.by_index(status)
        got = {i: (t["state"], t["level"], t["attempts"]) for i, t in tasks.items()}
        assert got == {0: ("COMPLETED", 0, 1), 1: ("RETRY", 0, 1), 2: ("COMPLETED", 0, 1)}, got
        plain = site.slurm_escalate("status", chain_id)
        assert plain.returncode == 0, plain.describe()
        assert re.search(rf"^chain {chain_id} RUNNING ", plain.stdout, re.M), plain.stdout
        assert re.search(
            rf"^  waiting: {LIMIT}, next try (in \d+ s|at the next poll) "
            r"\(resubmission at level 1 refused (once|\d+ times), for ",
            plain.stdout,
            re.M,
        ), plain.stdout
        watch = site.slurm_escalate("watch", "--once", chain_id)
        assert watch.returncode == 0, watch.describe()
        assert f"waiting: {LIMIT}, next try" in watch.stdout, watch.stdout
        assert "FAILED" not in plain.stdout + watch.stdout.split("recent events:")[0]
        assert _in_limited(site, "-n", site.job_name) == [], "level 1 got past the limit?"
        assert len(_in_limited(site, "-n", BLOCKER)) == QUOTA  # the blocker is untouched

        _slurm(site, "scancel", full_quota)  # the limit lifts

        code = monitor.wait(600)
    finally:
        if monitor.poll() is None:
            monitor.kill()
            monitor.wait(30)
    stderr = (site.dir / "monitor.err").read_text()
    assert code == 0, stderr + site.debug()
    log = _monitor_log(site, chain_id)

    # ---- the log: each refusal names the limit and its backoff, then the resubmission went through
    waits = re.findall(
        rf"resubmission at level 1 \(1 task\(s\)\) refused by {LIMIT}: waiting, next try in "
        r"(-?\d+) s \(sbatch said: sbatch: error: Batch job submission failed: "
        r"Job violates accounting/QOS policy",
        log,
    )
    assert len(waits) >= 3, log
    assert all(int(s) <= MAX_POLL for s in waits), waits  # the backoff stops at --max-poll
    went = re.search(
        rf"resubmission at level 1 went through after (\d+) refusal\(s\) by {LIMIT}", log
    )
    assert went and int(went.group(1)) == len(waits), log
    assert "resubmission at level 1 failed" not in log, log  # never counted as a refusal

    # ---- the journal: backoff (min-poll doubling, never tried before due), no task ever failed
    events = _journal(site, chain_id)
    refusals = _refusals(events)
    assert len(refusals) == len(waits), refusals
    for k, (intent_at, retry_at) in enumerate(refusals):
        delay = min(MAX_POLL, MIN_POLL * 2**k)  # 1, 2, 4, 5, 5 ... s
        assert retry_at - intent_at >= delay - 0.01, (k, refusals)
        nxt = refusals[k + 1][0] if k + 1 < len(refusals) else None
        assert nxt is None or nxt >= retry_at, (k, refusals)
    assert _task_states_ever(events) <= {"PENDING", "RUNNING", "RETRY", "COMPLETED"}, events

    # ---- the outcome: task 1 completed at level 1; one Slurm job per attempt, nothing twice
    status = site.status(chain_id)
    assert (status["state"], status["waiting"]) == ("COMPLETED", []), status
    tasks = site.by_index(status)
    got = {i: (t["state"], t["level"], t["attempts"]) for i, t in tasks.items()}
    assert got == {0: ("COMPLETED", 0, 1), 1: ("COMPLETED", 1, 2), 2: ("COMPLETED", 0, 1)}, got
    subs = [(s["level"], s["status"], s["limit"], bool(s["job_id"])) for s in status["submissions"]]
    n = len(refusals)
    assert subs == [
        (0, "SUBMITTED", None, True),
        *[(1, "REFUSED", LIMIT, False)] * n,
        (1, "SUBMITTED", None, True),
    ], status["submissions"]
    first, second = site.task_sacct(tasks[OOM])
    assert (first.state, first.partition) == ("OUT_OF_MEMORY", "small"), first
    assert (second.state, second.partition) == ("COMPLETED", "limited"), second
    expected = {0: 1, 1: 2, 2: 1}
    rows = site.wait_until(lambda: (r := site.rows_per_index()) == expected and r, timeout=60)
    assert rows == expected, (site.rows_per_index(), status["submissions"])
    jobs = sorted({site.job_base(j) for j in site.jobs_named()}, key=int)
    assert jobs == [status["submissions"][0]["job_id"], status["submissions"][-1]["job_id"]], jobs
    task_log = (site.dir / f"{site.job_name}-{OOM}.out").read_text()
    assert "attempt=1 level=0" in task_log and "attempt=2 level=1" in task_log, task_log


@pytest.mark.timeout(600)
def test_first_submission_refused_by_a_qos_limit_exits_3_naming_the_limit(site, full_quota):
    script = site.job_script("sleep 1")

    r = site.run_chain(
        script,
        sbatch=["--partition=limited", "--array=0-1", "--mem=50M", "--time=00:01:00"],
        timeout=120,
    )

    assert r.returncode == 3, r.describe()
    assert r.stdout == "", "--parsable prints a chain id only once sbatch accepted the job"
    errors = [line for line in r.stderr.splitlines() if "error:" in line]
    assert errors == [r.stderr.splitlines()[-1]], r.describe()  # one line, the last
    (error,) = errors
    assert error.startswith("sbatch_escalate: error: sbatch refused the job"), error
    assert LIMIT in error, error
    # nothing submitted (in the queue or in accounting), nothing waits, no monitor stays behind
    assert site.jobs_named() == [], site.jobs_named()
    assert len(_in_limited(site, "-n", BLOCKER)) == QUOTA  # the blocker is untouched
    (chain_dir,) = site.chain_dirs()
    status = site.status(chain_dir.name)
    assert (status["state"], status["waiting"]) == ("FAILED", []), status
    assert {t["state"] for t in status["tasks"]} == {"FAILED"}, status["tasks"]
    assert [t["attempts"] for t in status["tasks"]] == [0, 0], status["tasks"]
    (sub,) = status["submissions"]
    assert (sub["status"], sub["limit"], sub["job_id"]) == ("REFUSED", LIMIT, None), sub
    assert site.escalate_processes() == []
