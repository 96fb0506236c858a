"""Parsers of sbatch/sacct/scontrol output, against output recorded on the live cluster.

Every ``tests/unit/data/NAME.txt`` has a sidecar ``NAME.cmd``: its first line is
the exact command that printed the file, the ``#`` lines say how the jobs were
made (``test_slurm_client.py`` checks the sacct commands match what
SlurmClient.query runs).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from slurm_escalate.core.classify import classify
from slurm_escalate.core.models import (
    ClusterLimits,
    FailureKind,
    PartitionInfo,
    Policy,
    SacctRow,
    SlurmState,
)
from slurm_escalate.errors import SlurmParseError
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


def test_placeholder_keeps_the_printed_job_id_and_gets_an_index() -> None:
    (record,) = group_task_records(rows(line(JobID="7_[4]", State="PENDING")))
    assert (record.index, record.job.array_index, record.job.job_id) == (4, 4, "7_[4]")


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
