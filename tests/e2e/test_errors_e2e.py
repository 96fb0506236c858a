"""End to end on the real cluster: mistakes are caught before anything is submitted
(exit 2), Slurm refusing the first submission is exit 3, and --dry-run only prints.
"""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.e2e

GOOD_LEVEL = {"partition": "day", "mem": "100M", "time": "00:01:00"}


def _assert_nothing_submitted(e2e) -> None:
    time.sleep(1)  # give slurmdbd a moment, in case something did slip through
    assert e2e.jobs_named() == [], f"jobs were submitted as {e2e.job_name}"
    running = e2e.escalate_processes()
    assert running == [], f"slurm-escalate processes left behind: {running}"


# name -> (ladder levels or raw YAML text, strings the message must contain)
CONFIG_ERRORS = {
    "unknown-level-key": (
        [GOOD_LEVEL, {"partition": "week", "memory": "200M"}],
        ["levels[1]", "memory"],
    ),
    "mem-over-largest-node": (
        [GOOD_LEVEL, {"partition": "week", "mem": "20G", "time": "00:02:00"}],
        ["levels[1]", "mem"],
    ),
    "time-over-partition-maxtime": (
        [{"partition": "devel", "mem": "100M", "time": "00:10:00"}],
        ["levels[0]", "time"],
    ),
    "unknown-partition": (
        [{"partition": "nosuchpart", "mem": "100M"}],
        ["levels[0]", "partition", "nosuchpart"],
    ),
    "bad-action": (
        "levels:\n  - {partition: day, mem: 100M}\nstate_handling:\n  TIMEOUT: retry\n",
        ["state_handling", "TIMEOUT", "retry"],
    ),
    "unknown-top-key": (
        "levels:\n  - {partition: day, mem: 100M}\nmax_retries: 3\n",
        ["max_retries"],
    ),
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("levels, expected", list(CONFIG_ERRORS.values()), ids=list(CONFIG_ERRORS))
def test_config_error_exits_2_naming_file_level_and_key(e2e, levels, expected):
    if isinstance(levels, str):
        ladder = e2e.write("bad-ladder.yaml", levels)
    else:
        ladder = e2e.ladder(levels, name="bad-ladder.yaml")
    script = e2e.job_script("true")

    r = e2e.run_chain(script, config=ladder, sbatch=["--array=0-1"], timeout=60)

    assert r.returncode == 2, r.describe()
    assert "Traceback" not in r.stderr, r.describe()
    assert "bad-ladder.yaml" in r.stderr, r.describe()
    for text in expected:
        assert text in r.stderr, f"{text!r} missing from the message\n{r.describe()}"
    assert r.stdout.strip() == "", r.describe()  # no chain id: there is no chain
    _assert_nothing_submitted(e2e)


@pytest.mark.timeout(120)
def test_missing_config_file_exits_2(e2e):
    script = e2e.job_script("true")
    r = e2e.run_chain(script, config=e2e.dir / "no-such-ladder.yaml", timeout=60)
    assert r.returncode == 2, r.describe()
    assert "no-such-ladder.yaml" in r.stderr, r.describe()
    _assert_nothing_submitted(e2e)


@pytest.mark.timeout(120)
def test_missing_script_exits_2(e2e):
    ladder = e2e.ladder([GOOD_LEVEL])
    r = e2e.run_chain(e2e.dir / "no-such-job.sh", config=ladder, timeout=60)
    assert r.returncode == 2, r.describe()
    assert "Traceback" not in r.stderr, r.describe()
    assert "no-such-job.sh" in r.stderr, r.describe()
    _assert_nothing_submitted(e2e)


USAGE_ERRORS = {
    "max-level-not-a-number": ["--max-level", "lots"],
    "negative-start-level": ["--start-level", "-1"],
    "start-level-above-ladder": ["--start-level", "5"],
    "min-poll-not-a-number": ["--min-poll", "soon"],
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("own", list(USAGE_ERRORS.values()), ids=list(USAGE_ERRORS))
def test_usage_error_exits_2(e2e, own):
    ladder = e2e.ladder([GOOD_LEVEL, {"partition": "week", "mem": "200M", "time": "00:01:00"}])
    script = e2e.job_script("true")
    r = e2e.sbatch_escalate(
        "--config", str(ladder), *own, f"--job-name={e2e.job_name}", str(script), timeout=60
    )
    assert r.returncode == 2, r.describe()
    assert "Traceback" not in r.stderr, r.describe()
    _assert_nothing_submitted(e2e)


@pytest.mark.timeout(120)
def test_help_exits_0(e2e):
    r = e2e.sbatch_escalate("--help", timeout=60)
    assert r.returncode == 0, r.describe()
    for option in ("--config", "--detached", "--max-level", "--dry-run", "--parsable"):
        assert option in r.stdout, option


@pytest.mark.timeout(120)
def test_slurm_refusing_first_submission_exits_3(e2e):
    ladder = e2e.ladder([GOOD_LEVEL])
    script = e2e.job_script("true")
    # This cluster has no GPUs: sbatch itself rejects the request.
    r = e2e.run_chain(script, config=ladder, sbatch=["--gres=gpu:1"], timeout=60)
    assert r.returncode == 3, r.describe()
    assert "Traceback" not in r.stderr, r.describe()
    assert "gres" in r.stderr.lower(), r.describe()  # sbatch's own reason is passed on
    _assert_nothing_submitted(e2e)


@pytest.mark.timeout(120)
def test_dry_run_prints_the_sbatch_command_and_submits_nothing(e2e):
    ladder = e2e.ladder([GOOD_LEVEL, {"partition": "week", "mem": "200M", "time": "00:02:00"}])
    script = e2e.job_script("true")

    r = e2e.run_chain(
        script,
        "arg one",
        config=ladder,
        own=["--dry-run"],
        parsable=False,
        sbatch=["--array=0-3", "--output=%x-%a.out"],
        timeout=60,
    )

    assert r.returncode == 0, r.describe()
    out = r.stdout
    assert "sbatch" in out, r.describe()
    for text in ("--array", "0-3", "day", "100M", e2e.job_name, str(script), "arg one"):
        assert text in out, f"{text!r} missing from the dry run\n{r.describe()}"
    _assert_nothing_submitted(e2e)
    assert not list(e2e.dir.glob("*.out")), "a job ran"
