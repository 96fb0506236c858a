"""A chain's book: its view in memory and its journal on disk, kept in step.

Every change goes through here as an event: applied to the view with the same
``apply`` that loading replays, and appended to the journal. Submission events
(intent, job id, refusal) are appended at once, fsynced, because a crash must
never lose one. Task changes are queued as the poll makes them and appended
together, grouped, by ``commit``: one short line for a thousand completions.
A submission event first commits the queue, so the journal keeps the order in
which things happened.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from slurm_escalate.arrays.spec import expand
from slurm_escalate.core.chain import Chain, TaskStatus, task_levels
from slurm_escalate.core.events import (
    Event,
    Submitted,
    Tasks,
    apply,
    group_patches,
    patch_task,
    submission_indices,
)
from slurm_escalate.core.models import TaskState
from slurm_escalate.state.journal import PROBLEM_STATES, Journal, summarize

Key = tuple[TaskState, int]  # (state, level): what the summary counts


class ChainBook:
    def __init__(self, chain: Chain, journal: Journal) -> None:
        self.chain = chain
        self.journal = journal
        self._queue: list[tuple[int | None, dict[str, Any]]] = []
        self.bytes_written = 0
        # Tasks by (state, level), kept up to date change by change, so that the
        # summary written after every poll costs what changed, not the chain.
        self.counts: Counter[Key] = Counter((t.state, t.level) for t in chain.tasks)
        self.problems = {t.index for t in chain.tasks if t.state in PROBLEM_STATES}
        self.table: dict[int, Counter[str]] = {}  # watch's per-level table (task_levels)
        for task in chain.tasks:
            self._add(task_levels(task), 1)
        # Called with each committed batch (tests and benchmarks count them).
        self.on_commit: Callable[[list[Event]], None] | None = None

    @property
    def epoch(self) -> int:
        return self.journal.epoch

    def patch(self, task: TaskStatus, fields: dict[str, Any]) -> None:
        """Change a task now (``a.``-prefixed fields: its current attempt); journal it at commit."""
        before = (task.state, task.level)
        columns = task_levels(task)
        patch_task(task, fields)
        self._recount([before], [task], [columns])
        self._queue.append((task.index, fields))

    def record(self, *events: Event) -> None:
        """Apply and append events now (after whatever is queued), fsynced."""
        self.commit()
        for event in events:
            touched = [self.chain.task(i) for i in _indices(self.chain, event)]
            before = [(t.state, t.level) for t in touched]
            columns = [task_levels(t) for t in touched]
            apply(self.chain, event)
            self._recount(before, touched, columns)
        self._append(list(events))

    def _recount(
        self, before: list[Key], tasks: list[TaskStatus], columns: list[dict[int, str]]
    ) -> None:
        for old, task in zip(columns, tasks, strict=True):
            new = task_levels(task)
            if new != old:
                self._add(old, -1)
                self._add(new, 1)
        for key, task in zip(before, tasks, strict=True):
            after = (task.state, task.level)
            if after != key:
                self.counts[key] -= 1
                self.counts[after] += 1
                if task.state in PROBLEM_STATES:
                    self.problems.add(task.index)
                else:
                    self.problems.discard(task.index)

    def commit(self) -> None:
        """Append the queued task changes, grouped; compact when the journal has grown."""
        if not self._queue:
            return
        events: list[Event] = list(group_patches(self._queue))
        self._queue.clear()
        self._append(events)

    def _append(self, events: list[Event]) -> None:
        self.bytes_written += self.journal.append(events)
        if self.on_commit is not None:
            self.on_commit(events)

    def maybe_compact(self) -> bool:
        """Between polls: fold the journal into a snapshot once it outgrows the last one."""
        self.commit()
        if not self.journal.should_compact():
            return False
        self.journal.compact(self.chain)
        return True

    def _add(self, columns: dict[int, str], n: int) -> None:
        for level, column in columns.items():
            self.table.setdefault(level, Counter())[column] += n

    def write_summary(self, now: float) -> None:
        summary = summarize(
            self.chain, self.counts, self.problems, self.table, now, self.journal.epoch
        )
        self.journal.write_summary(summary)

    def close(self) -> None:
        self.commit()
        self.journal.close()


def _indices(chain: Chain, event: Event) -> list[int | None]:
    """The tasks an event may change."""
    if isinstance(event, Submitted):
        return submission_indices(chain.submissions[event.seq - 1])
    if isinstance(event, Tasks):
        return list(expand(event.idx)) if event.idx is not None else [None]
    return []
