"""One exception hierarchy. Every message is something a user can act on."""

from __future__ import annotations

from collections.abc import Sequence


class EscalateError(Exception):
    """Base of every error this package raises on purpose."""

    exit_code = 2


class UsageError(EscalateError):
    """Bad command line: conflicting, missing or malformed options."""


class ConfigError(EscalateError):
    """A ladder file (or a value in it) is wrong. The message names file, level and key."""


class ScriptError(EscalateError):
    """The job script is missing, unreadable, a directory or not text."""


class ArraySpecError(EscalateError):
    """A malformed ``--array`` specification."""


class SlurmParseError(EscalateError):
    """Slurm printed something we could not understand."""


class SlurmCommandError(EscalateError):
    """A Slurm command failed (non-zero exit, timeout, missing binary)."""

    exit_code = 3

    def __init__(
        self,
        argv: Sequence[str],
        returncode: int | None,
        stderr: str,
        *,
        timed_out: bool = False,
    ) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr.strip()
        # Only a timeout leaves the outcome open: sbatch may have submitted before it hung.
        # A command that could not start, or exited non-zero, did nothing.
        self.timed_out = timed_out
        if timed_out:
            rc = "timed out"
        elif returncode is None:
            rc = "could not run"
        else:
            rc = f"exited {returncode}"
        detail = f": {self.stderr.splitlines()[-1]}" if self.stderr else ""
        super().__init__(f"{self.argv[0]} {rc}{detail}")


class StateError(EscalateError):
    """A chain's state on disk is missing, corrupt, locked or not ours."""
