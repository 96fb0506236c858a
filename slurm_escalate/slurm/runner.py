"""Running Slurm commands: the one place that touches ``subprocess``.

Everything above this module talks to a ``CommandRunner``, so tests can swap
in a fake that records argv and returns canned output, and benchmarks can count
how many times ``sacct`` was really called.
"""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from slurm_escalate.errors import SlurmCommandError


@dataclass(frozen=True)
class CommandResult:
    """What a command did. A non-zero ``returncode`` is data, not an exception:
    whether it is an error is the caller's call (scancel and sacct differ)."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


class CommandRunner(Protocol):
    """Runs one command given as an argv list (never a shell string)."""

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float = 60.0,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> CommandResult: ...


class SubprocessRunner:
    """The real runner: ``subprocess.run`` with an argv list and no shell.

    * No shell, ever: job names, script paths and script arguments reach sbatch
      exactly as given, so ``$``, ``;``, quotes and ``*`` need no escaping and
      cannot inject anything.
    * ``stdin`` is ``/dev/null`` so a command that unexpectedly prompts cannot
      hang a daemonised poller.
    * Output is decoded as UTF-8 with ``errors="replace"``: a job name in some
      other encoding must not crash the poll loop. Arguments are ``str`` and
      go through ``os.fsencode``, so surrogate-escaped bytes round-trip.
    * ``env`` is the child's *complete* environment (as with ``subprocess``);
      ``None`` inherits ours.
    * A missing binary, a bad ``cwd`` or a timeout raises SlurmCommandError
      with ``returncode=None``; a non-zero exit is returned in the result.

    ``calls`` counts runs per command name (``sacct``, ``sbatch``...), including
    ones that failed to start, so tests and benchmarks can assert call budgets.
    """

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float = 60.0,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> CommandResult:
        args = tuple(argv)
        if not args:
            raise ValueError("cannot run an empty command")
        if not all(isinstance(a, str) for a in args):
            raise TypeError(f"command arguments must be str: {args!r}")
        self.calls[os.path.basename(args[0])] += 1
        try:
            done = subprocess.run(
                list(args),
                shell=False,
                stdin=subprocess.DEVNULL,
                # Its own session: a Ctrl-C meant for the monitor must not kill an sbatch
                # half-way, which would leave a submission whose fate is unknown.
                start_new_session=True,
                capture_output=True,
                text=True,
                encoding="utf-8",
                errors="replace",
                timeout=timeout,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise SlurmCommandError(
                args, None, f"{args[0]}: no answer after {timeout:g}s (killed)", timed_out=True
            ) from exc
        except FileNotFoundError as exc:
            if cwd is not None and exc.filename == cwd:
                message = f"working directory {cwd!r} does not exist"
            else:
                message = f"{args[0]}: command not found (is Slurm installed and on PATH?)"
            raise SlurmCommandError(args, None, message) from exc
        except OSError as exc:  # permission denied, not executable, ...
            raise SlurmCommandError(args, None, f"{args[0]}: cannot run: {exc}") from exc
        except ValueError as exc:  # e.g. an argument containing a NUL byte
            raise SlurmCommandError(args, None, f"{args[0]}: bad argument: {exc}") from exc
        return CommandResult(args, done.returncode, done.stdout, done.stderr)
