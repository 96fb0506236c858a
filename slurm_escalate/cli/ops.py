"""Commands that operate on a chain: ``watch``, ``log``, ``cancel``, ``adopt``.

``watch`` and ``log`` read the chain directory only and never call Slurm.
``cancel`` makes one ``scancel`` call with the chain's own live jobs. ``adopt``
turns a plain ``sbatch --array`` job into a chain (see ``adopt.py``).

``cli`` imports this module to register the commands, so ``cli`` is looked up
when a command runs (and ``cli.client_factory`` stays the one tests replace).
"""

from __future__ import annotations

import functools
import os
import shlex
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

import click
from loguru import logger

from slurm_escalate.cli.console import Console, add_file_sink
from slurm_escalate.core.chain import Chain
from slurm_escalate.core.ladder import builtin_policy, check_against_cluster
from slurm_escalate.core.models import ChainState
from slurm_escalate.engine.daemon import detach
from slurm_escalate.engine.submitter import LOOKUP_SLACK_S, TOKEN_PREFIX
from slurm_escalate.errors import ScriptError, StateError, UsageError
from slurm_escalate.sbatch.args import array_spec, effective, load_request, make_request
from slurm_escalate.sbatch.args import requested_level as requested
from slurm_escalate.sbatch.plan import PlanContext, resources_for
from slurm_escalate.service import adopt as adopting
from slurm_escalate.service import prepare as app
from slurm_escalate.service.ops import (
    Snapshot,
    cancel_plan,
    exit_status,
    frame,
    is_monitor_process,
    mark_cancelled,
    read_tail,
    recent_events,
)
from slurm_escalate.slurm.client import SlurmClient
from slurm_escalate.state.ladder_file import load_policy
from slurm_escalate.state.store import LOG_FILE, ChainStore

HELP = {"help_option_names": ["-h", "--help"]}
EXIT_INTERRUPTED = 130
FOLLOW_S = 0.5  # log -f: how often new lines and the chain state are looked at
FINISH_GRACE_S = 10.0  # log -f: how long a finished monitor may take to write its summary
STOP_WAIT_S = 20.0  # cancel: how long the monitor may take to let go of the chain


def _cli() -> ModuleType:
    from slurm_escalate.cli import main as cli

    return cli


def _errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``cli._domain_errors``: domain errors become one line and their exit status."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return _cli()._domain_errors(fn)(*args, **kwargs)

    return wrapper


# -------------------------------------------------------------------- watch


def _snapshot(store: ChainStore, chain_id: str, events: int, last: Snapshot | None) -> Snapshot:
    try:
        chain = store.load(chain_id)
    except StateError:
        if last is None:
            raise
        chain = last.chain  # mid-replace on a flaky filesystem: show the last good state
    tail = read_tail(store.chain_dir(chain_id) / LOG_FILE)
    return Snapshot(
        chain,
        store.monitor_alive(chain_id),
        store.monitor_info(chain_id),
        store.heartbeat(chain_id),
        recent_events(tail, events),
    )


def _redraw(out: TextIO, lines: list[str], drawn: int) -> int:
    width = shutil.get_terminal_size().columns
    if drawn:
        out.write(f"\x1b[{drawn}F\x1b[J")
    out.write("".join(line[: width - 1] + "\n" for line in lines))
    out.flush()
    return len(lines)


@click.command("watch", context_settings=HELP)
@click.argument("chain_ref", metavar="CHAIN")
@click.option("--interval", type=float, default=2.0, show_default=True, metavar="SECONDS")
@click.option("--once", is_flag=True, help="Print one frame and exit.")
@click.option("--events", type=int, default=8, show_default=True, help="Recent events shown.")
@_errors
def watch(chain_ref: str, interval: float, once: bool, events: int) -> int:
    """Live view of CHAIN until it is final: per-level counts, events, monitor health.

    Reads the chain's saved state only: it costs Slurm nothing. Exits with the
    chain's status (0 COMPLETED, 1 FAILED/CANCELLED), 130 on Ctrl-C; with
    --once, 0 while the chain still runs.
    """
    if interval <= 0:
        raise UsageError(f"--interval must be positive, got {interval:g}")
    store = ChainStore()
    chain_id = store.resolve(chain_ref)
    out = sys.stdout
    live = out.isatty() and not once
    snap, drawn, shown = _snapshot(store, chain_id, events, None), 0, ""
    try:
        while True:
            lines = frame(snap, time.time())
            if live:
                drawn = _redraw(out, lines, drawn)
            elif snap.key() != shown:
                out.write(("\n" if shown else "") + "\n".join(lines) + "\n")
                out.flush()
                shown = snap.key()
            if once or snap.chain.state is not ChainState.RUNNING:
                break
            time.sleep(interval)
            snap = _snapshot(store, chain_id, events, snap)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    running = snap.chain.state is ChainState.RUNNING
    return 0 if running else exit_status(snap.chain.state)


# ---------------------------------------------------------------------- log


def _copy_new(path: Path, pos: int) -> int:
    """Write what was appended to ``path`` since byte ``pos``; returns the new end."""
    try:
        with open(path, "rb") as f:
            if f.seek(0, os.SEEK_END) < pos:
                pos = 0  # truncated or replaced: start over
            f.seek(pos)
            data = f.read()
    except FileNotFoundError:
        return pos
    if data:
        sys.stdout.write(data.decode("utf-8", errors="replace"))
        sys.stdout.flush()
    return pos + len(data)


def _writer_alive(store: ChainStore, chain_id: str) -> bool:
    """Whether the monitor that last beat may still be writing (its summary)."""
    beat = store.heartbeat(chain_id) or {}
    pid = beat.get("pid")
    if not isinstance(pid, int) or beat.get("host") != socket.gethostname():
        return False
    return pid != os.getpid() and is_monitor_process(pid)


def _follow(store: ChainStore, chain_id: str, path: Path, pos: int) -> int:
    finished: float | None = None
    chain = store.load(chain_id)
    while True:
        pos = _copy_new(path, pos)
        try:
            chain = store.load(chain_id)
        except StateError:
            pass  # keep the last state read
        if chain.state is not ChainState.RUNNING:
            finished = finished or time.monotonic()
            late = time.monotonic() - finished > FINISH_GRACE_S
            if late or not _writer_alive(store, chain_id):
                _copy_new(path, pos)
                return exit_status(chain.state)
        time.sleep(FOLLOW_S)


@click.command("log", context_settings=HELP)
@click.argument("chain_ref", metavar="CHAIN")
@click.option("-f", "--follow", is_flag=True, help="Keep printing until the chain is final.")
@click.option("-n", "--lines", type=click.IntRange(min=0), metavar="N", help="Last N lines.")
@_errors
def log(chain_ref: str, follow: bool, lines: int | None) -> int:
    """Print the monitor's log of CHAIN; -f follows it like tail -f.

    With -f, exits with the chain's status once it is final (0 COMPLETED,
    1 FAILED/CANCELLED), 130 on Ctrl-C.
    """
    store = ChainStore()
    chain = store.load(chain_ref)
    path = store.chain_dir(chain.chain_id) / LOG_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = b""
    shown = data if lines is None else b"".join(data.splitlines(True)[-lines:] if lines else [])
    sys.stdout.write(shown.decode("utf-8", errors="replace"))
    sys.stdout.flush()
    if not follow:
        return 0
    try:
        return _follow(store, chain.chain_id, path, len(data))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


# ------------------------------------------------------------------- cancel


def _stop_monitor(store: ChainStore, chain_id: str) -> int | None:
    """SIGTERM the chain's monitor when it runs on this host; returns its pid."""
    info = store.monitor_info(chain_id)
    if not store.monitor_alive(chain_id) or info is None or info[1] == os.getpid():
        return None
    if not is_monitor_process(info[1]):
        return None  # a stale pid file: the number now belongs to something else
    try:
        os.kill(info[1], signal.SIGTERM)
    except ProcessLookupError:
        return None
    return info[1]


def _gone(pid: int, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline and is_monitor_process(pid):
        time.sleep(0.1)


def _doubtful_jobs(client: SlurmClient, chain: Chain) -> list[str]:
    """Jobs of submissions whose sbatch was interrupted, found by their token."""
    subs = cancel_plan(chain).doubtful
    tokens = {s.token for s in subs if s.token}
    if not tokens:
        return []
    since = min(s.intent_at for s in subs) - LOOKUP_SLACK_S
    found = client.find_tokens(f"{TOKEN_PREFIX}{chain.chain_id}:", since)
    return [job for token, job in found.items() if token in tokens]


@click.command("cancel", context_settings=HELP)
@click.argument("chain_ref", metavar="CHAIN")
@_errors
def cancel(chain_ref: str) -> int:
    """scancel every live job of CHAIN, stop its monitor and mark it CANCELLED.

    Only the chain's own jobs are cancelled. A chain that is already final is
    left as it is (exit 0).
    """
    store = ChainStore()
    chain = store.load(chain_ref)
    cid = chain.chain_id
    if chain.state is not ChainState.RUNNING:
        click.echo(f"chain {cid} is already {chain.state.value}: nothing to cancel")
        return 0
    stopped = _stop_monitor(store, cid)
    with ExitStack() as held:
        try:
            held.enter_context(store.lock(cid, wait_s=STOP_WAIT_S if stopped else 2.0))
        except StateError as e:
            raise StateError(f"{e}: stop that monitor first, then cancel again") from None
        chain = store.load(cid)
        if chain.state is not ChainState.RUNNING:
            click.echo(f"chain {cid} is already {chain.state.value}: nothing to cancel")
            return 0
        client = _cli().client_factory()
        job_ids = list(dict.fromkeys(cancel_plan(chain).job_ids + _doubtful_jobs(client, chain)))
        if job_ids:
            client.cancel(job_ids)
        if stopped:
            _gone(stopped, 5.0)  # so its last words land in the log before ours
        book = store.open_book(cid, time.time())
        count = len(cancel_plan(book.chain).tasks)
        book.record(*mark_cancelled(book.chain, time.time()))
        book.close()
    jobs = f"scancel {' '.join(job_ids)}" if job_ids else "no live job"
    monitor = f"; monitor pid {stopped} stopped" if stopped else ""
    message = f"chain {cid} CANCELLED: {jobs}; {count} task(s) marked CANCELLED{monitor}"
    sink = add_file_sink(str(store.log_path(cid)))
    logger.warning(f"{message} (slurm-escalate cancel)")
    logger.remove(sink)
    click.echo(message)
    return 0


# -------------------------------------------------------------------- adopt


def _prepare(
    rec: adopting.Recovered, view: adopting.SlurmView, opts: app.SubmitOptions, client: SlurmClient
) -> app.Prepared:
    if rec.script_text is not None:
        request = make_request(rec.tokens, rec.script_text)
    else:
        try:
            request = load_request(rec.tokens, rec.workdir, path_env=os.environ.get("PATH"))
        except ScriptError as e:
            raise ScriptError(f"{e} (looked in {rec.workdir}): pass --script PATH") from None
    base = requested(request)
    if opts.config is not None:
        policy = load_policy(opts.config)
    else:
        policy = builtin_policy(base.mem_mb, base.time_s)
    policy = app.apply_overrides(policy, opts)
    if policy.levels:
        check_against_cluster(policy, client.partitions())
    spec = array_spec(request)
    seen = {r.index for r in view.records if r.index is not None}
    indices = tuple(sorted(seen | set(spec.indices if spec else ())))
    return app.Prepared(
        request=request,
        policy=policy,
        base=base,
        indices=indices if spec or seen else None,
        throttle=spec.throttle if spec else None,
        limits=client.limits(),
        config_path=opts.config,
    )


def _cpus(prepared: app.Prepared, level: int) -> int:
    resources = resources_for(prepared.policy, level, prepared.base)
    text = effective(prepared.request, "cpus-per-task")
    if resources is not None and resources.cpus_per_task:
        return resources.cpus_per_task
    return int(text) if text and text.isdigit() and int(text) > 0 else 1


@click.command("adopt", context_settings=HELP)
@click.argument("job_id", metavar="JOBID")
@click.argument("extra", nargs=-1, type=click.UNPROCESSED, metavar="[-- SBATCH OPTIONS...]")
@click.option("--config", metavar="FILE", help="Ladder YAML (levels, state_handling).")
@click.option("--dry-run", is_flag=True, help="Print the diagnosis and sbatch lines only.")
@click.option("--script", metavar="PATH", help="The job script, if it cannot be recovered.")
@click.option("--workdir", metavar="DIR", help="The job's work directory, if unknown.")
@click.option("--detached", is_flag=True, help="Monitor from a daemon that survives logout.")
@click.option("--start-level", type=int, metavar="N", help="Ladder level the job ran at.")
@click.option("--max-level", type=int, metavar="N", help="Highest ladder level to use.")
@click.option("--max-resubmits", type=int, metavar="N", help="Cap on same-level resubmissions.")
@click.option(
    "--min-poll", type=float, default=app.DEFAULT_MIN_POLL, show_default=True, metavar="SECONDS"
)
@click.option("--max-poll", type=float, metavar="SECONDS", help="Ceiling of the poll interval.")
@click.option("-v", "--verbose", count=True)
@click.option("-q", "--quiet", count=True)
@_errors
def adopt(
    job_id: str,
    extra: tuple[str, ...],
    dry_run: bool,
    script: str | None,
    workdir: str | None,
    detached: bool,
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
    if own["config"] is not None:
        own["config"] = os.path.abspath(own["config"])
    opts = app.SubmitOptions(**own)
    owner = _chain_of(job_id)
    if owner is not None:
        raise UsageError(f"job {job_id} already belongs to chain {owner}: watch or resume that")
    client = _cli().client_factory()
    view = adopting.fetch(client, job_id)
    over = adopting.Overrides(
        os.path.abspath(script) if script else None,
        os.path.abspath(workdir) if workdir else None,
        extra,
    )
    rec = adopting.recover(view, over)
    prepared = _prepare(rec, view, opts, client)
    level = prepared.policy.start_level
    base = adopting.learned_base(prepared.base, view.records, prepared.policy)
    indices = prepared.indices if prepared.indices is not None else (None,)
    verdicts = adopting.diagnose(view.records, indices, prepared.policy, level)
    ctx = PlanContext(
        request=prepared.request,
        policy=prepared.policy,
        base=base,
        chain_id="(new)",
        start_level=level,
        script_path=None,
        throttle=prepared.throttle,
        is_array=prepared.indices is not None,
        max_array_size=prepared.limits.max_array_size,
        initial_job_id=job_id,
    )
    plans = adopting.plan_retries(ctx, verdicts)
    what = f"array of {len(indices)} task(s)" if prepared.indices is not None else "job"
    click.echo(f"job {job_id}: {what}, work directory {rec.workdir}")
    click.echo(f"  recovered: {'; '.join(rec.sources)}")
    click.echo(f"  command: {shlex.join(['sbatch', *rec.tokens])}")
    click.echo(f"  policy: {opts.config or prepared.policy.source} (the job ran at level {level})")
    for line in adopting.diagnosis_lines(verdicts):
        click.echo(line)
    for plan in plans:
        line = shlex.join(["sbatch", "--parsable", *plan.args])
        click.echo(f"{'would run' if dry_run else 'will run'}: {line}")
    if dry_run:
        return 0
    active = any(v.action == "watched" for v in verdicts)
    if not plans and not active:
        click.echo(f"job {job_id}: nothing to escalate")
        return 0 if all(v.action == "done" for v in verdicts) else 1
    return _start(client, prepared, opts, rec, view, detached, verbose - quiet)


def _chain_of(job_id: str) -> str | None:
    """The chain that already submitted or adopted ``job_id``, if any."""
    store = ChainStore()
    for chain_id in store.chain_ids():
        try:
            chain = store.load(chain_id)
        except StateError:
            continue
        if any(s.job_id == job_id for s in chain.submissions):
            return chain_id
    return None


def _start(
    client: SlurmClient,
    prepared: app.Prepared,
    opts: app.SubmitOptions,
    rec: adopting.Recovered,
    view: adopting.SlurmView,
    detached: bool,
    verbosity: int,
) -> int:
    cli, store = _cli(), ChainStore()
    now = time.time()
    chain = app.create_chain(
        prepared, opts, store, rec.workdir, now, created_at=view.submitted_at or now
    )
    monitor = app.make_monitor(chain, prepared, store, client, os.environ)
    events = adopting.record_original(
        chain, view, rec.tokens, _cpus(prepared, chain.start_level)
    )
    monitor.book.record(*events)
    log_path = str(store.log_path(chain.chain_id))
    file_sink = add_file_sink(log_path)
    console = Console(sys.stdout, verbosity, live=False if detached else None)
    console.attach()
    logger.info(f"chain {chain.chain_id}: adopted job {view.job_id} (in {rec.workdir})")
    if detached:
        console.detach()
        logger.remove(file_sink)
        pid = detach(lambda stop: cli._daemon_main(monitor, store, log_path, stop), cwd=chain.cwd)
        click.echo(f"chain {chain.chain_id}: monitor pid {pid}, log {log_path}")
        return 0
    click.echo(f"chain {chain.chain_id}: log {log_path}")
    code: int = cli._foreground(monitor, store, console, log_path)
    return code
