"""One poll's judgement, as a pure function: the chain's view and sacct's records in, events out.

``step`` looks at every task that is not final, finds its record in this
poll's sacct output, classifies it, decides (retry at a level, or a final
state) and returns what should change as task patches — the same patches the
journal records and ``apply`` replays. It never mutates the view it is given:
tasks it changes are copied first, so that later tasks of the same poll see
the earlier ones' outcomes (sibling learning does) while the caller's view
stays as it was until the caller applies the patches.

What stays with the monitor is what touches the world: the sacct call, the
recovery hook, sbatch, the journal and the log.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum
from typing import Any

from slurm_escalate.core.chain import Chain, TaskStatus
from slurm_escalate.core.classify import classify, decide
from slurm_escalate.core.events import patch_task
from slurm_escalate.core.ladder import resources_for
from slurm_escalate.core.learning import sibling_level
from slurm_escalate.core.models import (
    Classification,
    FailureKind,
    Level,
    Policy,
    SlurmState,
    TaskProgress,
    TaskRecord,
    TaskState,
)
from slurm_escalate.core.units import parse_mem_mb

VANISHED_POLLS = 3  # a task missing from its visible array this many polls in a row ...
VANISHED_GRACE_S = 180.0  # ... and for this long has been cancelled while pending
VANISHED_REASON = "vanished from sacct while pending (cancelled before it started)"

UNEXPLAINED = frozenset({SlurmState.UNKNOWN, SlurmState.REVOKED, SlurmState.SPECIAL_EXIT})
RUNNING_STATES = frozenset({SlurmState.RUNNING, SlurmState.COMPLETING, SlurmState.SUSPENDED})
# A task seen running that shows one of these has been put back in the queue by Slurm.
REQUEUE_STATES = frozenset(
    {
        SlurmState.PENDING,
        SlurmState.REQUEUED,
        SlurmState.REQUEUE_HOLD,
        SlurmState.REQUEUE_FED,
    }
)
SKIPPABLE = frozenset({FailureKind.OUT_OF_MEMORY, FailureKind.TIMEOUT, FailureKind.DEADLINE})

# A job preempted with PreemptMode=REQUEUE shows PREEMPTED in sacct for a few seconds
# before Slurm requeues it under the same job id (PENDING again); with JobRequeue=1 a
# NODE_FAIL is requeued alike. Such an end is believed only when it still stands this
# long after it happened, so a task Slurm reruns by itself is never also resubmitted.
MAY_REQUEUE = frozenset({SlurmState.PREEMPTED, SlurmState.NODE_FAIL})
REQUEUE_GRACE_S = 120.0

Index = int | None
Absent = Mapping[Index, tuple[int, float]]  # index -> (polls missing in a row, since when)


class NoteKind(str, Enum):
    """What the monitor tells its log about a task this poll."""

    COMPLETED = "COMPLETED"  # grouped: many completions make one line
    RETRY = "RETRY"  # one line per failure
    FINAL = "FINAL"  # FAILED, EXHAUSTED, CANCELLED: one line each
    UNKNOWN = "UNKNOWN"  # cause unknown, the recovery hook is asked
    REQUEUED = "REQUEUED"  # Slurm itself put a running task back in the queue


@dataclass(frozen=True)
class Note:
    kind: NoteKind
    task: str  # the id Slurm knows the attempt by, e.g. "123_4"
    text: str
    level: int = 0
    job: str = ""  # the attempt's job id, and the task's index, for grouping
    index: int | None = None


@dataclass(frozen=True)
class StepInput:
    policy: Policy
    base: Level  # what the user asked for (learned from Slurm when they asked for nothing)
    now: float
    absent: Absent = field(default_factory=dict)
    blocked: frozenset[Index] = frozenset()  # in a submission still in doubt: not resubmitted
    starts: Mapping[Index, str] = field(default_factory=dict)  # running tasks' Start, last poll


@dataclass
class StepResult:
    patches: list[tuple[Index, dict[str, Any]]] = field(default_factory=list)
    base: Level | None = None  # a base newly learned from what Slurm granted
    retries: list[Index] = field(default_factory=list)  # to resubmit (unless blocked)
    unknown: list[Index] = field(default_factory=list)  # for the recovery hook
    deadlines: list[float] = field(default_factory=list)  # when running tasks hit their limit
    timeout_ends: list[float] = field(default_factory=list)  # End of TIMEOUTs: Slurm's sweep
    absent: dict[Index, tuple[int, float]] = field(default_factory=dict)
    starts: dict[Index, str] = field(default_factory=dict)  # for the next poll's StepInput
    notes: list[Note] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.patches) or self.base is not None

    @property
    def ended(self) -> bool:
        """Whether an attempt ended this poll (a start or a requeue is not an end)."""
        return any(n.kind is not NoteKind.REQUEUED for n in self.notes)


def step(chain: Chain, records: Sequence[TaskRecord], given: StepInput) -> StepResult:
    """Judge one poll's records; the chain is read, never changed."""
    run = _Step(chain, given)
    run.out.starts = dict(given.starts)
    by_key = {(r.array_job_id, r.index): r for r in records}
    # Only task rows make an array visible: for its first seconds sacct shows a new
    # array under its bare id alone ("569|PENDING"), before the tasks are split out.
    jobs_seen = {r.array_job_id for r in records if r.index is not None}
    for task in chain.tasks:
        if task.state is TaskState.RETRY:
            if task.index not in given.blocked:
                run.out.retries.append(task.index)
            continue
        if task.state.is_final or task.current is None:
            continue
        record = by_key.get((task.current.job_id, task.slurm_index()))
        if record is None:
            run.missing(task, task.current.job_id in jobs_seen)
        else:
            run.observe(task, record)
    return run.out


class _Step:
    def __init__(self, chain: Chain, given: StepInput) -> None:
        self.chain = chain
        self.policy = given.policy
        self.base = given.base
        self.now = given.now
        self.absent = given.absent
        self.out = StepResult()
        self.scratch: dict[Index, TaskStatus] = {}  # copies of the tasks this poll changed
        self.siblings: dict[tuple[FailureKind, int], tuple[int, str] | None] = {}

    def patch(self, task: TaskStatus, fields: dict[str, Any]) -> TaskStatus:
        mine = self.scratch.get(task.index)
        if mine is None:
            mine = copy.copy(task)
            mine.attempts = [*task.attempts[:-1], copy.copy(task.attempts[-1])]
            self.scratch[task.index] = mine
        patch_task(mine, fields)
        self.out.patches.append((task.index, fields))
        return mine

    def missing(self, task: TaskStatus, job_visible: bool) -> None:
        """A task sacct does not show is pending, unless its array is visible without it.

        sacct lists a pending array as one ``123_[...]`` row; a task cancelled
        while pending silently drops out of it. Only when it has been missing for
        ``VANISHED_POLLS`` polls and ``VANISHED_GRACE_S`` seconds in a row (so a
        row in transit is never mistaken for it) does it count as CANCELLED.
        """
        if not job_visible:
            return
        polls, since = self.absent.get(task.index, (0, self.now))
        self.out.absent[task.index] = (polls + 1, since)
        if polls + 1 < VANISHED_POLLS or self.now - since < VANISHED_GRACE_S:
            return
        name = task.task_job_id(task.current) if task.current else str(task.index)
        if self.policy.hooks.recovery_hook:
            self.patch(task, {"state": TaskState.FAILED, "reason": VANISHED_REASON})
            self.out.unknown.append(task.index)
        else:
            self.patch(task, {"state": TaskState.CANCELLED, "reason": VANISHED_REASON})
        self.out.notes.append(Note(NoteKind.FINAL, name, f"CANCELLED: {VANISHED_REASON}"))

    def requeued(self, task: TaskStatus, record: TaskRecord, running: bool) -> bool:
        """Whether Slurm requeued the attempt since the last poll (``JobRequeue``,
        ``scontrol requeue``, preemption with PreemptMode=REQUEUE).

        Slurm reruns a requeued job under the same job id; sacct shows only its
        newest run. So a requeue is seen as a task that ran and is pending again
        (REQUEUED, then PENDING until its BeginTime), or, when that whole phase
        fell between two polls, as a run with a Start other than the one seen
        running before. The task is followed under its job id, never resubmitted.
        """
        job = record.job
        seen = self.out.starts.pop(task.index, None)
        if running and job.start:
            self.out.starts[task.index] = job.start
        if task.state is TaskState.RUNNING and job.state in REQUEUE_STATES:
            return True
        return seen is not None and job.start is not None and job.start != seen

    def observe(self, task: TaskStatus, record: TaskRecord) -> None:
        c = classify(record, self.policy)
        job = record.job
        attempt = task.current
        assert attempt is not None
        running = job.state in RUNNING_STATES
        requeues: dict[str, Any] = {}
        if self.requeued(task, record, running):
            requeues = {"a.requeues": attempt.requeues + 1}
            self.out.notes.append(
                Note(
                    NoteKind.REQUEUED,
                    task.task_job_id(attempt),
                    f"was requeued by Slurm ({job.state_text}; requeue "
                    f"{attempt.requeues + 1} of this attempt): followed under its job id, "
                    "not resubmitted",
                    task.level,
                    attempt.job_id,
                    task.index,
                )
            )
        if job.state in MAY_REQUEUE and self.now - epoch(job.end or "") < REQUEUE_GRACE_S:
            return  # Slurm may requeue it: judged once its end has stood REQUEUE_GRACE_S
        if c.kind is FailureKind.ACTIVE:
            if running and job.start and job.timelimit_s:
                self.out.deadlines.append(epoch(job.start) + job.timelimit_s)
            new = TaskState.RUNNING if running else TaskState.PENDING
            if new is not task.state or requeues:
                self.patch(task, {"state": new, **requeues})
            return
        if job.state is SlurmState.TIMEOUT and job.end:
            self.out.timeout_ends.append(epoch(job.end))
        self.learn_base(record)
        decision = decide(c, self.progress(task, c), self.policy)
        assert decision is not None
        change: dict[str, Any] = {
            "a.outcome": c.kind.value,
            "a.exit_code": c.exit_code,
            "a.reason": c.reason,
            "a.max_rss_kb": c.max_rss_kb,
            "a.start": job.start,
            "a.end": job.end,
            "a.elapsed_s": job.elapsed_s,
            "a.node": job.nodes,
            "a.partition": job.partition,
            "a.req_mem": job.req_mem,
            "a.timelimit_s": job.timelimit_s,
            "a.skipped": decision.skipped,
            "exit_code": c.exit_code,
            "reason": decision.reason,
            **requeues,
        }
        name = task.task_job_id(attempt)
        if job.state in UNEXPLAINED and self.policy.hooks.recovery_hook:
            reason = f"{job.state_text} (cause unknown)"
            self.patch(task, {**change, "state": TaskState.FAILED, "reason": reason})
            self.out.unknown.append(task.index)
            self.out.notes.append(
                Note(NoteKind.UNKNOWN, name, f"{reason}: asking the recovery hook")
            )
            return
        if decision.task_state is TaskState.RETRY and self.same_resources(
            task, decision.target_level
        ):
            change.update(
                state=TaskState.EXHAUSTED, reason=f"{c.reason}: resources already at their cap"
            )
        elif decision.task_state is TaskState.RETRY:
            change.update(state=TaskState.RETRY, target_level=decision.target_level)
            self.out.retries.append(task.index)
        else:
            change["state"] = decision.task_state
        mine = self.patch(task, change)
        self.out.notes.append(_note(name, mine, attempt.job_id))

    def progress(self, task: TaskStatus, c: Classification) -> TaskProgress:
        """The task's history, plus what escalation "skip" learns from the level sizes and
        from siblings (once per poll and failure kind, from what is known so far)."""
        progress = TaskProgress(task.level, len(task.attempts), task.resubmits_at_level)
        if self.policy.escalation != "skip" or c.kind not in SKIPPABLE:
            return progress
        key = (c.kind, task.level)
        if key not in self.siblings:
            view = [self.scratch.get(t.index, t) for t in self.chain.tasks]
            self.siblings[key] = sibling_level(view, c.kind, task.level)
        sizes = None
        if not self.policy.levels:
            levels = range(self.policy.top_level + 1)
            sizes = tuple(
                (resources_for(self.policy, n, self.base) or self.base).mem_mb for n in levels
            )
        return replace(progress, level_mem_mb=sizes, sibling=self.siblings[key])

    def same_resources(self, task: TaskStatus, target: int | None) -> bool:
        """An escalation that changes nothing (a multiplier at its caps) cannot help."""
        if target is None or target == task.level or self.policy.levels:
            return False
        return resources_for(self.policy, target, self.base) == resources_for(
            self.policy, task.level, self.base
        )

    def learn_base(self, record: TaskRecord) -> None:
        """Without a ladder, grow from what Slurm granted when the user asked for nothing."""
        if self.policy.levels:
            return
        mem, time_s = self.base.mem_mb, self.base.time_s
        if mem is None and record.job.req_mem:
            try:
                mem = parse_mem_mb(record.job.req_mem.rstrip("nc"))
            except ValueError:
                mem = None
        if time_s is None and record.job.timelimit_s:
            time_s = record.job.timelimit_s
        if (mem, time_s) != (self.base.mem_mb, self.base.time_s):
            self.base = self.out.base = replace(self.base, mem_mb=mem, time_s=time_s)


def _note(name: str, task: TaskStatus, job: str) -> Note:
    level, index = task.level, task.index
    if task.state is TaskState.COMPLETED:
        text = f"COMPLETED at level {level}"
        return Note(NoteKind.COMPLETED, name, text, level, job, index)
    if task.state is TaskState.RETRY:
        return Note(NoteKind.RETRY, name, task.reason, level, job, index)
    return Note(NoteKind.FINAL, name, f"{task.state.value}: {task.reason}", level, job, index)


def epoch(iso: str) -> float:
    """sacct prints local time without a zone, e.g. 2026-11-22T03:01:02."""
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return 0.0
