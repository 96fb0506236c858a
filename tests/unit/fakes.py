"""The fakes moved to ``slurm_escalate.testing``; kept so that ``from fakes import ...`` works."""

from __future__ import annotations

from slurm_escalate.testing import Detail, FakeSlurm, FastClock, Job, Outcome, ok

__all__ = ["Detail", "FakeSlurm", "FastClock", "Job", "Outcome", "ok"]
