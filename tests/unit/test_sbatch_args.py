"""sbatch command lines and #SBATCH lines: splitting, parsing, validation and rebuilding."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from conftest import skip_unless_ci
from hypothesis import given
from hypothesis import strategies as st

from slurm_escalate.arrays.spec import ArraySpec
from slurm_escalate.core.models import Level
from slurm_escalate.errors import ArraySpecError, ScriptError, UsageError
from slurm_escalate.sbatch.args import (
    JobRequest,
    SbatchOption,
    array_spec,
    build_sbatch_args,
    effective,
    given_on_command_line,
    load_request,
    load_script,
    make_request,
    parse_sbatch_options,
    read_directives,
    remove_directives,
    requested_level,
    resolve_directive_conflicts,
    resolve_script,
    split_command_line,
)
from slurm_escalate.sbatch.options import LONG_NAMES, OPTIONS, SHORT

SCRIPT = "#!/bin/bash\necho hi\n"


def request(tokens: list[str], script_text: str | None = SCRIPT) -> JobRequest:
    if "--wrap" in tokens or any(t.startswith("--wrap=") for t in tokens):
        script_text = None
    return make_request(tokens, script_text)


# ---------------------------------------------------------------- splitting


@pytest.mark.parametrize(
    ("tokens", "expected"),
    [
        (["-p", "devel", "job.sh", "a", "b"], (("-p", "devel"), "job.sh", ("a", "b"))),
        (["--mem", "4G", "job.sh"], (("--mem", "4G"), "job.sh", ())),
        (["-pdevel", "job.sh"], (("-pdevel",), "job.sh", ())),
        (["--array=0-9%2", "job.sh"], (("--array=0-9%2",), "job.sh", ())),
        (["job.sh", "--mem", "9G"], ((), "job.sh", ("--mem", "9G"))),
        (["--wrap", "echo hi"], (("--wrap", "echo hi"), None, ())),
        (["--wrap=echo hi", "-p", "day"], (("--wrap=echo hi", "-p", "day"), None, ())),
        (["-p", "day", "--", "job.sh", "-x"], (("-p", "day"), "job.sh", ("-x",))),
        (["--", "-weird.sh", "--"], ((), "-weird.sh", ("--",))),
        (["-vv", "-Q", "job.sh"], (("-vv", "-Q"), "job.sh", ())),
        (["-vQpday", "job.sh"], (("-vQpday",), "job.sh", ())),
        (["-J", "-p", "job.sh"], (("-J", "-p"), "job.sh", ())),  # a value may look like an option
        (["--exclusive", "user", "job.sh"], (("--exclusive",), "user", ("job.sh",))),
        (["--exclusive=user", "job.sh"], (("--exclusive=user",), "job.sh", ())),
        (["--nice", "5", "job.sh"], (("--nice",), "5", ("job.sh",))),
        (["-k", "off", "job.sh"], (("-k",), "off", ("job.sh",))),
        (["-koff", "job.sh"], (("-koff",), "job.sh", ())),
        (["--part=day", "job.sh"], (("--part=day",), "job.sh", ())),
        (["-p", "", "job.sh", ""], (("-p", ""), "job.sh", ("",))),
        (["--export=ALL,FOO=a,b", "job.sh"], (("--export=ALL,FOO=a,b",), "job.sh", ())),
        (["--parsable", "job.sh"], (("--parsable",), "job.sh", ())),
        (["-", "x"], ((), "-", ("x",))),
    ],
)
def test_split_command_line(tokens, expected):
    assert split_command_line(tokens) == expected


WAIT = "sbatch would block until the job ends; sbatch_escalate already waits"


@pytest.mark.parametrize(
    ("tokens", "message"),
    [
        ([], "no job script given"),
        (["-p", "day"], "no job script given"),
        (["-p", "day", "--"], "no job script given"),
        (["--foo", "job.sh"], "unknown sbatch option '--foo'"),
        (["--foo=1", "job.sh"], "unknown sbatch option '--foo'"),
        (["---", "job.sh"], "unknown sbatch option '---'"),
        (["--=x", "job.sh"], "unknown sbatch option '--=x'"),
        (["-E", "job.sh"], "unknown sbatch option '-E'"),
        (["-vE", "job.sh"], "unknown sbatch option '-E' in '-vE'"),
        (["-I", "job.sh"], "unknown sbatch option '-I'"),
        (
            ["--mem-p=1G", "job.sh"],
            "ambiguous sbatch option '--mem-p' (could be --mem-per-cpu, --mem-per-gpu)",
        ),
        (
            ["--clu=x", "job.sh"],
            "ambiguous sbatch option '--clu' (could be --cluster-constraint, --clusters)",
        ),
        (["--mem"], "sbatch option '--mem' needs a value"),
        (["job.sh", "--mem"], None),  # a script argument: fine
        (["-p"], "sbatch option '-p' needs a value"),
        (["-vp"], "sbatch option '-p' needs a value"),
        (["--hold=yes", "job.sh"], "sbatch option '--hold' takes no value: '--hold=yes'"),
        (["--wait", "job.sh"], f"sbatch option '--wait' is not supported: {WAIT}"),
        (
            ["--wai", "job.sh"],
            "ambiguous sbatch option '--wai' (could be --wait, --wait-all-nodes)",
        ),
        (
            ["--te", "job.sh"],
            "sbatch option '--te' is not supported: it submits nothing to monitor",
        ),
        (["-W", "job.sh"], f"sbatch option '-W' is not supported: {WAIT}"),
        (["-vW", "job.sh"], f"sbatch option '-W' is not supported: {WAIT}"),
        (
            ["--test-only", "job.sh"],
            "sbatch option '--test-only' is not supported: it submits nothing to monitor",
        ),
        (["-h"], "sbatch option '-h' is not supported: run 'sbatch --help' directly"),
        (["--help"], "sbatch option '--help' is not supported: run 'sbatch --help' directly"),
        (["--usage"], "sbatch option '--usage' is not supported: run 'sbatch --usage' directly"),
        (["-V"], "sbatch option '-V' is not supported: run 'sbatch --version' directly"),
        (
            ["--version"],
            "sbatch option '--version' is not supported: run 'sbatch --version' directly",
        ),
        (
            ["--wrap", "echo", "job.sh"],
            "unexpected argument 'job.sh': --wrap replaces the job script",
        ),
        (
            ["-p", "a", ":", "-p", "b", "job.sh"],
            "heterogeneous jobs (the ':' separator) are not supported",
        ),
    ],
)
def test_split_command_line_errors(tokens, message):
    if message is None:
        split_command_line(tokens)
        return
    with pytest.raises(UsageError) as info:
        split_command_line(tokens)
    assert str(info.value) == message
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("tokens", "expected"),
    [
        (["-p", "devel"], [("partition", "devel", ("-p", "devel"))]),
        (["--mem=4G"], [("mem", "4G", ("--mem=4G",))]),
        (["--mem", "4G"], [("mem", "4G", ("--mem", "4G"))]),
        (["-c2"], [("cpus-per-task", "2", ("-c2",))]),
        (
            ["-vp", "day"],
            [("verbose", None, ("-vp",)), ("partition", "day", ("-vp", "day"))],
        ),
        (["--tasks-per-node=2"], [("ntasks-per-node", "2", ("--tasks-per-node=2",))]),
        (["--cluster", "c1"], [("clusters", "c1", ("--cluster", "c1"))]),
        (["--time-m=5"], [("time-min", "5", ("--time-m=5",))]),
        (["--exclusive"], [("exclusive", None, ("--exclusive",))]),
        (["--exclusive="], [("exclusive", "", ("--exclusive=",))]),
        (
            ["-J", "a b", "-o", "%x.out"],
            [("job-name", "a b", ("-J", "a b")), ("output", "%x.out", ("-o", "%x.out"))],
        ),
        (["--open-mode", "append"], [("open-mode", "append", ("--open-mode", "append"))]),
        (["--export=NONE"], [("export", "NONE", ("--export=NONE",))]),
        (["-a", "0-3"], [("array", "0-3", ("-a", "0-3"))]),
    ],
)
def test_parse_sbatch_options(tokens, expected):
    assert parse_sbatch_options(tokens) == tuple(SbatchOption(*e) for e in expected)


def test_parse_sbatch_options_rejects_a_positional():
    with pytest.raises(UsageError, match="^unexpected argument 'job.sh' among sbatch options$"):
        parse_sbatch_options(["-p", "day", "job.sh"])


def test_option_table_is_consistent():
    assert len(OPTIONS) == 104 and len(LONG_NAMES) == 106  # as listed by sbatch 22.05.8
    assert set(SHORT) == set("ABCDFGHJLMNOQSVWabcdehikmnopqstvwx")
    assert all(name in OPTIONS for name in LONG_NAMES.values())


# ---------------------------------------------------------------- #SBATCH lines

DIRECTIVES = """#!/bin/bash
# a comment
#SBATCH -p day   # trailing comment -p week
#SBATCH --mem=2G
  #SBATCH --not-a-directive (indented lines are comments)
#SBATCH --job-name="a b" -o 'x y.out'
\t
#SBATCH -c 2#comment
echo hi
#SBATCH --time=5
"""


def test_read_directives():
    found = read_directives(DIRECTIVES)
    assert found == (
        SbatchOption("partition", "day", ("-p", "day")),
        SbatchOption("mem", "2G", ("--mem=2G",)),
        SbatchOption("job-name", "a b", ("--job-name=a b",)),
        SbatchOption("output", "x y.out", ("-o", "x y.out")),
        SbatchOption("cpus-per-task", "2", ("-c", "2")),
    )
    assert [o.line for o in found] == [3, 4, 6, 6, 8]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('#SBATCH -p "x\\"y"', [("partition", 'x"y')]),
        ("#SBATCH -p 'x\"y' -J \"it's\"", [("partition", 'x"y'), ("job-name", "it's")]),
        ("#SBATCH -J a\\#b", [("job-name", "a#b")]),
        ("#SBATCH -J x\\y", [("job-name", "xy")]),
        ('#SBATCH -J a"b c"d', [("job-name", "ab cd")]),
        ('#SBATCH -J "x#y"', [("job-name", "x#y")]),
        ('#SBATCH -J x "" -p ignored', [("job-name", "x")]),  # sbatch stops at an empty word
        ("#SBATCH--partition=day", [("partition", "day")]),
        ("#SBATCH\t-p\tday", [("partition", "day")]),
        ("#SBATCH --part=day", [("partition", "day")]),
        ("#SBATCH -p\n#SBATCH day", [("partition", "day")]),  # one argv for all lines
        ("#SBATCH", []),
        ("#sbatch -p day", []),
        (
            "#SBATCH --array=0-9%2 --export=ALL,FOO=a,b",
            [("array", "0-9%2"), ("export", "ALL,FOO=a,b")],
        ),
    ],
)
def test_read_directives_quoting(line, expected):
    found = read_directives(f"#!/bin/bash\n{line}\necho\n")
    assert [(o.name, o.value) for o in found] == expected


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("#SBATCH --foo", "line 2: unknown sbatch option '--foo'"),
        ("#SBATCH -p day foo", "line 2: invalid #SBATCH directive 'foo'"),
        ("#SBATCHX -p day", "line 2: invalid #SBATCH directive 'X'"),
        ("#SBATCH -- -p day", "line 2: invalid #SBATCH directive '-p'"),
        ('#SBATCH -J "abc', 'line 2: unmatched " in #SBATCH line'),
        ("#SBATCH -p", "line 2: sbatch option '-p' needs a value"),
        ("#SBATCH --nice 5", "line 2: invalid #SBATCH directive '5'"),
        ("#SBATCH --wait", f"line 2: '#SBATCH --wait' is not supported: {WAIT}"),
        ("#SBATCH hetjob", "line 2: heterogeneous jobs ('#SBATCH hetjob') are not supported"),
        ("#SBATCH PACKJOB # x", "line 2: heterogeneous jobs ('#SBATCH hetjob') are not supported"),
    ],
)
def test_read_directives_errors(line, message):
    with pytest.raises(ScriptError) as info:
        read_directives(f"#!/bin/bash\n{line}\necho\n")
    assert str(info.value) == message


# ---------------------------------------------------------------- the request


def test_request_fields_and_lookups():
    text = "#!/bin/bash\n#SBATCH -p week --time=10\n#SBATCH --array=0-9%2\necho\n"
    req = make_request(["-p", "day", "--mem=4G", "job.sh", "x"], text)
    assert req.sbatch_args == ("-p", "day", "--mem=4G")
    assert req.script == "job.sh" and req.script_args == ("x",)
    assert req.script_text == text
    assert effective(req, "partition") == "day"  # the command line beats #SBATCH
    assert effective(req, "time") == "10"
    assert effective(req, "qos") is None
    assert given_on_command_line(req, "partition") and given_on_command_line(req, "mem")
    assert not given_on_command_line(req, "time")
    assert array_spec(req) == ArraySpec(indices=tuple(range(10)), throttle=2)
    assert array_spec(make_request(["-a", "1,3", "job.sh"], text)) == ArraySpec((1, 3))
    assert array_spec(make_request(["job.sh"], SCRIPT)) is None
    with pytest.raises(ValueError, match="not an sbatch option name"):
        effective(req, "memory")


def test_last_value_wins_and_malformed_array():
    req = make_request(["-p", "a", "--partition=b", "job.sh"], "#!/bin/sh\n#SBATCH -a 5-1\n")
    assert effective(req, "partition") == "b"
    with pytest.raises(ArraySpecError):
        array_spec(req)


@pytest.mark.parametrize(
    ("tokens", "text", "expected"),
    [
        (
            [
                "-p",
                "day",
                "--mem=4G",
                "-t",
                "1:00:00",
                "-c",
                "2",
                "--gres=gpu:1",
                "-q",
                "hi",
                "-A",
                "acct",
                "-C",
                "intel",
                "job.sh",
            ],
            SCRIPT,
            Level("day", 4096, 3600, 2, "gpu:1", "hi", "acct", "intel"),
        ),
        (
            ["job.sh"],
            "#!/bin/sh\n#SBATCH --mem=512 -t 30 -p week,day\n",
            Level("week,day", 512, 1800),
        ),
        (["--mem-per-cpu=1G", "job.sh"], SCRIPT, Level()),
        (["--mem=0", "--time=UNLIMITED", "job.sh"], SCRIPT, Level()),
        (["--time=0", "job.sh"], SCRIPT, Level()),
        (["job.sh"], SCRIPT, Level()),
    ],
)
def test_requested_level(tokens, text, expected):
    assert requested_level(make_request(tokens, text)) == expected


@pytest.mark.parametrize(
    ("tokens", "text", "message"),
    [
        (
            ["--mem=4X", "job.sh"],
            SCRIPT,
            "invalid --mem: not a memory size: '4X' (expected e.g. 512M, 4G)",
        ),
        (
            ["job.sh"],
            "#!/bin/sh\n#SBATCH -c two\n",
            "line 2: invalid -c: not a positive integer: 'two'",
        ),
        (
            ["-t", "1:99:00", "job.sh"],
            SCRIPT,
            "invalid -t: not a time: '1:99:00' (minutes and seconds must be below 60)",
        ),
    ],
)
def test_requested_level_errors(tokens, text, message):
    with pytest.raises(UsageError) as info:
        requested_level(make_request(tokens, text))
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("tokens", "text", "error", "message"),
    [
        (
            ["--mem=1G", "job.sh"],
            "#!/bin/sh\n#SBATCH --mem-per-cpu=1G\n",
            UsageError,
            "--mem conflicts with '#SBATCH --mem-per-cpu' on line 2 of the script "
            "(sbatch refuses both)",
        ),
        (
            ["--mem=1G", "--mem-per-gpu=1G", "job.sh"],
            SCRIPT,
            UsageError,
            "--mem and --mem-per-gpu are mutually exclusive",
        ),
        (
            ["job.sh"],
            "#!/bin/sh\n#SBATCH --mem=1G\n#SBATCH --mem-per-cpu=1G\n",
            ScriptError,
            "line 3: #SBATCH --mem-per-cpu conflicts with --mem on line 2",
        ),
        (
            ["job.sh"],
            "#!/bin/sh\n#SBATCH -p day\n#PBS -q x\necho\n",
            ScriptError,
            "line 3: #PBS/#BSUB directives are not supported; rewrite them as #SBATCH lines "
            "or pass --ignore-pbs",
        ),
        (
            ["job.sh"],
            "#!/bin/sh\n#BSUB -q x\n",
            ScriptError,
            "line 2: #PBS/#BSUB directives are not supported; rewrite them as #SBATCH lines "
            "or pass --ignore-pbs",
        ),
    ],
)
def test_make_request_errors(tokens, text, error, message):
    with pytest.raises(error) as info:
        make_request(tokens, text)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("tokens", "text"),
    [
        (["--ignore-pbs", "job.sh"], "#!/bin/sh\n#PBS -q x\n"),
        (["job.sh"], "#!/bin/sh\n#SBATCH --ignore-pbs\n#PBS -q x\n"),
        (["job.sh"], "#!/bin/sh\necho\n#PBS -q x\n"),  # after the first command: a comment
        (["--mem=1G", "job.sh"], "#!/bin/sh\n#SBATCH --mem=2G\n"),
    ],
)
def test_make_request_accepts(tokens, text):
    make_request(tokens, text)


def test_make_request_needs_text_exactly_for_a_script():
    with pytest.raises(ValueError):
        make_request(["job.sh"], None)
    with pytest.raises(ValueError):
        make_request(["--wrap=true"], SCRIPT)


# ---------------------------------------------------------------- building argv

DAY = Level(partition="day", mem_mb=2048, time_s=120)
WEIRD = ["'a b'", '"it\'s"', "$HOME", "x;y", "*", "", " ", "--mem", "é\\n"]


@pytest.mark.parametrize(
    ("tokens", "text", "level", "keep", "kwargs", "expected"),
    [
        # first attempt: what the user typed on the command line stays
        (
            ["-p", "devel", "--mem", "1G", "job.sh", "a"],
            SCRIPT,
            DAY,
            True,
            {},
            ["-p", "devel", "--mem", "1G", "--time=00:02:00", "job.sh", "a"],
        ),
        # escalated attempt: the level wins
        (
            ["-p", "devel", "--mem", "1G", "job.sh", "a"],
            SCRIPT,
            DAY,
            False,
            {},
            ["--partition=day", "--mem=2G", "--time=00:02:00", "job.sh", "a"],
        ),
        # #SBATCH values always lose to the level (the command line beats them)
        (
            ["job.sh"],
            "#!/bin/sh\n#SBATCH -p devel --mem=1G\n",
            DAY,
            True,
            {},
            ["--partition=day", "--mem=2G", "--time=00:02:00", "job.sh"],
        ),
        # keys the level leaves alone are never touched
        (
            ["-p", "devel", "-J", "x", "job.sh"],
            SCRIPT,
            Level(mem_mb=1536),
            False,
            {},
            ["-p", "devel", "-J", "x", "--mem=1536M", "job.sh"],
        ),
        # memory per CPU is the same key as --mem
        (
            ["--mem-per-cpu=1G", "job.sh"],
            SCRIPT,
            DAY,
            True,
            {},
            ["--mem-per-cpu=1G", "--partition=day", "--time=00:02:00", "job.sh"],
        ),
        (
            ["--mem-per-cpu=1G", "--mem-per-gpu", "1G", "job.sh"],
            None,
            Level(mem_mb=4096),
            False,
            {},
            None,
        ),  # rejected up front, see test_make_request_errors
        (
            ["--mem-per-cpu=1G", "job.sh"],
            SCRIPT,
            Level(mem_mb=4096),
            False,
            {},
            ["--mem=4G", "job.sh"],
        ),
        # every level key, abbreviations and short forms included
        (
            ["--part=a", "-c2", "--gres=x", "-qq", "-A", "acct", "-C", "c", "-t", "5", "job.sh"],
            SCRIPT,
            Level("b", None, 60, 4, "gpu:1", "q2", "acct2", "c2"),
            False,
            {},
            [
                "--partition=b",
                "--time=00:01:00",
                "--cpus-per-task=4",
                "--gres=gpu:1",
                "--qos=q2",
                "--account=acct2",
                "--constraint=c2",
                "job.sh",
            ],
        ),
        # the array: replaced when given, left alone when not
        (
            ["--array=0-9%2", "-J", "x", "job.sh"],
            SCRIPT,
            None,
            True,
            {"array": "3,5%1"},
            ["-J", "x", "--array=3,5%1", "job.sh"],
        ),
        (["-a", "0-3", "job.sh"], SCRIPT, None, True, {"array": "1"}, ["--array=1", "job.sh"]),
        (["-a", "0-3", "job.sh"], SCRIPT, None, True, {}, ["-a", "0-3", "job.sh"]),
        # open mode and --parsable
        (
            ["--open-mode", "truncate", "-o", "out.txt", "--parsable", "job.sh"],
            SCRIPT,
            None,
            False,
            {"open_mode_append": True},
            ["-o", "out.txt", "--open-mode=append", "job.sh"],
        ),
        # short clusters lose only the replaced letter
        (
            ["-Hc2", "job.sh"],
            SCRIPT,
            Level(cpus_per_task=4),
            False,
            {},
            ["-H", "--cpus-per-task=4", "job.sh"],
        ),
        (
            ["-vQpdevel", "job.sh"],
            SCRIPT,
            DAY,
            False,
            {},
            ["-v", "-Q", "--partition=day", "--mem=2G", "--time=00:02:00", "job.sh"],
        ),
        (
            ["-Hkoff", "job.sh"],
            SCRIPT,
            Level(cpus_per_task=4),
            False,
            {},
            ["-Hkoff", "--cpus-per-task=4", "job.sh"],
        ),
        # --time-min above the new --time would be refused: clamp it
        (
            ["job.sh"],
            "#!/bin/sh\n#SBATCH --time-min=10\n",
            DAY,
            False,
            {},
            ["--partition=day", "--mem=2G", "--time=00:02:00", "--time-min=00:02:00", "job.sh"],
        ),
        (
            ["--time-min", "10", "job.sh"],
            SCRIPT,
            Level(time_s=300),
            False,
            {},
            ["--time=00:05:00", "--time-min=00:05:00", "job.sh"],
        ),
        (
            ["--time-min", "1", "job.sh"],
            SCRIPT,
            Level(time_s=300),
            False,
            {},
            ["--time-min", "1", "--time=00:05:00", "job.sh"],
        ),
        (
            ["-t", "20", "--time-min", "10", "job.sh"],
            SCRIPT,
            Level(time_s=300),
            True,
            {},
            ["-t", "20", "--time-min", "10", "job.sh"],
        ),
        # extra args go last, verbatim
        (
            ["job.sh"],
            SCRIPT,
            Level(partition="day", extra_args=("--comment=a b", "-s")),
            False,
            {},
            ["--partition=day", "--comment=a b", "-s", "job.sh"],
        ),
        # a saved copy of the script, and a script name that looks like an option
        (
            ["job.sh", "x"],
            SCRIPT,
            None,
            True,
            {"script_path": "/saved/copy.sh"},
            ["/saved/copy.sh", "x"],
        ),
        (["--", "-job.sh", "x"], SCRIPT, None, True, {}, ["--", "-job.sh", "x"]),
        # --wrap: no script, nothing after the options
        (
            ["--wrap", "echo hi; ls *", "-p", "devel"],
            None,
            DAY,
            False,
            {},
            ["--wrap", "echo hi; ls *", "--partition=day", "--mem=2G", "--time=00:02:00"],
        ),
        # exports and awkward user values stay byte for byte
        (
            [
                "--export=NONE",
                "-J",
                "a b",
                "--export=ALL,FOO=a,b",
                "-o",
                "$HOME/x;y",
                "job.sh",
                *WEIRD,
            ],
            SCRIPT,
            DAY,
            False,
            {},
            [
                "--export=NONE",
                "-J",
                "a b",
                "--export=ALL,FOO=a,b",
                "-o",
                "$HOME/x;y",
                "--partition=day",
                "--mem=2G",
                "--time=00:02:00",
                "job.sh",
                *WEIRD,
            ],
        ),
    ],
)
def test_build_sbatch_args(tokens, text, level, keep, kwargs, expected):
    if expected is None:
        with pytest.raises(UsageError):
            request(tokens, text or SCRIPT)
        return
    kwargs = {"array": None, "open_mode_append": False, **kwargs}
    args = build_sbatch_args(request(tokens, text), level, keep_user_resources=keep, **kwargs)
    assert args == expected


def test_build_sbatch_args_refuses_a_script_path_with_wrap():
    with pytest.raises(ValueError):
        build_sbatch_args(
            request(["--wrap=true"]),
            None,
            array=None,
            keep_user_resources=True,
            open_mode_append=False,
            script_path="/x.sh",
        )


@given(
    st.lists(st.text(), max_size=8),
    st.sampled_from([None, DAY, Level(cpus_per_task=2, extra_args=("--requeue",))]),
    st.booleans(),
    st.sampled_from(["job.sh", "/abs/job.sh", "-odd.sh"]),
)
def test_build_sbatch_args_ends_with_script_and_its_args(script_args, level, keep, path):
    req = make_request(["-p", "devel", "--mem=1G", "--", "job.sh", *script_args], SCRIPT)
    assert req.script_args == tuple(script_args)
    args = build_sbatch_args(
        req, level, array="0-3", keep_user_resources=keep, open_mode_append=True, script_path=path
    )
    assert args[len(args) - len(script_args) - 1 :] == [path, *script_args]
    if path.startswith("-"):
        assert args[len(args) - len(script_args) - 2] == "--"


@given(st.lists(st.text(), max_size=6))
def test_split_keeps_script_args_verbatim(script_args):
    assert split_command_line(["-p", "x", "job.sh", *script_args]) == (
        ("-p", "x"),
        "job.sh",
        tuple(script_args),
    )


# ---------------------------------------------------------------- mem conflicts in the script

CONFLICTING = "#!/bin/bash\n#SBATCH --mem-per-cpu=1G -c 2 # note\n#SBATCH --mem-per-gpu 1G\necho\n"


def test_resolve_directive_conflicts_removes_only_the_clashing_words():
    fixed = resolve_directive_conflicts(CONFLICTING, ["--mem=2G", "job.sh"])
    assert fixed == "#!/bin/bash\n#SBATCH  -c 2 # note\n#SBATCH  \necho\n"
    assert [o.name for o in read_directives(fixed)] == ["cpus-per-task"]


def test_resolve_directive_conflicts_leaves_compatible_scripts_alone():
    assert resolve_directive_conflicts(CONFLICTING, ["-p", "day", "job.sh"]) is CONFLICTING
    text = "#!/bin/bash\n#SBATCH --mem=1G\n"
    assert resolve_directive_conflicts(text, ["--mem=2G", "job.sh"]) is text
    assert (
        resolve_directive_conflicts(text, ["--mem-per-cpu=2G", "job.sh"])
        == "#!/bin/bash\n#SBATCH \n"
    )


def test_remove_directives_keeps_other_bytes():
    text = "#!/bin/sh\n#SBATCH -J 'a b' --mem-per-cpu=\"1G\"\t-p\n#SBATCH day\necho $X\n"
    assert (
        remove_directives(text, {"mem-per-cpu"})
        == "#!/bin/sh\n#SBATCH -J 'a b' \t-p\n#SBATCH day\necho $X\n"
    )
    assert (
        remove_directives(text, {"partition"})
        == "#!/bin/sh\n#SBATCH -J 'a b' --mem-per-cpu=\"1G\"\t\n#SBATCH \necho $X\n"
    )


# ---------------------------------------------------------------- the file system


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "job script 'job.sh' is empty"),
        (b" \n\t\n", "job script 'job.sh' is empty"),
        (b"#!/bin/bash\n\0echo\n", "job script 'job.sh' contains NUL bytes (binary file?)"),
        (b"#!/bin/bash\n\xff\xfe\n", "job script 'job.sh' is not UTF-8 text (byte 12)"),
        (
            b"echo hi\n",
            "job script 'job.sh' does not look like a batch script: the first line "
            "must start with #! (e.g. #!/bin/bash)",
        ),
        (
            b"\xef\xbb\xbf#!/bin/bash\n",
            "job script 'job.sh' does not look like a batch script: "
            "the first line must start with #! (e.g. #!/bin/bash)",
        ),
        (
            b"#!/bin/bash\r\necho\r\n",
            "job script 'job.sh' has DOS line breaks (\\r\\n); run dos2unix",
        ),
        (b"#!/bin/bash\necho hi\n", None),
        (b"#!/bin/bash", None),
    ],
)
def test_load_script(tmp_path, content, message):
    (tmp_path / "job.sh").write_bytes(content)
    if message is None:
        assert load_script("job.sh", str(tmp_path)) == content.decode()
        return
    with pytest.raises(ScriptError) as info:
        load_script("job.sh", str(tmp_path))
    assert str(info.value) == message


def test_load_script_missing_directory_unreadable(tmp_path):
    (tmp_path / "dir.sh").mkdir()
    with pytest.raises(ScriptError, match="^job script 'nope.sh' not found$"):
        load_script("nope.sh", str(tmp_path))
    with pytest.raises(ScriptError, match="^job script 'dir.sh' is a directory$"):
        load_script("dir.sh", str(tmp_path))
    with pytest.raises(ScriptError, match="^job script path is empty$"):
        load_script("", str(tmp_path))
    if os.geteuid() != 0:  # root reads anything
        locked = tmp_path / "locked.sh"
        locked.write_text(SCRIPT)
        locked.chmod(0)
        with pytest.raises(ScriptError, match="^cannot read job script 'locked.sh': "):
            load_script("locked.sh", str(tmp_path))


def test_resolve_script_search_order(tmp_path):
    for sub in ("run", "bin", "cwd"):
        (tmp_path / sub).mkdir()
    (tmp_path / "cwd" / "a.sh").write_text(SCRIPT)
    (tmp_path / "run" / "a.sh").write_text(SCRIPT)
    (tmp_path / "bin" / "b.sh").write_text(SCRIPT)
    cwd = str(tmp_path / "cwd")
    assert resolve_script("a.sh", cwd) == str(tmp_path / "cwd" / "a.sh")
    assert resolve_script("a.sh", cwd, chdir="../run") == str(tmp_path / "run" / "a.sh")
    assert resolve_script("./a.sh", cwd, chdir="../run") == str(tmp_path / "cwd" / "a.sh")
    assert resolve_script("b.sh", cwd, path_env=f"/nonexistent:{tmp_path / 'bin'}") == str(
        tmp_path / "bin" / "b.sh"
    )
    with pytest.raises(ScriptError):
        resolve_script("./b.sh", cwd, path_env=str(tmp_path / "bin"))
    assert resolve_script(str(tmp_path / "bin" / "b.sh"), "/") == str(tmp_path / "bin" / "b.sh")


def test_load_request(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "job.sh").write_text("#!/bin/bash\n#SBATCH -p week\necho\n")
    req = load_request(["-D", "run", "job.sh", "1"], str(tmp_path))
    assert req.script == "job.sh" and effective(req, "partition") == "week"
    assert load_request(["--wrap=echo"], str(tmp_path)).script_text is None


# ---------------------------------------------------------------- the real sbatch


def test_script_copy_for_a_real_sbatch(tmp_path):
    """What the module docstring claims about sbatch 22.05 (run on the dev cluster)."""
    if shutil.which("sbatch") is None:
        skip_unless_ci("no sbatch here")
    text = "#!/bin/bash\n#SBATCH --mem-per-cpu=100M --time-min=10 -J t\necho\n"
    (tmp_path / "job.sh").write_text(text)
    req = make_request(["-p", "devel", "job.sh"], text)
    args = build_sbatch_args(
        req,
        Level(mem_mb=200, time_s=120),
        array="0-1",
        keep_user_resources=True,
        open_mode_append=False,
        script_path=str(tmp_path / "copy.sh"),
    )

    def test_only(script: str) -> subprocess.CompletedProcess[str]:
        (tmp_path / "copy.sh").write_text(script)
        return subprocess.run(
            ["sbatch", "--test-only", *args],
            capture_output=True,
            text=True,
            timeout=30,
            cwd=tmp_path,
            check=False,
        )

    refused = test_only(text)
    if "Unable to contact slurm controller" in refused.stderr:
        skip_unless_ci("the Slurm cluster is not running")
    assert "mutually exclusive" in refused.stderr
    accepted = test_only(resolve_directive_conflicts(text, args))
    assert accepted.returncode == 0, accepted.stderr
