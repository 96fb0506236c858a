"""A fake Slurm at the client boundary and a fast-forward clock, for tests and benchmarks.

The fake hands out job ids, remembers what each submission carried (indices,
level, attempt, environment) and, when queried, reports each task's outcome
from a table the caller supplies. It is a ``SlurmClient`` (mypy checks that at
the bottom of this module), so it can be passed wherever the real one goes.

This module sits beside the layered packages and imports from any of them;
nothing in the tool imports it.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from slurm_escalate.arrays.spec import expand
from slurm_escalate.core.models import (
    ClusterLimits,
    PartitionInfo,
    SacctRow,
    SlurmState,
    TaskRecord,
)
from slurm_escalate.engine.submitter import Clock
from slurm_escalate.errors import SlurmCommandError
from slurm_escalate.slurm.client import SlurmClient
from slurm_escalate.slurm.parse import Keep
from slurm_escalate.slurm.runner import CommandResult, CommandRunner, lines_of

__all__ = [
    "Detail",
    "FakeSlurm",
    "FastClock",
    "Job",
    "Outcome",
    "UnsimulatedRunner",
    "ok",
]

Outcome = Callable[[int | None, int, int], tuple[SlurmState, str]]  # -> (state, "code:signal")
# -> extra SacctRow fields of a finished attempt (start, end, elapsed_s, nodes, req_mem, ...)
Detail = Callable[[int | None, int, int], dict[str, Any]]


class UnsimulatedRunner:
    """The fake's raw command channel: every command fails, saying the fake does not run it.

    Only adopting reaches for ``client.runner`` (scontrol show job, extra sacct
    fields); a test of that path gives the fake a runner with canned output.
    """

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float = 60.0,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> CommandResult:
        return CommandResult(tuple(argv), 1, "", f"FakeSlurm does not simulate {argv[0]!r}")

    def run_lines(
        self,
        argv: Sequence[str],
        on_line: Callable[[str], None],
        *,
        timeout: float = 60.0,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> CommandResult:
        return lines_of(self, argv, on_line, timeout=timeout, env=env, cwd=cwd)


@dataclass
class Job:
    job_id: str
    indices: list[int] | None
    level: int
    attempt: int
    args: list[str]
    env: dict[str, str]
    polls_seen: int = 0
    offset: int = 0  # a mapped piece: array index + offset is the task's own index


@dataclass
class FakeSlurm:
    outcome: Outcome
    run_polls: int = 1  # polls a task shows RUNNING before its outcome
    calls: Counter[str] = field(default_factory=Counter)
    jobs: dict[str, Job] = field(default_factory=dict)
    refuse: Callable[[list[str]], str | None] = lambda args: None
    fail_queries: int = 0
    on_submit: Callable[[], None] | None = None
    # called after a job was really created: an error to raise anyway (sbatch's lies)
    fail_after: Callable[[str], SlurmCommandError | None] = lambda job_id: None
    tokens_unreachable: int = 0
    next_id: int = 100
    detail: Detail | None = None  # what sacct says about a finished attempt, for reports
    cluster_limits: ClusterLimits = field(default_factory=lambda: ClusterLimits(1001))
    cancelled: list[str] = field(default_factory=list)  # every job id given to cancel
    runner: CommandRunner = field(default_factory=UnsimulatedRunner)
    query_timeout: float = 120.0
    control_timeout: float = 30.0

    def submit(
        self, args: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None
    ) -> str:
        self.calls["sbatch"] += 1
        if self.on_submit:
            self.on_submit()
        error = self.refuse(list(args))
        if error:
            raise SlurmCommandError(["sbatch"], 1, error)
        job_id = str(self.next_id)
        self.next_id += 1
        assert env is not None
        self.jobs[job_id] = Job(
            job_id,
            _array_indices(args),
            int(env["SLURM_ESCALATE_LEVEL"]),
            int(env["SLURM_ESCALATE_ATTEMPT"]),
            list(args),
            dict(env),
            offset=_wrapper_offset(args),
        )
        lie = self.fail_after(job_id)
        if lie is not None:
            raise lie
        return job_id

    def command(self, name: str) -> list[str]:
        return [name]

    def query(self, job_ids: Sequence[str], keep: Keep | None = None) -> list[TaskRecord]:
        self.calls["sacct"] += 1
        if self.fail_queries:
            self.fail_queries -= 1
            raise SlurmCommandError(["sacct"], 1, "slurmdbd: Connection refused")
        records = []
        for job_id in job_ids:
            job = self.jobs[job_id]
            job.polls_seen += 1
            for index in job.indices if job.indices is not None else [None]:
                own = index if index is None else index + job.offset  # what the task sees
                if job.polls_seen <= self.run_polls:
                    state, code = SlurmState.RUNNING, "0:0"
                    if self.detail is not None:  # a run keeps its Start (else: a requeue)
                        start = self.detail(own, job.level, job.attempt).get("start")
                        if start is not None:
                            records.append(_record(job_id, index, state, code, start=start))
                            continue
                else:
                    state, code = self.outcome(own, job.level, job.attempt)
                    if self.detail is not None:
                        extra = self.detail(own, job.level, job.attempt)
                        records.append(_record(job_id, index, state, code, **extra))
                        continue
                records.append(_record(job_id, index, state, code))
        if keep is not None:  # what the real client drops before parsing (see SacctReader)
            kept, visible = [], set()
            for r in records:
                if r.index is None or keep(r.array_job_id, r.index):
                    kept.append(r)
                elif r.array_job_id not in visible:
                    visible.add(r.array_job_id)
                    kept.append(TaskRecord(r.array_job_id, r.index, r.job))  # its job row only
            records = kept
        return records

    def find_tokens(self, prefix: str, since: float) -> dict[str, str]:
        self.calls["find_tokens"] += 1
        if self.tokens_unreachable:
            self.tokens_unreachable -= 1
            raise SlurmCommandError(["squeue"], 1, "slurm_load_jobs error: Socket timed out")
        found = {}
        for job in self.jobs.values():
            for arg in job.args:
                if arg.startswith("--comment=" + prefix):
                    found[arg.split("=", 1)[1]] = job.job_id
        return found

    def cancel(self, job_ids: Sequence[str]) -> None:
        self.calls["scancel"] += 1
        self.cancelled.extend(job_ids)

    def limits(self) -> ClusterLimits:
        self.calls["scontrol show config"] += 1
        return self.cluster_limits

    def partitions(self, node_memory: bool = True) -> dict[str, PartitionInfo]:
        self.calls["scontrol show partition"] += 1
        self.calls["scontrol show node"] += node_memory
        parts = {
            "devel": PartitionInfo("devel", 120, 1000),
            "day": PartitionInfo("day", 300, 2000, True),
            "week": PartitionInfo("week", 900, 8000),
        }
        if not node_memory:
            return {k: replace(p, max_node_mem_mb=None) for k, p in parts.items()}
        return parts


def _wrapper_offset(args: Sequence[str]) -> int:
    """What the generated wrapper adds to SLURM_ARRAY_TASK_ID (0 without a wrapper)."""
    for arg in args:
        if arg.endswith("/array-wrapper.sh"):
            m = re.search(r"SLURM_ARRAY_TASK_ID \+ (\d+)", Path(arg).read_text())
            assert m, arg
            return int(m.group(1))
    return 0


def _array_indices(args: Sequence[str]) -> list[int] | None:
    for i, arg in enumerate(args):
        if arg.startswith("--array="):
            return expand(arg.split("=", 1)[1])
        if arg in ("--array", "-a"):
            return expand(args[i + 1])
    return None


def _record(
    job_id: str, index: int | None, state: SlurmState, code: str, **extra: Any
) -> TaskRecord:
    """One task's job row; ``extra`` sets more SacctRow fields (elapsed_s, nodes, max_rss_kb...)."""
    exit_code, signal = (int(x) for x in code.split(":"))
    name = job_id if index is None else f"{job_id}_{index}"
    fields: dict[str, Any] = {"start": "2026-11-22T10:00:00", "timelimit_s": 60, **extra}
    row = SacctRow(
        job_id=name,
        array_job_id=job_id,
        array_index=index,
        step=None,
        state=state,
        state_text=state.value,
        exit_code=exit_code,
        exit_signal=signal,
        **fields,
    )
    return TaskRecord(array_job_id=job_id, index=index, job=row)


class FastClock(Clock):
    """Time moves only when the monitor waits, and by exactly as long as it asked."""

    def __init__(self) -> None:
        self.t = 1_790_000_000.0
        self.waits: list[float] = []

    def now(self) -> float:
        return self.t

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        self.waits.append(seconds)
        self.t += seconds
        return stop.is_set()


def ok(index: int | None, level: int, attempt: int) -> tuple[SlurmState, str]:
    return SlurmState.COMPLETED, "0:0"


def _conforms(fake: FakeSlurm) -> SlurmClient:
    """Never called: mypy proves here that FakeSlurm is a SlurmClient (no ``type: ignore``)."""
    return fake
