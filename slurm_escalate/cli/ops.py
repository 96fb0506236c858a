"""Commands that operate on a chain: ``watch``, ``log``, ``cancel``, ``adopt``.

Each parses its options, makes one service call (``service.chains``,
``service.adopt``) and renders what comes back. ``watch`` and ``log`` read the
chain directory only and never call Slurm.
"""

from __future__ import annotations

import shlex
from typing import Any, TextIO

import click

from slurm_escalate.cli import complete
from slurm_escalate.cli.common import HELP, domain_errors, echo, pass_env, verbosity_options
from slurm_escalate.cli.console import Console
from slurm_escalate.cli.live import Screen, block, live_view, terminal
from slurm_escalate.service import adopt as adopting
from slurm_escalate.service import chains
from slurm_escalate.service import prepare as app
from slurm_escalate.service.env import Env

# -------------------------------------------------------------------- watch


class FrameView:
    """On a terminal: one frame redrawn in place by rich, with the bar of tasks finished and
    the ETA under its first line, every line cut to the width (read again every second).
    Otherwise: the frame's plain lines, a new block when something changed."""

    def __init__(self, out: TextIO, live: bool, screen: Screen | None = None) -> None:
        self.out = out
        self.view = live_view(screen or terminal(out), transient=False) if live else None
        self.shown = ""

    def __call__(self, frame: chains.Frame) -> None:
        if self.view is not None:
            self.view.update(block(frame.lines, frame.progress), refresh=self.view.is_started)
            self.view.start(refresh=True)  # the first frame only: started, it returns at once
        elif frame.key != self.shown:
            self.out.write(("\n" if self.shown else "") + "\n".join(frame.lines) + "\n")
            self.out.flush()
            self.shown = frame.key

    def close(self) -> None:
        if self.view is not None:
            self.view.stop()


@click.command("watch", context_settings=HELP)
@click.argument("chain_ref", metavar="CHAIN", shell_complete=complete.chains)
@click.option("--interval", type=float, default=2.0, show_default=True, metavar="SECONDS")
@click.option("--once", is_flag=True, help="Print one frame and exit.")
@click.option("--events", type=int, default=8, show_default=True, help="Recent events shown.")
@pass_env
@domain_errors
def watch(env: Env, chain_ref: str, interval: float, once: bool, events: int) -> int:
    """Live view of CHAIN until it is final: per-level counts, events, monitor health.

    Reads the chain's saved state only: it costs Slurm nothing. Exits with the
    chain's status (0 COMPLETED, 1 FAILED/CANCELLED), 130 on Ctrl-C; with
    --once, 0 while the chain still runs.
    """
    view = FrameView(env.stdout, env.stdout.isatty() and not once)
    try:
        return chains.watch(env, chains.WatchInput(chain_ref, interval, once, events), view)
    finally:
        view.close()


# ---------------------------------------------------------------------- log


@click.command("log", context_settings=HELP)
@click.argument("chain_ref", metavar="CHAIN", shell_complete=complete.chains)
@click.option("-f", "--follow", is_flag=True, help="Keep printing until the chain is final.")
@click.option("-n", "--lines", type=click.IntRange(min=0), metavar="N", help="Last N lines.")
@pass_env
@domain_errors
def log(env: Env, chain_ref: str, follow: bool, lines: int | None) -> int:
    """Print the monitor's log of CHAIN; -f follows it like tail -f.

    With -f, exits with the chain's status once it is final (0 COMPLETED,
    1 FAILED/CANCELLED), 130 on Ctrl-C.
    """

    def write(text: str) -> None:
        env.stdout.write(text)
        env.stdout.flush()

    return chains.log(env, chains.LogInput(chain_ref, follow, lines), write)


# ------------------------------------------------------------------- cancel


@click.command("cancel", context_settings=HELP)
@click.argument("chain_ref", metavar="CHAIN", shell_complete=complete.chains)
@pass_env
@domain_errors
def cancel(env: Env, chain_ref: str) -> int:
    """scancel every live job of CHAIN, stop its monitor and mark it CANCELLED.

    Only the chain's own jobs are cancelled. A chain that is already final is
    left as it is (exit 0).
    """
    echo(env, chains.cancel(env, chains.CancelInput(chain_ref)).message)
    return 0


# -------------------------------------------------------------------- adopt


def _diagnosis_lines(d: adopting.Diagnosis, dry_run: bool) -> list[str]:
    rec = d.recovered
    lines = [
        f"job {d.job_id}: {d.what}, work directory {rec.workdir}",
        f"  recovered: {'; '.join(rec.sources)}",
        f"  command: {shlex.join(['sbatch', *rec.tokens])}",
        f"  policy: {d.policy} (the job ran at level {d.level})",
        *adopting.diagnosis_lines(d.verdicts),
    ]
    for plan in d.plans:
        line = shlex.join(["sbatch", "--parsable", *plan.args])
        lines.append(f"{'would run' if dry_run else 'will run'}: {line}")
    return lines


@click.command("adopt", context_settings=HELP)
@click.argument("job_id", metavar="JOBID")
@click.argument("extra", nargs=-1, type=click.UNPROCESSED, metavar="[-- SBATCH OPTIONS...]")
@click.option(
    "--config",
    metavar="FILE",
    help="Ladder YAML (levels, state_handling).",
    shell_complete=complete.files,
)
@click.option("--dry-run", is_flag=True, help="Print the diagnosis and sbatch lines only.")
@click.option(
    "--script",
    metavar="PATH",
    help="The job script, if it cannot be recovered.",
    shell_complete=complete.files,
)
@click.option(
    "--workdir",
    metavar="DIR",
    help="The job's work directory, if unknown.",
    shell_complete=complete.dirs,
)
@click.option("--detached", is_flag=True, help="Monitor from a daemon that survives logout.")
@click.option(
    "-M",
    "--clusters",
    metavar="CLUSTER",
    help="The cluster the job ran on (as sbatch -M; default: SLURM_CLUSTERS, else the local one).",
)
@click.option("--start-level", type=int, metavar="N", help="Ladder level the job ran at.")
@click.option("--max-level", type=int, metavar="N", help="Highest ladder level to use.")
@click.option("--max-resubmits", type=int, metavar="N", help="Cap on same-level resubmissions.")
@click.option(
    "--min-poll", type=float, default=app.DEFAULT_MIN_POLL, show_default=True, metavar="SECONDS"
)
@verbosity_options
@pass_env
@domain_errors
def adopt(
    env: Env,
    job_id: str,
    extra: tuple[str, ...],
    dry_run: bool,
    script: str | None,
    workdir: str | None,
    detached: bool,
    clusters: str | None,
    verbose: int,
    quiet: int,
    **own: Any,
) -> int:
    """Escalate the failed tasks of JOBID, an array submitted with plain sbatch.

    \b
    Recovers the script, its arguments, the work directory and the resources
    from sacct (SubmitLine, WorkDir) and scontrol (while it knows the job),
    classifies the finished tasks and starts a chain that resubmits only the
    ones that ran out of memory or time.

    \b
    Words after -- are sbatch options added to the recovered ones, then
    optionally SCRIPT [ARGS] replacing the recovered script and arguments.
    Slurm records the command line with spaces between words, so an argument
    that itself held a space comes back split: then give SCRIPT ARGS after --.
    Exit status: as sbatch_escalate's; 0 or 1 at once when nothing is left to do.
    """
    inp = adopting.AdoptInput(
        job_id,
        tuple(extra),
        app.SubmitOptions(**own),
        script,
        workdir,
        detached,
        dry_run,
        clusters,
    )
    console = Console(
        env.stdout, verbose - quiet, live=False if detached else None, clock=env.clock
    )

    def diagnosed(d: adopting.Diagnosis) -> None:
        for line in _diagnosis_lines(d, dry_run):
            echo(env, line)

    def started(chain_id: str, log_path: str) -> None:
        echo(env, f"chain {chain_id}: log {log_path}")

    result = adopting.adopt(env, inp, console, diagnosed, started)
    if result.nothing:
        echo(env, f"job {job_id}: nothing to escalate")
    elif detached and result.pid is not None:
        echo(env, f"chain {result.chain_id}: monitor pid {result.pid}, log {result.log_path}")
    return result.exit_code
