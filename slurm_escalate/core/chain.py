"""The state of one chain: what was asked, what was submitted, where each task stands.

This is the aggregate the monitor mutates and the store persists after every
change. It is deliberately plain data with a JSON round trip (``to_dict`` /
``from_dict``) so that ``status`` in another shell, a resumed monitor and a
human with ``jq`` all read the same truth.

Submissions are recorded twice: as an *intent* before ``sbatch`` runs and with
the job id after it returns. A monitor killed between the two leaves an intent
without a job id, which tells a later resume exactly which submission's fate
is unknown instead of silently submitting it again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import msgspec

from slurm_escalate.core.models import ChainState, Level, TaskState
from slurm_escalate.errors import StateError

SCHEMA_VERSION = 1


class SubmissionStatus(str, Enum):
    INTENT = "INTENT"  # recorded, sbatch not known to have returned
    SUBMITTED = "SUBMITTED"  # sbatch returned a job id
    REFUSED = "REFUSED"  # sbatch exited non-zero: nothing was submitted
    UNKNOWN = "UNKNOWN"  # sbatch timed out or died: it may or may not have submitted


class Attempt(msgspec.Struct, omit_defaults=True, gc=False):  # scalars only: no cycles
    """One run of one task: which submission carried it and how it ended."""

    job_id: str  # the submission's job id; an array task is ``<job_id>_<index>``
    level: int
    submission: int  # Submission.seq
    outcome: str | None = None  # FailureKind value once final
    exit_code: int | None = None
    reason: str = ""
    max_rss_kb: int | None = None
    # What sacct said about the finished attempt, for reports (None when unknown):
    start: str | None = None
    end: str | None = None
    elapsed_s: int | None = None
    node: str | None = None
    partition: str | None = None
    req_mem: str | None = None  # as sacct prints ReqMem, e.g. "400M"
    timelimit_s: int | None = None
    slot: int | None = None  # the array index Slurm ran it under, when not the task's own
    skipped: str | None = None  # why the next attempt skipped rungs of the ladder
    requeues: int = 0  # times Slurm itself requeued this attempt (seen PENDING after RUNNING)


class TaskStatus(msgspec.Struct, omit_defaults=True):
    index: int | None  # None: the single task of a non-array job
    state: TaskState = TaskState.PENDING
    level: int = 0
    attempts: list[Attempt] = []  # msgspec gives each task its own list
    resubmits_at_level: int = 0
    target_level: int | None = None  # set while state is RETRY
    exit_code: int | None = None
    reason: str = ""

    @property
    def current(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    def task_job_id(self, attempt: Attempt) -> str:
        """The id Slurm knows the attempt by (``123_4``; the slot for a mapped index)."""
        if self.index is None:
            return attempt.job_id
        return f"{attempt.job_id}_{self.index if attempt.slot is None else attempt.slot}"

    def slurm_index(self) -> int | None:
        """The array index sacct shows for the current attempt."""
        current = self.current
        return self.index if current is None or current.slot is None else current.slot


class Submission(msgspec.Struct, omit_defaults=True):
    seq: int
    level: int
    attempt: int
    indices: str | None  # compressed index spec (no throttle); None for a non-array job
    array: str | None  # the --array value passed to sbatch, throttle included
    args: list[str]  # argv after "sbatch --parsable"
    intent_at: float
    status: SubmissionStatus = SubmissionStatus.INTENT
    job_id: str | None = None
    submitted_at: float | None = None
    error: str | None = None
    cpus: int = 1  # cores per task, for core-hour accounting (--cpus-per-task, else 1)
    token: str | None = None  # --comment carried on the job, to find it after a crash
    offset: int = 0  # >0: each task ran as array index ``index - offset`` (see pieces.py)
    # Refused by a limit that lifts by itself (MaxSubmitJobsPerUser, ...): which one,
    # and when the next try is due. Its tasks wait (state RETRY), they never fail for it.
    limit: str | None = None
    retry_at: float | None = None


class LimitWait(msgspec.Struct, omit_defaults=True):
    """Resubmissions at one level that wait for a limit to lift (see ``limit_waits``)."""

    level: int
    limit: str  # e.g. QOSMaxSubmitJobPerUserLimit
    refusals: int  # consecutive refusals by a limit at this level
    retry_at: float  # the next try is due then
    since: float  # intent time of the first of these refusals


@dataclass
class Chain:
    chain_id: str
    created_at: float
    cwd: str
    script: str | None  # as the user typed it (None with --wrap)
    script_copy: str | None  # the snapshot every attempt runs
    sbatch_args: list[str]  # the user's sbatch options, verbatim
    script_args: list[str]
    config: str | None  # the ladder file as given; a copy is kept in the chain directory
    start_level: int = 0
    max_level: int | None = None
    max_resubmits: int | None = None  # None: the ladder's setting
    min_poll: float = 30.0
    max_poll: float = 300.0
    throttle: int | None = None
    is_array: bool = True
    rounds: bool = False  # resubmit a submission's failures only once all its tasks ended
    base: Level = field(default_factory=Level)  # what the user asked for
    state: ChainState = ChainState.RUNNING
    tasks: list[TaskStatus] = field(default_factory=list)
    submissions: list[Submission] = field(default_factory=list)
    finished_at: float | None = None
    version: int = SCHEMA_VERSION

    @property
    def initial_job_id(self) -> str | None:
        first = next((s for s in self.submissions if s.job_id), None)
        return first.job_id if first else None

    def task(self, index: int | None) -> TaskStatus:
        """The task with this index (KeyError if none); O(1) for chains of any size."""
        key = (id(self.tasks), len(self.tasks))
        cached = self.__dict__.get("_by_index")
        if cached is None or cached[0] != key:
            cached = (key, {t.index: t for t in self.tasks})
            self.__dict__["_by_index"] = cached  # not a dataclass field: never saved
        return cached[1][index]

    def unfinished_job_ids(self) -> list[str]:
        """Job ids that still carry a task not yet classified final, oldest first."""
        ids: dict[str, None] = {}
        for t in self.tasks:
            if not t.state.is_final and t.state is not TaskState.RETRY and t.current:
                ids[t.current.job_id] = None
        return sorted(ids, key=_job_sort_key)

    def counts(self) -> dict[TaskState, int]:
        out: dict[TaskState, int] = {}
        for t in self.tasks:
            out[t.state] = out.get(t.state, 0) + 1
        return out

    def final_state(self) -> ChainState:
        """COMPLETED when every task completed, FAILED when all are final otherwise."""
        if any(not t.state.is_final for t in self.tasks):
            return ChainState.RUNNING
        if all(t.state is TaskState.COMPLETED for t in self.tasks):
            return ChainState.COMPLETED
        return ChainState.FAILED


def limit_waits(chain: Chain) -> list[LimitWait]:
    """Levels whose last resubmission was refused by a limit: their tasks wait, by level.

    Derived from the submissions alone, so a resumed monitor, ``status`` and the
    submitter see the same waiting (and the same backoff) as the monitor that
    was refused. A submission at the level that went through, or was refused
    for good, ends its wait.
    """
    if chain.state is not ChainState.RUNNING:
        return []
    waits: dict[int, LimitWait] = {}
    for sub in chain.submissions:
        if sub.status is SubmissionStatus.REFUSED and sub.limit and sub.retry_at is not None:
            last = waits.get(sub.level)
            waits[sub.level] = LimitWait(
                level=sub.level,
                limit=sub.limit,
                refusals=(last.refusals if last else 0) + 1,
                retry_at=sub.retry_at,
                since=last.since if last else sub.intent_at,
            )
        elif sub.status in (SubmissionStatus.SUBMITTED, SubmissionStatus.REFUSED):
            waits.pop(sub.level, None)  # went through, or was refused for good
        # INTENT and UNKNOWN are being tried or settled: they change nothing yet
    return sorted(waits.values(), key=lambda w: w.level)


# ``watch``'s per-level table counts tasks: for each level a task has run at, the
# last attempt at that level decides its column, and a task waiting to be
# resubmitted is pending at the level it will run at next.
COLUMNS = ("pending", "running", "done", "OOM", "timeout", "failed", "cancelled")
_OUTCOME_COLUMN = {
    "COMPLETED": "done",
    "OUT_OF_MEMORY": "OOM",
    "TIMEOUT": "timeout",
    "DEADLINE": "timeout",
    "CANCELLED": "cancelled",
}
_FINAL_COLUMN = {TaskState.COMPLETED: "done", TaskState.CANCELLED: "cancelled"}


def _column(task: TaskStatus, attempt: Attempt) -> str:
    if attempt.outcome is not None:
        return _OUTCOME_COLUMN.get(attempt.outcome, "failed")
    if attempt is task.current and not task.state.is_final:
        return "running" if task.state is TaskState.RUNNING else "pending"
    return _FINAL_COLUMN.get(task.state, "failed")


def task_levels(task: TaskStatus) -> dict[int, str]:
    """Level -> column of one task (its last attempt at each level it ran at)."""
    out = {a.level: _column(task, a) for a in task.attempts}
    if task.state is TaskState.RETRY and task.target_level is not None:
        out[task.target_level] = "pending"  # waits to be resubmitted there
    elif not task.attempts:
        out[task.level] = (
            "pending" if not task.state.is_final else _FINAL_COLUMN.get(task.state, "failed")
        )
    return out


@dataclass(frozen=True)
class Headline:
    """What ``list`` shows of a chain, read from its summary without loading it."""

    chain_id: str
    state: ChainState
    script: str | None
    tasks: int
    counts: dict[TaskState, int]


def _job_sort_key(job_id: str) -> tuple[int, str]:
    return (int(job_id), "") if job_id.isdigit() else (0, job_id)


def to_dict(chain: Chain) -> dict[str, Any]:
    """JSON-ready form; enums become their values."""
    plain: dict[str, Any] = msgspec.to_builtins(chain)
    return plain


def from_dict(data: Any, source: str = "state") -> Chain:
    """Rebuild a Chain; anything malformed is a one-line StateError naming ``source``."""
    try:
        if not isinstance(data, dict):
            raise TypeError("top level is not an object")
        if data.get("version") != SCHEMA_VERSION:
            raise ValueError(f"unsupported state version {data.get('version')!r}")
        raw = dict(data)
        base = raw.pop("base", {}) or {}
        base["extra_args"] = tuple(base.get("extra_args", ()))
        tasks = [_task(t) for t in raw.pop("tasks")]
        subs = [_submission(s) for s in raw.pop("submissions")]
        state = ChainState(raw.pop("state"))
        return Chain(**raw, base=Level(**base), state=state, tasks=tasks, submissions=subs)
    except (KeyError, TypeError, ValueError) as e:
        raise StateError(f"{source}: corrupt chain state ({e})") from None


def _task(raw: dict[str, Any]) -> TaskStatus:
    raw = dict(raw)
    attempts = [Attempt(**a) for a in raw.pop("attempts")]
    return TaskStatus(
        index=raw["index"],
        state=TaskState(raw["state"]),
        level=raw["level"],
        attempts=attempts,
        resubmits_at_level=raw.get("resubmits_at_level", 0),
        target_level=raw.get("target_level"),
        exit_code=raw.get("exit_code"),
        reason=raw.get("reason", ""),
    )


def _submission(raw: dict[str, Any]) -> Submission:
    raw = dict(raw)
    raw["status"] = SubmissionStatus(raw["status"])
    return Submission(**raw)
