"""What a command needs from the outside world, in one object.

The CLI builds one ``Env`` per command and hands it to the service through
click's context object (``ctx.obj``); tests build their own with a fake Slurm,
a fast clock, a fixed chain id. Nothing here is a module global.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TextIO

from slurm_escalate.engine.submitter import Clock
from slurm_escalate.errors import UsageError
from slurm_escalate.slurm.client import SlurmClient, SlurmCommands
from slurm_escalate.state.store import ChainStore, default_home, new_chain_id

SBATCH_TIMEOUT_ENV = "SLURM_ESCALATE_SBATCH_TIMEOUT"


def default_client(environ: Mapping[str, str]) -> SlurmClient:
    """The real client; SLURM_ESCALATE_SBATCH_TIMEOUT (seconds) bounds each sbatch call."""
    raw = environ.get(SBATCH_TIMEOUT_ENV, "")
    try:
        timeout = float(raw) if raw else 120.0
    except ValueError:
        msg = f"{SBATCH_TIMEOUT_ENV}={raw!r} is not a number of seconds"
        raise UsageError(msg) from None
    return SlurmCommands(submit_timeout=timeout)


@dataclass
class Env:
    """The Slurm client factory, the state directory, the clock, the environment, stdout."""

    client_factory: Callable[[], SlurmClient] | None = None  # None: the real client
    home: Path | None = None  # None: $SLURM_ESCALATE_HOME or the XDG state directory
    clock: Clock = field(default_factory=Clock)
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    new_chain_id: Callable[[float], str] = new_chain_id
    cwd: Callable[[], str] = os.getcwd

    def client(self) -> SlurmClient:
        if self.client_factory is not None:
            return self.client_factory()
        return default_client(self.environ)

    @cached_property
    def store(self) -> ChainStore:
        """The chain store (StateError when no state directory can be named)."""
        return ChainStore(self.home if self.home is not None else default_home(dict(self.environ)))
