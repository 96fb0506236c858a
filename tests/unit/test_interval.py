"""The poll-interval rules, from a table (no clock, no sleeping)."""

from __future__ import annotations

import pytest

from slurm_escalate.core.interval import (
    BACKOFF_CAP,
    OVERDUE_WINDOW,
    SWEEP_LAG,
    SWEEP_PERIOD,
    SWEEP_SLIP_PER_S,
    SWEEP_TRUST_S,
    WINDOW_STEP,
    Sweep,
    latest_sweep,
    newer_sweep,
    next_poll_interval,
)

NOW = 1_000_000.0
SEEN_NOW = Sweep(at=NOW - 5, seen=NOW)  # sweeps at NOW - 5, NOW + 25, NOW + 55, ...
LAG = SWEEP_LAG + 5 * SWEEP_SLIP_PER_S  # its age (5 s) widens the lag a little


@pytest.mark.parametrize(
    ("quiet_for", "deadlines", "failures", "min_poll", "max_poll", "sweep", "expected"),
    [
        # something just ended or was submitted: poll again at the floor
        (0, (), 0, 30, 300, None, 30),
        # nothing has ended for a while: the wait is the time since (doubling) ...
        (45, (), 0, 30, 300, None, 45),
        (101, (), 0, 30, 300, None, 101),
        # ... up to the ceiling
        (5000, (), 0, 30, 300, None, 300),
        # a running task can hit its limit in 100 s; its sweep is not known: the first
        # look is one window step after the deadline (min_poll 30 > the step)
        (5000, (NOW + 100,), 0, 30, 300, None, 130),
        (5000, (NOW + 100,), 0, 2, 300, None, 100 + WINDOW_STEP),
        # the earliest deadline wins
        (5000, (NOW + 500, NOW + 60, NOW + 900), 0, 2, 300, None, 60 + WINDOW_STEP),
        # inside the window after a deadline, unknown phase: every window step ...
        (5000, (NOW - 3,), 0, 2, 300, None, WINDOW_STEP),
        (5000, (NOW - OVERDUE_WINDOW + 1,), 0, 2, 300, None, WINDOW_STEP),
        # ... and never below min_poll
        (5000, (NOW - 3,), 0, 30, 300, None, 30),
        # past the window Slurm keeps the task alive on purpose: the usual growth
        (5000, (NOW - OVERDUE_WINDOW,), 0, 30, 300, None, 300),
        # the sweep's phase is known: one poll just after the first sweep at or
        # after the deadline, however far that is
        (5000, (NOW + 100,), 0, 2, 300, SEEN_NOW, 115 + LAG),
        (5000, (NOW + 25,), 0, 2, 300, SEEN_NOW, 25 + LAG),
        (5000, (NOW + 26,), 0, 2, 300, SEEN_NOW, 55 + LAG),
        # the deadline passed and its sweep is still ahead: wait for it
        (5000, (NOW - 4,), 0, 2, 300, SEEN_NOW, 25 + LAG),
        # the predicted sweep passed and the task still runs (a slip): search
        (5000, (NOW - 6,), 0, 2, 300, Sweep(at=NOW - 6, seen=NOW), WINDOW_STEP),
        # a sweep seen long ago is not trusted
        (5000, (NOW + 100,), 0, 2, 300, Sweep(NOW - 5 - SWEEP_TRUST_S, NOW), 100 + WINDOW_STEP),
        # the earlier of an unpredictable end and a timeout wins
        (4, (NOW + 100,), 0, 2, 300, SEEN_NOW, 4),
        # tests pass --min-poll 1
        (0, (), 0, 1, 10, None, 1),
        (50, (), 0, 1, 10, None, 10),
    ],
)
def test_next_poll_interval(quiet_for, deadlines, failures, min_poll, max_poll, sweep, expected):
    got = next_poll_interval(
        now=NOW,
        quiet_since=NOW - quiet_for,
        running_deadlines=deadlines,
        failures=failures,
        min_poll=min_poll,
        max_poll=max_poll,
        sweep=sweep,
    )
    assert got == pytest.approx(expected)


@pytest.mark.parametrize(
    ("failures", "min_poll", "expected"),
    [(1, 30, 60), (2, 30, 120), (3, 30, 240), (10, 30, BACKOFF_CAP), (1, 1, 2)],
)
def test_failures_back_off_exponentially(failures, min_poll, expected):
    got = next_poll_interval(
        now=NOW,
        quiet_since=NOW,
        running_deadlines=(NOW + 5,),
        failures=failures,
        min_poll=min_poll,
        max_poll=300,
    )
    assert got == pytest.approx(expected)


def test_an_old_observation_is_polled_a_little_later_for_the_slip():
    old = Sweep(at=NOW - 605, seen=NOW - 600)  # ten minutes old: up to 2 s of slip
    got = next_poll_interval(
        now=NOW,
        quiet_since=NOW - 5000,
        running_deadlines=(NOW + 100,),
        failures=0,
        min_poll=2,
        max_poll=300,
        sweep=old,
    )
    assert got == pytest.approx(115 + SWEEP_LAG + 605 * SWEEP_SLIP_PER_S)


def test_first_after_is_the_first_sweep_at_or_after_the_deadline():
    s = Sweep(at=100.0, seen=100.0)
    assert s.first_after(100.0) == 100.0
    assert s.first_after(100.5) == 100.0 + SWEEP_PERIOD
    assert s.first_after(40.0) == 40.0  # phase holds backwards too
    assert s.first_after(41.0) == 70.0


def test_newer_sweep_keeps_the_latest_timeout_end():
    known = Sweep(at=500.0, seen=510.0)
    assert newer_sweep(None, [], 600.0) is None
    assert newer_sweep(known, [], 600.0) is known
    assert newer_sweep(known, [400.0, 500.0], 600.0) is known  # nothing newer
    assert newer_sweep(known, [530.0, 560.0], 600.0) == Sweep(at=560.0, seen=600.0)
    assert newer_sweep(None, [42.0], 600.0) == Sweep(at=42.0, seen=600.0)


def test_latest_sweep_is_the_one_with_the_latest_time():
    a, b = Sweep(at=100.0, seen=500.0), Sweep(at=130.0, seen=140.0)
    assert latest_sweep(None, None) is None
    assert latest_sweep(a, None) is a
    assert latest_sweep(a, b) is b and latest_sweep(b, a) is b


def test_a_timeout_read_long_after_it_happened_is_not_trusted():
    # a monitor resumed after hours reads an old TIMEOUT: its phase may have slipped since
    stale = newer_sweep(None, [NOW - SWEEP_TRUST_S - 1], NOW)
    assert stale is not None and not stale.trusted(NOW)
    got = next_poll_interval(
        now=NOW,
        quiet_since=NOW - 5000,
        running_deadlines=(NOW + 100,),
        failures=0,
        min_poll=2,
        max_poll=300,
        sweep=stale,
    )
    assert got == pytest.approx(100 + WINDOW_STEP)
