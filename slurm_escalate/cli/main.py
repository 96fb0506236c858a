"""Command line: ``sbatch_escalate`` and the ``slurm-escalate`` group.

Each command builds its objects, makes one library call and renders the
result. Every domain error becomes a single ``prog: error: ...`` line with the
error's exit status (2 for bad input, 3 when Slurm refuses); no tracebacks.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import click
from loguru import logger

from slurm_escalate.arrays.pieces import plan_pieces
from slurm_escalate.cli.console import Console, add_file_sink
from slurm_escalate.cli.redact import mask_command_line
from slurm_escalate.core.chain import Chain
from slurm_escalate.core.events import ChainSet
from slurm_escalate.core.models import ChainState
from slurm_escalate.engine.daemon import DetachError, detach
from slurm_escalate.engine.monitor import Monitor
from slurm_escalate.errors import EscalateError, UsageError
from slurm_escalate.reporting.summary import list_rows, status_json, summary
from slurm_escalate.sbatch.args import build_sbatch_args
from slurm_escalate.service import prepare as app
from slurm_escalate.slurm.client import SlurmClient
from slurm_escalate.state.store import ChainStore


def _default_client() -> SlurmClient:
    """The real client; SLURM_ESCALATE_SBATCH_TIMEOUT (seconds) bounds each sbatch call."""
    raw = os.environ.get("SLURM_ESCALATE_SBATCH_TIMEOUT", "")
    try:
        timeout = float(raw) if raw else 120.0
    except ValueError:
        msg = f"SLURM_ESCALATE_SBATCH_TIMEOUT={raw!r} is not a number of seconds"
        raise UsageError(msg) from None
    return SlurmClient(submit_timeout=timeout)


#: How commands get a Slurm client; tests substitute a fake.
client_factory: Callable[[], SlurmClient] = _default_client

EXIT_OK, EXIT_TASKS_FAILED, EXIT_USAGE, EXIT_SLURM, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

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


class UsageCliError(click.ClickException):
    exit_code = EXIT_USAGE


class SlurmCliError(click.ClickException):
    exit_code = EXIT_SLURM


def CliError(message: str, exit_code: int) -> click.ClickException:  # noqa: N802
    """A ClickException carrying one of our exit statuses (2 or 3)."""
    return SlurmCliError(message) if exit_code == EXIT_SLURM else UsageCliError(message)


def _domain_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except EscalateError as e:
            raise CliError(str(e), e.exit_code) from None
        except DetachError as e:
            raise CliError(str(e), EXIT_SLURM) from None

    wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
    return wrapper


CONTEXT = {
    "help_option_names": ["-h", "--help"],
    "ignore_unknown_options": True,
    "allow_interspersed_args": False,
}


@click.command(
    "submit", context_settings=CONTEXT, help=SUBMIT_HELP, options_metavar="[OWN OPTIONS]"
)
@click.option("--config", metavar="FILE", help="Ladder YAML (levels, state_handling).")
@click.option("--detached", is_flag=True, help="Monitor from a daemon that survives logout.")
@click.option("--max-level", type=int, metavar="N", help="Highest ladder level to use.")
@click.option("--start-level", type=int, metavar="N", help="Ladder level of the first attempt.")
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
)
@_domain_errors
def submit(
    sbatch_args: tuple[str, ...],
    detached: bool,
    dry_run: bool,
    parsable: bool,
    verbose: int,
    quiet: int,
    **own: Any,
) -> int:
    opts = app.SubmitOptions(**own)
    tokens = list(sbatch_args)
    verbosity = verbose - quiet
    client = client_factory()
    store = ChainStore()
    cwd = os.getcwd()
    prepared = app.prepare(tokens, opts, client, cwd)
    if dry_run:
        return _dry_run(prepared)
    chain = app.create_chain(prepared, opts, store, cwd, time.time())
    log_path = str(store.log_path(chain.chain_id))
    file_sink = add_file_sink(log_path)
    out = sys.stderr if parsable else sys.stdout
    console = Console(out, verbosity, live=False if detached else None)
    console.attach()
    command = shlex.join(["sbatch_escalate", *mask_command_line(tokens)])
    logger.info(f"chain {chain.chain_id}: {command} (in {cwd})")
    with store.lock(chain.chain_id):
        monitor = app.make_monitor(chain, prepared, store, client, os.environ)
        job_id = monitor.start()
    if parsable:
        click.echo(chain.chain_id)
        sys.stdout.flush()
    if detached:
        console.detach()
        logger.remove(file_sink)
        pid = detach(lambda stop: _daemon_main(monitor, store, log_path, stop), cwd=cwd)
        info = f"chain {chain.chain_id}: job {job_id}, monitor pid {pid}, log {log_path}"
        click.echo(info, err=parsable)
        return EXIT_OK
    if not parsable:
        click.echo(f"chain {chain.chain_id}: job {job_id}; log {log_path}")
    return _foreground(monitor, store, console, log_path)


def _dry_run(prepared: app.Prepared) -> int:
    from slurm_escalate.arrays.spec import compress, format_array
    from slurm_escalate.sbatch.plan import MAX_SPEC_CHARS, pattern_overrides, resources_for

    policy = prepared.policy
    resources = resources_for(policy, policy.start_level, prepared.base)
    limits = prepared.limits
    pieces = plan_pieces(
        list(prepared.indices or ()), limits.max_array_size, limits.max_array_tasks, MAX_SPEC_CHARS
    )
    if len(pieces) <= 1 and not (pieces and pieces[0].offset):
        args = build_sbatch_args(
            prepared.request,
            resources,
            array=None,
            keep_user_resources=True,
            open_mode_append=False,
        )
        click.echo(shlex.join(["sbatch", "--parsable", *args]))
        return EXIT_OK
    click.echo(f"# the array does not fit one submission: {len(pieces)} sbatch calls")
    for piece in pieces:
        args = build_sbatch_args(
            prepared.request,
            resources,
            array=format_array(compress(piece.slots), prepared.throttle),
            keep_user_resources=True,
            open_mode_append=False,
            overrides=pattern_overrides(prepared.request, piece.offset, limits.max_array_size),
        )
        if piece.offset:
            click.echo(
                f"# indices {compress(piece.indices)} run as array index minus {piece.offset}, "
                "through a generated wrapper that execs the script"
            )
        click.echo(shlex.join(["sbatch", "--parsable", *args]))
    return EXIT_OK


def _foreground(monitor: Monitor, store: ChainStore, console: Console, log_path: str) -> int:
    stop = threading.Event()
    previous = signal.getsignal(signal.SIGINT)

    def on_interrupt(signum: int, frame: object) -> None:
        stop.set()
        signal.signal(signal.SIGINT, previous)  # a second Ctrl-C interrupts at once

    monitor.on_poll = console.on_poll
    signal.signal(signal.SIGINT, on_interrupt)
    try:
        with store.lock(monitor.chain.chain_id):
            state = monitor.run(stop)
    finally:
        signal.signal(signal.SIGINT, previous)
        console.finish()
    return _finish(monitor.chain, state, console, log_path, interrupted=stop.is_set())


def _finish(
    chain: Chain, state: ChainState, console: Console, log_path: str, interrupted: bool
) -> int:
    if interrupted and state is ChainState.RUNNING:
        logger.warning(
            f"stopped monitoring chain {chain.chain_id}; its jobs keep running. "
            f"Pick up again with: slurm-escalate resume {chain.chain_id}"
        )
        return EXIT_INTERRUPTED
    text = summary(chain, time.time(), log_path)
    for line in text.splitlines():
        logger.log("INFO" if state is ChainState.COMPLETED else "WARNING", line)
    return EXIT_OK if state is ChainState.COMPLETED else EXIT_TASKS_FAILED


def _daemon_main(
    monitor: Monitor, store: ChainStore, log_path: str, stop: threading.Event
) -> int:  # pragma: no cover - runs in the daemon
    logger.remove()
    add_file_sink(log_path)
    logger.info(f"monitor daemon started, pid {os.getpid()}")
    with store.lock(monitor.chain.chain_id):
        state = monitor.run(stop)
    if stop.is_set() and state is ChainState.RUNNING:
        logger.warning(
            "monitor stopped by signal; the jobs keep running. "
            f"Pick up again with: slurm-escalate resume {monitor.chain.chain_id}"
        )
        return EXIT_OK
    for line in summary(monitor.chain, time.time()).splitlines():
        logger.info(line)
    return EXIT_OK if state is ChainState.COMPLETED else EXIT_TASKS_FAILED


@click.command("resume", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("chain_ref", metavar="CHAIN")
@click.option("--detached", is_flag=True, help="Monitor from a daemon that survives logout.")
@click.option("--min-poll", type=float, metavar="SECONDS", help="Floor of the poll interval.")
@click.option("--max-poll", type=float, metavar="SECONDS", help="Ceiling of the poll interval.")
@click.option("-v", "--verbose", count=True)
@click.option("-q", "--quiet", count=True)
@_domain_errors
def resume(
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
    store = ChainStore()
    chain = store.load(chain_ref)
    with store.lock(chain.chain_id, wait_s=0):  # fail now, not in the daemon, if one runs
        chain = store.load(chain.chain_id)
    polls = ChainSet()
    if min_poll is not None:
        if min_poll <= 0:
            raise UsageError(f"--min-poll must be positive, got {min_poll:g}")
        polls.min_poll, polls.max_poll = min_poll, max(chain.max_poll, min_poll)
    if max_poll is not None:
        polls.max_poll = max(max_poll, polls.min_poll or chain.min_poll)
    if chain.state is not ChainState.RUNNING:
        click.echo(summary(chain, time.time()))
        return EXIT_OK if chain.state is ChainState.COMPLETED else EXIT_TASKS_FAILED
    client = client_factory()
    prepared = app.reload(chain, store, client)
    log_path = str(store.log_path(chain.chain_id))
    monitor = app.make_monitor(chain, prepared, store, client, os.environ)
    if polls != ChainSet():
        monitor.book.record(polls)
    if detached:
        pid = detach(lambda stop: _daemon_main(monitor, store, log_path, stop), cwd=chain.cwd)
        click.echo(f"chain {chain.chain_id}: monitor pid {pid}, log {log_path}")
        return EXIT_OK
    add_file_sink(log_path)
    console = Console(sys.stdout, verbose - quiet)
    console.attach()
    logger.info(f"resuming chain {chain.chain_id}")
    return _foreground(monitor, store, console, log_path)


@click.command("status", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("chain_ref", metavar="CHAIN")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_domain_errors
def status(chain_ref: str, as_json: bool) -> int:
    """Show where every task of CHAIN stands (id, unique prefix or suffix)."""
    store = ChainStore()
    chain = store.load(chain_ref)
    log_path = str(store.log_path(chain.chain_id))
    if as_json:
        info = store.monitor_info(chain.chain_id)
        monitor = (
            None
            if info is None
            else {"host": info[0], "pid": info[1], "alive": store.monitor_alive(chain.chain_id)}
        )
        click.echo(json.dumps(status_json(chain, log_path, monitor), indent=2))
    else:
        click.echo(summary(chain, time.time(), log_path))
    return EXIT_OK


@click.command("list", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_domain_errors
def list_chains(as_json: bool) -> int:
    """List the chains under the state directory, newest last."""
    store = ChainStore()
    rows = []
    for chain_id in store.chain_ids():
        try:
            chain = store.headline(chain_id)
        except EscalateError as e:
            click.echo(f"warning: {e}", err=True)
            continue
        alive = store.monitor_alive(chain_id)
        monitor = {True: "running", False: "-", None: "elsewhere"}[alive]
        dead = alive is False and chain.state is ChainState.RUNNING
        rows.append((chain, "dead" if dead else monitor))
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "chain_id": c.chain_id,
                        "state": c.state.value,
                        "script": c.script,
                        "tasks": c.tasks,
                        "counts": {k.value: v for k, v in c.counts.items()},
                        "monitor": m,
                        "log_file": str(store.log_path(c.chain_id)),
                    }
                    for c, m in rows
                ],
                indent=2,
            )
        )
    else:
        for line in list_rows(rows):
            click.echo(line)
        for chain, monitor in rows:
            if monitor == "dead":
                click.echo(f"resume with: slurm-escalate resume {chain.chain_id}")
    return EXIT_OK


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """slurm-escalate: Slurm job arrays whose failed tasks climb a resource ladder.

    \b
    Examples:
      slurm-escalate submit --config ladder.yaml --array 0-99 job.sbatch
      slurm-escalate list
      slurm-escalate status 20261122-101500-ab12 --json
    """


cli.add_command(submit)
cli.add_command(list_chains)
cli.add_command(status)
cli.add_command(resume)

from slurm_escalate.cli.ops import adopt, cancel, log, watch  # noqa: E402  (they use cli)

cli.add_command(watch)
cli.add_command(log)
cli.add_command(cancel)
cli.add_command(adopt)
from slurm_escalate.cli.report import report  # noqa: E402

cli.add_command(report)


def _run(command: click.Command, prog: str, args: Sequence[str] | None = None) -> None:
    logger.remove()  # loguru's default stderr sink; each command adds its own
    try:
        rv = command.main(args=args, prog_name=prog, standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as e:
        click.echo(f"{prog}: error: {e.format_message()}", err=True)
        sys.exit(e.exit_code)
    finally:
        logger.remove()  # the command's sinks end with it (they may hold closed streams)
    sys.exit(rv if isinstance(rv, int) else 0)


_OWN_FLAGS = {
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
