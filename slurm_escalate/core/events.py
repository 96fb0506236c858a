"""The events a chain's life is made of, and the one function that applies them.

A monitor never mutates a chain directly: it makes events, appends them to the
chain's journal and applies them to its in-memory view with :func:`apply`. A
later ``resume``, ``status`` or report rebuilds the view by applying the same
events, through the same function, on top of the last snapshot. So what a
monitor did and what a reader reconstructs cannot disagree.

Events are typed (msgspec structs, tagged by ``t``) and small:

* ``owner``     a monitor took the chain (host, pid and its epoch);
* ``intent``    a submission is about to run sbatch (recorded before it runs);
* ``submitted`` sbatch returned a job id: every task of the submission gets an attempt;
* ``sub``       a submission was refused (by a limit: when to try again) or its fate is unknown;
* ``tasks``     fields of many tasks changed the same way: one index spec, the
  values all tasks share once, and per-task columns only for what differs
  (1,000 completions of one array make one short line);
* ``chain``     the chain's own fields changed (state, finished_at, learned base).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from slurm_escalate.arrays.compress import compress
from slurm_escalate.arrays.spec import expand
from slurm_escalate.core.chain import Attempt, Chain, Submission, SubmissionStatus, TaskStatus
from slurm_escalate.core.models import ChainState, Level, TaskState

JOURNAL_VERSION = 1

# What a ``tasks`` event may set: task fields, and ``a.``-prefixed fields of the
# task's current attempt. Anything else in a journal is corruption.
TASK_FIELDS = frozenset(
    {"state", "level", "resubmits_at_level", "target_level", "exit_code", "reason"}
)
ATTEMPT_FIELDS = frozenset(
    {
        "outcome",
        "exit_code",
        "reason",
        "max_rss_kb",
        "start",
        "end",
        "elapsed_s",
        "node",
        "partition",
        "req_mem",
        "timelimit_s",
        "skipped",
        "requeues",
    }
)
_ENUMS: dict[str, Any] = {"state": TaskState}


class Owner(msgspec.Struct, tag="owner", tag_field="t", omit_defaults=True):
    host: str
    pid: int
    epoch: int
    at: float


class Intent(msgspec.Struct, tag="intent", tag_field="t", omit_defaults=True):
    seq: int
    level: int
    attempt: int
    indices: str | None
    array: str | None
    args: list[str]
    intent_at: float
    cpus: int = 1
    token: str | None = None
    offset: int = 0


class Submitted(msgspec.Struct, tag="submitted", tag_field="t", omit_defaults=True):
    seq: int
    job_id: str
    at: float
    error: str | None = None  # what sbatch said, when it failed yet the job was found


class SubFailed(msgspec.Struct, tag="sub", tag_field="t", omit_defaults=True):
    seq: int
    status: SubmissionStatus
    error: str | None = None
    limit: str | None = None  # refused by a limit that lifts by itself: its tasks wait ...
    retry_at: float | None = None  # ... until then


class Tasks(msgspec.Struct, tag="tasks", tag_field="t", omit_defaults=True):
    idx: str | None  # compressed index spec; None: the single task of a non-array job
    set: dict[str, Any] = {}
    col: dict[str, list[Any]] = {}


class ChainSet(msgspec.Struct, tag="chain", tag_field="t", omit_defaults=True):
    state: ChainState | None = None
    finished_at: float | None = None
    base: Level | None = None
    min_poll: float | None = None  # resume --min-poll / --max-poll
    max_poll: float | None = None


Event = Owner | Intent | Submitted | SubFailed | Tasks | ChainSet


class Record(msgspec.Struct, omit_defaults=True):
    """One journal line: the writer's epoch and the event."""

    e: int
    ev: Event
    v: int = JOURNAL_VERSION


class EventError(ValueError):
    """An event that cannot apply to this chain (the journal does not belong to it)."""


# ------------------------------------------------------------------ apply


def apply(chain: Chain, event: Event) -> None:
    """Apply one event to the chain's view, in place."""
    if isinstance(event, Tasks):
        _apply_tasks(chain, event)
    elif isinstance(event, Intent):
        if event.seq != len(chain.submissions) + 1:
            raise EventError(f"intent {event.seq} after {len(chain.submissions)} submissions")
        chain.submissions.append(
            Submission(
                seq=event.seq,
                level=event.level,
                attempt=event.attempt,
                indices=event.indices,
                array=event.array,
                args=list(event.args),
                intent_at=event.intent_at,
                cpus=event.cpus,
                token=event.token,
                offset=event.offset,
            )
        )
    elif isinstance(event, Submitted):
        sub = _submission(chain, event.seq)
        if event.error is not None:
            sub.error = event.error
        _apply_submitted(chain, sub, event.job_id, event.at)
    elif isinstance(event, SubFailed):
        sub = _submission(chain, event.seq)
        sub.status = event.status
        if event.error is not None:
            sub.error = event.error
        sub.limit, sub.retry_at = event.limit, event.retry_at
    elif isinstance(event, ChainSet):
        if event.state is not None:
            chain.state = event.state
        if event.finished_at is not None:
            chain.finished_at = event.finished_at
        if event.base is not None:
            chain.base = event.base
        if event.min_poll is not None:
            chain.min_poll = event.min_poll
        if event.max_poll is not None:
            chain.max_poll = event.max_poll
    # Owner changes nothing in the view: it tells readers and writers who writes.


def _submission(chain: Chain, seq: int) -> Submission:
    if not 1 <= seq <= len(chain.submissions):
        raise EventError(f"no submission {seq}")
    return chain.submissions[seq - 1]


def submission_indices(sub: Submission) -> list[int | None]:
    return list(expand(sub.indices)) if sub.indices is not None else [None]


def _apply_submitted(chain: Chain, sub: Submission, job_id: str, at: float) -> None:
    sub.status, sub.job_id, sub.submitted_at = SubmissionStatus.SUBMITTED, job_id, at
    for index in submission_indices(sub):
        task = chain.task(index)
        same = bool(task.attempts) and task.level == sub.level
        task.resubmits_at_level = task.resubmits_at_level + 1 if same else 0
        task.level = sub.level
        slot = None if index is None or not sub.offset else index - sub.offset
        task.attempts.append(Attempt(job_id=job_id, level=sub.level, submission=sub.seq, slot=slot))
        task.state, task.target_level = TaskState.PENDING, None


def _apply_tasks(chain: Chain, event: Tasks) -> None:
    """Column by column: one ``setattr`` per task and field, no per-task dict (a replay
    applies hundreds of thousands of these)."""
    indices: Sequence[int | None] = list(expand(event.idx)) if event.idx is not None else [None]
    for name, values in event.col.items():
        if len(values) != len(indices):
            raise EventError(f"column {name} has {len(values)} values for {len(indices)} tasks")
    try:
        tasks = [chain.task(i) for i in indices]
    except KeyError as e:
        raise EventError(f"no task {e.args[0]}") from None
    attempts: list[Any] | None = None
    columns = [(name, [value] * len(tasks)) for name, value in event.set.items()]
    for name, values in (*columns, *event.col.items()):
        _check_field(name)
        kind = _ENUMS.get(name)
        if kind is not None:
            values = [None if v is None else kind(v) for v in values]
        if name.startswith("a."):
            if attempts is None:
                attempts = [t.attempts[-1] if t.attempts else None for t in tasks]
                if None in attempts:
                    bad = tasks[attempts.index(None)]
                    raise EventError(f"task {bad.index} has no attempt to update")
            attr = name[2:]
            for target, value in zip(attempts, values, strict=True):
                setattr(target, attr, value)
        else:
            for task, value in zip(tasks, values, strict=True):
                setattr(task, name, value)


def _check_field(name: str) -> None:
    if name.startswith("a."):
        if name[2:] not in ATTEMPT_FIELDS:
            raise EventError(f"unknown attempt field {name!r}")
    elif name not in TASK_FIELDS:
        raise EventError(f"unknown task field {name!r}")


def patch_task(task: TaskStatus, fields: dict[str, Any]) -> None:
    """Set task fields, and ``a.``-prefixed fields of its current attempt."""
    for name, value in fields.items():
        if name.startswith("a."):
            if task.current is None:
                raise EventError(f"task {task.index} has no attempt to update")
            setattr(task.current, name[2:], value)
        else:
            setattr(task, name, value)


# ------------------------------------------------------------------ group


def group_patches(patches: Iterable[tuple[int | None, dict[str, Any]]]) -> list[Tasks]:
    """Many single-task patches as few ``tasks`` events.

    Patches are grouped by the task state they set and the set of fields they
    touch; within a group, a field whose value is the same for every task is
    written once, the others as a column in index order. A task patched twice
    keeps the later values (fields merge).
    """
    merged: dict[int | None, dict[str, Any]] = {}
    for index, fields in patches:
        merged.setdefault(index, {}).update(fields)
    groups: dict[tuple[Any, ...], list[tuple[int | None, dict[str, Any]]]] = {}
    for index, fields in merged.items():
        key = (_plain(fields.get("state")), tuple(sorted(fields)))
        groups.setdefault(key, []).append((index, fields))
    events = []
    for members in groups.values():
        members.sort(key=lambda m: -1 if m[0] is None else m[0])
        names = sorted(members[0][1])
        shared, columns = {}, {}
        for name in names:
            values = [_plain(f[name]) for _, f in members]
            first = values[0]
            if all(v == first for v in values):
                shared[name] = first
            else:
                columns[name] = values
        indices = [i for i, _ in members]
        spec = None if indices == [None] else compress([i for i in indices if i is not None])
        events.append(Tasks(idx=spec, set=shared, col=columns))
    return events


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, (TaskState, ChainState)) else value
