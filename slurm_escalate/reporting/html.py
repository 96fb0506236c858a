"""ReportData as one self-contained HTML file: inline CSS and SVG, no script, no URL."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from slurm_escalate.reporting import fmt, markdown, svg
from slurm_escalate.reporting.model import ReportData

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
 color:#1d2630;background:#f4f6f8;margin:0;padding:24px}
article{background:#fff;border:1px solid #d9dee4;border-radius:8px;padding:20px 24px;
 margin:0 auto 24px;max-width:1000px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:26px 0 8px;
 border-bottom:1px solid #e3e7eb;padding-bottom:4px}
.summary{font-size:16px;font-weight:600;margin:6px 0 10px}
.state{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:12px;
 vertical-align:middle;margin-left:8px}
.state.COMPLETED{background:#2e9d5b}.state.FAILED{background:#c0392b}
.state.RUNNING{background:#2980b9}.state.CANCELLED{background:#7f8c8d}
dl.meta{display:grid;grid-template-columns:110px 1fr;gap:2px 12px;margin:0;color:#44505c}
dl.meta dt{font-weight:600}dl.meta dd{margin:0;word-break:break-all}
code,pre{font:12px/1.4 ui-monospace,"DejaVu Sans Mono",monospace}
pre{background:#1e2630;color:#e6edf3;padding:8px 10px;border-radius:6px;overflow-x:auto}
table{border-collapse:collapse;margin:4px 0;font-size:13px}
th,td{border-bottom:1px solid #e6e9ed;padding:3px 10px;text-align:left;vertical-align:top}
th{background:#f0f3f6}td.r,th.r{text-align:right;font-variant-numeric:tabular-nums}
ul.advice li{margin:2px 0}
.legend span{display:inline-block;margin-right:14px;font-size:12px}
.legend i{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:4px;
 vertical-align:-1px}
svg{display:block;max-width:100%;height:auto;margin:6px 0}
svg text{font-size:11px;fill:#44505c}svg .label{text-anchor:end}
svg .tick{text-anchor:middle;fill:#7a8693;font-size:10px}
svg .in-bar{fill:#fff;font-size:10px;font-weight:600}
svg .grid{stroke:#e3e7eb;stroke-width:1}svg .stripe{fill:#f7f9fa}
svg .requested{fill:#dbe4ee}svg .limit{stroke:#c0392b;stroke-width:2}
svg .limit-label{fill:#c0392b;font-size:10px;text-anchor:end}
svg .rss{stroke:#fff;stroke-width:1}
svg .peak{fill:#a9c4e0}svg .median{fill:#2c6fad}
.note{color:#66727e;font-size:12px}
"""

_LEGEND = [
    ("COMPLETED", "completed"),
    ("OUT_OF_MEMORY", "out of memory"),
    ("TIMEOUT", "timeout"),
    ("FAILED", "failed"),
    ("CANCELLED", "cancelled"),
    ("NODE_FAIL", "node fail"),
    ("PREEMPTED", "preempted"),
    (None, "not finished"),
]


def _table(lines: list[str]) -> str:
    """Reuse the markdown tables: header row, alignment row, body rows -> <table>."""
    head, align, *body = lines

    def cells(line: str) -> list[str]:
        inner = line.strip()[2:-2]
        parts, cur, i = [], "", 0
        while i < len(inner):
            if inner.startswith("\\|", i):
                cur, i = cur + "|", i + 2
            elif inner.startswith(" | ", i):
                parts.append(cur)
                cur, i = "", i + 3
            else:
                cur, i = cur + inner[i], i + 1
        return [*parts, cur]

    right = [a.endswith(":") for a in cells(align)]

    def row(tag: str, values: list[str]) -> str:
        return (
            "<tr>"
            + "".join(
                f"<{tag}{' class=r' if right[k] else ''}>{escape(v)}</{tag}>"
                for k, v in enumerate(values)
            )
            + "</tr>"
        )

    rows = [row("th", cells(head))] + [row("td", cells(b)) for b in body]
    return "<table>" + "".join(rows) + "</table>"


def _legend(d: ReportData) -> str:
    """The outcomes this chain's attempts had (all of them when it has none yet)."""
    seen = {a.outcome for t in d.tasks for a in t.attempts}
    known = {k for k, _ in _LEGEND}
    shown = [(k, v) for k, v in _LEGEND if k in seen] or _LEGEND
    shown += [(k, k) for k in sorted(o for o in seen if o is not None and o not in known)]
    items = "".join(
        f'<span><i style="background:{svg.colour(k)}"></i>{escape(v)}</span>' for k, v in shown
    )
    return (
        f'<p class="legend">{items}<span><i style="background:{svg.QUEUED}"></i>queued</span></p>'
    )


def _chain(d: ReportData, now: float, detailed: bool) -> str:
    script = " ".join([d.script or "--wrap", *d.script_args])
    finished = fmt.when(d.finished_at)
    if d.finished_at is not None:
        finished += f" (after {fmt.duration(d.finished_at - d.created_at)})"
    meta = [
        ("script", f"<code>{escape(script)}</code>"),
        ("directory", f"<code>{escape(d.cwd)}</code>"),
        ("ladder", f"<code>{escape(d.config)}</code>" if d.config else "built-in (doubling)"),
        ("created", escape(fmt.when(d.created_at))),
        ("finished", escape(finished)),
        ("resubmissions", str(d.summary.resubmissions)),
    ]
    requeued = markdown.requeued_text(d)
    if requeued:
        meta.append(("requeued by Slurm", escape(requeued)))
    parts = [
        f'<article class="chain" id="chain-{escape(d.chain_id)}">',
        f"<h1>Chain {escape(d.chain_id)}"
        f'<span class="state {escape(d.state)}">{escape(d.state)}</span></h1>',
        f'<p class="summary">{escape(d.summary.text)}</p>',
        '<dl class="meta">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in meta) + "</dl>",
        "<h2>Timeline</h2>",
        _legend(d),
        svg.timeline(d, now),
        '<p class="note">One row per task, one bar per attempt (L = ladder level); '
        "a thin grey line is time spent queued. Hover a bar for details.</p>",
        "<h2>Memory: MaxRSS against requested</h2>",
        svg.memory_chart(d),
        _table(markdown.memory_table(d)),
        "<h3>Largest and median MaxRSS as a share of the request</h3>",
        svg.peak_chart(d),
        "<h2>Right-sizing advice</h2>",
        _advice(d),
        "<h2>Rounds and submissions</h2>",
        _table(markdown.submissions_table(d)),
        "<h2>Levels</h2>",
        _table(markdown.levels_table(d)),
        "<h2>Skipped rungs</h2>",
        _skips(d),
        "<h2>Cost</h2>",
        svg.cost_bar(d),
        _table(markdown.cost_table(d)[:-2]),
        f"<p>{escape(markdown.cost_table(d)[-1])}</p>",
        "<h2>Nodes</h2>",
        _table(markdown.nodes_table(d)[:-2]),
        f"<p>{escape(markdown.nodes_table(d)[-1])}</p>",
        "<h2>Failures that were not retried</h2>",
        _problems(d),
    ]
    if detailed:
        parts += ["<h2>Every attempt</h2>", _table(markdown.attempts_table(d))]
    parts.append("</article>")
    return "\n".join(parts)


def _advice(d: ReportData) -> str:
    """The advice as a list; its last line, ready to paste, as code."""
    adv = d.advice
    items = [escape(line) for line in adv.lines]
    if adv.paste is not None and adv.lines and adv.lines[-1] == adv.paste.line:
        items[-1] = f"{escape(adv.paste.lead)}: <code>{escape(adv.paste.text)}</code>"
    return '<ul class="advice">' + "".join(f"<li>{x}</li>" for x in items) + "</ul>"


def _skips(d: ReportData) -> str:
    lines = markdown.skips_section(d)
    return _table(lines) if d.skips else f"<p>{escape(lines[0])}</p>"


def _problems(d: ReportData) -> str:
    if not d.problems:
        return "<p>None: every finished task completed.</p>"
    lines = markdown.problems_section(d)
    end = next((i for i, line in enumerate(lines) if not line.startswith("|")), len(lines))
    out = [_table(lines[:end])]
    for p in d.problems:
        if p.log is None:
            continue
        where = escape(p.log.path or "its log")
        if p.log.lines is None:
            out.append(
                f"<p>Task {fmt.index(p.index)}: {escape(p.log.note)}: <code>{where}</code></p>"
            )
            continue
        body = "\n".join(p.log.lines) or "(empty)"
        out.append(f"<p>Task {fmt.index(p.index)}, last lines of <code>{where}</code>:</p>")
        out.append(f"<pre>{escape(body)}</pre>")
    return "\n".join(out)


def render_html(reports: Sequence[ReportData], now: float, detailed: bool = False) -> str:
    title = (
        f"slurm-escalate report: chain {reports[0].chain_id}"
        if len(reports) == 1
        else f"slurm-escalate report: {len(reports)} chains"
    )
    body = "\n".join(_chain(d, now, detailed) for d in reports) or "<p>No chains.</p>"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head>\n<body>\n{body}\n"
        f'<p class="note" style="text-align:center">generated {escape(fmt.when(now))} '
        "by slurm-escalate report</p>\n</body></html>\n"
    )
