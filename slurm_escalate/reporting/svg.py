"""Inline SVG charts for the HTML report: the timeline, memory, cost (pure, no JS)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

from slurm_escalate.reporting import fmt
from slurm_escalate.reporting.model import AttemptRow, ReportData

COLOURS = {
    "COMPLETED": "#2e9d5b",
    "OUT_OF_MEMORY": "#8e44ad",
    "TIMEOUT": "#e67e22",
    "DEADLINE": "#d35400",
    "FAILED": "#c0392b",
    "CANCELLED": "#7f8c8d",
    "NODE_FAIL": "#2c3e50",
    "PREEMPTED": "#2980b9",
    "BOOT_FAIL": "#16a085",
    None: "#74b9ff",  # not finished
}
QUEUED = "#c8d0d8"
LABEL_W, PLOT_W, PAD = 64, 880, 16
WIDTH = LABEL_W + PLOT_W + PAD


def colour(outcome: str | None) -> str:
    return COLOURS.get(outcome, "#95a5a6")


def epoch(iso: str | None) -> float | None:
    """sacct's local ISO time as epoch seconds (None when missing or unreadable)."""
    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return None


def _nice_step(span: float, ticks: int, steps: Sequence[float]) -> float:
    return next((s for s in steps if span / s <= ticks), steps[-1])


_TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200]
_TIME_STEPS += [86400 * k for k in (1, 2, 7, 14, 30)]
_MEM_STEPS = [m * k for m in (1, 10, 100, 1000, 10000) for k in (1, 2, 5)] + [256 * 1024]


def timeline(data: ReportData, now: float) -> str:
    """One row per task (class ``timeline-row``), one bar per attempt, coloured by outcome."""
    spans = []
    for t in data.tasks:
        for a in t.attempts:
            start = epoch(a.start)
            if start is None:
                continue
            end = epoch(a.end) or (start + a.elapsed_s if a.elapsed_s is not None else now)
            queued = a.submitted_at if a.submitted_at and a.submitted_at < start else start
            spans.append((a, queued, start, max(end, start)))
    t0 = min((q for _, q, _, _ in spans), default=data.created_at)
    t1 = max((e for *_, e in spans), default=t0 + 1)
    span = max(t1 - t0, 1.0)
    n = max(len(data.tasks), 1)
    row = 20 if n <= 40 else max(4, min(20, 1000 // n))
    top = 24
    height = top + row * n + 8

    def x(t: float) -> float:
        return LABEL_W + (t - t0) / span * PLOT_W

    out = [_svg_open(WIDTH, height, "timeline", "Task timeline")]
    step = _nice_step(span, 10, _TIME_STEPS)
    k = 0.0
    while k <= span + 1e-9:
        gx = x(t0 + k)
        out.append(
            f'<line class="grid" x1="{gx:.1f}" y1="{top - 4}" x2="{gx:.1f}" y2="{height - 8}"/>'
        )
        out.append(f'<text class="tick" x="{gx:.1f}" y="{top - 8}">+{fmt.duration(k)}</text>')
        k += step
    by_task: dict[int | None, list[tuple[AttemptRow, float, float, float]]] = {}
    for item in spans:
        by_task.setdefault(item[0].index, []).append(item)
    for i, t in enumerate(data.tasks):
        y = top + i * row
        label = fmt.index(t.index) if t.index is not None else "job"
        out.append(f'<g class="timeline-row" data-task="{escape(label)}" data-state="{t.state}">')
        if i % 2:
            out.append(f'<rect class="stripe" x="0" y="{y}" width="{WIDTH}" height="{row}"/>')
        if row >= 10:
            out.append(
                f'<text class="label" x="{LABEL_W - 6}" y="{y + row * 0.72:.1f}">{label}</text>'
            )
        for a, queued, start, end in by_task.get(t.index, []):
            bar_h = max(row - 6, 3) if row >= 10 else max(row - 1, 2)
            by = y + (row - bar_h) / 2
            if start > queued:
                qy = y + row / 2 - 1
                out.append(
                    f'<rect class="queued" x="{x(queued):.1f}" y="{qy:.1f}" '
                    f'width="{x(start) - x(queued):.1f}" height="2" fill="{QUEUED}"/>'
                )
            w = max(x(end) - x(start), 2.5)
            tip = (
                f"task {label} attempt {a.attempt}: job {a.job_id}, level {a.level}, "
                f"{a.outcome or 'not finished'}, {fmt.duration(a.elapsed_s)} on {a.node or '?'}"
            )
            out.append(
                f'<rect class="bar" data-outcome="{a.outcome or "UNFINISHED"}" '
                f'x="{x(start):.1f}" y="{by:.1f}" width="{w:.1f}" height="{bar_h:.1f}" rx="2" '
                f'fill="{colour(a.outcome)}"><title>{escape(tip)}</title></rect>'
            )
            if w >= 22 and row >= 14:
                out.append(
                    f'<text class="in-bar" x="{x(start) + 4:.1f}" y="{y + row * 0.7:.1f}">'
                    f"L{a.level}</text>"
                )
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out)


def memory_chart(data: ReportData) -> str:
    """Per level: the requested memory as a bar, each attempt's MaxRSS as a dot."""
    levels = data.levels
    rss_by_level = {
        lv.level: [
            (a, a.max_rss_kb / 1024)
            for t in data.tasks
            for a in t.attempts
            if a.level == lv.level and a.max_rss_kb
        ]
        for lv in levels
    }
    top_mb = max(
        [lv.mem_mb or 0 for lv in levels] + [r for v in rss_by_level.values() for _, r in v] + [1]
    )
    scale = top_mb * 1.08
    row, top = 46, 24
    height = top + row * max(len(levels), 1) + 8

    def x(mb: float) -> float:
        return LABEL_W + mb / scale * PLOT_W

    out = [_svg_open(WIDTH, height, "memory-chart", "MaxRSS against requested memory")]
    step = _nice_step(scale, 8, _MEM_STEPS)
    k = 0.0
    while k <= scale:
        out.append(
            f'<line class="grid" x1="{x(k):.1f}" y1="{top - 4}" x2="{x(k):.1f}" y2="{height - 8}"/>'
        )
        tick = fmt.mem(k) if k else "0"
        out.append(f'<text class="tick" x="{x(k):.1f}" y="{top - 8}">{tick}</text>')
        k += step
    for i, lv in enumerate(levels):
        y = top + i * row
        out.append(f'<g class="memory-row" data-level="{lv.level}">')
        out.append(
            f'<text class="label" x="{LABEL_W - 6}" y="{y + row / 2 + 4:.1f}">L{lv.level}</text>'
        )
        if lv.mem_mb:
            out.append(
                f'<rect class="requested" x="{LABEL_W}" y="{y + 8}" '
                f'width="{x(lv.mem_mb) - LABEL_W:.1f}" height="{row - 16}">'
                f"<title>level {lv.level} requested {fmt.req(lv.mem_mb)}</title></rect>"
            )
            out.append(
                f'<line class="limit" x1="{x(lv.mem_mb):.1f}" y1="{y + 4}" '
                f'x2="{x(lv.mem_mb):.1f}" y2="{y + row - 4}"/>'
            )
            out.append(
                f'<text class="limit-label" x="{x(lv.mem_mb) - 4:.1f}" y="{y + 20}">'
                f"requested {fmt.req(lv.mem_mb)}</text>"
            )
        for j, (a, mb) in enumerate(rss_by_level[lv.level]):
            cy = y + row / 2 + ((j * 7) % 5 - 2) * 3
            tip = f"task {fmt.index(a.index)} job {a.job_id}: MaxRSS {fmt.mem(mb)}, {a.outcome}"
            out.append(
                f'<circle class="rss" cx="{x(mb):.1f}" cy="{cy:.1f}" r="4" '
                f'fill="{colour(a.outcome)}"><title>{escape(tip)}</title></circle>'
            )
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out)


def peak_chart(data: ReportData) -> str:
    """Per level: median and largest MaxRSS as a share of the requested memory."""
    rows = [lv for lv in data.levels if lv.rss_mb is not None and lv.mem_mb]
    row, top = 30, 24
    height = top + row * max(len(rows), 1) + 8
    out = [_svg_open(WIDTH, height, "peak-chart", "MaxRSS as a share of requested memory")]
    for pct in (0, 25, 50, 75, 100):
        px = LABEL_W + pct / 100 * PLOT_W
        out.append(
            f'<line class="grid" x1="{px:.1f}" y1="{top - 4}" x2="{px:.1f}" y2="{height - 8}"/>'
        )
        out.append(f'<text class="tick" x="{px:.1f}" y="{top - 8}">{pct}%</text>')
    for i, lv in enumerate(rows):
        assert lv.rss_mb is not None and lv.mem_mb
        y = top + i * row
        med, peak = (min(v / lv.mem_mb, 1.0) for v in (lv.rss_mb.median, lv.rss_mb.max))
        out.append(f'<g class="peak-row" data-level="{lv.level}">')
        out.append(f'<text class="label" x="{LABEL_W - 6}" y="{y + 19}">L{lv.level}</text>')
        out.append(
            f'<rect class="peak" x="{LABEL_W}" y="{y + 6}" width="{peak * PLOT_W:.1f}" height="18">'
            f"<title>largest MaxRSS {fmt.mem(lv.rss_mb.max)} of {fmt.req(lv.mem_mb)}</title></rect>"
        )
        out.append(
            f'<rect class="median" x="{LABEL_W}" y="{y + 10}" '
            f'width="{med * PLOT_W:.1f}" height="10">'
            f"<title>median MaxRSS {fmt.mem(lv.rss_mb.median)}</title></rect>"
        )
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out)


def cost_bar(data: ReportData) -> str:
    """One stacked bar: useful core-hours, then each failure class."""
    c = data.cost
    total = c.total_core_s
    parts = [("COMPLETED", c.useful_core_s)] + [(r.outcome, r.core_s) for r in c.failed]
    out = [_svg_open(WIDTH, 34, "cost-bar", "Core-hours by outcome")]
    px = float(LABEL_W)
    for outcome, core_s in parts:
        if not total or not core_s:
            continue
        w = core_s / total * PLOT_W
        tip = f"{outcome}: {fmt.core_hours(core_s)} core-hours ({fmt.pct(core_s, total)})"
        out.append(
            f'<rect x="{px:.1f}" y="6" width="{w:.1f}" height="22" fill="{colour(outcome)}">'
            f"<title>{escape(tip)}</title></rect>"
        )
        px += w
    out.append("</svg>")
    return "\n".join(out)


def _svg_open(width: int, height: int, cls: str, title: str) -> str:
    return (
        f'<svg class="{cls}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>'
    )
