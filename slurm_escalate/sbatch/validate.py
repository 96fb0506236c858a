"""Checks of the user's sbatch options that sbatch itself would only half catch.

sbatch takes the last of two ``--array`` options and silently drops malformed
``--export`` items. Each of these is caught here, before anything is
submitted, with a one-line message naming the option. Arrays beyond
MaxArraySize or max_array_tasks are not refused: they are submitted in pieces
(see pieces.py), which needs a job script rather than ``--wrap``.
"""

from __future__ import annotations

import re

from slurm_escalate.arrays.spec import ArraySpec
from slurm_escalate.core.models import ClusterLimits
from slurm_escalate.errors import UsageError
from slurm_escalate.sbatch.args import JobRequest

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_EXPORT_WORDS = {"ALL", "NONE", "NIL"}


def check_request(request: JobRequest, spec: ArraySpec | None, limits: ClusterLimits) -> None:
    arrays = [o for o in request.options if o.name == "array"]
    if len(arrays) > 1:
        shown = " and ".join(" ".join(o.tokens) for o in arrays)
        raise UsageError(f"--array given twice ({shown}): give one array specification")
    for option in request.options:
        if option.name == "export":
            check_export(option.value or "")
    if spec is not None and spec.indices and spec.indices[-1] >= limits.max_array_size:
        if request.script is None:
            raise UsageError(
                f"--array index {spec.indices[-1]} is at or above this cluster's MaxArraySize "
                f"({limits.max_array_size}): such indices run through a wrapper script, "
                "so give a job script instead of --wrap"
            )
    if limits.max_job_count and spec is not None and len(spec.indices) > limits.max_job_count:
        raise UsageError(
            f"--array has {len(spec.indices)} tasks; this cluster holds at most "
            f"{limits.max_job_count} jobs at once (MaxJobCount)"
        )


def check_export(value: str) -> None:
    """``--export`` is ALL, NONE or NIL, then NAME or NAME=value items (quotes may hold commas)."""
    if not value:
        raise UsageError("--export needs a value (e.g. ALL, NONE or ALL,NAME=value)")
    for item in _split_quoted(value):
        name, sep, _ = item.partition("=")
        if not item:
            raise UsageError(f"--export={value}: empty item (stray comma)")
        if not sep and item.upper() in _EXPORT_WORDS:
            continue
        if not _NAME.fullmatch(name):
            raise UsageError(f"--export={value}: {name!r} is not a variable name")


def _split_quoted(value: str) -> list[str]:
    items, current, quote = [], "", ""
    for ch in value:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch == ",":
            items.append(current)
            current = ""
            continue
        current += ch
    if quote:
        raise UsageError(f"--export={value}: unclosed {quote} quote")
    items.append(current)
    return items
