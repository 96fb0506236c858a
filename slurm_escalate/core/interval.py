"""How long to wait before the next poll: pure, so its rules can be tested from a table.

The schedule follows what Slurm does, so that every sacct call has a reason:

1. After failed Slurm commands, back off exponentially (``min_poll * 2**failures``,
   at most ``BACKOFF_CAP``): a struggling slurmdbd should not be hammered.
2. An end nobody can predict (a task fails early, or finishes before its limit)
   is found within the time since the last thing that could have caused it: the
   wait is the time since the last task ended or was submitted (``quiet_since``),
   between ``min_poll`` and ``max_poll``. So the waits double while nothing ends.
   A task that merely *starts* does not restart this clock: starting does not
   change when a task can end.
3. A running task can end TIMEOUT no earlier than its start plus its time limit,
   and Slurm ends it only at its time-limit sweep, which slurmctld runs every
   ``SWEEP_PERIOD`` (30) seconds: the job's End is the sweep's time, and sacct
   shows TIMEOUT at once (KillWait only delays the processes' death, not the
   state). The sweep keeps its phase for tens of minutes (it slips by about a
   second every few minutes), so once one TIMEOUT has been seen on a cluster,
   the next poll is placed ``SWEEP_LAG`` after the first sweep at or after the
   deadline: one poll per timeout. Without a known phase, or when the predicted
   sweep passed and the task still runs (a slipped sweep, or OverTimeLimit), the
   window after the deadline is searched every ``WINDOW_STEP`` seconds (at least
   ``min_poll``), from one step after the deadline until ``OVERDUE_WINDOW`` after
   it; after that the task is one Slurm keeps alive on purpose, and rule 2 alone
   applies. The phase is learned from the End of any TIMEOUT the monitor reads.
4. Never below ``min_poll``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

SWEEP_PERIOD = 30.0  # slurmctld's PERIODIC_TIMEOUT: how often it ends jobs past their limit
SWEEP_LAG = 1.5  # sacct's End has whole seconds; the row is there a moment after the sweep
SWEEP_SLIP_PER_S = 1.0 / 300  # the sweep's phase slips by about 1 s every 5 minutes
SWEEP_TRUST_S = 3600.0  # an older observation is not used
WINDOW_STEP = SWEEP_PERIOD / 4  # polls in the window after a deadline, when the phase is unknown
OVERDUE_WINDOW = SWEEP_PERIOD + 10.0  # past this, Slurm keeps the task alive on purpose
BACKOFF_CAP = 600.0


@dataclass(frozen=True)
class Sweep:
    """One observed time-limit sweep of a cluster: a TIMEOUT's End, and when it was seen.

    Its age counts from the sweep itself: a TIMEOUT read long after it happened (a
    monitor resumed after hours) says little about today's phase."""

    at: float  # epoch seconds of the sweep (a TIMEOUT's End)
    seen: float  # epoch seconds when it was observed (for the log and sweeps.json)

    def lag(self, now: float) -> float:
        """How long after a predicted sweep to poll: the sweep's age widens it."""
        return SWEEP_LAG + max(0.0, now - self.at) * SWEEP_SLIP_PER_S

    def first_after(self, deadline: float) -> float:
        """The first sweep at or after ``deadline`` (phase of this observation)."""
        return self.at + math.ceil((deadline - self.at) / SWEEP_PERIOD) * SWEEP_PERIOD

    def trusted(self, now: float) -> bool:
        return now - self.at < SWEEP_TRUST_S


def latest_sweep(*sweeps: Sweep | None) -> Sweep | None:
    """The most recent of the known sweeps (by the sweep's own time)."""
    known = [s for s in sweeps if s is not None]
    return max(known, key=lambda s: s.at) if known else None


def newer_sweep(known: Sweep | None, ends: Iterable[float], now: float) -> Sweep | None:
    """``known``, or a sweep from the latest TIMEOUT End in ``ends`` when that is newer."""
    latest = max(ends, default=None)
    if latest is None or (known is not None and latest <= known.at):
        return known
    return Sweep(at=latest, seen=now)


def next_poll_interval(
    *,
    now: float,
    quiet_since: float,
    running_deadlines: Iterable[float],
    failures: int,
    min_poll: float,
    max_poll: float,
    sweep: Sweep | None = None,
) -> float:
    """Seconds until the next poll.

    ``quiet_since`` is when a task last ended or was submitted (epoch seconds);
    ``running_deadlines`` are start + time limit of running tasks;
    ``failures`` counts consecutive polls whose Slurm command failed;
    ``sweep`` is an observed time-limit sweep of this cluster, if any.
    """
    max_poll = max(min_poll, max_poll)
    if failures > 0:
        return max(min_poll, min(BACKOFF_CAP, min_poll * 2.0 ** min(failures, 20)))
    wait = min(max_poll, max(min_poll, now - quiet_since))
    if sweep is not None and not sweep.trusted(now):
        sweep = None
    for deadline in running_deadlines:
        wait = min(wait, _until_timeout_check(deadline, now, sweep, min_poll))
    return max(min_poll, wait)


def _until_timeout_check(deadline: float, now: float, sweep: Sweep | None, step: float) -> float:
    """Seconds until the poll that should see this task's TIMEOUT (inf: none due)."""
    if now >= deadline + OVERDUE_WINDOW:
        return math.inf
    if sweep is not None:
        due = sweep.first_after(deadline) + sweep.lag(now)
        if now < due:
            return due - now
    elif now < deadline:  # the first look into the window: one step after the deadline
        return deadline + max(step, WINDOW_STEP) - now
    return max(step, WINDOW_STEP)
