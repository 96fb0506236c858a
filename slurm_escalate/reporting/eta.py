"""How far a chain has come and when it may end: pure, from counts and times alone.

A task is *finished* once it is final: completed, or given up (failed, exhausted,
cancelled). The ETA is the pace so far carried forward: the tasks still to finish
at the rate tasks have finished since the chain was created. Until one task has
finished there is no pace to go by, and the ETA is unknown rather than a guess.
The foreground monitor and ``watch`` both compute it here, from what each has at
hand (the chain, or its summary), so both show the same figure.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from slurm_escalate.core.models import TaskState


class Progress(msgspec.Struct, frozen=True):
    """Tasks finished out of the total, and the seconds left (None: no evidence yet)."""

    total: int
    finished: int  # completed or given up
    eta_s: float | None = None


def finished_tasks(counts: Mapping[TaskState, int]) -> int:
    """Tasks that will not run again: completed, failed, exhausted or cancelled."""
    return sum(n for state, n in counts.items() if state.is_final)


def eta_seconds(total: int, finished: int, elapsed_s: float) -> float | None:
    """Seconds until the last task finishes at the pace so far; None without evidence.

    ``elapsed_s`` is the time since the chain was created. With nothing finished,
    or no time elapsed (a clock set back, a chain of another host), there is no
    pace to go by.
    """
    left = max(0, total - finished)
    if left == 0:
        return 0.0
    if finished <= 0 or elapsed_s <= 0:
        return None
    return left * elapsed_s / finished


def progress(
    total: int, counts: Mapping[TaskState, int], started_at: float, now: float, running: bool
) -> Progress:
    """The progress of a chain; only a running chain has an ETA."""
    finished = finished_tasks(counts)
    eta = eta_seconds(total, finished, now - started_at) if running else None
    return Progress(total, finished, eta)
