"""``status``, ``list``, ``watch``, ``log`` and ``cancel``: one call each.

``status``, ``list``, ``watch`` and ``log`` read the chain directory only and
never call Slurm. ``watch`` and ``log -f`` wait on an Event through the Env's
clock, so a test runs them with a fast clock. ``cancel`` makes one ``scancel``
call with the chain's own live jobs.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
from loguru import logger

from slurm_escalate.core.chain import Chain, Headline, LimitWait, limit_waits
from slurm_escalate.core.models import ChainState
from slurm_escalate.engine.submitter import LOOKUP_SLACK_S
from slurm_escalate.errors import EscalateError, StateError, UsageError
from slurm_escalate.reporting.eta import Progress
from slurm_escalate.reporting.summary import summary_progress, waiting_lines, with_waits
from slurm_escalate.sbatch.plan import TOKEN_PREFIX
from slurm_escalate.service.env import Env, chain_clusters
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
from slurm_escalate.service.run import EXIT_INTERRUPTED, add_file_sink
from slurm_escalate.slurm.client import SlurmClient
from slurm_escalate.state.journal import (
    JOURNAL_FILE,
    SNAPSHOT_FILE,
    SPEC_FILE,
    SUMMARY_FILE,
    Summary,
    summarize_chain,
)
from slurm_escalate.state.store import LOG_FILE, STATE_FILE, ChainStore

FOLLOW_S = 0.5  # log -f: how often new lines and the chain state are looked at
FINISH_GRACE_S = 10.0  # log -f: how long a finished monitor may take to write its summary
STOP_WAIT_S = 20.0  # cancel: how long the monitor may take to let go of the chain


# ------------------------------------------------------------------- status


@dataclass(frozen=True)
class StatusInput:
    chain_ref: str
    as_json: bool = False


@dataclass(frozen=True)
class Status:
    summary: Summary  # what plain ``status`` prints
    chain: Chain | None  # the whole chain, with --json only
    log_path: str
    now: float
    monitor: dict[str, Any] | None = None  # with --json: host, pid, alive


def status(env: Env, inp: StatusInput) -> Status:
    """Plain status reads the chain's summary (the same cost at any size); --json loads it."""
    store = env.store
    chain_id = store.resolve(inp.chain_ref)
    log_path = str(store.log_path(chain_id))
    now = env.clock.now()
    if not inp.as_json:
        fresh = store.fresh_summary(chain_id)
        if fresh is not None:
            waits = beat_waits(store.heartbeat(chain_id))
            return Status(with_waits(fresh, waits), None, log_path, now)
    chain = store.load(chain_id)
    monitor = None
    if inp.as_json:
        info = store.monitor_info(chain_id)
        if info is not None:
            monitor = {"host": info[0], "pid": info[1], "alive": store.monitor_alive(chain_id)}
    summary = with_waits(summarize_chain(chain, now), limit_waits(chain))
    return Status(summary, chain, log_path, now, monitor)


def beat_waits(beat: dict[str, Any] | None) -> list[LimitWait]:
    """The levels waiting for a limit, as the monitor's last heartbeat tells them."""
    try:
        return msgspec.convert((beat or {}).get("waiting") or [], list[LimitWait])
    except msgspec.ValidationError:
        return []


# --------------------------------------------------------------------- list


@dataclass(frozen=True)
class ChainRow:
    headline: Headline
    monitor: str  # running, -, elsewhere, dead
    log_path: str


@dataclass(frozen=True)
class ChainList:
    rows: tuple[ChainRow, ...]
    warnings: tuple[str, ...] = ()


def list_chains(env: Env) -> ChainList:
    """Every chain from its summary: the same cost at any task count."""
    store = env.store
    rows, warnings = [], []
    for chain_id in store.chain_ids():
        try:
            head = store.headline(chain_id)
        except EscalateError as e:
            warnings.append(str(e))
            continue
        alive = store.monitor_alive(chain_id)
        monitor = {True: "running", False: "-", None: "elsewhere"}[alive]
        dead = alive is False and head.state is ChainState.RUNNING
        log_path = str(store.chain_dir(chain_id) / LOG_FILE)
        rows.append(ChainRow(head, "dead" if dead else monitor, log_path))
    return ChainList(tuple(rows), tuple(warnings))


# -------------------------------------------------------------------- watch


@dataclass(frozen=True)
class WatchInput:
    chain_ref: str
    interval: float = 2.0
    once: bool = False
    events: int = 8


@dataclass(frozen=True)
class Frame:
    lines: list[str]
    key: str  # changes when something worth a new block changed (not when only time passed)
    progress: Progress | None = None  # tasks finished and the ETA, for a live view's bar


@dataclass
class _Loaded:
    """The chain's summary as last read, and the files' stamp it was read at."""

    stamp: tuple[object, ...]
    summary: Summary


def _stamp(store: ChainStore, chain_id: str) -> tuple[object, ...]:
    """Changes whenever the chain's state files do (the heartbeat aside)."""
    directory = store.chain_dir(chain_id)
    out: list[object] = []
    for name in (SPEC_FILE, JOURNAL_FILE, SNAPSHOT_FILE, SUMMARY_FILE, STATE_FILE):
        try:
            st = (directory / name).stat()
        except OSError:
            out.append(None)
            continue
        out.append((st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)


def _load(store: ChainStore, chain_id: str, last: _Loaded | None, now: float) -> _Loaded:
    """The summary (the same cost at any size); the chain is counted only when it lags."""
    stamp = _stamp(store, chain_id)
    if last is not None and stamp == last.stamp:
        return last  # nothing changed: nothing read
    fresh = store.fresh_summary(chain_id)
    if fresh is None:
        try:
            fresh = summarize_chain(store.load(chain_id), now)
        except StateError:
            if last is None:
                raise
            return last  # mid-replace on a flaky filesystem: show the last good state
    return _Loaded(stamp, fresh)


def _snapshot(store: ChainStore, chain_id: str, events: int, loaded: _Loaded) -> Snapshot:
    tail = read_tail(store.chain_dir(chain_id) / LOG_FILE)
    return Snapshot(
        loaded.summary,
        store.monitor_alive(chain_id),
        store.monitor_info(chain_id),
        store.heartbeat(chain_id),
        recent_events(tail, events),
    )


def watch(
    env: Env, inp: WatchInput, show: Callable[[Frame], None], stop: threading.Event | None = None
) -> int:
    """Show a frame, then one every ``interval`` until the chain is final; its exit status.

    0 COMPLETED, 1 FAILED/CANCELLED, 130 on Ctrl-C; with ``once``, 0 while it runs.
    """
    if inp.interval <= 0:
        raise UsageError(f"--interval must be positive, got {inp.interval:g}")
    store = env.store
    chain_id = store.resolve(inp.chain_ref)
    stop = stop or threading.Event()
    loaded = _load(store, chain_id, None, env.clock.now())
    try:
        while True:
            snap = _snapshot(store, chain_id, inp.events, loaded)
            now = env.clock.now()
            lines = frame(snap, now)
            if snap.summary.state is ChainState.RUNNING:  # below the monitor's line
                waits = waiting_lines(beat_waits(snap.beat), now)
                lines[3:3] = [f"  {line}" for line in waits]
            show(Frame(lines, snap.key(), summary_progress(snap.summary, now)))
            if inp.once or loaded.summary.state is not ChainState.RUNNING:
                break
            if env.clock.wait(stop, inp.interval):
                return EXIT_INTERRUPTED
            loaded = _load(store, chain_id, loaded, env.clock.now())
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    running = loaded.summary.state is ChainState.RUNNING
    return 0 if running else exit_status(loaded.summary.state)


# ---------------------------------------------------------------------- log


@dataclass(frozen=True)
class LogInput:
    chain_ref: str
    follow: bool = False
    lines: int | None = None  # the last N lines only
    poll_s: float = FOLLOW_S


def _copy_new(path: Path, pos: int, write: Callable[[str], None]) -> int:
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
        write(data.decode("utf-8", errors="replace"))
    return pos + len(data)


def _writer_alive(store: ChainStore, chain_id: str) -> bool:
    """Whether the monitor that last beat may still be writing (its summary)."""
    beat = store.heartbeat(chain_id) or {}
    pid = beat.get("pid")
    if not isinstance(pid, int) or beat.get("host") != socket.gethostname():
        return False
    return pid != os.getpid() and is_monitor_process(pid)


def _follow(
    env: Env,
    chain_id: str,
    path: Path,
    pos: int,
    inp: LogInput,
    write: Callable[[str], None],
    stop: threading.Event,
) -> int:
    store = env.store
    finished: float | None = None
    chain = store.load(chain_id)
    while True:
        pos = _copy_new(path, pos, write)
        try:
            chain = store.load(chain_id)
        except StateError:
            pass  # keep the last state read
        if chain.state is not ChainState.RUNNING:
            finished = finished or env.clock.now()
            late = env.clock.now() - finished > FINISH_GRACE_S
            if late or not _writer_alive(store, chain_id):
                _copy_new(path, pos, write)
                return exit_status(chain.state)
        if env.clock.wait(stop, inp.poll_s):
            return EXIT_INTERRUPTED


def log(
    env: Env, inp: LogInput, write: Callable[[str], None], stop: threading.Event | None = None
) -> int:
    """Write the chain's log (or its last lines); with ``follow``, until the chain is final.

    Following exits with the chain's status (0 COMPLETED, 1 FAILED/CANCELLED), 130 on Ctrl-C.
    """
    store = env.store
    chain = store.load(inp.chain_ref)
    path = store.chain_dir(chain.chain_id) / LOG_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = b""
    n = inp.lines
    shown = data if n is None else b"".join(data.splitlines(True)[-n:] if n else [])
    write(shown.decode("utf-8", errors="replace"))
    if not inp.follow:
        return 0
    try:
        return _follow(env, chain.chain_id, path, len(data), inp, write, stop or threading.Event())
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


# ------------------------------------------------------------------- cancel


@dataclass(frozen=True)
class CancelInput:
    chain_ref: str


@dataclass(frozen=True)
class Cancelled:
    chain_id: str
    already: ChainState | None = None  # the chain was final already: nothing was done
    job_ids: tuple[str, ...] = ()  # what scancel was given
    tasks: int = 0  # tasks marked CANCELLED
    stopped: int | None = None  # the monitor's pid, when one was stopped

    @property
    def message(self) -> str:
        if self.already is not None:
            return f"chain {self.chain_id} is already {self.already.value}: nothing to cancel"
        jobs = f"scancel {' '.join(self.job_ids)}" if self.job_ids else "no live job"
        monitor = f"; monitor pid {self.stopped} stopped" if self.stopped else ""
        return (
            f"chain {self.chain_id} CANCELLED: {jobs}; {self.tasks} task(s) marked CANCELLED"
            f"{monitor}"
        )


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


def _gone(env: Env, pid: int, within_s: float) -> None:
    stop = threading.Event()
    deadline = env.clock.now() + within_s
    while env.clock.now() < deadline and is_monitor_process(pid):
        env.clock.wait(stop, 0.1)


def _doubtful_jobs(client: SlurmClient, chain: Chain) -> list[str]:
    """Jobs of submissions whose sbatch was interrupted, found by their token."""
    subs = cancel_plan(chain).doubtful
    tokens = {s.token for s in subs if s.token}
    if not tokens:
        return []
    since = min(s.intent_at for s in subs) - LOOKUP_SLACK_S
    found = client.find_tokens(f"{TOKEN_PREFIX}{chain.chain_id}:", since)
    return [job for token, job in found.items() if token in tokens]


def cancel(env: Env, inp: CancelInput) -> Cancelled:
    """scancel the chain's live jobs, stop its monitor, mark it CANCELLED (idempotent)."""
    store = env.store
    chain = store.load(inp.chain_ref)
    cid = chain.chain_id
    if chain.state is not ChainState.RUNNING:
        return Cancelled(cid, already=chain.state)
    stopped = _stop_monitor(store, cid)
    with ExitStack() as held:
        try:
            held.enter_context(store.lock(cid, wait_s=STOP_WAIT_S if stopped else 2.0))
        except StateError as e:
            raise StateError(f"{e}: stop that monitor first, then cancel again") from None
        chain = store.load(cid)
        if chain.state is not ChainState.RUNNING:
            return Cancelled(cid, already=chain.state)
        client = env.client(chain_clusters(chain))
        job_ids = list(dict.fromkeys(cancel_plan(chain).job_ids + _doubtful_jobs(client, chain)))
        if job_ids:
            client.cancel(job_ids)
        if stopped:
            _gone(env, stopped, 5.0)  # so its last words land in the log before ours
        now = env.clock.now()
        book = store.open_book(cid, now)
        count = len(cancel_plan(book.chain).tasks)
        book.record(*mark_cancelled(book.chain, now))
        book.close()
    result = Cancelled(cid, job_ids=tuple(job_ids), tasks=count, stopped=stopped)
    sink = add_file_sink(str(store.log_path(cid)))
    logger.warning(f"{result.message} (slurm-escalate cancel)")
    logger.remove(sink)
    return result
