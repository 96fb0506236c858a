"""Running Slurm commands: the one place that touches ``subprocess``.

Everything above this module talks to a ``CommandRunner``, so tests can swap
in a fake that records argv and returns canned output, and benchmarks can count
how many times ``sacct`` was really called.
"""

from __future__ import annotations

import io
import os
import subprocess
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
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

    def run_lines(
        self,
        argv: Sequence[str],
        on_line: Callable[[str], None],
        *,
        timeout: float = 60.0,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> CommandResult:
        """Like ``run``, but stdout goes to ``on_line`` line by line, never held whole
        (the result's stdout is empty): a poll of a big array is tens of MB of sacct text."""
        ...


def lines_of(
    runner: CommandRunner,
    argv: Sequence[str],
    on_line: Callable[[str], None],
    *,
    timeout: float = 60.0,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
) -> CommandResult:
    """``run_lines`` for a runner that has its output whole anyway (fakes, canned replies)."""
    result = runner.run(argv, timeout=timeout, env=env, cwd=cwd)
    if result.returncode == 0:
        for line in result.stdout.splitlines():
            on_line(line)
    return CommandResult(result.argv, result.returncode, "", result.stderr)


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
        args = self._count(argv)
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
            raise _timed_out(args, timeout) from exc
        except (OSError, ValueError) as exc:
            raise _cannot_start(args, cwd, exc) from exc
        return CommandResult(args, done.returncode, done.stdout, done.stderr)

    def _count(self, argv: Sequence[str]) -> tuple[str, ...]:
        args = tuple(argv)
        if not args:
            raise ValueError("cannot run an empty command")
        if not all(isinstance(a, str) for a in args):
            raise TypeError(f"command arguments must be str: {args!r}")
        self.calls[os.path.basename(args[0])] += 1
        return args

    def run_lines(
        self,
        argv: Sequence[str],
        on_line: Callable[[str], None],
        *,
        timeout: float = 60.0,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> CommandResult:
        """Stream stdout to ``on_line`` (decoded as ``run`` does); stderr is kept whole.

        The same rules as ``run``: no shell, its own session, stdin from /dev/null,
        the same errors. ``on_line`` sees output only while the command runs; if
        it raises, the command is killed and the exception propagates. A command
        still running after ``timeout`` is killed and reported as timed out.
        """
        args = self._count(argv)
        with tempfile.TemporaryFile() as err:
            try:
                proc = subprocess.Popen(
                    list(args),
                    shell=False,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=err,
                    start_new_session=True,
                    env=dict(env) if env is not None else None,
                    cwd=cwd,
                )
            except (OSError, ValueError) as exc:
                raise _cannot_start(args, cwd, exc) from exc
            expired = threading.Event()

            def kill() -> None:
                expired.set()
                proc.kill()

            timer = threading.Timer(timeout, kill)
            timer.start()
            try:
                assert proc.stdout is not None
                with io.TextIOWrapper(proc.stdout, encoding="utf-8", errors="replace") as out:
                    for line in out:
                        on_line(line.rstrip("\n"))
                returncode = proc.wait()
            finally:
                timer.cancel()
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            if expired.is_set():
                raise _timed_out(args, timeout)
            err.seek(0)
            stderr = err.read().decode("utf-8", errors="replace")
        return CommandResult(args, returncode, "", stderr)


def _timed_out(args: tuple[str, ...], timeout: float) -> SlurmCommandError:
    return SlurmCommandError(
        args, None, f"{args[0]}: no answer after {timeout:g}s (killed)", timed_out=True
    )


def _cannot_start(args: tuple[str, ...], cwd: str | None, exc: Exception) -> SlurmCommandError:
    """A command that never ran: a missing binary, a bad cwd, a NUL in an argument..."""
    if isinstance(exc, FileNotFoundError):
        if cwd is not None and exc.filename == cwd:
            return SlurmCommandError(args, None, f"working directory {cwd!r} does not exist")
        message = f"{args[0]}: command not found (is Slurm installed and on PATH?)"
        return SlurmCommandError(args, None, message)
    if isinstance(exc, ValueError):
        return SlurmCommandError(args, None, f"{args[0]}: bad argument: {exc}")
    return SlurmCommandError(args, None, f"{args[0]}: cannot run: {exc}")
