"""``slurm-escalate report``: what a chain did, what it cost, how to size the next one.

``stats.build_report`` turns a Chain into a typed ReportData (pure); the
renderers ``markdown``, ``html`` (one self-contained file), ``jsonout``
(documented in docs/report-json.md) and ``sqlite`` only read that.
``logs`` reads task logs; loading chains for a report is the service's
(service/collect.py).
"""

from __future__ import annotations

from slurm_escalate.reporting.html import render_html
from slurm_escalate.reporting.jsonout import render_json
from slurm_escalate.reporting.markdown import render_markdown
from slurm_escalate.reporting.model import ReportData
from slurm_escalate.reporting.sqlite import write_sqlite
from slurm_escalate.reporting.stats import build_report

__all__ = [
    "ReportData",
    "build_report",
    "render_html",
    "render_json",
    "render_markdown",
    "write_sqlite",
]
