"""Pure renderers of a chain: the status JSON, the text summary, the live view."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import msgspec

from slurm_escalate.core.chain import (
    Attempt,
    Chain,
    Headline,
    LimitWait,
    SubmissionStatus,
    TaskStatus,
    limit_waits,
)
from slurm_escalate.core.models import ChainState, TaskState
from slurm_escalate.reporting.eta import Progress, progress
from slurm_escalate.state.journal import PROBLEM_STATES, Summary, summarize_chain

_ORDER = [
    TaskState.PENDING,
    TaskState.RUNNING,
    TaskState.RETRY,
    TaskState.COMPLETED,
    TaskState.FAILED,
    TaskState.EXHAUSTED,
    TaskState.CANCELLED,
]
_PROBLEMS = tuple(PROBLEM_STATES)


def status_json(chain: Chain, log_file: str | None = None, monitor: Any = None) -> dict[str, Any]:
    """The documented ``status --json`` shape (stable keys; more may be added)."""
    return {
        "chain_id": chain.chain_id,
        "state": chain.state.value,
        "script": chain.script,
        "script_args": chain.script_args,
        "sbatch_args": chain.sbatch_args,
        "cwd": chain.cwd,
        "config": chain.config,
        "created_at": _iso(chain.created_at),
        "finished_at": _iso(chain.finished_at),
        "log_file": log_file,
        "monitor": monitor,
        "counts": {s.value: n for s, n in _counts(chain).items()},
        "waiting": [
            {
                "level": w.level,
                "limit": w.limit,
                "refusals": w.refusals,
                "since": _iso(w.since),
                "retry_at": _iso(w.retry_at),
            }
            for w in limit_waits(chain)
        ],
        "tasks": [_task_json(t) for t in chain.tasks],
        "submissions": [
            {
                "job_id": s.job_id,
                "level": s.level,
                "attempt": s.attempt,
                "array": s.array if s.array is not None else s.indices,
                "indices": s.indices,
                "offset": s.offset,
                "status": s.status.value,
                "submitted_at": _iso(s.submitted_at),
                "error": s.error,
                "limit": s.limit,
            }
            for s in chain.submissions
        ],
    }


def _task_json(t: TaskStatus) -> dict[str, Any]:
    return {
        "index": t.index,
        "state": t.state.value,
        "level": t.level,
        "attempts": len(t.attempts),
        "job_ids": [t.task_job_id(a) for a in t.attempts],
        "exit_code": t.exit_code,
        "reason": t.reason,
        "history": [{"job_id": t.task_job_id(a), **_attempt_json(a)} for a in t.attempts],
    }


def _attempt_json(a: Attempt) -> dict[str, Any]:
    fields = msgspec.structs.asdict(a)
    fields.pop("job_id")
    return fields


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts).isoformat(timespec="seconds")


def _counts(chain: Chain) -> dict[TaskState, int]:
    c = chain.counts()
    return {s: c[s] for s in _ORDER if c.get(s)}


class WaitingSummary(Summary):
    """A chain's summary and the levels whose resubmissions wait for a limit to lift
    (from the monitor's heartbeat, or from the chain when it is loaded)."""

    waiting: list[LimitWait] = []


def with_waits(s: Summary, waits: Sequence[LimitWait]) -> Summary:
    """``s``, telling ``summary_text`` which levels wait (when any do and the chain runs)."""
    if not waits or s.state is not ChainState.RUNNING:
        return s
    return WaitingSummary(**msgspec.structs.asdict(s), waiting=list(waits))


def waiting_lines(waits: Sequence[LimitWait], now: float) -> list[str]:
    """One line per level whose resubmission waits for a limit to lift."""
    out = []
    for w in waits:
        due = w.retry_at - now
        when = f"next try in {due:.0f} s" if due > 0 else "next try at the next poll"
        times = "once" if w.refusals == 1 else f"{w.refusals} times"
        out.append(
            f"waiting: {w.limit}, {when} (resubmission at level {w.level} refused {times}, "
            f"for {clock_text(now - w.since)})"
        )
    return out


def counts_line(chain: Chain) -> str:
    return counts_text({s.value: n for s, n in chain.counts().items()})


def counts_text(counts: Mapping[str, int]) -> str:
    """Counts by task state (their values as keys), in the order of a task's life."""
    shown = [st for st in _ORDER if counts.get(st.value)]
    return "  ".join(f"{st.value.lower()} {counts[st.value]}" for st in shown)


def levels_line(chain: Chain) -> str:
    by_level = Counter(t.level for t in chain.tasks if not t.state.is_final)
    done = Counter(t.level for t in chain.tasks if t.state is TaskState.COMPLETED)
    levels = sorted(set(by_level) | set(done))
    return "  ".join(f"L{lv}: {by_level.get(lv, 0)} active/{done.get(lv, 0)} done" for lv in levels)


def resubmissions(chain: Chain) -> int:
    return sum(1 for s in chain.submissions[1:] if s.status is SubmissionStatus.SUBMITTED)


def clock_text(seconds: float) -> str:
    """H:MM:SS."""
    secs = int(max(0, seconds))
    h, rest = divmod(secs, 3600)
    m, s = divmod(rest, 60)
    return f"{h:d}:{m:02d}:{s:02d}"


class LiveStatus(msgspec.Struct, frozen=True):
    """The live block as of one poll; its clock (elapsed, next poll, ETA) is read at render."""

    chain_id: str
    state: ChainState
    created_at: float
    finished_at: float | None
    next_poll_at: float | None  # when the monitor polls again (None: not announced)
    total: int
    counts: dict[TaskState, int]
    body: tuple[str, ...]  # the lines below the header: counts, levels, submissions, waits


def live_status(chain: Chain, now: float, next_poll: float | None) -> LiveStatus:
    """What the live block shows of ``chain`` at ``now``; ``next_poll``: seconds to the next."""
    return LiveStatus(
        chain_id=chain.chain_id,
        state=chain.state,
        created_at=chain.created_at,
        finished_at=chain.finished_at,
        next_poll_at=None if next_poll is None else now + next_poll,
        total=len(chain.tasks),
        counts=chain.counts(),
        body=(
            f"  tasks {len(chain.tasks)}: {counts_line(chain)}",
            f"  levels  {levels_line(chain)}",
            f"  submissions {len(chain.submissions)} (resubmissions {resubmissions(chain)})",
            *(f"  {line}" for line in waiting_lines(limit_waits(chain), now)),
        ),
    )


def live_header(s: LiveStatus, now: float) -> str:
    """The block's first line at ``now``: chain, state, elapsed time, the next poll."""
    due = s.next_poll_at
    nxt = f"  next poll in {max(0.0, due - now):.0f}s" if due is not None else ""
    return (
        f"chain {s.chain_id}  {s.state.value}  "
        f"elapsed {clock_text((s.finished_at or now) - s.created_at)}{nxt}"
    )


def live_progress(s: LiveStatus, now: float) -> Progress:
    """Tasks finished of the total, and the ETA at ``now`` (reporting.eta)."""
    return progress(s.total, s.counts, s.created_at, now, s.state is ChainState.RUNNING)


def summary_progress(s: Summary, now: float) -> Progress:
    """Tasks finished of the total, and the ETA at ``now``, from a chain's summary alone."""
    counts = {TaskState(state): n for state, n in s.counts.items()}
    return progress(s.tasks, counts, s.created_at, now, s.state is ChainState.RUNNING)


def progress_texts(p: Progress) -> tuple[str, str]:
    """``("5/12 done", "ETA 0:02:10")``; ``ETA unknown`` until a task has finished, and no
    ETA (``""``) once every task has."""
    done = f"{p.finished}/{p.total} done"
    if p.finished >= p.total:
        return done, ""
    return done, f"ETA {'unknown' if p.eta_s is None else clock_text(p.eta_s)}"


def live_block(chain: Chain, now: float, next_poll: float | None) -> list[str]:
    """A few lines for a terminal (tmux): counts by state and level, resubmissions, time."""
    status = live_status(chain, now, next_poll)
    return [live_header(status, now), *status.body]


def summary(chain: Chain, now: float, log_file: str | None = None) -> str:
    """The end-of-chain story of a chain in memory (counted from all its tasks)."""
    return summary_text(summarize_chain(chain, now), now, log_file)


def summary_text(s: Summary, now: float, log_file: str | None = None) -> str:
    """Totals, then the tasks that did not complete: from the chain's summary alone."""
    end = s.finished_at or now
    counts = counts_text(s.counts)
    lines = [
        f"chain {s.chain_id} {s.state.value} after {clock_text(end - s.created_at)}: "
        f"{s.tasks} task(s), {counts}; {s.resubmissions} resubmission(s)",
    ]
    if isinstance(s, WaitingSummary):
        lines.extend(f"  {line}" for line in waiting_lines(s.waiting, now))
    escalated = sum(c.get("COMPLETED", 0) for level, c in s.levels.items() if int(level) > 0)
    if escalated:
        lines.append(f"  {escalated} task(s) completed after escalation")
    if s.problems:
        lines.append("  not completed:")
        lines.append(
            f"    {'task':<14} {'state':<10} {'level':>5} {'tries':>5} {'exit':>5}  reason"
        )
        for p in s.problems:
            code = "" if p.exit_code is None else str(p.exit_code)
            cells = f"{p.task:<14} {p.state.value:<10} {p.level:>5} {p.tries:>5} {code:>5}"
            lines.append(f"    {cells}  {p.reason}")
        if s.problems_total > len(s.problems):
            more = s.problems_total - len(s.problems)
            lines.append(f"    ... and {more} more (status --json lists every task)")
    if log_file:
        lines.append(f"  log: {log_file}")
    return "\n".join(lines)


def list_rows(chains: list[tuple[Headline, str]]) -> list[str]:
    """One line per chain for ``slurm-escalate list``; the str is the monitor's liveness."""
    out = [f"{'CHAIN':<22} {'STATE':<10} {'TASKS':>6} {'DONE':>6} {'BAD':>5} {'MONITOR':<9} SCRIPT"]
    for chain, monitor in chains:
        c = chain.counts
        bad = sum(c.get(s, 0) for s in _PROBLEMS)
        out.append(
            f"{chain.chain_id:<22} {chain.state.value:<10} {chain.tasks:>6} "
            f"{c.get(TaskState.COMPLETED, 0):>6} {bad:>5} {monitor:<9} {chain.script or '--wrap'}"
        )
    return out
