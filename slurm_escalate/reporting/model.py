"""The typed result of analysing one chain: everything a report shows, nothing rendered.

Built by :func:`slurm_escalate.reporting.stats.build_report` from a Chain, the
resources of each ladder level and the tails of some task logs. Every renderer
(markdown, HTML, JSON, SQLite) reads only this, so they always agree.

Units: memory in MiB (``*_mb``; MaxRSS is also kept in KiB as sacct reports it),
durations in seconds, cost in core-seconds (elapsed seconds x cores per task).
"""

from __future__ import annotations

from dataclasses import dataclass

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
class Advice:
    lines: tuple[str, ...]
    recommended_start_level: int | None  # None: not enough data
    p95_rss_mb: float | None
    p95_elapsed_s: int | None
    sample: int  # completed tasks the advice rests on


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
