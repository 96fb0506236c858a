"""The poll-interval rules, from a table (no clock, no sleeping)."""

from __future__ import annotations

import pytest

from slurm_escalate.core.interval import (
    BACKOFF_CAP,
    LIMIT_GRACE,
    OVERDUE_WINDOW,
    next_poll_interval,
)

NOW = 1_000_000.0


@pytest.mark.parametrize(
    ("deadlines", "quiet", "failures", "min_poll", "max_poll", "expected"),
    [
        # nothing running, something just changed: poll again at the floor
        ((), 0, 0, 30, 300, 30),
        # nothing changes for a while (everything pending): the wait grows ...
        ((), 1, 0, 30, 300, 45),
        ((), 3, 0, 30, 300, 101.25),
        # ... up to the ceiling
        ((), 20, 0, 30, 300, 300),
        # a running task can hit its limit in 100 s: poll just after that moment
        ((NOW + 100,), 20, 0, 30, 300, 100 + LIMIT_GRACE),
        # the earliest deadline wins
        ((NOW + 500, NOW + 60, NOW + 900), 20, 0, 30, 300, 60 + LIMIT_GRACE),
        # far from the limit: the deadline does not shorten the wait
        ((NOW + 5000,), 20, 0, 30, 300, 300),
        # never below the floor, even right before a deadline
        ((NOW + 1,), 20, 0, 30, 300, 30),
        # a running task past its limit: Slurm ends it any moment, poll at the floor
        ((NOW - 1,), 20, 0, 30, 300, 30),
        ((NOW - OVERDUE_WINDOW + 1, NOW + 200), 20, 0, 5, 300, 5),
        # a deadline long past (OverTimeLimit keeps it on purpose): the wait grows as usual
        ((NOW - 3600,), 2, 0, 30, 300, 67.5),
        ((NOW - OVERDUE_WINDOW,), 20, 0, 30, 300, 300),
        # Slurm commands failing: exponential back-off from the floor, capped
        ((), 0, 1, 30, 300, 60),
        ((), 0, 3, 30, 300, 240),
        ((), 0, 30, 30, 300, BACKOFF_CAP),
        # tests pass --min-poll 1
        ((), 0, 0, 1, 10, 1),
        ((), 50, 0, 1, 10, 10),
    ],
)
def test_next_poll_interval(deadlines, quiet, failures, min_poll, max_poll, expected):
    got = next_poll_interval(
        now=NOW,
        running_deadlines=deadlines,
        quiet_polls=quiet,
        failures=failures,
        min_poll=min_poll,
        max_poll=max_poll,
    )
    assert got == pytest.approx(expected)
