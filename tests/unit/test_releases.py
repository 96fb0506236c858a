"""The parsers, the classifier and the log reader over the recorded output of every Slurm release.

Each ``tests/unit/data/<release>/`` holds what one release really printed, made by
``tests/unit/data/record.sh`` (and ``record_exit_requeue.sh``) on a live cluster of
that release: ``NAME.txt`` is the output, ``NAME.cmd`` the command, ``COMMANDS.md``
the jobs. Every test here runs once per directory found, so a new release's
recordings are tested as soon as they are added; the expectations are the same
for every release except where a release is known to differ, and those
differences are asserted per release (``since(...)``):

* MaxRSS of an OOM-killed batch step: 0 on 22.05 (not sampled: unknown, never
  "0 MB"), about the memory limit from 24.11 on.
* slurmstepd's lines in the job log: ``slurmstepd-NODE: error:`` up to 24.11,
  ``[<time>] error:`` from 26.05 on; 22.05 writes ``oom-kill event(s)``, later
  releases ``oom_kill event``.
* an exit status above 128: sacct before 25.11 prints it less 128 (``exit 137``
  is ``9:0``, the same as ``exit 9``); 25.11 on prints ``137:0``.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pytest
from test_slurm_client import FakeRunner

from slurm_escalate.core.classify import action_for, classify, decide
from slurm_escalate.core.models import (
    Action,
    ClusterLimits,
    FailureKind,
    Level,
    Policy,
    SacctRow,
    SlurmState,
    TaskProgress,
    TaskRecord,
    TaskState,
)
from slurm_escalate.reporting.logs import slurm_notice, tail
from slurm_escalate.slurm.client import SlurmCommands
from slurm_escalate.slurm.parse import (
    group_task_records,
    parse_cluster_limits,
    parse_job_comments,
    parse_partitions,
    parse_sacct,
    parse_sbatch_parsable,
)

DATA = Path(__file__).parent / "data"
K = FailureKind
Version = tuple[int, int]


def _version(text: str) -> Version:
    major, minor = text.split(".")[:2]
    return int(major), int(minor)


RELEASES = sorted(
    (p.name for p in DATA.iterdir() if p.is_dir() and re.fullmatch(r"\d+\.\d+", p.name)),
    key=_version,
)
KNOWN = ("22.05", "24.11", "26.05")
POLICY = Policy()  # the built-in policy: OOM/TIMEOUT escalate, FAILED not retried, 137 escalates
LADDER = Policy(
    levels=(Level(mem_mb=100), Level(mem_mb=110), Level(mem_mb=200), Level(mem_mb=400)),
    escalation="skip",
)


@dataclass(frozen=True)
class Recording:
    """One release's directory: its files, and the job ids COMMANDS.md names by job name."""

    release: str

    @property
    def dir(self) -> Path:
        return DATA / self.release

    @property
    def version(self) -> Version:
        return _version(self.release)

    def since(self, release: str) -> bool:
        """Is this release ``release`` or newer?"""
        return self.version >= _version(release)

    def text(self, name: str) -> str:
        return (self.dir / f"{name}.txt").read_text()

    def command(self, name: str) -> list[str]:
        return shlex.split((self.dir / f"{name}.cmd").read_text().splitlines()[0])

    @cached_property
    def slurm_version(self) -> str:
        """``22.05.8`` from COMMANDS.md's title ``# Recordings: slurm-wlm 22.05.8``."""
        first = (self.dir / "COMMANDS.md").read_text().splitlines()[0]
        m = re.fullmatch(r"# Recordings: slurm-wlm (\d+\.\d+\.\d+)", first)
        assert m, first
        return m.group(1)

    @cached_property
    def jobs(self) -> dict[str, str]:
        """{job name: job id} of the jobs COMMANDS.md lists (``- 218: `sbatch ... -J x ...```)."""
        found = {}
        for m in re.finditer(r"^- (\d+): `([^`]*)`", (self.dir / "COMMANDS.md").read_text(), re.M):
            argv = shlex.split(m.group(2))
            found[argv[argv.index("-J") + 1]] = m.group(1)
        return found

    def records(self, name: str) -> list[TaskRecord]:
        return group_task_records(parse_sacct(self.text(name)))

    def raw_ids(self, name: str) -> dict[str, str]:
        """JobID -> JobIDRaw of the job rows (the parser does not keep JobIDRaw)."""
        rows = (line.split("|") for line in self.text(name).splitlines())
        return {r[0]: r[1] for r in rows if "." not in r[0]}


@pytest.fixture(params=RELEASES)
def rec(request: pytest.FixtureRequest) -> Recording:
    return Recording(request.param)


def test_every_release_directory_is_found() -> None:
    assert RELEASES, f"no release directories under {DATA}"
    assert set(KNOWN) <= set(RELEASES), RELEASES


def test_each_output_has_its_command_made_by_that_release(rec: Recording) -> None:
    names = {p.stem for p in rec.dir.glob("*.txt")}
    assert names == {p.stem for p in rec.dir.glob("*.cmd")}
    assert {"sacct_oom_array", "sacct_timeout", "job_log_oom", "scontrol_config"} <= names
    assert rec.slurm_version.startswith(f"{rec.release}.")
    for name in names:
        lines = (rec.dir / f"{name}.cmd").read_text().splitlines()
        assert lines[-1] == f"# slurm-wlm {rec.slurm_version}", name
    assert set(rec.jobs) == {"completed_cap", "oom_cap", "timeout_cap", "pend_cap", "pend2_cap"}


def test_sacct_recordings_were_made_with_the_clients_exact_command(rec: Recording) -> None:
    for cmd in sorted(rec.dir.glob("sacct_*.cmd")):
        recorded = rec.command(cmd.stem)
        if "--allocations" in recorded:  # find_tokens' call, checked below
            continue
        runner = FakeRunner()
        ids = recorded[-1].removeprefix("--jobs=").split(",")
        SlurmCommands(runner).query(ids)
        expected = list(runner.calls[0].argv)
        if "--duplicates" in recorded:  # recorded beside the client's call, for comparison
            expected.insert(3, "--duplicates")
        assert recorded == expected, cmd.name


# ---------------------------------------------------------------------------- sbatch


def test_sbatch_parsable(rec: Recording) -> None:
    assert parse_sbatch_parsable(rec.text("sbatch_parsable")) == rec.jobs["completed_cap"]
    assert rec.command("sbatch_parsable")[:2] == ["sbatch", "--parsable"]


# ---------------------------------------------------------------------------- sacct


def test_completed_job(rec: Recording) -> None:
    (r,) = rec.records("sacct_completed")
    assert (r.array_job_id, r.index) == (rec.jobs["completed_cap"], None)
    job = r.job
    assert (job.state, job.exit_code, job.exit_signal) == (SlurmState.COMPLETED, 0, 0)
    assert (job.timelimit_s, job.partition, job.req_mem, job.name) == (
        60,
        "devel",
        "50M",
        "completed_cap",
    )
    assert job.max_rss_kb is None  # the job row has no MaxRSS, only steps do
    (batch,) = r.steps
    assert (batch.step, batch.state) == ("batch", SlurmState.COMPLETED)
    c = classify(r, POLICY)
    assert (c.kind, c.exit_code, c.reason) == (K.COMPLETED, 0, "COMPLETED")
    if rec.since("24.11"):
        assert batch.max_rss_kb and 0 < batch.max_rss_kb < 50 * 1024
        assert c.max_rss_kb == batch.max_rss_kb
    else:  # 22.05 did not sample the short batch step: it prints 0
        assert batch.max_rss_kb == 0
        assert c.max_rss_kb is None


def test_oom_array(rec: Recording) -> None:
    array = rec.jobs["oom_cap"]
    records = rec.records("sacct_oom_array")
    assert [(r.array_job_id, r.index) for r in records] == [(array, i) for i in range(4)]
    got = [classify(r, POLICY) for r in records]
    assert [(c.kind, c.exit_code, c.reason) for c in got] == [
        (K.COMPLETED, 0, "COMPLETED"),
        (K.OUT_OF_MEMORY, 0, "OUT_OF_MEMORY on step batch (0:125)"),
        (K.FAILED, 3, "FAILED exit 3"),
        (K.COMPLETED, 0, "COMPLETED"),
    ]
    oom = records[1]
    assert (oom.job.state, oom.job.exit_code, oom.job.exit_signal) == (
        SlurmState.OUT_OF_MEMORY,
        0,
        125,
    )
    assert [action_for(c, POLICY) for c in got] == [None, Action.ESCALATE, Action.NO_RETRY, None]
    # The array's last task keeps the array's own id; the others get new ones.
    raw = rec.raw_ids("sacct_oom_array")
    assert raw[f"{array}_3"] == array
    assert len({raw[f"{array}_{i}"] for i in range(4)}) == 4
    assert all(int(raw[f"{array}_{i}"]) > int(array) for i in range(3))


def test_oom_killed_steps_maxrss_differs_by_release(rec: Recording) -> None:
    """22.05 prints MaxRSS 0 for the OOM-killed batch step: unknown, so no skip by MaxRSS and
    no "0 MB" anywhere; 24.11 on print about the limit (--mem=100M), which skip uses."""
    oom = rec.records("sacct_oom_array")[1]
    (batch,) = oom.steps
    c = classify(oom, LADDER)
    decision = decide(c, TaskProgress(level=0, attempts=1, resubmits_at_level=0), LADDER)
    assert decision is not None and decision.task_state is TaskState.RETRY
    if rec.since("24.11"):
        assert batch.max_rss_kb is not None
        assert 0.95 * 100 * 1024 <= batch.max_rss_kb <= 1.05 * 100 * 1024
        assert c.max_rss_kb == batch.max_rss_kb
        # MaxRSS + 20% is over 110M: the 110M rung is skipped
        assert decision.target_level == 2
        assert decision.skipped == f"MaxRSS {batch.max_rss_kb // 1024}M + 20% headroom"
    else:
        assert batch.max_rss_kb == 0
        assert c.max_rss_kb is None
        assert (decision.target_level, decision.skipped) == (1, None)


def test_timeout(rec: Recording) -> None:
    (r,) = rec.records("sacct_timeout")
    assert (r.array_job_id, r.index) == (rec.jobs["timeout_cap"], None)
    (batch,) = r.steps
    assert (r.job.state, r.job.exit_code, r.job.exit_signal) == (SlurmState.TIMEOUT, 0, 0)
    assert (batch.state, batch.exit_code, batch.exit_signal) == (SlurmState.CANCELLED, 0, 15)
    c = classify(r, POLICY)
    assert (c.kind, c.exit_code, c.reason) == (K.TIMEOUT, 0, "TIMEOUT")
    assert action_for(c, POLICY) is Action.ESCALATE
    # Slurm ends it at its next time-limit sweep (every 30 s) plus KillWait (5 s on these
    # clusters), so past the limit by 0-35 s: 65-89 s were recorded for a 60 s limit.
    assert r.job.timelimit_s == 60
    assert r.job.elapsed_s is not None and 60 < r.job.elapsed_s <= 60 + 30 + 5 + 5
    assert batch.elapsed_s is not None and r.job.elapsed_s <= batch.elapsed_s


def test_pending_arrays_expand_their_placeholders(rec: Recording) -> None:
    records = rec.records("sacct_pending_array")
    pend, pend2 = rec.jobs["pend_cap"], rec.jobs["pend2_cap"]
    assert [(r.array_job_id, r.index) for r in records] == [
        *((pend, i) for i in range(1, 6)),  # 1-5%2: the throttle is not an index
        *((pend2, i) for i in (0, 3, 4, 5, 6, 7)),
    ]
    assert {r.job.job_id for r in records} == {f"{pend}_[1-5%2]", f"{pend2}_[0,3-7]"}
    for r in records:
        assert (r.job.state, r.job.start, r.job.nodes, r.steps) == (
            SlurmState.PENDING,
            None,
            None,
            (),
        )
        c = classify(r, POLICY)
        assert (c.kind, c.reason) == (K.ACTIVE, "PENDING")


# ---------------------------------------------------------------------------- tokens


def _token(rec: Recording) -> str:
    """The recording's token prefix, as the chain's would be (``slurm-escalate:rec<time>:``)."""
    comment = next(a for a in rec.command("sbatch_parsable") if a.startswith("--comment="))
    return comment.removeprefix("--comment=").rsplit(":", 1)[0] + ":"


def test_token_lookup_in_sacct(rec: Recording) -> None:
    """Comments stored (AccountingStoreFlags=job_comment): every task row carries its array's."""
    prefix = _token(rec)
    assert rec.command("sacct_tokens")[:6] == [
        "sacct",
        "--noheader",
        "--parsable2",
        "--allocations",
        "--format=JobID,Comment",
        rec.command("sacct_tokens")[5],
    ]
    assert parse_job_comments(rec.text("sacct_tokens"), prefix) == {
        f"{prefix}1": rec.jobs["completed_cap"],
        f"{prefix}2": rec.jobs["oom_cap"],
        f"{prefix}3": rec.jobs["timeout_cap"],
    }


def test_token_lookup_in_squeue(rec: Recording) -> None:
    prefix = _token(rec)
    assert rec.command("squeue_tokens") == [
        "squeue",
        "--noheader",
        "--user=0",
        "--format=%F|%k",
        "--states=all",
    ]
    assert parse_job_comments(rec.text("squeue_tokens"), prefix) == {
        f"{prefix}1": rec.jobs["completed_cap"],
        f"{prefix}2": rec.jobs["oom_cap"],
        f"{prefix}3": rec.jobs["timeout_cap"],
        f"{prefix}4": rec.jobs["pend_cap"],  # the held array; pend2 has no comment: (null)
    }
    assert f"{rec.jobs['pend2_cap']}|(null)" in rec.text("squeue_tokens").splitlines()


# ---------------------------------------------------------------------------- scontrol


def test_cluster_limits(rec: Recording) -> None:
    config = rec.text("scontrol_config")
    assert parse_cluster_limits(config) == ClusterLimits(2001, None, 100000)
    assert re.search(rf"^SLURM_VERSION\s+= {re.escape(rec.slurm_version)}$", config, re.M)


def test_partitions(rec: Recording) -> None:
    parts = parse_partitions(rec.text("scontrol_partition"), rec.text("scontrol_node"))
    assert {n: (p.max_time_s, p.max_node_mem_mb, p.is_default) for n, p in parts.items()} == {
        "devel": (120, 1000, False),
        "day": (300, 2000, True),
        "week": (900, 8000, False),
    }


# ---------------------------------------------------------------------------- job logs


def test_job_log_notices(rec: Recording) -> None:
    oom_raw = int(rec.raw_ids("sacct_oom_array")[f"{rec.jobs['oom_cap']}_1"])
    timeout_id = int(rec.jobs["timeout_cap"])
    oom_lines = rec.text("job_log_oom").splitlines()
    (timeout_line,) = rec.text("job_log_timeout").splitlines()

    notices = [n for line in oom_lines if (n := slurm_notice(line)) is not None]
    assert [(n.kind, n.job_id) for n in notices] == [("OUT_OF_MEMORY", oom_raw)]
    assert "Killed" in oom_lines[0] and slurm_notice(oom_lines[0]) is None  # bash's own line
    t = slurm_notice(timeout_line)
    assert t is not None and (t.kind, t.job_id) == ("TIMEOUT", timeout_id)
    assert t.text.startswith(f"*** JOB {timeout_id} ON ") and t.text.endswith(
        " DUE TO TIME LIMIT ***"
    )

    oom_line = next(line for line in oom_lines if "oom" in line)
    if rec.since("26.05"):  # a timestamp instead of the daemon's name
        stamp = r"\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\] error: "
        assert re.match(stamp, oom_line) and re.match(stamp, timeout_line)
    else:
        assert re.match(r"slurmstepd-\w+: error: ", oom_line)
        assert re.match(r"slurmstepd-\w+: error: ", timeout_line)
    if rec.since("24.11"):
        assert " oom_kill event in StepId=" in oom_line
    else:
        assert " oom-kill event(s) in StepId=" in oom_line


def test_log_tail_keeps_the_attempts_notice_in_view(rec: Recording, tmp_path: Path) -> None:
    """The program prints on after Slurm's line (a SIGTERM handler, say): the tail still shows it,
    but only for the attempt that notice is about."""
    timeout_id = rec.jobs["timeout_cap"]
    notice = rec.text("job_log_timeout").rstrip("\n")
    log = tmp_path / "task.out"
    log.write_text(
        "".join(f"old {i}\n" for i in range(3))
        + notice
        + "\n"
        + "".join(f"after {i}\n" for i in range(8))
    )
    after = tuple(f"after {i}" for i in range(3, 8))
    assert tail(str(log), 5).lines == after
    assert tail(str(log), 5, job_id=timeout_id).lines == (
        notice,
        "[... 3 more line(s) ...]",
        *after,
    )
    # a later attempt (a larger job id) did not time out: the old notice is not its
    assert tail(str(log), 5, job_id=str(int(timeout_id) + 1)).lines == after
    # within the last lines it is shown once, in place
    assert tail(str(log), 9, job_id=timeout_id).lines == (notice, *(f"after {i}" for i in range(8)))


# ---------------------------------------------------------------------------- exit codes


def _exit_records(rec: Recording) -> dict[str, TaskRecord]:
    names = {r.job.name: r for r in rec.records("sacct_exit_codes")}
    assert set(names) == {"b_e137", "b_e9", "b_k9"}
    return names


def test_exit_status_above_128(rec: Recording) -> None:
    """``exit 137`` (a child killed by SIGKILL, as bash reports it): before 25.11 sacct prints
    ``9:0``, the same as ``exit 9``, so the built-in ``137: escalate`` rule cannot see it; from
    25.11 on ``137:0``. A signal (``kill -9`` of the script) is ``0:9`` everywhere: 128+9."""
    r = _exit_records(rec)
    kill = classify(r["b_k9"], POLICY)
    assert (kill.kind, kill.exit_code, kill.reason) == (K.FAILED, 137, "FAILED signal 9")
    assert action_for(kill, POLICY) is Action.ESCALATE
    nine = classify(r["b_e9"], POLICY)
    assert (nine.kind, nine.exit_code, nine.reason) == (K.FAILED, 9, "FAILED exit 9")
    assert action_for(nine, POLICY) is Action.NO_RETRY
    e137 = classify(r["b_e137"], POLICY)
    if rec.since("25.11"):
        assert (r["b_e137"].job.exit_code, r["b_e137"].job.exit_signal) == (137, 0)
        assert (e137.kind, e137.exit_code, e137.reason) == (K.FAILED, 137, "FAILED exit 137")
        assert action_for(e137, POLICY) is Action.ESCALATE
    else:
        assert (r["b_e137"].job.exit_code, r["b_e137"].job.exit_signal) == (9, 0)
        assert (e137.kind, e137.exit_code, e137.reason) == (K.FAILED, 9, "FAILED exit 9")
        assert action_for(e137, POLICY) is Action.NO_RETRY


# ---------------------------------------------------------------------------- requeue


def test_requeued_job_without_and_with_duplicates(rec: Recording) -> None:
    """``scontrol requeue`` of a running job: sacct without ``--duplicates`` (what the monitor
    runs) shows one record, the run that completed; with it, the REQUEUED run first."""
    (r,) = rec.records("sacct_requeued")
    assert (r.job.state, r.job.name) == (SlurmState.COMPLETED, "b_rq")
    assert [s.step for s in r.steps] == ["batch"]
    assert classify(r, POLICY).kind is K.COMPLETED

    rows = parse_sacct(rec.text("sacct_requeued_duplicates"))
    jobs = [row for row in rows if row.step is None]
    assert [j.state for j in jobs] == [SlurmState.REQUEUED, SlurmState.COMPLETED]
    (grouped,) = group_task_records(rows)
    assert grouped.job.state is SlurmState.COMPLETED  # the last record wins
    assert classify(grouped, POLICY).kind is K.COMPLETED


# ---------------------------------------------------------------------------- changelog rows


def _row(text: str) -> SacctRow:
    (row,) = parse_sacct(text)
    return row


@pytest.mark.parametrize(
    ("release", "job_line", "expected"),
    [
        # 24.11: NODE_FAIL sets the job's exit code to 1 (before: 0). It stays NODE_FAIL,
        # resubmitted, and an exit-code rule for 1 does not turn it into something else.
        ("22.05", "7|7|NODE_FAIL|0:0||00:00:31|00:01:00|{t}|{t}|d1|devel|50M|j", (K.NODE_FAIL, 0)),
        ("24.11", "7|7|NODE_FAIL|1:0||00:00:31|00:01:00|{t}|{t}|d1|devel|50M|j", (K.NODE_FAIL, 1)),
        # 25.11: no more "less 128"
        ("24.11", "7|7|FAILED|9:0||00:00:01|00:01:00|{t}|{t}|d1|devel|50M|j", (K.FAILED, 9)),
        ("25.11", "7|7|FAILED|137:0||00:00:01|00:01:00|{t}|{t}|d1|devel|50M|j", (K.FAILED, 137)),
        ("25.11", "7|7|FAILED|255:0||00:00:01|00:01:00|{t}|{t}|d1|devel|50M|j", (K.FAILED, 255)),
        (
            "25.11",
            "7|7|OUT_OF_MEMORY|0:125||00:00:01|00:01:00|{t}|{t}|d1|devel|50M|j",
            (K.OUT_OF_MEMORY, 0),
        ),
    ],
)
def test_changelog_rows(release: str, job_line: str, expected: tuple[FailureKind, int]) -> None:
    job = _row(job_line.format(t="2026-12-02T16:10:25"))
    c = classify(TaskRecord(job.array_job_id, None, job), POLICY)
    assert (c.kind, c.exit_code) == expected
    strict = Policy(exit_codes={1: Action.NO_RETRY, 137: Action.ESCALATE})
    want = {
        K.NODE_FAIL: Action.RESUBMIT,
        K.OUT_OF_MEMORY: Action.ESCALATE,
        K.FAILED: Action.ESCALATE if c.exit_code == 137 else Action.NO_RETRY,
    }[c.kind]
    assert action_for(c, strict) is want
    assert decide(c, TaskProgress(0, 1, 0), strict) is not None
