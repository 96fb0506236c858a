"""End to end on the real cluster: script arguments arrive literally, on the first
attempt and on a resubmission (the job needs more memory than level 0 gives, so
its arguments go through a second sbatch too).
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e

LADDER = [
    {"partition": "devel", "mem": "150M", "time": "00:02:00"},
    {"partition": "day", "mem": "700M", "time": "00:02:00"},
]

ARGS = {
    "shell-metacharacters": [
        "a b",
        "it's",
        "$HOME",
        "x;y",
        "*",
        '"q"',
        "",
        "tab\there",
        "two\nlines",
        "back\\slash",
        "$(touch pwned)",
        "`touch pwned2`",
        "~",
        "a=b",
        "{1,2}",
        "!x",
        "&& echo no",
        ";rm -rf canary",
        "  leading and trailing  ",
        "é ü 日本",
    ],
    # sbatch passes everything after the script to it; none of these is an option.
    "option-like": ["--mem=1G", "-v", "--array=0-3", "--help", "-p", "week", "--", "-"],
}


@pytest.mark.timeout(600)
@pytest.mark.parametrize("args", list(ARGS.values()), ids=list(ARGS))
def test_script_arguments_arrive_literally_on_every_attempt(e2e, args):
    ladder = e2e.ladder(LADDER)
    # The script lives in a directory with a space and a quote in its name.
    (e2e.dir / "my job's dir").mkdir()
    script = e2e.job_script(
        """printf '%s\\0' "$@" > "args-$SLURM_JOB_ID.bin"
echo "argc=$#"
use_memory 400 || exit 1""",
        name="my job's dir/job script.sh",
    )

    r = e2e.run_chain(script, *args, config=ladder, sbatch=["--output=%x.out"])

    assert r.returncode == 0, r.describe()
    status = e2e.status(r.chain_id)
    (task,) = status["tasks"]
    assert (task["state"], task["level"], task["attempts"]) == ("COMPLETED", 1, 2), task
    jobs = [e2e.job_base(j) for j in task["job_ids"]]
    for attempt, job in enumerate(jobs, start=1):
        raw = (e2e.dir / f"args-{job}.bin").read_bytes()
        got = raw.decode().split("\0")[:-1]
        assert got == args, f"attempt {attempt} (job {job})"
    assert not list(e2e.dir.glob("pwned*")), "an argument was run by a shell"

    # Option-looking arguments did not reach sbatch: the ladder decided the resources.
    rows = e2e.task_sacct(task)
    assert [(x.partition, x.req_mem) for x in rows] == [("devel", "150M"), ("day", "700M")]
    assert all("_" not in x.job_id for x in rows), rows  # no --array slipped through
