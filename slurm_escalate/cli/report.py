"""``slurm-escalate report``: a chain's story as markdown, JSON, HTML and/or SQLite.

One service call (``service.collect.report``: load the chains, export SQLite),
then rendered here in the format asked for.
"""

from __future__ import annotations

from pathlib import Path

import click

from slurm_escalate.cli import complete
from slurm_escalate.cli.common import EXIT_OK, HELP, domain_errors, echo, pass_env
from slurm_escalate.errors import StateError
from slurm_escalate.reporting.html import render_html
from slurm_escalate.reporting.jsonout import render_json
from slurm_escalate.reporting.markdown import render_markdown
from slurm_escalate.service.collect import ReportInput
from slurm_escalate.service.collect import report as collect_reports
from slurm_escalate.service.env import Env

FORMATS = ("md", "json", "html")
_BY_SUFFIX = {".json": "json", ".html": "html", ".htm": "html", ".md": "md"}

REPORT_HELP = """Report what CHAIN (or every chain, --all) did and what it cost.

\b
Rounds and submissions, per-level outcomes and runtimes, MaxRSS against the
requested memory, right-sizing advice, core-hours lost to failures, nodes,
and the tasks that did not complete with the last lines of their logs.

\b
Examples:
  slurm-escalate report 20261122-101500-ab12              # markdown on stdout
  slurm-escalate report ab12 --format html -o report.html # one self-contained file
  slurm-escalate report --all --format json               # docs/report-json.md
  slurm-escalate report --all --db chains.sqlite          # tables for ad-hoc SQL

Without --format, the format follows -o's suffix (.html, .json), else md.
"""


@click.command("report", help=REPORT_HELP, context_settings=HELP)
@click.argument("chain_ref", metavar="CHAIN", required=False, shell_complete=complete.chains)
@click.option("--all", "all_chains", is_flag=True, help="Every chain in the state directory.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Output format [default: md].")
@click.option("--detailed", is_flag=True, help="Add every attempt of every task (md, html).")
@click.option(
    "-o",
    "--output",
    metavar="FILE",
    help="Write the report to FILE, not stdout.",
    shell_complete=complete.files,
)
@click.option(
    "--db",
    metavar="FILE",
    help="Also export chains, submissions, attempts to SQLite.",
    shell_complete=complete.files,
)
@pass_env
@domain_errors
def report(
    env: Env,
    chain_ref: str | None,
    all_chains: bool,
    fmt: str | None,
    detailed: bool,
    output: str | None,
    db: str | None,
) -> int:
    def warn(warning: str) -> None:
        click.echo(f"warning: {warning}", err=True)

    found = collect_reports(env, ReportInput(chain_ref, all_chains, db), warn)
    reports, now = found.reports, found.now
    if db is not None:
        click.echo(f"wrote {found.db_written} chain(s) to {db}", err=True)
        if fmt is None and output is None:
            return EXIT_OK
    if fmt is None:
        fmt = _BY_SUFFIX.get(Path(output).suffix.lower(), "md") if output else "md"
    if fmt == "json":
        text = render_json(reports, now)
    elif fmt == "html":
        text = render_html(reports, now, detailed)
    else:
        text = "\n".join(render_markdown(r, detailed) for r in reports) or "No chains.\n"
    if output is None:
        echo(env, text, nl=False)
        return EXIT_OK
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as e:
        raise StateError(f"cannot write {output}: {e.strerror}") from None
    click.echo(f"wrote {output}", err=True)
    return EXIT_OK
