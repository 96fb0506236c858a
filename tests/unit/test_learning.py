"""Learning from siblings: the level tasks that failed alike finally needed."""

from __future__ import annotations

import pytest

from slurm_escalate.core.chain import Attempt, TaskStatus
from slurm_escalate.core.learning import levels_needed, sibling_level
from slurm_escalate.core.models import FailureKind, TaskState

OOM, DONE, TIMEOUT = "OUT_OF_MEMORY", "COMPLETED", "TIMEOUT"


def task(*outcomes: tuple[int, str | None]) -> TaskStatus:
    attempts = [Attempt("1", level, n, outcome=o) for n, (level, o) in enumerate(outcomes)]
    return TaskStatus(index=len(outcomes), state=TaskState.RUNNING, attempts=attempts)


TWICE = task((0, OOM), (1, OOM), (2, DONE))
ONCE = task((0, OOM), (1, DONE))
CLIMBING = task((0, OOM), (1, OOM), (2, None))  # still running at 2: needs >= 2
UNKNOWN = task((0, OOM), (1, None))  # no evidence yet
QUICK = task((0, DONE))
SLOW = task((0, TIMEOUT), (1, TIMEOUT), (2, DONE))


def test_levels_needed_per_task() -> None:
    tasks = [TWICE, ONCE, CLIMBING, UNKNOWN, QUICK, SLOW]
    assert levels_needed(tasks, FailureKind.OUT_OF_MEMORY, 0) == [2, 1, 2]
    assert levels_needed(tasks, FailureKind.OUT_OF_MEMORY, 1) == [2]  # CLIMBING: unknown yet
    assert levels_needed(tasks, FailureKind.TIMEOUT, 0) == [2]


@pytest.mark.parametrize(
    ("tasks", "level", "expected"),
    [
        ([TWICE, TWICE], 0, None),  # too little evidence
        ([TWICE, TWICE, CLIMBING], 0, 2),
        ([TWICE, ONCE, ONCE], 0, None),  # most needed only one rung
        ([TWICE, TWICE, ONCE], 0, 2),
        ([TWICE, TWICE, ONCE, ONCE], 0, None),  # a tie: the lower median, one rung
        ([TWICE, TWICE, TWICE, UNKNOWN, UNKNOWN, QUICK], 0, 2),
        ([TWICE, TWICE, TWICE], 1, None),  # from level 1, level 2 is one rung
    ],
)
def test_sibling_level(tasks: list[TaskStatus], level: int, expected: int | None) -> None:
    found = sibling_level(tasks, FailureKind.OUT_OF_MEMORY, level)
    assert (found[0] if found else None) == expected
    if found:
        assert f"at level {level} needed level {expected} or higher" in found[1]


def test_sibling_reason_counts_the_evidence() -> None:
    found = sibling_level([TWICE, TWICE, ONCE], FailureKind.OUT_OF_MEMORY, 0)
    assert found == (2, "2 of 3 tasks that hit OUT_OF_MEMORY at level 0 needed level 2 or higher")
