"""End to end on the real cluster: what every attempt finds in its environment.

The chain variables (SLURM_ESCALATE_CHAIN_ID/LEVEL/ATTEMPT, and from the 2nd
attempt on SLURM_ESCALATE_INITIAL_JOB_ID and SLURM_LONGRUN_INITIAL_JOB_ID) must
arrive on every attempt, and the user's own --export must deliver exactly what
plain sbatch delivers with the same option, on the first attempt and on a
resubmission alike.
"""

from __future__ import annotations

import subprocess

import pytest

pytestmark = pytest.mark.e2e

OOM_LADDER = [
    {"partition": "week", "mem": "150M", "time": "00:02:00"},
    {"partition": "day", "mem": "700M", "time": "00:02:00"},
]
NEEDS_400M = "use_memory 400 || exit 1"
CHAIN_VARS = ("SLURM_ESCALATE_CHAIN_ID", "SLURM_ESCALATE_LEVEL", "SLURM_ESCALATE_ATTEMPT")
INITIAL_VARS = ("SLURM_ESCALATE_INITIAL_JOB_ID", "SLURM_LONGRUN_INITIAL_JOB_ID")


@pytest.mark.timeout(600)
def test_chain_variables_on_every_attempt(e2e):
    ladder = e2e.ladder(OOM_LADDER)
    script = e2e.job_script(f'if [ "$idx" = 1 ]; then {NEEDS_400M}; fi')

    r = e2e.run_chain(script, config=ladder, sbatch=["--array=0-1", "--output=%x-%a.out"])

    assert r.returncode == 0, r.describe()
    chain = r.chain_id
    status = e2e.status(chain)
    first_id = e2e.job_base(status["submissions"][0]["job_id"])
    second_id = e2e.job_base(status["submissions"][1]["job_id"])
    assert first_id != second_id

    (only,) = e2e.envs(0)
    attempt1, attempt2 = e2e.envs(1)
    for env, level, attempt in ((only, "0", "1"), (attempt1, "0", "1"), (attempt2, "1", "2")):
        got = {k: env.get(k) for k in CHAIN_VARS}
        assert got == dict(zip(CHAIN_VARS, (chain, level, attempt), strict=True)), got

    # First attempt: it is the initial job. If the tool sets the variables at all
    # they must already name it; the documented fallback gives the same id.
    for env in (only, attempt1):
        assert env["SLURM_ARRAY_JOB_ID"] == first_id
        for var in INITIAL_VARS:
            assert env.get(var, first_id) == first_id, (var, env.get(var))
        initial = env.get("SLURM_ESCALATE_INITIAL_JOB_ID") or env["SLURM_ARRAY_JOB_ID"]
        assert initial == first_id

    # Second attempt: a new job under the same index, pointing back at the first.
    assert attempt2["SLURM_ARRAY_JOB_ID"] == second_id
    assert attempt2["SLURM_ARRAY_TASK_ID"] == "1"
    assert {var: attempt2.get(var) for var in INITIAL_VARS} == dict.fromkeys(INITIAL_VARS, first_id)


# How the user's --export is spelled. FOO=a,b is what Slurm splits at the comma
# (FOO=a, then b exported from the environment); the quoted form keeps the quotes.
EXPORTS = {
    "none": ["--export=NONE"],
    "all-comma-separate-arg": ["--export", "ALL,FOO=a,b"],
    "all-quoted-comma-space": ["--export=ALL,FOO='a,b',BAR=x y"],
    "list-without-all": ["--export=FOO=a,b,BAR"],
}
# Variables whose delivery depends on --export, all set in the submitting environment.
SUBMIT_ENV = {"FOO": "from-env", "BAR": "bar-env", "b": "b-env", "MARK": "marker"}
COMPARED = (*SUBMIT_ENV, "HOME")


@pytest.mark.timeout(600)
@pytest.mark.parametrize("export", list(EXPORTS.values()), ids=list(EXPORTS))
def test_user_export_is_delivered_like_plain_sbatch(e2e, export):
    env = {**e2e.env, **SUBMIT_ENV}
    ladder = e2e.ladder(OOM_LADDER)
    script = e2e.job_script(NEEDS_400M)

    # The same script and --export through plain sbatch, with enough memory.
    plain = subprocess.Popen(
        [
            "sbatch",
            "--parsable",
            "--wait",
            f"--job-name={e2e.job_name}",
            "--partition=day",
            "--mem=700M",
            "--time=2",
            "--output=plain-%j.out",
            *export,
            str(script),
        ],
        cwd=e2e.dir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    r = e2e.run_chain(script, config=ladder, sbatch=["--output=%x.out", *export], env=env)
    plain_out, plain_err = plain.communicate(timeout=300)
    assert plain.returncode == 0, plain_err
    plain_id = plain_out.strip().split(";")[0]

    assert r.returncode == 0, r.describe()
    status = e2e.status(r.chain_id)
    (task,) = status["tasks"]
    assert (task["state"], task["attempts"]) == ("COMPLETED", 2), task
    tool_ids = [e2e.job_base(j) for j in task["job_ids"]]

    dumps = dict(zip(sorted([plain_id, *tool_ids], key=int), e2e.envs(None), strict=True))
    want = {k: dumps[plain_id].get(k) for k in COMPARED}
    for attempt, job in enumerate(tool_ids, start=1):
        got = dumps[job]
        assert {k: got.get(k) for k in COMPARED} == want, f"attempt {attempt} (job {job})"
        assert got.get("SLURM_ESCALATE_CHAIN_ID") == r.chain_id, f"attempt {attempt}"
        assert got.get("SLURM_ESCALATE_ATTEMPT") == str(attempt)
        assert got.get("SLURM_ESCALATE_LEVEL") == str(attempt - 1)
    if export == ["--export=NONE"]:
        assert want["MARK"] is None  # sanity: plain sbatch really dropped the environment
