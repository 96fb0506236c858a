"""From a Chain to a ReportData: pure arithmetic, no I/O (table-tested).

``levels`` gives the resources each ladder level asks for (from the chain's
ladder copy, or the built-in doubling policy); what sacct reported for an
attempt (ReqMem, Timelimit, Partition) wins over it, because that is what the
job really had. ``logs`` holds the log tails of the tasks that did not
complete, read by the caller.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from itertools import pairwise
from typing import TypeVar

from slurm_escalate.arrays.spec import expand
from slurm_escalate.core.chain import Chain, Submission, SubmissionStatus
from slurm_escalate.core.models import Level, TaskState
from slurm_escalate.core.units import parse_mem_mb
from slurm_escalate.reporting.advice import right_size
from slurm_escalate.reporting.model import (
    COMPLETED,
    OOM,
    TIMEOUT_KINDS,
    AttemptRow,
    LevelRow,
    LogTail,
    Problem,
    ReportData,
    SkipRow,
    Spread,
    SubmissionRow,
    Summary,
    TaskRow,
)
from slurm_escalate.reporting.usage import cost, node_rows

T = TypeVar("T")
_PROBLEM_STATES = (TaskState.FAILED, TaskState.EXHAUSTED, TaskState.CANCELLED)


def build_report(
    chain: Chain,
    levels: Mapping[int, Level],
    logs: Mapping[int | None, LogTail] | None = None,
    escalation: str = "step",
) -> ReportData:
    tasks = task_rows(chain, levels)
    attempts = [a for t in tasks for a in t.attempts]
    resources = level_resources(levels, attempts)
    level_rows = tuple(_level_rows(attempts, resources))
    nodes = tuple(node_rows(attempts))
    return ReportData(
        chain_id=chain.chain_id,
        state=chain.state.value,
        script=chain.script,
        script_args=tuple(chain.script_args),
        sbatch_args=tuple(chain.sbatch_args),
        cwd=chain.cwd,
        config=chain.config,
        created_at=chain.created_at,
        finished_at=chain.finished_at,
        start_level=chain.start_level,
        summary=_summary(chain),
        submissions=tuple(_submission_row(s, attempts, resources) for s in chain.submissions),
        levels=level_rows,
        advice=right_size(tasks, resources, chain.start_level),
        cost=cost(attempts),
        nodes=nodes,
        node_fail_nodes=tuple(n.node for n in nodes if n.node_fail),
        problems=tuple(_problems(tasks, logs or {})),
        tasks=tasks,
        escalation=escalation,
        skips=tuple(skip_rows(tasks)),
    )


def task_rows(chain: Chain, levels: Mapping[int, Level]) -> tuple[TaskRow, ...]:
    """Every task with its attempts, as the report shows them (sacct's figures, else the
    ladder's: ``levels`` fills in memory and time limits sacct did not report)."""
    subs = {s.seq: s for s in chain.submissions}
    return tuple(_task_row(chain, t.index, subs, levels) for t in chain.tasks)


def skip_rows(tasks: Sequence[TaskRow]) -> list[SkipRow]:
    """Escalations that jumped past a rung, grouped by (from, to, reason)."""
    groups: dict[tuple[int, int, str], list[int | None]] = {}
    for t in tasks:
        for before, after in pairwise(t.attempts):
            if after.level > before.level + 1:
                key = (before.level, after.level, before.skipped or "(reason not recorded)")
                groups.setdefault(key, []).append(t.index)
    return [SkipRow(tuple(ix), a, b, why) for (a, b, why), ix in sorted(groups.items())]


# ------------------------------------------------------------------ attempts


def req_mem_mb(text: str | None, cpus: int) -> int | None:
    """sacct's ReqMem ("400M", "2G", older "400Mn" per node, "100Mc" per CPU) in MiB."""
    if not text:
        return None
    per_cpu = text.endswith("c")
    try:
        mb = parse_mem_mb(text.rstrip("nc"))
    except ValueError:
        return None
    return mb * cpus if per_cpu else mb


def _task_row(
    chain: Chain, index: int | None, subs: Mapping[int, Submission], levels: Mapping[int, Level]
) -> TaskRow:
    task = chain.task(index)
    rows = []
    for n, a in enumerate(task.attempts, 1):
        sub = subs.get(a.submission)
        cpus = sub.cpus if sub else 1
        level = levels.get(a.level)
        mem = req_mem_mb(a.req_mem, cpus)
        rows.append(
            AttemptRow(
                index=index,
                attempt=n,
                job_id=task.task_job_id(a),
                array_job_id=a.job_id,
                round=sub.attempt if sub else n,
                submission=a.submission,
                level=a.level,
                outcome=a.outcome,
                exit_code=a.exit_code,
                reason=a.reason,
                start=a.start,
                end=a.end,
                elapsed_s=a.elapsed_s,
                node=a.node,
                partition=a.partition,
                req_mem_mb=mem if mem is not None else (level.mem_mb if level else None),
                timelimit_s=a.timelimit_s or (level.time_s if level else None),
                max_rss_kb=a.max_rss_kb,
                cpus=cpus,
                core_s=(a.elapsed_s or 0) * cpus,
                submitted_at=sub.submitted_at if sub else None,
                skipped=a.skipped,
                requeues=a.requeues,
            )
        )
    return TaskRow(
        index=index,
        state=task.state.value,
        level=task.level,
        exit_code=task.exit_code,
        reason=task.reason,
        attempts=tuple(rows),
    )


def level_resources(
    levels: Mapping[int, Level], attempts: Sequence[AttemptRow]
) -> dict[int, Level]:
    """Each level's resources: what its attempts really had, else what the ladder says."""
    out = dict(levels)
    by_level: dict[int, list[AttemptRow]] = defaultdict(list)
    for a in attempts:
        by_level[a.level].append(a)
    for lv, rows in by_level.items():
        base = levels.get(lv, Level())
        parts = sorted({a.partition for a in rows if a.partition})
        out[lv] = Level(
            partition=",".join(parts) if parts else base.partition,
            mem_mb=_most_common(a.req_mem_mb for a in rows) or base.mem_mb,
            time_s=_most_common(a.timelimit_s for a in rows) or base.time_s,
            cpus_per_task=_most_common(a.cpus for a in rows) or base.cpus_per_task,
        )
    return dict(sorted(out.items()))


def _most_common(values: Iterable[int | None]) -> int | None:
    counts = Counter(v for v in values if v is not None)
    return counts.most_common(1)[0][0] if counts else None


# ------------------------------------------------------------------ tables


def spread(values: Iterable[float]) -> Spread | None:
    sample = sorted(values)
    if not sample:
        return None
    return Spread(sample[0], statistics.median(sample), sample[-1], len(sample))


def rss_mb(a: AttemptRow) -> float | None:
    """MaxRSS in MiB; None when sacct did not sample it (it prints 0 then)."""
    return a.max_rss_kb / 1024 if a.max_rss_kb else None


def _level_rows(attempts: Sequence[AttemptRow], resources: Mapping[int, Level]) -> list[LevelRow]:
    rows = []
    for lv in sorted({a.level for a in attempts}):
        mine = [a for a in attempts if a.level == lv]
        res = resources.get(lv, Level())
        outcomes = Counter(a.outcome or "UNFINISHED" for a in mine)
        rss = spread(r for a in mine if (r := rss_mb(a)) is not None)
        peak = None
        if rss is not None and res.mem_mb:
            peak = round(100 * rss.max / res.mem_mb, 1)
        rows.append(
            LevelRow(
                level=lv,
                partition=res.partition,
                mem_mb=res.mem_mb,
                time_s=res.time_s,
                attempts=len(mine),
                outcomes=tuple(sorted(outcomes.items(), key=lambda kv: (-kv[1], kv[0]))),
                runtime_s=spread(
                    a.elapsed_s for a in mine if a.outcome and a.elapsed_s is not None
                ),
                rss_mb=rss,
                peak_pct=peak,
            )
        )
    return rows


def _submission_row(
    sub: Submission, attempts: Sequence[AttemptRow], resources: Mapping[int, Level]
) -> SubmissionRow:
    mine = [a for a in attempts if a.submission == sub.seq]
    outcomes = Counter(a.outcome for a in mine)
    timeouts = sum(outcomes[k] for k in TIMEOUT_KINDS)
    finished = sum(n for k, n in outcomes.items() if k is not None)
    res = resources.get(sub.level, Level())
    if sub.status is not SubmissionStatus.SUBMITTED:
        status = sub.status.value
    else:
        status = "RUNNING" if None in outcomes else "FINISHED"
    if mine:
        count = len(mine)
    else:
        count = len(expand(sub.indices)) if sub.indices else 1
    return SubmissionRow(
        round=sub.attempt,
        seq=sub.seq,
        job_id=sub.job_id,
        level=sub.level,
        array=sub.indices,
        mem_mb=_first(a.req_mem_mb for a in mine) or res.mem_mb,
        time_s=_first(a.timelimit_s for a in mine) or res.time_s,
        partition=_first(a.partition for a in mine) or res.partition,
        tasks=count,
        done=outcomes[COMPLETED],
        oom=outcomes[OOM],
        timeout=timeouts,
        failed=finished - outcomes[COMPLETED] - outcomes[OOM] - timeouts,
        status=status,
    )


def _first(values: Iterable[T | None]) -> T | None:
    return next((v for v in values if v is not None), None)


def _problems(tasks: Sequence[TaskRow], logs: Mapping[int | None, LogTail]) -> list[Problem]:
    out = []
    for t in tasks:
        if t.state not in {s.value for s in _PROBLEM_STATES}:
            continue
        last = t.attempts[-1] if t.attempts else None
        out.append(
            Problem(
                index=t.index,
                job_id=last.job_id if last else None,
                state=t.state,
                exit_code=t.exit_code,
                node=last.node if last else None,
                elapsed_s=last.elapsed_s if last else None,
                reason=t.reason,
                log=logs.get(t.index),
            )
        )
    return out


def _summary(chain: Chain) -> Summary:
    c = chain.counts()
    final = sum(n for s, n in c.items() if s.is_final)
    return Summary(
        tasks=len(chain.tasks),
        completed=c.get(TaskState.COMPLETED, 0),
        failed=c.get(TaskState.FAILED, 0),
        exhausted=c.get(TaskState.EXHAUSTED, 0),
        cancelled=c.get(TaskState.CANCELLED, 0),
        unfinished=len(chain.tasks) - final,
        resubmissions=sum(
            1 for s in chain.submissions[1:] if s.status is SubmissionStatus.SUBMITTED
        ),
    )


def problem_indices(chain: Chain) -> list[int | None]:
    """The tasks whose logs a report shows (those that did not complete)."""
    return [t.index for t in chain.tasks if t.state in _PROBLEM_STATES]
