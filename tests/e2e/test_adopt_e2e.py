"""Site profile f of issue 11: adopt, end to end on the real cluster.

1. A job that another chain submitted (another state directory: a colleague's, an older home)
   carries that chain's ``--comment`` token. The adopting chain's resubmissions must carry a token
   of their own: the old code put the other chain's token on them, so the other chain's resume or
   its ambiguous-sbatch check would have taken them for its own submission.
2. A job whose chain lives in this state directory but never noted the job id (killed inside
   sbatch) belongs to that chain: adopt refuses with exit 2 and names ``slurm-escalate resume``.
   The old code adopted it into a second chain, and the owner's resume then ran the same task
   again (measured on 71d3fc9: task 1 at level 1 twice, jobs 8 and 9).
"""

from __future__ import annotations

import signal
import subprocess

import pytest

pytestmark = pytest.mark.e2e

ONE_LEVEL = [{"partition": "week", "mem": "150M", "time": "00:02:00"}]
TWO_LEVELS = [*ONE_LEVEL, {"partition": "week", "mem": "700M", "time": "00:02:00"}]
SBATCH = ["--array=0-2", "--output=%x-%a.out"]


def _script(e2e):
    # task 1 needs 400M: OUT_OF_MEMORY with 150M, completes with 700M
    return e2e.job_script('if [ "$idx" = 1 ]; then use_memory 400 || exit 1; else sleep 1; fi')


def _comments(e2e) -> dict[str, str]:
    """Every job (array task) of this test's job name -> its Comment as accounting keeps it."""
    out = subprocess.run(
        ["sacct", "-n", "-P", "-X", "--name", e2e.job_name, "-S", "now-2hours"]
        + ["-o", "JobID,Comment"],
        capture_output=True,
        text=True,
        timeout=60,
        env=e2e.env,
        check=True,
    ).stdout
    return dict(line.split("|", 1) for line in out.splitlines() if line)


@pytest.mark.timeout(600)
def test_adopting_another_chains_job_gives_the_new_chain_its_own_token(e2e):
    other_home = e2e.dir / "other-home"
    other_env = {**e2e.env, "SLURM_ESCALATE_HOME": str(other_home)}
    first = e2e.run_chain(
        _script(e2e), config=e2e.ladder(ONE_LEVEL, "one.yaml"), sbatch=SBATCH, env=other_env
    )
    assert first.returncode == 1, first.describe()  # task 1 failed at the top of its ladder
    (other_dir,) = sorted(p for p in (other_home / "chains").iterdir() if p.is_dir())
    other_token = f"slurm-escalate:{other_dir.name}:1"
    comments = _comments(e2e)
    assert set(comments.values()) == {other_token}, comments
    job = e2e.job_base(next(iter(comments)))

    dry = e2e.slurm_escalate("adopt", job, "--config", str(e2e.ladder(TWO_LEVELS)), "--dry-run")
    assert dry.returncode == 0, dry.describe()
    assert f"left out --comment={other_token}" in dry.stdout + dry.stderr, dry.describe()
    (line,) = [x for x in dry.stdout.splitlines() if x.startswith("would run: sbatch")]
    assert other_token not in line, line

    r = e2e.slurm_escalate(
        "adopt", job, "--config", str(e2e.ladder(TWO_LEVELS)), "--min-poll", "1", timeout=400
    )

    assert r.returncode == 0, r.describe()
    (chain_dir,) = e2e.chain_dirs()
    chain = chain_dir.name
    assert chain != other_dir.name
    status = e2e.status(chain)
    tasks = e2e.by_index(status)
    assert (tasks[1]["state"], tasks[1]["level"], tasks[1]["attempts"]) == ("COMPLETED", 1, 2)
    (retry,) = status["submissions"][1:]
    comments = _comments(e2e)
    assert comments[f"{retry['job_id']}_1"].startswith(f"slurm-escalate:{chain}:"), comments
    assert [c for c in comments.values() if other_dir.name in c] == [
        other_token
    ] * 3, "only the other chain's own job carries its token"
    # the attempt knows which chain it belongs to (the checkpoint key)
    assert e2e.envs(1)[-1]["SLURM_ESCALATE_CHAIN_ID"] == chain
    # the other chain's state is untouched: it still says what happened to it
    other = e2e._run(
        [*e2e.slurm_escalate_cli, "status", other_dir.name, "--json"], 60, other_env
    )
    assert other.returncode == 0 and '"FAILED"' in other.stdout, other.describe()


@pytest.mark.timeout(600)
def test_adopting_a_job_whose_chain_was_killed_inside_sbatch_names_resume(e2e):
    ladder = e2e.ladder(TWO_LEVELS)
    env = {**e2e.env, "SLURM_ESCALATE_CRASH_AT": "after-sbatch:1"}
    crashed = e2e.run_chain(_script(e2e), config=ladder, sbatch=SBATCH, env=env)
    assert crashed.returncode == -signal.SIGKILL, crashed.describe()
    (chain_dir,) = e2e.chain_dirs()
    chain = chain_dir.name
    jobs = e2e.wait_until(lambda: sorted({e2e.job_base(j) for j in e2e.jobs_named()}), 60)
    assert len(jobs) == 1, jobs
    (job,) = jobs
    # as a user would: once sacct lists the tasks (right after the submission it may not know
    # the job yet, and adopt says "try again shortly"; tests/unit/test_adopt.py has those cases)
    listed = e2e.wait_until(lambda: len(e2e.sacct(job)) == 3, 120, 1)
    assert listed, e2e.sacct(job)
    # the chain never noted the job id: only the token ties the job to it
    assert e2e.status(chain)["submissions"][0].get("job_id") in (None, ""), e2e.status(chain)

    r = e2e.slurm_escalate("adopt", job, "--config", str(ladder))

    assert r.returncode == 2, r.describe()
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.describe()
    assert f"job {job} already belongs to chain {chain}" in r.stderr, r.describe()
    assert f"slurm-escalate resume {chain}" in r.stderr, r.describe()
    assert e2e.chain_dirs() == [chain_dir], "adopt created a chain"

    resumed = e2e.slurm_escalate("resume", chain, "--min-poll", "1", timeout=400)

    assert resumed.returncode == 0, resumed.describe()
    tasks = e2e.by_index(e2e.status(chain))
    assert (tasks[1]["state"], tasks[1]["level"], tasks[1]["attempts"]) == ("COMPLETED", 1, 2)
    # task 1 ran once per level, nothing twice: two submissions in all
    assert len({e2e.job_base(j) for j in e2e.jobs_named()}) == 2, e2e.jobs_named()
    expected = {0: 1, 1: 2, 2: 1}
    rows = e2e.wait_until(lambda: (r := e2e.rows_per_index()) == expected and r, 60, 2)
    assert rows == expected, e2e.rows_per_index()
