"""Detaching the monitor with python-daemon, so it survives logout.

The caller must learn the daemon's pid, but ``DaemonContext.open()`` ends the
process that calls it (it forks twice and the parents exit). So we fork once
ourselves: the child opens the daemon context and, once it *is* the daemon,
writes its pid into a pipe the original process is waiting on. The original
process then prints the pid and exits, within a second or so.

Signals in the daemon: SIGHUP (logout, closed terminal) is ignored; SIGTERM
and SIGINT stop monitoring cleanly at the next wait, leaving the jobs running.
"""

from __future__ import annotations

import os
import select
import signal
import threading
import time
from collections.abc import Callable

import daemon
from loguru import logger

PID_TIMEOUT_S = 20.0
EXIT_INTERNAL = 70  # EX_SOFTWARE


class DetachError(RuntimeError):
    pass


def detach(run: Callable[[threading.Event], int], *, cwd: str) -> int:
    """Start ``run(stop_event)`` in a daemon process; return the daemon's pid."""
    read_fd, write_fd = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the forked processes
        os.close(read_fd)
        _become_daemon(run, cwd, write_fd)
    os.close(write_fd)
    try:
        pid = _read_pid(read_fd)
    finally:
        os.close(read_fd)
        os.waitpid(child, 0)  # the intermediate process exits as soon as the daemon forks
    return pid


def _become_daemon(
    run: Callable[[threading.Event], int], cwd: str, write_fd: int
) -> None:  # pragma: no cover - runs in the forked processes
    code = EXIT_INTERNAL
    try:
        stop = threading.Event()

        def request_stop(signum: int, frame: object) -> None:
            stop.set()

        umask = os.umask(0o022)
        os.umask(umask)
        context = daemon.DaemonContext(
            working_directory=cwd,
            umask=umask,
            files_preserve=[write_fd],
            detach_process=True,
            signal_map={
                signal.SIGHUP: signal.SIG_IGN,
                signal.SIGTERM: request_stop,
                signal.SIGINT: request_stop,
                signal.SIGTTIN: None,
                signal.SIGTTOU: None,
                signal.SIGTSTP: None,
            },
        )
        context.open()
        os.write(write_fd, f"{os.getpid()}\n".encode())
        os.close(write_fd)
        try:
            code = run(stop)
        except BaseException:
            logger.exception("monitor crashed")
            code = EXIT_INTERNAL
    finally:
        os._exit(code)


def _read_pid(fd: int) -> int:
    deadline = time.monotonic() + PID_TIMEOUT_S
    data = b""
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0:
            raise DetachError("the monitor daemon did not start within 20 s")
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 64)
        if not chunk:
            raise DetachError("the monitor daemon exited before it started")
        data += chunk
    return int(data)
