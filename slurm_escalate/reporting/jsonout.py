"""ReportData as the documented JSON (docs/report-json.md); bump SCHEMA on breaking changes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from slurm_escalate.reporting.model import (
    AttemptRow,
    LogTail,
    ReportData,
    Spread,
)
from slurm_escalate.reporting.sizing import sizing_json

SCHEMA = 1


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts).isoformat(timespec="seconds")


def _hours(core_s: int) -> float:
    return round(core_s / 3600, 6)


def _spread(s: Spread | None, digits: int = 1) -> dict[str, Any] | None:
    if s is None:
        return None
    return {
        "min": round(s.min, digits),
        "median": round(s.median, digits),
        "max": round(s.max, digits),
        "count": s.count,
    }


def _log(log: LogTail | None) -> dict[str, Any] | None:
    if log is None:
        return None
    return {
        "path": log.path,
        "lines": None if log.lines is None else list(log.lines),
        "note": log.note,
    }


def _attempt(a: AttemptRow) -> dict[str, Any]:
    return {
        "attempt": a.attempt,
        "job_id": a.job_id,
        "array_job_id": a.array_job_id,
        "round": a.round,
        "submission": a.submission,
        "level": a.level,
        "outcome": a.outcome,
        "exit_code": a.exit_code,
        "reason": a.reason,
        "start": a.start,
        "end": a.end,
        "elapsed_s": a.elapsed_s,
        "node": a.node,
        "partition": a.partition,
        "req_mem_mb": a.req_mem_mb,
        "timelimit_s": a.timelimit_s,
        "max_rss_kb": a.max_rss_kb,
        "cpus": a.cpus,
        "core_s": a.core_s,
        "skipped": a.skipped,
        "requeues": a.requeues,
    }


def chain_json(d: ReportData) -> dict[str, Any]:
    s, c, adv = d.summary, d.cost, d.advice
    return {
        "chain_id": d.chain_id,
        "state": d.state,
        "script": d.script,
        "script_args": list(d.script_args),
        "sbatch_args": list(d.sbatch_args),
        "cwd": d.cwd,
        "config": d.config,
        "created_at": _iso(d.created_at),
        "finished_at": _iso(d.finished_at),
        "start_level": d.start_level,
        "summary": {
            "tasks": s.tasks,
            "completed": s.completed,
            "failed": s.failed,
            "exhausted": s.exhausted,
            "cancelled": s.cancelled,
            "unfinished": s.unfinished,
            "resubmissions": s.resubmissions,
            "text": s.text,
        },
        "submissions": [
            {
                "round": r.round,
                "seq": r.seq,
                "job_id": r.job_id,
                "level": r.level,
                "array": r.array,
                "mem_mb": r.mem_mb,
                "time_s": r.time_s,
                "partition": r.partition,
                "tasks": r.tasks,
                "done": r.done,
                "oom": r.oom,
                "timeout": r.timeout,
                "failed": r.failed,
                "status": r.status,
            }
            for r in d.submissions
        ],
        "levels": [
            {
                "level": lv.level,
                "partition": lv.partition,
                "mem_mb": lv.mem_mb,
                "time_s": lv.time_s,
                "attempts": lv.attempts,
                "outcomes": dict(lv.outcomes),
                "runtime_s": _spread(lv.runtime_s),
                "max_rss_mb": _spread(lv.rss_mb),
                "peak_pct": lv.peak_pct,
            }
            for lv in d.levels
        ],
        "advice": {
            "lines": list(adv.lines),
            "recommended_start_level": adv.recommended_start_level,
            "p95_max_rss_mb": None if adv.p95_rss_mb is None else round(adv.p95_rss_mb, 1),
            "p95_elapsed_s": adv.p95_elapsed_s,
            "sample": adv.sample,
            "sizing": None if adv.sizing is None else sizing_json(adv.sizing),
            "paste": None if adv.paste is None else adv.paste.text,
        },
        "escalation": d.escalation,
        "skips": [
            {
                "indices": [i for i in sk.indices if i is not None],
                "tasks": len(sk.indices),
                "from_level": sk.from_level,
                "to_level": sk.to_level,
                "reason": sk.reason,
            }
            for sk in d.skips
        ],
        "cost": {
            "useful_attempts": c.useful_attempts,
            "useful_core_s": c.useful_core_s,
            "useful_core_hours": _hours(c.useful_core_s),
            "failed_core_s": c.failed_core_s,
            "failed_core_hours": _hours(c.failed_core_s),
            "total_core_s": c.total_core_s,
            "failed_by_outcome": [
                {
                    "outcome": r.outcome,
                    "attempts": r.attempts,
                    "core_s": r.core_s,
                    "core_hours": _hours(r.core_s),
                }
                for r in c.failed
            ],
        },
        "nodes": [
            {
                "node": n.node,
                "attempts": n.attempts,
                "completed": n.completed,
                "failed": n.failed,
                "node_fail": n.node_fail,
            }
            for n in d.nodes
        ],
        "node_fail_nodes": list(d.node_fail_nodes),
        "problems": [
            {
                "index": p.index,
                "job_id": p.job_id,
                "state": p.state,
                "exit_code": p.exit_code,
                "node": p.node,
                "elapsed_s": p.elapsed_s,
                "reason": p.reason,
                "log": _log(p.log),
            }
            for p in d.problems
        ],
        "tasks": [
            {
                "index": t.index,
                "state": t.state,
                "level": t.level,
                "exit_code": t.exit_code,
                "reason": t.reason,
                "attempts": [_attempt(a) for a in t.attempts],
            }
            for t in d.tasks
        ],
    }


def report_json(reports: Sequence[ReportData], generated_at: float) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "generated_at": _iso(generated_at),
        "chains": [chain_json(d) for d in reports],
    }


def render_json(reports: Sequence[ReportData], generated_at: float) -> str:
    return json.dumps(report_json(reports, generated_at), indent=2) + "\n"
