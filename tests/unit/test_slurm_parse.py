"""Parsers of sbatch/sacct/scontrol output, against output recorded on the live cluster.

Every ``tests/unit/data/NAME.txt`` has a sidecar ``NAME.cmd``: its first line is
the exact command that printed the file, the ``#`` lines say how the jobs were
made (``test_slurm_client.py`` checks the sacct commands match what
SlurmCommands.query runs).

The golden tables at the end (and ``data/golden_sacct.json``, every field of every
recorded row) hold what the implementation before the speed rewrite made of
tricky inputs, written out literally; change an entry only with a deliberate
change of behaviour. Hypothesis properties check that rows survive being
printed and parsed back, and what grouping promises.
"""

from __future__ import annotations

import gc
import json
import pickle
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slurm_escalate.arrays.spec import MAX_INDEX, compress, expand
from slurm_escalate.core.classify import classify
from slurm_escalate.core.models import (
    ClusterLimits,
    FailureKind,
    PartitionInfo,
    Policy,
    SacctRow,
    SlurmState,
    TaskRecord,
)
from slurm_escalate.core.units import format_time
from slurm_escalate.errors import SlurmParseError
from slurm_escalate.slurm import fastbuild, parse
from slurm_escalate.slurm.hostlist import expand_hostlist
from slurm_escalate.slurm.parse import (
    SACCT_FIELDS,
    group_task_records,
    parse_cluster_limits,
    parse_partitions,
    parse_sacct,
    parse_sbatch_parsable,
    parse_scontrol_oneliner,
)

DATA = Path(__file__).parent / "data"
S = SlurmState
K = FailureKind


def data(name: str) -> str:
    return (DATA / name).read_text()


def line(**fields: str) -> str:
    """One sacct line in SACCT_FIELDS order; unspecified fields are empty."""
    values = {"JobID": "100", "State": "COMPLETED", "ExitCode": "0:0", **fields}
    return "|".join(values.get(f, "") for f in SACCT_FIELDS)


def one(**fields: str) -> SacctRow:
    (row,) = parse_sacct(line(**fields))
    return row


# --- recorded sacct output -> task records -> classification ----------------------------

# fixture, then per task: (array job id, index, job state, step states, classification)
RECORDED = [
    (
        "sacct_oom_array.txt",  # task 1 OOMs, task 2 exits 3
        [
            ("7", 0, S.COMPLETED, [S.COMPLETED], K.COMPLETED),
            ("7", 1, S.OUT_OF_MEMORY, [S.OUT_OF_MEMORY], K.OUT_OF_MEMORY),
            ("7", 2, S.FAILED, [S.FAILED], K.FAILED),
            ("7", 3, S.COMPLETED, [S.COMPLETED], K.COMPLETED),
        ],
    ),
    ("sacct_timeout.txt", [("6", None, S.TIMEOUT, [S.CANCELLED], K.TIMEOUT)]),
    (
        "sacct_cancelled.txt",
        [
            ("10", None, S.CANCELLED, [S.CANCELLED], K.CANCELLED),
            ("11", 0, S.CANCELLED, [S.CANCELLED], K.CANCELLED),
            ("11", 1, S.CANCELLED, [S.CANCELLED], K.CANCELLED),
            ("11", 2, S.CANCELLED, [S.CANCELLED], K.CANCELLED),
        ],
    ),
    (
        "sacct_pending_array.txt",  # 8_[1-5%2] and 9_[0,3-7], both held
        [("8", i, S.PENDING, [], K.ACTIVE) for i in (1, 2, 3, 4, 5)]
        + [("9", i, S.PENDING, [], K.ACTIVE) for i in (0, 3, 4, 5, 6, 7)],
    ),
    (
        "sacct_partial_cancel_pending_array.txt",  # 8_3 cancelled while pending: no row at all
        [("8", i, S.PENDING, [], K.ACTIVE) for i in (1, 2, 4, 5)]
        + [("9", i, S.CANCELLED, [], K.CANCELLED) for i in (0, 3, 4, 5, 6, 7)],
    ),
    (
        "sacct_throttled_array_running.txt",
        [
            ("18", 0, S.COMPLETED, [S.COMPLETED], K.COMPLETED),
            ("18", 1, S.RUNNING, [S.RUNNING], K.ACTIVE),
        ]
        + [("18", i, S.PENDING, [], K.ACTIVE) for i in (2, 3, 4)],
    ),
    (
        "sacct_throttled_array_overlap.txt",  # 18_3 RUNNING and also inside 18_[3-4%1]
        [("18", i, S.COMPLETED, [S.COMPLETED], K.COMPLETED) for i in (0, 1, 2)]
        + [
            ("18", 3, S.RUNNING, [S.RUNNING], K.ACTIVE),
            ("18", 4, S.PENDING, [], K.ACTIVE),
        ],
    ),
    (
        "sacct_throttled_array_done.txt",
        [("18", i, S.COMPLETED, [S.COMPLETED], K.COMPLETED) for i in range(5)],
    ),
    (
        "sacct_srun_steps.txt",  # job COMPLETED, srun step .1 OOM
        [("60", None, S.COMPLETED, [S.COMPLETED, S.COMPLETED, S.OUT_OF_MEMORY], K.OUT_OF_MEMORY)],
    ),
    ("sacct_hetjob.txt", [("20", None, S.COMPLETED, [S.COMPLETED, S.COMPLETED], K.COMPLETED)]),
]


@pytest.mark.parametrize("fixture, expected", RECORDED, ids=[r[0] for r in RECORDED])
def test_recorded_sacct_output(fixture: str, expected: list[tuple]) -> None:
    records = group_task_records(parse_sacct(data(fixture)))
    got = [
        (
            r.array_job_id,
            r.index,
            r.job.state,
            [s.state for s in r.steps],
            classify(r, Policy()).kind,
        )
        for r in records
    ]
    assert got == expected


def test_oom_array_rows_in_detail() -> None:
    rows = {r.job_id: r for r in parse_sacct(data("sacct_oom_array.txt"))}
    assert len(rows) == 8
    oom = rows["7_1"]
    assert (oom.array_job_id, oom.array_index, oom.step) == ("7", 1, None)
    assert (oom.exit_code, oom.exit_signal) == (0, 125)
    assert (oom.timelimit_s, oom.elapsed_s, oom.req_mem) == (60, 0, "100M")
    assert (oom.start, oom.end) == ("2026-11-22T02:43:29", "2026-11-22T02:43:29")
    assert (oom.nodes, oom.partition, oom.name) == ("d1", "devel", "oom_cap")
    batch = rows["7_1.batch"]
    assert (batch.step, batch.state, batch.exit_signal, batch.max_rss_kb) == (
        "batch",
        S.OUT_OF_MEMORY,
        125,
        0,
    )
    assert (batch.timelimit_s, batch.partition, batch.req_mem) == (None, None, None)
    assert (rows["7_2"].exit_code, rows["7_2"].exit_signal) == (3, 0)


def test_recorded_cancel_and_timeout_rows() -> None:
    job, batch = parse_sacct(data("sacct_cancelled.txt"))[:2]
    assert (job.state, job.state_text) == (S.CANCELLED, "CANCELLED by 0")
    assert (batch.exit_signal, batch.max_rss_kb) == (15, 388)
    timeout, _ = parse_sacct(data("sacct_timeout.txt"))
    assert (timeout.state, timeout.elapsed_s, timeout.timelimit_s) == (S.TIMEOUT, 88, 60)


def test_recorded_pending_rows_have_no_times_or_nodes() -> None:
    row, cancelled = parse_sacct(data("sacct_partial_cancel_pending_array.txt"))
    assert row.job_id == "8_[1-2,4-5%2]" and row.array_index is None
    assert (row.start, row.end, row.nodes) == (None, None, None)
    assert cancelled.start is None and cancelled.end == "2026-11-22T02:44:28"


def test_job_name_containing_a_pipe_survives() -> None:
    job = parse_sacct(data("sacct_srun_steps.txt"))[0]
    assert job.name == "pipe|name with space"
    assert job.partition == "devel"


# --- single lines, edge cases ---------------------------------------------------------

ROWS = [
    # JobID forms: (array_job_id, array_index, step)
    ({"JobID": "123"}, {"array_job_id": "123", "array_index": None, "step": None}),
    ({"JobID": "123_4"}, {"array_job_id": "123", "array_index": 4, "step": None}),
    ({"JobID": "123_4.batch"}, {"array_job_id": "123", "array_index": 4, "step": "batch"}),
    ({"JobID": "123_4.extern"}, {"array_index": 4, "step": "extern"}),
    ({"JobID": "123_4.0"}, {"array_index": 4, "step": "0"}),
    ({"JobID": "123.batch"}, {"array_job_id": "123", "array_index": None, "step": "batch"}),
    ({"JobID": "123_[1-5%2]"}, {"job_id": "123_[1-5%2]", "array_index": None, "step": None}),
    ({"JobID": "123+0"}, {"array_job_id": "123", "array_index": None, "step": None}),
    ({"JobID": "123+0.batch"}, {"array_job_id": "123", "step": "batch"}),
    ({"JobID": "123+2"}, {"array_job_id": "123", "step": "+2"}),
    ({"JobID": "123+2.batch"}, {"array_job_id": "123", "step": "+2.batch"}),
    # states
    ({"State": "CANCELLED by 0"}, {"state": S.CANCELLED, "state_text": "CANCELLED by 0"}),
    ({"State": "CANCELLED+"}, {"state": S.CANCELLED, "state_text": "CANCELLED+"}),
    ({"State": "RUNNING"}, {"state": S.RUNNING}),
    ({"State": "OUT_OF_MEMORY"}, {"state": S.OUT_OF_MEMORY}),
    ({"State": "NODE_FAIL"}, {"state": S.NODE_FAIL}),
    ({"State": "SOMETHING_NEW"}, {"state": S.UNKNOWN, "state_text": "SOMETHING_NEW"}),
    ({"State": ""}, {"state": S.UNKNOWN}),
    # exit codes
    ({"ExitCode": "0:125"}, {"exit_code": 0, "exit_signal": 125}),
    ({"ExitCode": "137:0"}, {"exit_code": 137, "exit_signal": 0}),
    ({"ExitCode": "0:9"}, {"exit_code": 0, "exit_signal": 9}),
    # sizes, durations, times, texts
    ({"MaxRSS": "1.5G", "Elapsed": "1-02:03:04"}, {"max_rss_kb": 1572864, "elapsed_s": 93784}),
    ({"MaxRSS": "", "Timelimit": "UNLIMITED"}, {"max_rss_kb": None, "timelimit_s": None}),
    ({"Timelimit": "Partition_Limit"}, {"timelimit_s": None}),
    ({"Start": "Unknown", "End": "Unknown"}, {"start": None, "end": None}),
    ({"Start": "None", "End": ""}, {"start": None, "end": None}),
    ({"NodeList": "None assigned", "ReqMem": "4G"}, {"nodes": None, "req_mem": "4G"}),
    ({"NodeList": "n[1-2]", "JobName": "a|b|c"}, {"nodes": "n[1-2]", "name": "a|b|c"}),
]


@pytest.mark.parametrize("fields, expected", ROWS)
def test_parse_sacct_line(fields: dict[str, str], expected: dict[str, object]) -> None:
    row = one(**fields)
    assert {k: getattr(row, k) for k in expected} == expected


def test_blank_lines_are_ignored() -> None:
    text = "\n" + line(JobID="1") + "\n   \n" + line(JobID="2") + "\n\n"
    assert [r.job_id for r in parse_sacct(text)] == ["1", "2"]
    assert parse_sacct("") == []


MALFORMED = [
    ("1|2|3", "sacct output line 2: expected 13 fields, got 3"),
    (line(JobID="abc"), "sacct output line 2: unreadable JobID 'abc'"),
    (line(JobID="12_x"), "sacct output line 2: unreadable JobID '12_x'"),
    (line(ExitCode="oops"), "sacct output line 2: unreadable ExitCode 'oops'"),
]


@pytest.mark.parametrize("bad, message", MALFORMED)
def test_malformed_line_raises_one_line_error(bad: str, message: str) -> None:
    with pytest.raises(SlurmParseError) as info:
        parse_sacct(line() + "\n" + bad + "\n")
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)
    assert repr(bad[:40])[1:-1] in str(info.value)  # names the line


# --- grouping ---------------------------------------------------------------------------


def rows(*lines: str) -> list[SacctRow]:
    return parse_sacct("\n".join(lines))


def test_steps_without_a_job_row_are_skipped() -> None:
    records = group_task_records(rows(line(JobID="5_1.batch"), line(JobID="5_2")))
    assert [(r.index, r.steps) for r in records] == [(2, ())]


def test_non_array_job_has_index_none_and_records_sort_numerically() -> None:
    records = group_task_records(
        rows(line(JobID="10_1"), line(JobID="9"), line(JobID="9.batch"), line(JobID="10_0"))
    )
    assert [(r.array_job_id, r.index, len(r.steps)) for r in records] == [
        ("9", None, 1),
        ("10", 0, 0),
        ("10", 1, 0),
    ]


def test_real_task_row_beats_pending_placeholder_in_any_order() -> None:
    pending = line(JobID="7_[2-3%1]", State="PENDING")
    running = line(JobID="7_2", State="RUNNING")
    for order in ((pending, running), (running, pending)):
        records = group_task_records(rows(*order))
        assert [(r.index, r.job.state) for r in records] == [(2, S.RUNNING), (3, S.PENDING)]


def test_placeholders_share_the_printed_bracket_row_and_get_their_index() -> None:
    records = group_task_records(rows(line(JobID="7_[4-6]", State="PENDING")))
    assert [r.index for r in records] == [4, 5, 6]
    assert {id(r.job) for r in records} == {id(records[0].job)}  # one row for all
    assert (records[0].job.array_index, records[0].job.job_id) == (None, "7_[4-6]")


def test_bad_bracket_content_is_a_parse_error() -> None:
    with pytest.raises(SlurmParseError, match=r"sacct array record '7_\[5-3\]'"):
        group_task_records(rows(line(JobID="7_[5-3]", State="PENDING")))


# --- sbatch --parsable ------------------------------------------------------------------

SBATCH_OK = [("60\n", "60"), ("63;escalate\n", "63"), ("  7  ", "7")]  # 63;escalate: sbatch -M
SBATCH_BAD = ["", "\n", "Submitted batch job 60", "60 61", "60\n61", "abc", "60;", "-1"]


@pytest.mark.parametrize("text, job_id", SBATCH_OK)
def test_parse_sbatch_parsable(text: str, job_id: str) -> None:
    assert parse_sbatch_parsable(text) == job_id


@pytest.mark.parametrize("text", SBATCH_BAD)
def test_parse_sbatch_parsable_rejects(text: str) -> None:
    with pytest.raises(SlurmParseError, match="not a job id; the job may have been submitted"):
        parse_sbatch_parsable(text)


# --- scontrol ---------------------------------------------------------------------------


def test_scontrol_oneliner_recorded_nodes() -> None:
    nodes = parse_scontrol_oneliner(data("scontrol_node.txt"))
    assert [n["NodeName"] for n in nodes] == ["d1", "d2", "n1", "n2", "w1", "w2"]
    d1 = nodes[0]
    assert d1["OS"] == "Linux 6.18.44-fc-v669 #1 SMP PREEMPT_DYNAMIC @0"  # spaces kept
    assert d1["CfgTRES"] == "cpu=4,mem=1000M,billing=4"  # '=' inside a value
    assert (d1["RealMemory"], d1["Partitions"], d1["AllocTRES"]) == ("1000", "devel", "")


def test_scontrol_oneliner_recorded_partitions() -> None:
    parts = parse_scontrol_oneliner(data("scontrol_partition.txt"))
    assert [(p["PartitionName"], p["Nodes"], p["Default"]) for p in parts] == [
        ("devel", "d[1-2]", "NO"),
        ("day", "n[1-2]", "YES"),
        ("week", "w[1-2]", "NO"),
    ]
    assert parts[0]["TRES"] == "cpu=8,mem=2000M,node=2,billing=8"


@pytest.mark.parametrize("bad", ["No partitions in the system", "junk Key=value"])
def test_scontrol_oneliner_rejects(bad: str) -> None:
    with pytest.raises(SlurmParseError, match="scontrol output line 1: not key=value"):
        parse_scontrol_oneliner(bad)


def test_parse_partitions_recorded() -> None:
    parts = parse_partitions(data("scontrol_partition.txt"), data("scontrol_node.txt"))
    assert parts == {
        "devel": PartitionInfo("devel", 120, 1000, False),
        "day": PartitionInfo("day", 300, 2000, True),
        "week": PartitionInfo("week", 900, 8000, False),
    }


PARTITION_CASES = [
    # partition line, node lines, expected (max_time_s, max_node_mem_mb, is_default)
    (
        "PartitionName=p MaxTime=UNLIMITED Nodes=a[01-02]",
        ["a01 400", "a02 600"],
        (None, 600, False),
    ),
    ("PartitionName=p MaxTime=1-00:00:00 Nodes=ALL Default=YES", ["x 1", "y 2"], (86400, 2, True)),
    ("PartitionName=p MaxTime=10:00 Nodes=(null)", ["x 10"], (600, None, False)),
    ("PartitionName=p MaxTime=5 Nodes=gone[1-3]", ["x 10"], (300, None, False)),
]


@pytest.mark.parametrize("part, nodes, expected", PARTITION_CASES)
def test_parse_partitions_from_hostlists(part: str, nodes: list[str], expected: tuple) -> None:
    # these node records have no Partitions= field, so membership comes from Nodes=
    node_text = "\n".join(
        f"NodeName={n.split()[0]} RealMemory={n.split()[1]} State=IDLE" for n in nodes
    )
    info = parse_partitions(part, node_text)["p"]
    assert (info.max_time_s, info.max_node_mem_mb, info.is_default) == expected


def test_parse_partitions_prefers_node_partitions_field() -> None:
    part = "PartitionName=big MaxTime=UNLIMITED Nodes=b[[1]]"  # a hostlist we cannot read
    nodes = "NodeName=b1 RealMemory=512000 Partitions=big,other"
    assert parse_partitions(part, nodes)["big"].max_node_mem_mb == 512000
    with pytest.raises(SlurmParseError, match=r"scontrol partition Nodes='b\[\[1\]\]': nested"):
        parse_partitions(part, "NodeName=b1 RealMemory=512000")


HOSTLISTS = [
    ("d[1-2]", ["d1", "d2"]),
    ("n[01-03,7]", ["n01", "n02", "n03", "n7"]),
    ("login,c[8-10]", ["login", "c8", "c9", "c10"]),
    ("r[1-2]n[1-2]", ["r1n1", "r1n2", "r2n1", "r2n2"]),
    ("gpu-a[1]-x", ["gpu-a1-x"]),
]


@pytest.mark.parametrize("text, names", HOSTLISTS)
def test_expand_hostlist(text: str, names: list[str]) -> None:
    assert expand_hostlist(text) == names


@pytest.mark.parametrize("text", ["a[1-", "a]1[", "a[3-1]", "a[x]", "a,,b", "a[[1]]"])
def test_expand_hostlist_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="hostlist"):
        expand_hostlist(text)


def test_parse_cluster_limits_recorded() -> None:
    limits = ClusterLimits(2001, None, max_job_count=100000)
    assert parse_cluster_limits(data("scontrol_config.txt")) == limits


def test_parse_cluster_limits_max_array_tasks() -> None:
    text = (
        "Configuration data as of now\nMaxArraySize            = 100001\n"
        "SchedulerParameters     = bf_interval=5,max_array_tasks=5000,default_queue_depth=100\n"
    )
    assert parse_cluster_limits(text) == ClusterLimits(100001, 5000)


def test_parse_cluster_limits_needs_max_array_size() -> None:
    with pytest.raises(SlurmParseError, match="no numeric MaxArraySize"):
        parse_cluster_limits("MaxJobCount = 10000\n")


# --- golden tables: sacct lines ----------------------------------------------------------


def outcome(text: str) -> list[SacctRow] | str:
    """The rows, or the reason of the parse error (after "sacct output line N: ")."""
    try:
        return parse_sacct(text)
    except SlurmParseError as exc:
        return str(exc).split(": ", 1)[1].rsplit(": ", 1)[0]


# JobID as printed -> (job_id, array_job_id, array_index, step), or the error
GOLDEN_JOB_IDS = [
    ("123", ("123", "123", None, None)),
    ("123_4", ("123_4", "123", 4, None)),
    ("123_4.batch", ("123_4.batch", "123", 4, "batch")),
    ("123_4.extern", ("123_4.extern", "123", 4, "extern")),
    ("123_4.0", ("123_4.0", "123", 4, "0")),
    ("123.batch", ("123.batch", "123", None, "batch")),
    ("123_[1-5%2]", ("123_[1-5%2]", "123", None, None)),
    ("123+0", ("123+0", "123", None, None)),
    ("123+0.batch", ("123+0.batch", "123", None, "batch")),
    ("123+2", ("123+2", "123", None, "+2")),
    ("123+2.batch", ("123+2.batch", "123", None, "+2.batch")),
    ("9_[0,3-7]", ("9_[0,3-7]", "9", None, None)),
    (" 12_3 ", ("12_3", "12", 3, None)),
    ("\u0663_4", ("\u0663_4", "\u0663", 4, None)),  # a unicode digit passes as a job id
    ("12.batch_x", ("12.batch_x", "12", None, "batch_x")),
    ("12_3.0+1", ("12_3.0+1", "12", 3, "0+1")),
    ("7_[5-3]", ("7_[5-3]", "7", None, None)),  # the bracket is read when grouping
    ("007_1", ("007_1", "007", 1, None)),
    ("12_3.a-b+c_d", ("12_3.a-b+c_d", "12", 3, "a-b+c_d")),
    ("12_", "unreadable JobID '12_'"),
    ("12.", "unreadable JobID '12.'"),
    ("12_3.a.b", "unreadable JobID '12_3.a.b'"),
    ("12_3.b\u00e4", "unreadable JobID '12_3.b\u00e4'"),
    ("12_\u00b2", "unreadable JobID '12_\u00b2'"),
    ("12_3_4", "unreadable JobID '12_3_4'"),
    ("12_3+1", "unreadable JobID '12_3+1'"),
    ("abc", "unreadable JobID 'abc'"),
    ("", "unreadable JobID ''"),
    ("12_3.", "unreadable JobID '12_3.'"),
    ("12_[]", "unreadable JobID '12_[]'"),
    ("12_[1", "unreadable JobID '12_[1'"),
    ("12+", "unreadable JobID '12+'"),
    ("+1", "unreadable JobID '+1'"),
    ("12_3.batch.0", "unreadable JobID '12_3.batch.0'"),
]


@pytest.mark.parametrize(
    "job_id, expected", GOLDEN_JOB_IDS, ids=[repr(g[0]) for g in GOLDEN_JOB_IDS]
)
def test_job_id_golden(job_id: str, expected: tuple | str) -> None:
    got = outcome(line(JobID=job_id))
    if isinstance(got, list):
        (row,) = got
        assert (row.job_id, row.array_job_id, row.array_index, row.step) == expected
    else:
        assert got == expected


# column, text as printed -> the field(s) it sets, or the error
GOLDEN_COLUMNS = [
    ("State", "COMPLETED", (S.COMPLETED, "COMPLETED")),
    ("State", "CANCELLED by 0", (S.CANCELLED, "CANCELLED by 0")),
    ("State", "RUNNING+", (S.RUNNING, "RUNNING+")),
    ("State", "CANCELLED+", (S.CANCELLED, "CANCELLED+")),
    ("State", "", (S.UNKNOWN, "")),
    ("State", " ", (S.UNKNOWN, "")),
    ("State", "out_of_memory", (S.OUT_OF_MEMORY, "out_of_memory")),
    ("State", "completing", (S.COMPLETING, "completing")),
    ("State", "NEW", (S.UNKNOWN, "NEW")),
    ("State", "PENDING", (S.PENDING, "PENDING")),
    ("State", "REQUEUED", (S.REQUEUED, "REQUEUED")),
    ("State", "PREEMPTED", (S.PREEMPTED, "PREEMPTED")),
    ("State", "BOOT_FAIL", (S.BOOT_FAIL, "BOOT_FAIL")),
    ("State", "DEADLINE", (S.DEADLINE, "DEADLINE")),
    ("State", "TIMEOUT", (S.TIMEOUT, "TIMEOUT")),
    ("ExitCode", "0:0", (0, 0)),
    ("ExitCode", "0:125", (0, 125)),
    ("ExitCode", "137:0", (137, 0)),
    ("ExitCode", "", (0, 0)),
    ("ExitCode", " 3:0 ", (3, 0)),
    ("ExitCode", "0:9", (0, 9)),
    ("ExitCode", "255:0", (255, 0)),
    ("ExitCode", "00:01", (0, 1)),
    ("ExitCode", "1:", "unreadable ExitCode '1:'"),
    ("ExitCode", "x", "unreadable ExitCode 'x'"),
    ("ExitCode", ":0", "unreadable ExitCode ':0'"),
    ("ExitCode", "1:2:3", "unreadable ExitCode '1:2:3'"),
    ("MaxRSS", "", None),
    ("MaxRSS", "0", 0),
    ("MaxRSS", "123456K", 123456),
    ("MaxRSS", "1.5G", 1572864),
    ("MaxRSS", "388", 0),  # a bare number is bytes
    ("MaxRSS", "2048", 2),
    ("MaxRSS", "1023", 0),
    ("MaxRSS", "12Q", None),
    ("MaxRSS", " 7M ", 7168),
    ("MaxRSS", "1.5M", 1536),
    ("MaxRSS", "2T", 2147483648),
    ("MaxRSS", "0K", 0),
    ("MaxRSS", "1e3K", None),
    ("MaxRSS", "12.7K", 13),
    ("MaxRSS", "k", None),
    ("Elapsed", "00:01:00", 60),
    ("Elapsed", "1-02:03:04", 93784),
    ("Elapsed", "", None),
    ("Elapsed", "INVALID", None),
    ("Elapsed", "61", 3660),  # a bare number is minutes, as for --time
    ("Elapsed", "59", 3540),
    ("Elapsed", "00:99:00", None),
    ("Elapsed", "10:30", 630),
    ("Elapsed", "2-12", 216000),
    ("Elapsed", "1:00:00", 3600),
    ("Elapsed", "0:0:0", 0),
    ("Elapsed", "3-00:00:00", 259200),
    ("Timelimit", "UNLIMITED", None),
    ("Timelimit", "Partition_Limit", None),
    ("Timelimit", "INFINITE", None),
    ("Timelimit", "NONE", None),
    ("Timelimit", "invalid", None),
    ("Timelimit", "", None),
    ("Timelimit", "00:10:00", 600),
    ("Timelimit", "2-00:00:00", 172800),
    ("Timelimit", "1-00:30", 88200),
    ("Start", "2026-11-22T10:00:00", "2026-11-22T10:00:00"),
    ("Start", " 2026-11-22T10:00:00 ", "2026-11-22T10:00:00"),
    ("Start", "Unknown", None),
    ("Start", "unknown", None),
    ("Start", "None", None),
    ("Start", "NONE", None),
    ("Start", "", None),
    ("End", "2026-11-22T10:01:00", "2026-11-22T10:01:00"),
    ("End", "Unknown", None),
    ("End", "None", None),
    ("End", "", None),
    ("NodeList", "n1", "n1"),
    ("NodeList", " n1 ", "n1"),
    ("NodeList", "n[1-2]", "n[1-2]"),
    ("NodeList", "None assigned", None),
    ("NodeList", "NONE ASSIGNED", None),
    ("NodeList", "(null)", None),
    ("NodeList", "(NULL)", None),
    ("NodeList", "", None),
    ("Partition", "day", "day"),
    ("Partition", " day ", "day"),
    ("Partition", "(null)", None),
    ("Partition", "", None),
    ("ReqMem", "1000M", "1000M"),
    ("ReqMem", " 100M ", "100M"),
    ("ReqMem", "0", "0"),
    ("ReqMem", "", None),
    ("JobName", "job", "job"),
    ("JobName", " x ", "x"),
    ("JobName", "a|b|c", "a|b|c"),  # the last column takes the rest of the line
    ("JobName", "x|", "x|"),
    ("JobName", "(null)", None),
    ("JobName", "None assigned", None),
    ("JobName", "", None),
]
ATTRIBUTES = {
    "State": ("state", "state_text"),
    "ExitCode": ("exit_code", "exit_signal"),
    "MaxRSS": ("max_rss_kb",),
    "Elapsed": ("elapsed_s",),
    "Timelimit": ("timelimit_s",),
    "Start": ("start",),
    "End": ("end",),
    "NodeList": ("nodes",),
    "Partition": ("partition",),
    "ReqMem": ("req_mem",),
    "JobName": ("name",),
}


@pytest.mark.parametrize(
    "column, text, expected", GOLDEN_COLUMNS, ids=[f"{g[0]}={g[1]!r}" for g in GOLDEN_COLUMNS]
)
def test_column_golden(column: str, text: str, expected: object) -> None:
    got = outcome(line(**{column: text}))
    if isinstance(got, str):
        assert got == expected
        return
    (row,) = got
    values = tuple(getattr(row, a) for a in ATTRIBUTES[column])
    assert (values if len(values) > 1 else values[0]) == expected


# --- golden tables: grouping -------------------------------------------------------------


def task_line(job_id: str, state: str = "COMPLETED") -> str:
    return line(JobID=job_id, State=state)


# rows (JobID, State) -> records (array job, index, job row's JobID and State, steps), or error
GOLDEN_GROUPS = [
    (
        [("5_1",), ("5_1.batch",), ("5_1.extern",), ("5_2",), ("5_2.0",)],
        [
            ("5", 1, "5_1", "COMPLETED", ("5_1.batch COMPLETED", "5_1.extern COMPLETED")),
            ("5", 2, "5_2", "COMPLETED", ("5_2.0 COMPLETED",)),
        ],
    ),
    (
        [("5_[1-3%1]", "PENDING"), ("5_2", "RUNNING")],
        [
            ("5", 1, "5_[1-3%1]", "PENDING", ()),
            ("5", 2, "5_2", "RUNNING", ()),
            ("5", 3, "5_[1-3%1]", "PENDING", ()),
        ],
    ),
    (
        [("5_2", "RUNNING"), ("5_[1-3%1]", "PENDING")],
        [
            ("5", 1, "5_[1-3%1]", "PENDING", ()),
            ("5", 2, "5_2", "RUNNING", ()),
            ("5", 3, "5_[1-3%1]", "PENDING", ()),
        ],
    ),
    (  # overlapping placeholders: the later one wins
        [("5_[2,4]", "PENDING"), ("5_[1-3%1]", "REQUEUED")],
        [
            ("5", 1, "5_[1-3%1]", "REQUEUED", ()),
            ("5", 2, "5_[1-3%1]", "REQUEUED", ()),
            ("5", 3, "5_[1-3%1]", "REQUEUED", ()),
            ("5", 4, "5_[2,4]", "PENDING", ()),
        ],
    ),
    (  # a heterogeneous job: other components are steps of component 0
        [("20+0",), ("20+0.batch",), ("20+1",), ("20+1.batch",)],
        [
            (
                "20",
                None,
                "20+0",
                "COMPLETED",
                ("20+0.batch COMPLETED", "20+1 COMPLETED", "20+1.batch COMPLETED"),
            )
        ],
    ),
    (  # "007" and "7" are different keys that sort alike: input order decides
        [("7_1",), ("007_1",), ("7_1.batch",)],
        [
            ("7", 1, "7_1", "COMPLETED", ("7_1.batch COMPLETED",)),
            ("007", 1, "007_1", "COMPLETED", ()),
        ],
    ),
    ([("10_0.batch",), ("9.batch",), ("5",)], [("5", None, "5", "COMPLETED", ())]),
    (  # repeated rows: the last job row wins, every step row is kept
        [("5_1", "RUNNING"), ("5_1", "COMPLETED"), ("5_1.batch", "RUNNING")]
        + [("5_1.batch", "COMPLETED")],
        [("5", 1, "5_1", "COMPLETED", ("5_1.batch RUNNING", "5_1.batch COMPLETED"))],
    ),
    (
        [("10_1",), ("9",), ("9.batch",), ("10_[0-1]", "PENDING"), ("10_0",), ("10_0.batch",)],
        [
            ("9", None, "9", "COMPLETED", ("9.batch COMPLETED",)),
            ("10", 0, "10_0", "COMPLETED", ("10_0.batch COMPLETED",)),
            ("10", 1, "10_1", "COMPLETED", ()),
        ],
    ),
    (
        [("100_3.batch",), ("100_3",), ("99_[3]", "PENDING"), ("100",)],
        [
            ("99", 3, "99_[3]", "PENDING", ()),
            ("100", None, "100", "COMPLETED", ()),
            ("100", 3, "100_3", "COMPLETED", ("100_3.batch COMPLETED",)),
        ],
    ),
    (
        [("10_[0-1]", "PENDING"), ("5_[2,4]", "PENDING"), ("7_[5-3]", "PENDING")],
        "sacct array record '7_[5-3]': invalid --array '5-3': range end 3 is below start 5",
    ),
]


@pytest.mark.parametrize("given_rows, expected", GOLDEN_GROUPS)
def test_grouping_golden(given_rows: list[tuple[str, ...]], expected: list[tuple] | str) -> None:
    parsed = parse_sacct("\n".join(task_line(*r) for r in given_rows))
    try:
        records = group_task_records(parsed)
    except SlurmParseError as exc:
        assert str(exc) == expected
        return
    got = [
        (
            r.array_job_id,
            r.index,
            r.job.job_id,
            r.job.state_text,
            tuple(f"{s.job_id} {s.state_text}" for s in r.steps),
        )
        for r in records
    ]
    assert got == expected


# --- golden: every field of every recorded row ---------------------------------------------

GOLDEN_SACCT = json.loads((DATA / "golden_sacct.json").read_text())


def test_every_recorded_sacct_file_has_a_golden_entry() -> None:
    names = {p.name for p in DATA.glob("sacct_*.txt")}
    assert names == set(GOLDEN_SACCT) - {"fields"}
    assert GOLDEN_SACCT["fields"] == list(SacctRow.__struct_fields__)


@pytest.mark.parametrize("name", sorted(set(GOLDEN_SACCT) - {"fields"}))
def test_recorded_sacct_golden(name: str) -> None:
    rows = parse_sacct(data(name))
    golden = GOLDEN_SACCT[name]
    as_lists = [
        [v.value if isinstance(v, SlurmState) else v for v in msgspec.structs.astuple(r)]
        for r in rows
    ]
    assert as_lists == golden["rows"]
    records = [
        [r.array_job_id, r.index, r.job.job_id, [s.job_id for s in r.steps]]
        for r in group_task_records(rows)
    ]
    assert records == golden["records"]


# --- properties: a row printed as sacct prints it parses back to itself --------------------

NO_TEXT = {"NONE ASSIGNED", "(NULL)"}
BASE = datetime(2020, 1, 1)
step_names = st.sampled_from(["batch", "extern", "0", "17", "interactive", "a-b+c_d", "0+1", "x_"])
texts = st.text(  # no "|" and no line breaks of any kind: sacct prints one row per line
    st.sampled_from("abcXYZ019 _-.,:;()[]+*%#@!?'\"\\/~^$&=<>{}\u00e4\u00df\u00a0\u0663"),
    max_size=10,
)
plain_texts = texts.filter(lambda t: t == t.strip() and t.upper() not in NO_TEXT)


times = st.none() | st.integers(0, 10**9).map(
    lambda s: (BASE + timedelta(seconds=s)).isoformat(timespec="seconds")
)
durations = st.none() | st.integers(0, 400 * 86400)
state_suffixes = st.sampled_from(["", "+", " by 0"]) | st.integers(1, 10**6).map(
    lambda n: f" by {n}"
)
some_texts = st.none() | plain_texts.filter(bool)
names = st.none() | plain_texts.map(lambda t: t + "|x").filter(lambda t: t.strip() == t)
req_mems = st.none() | st.integers(1, 10**6).map(lambda n: f"{n}M")
indices = st.none() | st.integers(0, MAX_INDEX)
steps = st.none() | step_names
codes = st.integers(0, 255)


@st.composite
def sacct_rows(draw: st.DrawFn) -> SacctRow:
    job = str(draw(st.integers(1, 10**9)))
    index, step = draw(indices), draw(steps)
    job_id = job if index is None else f"{job}_{index}"
    if step is not None:
        job_id += f".{step}"
    state = draw(st.sampled_from(SlurmState))
    return SacctRow(
        job_id=job_id,
        array_job_id=job,
        array_index=index,
        step=step,
        state=state,
        state_text=state.value + draw(state_suffixes),
        exit_code=draw(codes),
        exit_signal=draw(codes),
        max_rss_kb=draw(st.none() | st.integers(0, 2**40)),
        elapsed_s=draw(durations),
        timelimit_s=draw(durations),
        start=draw(times),
        end=draw(times),
        nodes=draw(some_texts),
        partition=draw(some_texts),
        req_mem=draw(req_mems),
        name=draw(names),
    )


def printed(row: SacctRow) -> str:
    """The row as ``sacct --parsable2`` prints it (SACCT_FIELDS order)."""

    def duration(seconds: int | None, none: str) -> str:
        return none if seconds is None else format_time(seconds)

    columns = {
        "JobID": row.job_id,
        "JobIDRaw": "1",
        "State": row.state_text,
        "ExitCode": f"{row.exit_code}:{row.exit_signal}",
        "MaxRSS": "" if row.max_rss_kb is None else f"{row.max_rss_kb}K",
        "Elapsed": duration(row.elapsed_s, ""),
        "Timelimit": duration(row.timelimit_s, "UNLIMITED"),
        "Start": row.start or "Unknown",
        "End": row.end or "Unknown",
        "NodeList": row.nodes or "None assigned",
        "Partition": row.partition or "",
        "ReqMem": row.req_mem or "",
        "JobName": row.name or "",
    }
    assert list(columns) == list(SACCT_FIELDS)
    return "|".join(columns.values())


@settings(max_examples=150, deadline=None)
@given(st.lists(sacct_rows(), max_size=6), st.sampled_from(["\n", "\r\n", "\n\n"]))
def test_printed_rows_parse_back(rows: list[SacctRow], newline: str) -> None:
    text = newline.join(printed(r) for r in rows) + newline
    assert parse_sacct(text) == rows


# --- properties: grouping ------------------------------------------------------------------

arrays = st.sampled_from(["5", "7", "12"])
run_states = st.sampled_from(["PENDING", "RUNNING", "COMPLETED", "OUT_OF_MEMORY"])
placeholder_lines = st.builds(  # a pending array's "5_[1-3,7%4]" record
    lambda job, indices, throttle: task_line(f"{job}_[{compress(indices)}{throttle}]", "PENDING"),
    arrays,
    st.sets(st.integers(0, 8), min_size=1, max_size=5),
    st.sampled_from(["", "%1", "%4"]),
)
row_lines = st.builds(  # a job or a step, of a task or of a job that is not an array
    lambda job, index, step, state: task_line(
        job + ("" if index is None else f"_{index}") + ("" if step is None else f".{step}"),
        state,
    ),
    arrays,
    st.none() | st.integers(0, 8),
    st.none() | st.sampled_from(["batch", "extern", "0"]),
    run_states,
)
# job, step and pending-placeholder rows of a few arrays, in any order
sacct_outputs = st.lists(placeholder_lines | row_lines, max_size=16).map(
    lambda lines: parse_sacct("\n".join(lines))
)


def key(row: SacctRow) -> tuple[str, int | None]:
    return row.array_job_id, row.array_index


@settings(max_examples=200, deadline=None)
@given(sacct_outputs)
def test_grouping_invariants(rows: list[SacctRow]) -> None:
    records = group_task_records(rows)
    keys = [(r.array_job_id, r.index) for r in records]
    order = [(int(j), -1 if i is None else i) for j, i in keys]
    assert order == sorted(order) and len(set(keys)) == len(keys)  # sorted, one per task

    jobs = {key(r): r for r in rows if r.step is None and not r.job_id.endswith("]")}
    pending: dict[tuple[str, int | None], SacctRow] = {}
    for r in rows:
        if r.job_id.endswith("]"):
            for i in expand(r.job_id.split("_[")[1][:-1].partition("%")[0]):
                pending[r.array_job_id, i] = r
    assert set(keys) == set(jobs) | set(pending)

    for record in records:
        k = (record.array_job_id, record.index)
        if k in jobs:  # a real row beats a placeholder; the last real row wins
            assert record.job == jobs[k]
        else:  # a placeholder: the bracket row itself, shared by every task it covers
            assert record.job is pending[k]
        # every step row of the task, in the order sacct printed them
        assert record.steps == tuple(r for r in rows if r.step is not None and key(r) == k)


# --- rows are frozen msgspec Structs ------------------------------------------------------

FIELDS: tuple[Any, ...] = ("7_1.batch", "7", 1, "batch", S.OUT_OF_MEMORY, "OUT_OF_MEMORY", 0, 125)
MORE: tuple[Any, ...] = (388, 61, None, "2026-11-22T02:43:29", None, "d1", None, "100M", "batch")


def test_rows_are_frozen_hashable_values() -> None:
    row, same = SacctRow(*FIELDS, *MORE), SacctRow(*FIELDS, *MORE)
    assert row == same and hash(row) == hash(same) and repr(row) == repr(same)
    assert pickle.loads(pickle.dumps(row)) == same
    assert msgspec.structs.replace(row, step=None).step is None
    with pytest.raises(AttributeError):
        row.step = "extern"  # type: ignore[misc]
    assert TaskRecord("7", 1, row, (row,)) == TaskRecord("7", 1, same, (same,))


@pytest.mark.parametrize("enabled", [True, False])
def test_parsing_leaves_the_garbage_collector_as_it_was(enabled: bool) -> None:
    good = "|".join(["7_1", "1", "COMPLETED", "0:0", *[""] * 9])
    (gc.enable if enabled else gc.disable)()
    try:
        group_task_records(parse_sacct(good))
        with pytest.raises(SlurmParseError):
            parse_sacct(good + "\n" + "x|1")
        assert gc.isenabled() is enabled
    finally:
        gc.enable()


def test_memo_forgets_everything_when_full() -> None:
    memo = fastbuild.Memo(str.upper, size=2)
    assert (memo["a"], memo["b"], memo["a"]) == ("A", "B", "A")
    assert memo["c"] == "C" and list(memo) == ["c"]


def test_expand_is_the_one_group_task_records_uses() -> None:
    assert parse.expand is expand


# --- reading only the tasks still open ---------------------------------------------------


def test_the_reader_keeps_wanted_tasks_one_job_row_per_array_and_pending_records() -> None:
    def line(job_id: str, state: str = "COMPLETED") -> str:
        return "|".join([job_id, "1", state, "0:0", *[""] * 9])

    text = [
        line("7_1"),
        line("7_1.batch"),
        line("7_2", "RUNNING"),
        line("7_2.batch", "RUNNING"),
        line("7_3"),
        line("7_[4-6]", "PENDING"),
        line("8"),
        line("9_0"),
        line("9_0.batch"),
    ]
    reader = parse.SacctReader(lambda job, index: (job, index) == ("7", 2))
    for one in text:
        reader.feed(one)
    kept = [r.job_id for r in reader.rows]
    # 7_1 shows that array 7 is listed; 7_2 is wanted with its steps; the pending
    # record, the non-array job and array 9's first job row are kept too.
    assert kept == ["7_1", "7_2", "7_2.batch", "7_[4-6]", "8", "9_0"]
    assert [(r.array_job_id, r.index) for r in reader.records()] == [
        ("7", 1), ("7", 2), ("7", 4), ("7", 5), ("7", 6), ("8", None), ("9", 0),
    ]  # fmt: skip
    assert reader.lines == len(text)
    everything = parse.SacctReader()
    for one in text:
        everything.feed(one)
    assert len(everything.rows) == len(text)
