"""Crash points for fault-injection tests: the monitor kills itself at a named step.

``SLURM_ESCALATE_CRASH_AT=after-sbatch`` (or ``after-sbatch:2`` for the second
time that step is reached) makes the process SIGKILL itself there, so a test can
prove that ``resume`` recovers from a crash at every step of a poll/submit cycle.
Nothing else reads the variable; unset, a crash point costs one dict lookup.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Callable

ENV = "SLURM_ESCALATE_CRASH_AT"
POINTS = (
    "before-sbatch",  # the intent is on disk, sbatch has not run
    "after-sbatch",  # sbatch returned a job id that is not recorded yet
    "after-record",  # the job id is recorded
    "mid-save",  # a state file is half written (temporary file, not yet renamed)
    "after-classify",  # tasks classified in memory, nothing saved yet
    "mid-append",  # half of a journal append is on disk (a torn last line)
    "mid-compaction",  # a snapshot is being made, nothing of it renamed into place
    "after-snapshot",  # the snapshot is in place, the journal not yet restarted
)
_reached: Counter[str] = Counter()


def crash_point(name: str, last_words: Callable[[], object] | None = None) -> None:
    """SIGKILL this process here if the test asked for it (``last_words`` runs first:
    a half-written append, say)."""
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    point, _, nth = wanted.partition(":")
    if point != name:
        return
    _reached[name] += 1
    if _reached[name] == (int(nth) if nth.isdigit() else 1):
        if last_words is not None:
            last_words()
        os.kill(os.getpid(), signal.SIGKILL)
