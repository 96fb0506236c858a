"""Right-sizing advice: which level would have fit 95% of the tasks from the start.

The rule is :mod:`slurm_escalate.reporting.sizing`'s, the same that
``slurm-escalate suggest`` and ``--start-level auto`` apply to every earlier
chain of a script, here over this one chain: each task's need is measured on
its completing attempt (MaxRSS, Elapsed) or bounded from below by the attempts
that ran out of memory or time; the lowest level whose memory beats the 95th
percentile by ``MEM_HEADROOM`` and whose time limit beats it by
``TIME_HEADROOM`` fits. The advice ends with a line ready to paste: the
``--start-level`` option, or a ladder level to add when no level fits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from slurm_escalate.core.models import Level
from slurm_escalate.reporting import fmt
from slurm_escalate.reporting.model import (
    COMPLETED,
    Advice,
    AttemptRow,
    Paste,
    Percentile,
    Sizing,
    TaskRow,
    Verdict,
)
from slurm_escalate.reporting.sizing import (
    MEM_HEADROOM,
    PERCENTILE,
    TIME_HEADROOM,
    bound_mem,
    ladder_line,
    size,
    task_need,
)

__all__ = ["MEM_HEADROOM", "OVERSIZED", "PERCENTILE", "TIME_HEADROOM", "right_size"]

#: a level holding more than this many times what 95% of tasks need is oversized
OVERSIZED = 2.0
NOTHING = "no task has completed yet: nothing to size from"


def right_size(tasks: Sequence[TaskRow], levels: Mapping[int, Level], start: int) -> Advice:
    needs = [n for t in tasks if (n := task_need(t.attempts)) is not None]
    sizing = size(needs, levels)
    if sizing.verdict is Verdict.NO_EVIDENCE:
        return Advice((NOTHING,), None, None, None, 0, sizing)
    head = _head(sizing)
    if sizing.verdict is Verdict.NONE_FITS:
        assert sizing.new_level is not None
        top = sizing.start_level
        lines = [f"{head}; no level has room for them: add a level above level {top}"]
        paste = Paste(f"add above level {top} of the ladder", ladder_line(sizing.new_level))
        best = None
    else:
        best = sizing.start_level
        if best != start:
            lines = [f"{head}; start at level {best} next time"]
        else:
            lines = [f"{head}; level {best} fits them: keep starting at level {best}"]
        paste = Paste("next time", sizing.option)
    done_tasks = [t for t in tasks if t.state == COMPLETED and _completing(t) is not None]
    done_attempts = [a for t in done_tasks if (a := _completing(t)) is not None]
    lines.extend(_details(done_tasks, done_attempts, levels, start, best, sizing))
    lines.append(paste.line)
    return Advice(
        tuple(lines),
        best,
        _measured(sizing.mem),
        _ceil(_measured(sizing.time)),
        sizing.tasks,
        sizing,
        paste,
    )


def _measured(p: Percentile | None) -> float | None:
    return None if p is None or p.figure.lower_bound else p.figure.value


def _ceil(x: float | None) -> int | None:
    return None if x is None else math.ceil(x)


def _head(s: Sizing) -> str:
    """What 95% of tasks stayed under (measurements), what over 5% needed more than (bounds)."""
    under, over = [], []
    if s.mem is not None:
        if s.mem.figure.lower_bound:
            over.append(f"more than {bound_mem(s.mem.figure.value)} (they ran out of memory there)")
        else:
            under.append(f"peaked under {fmt.mem(s.mem.figure.value, up=True)}")
    if s.time is not None:
        if s.time.figure.lower_bound:
            over.append(f"more than {fmt.duration(s.time.figure.value)} (they timed out there)")
        else:
            under.append(f"ran under {fmt.duration(s.time.figure.value, up=True)}")
    parts = []
    if under:
        parts.append(f"{PERCENTILE}% of tasks {' and '.join(under)}")
    if over:
        parts.append(f"over {100 - PERCENTILE}% needed {' and '.join(over)}")
    return "; ".join(parts)


def _completing(task: TaskRow) -> AttemptRow | None:
    return next((a for a in reversed(task.attempts) if a.outcome == COMPLETED), None)


def _details(
    done_tasks: Sequence[TaskRow],
    attempts: Sequence[AttemptRow],
    levels: Mapping[int, Level],
    start: int,
    best: int | None,
    sizing: Sizing,
) -> list[str]:
    lines = []
    n = len(attempts)
    if n:
        first_try = sum(1 for a in attempts if a.attempt == 1)
        lines.append(
            f"{first_try} of {n} completed tasks ({fmt.pct(first_try, n)}) "
            f"needed no retry at level {start}"
        )
    if (best is None or best > start) and n:
        climbed = [t for t in done_tasks if len(t.attempts) > 1]
        lost = sum(a.core_s for t in climbed for a in t.attempts if a.outcome != COMPLETED)
        lines.append(
            f"{len(climbed)} of {n} completed tasks had to be retried; their failed attempts "
            f"cost {fmt.core_hours(lost)} core-hours"
        )
    need_mem = _measured(sizing.mem)
    if best is not None and need_mem is not None:
        need_mem *= 1 + MEM_HEADROOM
        have = levels[best].mem_mb
        if have is not None and have > OVERSIZED * need_mem:
            lines.append(
                f"level {best}'s {fmt.req(have)} is over {OVERSIZED:g}x what they need: "
                f"{fmt.mem(need_mem, up=True)} would do (MaxRSS + "
                f"{round(MEM_HEADROOM * 100)}%)"
            )
    return lines
