"""ReportData as GitHub-flavoured markdown (what the README shows)."""

from __future__ import annotations

from collections.abc import Sequence

from slurm_escalate.arrays.spec import compress
from slurm_escalate.reporting import fmt
from slurm_escalate.reporting.model import ReportData, Spread


def cell(value: object) -> str:
    text = "-" if value is None or value == "" else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def table(head: Sequence[str], rows: Sequence[Sequence[object]], right: str = "") -> list[str]:
    """A markdown table; ``right`` has an "r" for each right-aligned column."""
    align = ["---:" if i < len(right) and right[i] == "r" else "---" for i in range(len(head))]
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return lines


def _spread(s: Spread | None, show) -> list[str]:  # type: ignore[no-untyped-def]
    return ["-", "-", "-"] if s is None else [show(s.min), show(s.median), show(s.max)]


def render_markdown(data: ReportData, detailed: bool = False) -> str:
    out: list[str] = [f"# Chain {data.chain_id}", ""]
    out += _header(data)
    out += ["", "## Rounds and submissions", ""]
    out += submissions_table(data)
    out += ["", "## Levels", ""]
    out += levels_table(data)
    out += ["", "## Memory: MaxRSS against requested", ""]
    out += memory_table(data)
    out += ["", "## Right-sizing advice", ""]
    out += advice_lines(data)
    out += ["", "## Skipped rungs", ""]
    out += skips_section(data)
    out += ["", "## Cost", ""]
    out += cost_table(data)
    out += ["", "## Nodes", ""]
    out += nodes_table(data)
    out += ["", "## Failures that were not retried", ""]
    out += problems_section(data)
    if detailed:
        out += ["", "## Every attempt", ""]
        out += attempts_table(data)
    return "\n".join(out).rstrip() + "\n"


def advice_lines(data: ReportData) -> list[str]:
    """The advice as a list; its last line, ready to paste, as code."""
    adv = data.advice
    lines = [f"- {line}" for line in adv.lines]
    if adv.paste is not None and adv.lines and adv.lines[-1] == adv.paste.line:
        lines[-1] = f"- {adv.paste.lead}: `{adv.paste.text}`"
    return lines


def _header(data: ReportData) -> list[str]:
    script = " ".join([data.script or "--wrap", *data.script_args])
    took = ""
    if data.finished_at is not None:
        took = f" (after {fmt.duration(data.finished_at - data.created_at)})"
    return [
        f"**{data.summary.text}.**",
        "",
        f"- state: {data.state}{took}",
        f"- script: `{script}` in `{data.cwd}`",
        f"- ladder: `{data.config}`" if data.config else "- ladder: built-in (doubling)",
        f"- created {fmt.when(data.created_at)}, finished {fmt.when(data.finished_at)}",
        f"- resubmissions: {data.summary.resubmissions}",
        *([f"- requeued by Slurm: {line}"] if (line := requeued_text(data)) else []),
    ]


def requeued_text(data: ReportData) -> str | None:
    """Which attempts Slurm itself requeued (JobRequeue, ``scontrol requeue``, preemption
    with PreemptMode=REQUEUE): it reran them under their job ids; none was resubmitted."""
    rows = [a for t in data.tasks for a in t.attempts if a.requeues]
    if not rows:
        return None
    total = sum(a.requeues for a in rows)
    each = ", ".join(f"{a.job_id} ({a.requeues}x)" for a in rows[:20])
    more = f", and {len(rows) - 20} more" if len(rows) > 20 else ""
    return (
        f"{total} requeue(s) of {len(rows)} attempt(s): {each}{more} "
        "(Slurm reran them under their job ids; not resubmitted)"
    )


def submissions_table(data: ReportData) -> list[str]:
    head = ["round", "job id", "level", "mem", "time", "partition", "tasks", "done", "OOM"]
    head += ["timeout", "failed", "status"]
    rows = [
        [
            s.round,
            s.job_id,
            s.level,
            fmt.req(s.mem_mb),
            fmt.duration(s.time_s),
            s.partition,
            s.tasks,
            s.done,
            s.oom,
            s.timeout,
            s.failed,
            s.status,
        ]
        for s in data.submissions
    ]
    return table(head, rows, "rrrrr-rrrrr")


def levels_table(data: ReportData) -> list[str]:
    head = ["level", "partition", "mem", "time", "attempts", "outcomes"]
    head += ["runtime min", "median", "max"]
    rows = [
        [
            lv.level,
            lv.partition,
            fmt.req(lv.mem_mb),
            fmt.duration(lv.time_s),
            lv.attempts,
            ", ".join(f"{k} {n}" for k, n in lv.outcomes),
            *_spread(lv.runtime_s, fmt.duration),
        ]
        for lv in data.levels
    ]
    return table(head, rows, "r-rrr-rrr")


def memory_table(data: ReportData) -> list[str]:
    head = ["level", "requested", "sampled", "MaxRSS min", "median", "max", "peak / requested"]
    rows = [
        [
            lv.level,
            fmt.req(lv.mem_mb),
            f"{lv.rss_mb.count if lv.rss_mb else 0} of {lv.attempts}",
            *_spread(lv.rss_mb, fmt.mem),
            _peak(lv.peak_pct),
        ]
        for lv in data.levels
    ]
    return table(head, rows, "rrrrrrr")


def _peak(pct: float | None) -> str:
    if pct is None:
        return "-"
    return "<1%" if pct < 1 else f"{fmt.half_up(pct)}%"


def skips_section(data: ReportData) -> list[str]:
    """Which tasks jumped past ladder rungs (escalation: skip), and on what evidence."""
    if not data.skips:
        return [f"No task skipped a rung (escalation: {data.escalation})."]
    rows = [
        (_indices(s.indices), len(s.indices), s.from_level, s.to_level, s.reason)
        for s in data.skips
    ]
    return table(("Tasks", "Count", "From level", "To level", "Why"), rows, right="-rrr")


def _indices(indices: Sequence[int | None]) -> str:
    real = [i for i in indices if i is not None]
    return compress(real) if real else "job"


def cost_table(data: ReportData) -> list[str]:
    c = data.cost
    total = c.total_core_s
    rows: list[list[object]] = [
        [
            "useful (COMPLETED)",
            c.useful_attempts,
            fmt.core_hours(c.useful_core_s),
            fmt.pct(c.useful_core_s, total),
        ]
    ]
    rows += [
        [f"failed: {r.outcome}", r.attempts, fmt.core_hours(r.core_s), fmt.pct(r.core_s, total)]
        for r in c.failed
    ]
    rows.append(
        [
            "total",
            c.useful_attempts + sum(r.attempts for r in c.failed),
            fmt.core_hours(total),
            "100%" if total else "-",
        ]
    )
    lines = table(["attempts", "count", "core-hours", "share"], rows, "-rrr")
    lines += [
        "",
        f"Failed attempts cost {fmt.core_hours(c.failed_core_s)} core-hours "
        f"against {fmt.core_hours(c.useful_core_s)} core-hours of useful work.",
    ]
    return lines


def nodes_table(data: ReportData) -> list[str]:
    rows = [[n.node, n.attempts, n.completed, n.failed, n.node_fail] for n in data.nodes]
    lines = table(["node", "attempts", "completed", "failed", "NODE_FAIL"], rows, "-rrrr")
    where = ", ".join(data.node_fail_nodes) or "none"
    return lines + ["", f"NODE_FAIL happened on: {where}."]


def problems_section(data: ReportData) -> list[str]:
    if not data.problems:
        return ["None: every finished task completed."]
    head = ["task", "job id", "state", "exit", "node", "elapsed", "reason"]
    rows = [
        [
            fmt.index(p.index),
            p.job_id,
            p.state,
            fmt.num(p.exit_code),
            p.node,
            fmt.duration(p.elapsed_s),
            p.reason,
        ]
        for p in data.problems
    ]
    out = table(head, rows, "r--r-r-")
    for p in data.problems:
        if p.log is None:
            continue
        where = f"`{p.log.path}`" if p.log.path else "its log"
        if p.log.lines is None:
            out += ["", f"Task {fmt.index(p.index)}: {p.log.note}: {where}."]
            continue
        out += ["", f"Task {fmt.index(p.index)}, last lines of {where}:", "", "```"]
        out += [line.replace("```", "'''") for line in p.log.lines] or ["(empty)"]
        out += ["```"]
    return out


def attempts_table(data: ReportData) -> list[str]:
    head = ["task", "try", "job id", "level", "outcome", "exit", "node", "start", "elapsed"]
    head += ["MaxRSS", "requested"]
    rows = [
        [
            fmt.index(a.index),
            a.attempt,
            a.job_id,
            a.level,
            a.outcome or "unfinished",
            fmt.num(a.exit_code),
            a.node,
            a.start,
            fmt.duration(a.elapsed_s),
            fmt.mem(a.max_rss_kb / 1024) if a.max_rss_kb else "-",
            fmt.req(a.req_mem_mb),
        ]
        for t in data.tasks
        for a in t.attempts
    ]
    return table(head, rows, "rr-r-r--rrr")
