"""Pure helpers of ``watch``, ``log`` and ``cancel``: nothing here calls Slurm or the clock.

``watch`` renders what is already on disk (state.json, heartbeat.json, the
tail of monitor.log), so it costs Slurm nothing however long it runs. The
per-level table counts *tasks*: for each level a task has run at, the last
attempt at that level decides its column, and a task waiting to be
resubmitted is pending at the level it will run at next.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from slurm_escalate.core.chain import (
    COLUMNS,
    Chain,
    Submission,
    SubmissionStatus,
    task_levels,
)
from slurm_escalate.core.events import ChainSet, Event, group_patches
from slurm_escalate.core.models import ChainState, TaskState
from slurm_escalate.reporting.summary import clock_text, counts_text
from slurm_escalate.state.journal import Summary

CANCEL_REASON = "cancelled by slurm-escalate cancel"
OVERDUE_SLACK_S = 60.0  # a poll this much later than announced makes a live monitor "overdue"

def exit_status(state: ChainState) -> int:
    """The CLI's exit status for a final chain: 0 COMPLETED, 1 FAILED or CANCELLED."""
    return 0 if state is ChainState.COMPLETED else 1


# ------------------------------------------------------------------ per level


def level_counts(chain: Chain) -> dict[int, Counter[str]]:
    """For every level a task ran or waits at: how many tasks are in each of COLUMNS."""
    table: dict[int, Counter[str]] = {}
    for task in chain.tasks:
        for level, column in task_levels(task).items():
            table.setdefault(level, Counter())[column] += 1
    return dict(sorted(table.items()))


def table_lines(table: Mapping[int, Mapping[str, int]]) -> list[str]:
    """The per-level table: one row per level, one column per entry of COLUMNS."""
    head = f"  {'level':<6}" + "".join(f"{c:>10}" for c in COLUMNS)
    rows = [
        f"  {'L' + str(level):<6}" + "".join(f"{counts.get(c, 0):>10}" for c in COLUMNS)
        for level, counts in sorted(table.items())
    ]
    return [head, *rows]


# ------------------------------------------------------------------- health


def ago(seconds: float) -> str:
    s = int(max(0, seconds))
    if s < 120:
        return f"{s}s ago"
    if s < 7200:
        return f"{s // 60}m{s % 60:02d}s ago"
    return f"{s // 3600}h{s % 3600 // 60:02d}m ago"


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


def health(
    state: ChainState,
    alive: bool | None,
    info: tuple[str, int] | None,
    beat: dict[str, Any] | None,
    now: float,
) -> str:
    """One line about the monitor, from its pid file (``info``, ``alive``) and heartbeat.

    ``alive`` is ChainStore.monitor_alive: True/False for a monitor on this
    host, None for one that claimed the chain from another host.
    """
    at = _number(beat.get("at")) if beat else None
    polled = f"last poll {ago(now - at)}" if at is not None else "no poll yet"
    if state is not ChainState.RUNNING:
        return f"finishing (pid {info[1]})" if alive and info else f"none needed ({state.value})"
    if alive is None:
        host = info[0] if info else "?"
        return f"elsewhere (host {host}), {polled}"
    if not alive:
        gone = f"dead (pid {info[1]} gone)" if info else "dead (no monitor running)"
        return f"{gone}, {polled}" if at is not None else gone
    pid = info[1] if info else None
    if beat is None or beat.get("pid") != pid:
        return f"alive (pid {pid}), no poll yet"
    failures = int(_number(beat.get("failures")) or 0)
    if failures:
        error = str(beat.get("error") or "no detail")
        error = error if len(error) <= 100 else error[:97] + "..."
        plural = "query" if failures == 1 else "queries"
        return f"degraded: {failures} failed Slurm {plural} ({error}), {polled}"
    text = f"alive, {polled}"
    next_poll = _number(beat.get("next_poll_s"))
    if at is not None and next_poll is not None and now - at > next_poll + OVERDUE_SLACK_S:
        text += f" (overdue: next poll was due after {next_poll:.0f}s)"
    return text


# ------------------------------------------------------------------- events


def recent_events(log_tail: str, limit: int) -> list[str]:
    """The last ``limit`` log lines that are not DEBUG (poll chatter), without the date."""
    lines = []
    for line in log_tail.splitlines():
        words = line.split(maxsplit=3)
        if len(words) >= 3 and words[2] == "DEBUG":
            continue
        if line.strip():
            is_entry = len(words) >= 2 and line[4:5] == "-" and line[10:11] == " "
            lines.append(line[11:] if is_entry else line)
    return lines[-limit:] if limit > 0 else []


def read_tail(path: Path, max_bytes: int = 64 * 1024) -> str:
    """The end of a text file (whole lines only), '' when it cannot be read."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except OSError:
        return ""
    if len(data) == max_bytes and b"\n" in data:
        data = data.split(b"\n", 1)[1]
    return data.decode("utf-8", errors="replace")


# -------------------------------------------------------------------- frame


@dataclass
class Snapshot:
    """Everything ``watch`` shows, as read from the chain directory at one moment."""

    summary: Summary  # the chain's summary.json (or counted from the chain when it lags)
    alive: bool | None
    info: tuple[str, int] | None
    beat: dict[str, Any] | None
    events: list[str] = field(default_factory=list)

    def key(self) -> str:
        """Changes when something worth a new block changed (not when only time passed)."""
        beat = self.beat or {}
        heart = {k: beat.get(k) for k in ("at", "pid", "failures", "error")}
        shown = msgspec.structs.replace(self.summary, updated_at=0.0, epoch=0)
        data = [msgspec.json.encode(shown).decode(), self.alive, self.info, heart, self.events]
        return json.dumps(data, sort_keys=True, default=str)


def frame(snap: Snapshot, now: float) -> list[str]:
    s = snap.summary
    monitor = health(s.state, snap.alive, snap.info, snap.beat, now)
    lines = [
        f"chain {s.chain_id}  {s.state.value}  "
        f"elapsed {clock_text((s.finished_at or now) - s.created_at)}  "
        f"script {s.script or '--wrap'}",
        f"  tasks {s.tasks}: {counts_text(s.counts)}",
        f"  monitor: {monitor}",
    ]
    if s.state is ChainState.RUNNING and monitor.startswith("dead"):
        lines.append(f"  resume with: slurm-escalate resume {s.chain_id}")
    lines.extend(table_lines({int(level): c for level, c in s.table.items()}))
    if snap.events:
        lines.append("  recent events:")
        lines.extend(f"    {e}" for e in snap.events)
    return lines


# ------------------------------------------------------------------- cancel


@dataclass(frozen=True)
class CancelPlan:
    job_ids: list[str]  # the chain's jobs that still carry an unfinished task
    tasks: list[int | None]  # every task that is not final yet
    doubtful: list[Submission]  # sbatch interrupted: a job may exist under the token

    @property
    def nothing(self) -> bool:
        return not self.tasks


def cancel_plan(chain: Chain) -> CancelPlan:
    """What ``cancel`` must scancel (only the chain's own live jobs) and mark CANCELLED."""
    doubtful = [
        s
        for s in chain.submissions
        if s.job_id is None and s.status in (SubmissionStatus.INTENT, SubmissionStatus.UNKNOWN)
    ]
    return CancelPlan(
        job_ids=chain.unfinished_job_ids(),
        tasks=[t.index for t in chain.tasks if not t.state.is_final],
        doubtful=doubtful,
    )


def mark_cancelled(chain: Chain, now: float, reason: str = CANCEL_REASON) -> list[Event]:
    """The events by which every unfinished task and the chain become CANCELLED."""
    change = {"state": TaskState.CANCELLED, "reason": reason, "target_level": None}
    patches = [(t.index, change) for t in chain.tasks if not t.state.is_final]
    return [*group_patches(patches), ChainSet(state=ChainState.CANCELLED, finished_at=now)]


def is_monitor_process(pid: int, proc: Path = Path("/proc")) -> bool:
    """Whether ``pid`` still runs this tool (a recycled pid must never get our SIGTERM).

    Without /proc (not Linux) the pid file is trusted.
    """
    if not proc.is_dir():
        return True
    try:
        cmdline = (proc / str(pid) / "cmdline").read_bytes()
    except OSError:
        return False
    return b"escalate" in cmdline
