"""Where a task's log is, and its last lines (reads the file system).

The file name is the user's ``--output`` (command line, else the ``#SBATCH``
line of the saved script copy; default ``slurm-%A_%a.out`` for an array,
``slurm-%j.out`` otherwise), expanded the way slurmd does for the batch step,
relative to ``--chdir`` or else the directory the chain was submitted from.
An array task's own job id (``%j``, ``%J``) is not recorded, so a name using it
cannot be known. Resubmissions append (``--open-mode=append``), so the last
lines are the last attempt's.
"""

from __future__ import annotations

import getpass
import os
import re
from collections import deque
from pathlib import Path

from slurm_escalate.core.chain import Attempt, Chain
from slurm_escalate.errors import EscalateError
from slurm_escalate.reporting.model import LogTail
from slurm_escalate.sbatch.args import JobRequest, effective, make_request

TAIL_LINES = 5
NO_ARRAY_INDEX = 4294967294  # what %a becomes outside an array (NO_VAL)
_PATTERN = re.compile(r"%(\d*)(.)")


def request_of(chain: Chain) -> JobRequest | None:
    """The chain's sbatch request, or None when it cannot be rebuilt."""
    tokens = [*chain.sbatch_args, *([chain.script] if chain.script else []), *chain.script_args]
    text = None
    if chain.script is not None:
        try:
            text = Path(chain.script_copy or "").read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
    try:
        return make_request(tokens, text)
    except (EscalateError, ValueError):
        return None


def expand_pattern(
    pattern: str,
    *,
    job_name: str,
    array_job_id: str,
    index: int | None,
    node: str | None = None,
    user: str | None = None,
) -> str | None:
    """A filename pattern filled in for one task; None when it needs what is unknown."""
    if "\\" in pattern:  # sbatch: a backslash turns every replacement off
        return pattern.replace("\\", "")
    unknown = False

    def one(m: re.Match[str]) -> str:
        nonlocal unknown
        width, ch = m.group(1), m.group(2)
        pad = int(width) if width else 0
        if ch == "%":
            return "%"
        if ch == "x":
            return job_name
        if ch == "u" and user:
            return user
        if ch == "A":
            return array_job_id.zfill(pad)
        if ch == "a":
            return str(NO_ARRAY_INDEX if index is None else index).zfill(pad)
        if ch == "j" and index is None:
            return array_job_id.zfill(pad)
        if ch in "nt":
            return "0".zfill(pad)
        if ch == "N" and node:
            return node.split(",")[0]
        unknown = True
        return m.group(0)

    path = _PATTERN.sub(one, pattern)
    return None if unknown else path


def log_path(
    chain: Chain, request: JobRequest | None, index: int | None, attempt: Attempt
) -> str | None:
    output = effective(request, "output") if request else None
    if output is None:
        output = "slurm-%j.out" if index is None else "slurm-%A_%a.out"
    name = effective(request, "job-name") if request else None
    if not name:
        name = os.path.basename(chain.script) if chain.script else "wrap"
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = None
    path = expand_pattern(
        output,
        job_name=name,
        array_job_id=attempt.job_id,
        index=index,
        node=attempt.node,
        user=user,
    )
    if path is None:
        return None
    chdir = effective(request, "chdir") if request else None
    base = os.path.join(chain.cwd, chdir) if chdir else chain.cwd
    return os.path.normpath(os.path.join(base, path))


def tail(path: str | None, lines: int = TAIL_LINES) -> LogTail:
    if path is None:
        return LogTail(None, None, "log name unknown (it uses the task's own job id)")
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            last = deque((line.rstrip("\n") for line in f), maxlen=lines)
    except OSError as e:
        return LogTail(path, None, f"log not readable ({e.strerror or e})")
    return LogTail(path, tuple(last))


def task_logs(chain: Chain, indices: list[int | None]) -> dict[int | None, LogTail]:
    request = request_of(chain)
    out = {}
    for index in indices:
        task = chain.task(index)
        if task.current is None:
            continue
        out[index] = tail(log_path(chain, request, index, task.current))
    return out
