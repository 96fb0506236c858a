"""Learning from siblings: where did tasks that failed like this one end up?

Tasks of one array tend to fail alike. When most tasks that ran out of memory
at level L completed only at L+2 (or ran out at L+1 too), a task that runs out
at L now will most likely need L+2 as well, and the rung in between is a
doomed attempt: its queue wait and its core-seconds are wasted. With
``escalation: skip`` the monitor sends such a task straight to the level its
siblings needed.

The evidence per task is the lowest level it is known to need: the level it
completed at or, while it is still climbing, one above the highest level it
failed at. A guess is made only from ``MIN_EVIDENCE`` tasks or more, and only
when the median need (the lower median, so ties stay conservative) is two or
more rungs up.
"""

from __future__ import annotations

from collections.abc import Iterable

from slurm_escalate.core.chain import TaskStatus
from slurm_escalate.core.models import FailureKind

MIN_EVIDENCE = 3


def levels_needed(tasks: Iterable[TaskStatus], kind: FailureKind, level: int) -> list[int]:
    """For each task that failed with ``kind`` at ``level``: the lowest level it needs.

    A task whose later fate is unknown (it failed at ``level`` and nothing
    else is known yet) is no evidence.
    """
    needed = []
    for task in tasks:
        failed = {a.level for a in task.attempts if a.outcome == kind.value}
        if level not in failed:
            continue
        done = next((a.level for a in task.attempts if a.outcome == "COMPLETED"), None)
        if done is not None:
            needed.append(done)
        elif level + 1 in failed:
            needed.append(max(failed) + 1)
    return needed


def sibling_level(
    tasks: Iterable[TaskStatus], kind: FailureKind, level: int
) -> tuple[int, str] | None:
    """The level to jump to from ``level``, and why; None when siblings say one rung is enough."""
    needed = sorted(levels_needed(tasks, kind, level))
    if len(needed) < MIN_EVIDENCE:
        return None
    median = needed[(len(needed) - 1) // 2]
    if median < level + 2:
        return None
    above = sum(1 for n in needed if n >= median)
    why = (
        f"{above} of {len(needed)} tasks that hit {kind.value} at level {level} "
        f"needed level {median} or higher"
    )
    return median, why
