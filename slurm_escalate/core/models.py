"""Typed domain model shared by the pure core and the adapters.

Everything here is a frozen dataclass or a str Enum so that values can be
compared in table tests and serialised to JSON without surprises.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import msgspec


class SlurmState(str, Enum):
    """Job states as sacct prints them (``CANCELLED by 0`` parses to CANCELLED)."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    REQUEUED = "REQUEUED"
    REQUEUE_FED = "REQUEUE_FED"
    REQUEUE_HOLD = "REQUEUE_HOLD"
    RESIZING = "RESIZING"
    SUSPENDED = "SUSPENDED"
    COMPLETING = "COMPLETING"
    CONFIGURING = "CONFIGURING"
    SIGNALING = "SIGNALING"
    STAGE_OUT = "STAGE_OUT"
    STOPPED = "STOPPED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMEOUT = "TIMEOUT"
    OUT_OF_MEMORY = "OUT_OF_MEMORY"
    NODE_FAIL = "NODE_FAIL"
    PREEMPTED = "PREEMPTED"
    BOOT_FAIL = "BOOT_FAIL"
    DEADLINE = "DEADLINE"
    REVOKED = "REVOKED"
    SPECIAL_EXIT = "SPECIAL_EXIT"
    UNKNOWN = "UNKNOWN"

    @property
    def is_final(self) -> bool:
        return self in FINAL_SLURM_STATES


FINAL_SLURM_STATES = frozenset(
    {
        SlurmState.COMPLETED,
        SlurmState.FAILED,
        SlurmState.CANCELLED,
        SlurmState.TIMEOUT,
        SlurmState.OUT_OF_MEMORY,
        SlurmState.NODE_FAIL,
        SlurmState.PREEMPTED,
        SlurmState.BOOT_FAIL,
        SlurmState.DEADLINE,
        SlurmState.REVOKED,
        SlurmState.SPECIAL_EXIT,
    }
)


class FailureKind(str, Enum):
    """What happened to one attempt of one task, after looking at job and step rows."""

    COMPLETED = "COMPLETED"
    OUT_OF_MEMORY = "OUT_OF_MEMORY"
    TIMEOUT = "TIMEOUT"
    DEADLINE = "DEADLINE"
    PREEMPTED = "PREEMPTED"
    NODE_FAIL = "NODE_FAIL"
    BOOT_FAIL = "BOOT_FAIL"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    ACTIVE = "ACTIVE"  # pending, running, requeued by Slurm itself: not final yet

    @property
    def is_final(self) -> bool:
        return self is not FailureKind.ACTIVE


class Action(str, Enum):
    """What to do with a finished attempt (the values are the YAML spellings)."""

    ESCALATE = "escalate"
    RESUBMIT = "resubmit"
    NO_RETRY = "no_retry"


class TaskState(str, Enum):
    """Where one task of a chain stands."""

    PENDING = "PENDING"  # submitted, not running yet (or not visible in sacct yet)
    RUNNING = "RUNNING"
    RETRY = "RETRY"  # classified as failed, waiting to be resubmitted
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"  # failed for a reason more resources won't fix
    EXHAUSTED = "EXHAUSTED"  # resource failure at the top of the ladder / resubmit cap
    CANCELLED = "CANCELLED"

    @property
    def is_final(self) -> bool:
        return self in (
            TaskState.COMPLETED,
            TaskState.FAILED,
            TaskState.EXHAUSTED,
            TaskState.CANCELLED,
        )


class ChainState(str, Enum):
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


@dataclass(frozen=True)
class Level:
    """One rung of the ladder: the sbatch resources it overrides.

    ``None`` means "leave whatever the user asked for". ``mem_mb`` is MiB,
    ``time_s`` seconds (Slurm rounds limits up to whole minutes).
    """

    partition: str | None = None
    mem_mb: int | None = None
    time_s: int | None = None
    cpus_per_task: int | None = None
    gres: str | None = None
    qos: str | None = None
    account: str | None = None
    constraint: str | None = None
    extra_args: tuple[str, ...] = ()


@dataclass(frozen=True)
class MultiplierPolicy:
    """Ladder-less escalation: grow from what the user asked for, up to caps."""

    memory_factor: float = 2.0
    time_factor: float = 2.0
    max_mem_mb: int | None = None
    max_time_s: int | None = None
    max_steps: int = 4


DEFAULT_STATE_HANDLING: dict[FailureKind, Action] = {
    FailureKind.OUT_OF_MEMORY: Action.ESCALATE,
    FailureKind.TIMEOUT: Action.ESCALATE,
    FailureKind.DEADLINE: Action.ESCALATE,
    FailureKind.PREEMPTED: Action.RESUBMIT,
    FailureKind.NODE_FAIL: Action.RESUBMIT,
    FailureKind.BOOT_FAIL: Action.RESUBMIT,
    FailureKind.FAILED: Action.NO_RETRY,
    FailureKind.CANCELLED: Action.NO_RETRY,
}

DEFAULT_EXIT_CODES: dict[int, Action] = {137: Action.ESCALATE}
# MaxRSS is sampled, so an OOM-killed attempt under-reports what it needed: ask for 20% more.
SKIP_HEADROOM = 0.2


@dataclass(frozen=True)
class Hooks:
    """Commands (argv, never a shell) the monitor runs at moments of a chain's life."""

    on_complete: tuple[str, ...] | None = None  # the chain finished (any final state)
    on_exhausted: tuple[str, ...] | None = None  # tasks ran out of ladder
    recovery_hook: tuple[str, ...] | None = None  # decides about failures of unknown cause
    timeout_s: float = 300.0


@dataclass(frozen=True)
class Policy:
    """Everything the pure decision function needs to know.

    Exactly one of ``levels`` (non-empty) or ``multiplier`` drives escalation.
    """

    levels: tuple[Level, ...] = ()
    multiplier: MultiplierPolicy | None = None
    state_handling: dict[FailureKind, Action] = field(
        default_factory=lambda: dict(DEFAULT_STATE_HANDLING)
    )
    exit_codes: dict[int, Action] = field(default_factory=lambda: dict(DEFAULT_EXIT_CODES))
    start_level: int = 0
    max_level: int | None = None  # None: top of the ladder
    max_resubmits: int = 3
    source: str | None = None  # path of the YAML file, for messages
    # "step": one rung per failure; "skip": an OOM jumps straight to the lowest rung
    # whose memory has headroom over the measured MaxRSS (see classify.skip_target_level),
    # or to where most siblings that failed alike finally completed (see learning.py).
    escalation: str = "step"
    skip_headroom: float = SKIP_HEADROOM
    hooks: Hooks = field(default_factory=Hooks)

    @property
    def top_level(self) -> int:
        if self.levels:
            top = len(self.levels) - 1
        else:
            top = self.multiplier.max_steps if self.multiplier else 0
        return top if self.max_level is None else min(top, self.max_level)


class SacctRow(msgspec.Struct, frozen=True, gc=False):
    """One line of ``sacct --parsable2``: a job row or a step row."""

    job_id: str  # the JobID column as printed, e.g. "123_4", "123_4.batch", "123_[1-5%2]"
    array_job_id: str  # the array's parent id ("123"), or the plain job id
    array_index: int | None  # None for a non-array job
    step: str | None  # None for the job row, else "batch", "extern", "0", ...
    state: SlurmState
    state_text: str  # raw State column, e.g. "CANCELLED by 0"
    exit_code: int
    exit_signal: int
    max_rss_kb: int | None = None
    elapsed_s: int | None = None
    timelimit_s: int | None = None
    start: str | None = None  # ISO text as sacct prints it, or None for "Unknown"/"None"
    end: str | None = None
    nodes: str | None = None
    partition: str | None = None
    req_mem: str | None = None
    name: str | None = None


class TaskRecord(msgspec.Struct, frozen=True, gc=False):
    """All sacct rows of one attempt of one task: the job row and its steps."""

    array_job_id: str
    index: int | None
    job: SacctRow
    steps: tuple[SacctRow, ...] = ()


class Classification(msgspec.Struct, frozen=True, gc=False):
    """What classify() found in one attempt's rows (a Struct: made for every task on
    every poll, where a frozen dataclass's __init__ costs several times as much)."""

    kind: FailureKind
    exit_code: int | None
    reason: str  # short human text: "OUT_OF_MEMORY on step batch (0:125)"
    max_rss_kb: int | None = None


@dataclass(frozen=True)
class TaskProgress:
    """What decide() needs to know about a task's history (and its siblings')."""

    level: int
    attempts: int  # attempts made so far, including the one just classified
    resubmits_at_level: int  # same-level resubmissions already made at ``level``
    # escalation "skip": memory of each level (None: not set), for a ladder-less policy
    level_mem_mb: tuple[int | None, ...] | None = None
    sibling: tuple[int, str] | None = None  # (level, why) learned from siblings


@dataclass(frozen=True)
class Decision:
    """Outcome of decide(): a final task state, or a retry at ``target_level``."""

    task_state: TaskState  # COMPLETED/FAILED/EXHAUSTED/CANCELLED, or RETRY
    target_level: int | None
    reason: str
    skipped: str | None = None  # why target_level skips rungs (escalation "skip")


@dataclass(frozen=True)
class PartitionInfo:
    """What the live cluster allows in one partition (for ladder validation)."""

    name: str
    max_time_s: int | None  # None: UNLIMITED
    max_node_mem_mb: int | None  # largest RealMemory of the partition's nodes
    is_default: bool = False


@dataclass(frozen=True)
class ClusterLimits:
    """Cluster-wide limits read once from ``scontrol show config``."""

    max_array_size: int = 1001
    max_array_tasks: int | None = None
    max_job_count: int | None = None  # a larger array could never be queued whole
