"""``slurm-escalate report``: a chain's story as markdown, JSON, HTML and/or SQLite.

Registered on the ``slurm-escalate`` group at the end of ``cli.py``, which this
module uses only at call time, so either may be imported first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from slurm_escalate.errors import StateError
from slurm_escalate.reporting import (
    render_html,
    render_json,
    render_markdown,
    write_sqlite,
)
from slurm_escalate.service.collect import load_reports
from slurm_escalate.state.store import ChainStore

EXIT_OK = 0
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


def _domain_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """cli._domain_errors (one-line errors, exit 2), looked up when the command runs."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from slurm_escalate.cli.main import _domain_errors as translate

        return translate(fn)(*args, **kwargs)

    wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
    return wrapper


@click.command("report", help=REPORT_HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("chain_ref", metavar="CHAIN", required=False)
@click.option("--all", "all_chains", is_flag=True, help="Every chain in the state directory.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Output format [default: md].")
@click.option("--detailed", is_flag=True, help="Add every attempt of every task (md, html).")
@click.option("-o", "--output", metavar="FILE", help="Write the report to FILE, not stdout.")
@click.option("--db", metavar="FILE", help="Also export chains, submissions, attempts to SQLite.")
@_domain_errors
def report(
    chain_ref: str | None,
    all_chains: bool,
    fmt: str | None,
    detailed: bool,
    output: str | None,
    db: str | None,
) -> int:
    now = time.time()
    reports, warnings = load_reports(ChainStore(), chain_ref, all_chains)
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    if db is not None:
        write_sqlite(db, reports)
        click.echo(f"wrote {len(reports)} chain(s) to {db}", err=True)
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
        click.echo(text, nl=False)
        return EXIT_OK
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as e:
        raise StateError(f"cannot write {output}: {e.strerror}") from None
    click.echo(f"wrote {output}", err=True)
    return EXIT_OK
