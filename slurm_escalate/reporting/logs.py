"""Where a task's log is, and its last lines (reads the file system).

The file name is the user's ``--output`` (command line, else the ``#SBATCH``
line of the saved script copy; default ``slurm-%A_%a.out`` for an array,
``slurm-%j.out`` otherwise), expanded the way slurmd does for the batch step,
relative to ``--chdir`` or else the directory the chain was submitted from.
An array task's own job id (``%j``, ``%J``) is not recorded, so a name using it
cannot be known. Resubmissions append (``--open-mode=append``), so the last
lines are the last attempt's.

slurmstepd writes its own notices into the log: the time-limit and cancel lines
(``*** JOB 220 ON d2 CANCELLED AT ... DUE TO TIME LIMIT ***``) and the OOM line
(``Detected 1 oom_kill event in StepId=7.batch ...``). Up to 24.11 they start
with ``slurmstepd-NODE: error:``; 26.05 starts them with a timestamp instead,
``[2026-12-02T16:17:24.007] error:``; 22.05 spells the OOM line ``oom-kill
event(s)``. ``slurm_notice`` reads every form (the recorded logs of each release
are in tests/unit/data/<release>/job_log_*.txt), and ``tail`` keeps the last
attempt's last notice in view when the program printed more after it.
"""

from __future__ import annotations

import getpass
import os
import re
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from slurm_escalate.core.chain import Attempt, Chain
from slurm_escalate.errors import EscalateError
from slurm_escalate.reporting.model import LogTail
from slurm_escalate.sbatch.args import JobRequest, effective, make_request

TAIL_LINES = 5
NO_ARRAY_INDEX = 4294967294  # what %a becomes outside an array (NO_VAL)
_PATTERN = re.compile(r"%(\d*)(.)")

# "slurmstepd-NODE: " (also "slurmstepd: ") up to 24.11; "[<log time>] " from 26.05 on,
# whatever LogTimeFormat makes of the time. Then the log level and the message.
_NOTICE = re.compile(
    r"(?:slurmstepd(?:-[^\s:]+)?: |\[[^\]\s][^\]]*\] )(?:error|warning|fatal): (?P<text>.+)"
)
_STAR = re.compile(
    r"\*\*\* (?:JOB|STEP) (?P<job>\d+)\S* ON \S+ CANCELLED AT \S+(?P<why>.*?) \*\*\*"
)
_OOM = re.compile(r"Detected \d+ oom[-_]kill event.*? in StepId=(?P<job>\d+)")
_WHY = {
    "DUE TO TIME LIMIT": "TIMEOUT",
    "DUE TO PREEMPTION": "PREEMPTED",
    "DUE TO NODE FAILURE": "NODE_FAIL",
}


@dataclass(frozen=True)
class SlurmNotice:
    """A line slurmstepd wrote into a job's log."""

    kind: str  # TIMEOUT, OUT_OF_MEMORY, CANCELLED, PREEMPTED, NODE_FAIL, or OTHER
    job_id: int | None  # the job id Slurm named (an array task's own id), when it names one
    text: str  # the message, without the release-specific prefix


def slurm_notice(line: str) -> SlurmNotice | None:
    """The notice in one log line, in the form of any release; None for the program's own lines."""
    if "error: " not in line and "warning: " not in line and "fatal: " not in line:
        return None  # the common case, decided without a regex
    m = _NOTICE.fullmatch(line.rstrip("\r\n"))
    if m is None:
        return None
    text = m.group("text")
    if (star := _STAR.search(text)) is not None:
        kind = _WHY.get(star.group("why").strip(), "CANCELLED")
        return SlurmNotice(kind, int(star.group("job")), text)
    if (oom := _OOM.search(text)) is not None:
        return SlurmNotice("OUT_OF_MEMORY", int(oom.group("job")), text)
    return SlurmNotice("OTHER", None, text)


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


def tail(path: str | None, lines: int = TAIL_LINES, job_id: str | None = None) -> LogTail:
    """The last ``lines`` lines of the log.

    With ``job_id`` (the last attempt's job id), Slurm's last notice about that
    attempt (time limit, OOM, cancel) is shown first when it is older than those
    lines, followed by a line saying how many lines were left out. A notice
    belongs to the attempt when the job id it names is not below ``job_id``:
    the tasks of an array get ids from the array's own id upwards, and every
    earlier attempt in an appended log ended before this one was submitted.
    """
    if path is None:
        return LogTail(None, None, "log name unknown (it uses the task's own job id)")
    first = int(job_id) if job_id is not None and job_id.isdecimal() else None
    notice: tuple[int, str] | None = None  # (line number, line)
    count = 0
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            last: deque[str] = deque(maxlen=lines)
            for raw in f:
                line = raw.rstrip("\n")
                last.append(line)
                count += 1
                if first is not None and (n := slurm_notice(line)) is not None:
                    if n.job_id is not None and n.job_id >= first:
                        notice = (count, line)
    except OSError as e:
        return LogTail(path, None, f"log not readable ({e.strerror or e})")
    shown = tuple(last)
    if notice is not None and notice[0] <= count - len(shown):
        gap = count - len(shown) - notice[0]
        between = (f"[... {gap} more line(s) ...]",) if gap else ()
        shown = (notice[1], *between, *shown)
    return LogTail(path, shown)


def task_logs(chain: Chain, indices: list[int | None]) -> dict[int | None, LogTail]:
    request = request_of(chain)
    out = {}
    for index in indices:
        task = chain.task(index)
        if task.current is None:
            continue
        attempt = task.current
        out[index] = tail(log_path(chain, request, index, attempt), job_id=attempt.job_id)
    return out
