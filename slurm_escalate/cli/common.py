"""What every command module shares: exit statuses, one-line domain errors, the Env.

``main``, ``ops`` and ``report`` all import this module and none imports the
others' internals, so there is no cycle between them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from slurm_escalate.engine.daemon import DetachError
from slurm_escalate.errors import EscalateError
from slurm_escalate.service.env import Env

EXIT_OK, EXIT_TASKS_FAILED, EXIT_USAGE, EXIT_SLURM, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
HELP = {"help_option_names": ["-h", "--help"]}
PACKAGE = "slurm-escalate"

#: Passes the command's Env (click's ``ctx.obj``; a default one when none was given).
pass_env = click.make_pass_decorator(Env, ensure=True)


class UsageCliError(click.ClickException):
    exit_code = EXIT_USAGE


class SlurmCliError(click.ClickException):
    exit_code = EXIT_SLURM


def CliError(message: str, exit_code: int) -> click.ClickException:  # noqa: N802
    """A ClickException carrying one of our exit statuses (2 or 3)."""
    return SlurmCliError(message) if exit_code == EXIT_SLURM else UsageCliError(message)


def domain_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Domain errors become one ``prog: error: ...`` line and their exit status."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except EscalateError as e:
            raise CliError(str(e), e.exit_code) from None
        except DetachError as e:
            raise CliError(str(e), EXIT_SLURM) from None

    return wrapper


def echo(env: Env, text: str = "", nl: bool = True) -> None:
    """A line on the command's stdout."""
    click.echo(text, file=env.stdout, nl=nl)


def version_option() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--version``: ``PROG VERSION``, the installed package's version (importlib.metadata).

    Not click.version_option: its callback keeps the first program name and version it
    printed, so the submit command, shared by ``sbatch_escalate`` and ``slurm-escalate
    submit``, would name whichever ran first in a process.
    """

    def show(ctx: click.Context, param: click.Parameter, value: bool) -> None:
        if not value or ctx.resilient_parsing:
            return
        from importlib.metadata import version  # only here: it costs a start 10 ms

        click.echo(f"{ctx.find_root().info_name} {version(PACKAGE)}")
        ctx.exit()

    return click.option(
        "--version",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=show,
        help="Show the version and exit.",
    )


def verbosity_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``-v``/``-q`` (counted) and ``--max-poll``, shared by the commands that monitor."""
    fn = click.option("-q", "--quiet", count=True, help="Less output.")(fn)
    fn = click.option("-v", "--verbose", count=True, help="More output.")(fn)
    return click.option(
        "--max-poll", type=float, metavar="SECONDS", help="Ceiling of the poll interval."
    )(fn)
