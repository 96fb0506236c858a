"""The command line through its real entry point, with a fake Slurm behind it.

These check what a user sees: one-line errors with exit status 2 and nothing
submitted, --parsable's first line, --dry-run, exit statuses, status --json.
The same behaviours are proven against the real cluster in tests/e2e.
"""

from __future__ import annotations

import json
import shlex
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from slurm_escalate.cli import main as cli
from slurm_escalate.core.models import SlurmState
from slurm_escalate.service.env import Env
from slurm_escalate.testing import FakeSlurm, FastClock, ok

LADDER = """\
levels:
  - {partition: devel, mem: 400M, time: "00:01:00"}
  - {partition: day, mem: 1000M, time: "00:02:00"}
"""


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    def outcome(index, level, attempt):
        if index == 1 and level == 0:
            return SlurmState.OUT_OF_MEMORY, "0:125"
        if index == 2:
            return SlurmState.FAILED, "3:0"
        return SlurmState.COMPLETED, "0:0"

    slurm = FakeSlurm(outcome)
    monkeypatch.setenv("SLURM_ESCALATE_HOME", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "job.sh").write_text("#!/bin/bash\necho hi\n")
    (tmp_path / "ladder.yaml").write_text(LADDER)
    return {"slurm": slurm, "home": tmp_path / "state"}


def invoke(world: dict, capsys: pytest.CaptureFixture[str], *args: str, group: bool = False):
    """One command with a fresh Env (as in real life) whose Slurm is the world's fake."""
    command, prog = (cli.cli, "slurm-escalate") if group else (cli.submit, "sbatch_escalate")
    env = Env(client_factory=lambda: world["slurm"], **world.get("env", {}))
    with pytest.raises(SystemExit) as e:
        cli._run(command, prog, list(args), env)
    out, err = capsys.readouterr()
    return e.value.code, out, err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--config", "nope.yaml", "job.sh"], "nope.yaml: no such file"),
        (["missing.sh"], "job script 'missing.sh' not found"),
        (
            ["--array", "0-4", "--detached", "job.sh"],
            "--detached is an option of this tool: put it before any sbatch option",
        ),
        (["--array=5-1", "job.sh"], "invalid --array '5-1': range end 1 is below start 5"),
        (
            ["--config", "ladder.yaml", "--start-level", "3", "job.sh"],
            "--start-level 3 is outside the ladder (levels 0-1)",
        ),
        (["--min-poll", "0", "job.sh"], "--min-poll must be positive, got 0"),
        (["--bogus", "job.sh"], "unknown sbatch option '--bogus'"),
        ([], "no job script given"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_submitted(world, capsys, args, message):
    code, out, err = invoke(world, capsys, *args)
    assert code == 2
    assert err == f"sbatch_escalate: error: {message}\n"
    assert world["slurm"].calls["sbatch"] == 0
    assert not (world["home"] / "chains").exists() or not any((world["home"] / "chains").iterdir())


def test_ladder_checked_against_the_cluster(world, capsys, tmp_path):
    (tmp_path / "big.yaml").write_text("levels:\n  - {partition: week, mem: 20G}\n")
    code, _, err = invoke(world, capsys, "--config", "big.yaml", "job.sh")
    assert code == 2
    assert err == (
        "sbatch_escalate: error: big.yaml: levels[0].mem: 20G exceeds the largest node "
        "of partition 'week' (8000M)\n"
    )


@pytest.mark.parametrize(
    ("ladder", "args", "expected"),
    [
        # no level names a partition: nothing to check; a plain job: no array limits
        ("levels:\n  - {mem: 1G}\n  - {mem: 2G}\n", [], (0, 0, 0)),
        # partitions with times only: MaxTime is in the partition record
        (
            "levels:\n  - {partition: devel, time: 1}\n  - {partition: day, time: 4}\n",
            [],
            (1, 0, 0),
        ),
        # a level with partition and mem: the nodes' memory too
        ("levels:\n  - {partition: devel, mem: 100M}\n", [], (1, 1, 0)),
        # an array: MaxArraySize
        ("levels:\n  - {mem: 1G}\n", ["--array", "0-3"], (0, 0, 1)),
        # levels above --max-level are never used
        (
            "levels:\n  - {mem: 1G}\n  - {partition: week, mem: 4G}\n",
            ["--max-level", "0"],
            (0, 0, 0),
        ),
    ],
)
def test_startup_asks_slurm_only_what_the_ladder_and_the_job_need(
    world, capsys, tmp_path, ladder, args, expected
):
    (tmp_path / "l.yaml").write_text(ladder)
    code, _, err = invoke(world, capsys, "--config", "l.yaml", "--dry-run", *args, "job.sh")
    assert code == 0, err
    calls = world["slurm"].calls
    got = (
        calls["scontrol show partition"],
        calls["scontrol show node"],
        calls["scontrol show config"],
    )
    assert got == expected


CHAIN_ID = "20261122-101500-ab12"


@pytest.fixture
def fixed(world: dict) -> dict:
    """Every command of the test creates (or would create) CHAIN_ID, on a fast clock."""
    world["env"] = {"new_chain_id": lambda now: CHAIN_ID, "clock": FastClock()}
    return world


def test_dry_run_prints_the_command_and_submits_nothing(fixed, capsys):
    world = fixed
    code, out, _ = invoke(
        world,
        capsys,
        "--dry-run",
        "--config",
        "ladder.yaml",
        "--array=0-9%2",
        "-t",
        "5",
        "job.sh",
        "a b",
        "$X;*",
    )
    assert code == 0
    chain = world["home"] / "chains" / CHAIN_ID
    assert out.splitlines() == [
        f"# would create chain {CHAIN_ID} in {chain}",
        f"# would write {chain}/script/job.sh: a copy of job.sh",
        f"# would write {chain}/ladder.yaml: a copy of ladder.yaml",
        "sbatch --parsable --array=0-9%2 -t 5 --partition=devel --mem=400M "
        f"--comment=slurm-escalate:{CHAIN_ID}:1 {chain}/script/job.sh 'a b' '$X;*'",
    ]
    assert world["slurm"].calls["sbatch"] == 0
    assert not (world["home"] / "chains").exists()


def test_dry_run_of_an_array_beyond_max_array_size_shows_every_piece(fixed, capsys):
    world = fixed
    args = ("--dry-run", "--array=998-2001%3", "-o", "x-%a", "job.sh", "a")
    code, out, _ = invoke(world, capsys, *args)
    assert code == 0
    chain = world["home"] / "chains" / CHAIN_ID
    token = f"--comment=slurm-escalate:{CHAIN_ID}"
    assert out.splitlines() == [
        f"# would create chain {CHAIN_ID} in {chain}",
        f"# would write {chain}/script/job.sh: a copy of job.sh",
        "# the array does not fit one submission: 3 sbatch calls",
        f"sbatch --parsable -o x-%a --array=998-1000%3 {token}:1 {chain}/script/job.sh a",
        "# indices 1001-1999 run as array index minus 1000, "
        "through a generated wrapper that execs the script",
        f"# would make {chain}/script/job.sh executable (mode 700)",
        f"# would write {chain}/script/2/array-wrapper.sh: "
        "the wrapper that runs the task under its array slot",
        f"sbatch --parsable --array=1-999%3 --output=x-1%3a {token}:2 "
        f"{chain}/script/2/array-wrapper.sh a",
        "# indices 2000,2001 run as array index minus 2000, "
        "through a generated wrapper that execs the script",
        f"# would make {chain}/script/job.sh executable (mode 700)",
        f"# would write {chain}/script/3/array-wrapper.sh: "
        "the wrapper that runs the task under its array slot",
        f"sbatch --parsable --array=0,1%3 --output=x-2%3a {token}:3 "
        f"{chain}/script/3/array-wrapper.sh a",
    ]
    assert world["slurm"].calls["sbatch"] == 0
    assert not (world["home"] / "chains").exists()


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["--config", "ladder.yaml", "--array=0-3%2", "job.sh", "a b"], id="array"),
        pytest.param(["--mem=300M", "--wrap", "echo hi"], id="wrap"),
        pytest.param(["--array=998-2001%3", "-o", "x-%a", "job.sh", "a"], id="pieces"),
        pytest.param(
            ["--config", "ladder.yaml", "--array=0-1", "--comment=mine", "job.sh"], id="comment"
        ),
    ],
)
def test_the_dry_run_prints_exactly_what_the_real_submission_runs(fixed, capsys, args):
    world = fixed
    world["slurm"].outcome = ok
    (world["home"].parent / "job.sh").write_text(
        "#!/bin/bash\n#SBATCH --mem-per-cpu=100M\necho hi\n"  # clashes with the ladder's --mem
    )
    code, out, _ = invoke(world, capsys, "--dry-run", *args)
    assert code == 0
    planned = [shlex.split(line) for line in out.splitlines() if not line.startswith("#")]
    written = [line for line in out.splitlines() if line.startswith("# would write ")]
    code, _, _ = invoke(world, capsys, "--min-poll", "0.01", *args)
    assert code == 0
    submitted = [["sbatch", "--parsable", *job.args] for job in world["slurm"].jobs.values()]
    assert planned == submitted  # every task completes: no resubmission follows
    for line in written:  # every file the dry run named exists now
        assert Path(line.split()[3].rstrip(":")).is_file(), line


def test_foreground_run_parsable_and_exit_status(world, capsys):
    code, out, err = invoke(
        world,
        capsys,
        "--parsable",
        "--min-poll",
        "0.01",
        "--config",
        "ladder.yaml",
        "--array=0-3",
        "job.sh",
    )
    assert code == 1  # task 2 has a bug
    chain_id = out.strip()
    assert out == f"{chain_id}\n"  # stdout carries only the chain id
    assert "task 101_1 COMPLETED at level 1" in err
    assert "FAILED exit 3 (not retried)" in err
    code, out, _ = invoke(world, capsys, "status", chain_id[-4:], "--json", group=True)
    status = json.loads(out)
    assert status["state"] == "FAILED" and status["chain_id"] == chain_id
    assert [(t["index"], t["state"], t["level"], t["attempts"]) for t in status["tasks"]] == [
        (0, "COMPLETED", 0, 1),
        (1, "COMPLETED", 1, 2),
        (2, "FAILED", 0, 1),
        (3, "COMPLETED", 0, 1),
    ]
    assert status["tasks"][1]["job_ids"] == ["100_1", "101_1"]
    assert status["tasks"][2]["exit_code"] == 3
    assert [(s["job_id"], s["level"], s["array"]) for s in status["submissions"]] == [
        ("100", 0, "0-3"),
        ("101", 1, "1"),
    ]
    assert set(status) >= {"chain_id", "state", "script", "tasks", "submissions", "log_file"}
    log = Path(status["log_file"]).read_text()
    assert "submitted array 1 at level 1 (attempt 2) as job 101" in log


def test_all_completed_exits_0_and_list_shows_it(world, capsys):
    world["slurm"].outcome = ok
    code, out, _ = invoke(world, capsys, "--min-poll", "0.01", "job.sh")
    assert code == 0
    chain_id = next(line for line in out.splitlines() if line.startswith("chain "))
    chain_id = chain_id.split()[1].rstrip(":")
    code, out, _ = invoke(world, capsys, "list", group=True)
    assert code == 0
    assert chain_id in out and "COMPLETED" in out
    assert out.splitlines()[1].split()[5] == "-"  # no monitor runs any more
    code, out, _ = invoke(world, capsys, "list", "--json", group=True)
    assert json.loads(out)[0]["state"] == "COMPLETED"


def test_refused_first_submission_exits_3(world, capsys):
    world["slurm"].refuse = lambda args: (
        "sbatch: error: Batch job submission failed: Invalid account"
    )
    code, _, err = invoke(world, capsys, "--min-poll", "0.01", "job.sh")
    assert code == 3
    assert err.endswith(
        "sbatch_escalate: error: sbatch refused the job: "
        "sbatch: error: Batch job submission failed: Invalid account\n"
    )


def test_status_of_unknown_chain(world, capsys):
    code, _, err = invoke(world, capsys, "status", "nope", group=True)
    assert code == 2
    assert err.startswith("slurm-escalate: error: no chain 'nope' under ")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ["--config", "l.yaml", "-v", "--array=0-3", "job.sh"],
            ["--config", "l.yaml", "-v", "--", "--array=0-3", "job.sh"],
        ),
        (
            ["--config=l.yaml", "--detached", "job.sh", "--detached"],
            ["--config=l.yaml", "--detached", "--", "job.sh", "--detached"],
        ),
        (["--job-name=x", "--detached", "job.sh"], ["--", "--job-name=x", "--detached", "job.sh"]),
        (
            ["-vq", "--min-poll", "1", "-p", "day", "job.sh"],
            ["-vq", "--min-poll", "1", "--", "-p", "day", "job.sh"],
        ),
        (["--help"], ["--help"]),
        (["--", "job.sh"], ["--", "job.sh"]),
        (["--rounds", "--mem=1G", "job.sh"], ["--rounds", "--", "--mem=1G", "job.sh"]),
        (["--mem=1G", "--rounds", "job.sh"], ["--", "--mem=1G", "--rounds", "job.sh"]),
    ],
)
def test_only_the_leading_run_of_own_options_is_ours(argv, expected):
    assert cli.own_options_first(argv) == expected


def test_a_command_leaves_no_log_sinks_behind(world, capsys):
    """Its console sink wrote to a stream that is gone once the command returns."""
    from loguru import logger

    world["slurm"].outcome = ok
    assert invoke(world, capsys, "--min-poll", "0.01", "job.sh")[0] == 0
    logger.info("after the command")
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize(
    ("entry", "prog"), [("main", "slurm-escalate"), ("sbatch_escalate_main", "sbatch_escalate")]
)
def test_both_commands_print_the_package_version(capsys, monkeypatch, entry, prog):
    monkeypatch.setattr(sys, "argv", [prog, "--version"])
    with pytest.raises(SystemExit) as e:
        getattr(cli, entry)()
    assert e.value.code == 0
    assert capsys.readouterr() == (f"{prog} {version('slurm-escalate')}\n", "")
