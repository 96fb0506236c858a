"""SlurmCommands (the real SlurmClient) against a fake runner, SubprocessRunner against real
processes, and the SlurmClient Protocol against what the package asks of it."""

from __future__ import annotations

import ast
import json
import os
import shlex
import stat
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import slurm_escalate
from slurm_escalate import testing
from slurm_escalate.core.models import ClusterLimits, SlurmState
from slurm_escalate.errors import SlurmCommandError, SlurmParseError, UsageError
from slurm_escalate.sbatch.args import make_request
from slurm_escalate.service.env import Env, request_clusters, submission_clusters
from slurm_escalate.slurm.client import SlurmClient, SlurmCommands
from slurm_escalate.slurm.parse import SACCT_FIELDS, parse_job_tokens
from slurm_escalate.slurm.runner import CommandResult, SubprocessRunner, lines_of

DATA = Path(__file__).parent / "data"
SACCT_PREFIX = ["sacct", "--noheader", "--parsable2", f"--format={','.join(SACCT_FIELDS)}"]
# Real stderr of `sbatch --parsable -p nosuch -t 1 --wrap true` on the test cluster (exit 1).
SBATCH_BAD_PARTITION = (
    "sbatch: error: invalid partition specified: nosuch\n"
    "sbatch: error: Batch job submission failed: Invalid partition name specified\n"
)
TRICKY_ARGS = [
    "--job-name=my job; rm -rf *",
    "--export=NONE",
    "/path with spaces/script.sh",
    "$HOME",
    "'single'",
    '"double"',
    "a;b",
    "*",
    "`date`",
    "$(id)",
    "back\\slash",
    "",
    "tab\there",
    "new\nline",
    "ünïcødé",
]


@dataclass
class Call:
    argv: tuple[str, ...]
    timeout: float
    env: Mapping[str, str] | None
    cwd: str | None


@dataclass
class FakeRunner:
    """Records every call; answers from ``replies`` keyed by command name."""

    replies: dict[str, CommandResult | Exception] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float = 60.0,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> CommandResult:
        self.calls.append(Call(tuple(argv), timeout, env, cwd))
        reply = self.replies.get(argv[0], CommandResult(tuple(argv), 0, "", ""))
        if isinstance(reply, Exception):
            raise reply
        return CommandResult(tuple(argv), reply.returncode, reply.stdout, reply.stderr)

    def run_lines(self, argv: Sequence[str], on_line: Any, **kw: Any) -> CommandResult:
        return lines_of(self, argv, on_line, **kw)

    def names(self) -> list[str]:
        return [c.argv[0] for c in self.calls]


def ok(stdout: str = "") -> CommandResult:
    return CommandResult((), 0, stdout, "")


def fail(returncode: int, stderr: str) -> CommandResult:
    return CommandResult((), returncode, "", stderr)


# --- query -----------------------------------------------------------------------------


def test_query_makes_exactly_one_sacct_call_for_many_ids() -> None:
    runner = FakeRunner({"sacct": ok((DATA / "sacct_oom_array.txt").read_text())})
    ids = [str(i) for i in range(1000, 3000)] + ["7", "7_1"]
    records = SlurmCommands(runner).query(ids)
    assert runner.names() == ["sacct"]
    (call,) = runner.calls
    assert list(call.argv) == [*SACCT_PREFIX, f"--jobs={','.join(ids)}"]
    assert call.env is not None and call.env["SLURM_TIME_FORMAT"] == "standard"
    assert call.env["SLURM_BITSTR_LEN"] == "0"  # a pending array's spec is never cut
    assert [(r.index, r.job.state) for r in records] == [
        (0, SlurmState.COMPLETED),
        (1, SlurmState.OUT_OF_MEMORY),
        (2, SlurmState.FAILED),
        (3, SlurmState.COMPLETED),
    ]


def test_query_deduplicates_ids_keeping_order() -> None:
    runner = FakeRunner()
    SlurmCommands(runner).query(["9", "7", "9", "7_2", "7"])
    assert runner.calls[0].argv[-1] == "--jobs=9,7,7_2"


def test_query_without_ids_makes_no_call() -> None:
    runner = FakeRunner()
    assert SlurmCommands(runner).query([]) == []
    assert runner.calls == []


@pytest.mark.parametrize("bad", ["1,2", "12 ", "-1", "--starttime=now", "7_[1-3]", "", "abc"])
def test_query_rejects_ids_that_would_change_the_command(bad: str) -> None:
    runner = FakeRunner()
    with pytest.raises(ValueError, match="not Slurm job ids"):
        SlurmCommands(runner).query(["5", bad])
    assert runner.calls == []


def test_query_rejects_a_bare_string() -> None:
    with pytest.raises(TypeError):
        SlurmCommands(FakeRunner()).query("123")


def test_query_failure_raises_with_stderr() -> None:
    stderr = "sacct: error: Problem talking to the database: Connection refused\n"
    runner = FakeRunner({"sacct": fail(1, stderr)})
    with pytest.raises(SlurmCommandError) as info:
        SlurmCommands(runner).query(["5"])
    assert (info.value.returncode, info.value.stderr) == (1, stderr.strip())
    assert str(info.value) == (
        "sacct exited 1: sacct: error: Problem talking to the database: Connection refused"
    )
    assert len(runner.calls) == 1  # no retry


def test_recorded_fixtures_were_made_with_the_clients_exact_command() -> None:
    """Every sacct fixture's .cmd is byte-identical to what query() runs for those ids."""
    fixtures = sorted(DATA.glob("sacct_*.cmd"))
    assert len(fixtures) >= 8
    for cmd_file in fixtures:
        recorded = shlex.split(cmd_file.read_text().splitlines()[0])
        runner = FakeRunner()
        ids = recorded[-1].removeprefix("--jobs=").split(",")
        SlurmCommands(runner).query(ids)
        assert list(runner.calls[0].argv) == recorded, cmd_file.name


# --- submit ----------------------------------------------------------------------------


def test_submit_passes_arguments_unchanged_without_a_shell() -> None:
    runner = FakeRunner({"sbatch": ok("4242\n")})
    env = {"PATH": "/usr/bin", "MY_VAR": "x y"}
    job_id = SlurmCommands(runner, submit_timeout=7).submit(TRICKY_ARGS, env=env, cwd="/tmp")
    assert job_id == "4242"
    (call,) = runner.calls
    assert call.argv == ("sbatch", "--parsable", *TRICKY_ARGS)  # one argv element each
    assert (call.env, call.cwd, call.timeout) == (env, "/tmp", 7)


def test_submit_returns_id_without_cluster_suffix() -> None:
    runner = FakeRunner({"sbatch": ok("63;escalate\n")})  # recorded from sbatch -M escalate
    assert SlurmCommands(runner).submit(["job.sh"]) == "63"


def test_failing_sbatch_raises_with_its_stderr_and_is_not_retried() -> None:
    runner = FakeRunner({"sbatch": fail(1, SBATCH_BAD_PARTITION)})
    with pytest.raises(SlurmCommandError) as info:
        SlurmCommands(runner).submit(["-p", "nosuch", "job.sh"])
    err = info.value
    assert err.returncode == 1
    assert err.stderr == SBATCH_BAD_PARTITION.strip()
    assert err.argv == ["sbatch", "--parsable", "-p", "nosuch", "job.sh"]
    assert str(err) == (
        "sbatch exited 1: sbatch: error: Batch job submission failed: "
        "Invalid partition name specified"
    )
    assert runner.names() == ["sbatch"]


def test_sbatch_timeout_is_not_retried() -> None:
    argv = ("sbatch", "--parsable", "job.sh")
    runner = FakeRunner({"sbatch": SlurmCommandError(argv, None, "sbatch: no answer after 60s")})
    with pytest.raises(SlurmCommandError):
        SlurmCommands(runner).submit(["job.sh"])
    assert runner.names() == ["sbatch"]


def test_sbatch_garbage_output_is_a_parse_error() -> None:
    runner = FakeRunner({"sbatch": ok("Submitted batch job 12\n")})
    with pytest.raises(SlurmParseError, match="may have been submitted"):
        SlurmCommands(runner).submit(["job.sh"])


# --- cancel, partitions, limits --------------------------------------------------------


def test_cancel() -> None:
    runner = FakeRunner()
    client = SlurmCommands(runner)
    client.cancel(["12", "13_4", "12"])
    client.cancel([])
    assert [c.argv for c in runner.calls] == [("scancel", "12", "13_4")]
    runner.replies["scancel"] = fail(1, "scancel: error: Kill job error on job id 12\n")
    with pytest.raises(SlurmCommandError, match="Kill job error"):
        client.cancel(["12"])


def test_partitions_uses_two_scontrol_calls() -> None:
    outputs = iter([(DATA / f"scontrol_{n}.txt").read_text() for n in ("partition", "node")])

    class Scontrol(FakeRunner):
        def run(self, argv: Sequence[str], **kw: object) -> CommandResult:
            super().run(argv)
            return CommandResult(tuple(argv), 0, next(outputs), "")

    runner = Scontrol()
    parts = SlurmCommands(runner).partitions()
    assert [c.argv for c in runner.calls] == [
        ("scontrol", "--all", "--oneliner", "show", "partition"),
        ("scontrol", "--all", "--oneliner", "show", "node"),
    ]
    assert {n: p.max_node_mem_mb for n, p in parts.items()} == {
        "devel": 1000,
        "day": 2000,
        "week": 8000,
    }


def test_limits_are_fetched_once() -> None:
    runner = FakeRunner({"scontrol": ok((DATA / "scontrol_config.txt").read_text())})
    client = SlurmCommands(runner)
    assert client.limits() == client.limits() == ClusterLimits(2001, None, 100000)
    assert [c.argv for c in runner.calls] == [("scontrol", "show", "config")]


# --- the real SubprocessRunner ---------------------------------------------------------

ECHO_ARGV = "import json, os, sys; print(json.dumps([os.fsencode(a).hex() for a in sys.argv[1:]]))"


def test_subprocess_runner_passes_bytes_through_without_a_shell() -> None:
    runner = SubprocessRunner()
    args = [*TRICKY_ARGS, os.fsdecode(b"latin1-\xe9")]  # undecodable byte, surrogate-escaped
    result = runner.run([sys.executable, "-c", ECHO_ARGV, *args])
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [os.fsencode(a).hex() for a in args]
    assert runner.calls[os.path.basename(sys.executable)] == 1


def test_subprocess_runner_call_options(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, object] = {}

    def fake_run(args: object, **kwargs: object) -> subprocess.CompletedProcess[str]:
        seen.update(kwargs, args=args)
        return subprocess.CompletedProcess(args, 0, "1\n", "")

    monkeypatch.setattr(subprocess, "run", fake_run)
    SubprocessRunner().run(["sbatch", "a b"], timeout=5, env={"A": "1"}, cwd="/")
    assert seen["args"] == ["sbatch", "a b"]
    assert seen["shell"] is False and seen["stdin"] is subprocess.DEVNULL
    assert (seen["timeout"], seen["env"], seen["cwd"], seen["text"]) == (5, {"A": "1"}, "/", True)


def test_subprocess_runner_returns_nonzero_exit() -> None:
    code = "import sys; sys.stderr.write('boom'); sys.exit(3)"
    result = SubprocessRunner().run([sys.executable, "-c", code])
    assert (result.returncode, result.stderr) == (3, "boom")


def test_subprocess_runner_stdin_is_devnull_and_bad_utf8_is_survivable() -> None:
    code = "import sys; data = sys.stdin.read(); sys.stdout.buffer.write(b'%d|\\xff' % len(data))"
    result = SubprocessRunner().run([sys.executable, "-c", code], timeout=10)
    assert result.stdout == "0|\ufffd"


def test_missing_binary_raises_slurm_command_error() -> None:
    runner = SubprocessRunner()
    with pytest.raises(SlurmCommandError) as info:
        runner.run(["definitely-not-sbatch-xyz", "--parsable"])
    assert info.value.returncode is None
    assert "command not found" in info.value.stderr
    assert runner.calls["definitely-not-sbatch-xyz"] == 1


def test_missing_binary_through_the_client() -> None:
    client = SlurmCommands(SubprocessRunner())
    with pytest.raises(SlurmCommandError, match="command not found"):
        client.submit(["job.sh"], env={"PATH": "/nonexistent"})


def test_missing_cwd_is_reported_as_such(tmp_path: Path) -> None:
    missing = str(tmp_path / "gone")
    with pytest.raises(SlurmCommandError, match="working directory .* does not exist"):
        SubprocessRunner().run([sys.executable, "-c", "pass"], cwd=missing)


def test_timeout_raises_slurm_command_error() -> None:
    with pytest.raises(SlurmCommandError, match="no answer after 0.2s") as info:
        SubprocessRunner().run([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.2)
    assert info.value.returncode is None


def test_submit_through_a_real_process_gets_argv_byte_for_byte(tmp_path: Path) -> None:
    """A stand-in ``sbatch`` on PATH records its argv: no shell, no word splitting."""
    fake = tmp_path / "sbatch"
    record = tmp_path / "argv.json"
    fake.write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        f"open({str(record)!r}, 'w').write(json.dumps(sys.argv[1:]))\nprint('77')\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}"}
    runner = SubprocessRunner()
    job_id = SlurmCommands(runner).submit(TRICKY_ARGS, env=env, cwd=str(tmp_path))
    assert job_id == "77"
    assert json.loads(record.read_text()) == ["--parsable", *TRICKY_ARGS]
    assert runner.calls == {"sbatch": 1}


# --- the Protocol ------------------------------------------------------------------------

PROTOCOL_MEMBERS = {
    "submit",
    "query",
    "find_tokens",
    "cancel",
    "partitions",
    "limits",
    "command",
    "runner",
    "query_timeout",
    "control_timeout",
}


def _client_uses() -> set[str]:
    """Every attribute the package reads off a ``client`` or ``self.client`` (outside slurm/)."""
    root = Path(slurm_escalate.__file__).parent
    used: set[str] = set()
    for path in root.rglob("*.py"):
        if path.parent.name == "slurm" or path.name == "testing.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Attribute):
                continue
            owner = node.value
            if (isinstance(owner, ast.Name) and owner.id == "client") or (
                isinstance(owner, ast.Attribute) and owner.attr == "client"
            ):
                used.add(node.attr)
    return used


def test_the_protocol_names_exactly_what_the_package_asks_of_a_client() -> None:
    declared = {n for n in vars(SlurmClient) if not n.startswith("_")}
    assert declared == PROTOCOL_MEMBERS
    assert _client_uses() == PROTOCOL_MEMBERS


@pytest.mark.parametrize(
    "client", [SlurmCommands(FakeRunner()), testing.FakeSlurm(testing.ok)], ids=["real", "fake"]
)
def test_the_real_client_and_the_fake_both_offer_every_member(client: SlurmClient) -> None:
    for name in PROTOCOL_MEMBERS:
        assert hasattr(client, name), name
    assert client.query_timeout > 0 and client.control_timeout > 0


def test_the_fake_records_cancels_and_refuses_raw_commands() -> None:
    fake = testing.FakeSlurm(testing.ok)
    fake.cancel(["100", "101_3"])
    assert fake.cancelled == ["100", "101_3"] and fake.calls["scancel"] == 1
    result = fake.runner.run(["scontrol", "show", "job", "100"])
    assert result.returncode == 1 and "does not simulate 'scontrol'" in result.stderr


def test_run_lines_streams_stdout_keeps_stderr_and_passes_arguments_unchanged() -> None:
    seen: list[str] = []
    script = "import sys; print(*sys.argv[1:], sep='\\n'); print('oops', file=sys.stderr)"
    args = ["a b", "$HOME", "x;y", "é"]
    result = SubprocessRunner().run_lines([sys.executable, "-c", script, *args], seen.append)
    assert seen == args
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "oops\n")


def test_run_lines_kills_a_command_that_does_not_answer_in_time() -> None:
    with pytest.raises(SlurmCommandError, match="no answer after 0.5s") as e:
        SubprocessRunner().run_lines(
            [sys.executable, "-c", "import time; time.sleep(30)"], print, timeout=0.5
        )
    assert e.value.timed_out


def test_run_lines_stops_the_command_when_the_reader_fails() -> None:
    def reader(line: str) -> None:
        raise ValueError(f"cannot read {line!r}")

    script = "import time\nprint('first', flush=True)\ntime.sleep(30)"
    with pytest.raises(ValueError, match="cannot read 'first'"):
        SubprocessRunner().run_lines([sys.executable, "-c", script], reader, timeout=60)


# --- finding a job by its token: Comment or SubmitLine (issue 11, site profile a) ----------

CHAIN = "20261202-184500-abcd"
PREFIX = f"slurm-escalate:{CHAIN}:"
# Recorded with find_tokens' sacct command (``--format=JobID,Comment,SubmitLine``, SubmitLine
# last) on Slurm 22.05.8. The "site" cluster (docker-cluster/site/: no AccountingStoreFlags)
# keeps no comment; its SubmitLine is sbatch's arguments joined by spaces, not re-quoted, so a
# job name "a|b c", the script path "/tmp/c1/my job.sh" and the arguments 'x y' 'p|q' '"quoted"'
# "it's" come out as below. Job 25 gave its own --comment, with a '|', and a --wrap that merely
# mentions a token; 26 is seq 10 (not to be taken for seq 1).
SACCT_TOKENS_SITE = """\
25||sbatch --parsable --comment=my|own --comment=x -o /dev/null --wrap echo "--comment=slurm-escalate:20261202-184500-abcd:9"
26||sbatch --parsable --comment=slurm-escalate:20261202-184500-abcd:10 -o /dev/null --wrap true
24_[0-1]||sbatch --parsable --job-name=a|b c --comment=slurm-escalate:20261202-184500-abcd:1 --array=0-1 -o /dev/null /tmp/c1/my job.sh x y p|q "quoted" it's
"""  # noqa: E501
# The same command on the host cluster (AccountingStoreFlags=job_comment): Comment is stored;
# 24673's own comment holds a '|'.
SACCT_TOKENS_HOST = """\
24672|slurm-escalate:20261202-184500-abcd:2|sbatch --parsable -p devel --comment=slurm-escalate:20261202-184500-abcd:2 -o /dev/null --wrap true
24673|a|b|sbatch --parsable -p devel --comment=a|b -o /dev/null --wrap true
"""  # noqa: E501


def test_tokens_are_found_in_submit_line_where_accounting_keeps_no_comment() -> None:
    assert parse_job_tokens(SACCT_TOKENS_SITE, PREFIX) == {f"{PREFIX}10": "26", f"{PREFIX}1": "24"}


def test_tokens_are_found_in_comment_and_submit_line_alike() -> None:
    assert parse_job_tokens(SACCT_TOKENS_HOST, PREFIX) == {f"{PREFIX}2": "24672"}
    comment_only = f"31_4|{PREFIX}5|\n"  # a release or site without SubmitLine
    assert parse_job_tokens(comment_only, PREFIX) == {f"{PREFIX}5": "31"}


@pytest.mark.parametrize(
    "line",
    [
        f"40||sbatch --comment={PREFIX}1x",  # not the prefix of a token: a different token
        f"40||sbatch --job-name=--comment={PREFIX}1 job.sh",  # not an argument of its own
        f"40||sbatch job.sh --comment-{PREFIX}1",
        "40||sbatch --comment=slurm-escalate:other-chain:1 job.sh",
        f"40.batch||sbatch --comment={PREFIX}7",  # a step row is still job 40 ...
        f"--comment={PREFIX}1 continued|x|y",  # ... but a line of a multi-line SubmitLine is not
        f"abc||sbatch --comment={PREFIX}1",
    ],
)
def test_what_is_not_our_token(line: str) -> None:
    found = parse_job_tokens(line + "\n", PREFIX)
    assert f"{PREFIX}1" not in found
    if line.startswith("40.batch"):
        assert found == {f"{PREFIX}7": "40"}


def test_the_first_row_of_a_token_names_the_job() -> None:
    text = f"50_0||sbatch --comment={PREFIX}3 a.sh\n50_1||sbatch --comment={PREFIX}3 a.sh\n"
    assert parse_job_tokens(text, PREFIX) == {f"{PREFIX}3": "50"}


def test_find_tokens_asks_sacct_for_submit_line_last_and_squeue() -> None:
    squeue_out = f"26|{PREFIX}10\n77|{PREFIX}4\n78|(null)\n"
    runner = FakeRunner({"sacct": ok(SACCT_TOKENS_SITE), "squeue": ok(squeue_out)})
    found = SlurmCommands(runner).find_tokens(PREFIX, 1_700_000_000.0)
    assert found == {f"{PREFIX}10": "26", f"{PREFIX}1": "24", f"{PREFIX}4": "77"}
    sacct, squeue = runner.calls
    assert sacct.argv[:5] == (
        "sacct",
        "--noheader",
        "--parsable2",
        "--allocations",
        "--format=JobID,Comment,SubmitLine",
    )
    assert sacct.argv[5].startswith("--starttime=") and sacct.argv[6] == f"--user={os.getuid()}"
    assert squeue.argv == (
        "squeue",
        "--noheader",
        f"--user={os.getuid()}",
        "--format=%F|%k",
        "--states=all",
    )


# --- sbatch -M / --clusters: every other call follows the chain there (site profile e) ----


def test_every_call_carries_the_chains_cluster() -> None:
    config = (DATA / "scontrol_config.txt").read_text()
    runner = FakeRunner({"sbatch": ok("63;site\n"), "scontrol": ok(config)})
    client = SlurmCommands(runner, clusters="site")

    assert client.submit(["-M", "site", "job.sh"]) == "63"  # sbatch: the user's own -M
    client.query(["63"])
    client.find_tokens(PREFIX, 0.0)
    client.cancel(["63_1"])
    client.limits()
    runner.replies["scontrol"] = ok("")
    client.partitions()

    argvs = [c.argv for c in runner.calls]
    assert argvs[0] == ("sbatch", "--parsable", "-M", "site", "job.sh")
    assert [a[:2] for a in argvs[1:]] == [
        ("sacct", "--clusters=site"),
        ("sacct", "--clusters=site"),
        ("squeue", "--clusters=site"),
        ("scancel", "--clusters=site"),
        ("scontrol", "--clusters=site"),
        ("scontrol", "--clusters=site"),
        ("scontrol", "--clusters=site"),
    ]
    assert argvs[1] == ("sacct", "--clusters=site", *SACCT_PREFIX[1:], "--jobs=63")
    assert argvs[4] == ("scancel", "--clusters=site", "63_1")
    assert argvs[5] == ("scontrol", "--clusters=site", "show", "config")
    assert argvs[6][2:] == ("--all", "--oneliner", "show", "partition")
    assert argvs[7][2:] == ("--all", "--oneliner", "show", "node")


def test_without_a_cluster_no_call_names_one() -> None:
    runner = FakeRunner()
    client = SlurmCommands(runner)
    client.query(["63"])
    client.find_tokens(PREFIX, 0.0)
    client.cancel(["63"])
    assert not any(a.startswith(("--clusters", "-M")) for c in runner.calls for a in c.argv)


@pytest.mark.parametrize("bad", ["a,b", "all", "ALL", "", "-x", "a b", "--jobs=1"])
def test_the_client_takes_exactly_one_cluster_name(bad: str) -> None:
    with pytest.raises(ValueError, match="not one Slurm cluster name"):
        SlurmCommands(FakeRunner(), clusters=bad)


@pytest.mark.parametrize(
    ("tokens", "script", "expected"),
    [
        (["job.sh"], "#!/bin/bash\ntrue\n", None),
        (["-M", "site", "job.sh"], "#!/bin/bash\n", "site"),
        (["-Msite", "job.sh"], "#!/bin/bash\n", "site"),
        (["--clusters=site", "job.sh"], "#!/bin/bash\n", "site"),
        (["--clusters", "site", "job.sh"], "#!/bin/bash\n", "site"),
        (["job.sh"], "#!/bin/bash\n#SBATCH -M site\ntrue\n", "site"),
        (["-M", "other", "job.sh"], "#!/bin/bash\n#SBATCH -M site\n", "other"),  # like sbatch
        (["-M", "site", "--wrap", "true"], None, "site"),
    ],
)
def test_the_chains_cluster_comes_from_its_sbatch_options(
    tokens: list[str], script: str | None, expected: str | None
) -> None:
    assert request_clusters(make_request(tokens, script)) == expected


@pytest.mark.parametrize("value", ["a,b", "all", "site,escalate"])
def test_a_list_of_clusters_is_a_usage_error(value: str) -> None:
    with pytest.raises(UsageError, match="give exactly one cluster name") as info:
        request_clusters(make_request(["-M", value, "job.sh"], "#!/bin/bash\n"))
    assert info.value.exit_code == 2 and "\n" not in str(info.value)


def test_the_real_client_of_a_command_gets_the_cluster() -> None:
    client = Env(environ={}).client("site")
    assert isinstance(client, SlurmCommands) and client.clusters == "site"
    assert isinstance(Env(environ={}).client(), SlurmCommands)
    assert Env(environ={}).client().clusters is None  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("tokens", "environ", "expected_tokens", "cluster"),
    [
        (["job.sh"], {}, ["job.sh"], None),
        (["job.sh"], {"SLURM_CLUSTERS": "site"}, ["--clusters=site", "job.sh"], "site"),
        (
            ["job.sh"],
            {"SBATCH_CLUSTERS": "a", "SLURM_CLUSTERS": "b"},
            ["--clusters=a", "job.sh"],
            "a",
        ),
        (
            ["-M", "x", "job.sh"],
            {"SLURM_CLUSTERS": "site"},
            ["-M", "x", "job.sh"],
            "x",
        ),  # sbatch's order
        (["job.sh"], {"SLURM_CLUSTERS": " "}, ["job.sh"], None),
    ],
)
def test_a_cluster_only_the_environment_names_is_written_out(
    tokens: list[str], environ: dict[str, str], expected_tokens: list[str], cluster: str | None
) -> None:
    """sbatch takes -M from SBATCH_CLUSTERS/SLURM_CLUSTERS: the chain keeps it explicitly,
    so a resume from a shell without them still asks that cluster."""
    request = make_request(tokens, "#!/bin/bash\n")
    assert submission_clusters(tokens, request, environ) == (expected_tokens, cluster)


def test_a_list_of_clusters_in_the_environment_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="SLURM_CLUSTERS 'a,b': give exactly one cluster name"):
        submission_clusters(
            ["job.sh"], make_request(["job.sh"], "#!/bin/bash\n"), {"SLURM_CLUSTERS": "a,b"}
        )
