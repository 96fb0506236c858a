"""Command line: ``sbatch_escalate`` and the ``slurm-escalate`` group.

Each command parses its options, makes one service call with the command's
``Env`` (click's ``ctx.obj``: the Slurm client factory, the chain store, the
clock, the environment, stdout) and renders the result. Every domain error
becomes a single ``prog: error: ...`` line with the error's exit status (2 for
bad input, 3 when Slurm refuses); no tracebacks.
"""

from __future__ import annotations

import importlib
import json
import re
import shlex
import sys
from collections.abc import Sequence
from typing import Any

import click
from click.shell_completion import CompletionItem
from loguru import logger

from slurm_escalate.arrays.spec import compress
from slurm_escalate.cli import complete
from slurm_escalate.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    HELP,
    domain_errors,
    echo,
    pass_env,
    verbosity_options,
    version_option,
)
from slurm_escalate.cli.console import Console
from slurm_escalate.reporting.summary import list_rows, status_json, summary, summary_text
from slurm_escalate.sbatch.plan import PlannedFile
from slurm_escalate.service import chains
from slurm_escalate.service import prepare as app
from slurm_escalate.service.env import Env
from slurm_escalate.service.submit import (
    DryRun,
    ResumeInput,
    Started,
    SubmitInput,
)
from slurm_escalate.service.submit import resume as resume_chain
from slurm_escalate.service.submit import submit as submit_chain

SUBMIT_HELP = """Submit a job (array) and move failed tasks up a resource ladder until done.

\b
Usage is sbatch's, with this tool's options first:
  sbatch_escalate [OWN OPTIONS] [SBATCH OPTIONS...] SCRIPT [SCRIPT ARGS...]

\b
Examples:
  sbatch_escalate --config ladder.yaml --array 0-99 job.sbatch
  sbatch_escalate --detached --config ladder.yaml --array 0-99%10 job.sbatch in.txt
  chain=$(sbatch_escalate --parsable --detached --mem 2G -t 1:00:00 job.sbatch)
  sbatch_escalate --dry-run --config ladder.yaml -p day job.sbatch
  sbatch_escalate --start-level auto --config ladder.yaml --array 0-99 job.sbatch

\b
Resources: your --mem/--time/--partition (command line or #SBATCH) apply.
With --config, the start level supplies mem, time, partition (and any other
key it sets) unless you gave that option on the command line; higher levels
always use the ladder's values. Without --config, each escalation doubles
memory and time from what the job asked for, at most 4 times.

\b
Exit status: 0 all tasks completed; 1 some task FAILED, EXHAUSTED or
CANCELLED; 2 usage or config error (nothing submitted); 3 Slurm refused
the first submission; 130 monitoring interrupted (jobs keep running).

Note: -v, -q and -h are this tool's; use sbatch's long forms --qos, --verbose.
"""


class StartLevel(click.ParamType):
    """``--start-level``: a level number, or ``auto`` (sized from the script's history)."""

    name = "level"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int) or value == app.AUTO:
            return value
        try:
            return int(value)
        except ValueError:
            self.fail(f"{value!r} is not a level number or {app.AUTO}", param, ctx)


CONTEXT = {
    "help_option_names": ["-h", "--help"],
    "ignore_unknown_options": True,
    "allow_interspersed_args": False,
}


class SubmitCommand(click.Command):
    """The submit command; shell completion reads its line as ``sbatch_escalate`` does:
    only the leading run of this tool's options is this tool's (``own_options_first``)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if ctx.resilient_parsing:  # completion: the entry points have not split the line
            args = own_options_first(complete.rejoin_equals(args))
        return super().parse_args(ctx, args)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        own = super().shell_complete(ctx, incomplete)
        return complete.submit_option_names(ctx, incomplete, own, "sbatch_args")


@click.command(
    "submit",
    cls=SubmitCommand,
    context_settings=CONTEXT,
    help=SUBMIT_HELP,
    options_metavar="[OWN OPTIONS]",
)
@version_option()
@click.option(
    "--config",
    metavar="FILE",
    help="Ladder YAML (levels, state_handling).",
    shell_complete=complete.files,
)
@click.option("--detached", is_flag=True, help="Monitor from a daemon that survives logout.")
@click.option("--max-level", type=int, metavar="N", help="Highest ladder level to use.")
@click.option(
    "--start-level",
    type=StartLevel(),
    metavar="N|auto",
    help="Ladder level of the first attempt; auto: the lowest that covers 95% of what "
    "earlier chains of this script needed (slurm-escalate suggest), else 0.",
)
@click.option("--max-resubmits", type=int, metavar="N", help="Cap on same-level resubmissions.")
@click.option(
    "--min-poll",
    type=float,
    default=app.DEFAULT_MIN_POLL,
    show_default=True,
    metavar="SECONDS",
    help="Floor of the poll interval.",
)
@click.option(
    "--max-poll",
    type=float,
    metavar="SECONDS",
    help="Ceiling of the poll interval [default: 10 x --min-poll, at most 600].",
)
@click.option(
    "--rounds",
    is_flag=True,
    help="Resubmit a submission's failures only once all its tasks have ended "
    "(like afterany handler jobs); default: as soon as each task fails.",
)
@click.option("--dry-run", is_flag=True, help="Validate and print the sbatch command only.")
@click.option("--parsable", is_flag=True, help="Print only the chain id on stdout.")
@click.option("-v", "--verbose", count=True, help="More output (every poll).")
@click.option("-q", "--quiet", count=True, help="Only warnings and the summary.")
@click.argument(
    "sbatch_args",
    nargs=-1,
    type=click.UNPROCESSED,
    metavar="[SBATCH OPTIONS...] SCRIPT [SCRIPT ARGS...]",
    shell_complete=complete.sbatch_words,
)
@pass_env
@domain_errors
def submit(
    env: Env,
    sbatch_args: tuple[str, ...],
    detached: bool,
    dry_run: bool,
    parsable: bool,
    verbose: int,
    quiet: int,
    **own: Any,
) -> int:
    inp = SubmitInput(tuple(sbatch_args), app.SubmitOptions(**own), detached, dry_run)
    out = sys.stderr if parsable else env.stdout
    console = Console(out, verbose - quiet, live=False if detached else None, clock=env.clock)

    def started(s: Started) -> None:
        if parsable:
            echo(env, s.chain_id)
            env.stdout.flush()
        elif not detached:  # through the live view, which wraps it to the terminal's width
            console.echo(f"chain {s.chain_id}: job {s.job_id}; log {s.log_path}")

    result = submit_chain(env, inp, console, started)
    if isinstance(result, DryRun):
        for line in dry_run_lines(result):
            echo(env, line)
        return EXIT_OK
    if detached:
        info = (
            f"chain {result.chain_id}: job {result.job_id}, monitor pid {result.pid}, "
            f"log {result.log_path}"
        )
        click.echo(info, file=sys.stderr if parsable else env.stdout)
    return result.exit_code


_FILE_KINDS = {
    "unclashed": "a copy of the script without the #SBATCH directives that clash with --mem",
    "wrapper": "the wrapper that runs the task under its array slot",
}


def _file_line(file: PlannedFile) -> str:
    if file.content is None:
        return f"# would make {file.path} executable (mode {file.mode:o})"
    return f"# would write {file.path}: {_FILE_KINDS.get(file.kind, file.kind)}"


def dry_run_lines(dry: DryRun) -> list[str]:
    """What --dry-run prints: the chain and files it would create, each sbatch argv exactly."""
    lines = [f"# {note}" for note in dry.notes]
    lines.append(f"# would create chain {dry.chain_id} in {dry.chain_dir}")
    lines += [f"# would write {c.path}: a copy of {c.source}" for c in dry.copies]
    subs = dry.submissions
    if len(subs) > 1 or subs[0].plan.offset:
        lines.append(f"# the array does not fit one submission: {len(subs)} sbatch calls")
    for sub in subs:
        if sub.plan.offset:
            lines.append(
                f"# indices {compress(sub.plan.indices or ())} run as array index minus "
                f"{sub.plan.offset}, through a generated wrapper that execs the script"
            )
        lines += [_file_line(f) for f in sub.files]
        lines.append(shlex.join(["sbatch", "--parsable", *sub.args]))
    return lines


@click.command("resume", context_settings=HELP)
@click.argument("chain_ref", metavar="CHAIN", shell_complete=complete.chains)
@click.option("--detached", is_flag=True, help="Monitor from a daemon that survives logout.")
@click.option("--min-poll", type=float, metavar="SECONDS", help="Floor of the poll interval.")
@verbosity_options
@pass_env
@domain_errors
def resume(
    env: Env,
    chain_ref: str,
    detached: bool,
    min_poll: float | None,
    max_poll: float | None,
    verbose: int,
    quiet: int,
) -> int:
    """Take over CHAIN after Ctrl-C, a crash, a reboot or a stopped daemon.

    Submissions interrupted inside sbatch are looked up in Slurm by the token
    on the job before anything is resubmitted; tasks that ended while no
    monitor ran are classified and escalated as usual.
    """
    console = Console(env.stdout, verbose - quiet, clock=env.clock)
    inp = ResumeInput(chain_ref, detached, min_poll, max_poll)
    result = resume_chain(env, inp, console)
    if result.final is not None:
        echo(env, summary(result.final, env.clock.now()))
    elif detached:
        echo(env, f"chain {result.chain_id}: monitor pid {result.pid}, log {result.log_path}")
    return result.exit_code


@click.command("status", context_settings=HELP)
@click.argument("chain_ref", metavar="CHAIN", shell_complete=complete.chains)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_env
@domain_errors
def status(env: Env, chain_ref: str, as_json: bool) -> int:
    """Show where every task of CHAIN stands (id, unique prefix or suffix)."""
    found = chains.status(env, chains.StatusInput(chain_ref, as_json))
    if as_json:
        assert found.chain is not None  # --json loads the whole chain
        echo(env, json.dumps(status_json(found.chain, found.log_path, found.monitor), indent=2))
    else:
        echo(env, summary_text(found.summary, found.now, found.log_path))
    return EXIT_OK


@click.command("list", context_settings=HELP)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_env
@domain_errors
def list_chains(env: Env, as_json: bool) -> int:
    """List the chains under the state directory, newest last."""
    listed = chains.list_chains(env)
    for warning in listed.warnings:
        click.echo(f"warning: {warning}", err=True)
    if as_json:
        data = [
            {
                "chain_id": r.headline.chain_id,
                "state": r.headline.state.value,
                "script": r.headline.script,
                "tasks": r.headline.tasks,
                "counts": {k.value: v for k, v in r.headline.counts.items()},
                "monitor": r.monitor,
                "log_file": r.log_path,
            }
            for r in listed.rows
        ]
        echo(env, json.dumps(data, indent=2))
        return EXIT_OK
    for line in list_rows([(r.headline, r.monitor) for r in listed.rows]):
        echo(env, line)
    for row in listed.rows:
        if row.monitor == "dead":
            echo(env, f"resume with: slurm-escalate resume {row.headline.chain_id}")
    return EXIT_OK


class LazyGroup(click.Group):
    """A group whose less used commands are imported only when run (or listed): the
    monitor's process never loads the report renderers, adopt or suggest."""

    LAZY = {
        "watch": "slurm_escalate.cli.ops:watch",
        "log": "slurm_escalate.cli.ops:log",
        "cancel": "slurm_escalate.cli.ops:cancel",
        "adopt": "slurm_escalate.cli.ops:adopt",
        "report": "slurm_escalate.cli.report:report",
        "suggest": "slurm_escalate.cli.suggest:suggest",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.LAZY})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.LAZY:
            module, name = self.LAZY[cmd_name].split(":")
            command: click.Command = getattr(importlib.import_module(module), name)
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings=HELP)
@version_option()
def cli() -> None:
    """slurm-escalate: Slurm job arrays whose failed tasks climb a resource ladder.

    \b
    Examples:
      slurm-escalate submit --config ladder.yaml --array 0-99 job.sbatch
      slurm-escalate list
      slurm-escalate status 20261122-101500-ab12 --json
      slurm-escalate suggest job.sbatch
    """


for _command in (submit, list_chains, status, resume):
    cli.add_command(_command)


def _run(
    command: click.Command, prog: str, args: Sequence[str] | None = None, env: Env | None = None
) -> None:
    """Run one command with ``env`` (a default Env: the real Slurm, clock and environment)."""
    logger.remove()  # loguru's default stderr sink; each command adds its own
    try:
        rv = command.main(args=args, prog_name=prog, standalone_mode=False, obj=env or Env())
    except click.exceptions.Abort:
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as e:
        click.echo(f"{prog}: error: {e.format_message()}", err=True)
        sys.exit(e.exit_code)
    finally:
        logger.remove()  # the command's sinks end with it (they may hold closed streams)
    sys.exit(rv if isinstance(rv, int) else 0)


_OWN_FLAGS = {
    "--version",
    "--detached",
    "--dry-run",
    "--parsable",
    "--rounds",
    "--verbose",
    "--quiet",
    "-h",
    "--help",
}
_OWN_WITH_VALUE = {
    "--config",
    "--max-level",
    "--start-level",
    "--max-resubmits",
    "--min-poll",
    "--max-poll",
}


def own_options_first(args: Sequence[str]) -> list[str]:
    """Only the leading run of this tool's options is ours; the rest is sbatch's.

    click would go on recognising our options after an unknown (sbatch) one, so
    ``--job-name=x --detached job.sh`` would detach instead of being refused.
    A ``--`` after our options makes click hand everything else over verbatim.
    """
    args = list(args)
    i = 0
    while i < len(args):
        token = args[i]
        name = token.split("=", 1)[0]
        if token in _OWN_FLAGS or re.fullmatch(r"-[vq]+", token):
            i += 1
        elif name in _OWN_WITH_VALUE:
            i += 1 if "=" in token else 2
        else:
            break
    if i >= len(args) or args[i] == "--":
        return args
    return [*args[:i], "--", *args[i:]]


def sbatch_escalate_main() -> None:
    _run(submit, "sbatch_escalate", own_options_first(sys.argv[1:]))


def main() -> None:
    args = sys.argv[1:]
    if args and args[0] == "submit":
        args = ["submit", *own_options_first(args[1:])]
    _run(cli, "slurm-escalate", args)


if __name__ == "__main__":  # pragma: no cover
    main()
