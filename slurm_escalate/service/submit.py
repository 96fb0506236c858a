"""``submit`` (and its ``--dry-run``) and ``resume``: one call each.

Both end in a running monitor, in this process (``run.foreground``) or in a
daemon (``run.detached``); what the user sees meanwhile is the caller's
``MonitorView`` and ``on_started``.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

from loguru import logger

from slurm_escalate.core.chain import Chain
from slurm_escalate.core.events import ChainSet
from slurm_escalate.core.models import ChainState
from slurm_escalate.errors import UsageError
from slurm_escalate.sbatch.plan import FinalSubmission, finalize, plan_first
from slurm_escalate.service.env import Env, chain_clusters, submission_clusters
from slurm_escalate.service.ops import exit_status
from slurm_escalate.service.prepare import (
    AUTO,
    ChainCopy,
    Prepared,
    SubmitOptions,
    build_request,
    chain_copies,
    create_chain,
    make_monitor,
    new_chain,
    plan_context,
    prepare,
    reload,
)
from slurm_escalate.service.redact import mask_command_line
from slurm_escalate.service.run import EXIT_OK, MonitorView, add_file_sink, detached, foreground
from slurm_escalate.state.store import ChainStore


@dataclass(frozen=True)
class SubmitInput:
    tokens: tuple[str, ...]  # [SBATCH OPTIONS...] SCRIPT [ARGS...], as typed
    options: SubmitOptions = field(default_factory=SubmitOptions)
    detached: bool = False
    dry_run: bool = False


@dataclass(frozen=True)
class Started:
    """The first sbatch succeeded (submit) or a monitor is about to take the chain."""

    chain_id: str
    log_path: str
    job_id: str | None = None


@dataclass(frozen=True)
class DryRun:
    """What ``submit`` would do: the chain it would create, the files, the exact sbatch calls."""

    chain_id: str
    chain_dir: str
    copies: tuple[ChainCopy, ...]
    submissions: tuple[FinalSubmission, ...]
    notes: tuple[str, ...] = ()  # how it chose what it would do (--start-level auto)


@dataclass(frozen=True)
class Outcome:
    """A chain that was monitored to its end (or Ctrl-C), or handed to a daemon."""

    chain_id: str
    exit_code: int
    log_path: str | None = None
    job_id: str | None = None  # the first submission's (submit)
    pid: int | None = None  # the daemon's, when detached
    final: Chain | None = None  # resume of a chain that was already final: nothing ran


def _nothing(started: Started) -> None:
    return None


def plan_dry_run(
    prepared: Prepared,
    opts: SubmitOptions,
    store: ChainStore,
    cwd: str,
    now: float,
    chain_id: str,
    notes: tuple[str, ...] = (),
) -> DryRun:
    """The chain ``submit`` would create as ``chain_id`` and its first sbatch calls, exactly."""
    directory = store.chain_dir(chain_id)
    chain = new_chain(prepared, opts, cwd, chain_id, directory, now)
    ctx = plan_context(chain, prepared)
    indices = [t.index for t in chain.tasks if t.index is not None]
    plans = plan_first(ctx, indices)
    finals = tuple(finalize(ctx, p, seq, str(directory)) for seq, p in enumerate(plans, 1))
    copies = tuple(chain_copies(chain, prepared, store))
    return DryRun(chain_id, str(directory), copies, finals, notes)


def submit(
    env: Env,
    inp: SubmitInput,
    view: MonitorView,
    on_started: Callable[[Started], None] = _nothing,
) -> DryRun | Outcome:
    """Validate, create the chain, submit the first attempt, then monitor (or detach)."""
    opts, tokens = inp.options, list(inp.tokens)
    cwd = env.cwd()
    # sbatch -M: every later Slurm call of the chain goes to that cluster (a usage error
    # for a list of clusters, before anything is submitted)
    tokens, clusters = submission_clusters(tokens, build_request(tokens, cwd), env.environ)
    client = env.client(clusters)
    store = env.store
    prepared = prepare(tokens, opts, client, cwd)
    notes: tuple[str, ...] = ()
    if opts.start_level == AUTO:  # from the earlier chains of this script, before any sbatch
        from slurm_escalate.service.suggest import auto_note, auto_start  # only for auto

        prepared, found = auto_start(store, prepared)
        notes = (auto_note(found),)
    now = env.clock.now()
    chain_id = env.new_chain_id(now)
    if inp.dry_run:
        return plan_dry_run(prepared, opts, store, cwd, now, chain_id, notes)
    chain = create_chain(prepared, opts, store, cwd, now, chain_id=chain_id)
    log_path = str(store.log_path(chain.chain_id))
    file_sink = add_file_sink(log_path)
    view.attach()
    command = shlex.join(["sbatch_escalate", *mask_command_line(tokens)])
    logger.info(f"chain {chain.chain_id}: {command} (in {cwd})")
    for note in notes:
        logger.info(note)
    with store.lock(chain.chain_id):
        monitor = make_monitor(chain, prepared, store, client, env.environ, clock=env.clock)
        job_id = monitor.start()
    on_started(Started(chain.chain_id, log_path, job_id))
    if inp.detached:
        view.detach()
        logger.remove(file_sink)
        pid = detached(monitor, store, log_path, cwd)
        return Outcome(chain.chain_id, EXIT_OK, log_path, job_id, pid)
    code = foreground(monitor, store, view, log_path)
    return Outcome(chain.chain_id, code, log_path, job_id)


@dataclass(frozen=True)
class ResumeInput:
    chain_ref: str
    detached: bool = False
    min_poll: float | None = None
    max_poll: float | None = None


def resume(env: Env, inp: ResumeInput, view: MonitorView) -> Outcome:
    """Take a chain over again; a final chain is only reported (``final_state``)."""
    store = env.store
    chain_id = store.resolve(inp.chain_ref)
    with store.lock(chain_id, wait_s=0):  # fail now, not in the daemon, if one runs
        chain = store.load(chain_id)
    polls = ChainSet()
    if inp.min_poll is not None:
        if inp.min_poll <= 0:
            raise UsageError(f"--min-poll must be positive, got {inp.min_poll:g}")
        polls.min_poll, polls.max_poll = inp.min_poll, max(chain.max_poll, inp.min_poll)
    if inp.max_poll is not None:
        polls.max_poll = max(inp.max_poll, polls.min_poll or chain.min_poll)
    if chain.state is not ChainState.RUNNING:
        return Outcome(chain.chain_id, exit_status(chain.state), final=chain)
    client = env.client(chain_clusters(chain))
    prepared = reload(chain, store, client)
    log_path = str(store.log_path(chain.chain_id))
    monitor = make_monitor(chain, prepared, store, client, env.environ, clock=env.clock)
    if polls != ChainSet():
        monitor.book.record(polls)
    if inp.detached:
        pid = detached(monitor, store, log_path, chain.cwd)
        return Outcome(chain.chain_id, EXIT_OK, log_path, pid=pid)
    add_file_sink(log_path)
    view.attach()
    logger.info(f"resuming chain {chain.chain_id}")
    return Outcome(chain.chain_id, foreground(monitor, store, view, log_path), log_path)
