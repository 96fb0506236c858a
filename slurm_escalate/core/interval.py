"""How long to wait before the next poll: pure, so its rules can be tested from a table.

The rules, in order:
1. After failed Slurm commands, back off exponentially (``min_poll * 2**failures``,
   at most ``BACKOFF_CAP``): a struggling slurmdbd should not be hammered.
2. Otherwise the wait grows by ``GROWTH`` per poll in which nothing changed and
   resets to ``min_poll`` when something did (a task started, ended, was
   resubmitted), up to ``max_poll``. So a long queue wait or a long run costs
   few sacct calls, and a burst of activity is followed closely.
3. A running task can end TIMEOUT no earlier than its start plus its time limit.
   The next poll is no later than ``LIMIT_GRACE`` after the earliest such
   moment. Slurm then ends it within its time-limit sweep (every 30 s) plus
   KillWait, so while a running task is past its limit by less than
   ``OVERDUE_WINDOW`` the monitor polls at ``min_poll``: a TIMEOUT is noticed
   within one ``min_poll`` of its end. (Past the window, Slurm's OverTimeLimit
   keeps it alive on purpose, and the usual growth applies again.)
4. Never below ``min_poll``.
"""

from __future__ import annotations

from collections.abc import Iterable

GROWTH = 1.5
LIMIT_GRACE = 1.0  # the first poll after the earliest moment a running task can time out
OVERDUE_WINDOW = 120.0  # poll at min_poll while a running task is this far past its limit
BACKOFF_CAP = 600.0


def next_poll_interval(
    *,
    now: float,
    running_deadlines: Iterable[float],
    quiet_polls: int,
    failures: int,
    min_poll: float,
    max_poll: float,
) -> float:
    """Seconds until the next poll.

    ``running_deadlines`` are start + time limit (epoch seconds) of running tasks;
    ``quiet_polls`` counts consecutive polls in which nothing changed;
    ``failures`` counts consecutive polls whose Slurm command failed.
    """
    max_poll = max(min_poll, max_poll)
    if failures > 0:
        return max(min_poll, min(BACKOFF_CAP, min_poll * 2.0 ** min(failures, 20)))
    wait = min(max_poll, min_poll * GROWTH ** min(quiet_polls, 50))
    deadlines = list(running_deadlines)
    if any(d <= now < d + OVERDUE_WINDOW for d in deadlines):
        return min_poll
    future = [d for d in deadlines if d > now]
    if future:
        wait = min(wait, min(future) + LIMIT_GRACE - now)
    return max(min_poll, wait)
