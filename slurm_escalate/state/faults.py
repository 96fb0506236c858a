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

ENV = "SLURM_ESCALATE_CRASH_AT"
POINTS = (
    "before-sbatch",  # the intent is on disk, sbatch has not run
    "after-sbatch",  # sbatch returned a job id that is not recorded yet
    "after-record",  # the job id is recorded
    "mid-save",  # a state file is half written (temporary file, not yet renamed)
    "after-classify",  # tasks classified in memory, nothing saved yet
)
_reached: Counter[str] = Counter()


def crash_point(name: str) -> None:
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    point, _, nth = wanted.partition(":")
    if point != name:
        return
    _reached[name] += 1
    if _reached[name] == (int(nth) if nth.isdigit() else 1):
        os.kill(os.getpid(), signal.SIGKILL)
