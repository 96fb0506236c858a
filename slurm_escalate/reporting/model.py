"""The typed result of analysing one chain: everything a report shows, nothing rendered.

Built by :func:`slurm_escalate.reporting.stats.build_report` from a Chain, the
resources of each ladder level and the tails of some task logs. Every renderer
(markdown, HTML, JSON, SQLite) reads only this, so they always agree.

Units: memory in MiB (``*_mb``; MaxRSS is also kept in KiB as sacct reports it),
durations in seconds, cost in core-seconds (elapsed seconds x cores per task).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from slurm_escalate.core.models import Level

#: outcome classes shown as their own columns; every other failure is "failed"
OOM = "OUT_OF_MEMORY"
TIMEOUT_KINDS = ("TIMEOUT", "DEADLINE")
COMPLETED = "COMPLETED"
NODE_FAIL = "NODE_FAIL"


@dataclass(frozen=True)
class Spread:
    """Minimum, median and maximum of a sample (the median may be a half)."""

    min: float
    median: float
    max: float
    count: int


@dataclass(frozen=True)
class AttemptRow:
    index: int | None  # None: the single task of a non-array job
    attempt: int  # 1 for the task's first attempt
    job_id: str  # the task's id, "<array job>_<index>" (or the job id of a non-array job)
    array_job_id: str  # the submission's job id
    round: int  # the submission's round (1: first submission, 2: first resubmission, ...)
    submission: int  # the submission's sequence number
    level: int
    outcome: str | None  # FailureKind value; None while not final
    exit_code: int | None
    reason: str
    start: str | None  # ISO local time as sacct printed it
    end: str | None
    elapsed_s: int | None
    node: str | None
    partition: str | None
    req_mem_mb: int | None  # what Slurm granted (sacct ReqMem), else the level's mem
    timelimit_s: int | None
    max_rss_kb: int | None  # None or 0: sacct did not sample it
    cpus: int
    core_s: int  # elapsed_s x cpus (0 while unknown)
    submitted_at: float | None  # epoch seconds of the submission
    skipped: str | None = None  # why the next attempt skipped ladder rungs (escalation: skip)
    requeues: int = 0  # times Slurm itself requeued this attempt (followed, not resubmitted)


@dataclass(frozen=True)
class TaskRow:
    index: int | None
    state: str  # TaskState value
    level: int
    exit_code: int | None
    reason: str
    attempts: tuple[AttemptRow, ...]


@dataclass(frozen=True)
class SubmissionRow:
    round: int
    seq: int
    job_id: str | None
    level: int
    array: str | None  # the indices it carried (None: non-array job)
    mem_mb: int | None
    time_s: int | None
    partition: str | None
    tasks: int
    done: int
    oom: int
    timeout: int
    failed: int  # any other final outcome (FAILED, CANCELLED, NODE_FAIL, PREEMPTED, ...)
    status: str  # FINISHED, RUNNING, or the submission status REFUSED/UNKNOWN/INTENT


@dataclass(frozen=True)
class LevelRow:
    level: int
    partition: str | None
    mem_mb: int | None
    time_s: int | None
    attempts: int
    outcomes: tuple[tuple[str, int], ...]  # (outcome, attempts), most frequent first
    runtime_s: Spread | None  # elapsed of this level's finished attempts
    rss_mb: Spread | None  # MaxRSS of this level's attempts that sacct sampled
    peak_pct: float | None  # largest MaxRSS as a percentage of the level's memory


@dataclass(frozen=True)
class SkipRow:
    """Tasks that jumped from one level past the next, for the same reason."""

    indices: tuple[int | None, ...]
    from_level: int
    to_level: int
    reason: str


@dataclass(frozen=True)
class CostRow:
    outcome: str
    attempts: int
    core_s: int


@dataclass(frozen=True)
class Cost:
    useful_core_s: int  # attempts that completed
    useful_attempts: int
    failed: tuple[CostRow, ...]  # per failure class, most expensive first
    failed_core_s: int

    @property
    def total_core_s(self) -> int:
        return self.useful_core_s + self.failed_core_s


@dataclass(frozen=True)
class NodeRow:
    node: str
    attempts: int
    completed: int
    failed: int  # final attempts that did not complete
    node_fail: int


@dataclass(frozen=True)
class Figure:
    """What one task needed of one resource (MiB or seconds).

    ``lower_bound``: it needed *more* than ``value`` (it ran out of memory or time
    there); else ``value`` was measured on an attempt that completed.
    """

    value: float
    lower_bound: bool = False

    def covered_by(self, have: float, headroom: float) -> bool:
        """``have`` is at least the figure plus ``headroom`` (a fraction); above it for a bound."""
        need = self.value * (1 + headroom)
        return have > need if self.lower_bound else have >= need


@dataclass(frozen=True)
class Need:
    """What one task needed, as far as its attempts tell (None: they tell nothing of it)."""

    mem_mb: Figure | None = None
    time_s: Figure | None = None


@dataclass(frozen=True)
class Percentile:
    """The 95th percentile of one resource over the tasks that tell something of it."""

    figure: Figure  # the task's figure at that rank
    headroom: float  # the fraction added on top
    tasks: int  # tasks with a figure of this resource
    lower_bounds: int  # how many of those figures are lower bounds

    @property
    def need(self) -> float:
        """What a level must have: the figure plus the headroom (more than it, for a bound)."""
        return self.figure.value * (1 + self.headroom)


class Verdict(str, Enum):
    NO_EVIDENCE = "no_evidence"  # no task completed, ran out of memory or timed out: level 0
    FITS = "fits"  # ``start_level`` is the lowest level that covers the percentiles
    NONE_FITS = "none_fits"  # no level does: start at the top, add ``new_level`` above it


@dataclass(frozen=True)
class Sizing:
    """The lowest level whose mem and time cover the 95th percentile of the tasks' needs."""

    verdict: Verdict
    start_level: int  # where to start: that level; 0 without evidence; the top when none fits
    tasks: int  # tasks with at least one figure
    mem: Percentile | None
    time: Percentile | None
    level: Level | None  # the resources of ``start_level`` (None: no level known)
    new_level: Level | None = None  # NONE_FITS: a level above the top that covers them

    @property
    def option(self) -> str:
        return f"--start-level {self.start_level}"


@dataclass(frozen=True)
class Paste:
    """The advice's last line, ready to paste: an option, or a ladder level to add."""

    lead: str  # "next time" / "add above level 2 of the ladder"
    text: str  # "--start-level 1" / "- {partition: week, mem: 3600M, time: 00:05:00}"

    @property
    def line(self) -> str:
        return f"{self.lead}: {self.text}"


@dataclass(frozen=True)
class Advice:
    lines: tuple[str, ...]  # the last is ``paste.line`` when there is a paste
    recommended_start_level: int | None  # None: not enough data, or no level fits
    p95_rss_mb: float | None  # the 95th percentile of MaxRSS, when it is a measurement
    p95_elapsed_s: int | None  # the 95th percentile of Elapsed, when it is a measurement
    sample: int  # tasks the advice rests on (a measurement or a lower bound)
    sizing: Sizing | None = None
    paste: Paste | None = None


@dataclass(frozen=True)
class LogTail:
    """The last lines of a task's log file; lines is None when it could not be read."""

    path: str | None  # None: the name cannot be known (e.g. %j in an array's --output)
    lines: tuple[str, ...] | None
    note: str = ""  # why there are no lines


@dataclass(frozen=True)
class Problem:
    """A task that ended without completing: its last failure was not retried."""

    index: int | None
    job_id: str | None
    state: str
    exit_code: int | None
    node: str | None
    elapsed_s: int | None
    reason: str
    log: LogTail | None


@dataclass(frozen=True)
class Summary:
    tasks: int
    completed: int
    failed: int
    exhausted: int
    cancelled: int
    unfinished: int
    resubmissions: int

    @property
    def text(self) -> str:
        line = (
            f"{self.completed} of {self.tasks} tasks completed; "
            f"{self.failed} failed (not retried); {self.exhausted} exhausted"
        )
        if self.cancelled:
            line += f"; {self.cancelled} cancelled"
        if self.unfinished:
            line += f"; {self.unfinished} not finished yet"
        return line


@dataclass(frozen=True)
class ReportData:
    chain_id: str
    state: str
    script: str | None
    script_args: tuple[str, ...]
    sbatch_args: tuple[str, ...]
    cwd: str
    config: str | None
    created_at: float
    finished_at: float | None
    start_level: int
    summary: Summary
    submissions: tuple[SubmissionRow, ...]
    levels: tuple[LevelRow, ...]
    advice: Advice
    cost: Cost
    nodes: tuple[NodeRow, ...]
    node_fail_nodes: tuple[str, ...]
    problems: tuple[Problem, ...]
    tasks: tuple[TaskRow, ...]
    escalation: str = "step"  # the ladder's escalation policy
    skips: tuple[SkipRow, ...] = ()
