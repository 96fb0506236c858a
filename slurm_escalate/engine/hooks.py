"""Running the user's hook commands: as the user, never through a shell, with a timeout.

A hook comes only from the ladder file the user passed (kept in the chain's
directory), never from job output or anything Slurm reports. Its output is
logged line by line; a hook that fails or hangs is logged and never stops the
monitor.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Mapping, Sequence
from typing import Protocol

from loguru import logger

MAX_LOGGED_LINES = 50


class HookRunner(Protocol):
    def __call__(
        self, name: str, argv: Sequence[str], *, env: Mapping[str, str], cwd: str, timeout: float
    ) -> int | None: ...


def run_hook(
    name: str, argv: Sequence[str], *, env: Mapping[str, str], cwd: str, timeout: float
) -> int | None:
    """Run one hook; its exit status, or None when it could not run or timed out."""
    logger.info(f"hook {name}: {shlex.join(argv)}")
    try:
        done = subprocess.run(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            start_new_session=True,
        )
    except subprocess.TimeoutExpired:
        logger.warning(f"hook {name}: killed after {timeout:g}s")
        return None
    except OSError as e:
        logger.warning(f"hook {name}: cannot run {argv[0]!r}: {e.strerror}")
        return None
    lines = (done.stdout + done.stderr).splitlines()
    for line in lines[-MAX_LOGGED_LINES:]:
        logger.info(f"hook {name} | {line}")
    log = logger.info if done.returncode == 0 else logger.warning
    log(f"hook {name} exited {done.returncode}")
    return done.returncode
