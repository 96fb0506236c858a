"""Running a chain's monitor: in the foreground, detached as a daemon, and the daemon's main.

Shared by submit, resume and adopt. The terminal side (a live view or plain
lines) is the caller's ``MonitorView``; the chain's own log is a loguru file
sink written here, in the foreground process and in the daemon alike.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Protocol

from loguru import logger

from slurm_escalate.core.chain import Chain
from slurm_escalate.core.models import ChainState
from slurm_escalate.engine.daemon import detach
from slurm_escalate.engine.monitor import Monitor, PollReport
from slurm_escalate.reporting.summary import summary
from slurm_escalate.service.ops import exit_status
from slurm_escalate.state.store import ChainStore

LOG_FORMAT = "{time:YYYY-MM-DD HH:mm:ss} {level:<7} {message}"
EXIT_OK, EXIT_INTERRUPTED = 0, 130


def add_file_sink(path: str) -> int:
    """Send log events to the chain's log file (every level); returns the sink's id."""
    return logger.add(path, format=LOG_FORMAT, level="DEBUG", enqueue=False)


class MonitorView(Protocol):
    """What the user sees while a monitor runs in this process (cli.console.Console)."""

    def attach(self) -> None: ...

    def detach(self) -> None: ...

    def on_poll(self, chain: Chain, report: PollReport) -> None: ...

    def finish(self) -> None: ...


def foreground(monitor: Monitor, store: ChainStore, view: MonitorView, log_path: str) -> int:
    """Monitor until the chain is final or Ctrl-C (then 130; the jobs keep running)."""
    stop = threading.Event()
    previous = signal.getsignal(signal.SIGINT)

    def on_interrupt(signum: int, frame: object) -> None:
        stop.set()
        signal.signal(signal.SIGINT, previous)  # a second Ctrl-C interrupts at once

    monitor.on_poll = view.on_poll
    signal.signal(signal.SIGINT, on_interrupt)
    try:
        with store.lock(monitor.chain.chain_id):
            state = monitor.run(stop)
    finally:
        signal.signal(signal.SIGINT, previous)
        view.finish()
    chain = monitor.chain
    if stop.is_set() and state is ChainState.RUNNING:
        logger.warning(
            f"stopped monitoring chain {chain.chain_id}; its jobs keep running. "
            f"Pick up again with: slurm-escalate resume {chain.chain_id}"
        )
        return EXIT_INTERRUPTED
    text = summary(chain, monitor.clock.now(), log_path)
    for line in text.splitlines():
        logger.log("INFO" if state is ChainState.COMPLETED else "WARNING", line)
    return exit_status(state)


def daemon_main(
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
    for line in summary(monitor.chain, monitor.clock.now()).splitlines():
        logger.info(line)
    return exit_status(state)


def detached(monitor: Monitor, store: ChainStore, log_path: str, cwd: str) -> int:
    """Start the monitor in a daemon that survives logout; returns its pid."""
    return detach(lambda stop: daemon_main(monitor, store, log_path, stop), cwd=cwd)
