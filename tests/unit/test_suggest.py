"""``slurm-escalate suggest`` and ``sbatch_escalate --start-level auto`` through the real entry
points, with a fake Slurm: the earlier chains of the same script, one-line errors, --json, the
dry run and the log line. The same is proven on the real cluster in
tests/e2e/test_start_level_auto_e2e.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from slurm_escalate.cli import main as cli
from slurm_escalate.core.models import SlurmState
from slurm_escalate.service.env import Env
from slurm_escalate.testing import FakeSlurm, FastClock

LADDER = """\
levels:
  - {partition: devel, mem: 400M, time: "00:01:00"}
  - {partition: day, mem: 1000M, time: "00:02:00"}
  - {partition: week, mem: 3000M, time: "00:04:00"}
"""
SCRIPT = "#!/bin/bash\necho hi\n"


def outcome(index, level, attempt):
    if index == 1 and level == 0:
        return SlurmState.OUT_OF_MEMORY, "0:125"
    return SlurmState.COMPLETED, "0:0"


def detail(index, level, attempt):
    """Task 1 ran out of 400M (MaxRSS 0: not sampled, as 22.05 says) and peaked at 600M at
    level 1; the others peaked at 100M. Elapsed: 10 s, task 1 20 s."""
    oom = index == 1 and level == 0
    rss_mb = 0 if oom else (600 if index == 1 else 100)
    return {
        "elapsed_s": 20 if index == 1 else 10,
        "max_rss_kb": rss_mb * 1024,
        "req_mem": ["400M", "1000M", "3000M"][level],
        "timelimit_s": [60, 120, 240][level],
    }


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.setenv("SLURM_ESCALATE_HOME", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "job.sh").write_text(SCRIPT)
    (tmp_path / "ladder.yaml").write_text(LADDER)
    # one clock for every command: the second chain is created after the first, as in life
    return {
        "slurm": FakeSlurm(outcome, detail=detail),
        "home": tmp_path / "state",
        "clock": FastClock(),
    }


def invoke(world: dict, capsys: pytest.CaptureFixture[str], *args: str, group: bool = False):
    command, prog = (cli.cli, "slurm-escalate") if group else (cli.submit, "sbatch_escalate")
    env = Env(client_factory=lambda: world["slurm"], clock=world["clock"])
    with pytest.raises(SystemExit) as e:
        cli._run(command, prog, list(args), env)
    out, err = capsys.readouterr()
    return e.value.code, out, err


def first_run(world: dict, capsys: pytest.CaptureFixture[str]) -> str:
    """The array 0-3 at level 0: task 1 runs out of memory, completes at level 1."""
    args = ("--parsable", "--min-poll", "0.01", "--config", "ladder.yaml", "--array=0-3", "job.sh")
    code, out, err = invoke(world, capsys, *args)
    assert code == 0, err
    return out.strip()


def suggest(world: dict, capsys: pytest.CaptureFixture[str], *args: str):
    return invoke(world, capsys, "suggest", *args, group=True)


EVIDENCE = (
    "4 tasks of 1 earlier chain of this script ({chain}): p95 MaxRSS 600M + 20% = 720M, "
    "p95 Elapsed 20s + 10% = 22s; level 1 (1000M, 2m, day) is the lowest that covers them"
)


# ---------------------------------------------------------------- suggest


def test_suggest_after_a_run(world, capsys) -> None:
    chain = first_run(world, capsys)
    code, out, err = suggest(world, capsys, "job.sh")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "start at level 1: --start-level 1",
        f"  earlier chains of this script: 1 ({chain})",
        f"  ladder: ladder ladder.yaml of chain {chain}, the newest of them",
        "    level 0: 400M, 1m, devel",
        "    level 1: 1000M, 2m, day  <-",
        "    level 2: 3000M, 4m, week",
        "  tasks: 4 that completed, ran out of memory or timed out",
        "  memory: p95 MaxRSS 600M + 20% = 720M (4 tasks, all measured)",
        "  time: p95 Elapsed 20s + 10% = 22s (4 tasks, all measured)",
        "  why: level 1 (1000M, 2m, day) is the lowest that covers them",
    ]
    before = dict(world["slurm"].calls)
    suggest(world, capsys, "job.sh", "--json")
    assert dict(world["slurm"].calls) == before  # suggest itself calls no Slurm


def test_suggest_json(world, capsys) -> None:
    chain = first_run(world, capsys)
    code, out, _ = suggest(world, capsys, "--json", "job.sh")
    assert code == 0
    doc = json.loads(out)
    assert doc == {
        "script": str(Path("job.sh").resolve()),
        "chains": [chain],
        "ladder": f"ladder ladder.yaml of chain {chain}, the newest of them",
        "levels": [
            {"level": 0, "partition": "devel", "mem_mb": 400, "time_s": 60},
            {"level": 1, "partition": "day", "mem_mb": 1000, "time_s": 120},
            {"level": 2, "partition": "week", "mem_mb": 3000, "time_s": 240},
        ],
        "verdict": "fits",
        "start_level": 1,
        "option": "--start-level 1",
        "tasks": 4,
        "memory": {
            "p95_mb": 600.0,
            "lower_bound": False,
            "tasks": 4,
            "lower_bounds": 0,
            "headroom": 0.2,
            "need_mb": 720.0,
        },
        "time": {
            "p95_s": 20.0,
            "lower_bound": False,
            "tasks": 4,
            "lower_bounds": 0,
            "headroom": 0.1,
            "need_s": 22.0,
        },
        "level": {"partition": "day", "mem_mb": 1000, "time_s": 120},
        "new_level": None,
        "evidence": EVIDENCE.format(chain=chain),
    }


def test_the_report_advises_what_suggest_says(world, capsys) -> None:
    chain = first_run(world, capsys)
    _, out, _ = invoke(world, capsys, "report", chain, "--format", "json", group=True)
    (report,) = json.loads(out)["chains"]
    _, out, _ = suggest(world, capsys, "--json", "job.sh")
    doc = json.loads(out)
    assert report["advice"]["recommended_start_level"] == doc["start_level"] == 1
    assert report["advice"]["sizing"] == {k: doc[k] for k in report["advice"]["sizing"]}
    assert report["advice"]["lines"][-1] == "next time: --start-level 1"
    _, md, _ = invoke(world, capsys, "report", chain, group=True)
    assert "- next time: `--start-level 1`" in md.splitlines()


def test_another_script_content_has_no_history(world, capsys, tmp_path) -> None:
    first_run(world, capsys)
    (tmp_path / "job.sh").write_text(SCRIPT + "echo changed\n")  # same name, other content
    code, out, _ = suggest(world, capsys, "job.sh")
    assert code == 0
    assert out.splitlines() == [
        "start at level 0: --start-level 0",
        f"  no earlier chain of this script under {world['home'] / 'chains'}",
        "  ladder: none: no earlier chain, and no --config",
        "  why: nothing to size from: level 0",
    ]
    (tmp_path / "copy.sh").write_text(SCRIPT)  # another name, the same content: the history
    code, out, _ = suggest(world, capsys, "copy.sh", "--json")
    assert (code, json.loads(out)["start_level"]) == (0, 1)


def test_suggest_from_another_ladder(world, capsys, tmp_path) -> None:
    chain = first_run(world, capsys)
    (tmp_path / "tight.yaml").write_text(
        "levels:\n  - {partition: devel, mem: 700M, time: 1}\n  - {partition: week, mem: 800M}\n"
    )
    code, out, _ = suggest(world, capsys, "job.sh", "--config", "tight.yaml", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["ladder"] == "tight.yaml (--config)" and doc["chains"] == [chain]
    assert (doc["verdict"], doc["start_level"]) == ("fits", 1)  # 720M: 800M, not 700M
    (tmp_path / "small.yaml").write_text("levels:\n  - {partition: devel, mem: 500M}\n")
    code, out, _ = suggest(world, capsys, "job.sh", "--config", "small.yaml")
    assert code == 0
    assert (
        out.splitlines()[0] == "start at level 0 (the top: no level covers them): --start-level 0"
    )
    assert out.splitlines()[-1] == (
        "  why: no level covers them, not even the top, level 0 (500M, devel): start there "
        "and add a level above it: - {partition: devel, mem: 800M}"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.sh"], "job script 'missing.sh' not found"),
        (["job.sh", "--config", "nope.yaml"], "nope.yaml: no such file"),
        (["ladder.yaml"], "job script 'ladder.yaml' does not look like a batch script: "
         "the first line must start with #! (e.g. #!/bin/bash)"),
        (["job.sh", "--config", "bad.yaml"], "bad.yaml: levels[0]: unknown key 'memory' "
         "(expected one of: partition, mem, time, cpus-per-task, gres, qos, account, "
         "constraint, extra_args)"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_exit_2(world, capsys, tmp_path, args, message) -> None:
    (tmp_path / "bad.yaml").write_text("levels:\n  - {memory: 1G}\n")
    code, out, err = suggest(world, capsys, *args)
    assert (code, out) == (2, "")
    assert err == f"slurm-escalate: error: {message}\n"


def test_the_history_of_an_unreadable_ladder_is_a_one_line_error(world, capsys) -> None:
    chain = first_run(world, capsys)
    (world["home"] / "chains" / chain / "ladder.yaml").unlink()
    code, _, err = suggest(world, capsys, "job.sh")
    assert code == 2
    assert re.fullmatch(
        rf"slurm-escalate: error: chain {chain}: cannot read its ladder \(.*\): give --config\n",
        err,
    ), err
    code, out, _ = suggest(world, capsys, "job.sh", "--config", "ladder.yaml", "--json")
    assert (code, json.loads(out)["start_level"]) == (0, 1)


# ---------------------------------------------------------------- --start-level auto


def test_auto_dry_run_shows_the_level_and_why(world, capsys) -> None:
    chain = first_run(world, capsys)
    args = ("--dry-run", "--start-level", "auto", "--config", "ladder.yaml", "--array=0-3")
    code, out, _ = invoke(world, capsys, *args, "job.sh")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == (f"# start level 1 (--start-level auto): {EVIDENCE.format(chain=chain)}")
    (sbatch,) = [line for line in lines if line.startswith("sbatch ")]
    assert "--partition=day" in sbatch and "--mem=1000M" in sbatch and "--time=00:02:00" in sbatch


def test_auto_without_history_starts_at_0(world, capsys) -> None:
    args = ("--dry-run", "--start-level=auto", "--config", "ladder.yaml", "job.sh")
    code, out, _ = invoke(world, capsys, *args)
    assert code == 0
    lines = out.splitlines()
    assert (
        lines[0] == "# start level 0 (--start-level auto): no earlier chain of this script: level 0"
    )
    (sbatch,) = [line for line in lines if line.startswith("sbatch ")]
    assert "--partition=devel" in sbatch and "--mem=400M" in sbatch


def test_auto_stays_under_max_level(world, capsys) -> None:
    first_run(world, capsys)
    args = ("--dry-run", "--start-level", "auto", "--max-level", "0", "--config", "ladder.yaml")
    code, out, _ = invoke(world, capsys, *args, "job.sh")
    assert code == 0
    first = out.splitlines()[0]
    assert first.startswith("# start level 0 (--start-level auto): 4 tasks of 1 earlier chain")
    assert first.endswith(
        "no level covers them, not even the top, level 0 (400M, 1m, devel): start there and "
        'add a level above it: - {partition: devel, mem: 800M, time: "00:01:00"}'
    )


def test_auto_submits_at_that_level_and_logs_why(world, capsys) -> None:
    first = first_run(world, capsys)
    args = ("--parsable", "--min-poll", "0.01", "--start-level", "auto", "--config", "ladder.yaml")
    code, out, err = invoke(world, capsys, *args, "--array=0-3", "job.sh")
    assert code == 0, err
    second = out.strip()
    note = f"start level 1 (--start-level auto): {EVIDENCE.format(chain=first)}"
    assert note in err  # on the terminal
    _, out, _ = invoke(world, capsys, "status", second, "--json", group=True)
    status = json.loads(out)
    assert note in Path(status["log_file"]).read_text()  # and in the chain's log
    assert [(s["level"], s["array"]) for s in status["submissions"]] == [(1, "0-3")]
    assert {(t["state"], t["level"], t["attempts"]) for t in status["tasks"]} == {
        ("COMPLETED", 1, 1)
    }
    job = world["slurm"].jobs[status["submissions"][0]["job_id"]]
    assert job.env["SLURM_ESCALATE_LEVEL"] == "1" and "--mem=1000M" in job.args
    # the second chain joins the history: two chains now, eight tasks
    _, out, _ = suggest(world, capsys, "job.sh", "--json")
    doc = json.loads(out)
    assert (doc["chains"], doc["tasks"], doc["start_level"]) == ([first, second], 8, 1)


@pytest.mark.parametrize("value", ["bogus", "-1", "9"])
def test_a_bad_start_level_is_one_line_exit_2(world, capsys, value) -> None:
    code, _, err = invoke(
        world, capsys, "--start-level", value, "--config", "ladder.yaml", "job.sh"
    )
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("sbatch_escalate: error: ")
    assert ("not a level number or auto" if value == "bogus" else "outside the ladder") in err
    assert world["slurm"].calls["sbatch"] == 0
