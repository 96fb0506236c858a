"""Right-sizing advice: which level would have fit 95% of the tasks from the start.

The sample is every task that completed, measured on its completing attempt
(MaxRSS, Elapsed). A level fits when its memory beats the 95th percentile of
MaxRSS by ``MEM_HEADROOM`` (sacct samples MaxRSS, so peaks are under-reported;
the same 20% the ``skip`` escalation uses) and its time limit beats the 95th
percentile of the runtime by ``TIME_HEADROOM``. A level whose memory or time
is unknown is not judged on it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from slurm_escalate.core.models import SKIP_HEADROOM, Level
from slurm_escalate.reporting import fmt
from slurm_escalate.reporting.model import COMPLETED, Advice, AttemptRow, TaskRow

MEM_HEADROOM = SKIP_HEADROOM
TIME_HEADROOM = 0.1
PERCENTILE = 95
#: a level holding more than this many times what 95% of tasks need is oversized
OVERSIZED = 2.0


def right_size(tasks: Sequence[TaskRow], levels: Mapping[int, Level], start: int) -> Advice:
    done_tasks = [t for t in tasks if t.state == COMPLETED and _completing(t) is not None]
    done_attempts = [a for t in done_tasks if (a := _completing(t)) is not None]
    if not done_attempts:
        return Advice(("no task has completed yet: nothing to size from",), None, None, None, 0)
    rss = _p95([a.max_rss_kb / 1024 for a in done_attempts if a.max_rss_kb])
    elapsed = _p95([a.elapsed_s for a in done_attempts if a.elapsed_s is not None])
    p95_elapsed = None if elapsed is None else math.ceil(elapsed)
    need_mem = None if rss is None else rss * (1 + MEM_HEADROOM)
    need_time = None if elapsed is None else elapsed * (1 + TIME_HEADROOM)
    fits = [lv for lv, res in sorted(levels.items()) if _fits(res, need_mem, need_time)]
    best = fits[0] if fits else None

    measured = []
    if rss is not None:
        measured.append(f"peaked under {fmt.mem(rss, up=True)}")
    if elapsed is not None:
        measured.append(f"ran under {fmt.duration(elapsed, up=True)}")
    head = f"{PERCENTILE}% of tasks {' and '.join(measured) or 'completed'}"
    if best is None:
        top = max(levels) if levels else start
        lines = [f"{head}; no level has room for them: add a level above level {top}"]
    elif best != start:
        lines = [f"{head}; start at level {best} next time"]
    else:
        lines = [f"{head}; level {best} fits them: keep starting at level {best}"]
    lines.extend(_details(done_tasks, done_attempts, levels, start, best, need_mem))
    return Advice(tuple(lines), best, rss, p95_elapsed, len(done_attempts))


def _completing(task: TaskRow) -> AttemptRow | None:
    return next((a for a in reversed(task.attempts) if a.outcome == COMPLETED), None)


def _p95(values: Sequence[float]) -> float | None:
    if not values:
        return None
    sample = sorted(values)
    return sample[max(0, math.ceil(PERCENTILE / 100 * len(sample)) - 1)]


def _fits(res: Level, need_mem: float | None, need_time: float | None) -> bool:
    if need_mem is not None and res.mem_mb is not None and res.mem_mb < need_mem:
        return False
    return not (need_time is not None and res.time_s is not None and res.time_s < need_time)


def _details(
    done_tasks: Sequence[TaskRow],
    attempts: Sequence[AttemptRow],
    levels: Mapping[int, Level],
    start: int,
    best: int | None,
    need_mem: float | None,
) -> list[str]:
    lines = []
    first_try = sum(1 for a in attempts if a.attempt == 1)
    n = len(attempts)
    lines.append(
        f"{first_try} of {n} completed tasks ({fmt.pct(first_try, n)}) "
        f"needed no retry at level {start}"
    )
    if best is not None and best > start:
        climbed = [t for t in done_tasks if len(t.attempts) > 1]
        lost = sum(a.core_s for t in climbed for a in t.attempts if a.outcome != COMPLETED)
        lines.append(
            f"{len(climbed)} of {n} completed tasks had to be retried; their failed attempts "
            f"cost {fmt.core_hours(lost)} core-hours"
        )
    if best is not None and need_mem is not None:
        have = levels[best].mem_mb
        if have is not None and have > OVERSIZED * need_mem:
            lines.append(
                f"level {best}'s {fmt.req(have)} is over {OVERSIZED:g}x what they need: "
                f"{fmt.mem(need_mem, up=True)} would do (MaxRSS + "
                f"{round(MEM_HEADROOM * 100)}%)"
            )
    return lines
