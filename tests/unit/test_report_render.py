"""The report's renderers on the mixed chain of test_report: exact markdown rows, the
documented JSON, a self-contained HTML file, and the SQLite export."""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from pathlib import Path

import pytest
from test_report import mixed_chain

from slurm_escalate.reporting.html import render_html
from slurm_escalate.reporting.jsonout import render_json
from slurm_escalate.reporting.markdown import render_markdown
from slurm_escalate.reporting.model import ReportData
from slurm_escalate.reporting.sqlite import write_sqlite
from slurm_escalate.service import prepare as app
from slurm_escalate.service.collect import chain_report
from slurm_escalate.state.store import ChainStore
from slurm_escalate.testing import FakeSlurm, FastClock, ok

REPO = Path(__file__).resolve().parents[2]
NOW = 1_790_000_100.0


@pytest.fixture
def data(tmp_path: Path) -> ReportData:
    chain, store = mixed_chain(tmp_path)
    (tmp_path / "t-4.log").write_text("start\nboom | bad\n```\nexit 3\n")
    return chain_report(chain, store)


def section(md: str, title: str) -> list[str]:
    """The lines of one '## title' section, blank lines dropped."""
    body = md.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]
    return [line for line in body.splitlines() if line]


def test_markdown_summary_line(data: ReportData) -> None:
    md = render_markdown(data)
    assert md.startswith(f"# Chain {data.chain_id}\n\n")
    assert "**5 of 7 tasks completed; 1 failed (not retried); 1 exhausted.**" in md


def test_markdown_rounds_table(data: ReportData) -> None:
    assert section(render_markdown(data), "Rounds and submissions") == [
        "| round | job id | level | mem | time | partition | tasks | done | OOM | timeout "
        "| failed | status |",
        "| ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |",
        "| 1 | 100 | 0 | 400M | 1m | devel | 7 | 2 | 2 | 1 | 2 | FINISHED |",
        "| 2 | 101 | 0 | 400M | 1m | devel | 1 | 1 | 0 | 0 | 0 | FINISHED |",
        "| 2 | 102 | 1 | 1000M | 2m | day | 3 | 2 | 1 | 0 | 0 | FINISHED |",
        "| 3 | 103 | 2 | 3000M | 4m | week | 1 | 0 | 1 | 0 | 0 | FINISHED |",
    ]


def test_markdown_levels_and_memory_tables(data: ReportData) -> None:
    md = render_markdown(data)
    assert section(md, "Levels")[2:] == [
        "| 0 | devel | 400M | 1m | 8 | COMPLETED 3, OUT_OF_MEMORY 2, FAILED 1, NODE_FAIL 1, "
        "TIMEOUT 1 | 5s | 18s | 1m |",
        "| 1 | day | 1000M | 2m | 3 | COMPLETED 2, OUT_OF_MEMORY 1 | 24s | 40s | 1m30s |",
        "| 2 | week | 3000M | 4m | 1 | OUT_OF_MEMORY 1 | 48s | 48s | 48s |",
    ]
    assert section(md, "Memory: MaxRSS against requested") == [
        "| level | requested | sampled | MaxRSS min | median | max | peak / requested |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        "| 0 | 400M | 5 of 8 | 50M | 200M | 390M | 98% |",
        "| 1 | 1000M | 3 of 3 | 60M | 700M | 950M | 95% |",
        "| 2 | 3000M | 1 of 1 | 2.8G | 2.8G | 2.8G | 97% |",
    ]


def test_markdown_advice_cost_and_nodes(data: ReportData) -> None:
    md = render_markdown(data)
    assert section(md, "Right-sizing advice") == [
        "- 95% of tasks ran under 1m30s; over 5% needed more than 3000M (they ran out of memory "
        "there); no level has room for them: add a level above level 2",
        "- 2 of 5 completed tasks (40%) needed no retry at level 0",
        "- 3 of 5 completed tasks had to be retried; their failed attempts cost 0.058 core-hours",
        '- add above level 2 of the ladder: `- {partition: week, mem: 3700M, time: "00:04:00"}`',
    ]
    assert section(md, "Cost") == [
        "| attempts | count | core-hours | share |",
        "| --- | ---: | ---: | ---: |",
        "| useful (COMPLETED) | 5 | 0.103 | 49% |",
        "| failed: OUT_OF_MEMORY | 4 | 0.063 | 30% |",
        "| failed: TIMEOUT | 1 | 0.033 | 16% |",
        "| failed: NODE_FAIL | 1 | 0.008 | 4% |",
        "| failed: FAILED | 1 | 0.003 | 1% |",
        "| total | 12 | 0.211 | 100% |",
        "Failed attempts cost 0.108 core-hours against 0.103 core-hours of useful work.",
    ]
    assert section(md, "Nodes")[2:] == [
        "| d1 | 4 | 2 | 2 | 0 |",
        "| d2 | 4 | 1 | 3 | 1 |",
        "| n1 | 2 | 1 | 1 | 0 |",
        "| n2 | 1 | 1 | 0 | 0 |",
        "| w1 | 1 | 0 | 1 | 0 |",
        "NODE_FAIL happened on: d2.",
    ]


def test_markdown_failures_with_log_tail(data: ReportData, tmp_path: Path) -> None:
    assert section(render_markdown(data), "Failures that were not retried") == [
        "| task | job id | state | exit | node | elapsed | reason |",
        "| ---: | --- | --- | ---: | --- | ---: | --- |",
        "| 4 | 100_4 | FAILED | 3 | d1 | 5s | FAILED exit 3 (not retried) |",
        "| 6 | 103_6 | EXHAUSTED | 0 | w1 | 48s | OUT_OF_MEMORY at top level 2 |",
        f"Task 4, last lines of `{tmp_path}/t-4.log`:",
        "```",
        "start",
        "boom | bad",
        "'''",  # a fence inside the log cannot close the block
        "exit 3",
        "```",
        f"Task 6: log not readable (No such file or directory): `{tmp_path}/t-6.log`.",
    ]


def test_markdown_detailed_lists_every_attempt(data: ReportData) -> None:
    assert "## Every attempt" not in render_markdown(data)
    rows = section(render_markdown(data, detailed=True), "Every attempt")
    assert len(rows) == 2 + 12
    assert rows[-1] == (
        "| 6 | 3 | 103_6 | 2 | OUT_OF_MEMORY | 0 | w1 | 2026-11-22T10:10:00 | 48s | 2.8G | 3000M |"
    )


def test_json_is_the_documented_shape(data: ReportData) -> None:
    doc = json.loads(render_json([data], NOW))
    assert doc["schema"] == 1 and len(doc["chains"]) == 1
    chain = doc["chains"][0]
    assert chain["summary"]["text"] == "5 of 7 tasks completed; 1 failed (not retried); 1 exhausted"
    assert chain["cost"]["failed_by_outcome"][0] == {
        "outcome": "OUT_OF_MEMORY",
        "attempts": 4,
        "core_s": 228,
        "core_hours": 0.063333,
    }
    assert chain["levels"][0]["runtime_s"] == {"min": 5, "median": 17.5, "max": 60, "count": 8}
    advice = chain["advice"]
    assert advice["recommended_start_level"] is None  # task 6 needed more than the top's 3000M
    assert advice["paste"] == '- {partition: week, mem: 3700M, time: "00:04:00"}'
    assert advice["lines"][-1] == f"add above level 2 of the ladder: {advice['paste']}"
    assert advice["sizing"] == {
        "verdict": "none_fits",
        "start_level": 2,
        "option": "--start-level 2",
        "tasks": 6,
        "memory": {
            "p95_mb": 3000.0,
            "lower_bound": True,
            "tasks": 6,
            "lower_bounds": 1,
            "headroom": 0.2,
            "need_mb": 3600.0,
        },
        "time": {
            "p95_s": 90.0,
            "lower_bound": False,
            "tasks": 5,
            "lower_bounds": 0,
            "headroom": 0.1,
            "need_s": 99.0,
        },
        "level": {"partition": "week", "mem_mb": 3000, "time_s": 240},
        "new_level": advice["paste"],
    }
    assert chain["problems"][0]["log"]["lines"] == ["start", "boom | bad", "```", "exit 3"]
    assert len(chain["tasks"]) == 7 and len(chain["tasks"][6]["attempts"]) == 3
    # every key the renderer writes is documented in docs/report-json.md
    documented = set(re.findall(r"`([a-z_0-9]+)`", (REPO / "docs/report-json.md").read_text()))
    written: set[str] = set()

    def keys(value: object) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if k not in ("outcomes",):  # keyed by outcome name
                    written.add(k)
                    keys(v)
        elif isinstance(value, list):
            for item in value:
                keys(item)

    keys(doc)
    assert written - documented == set()


def test_html_is_self_contained_with_a_timeline_row_per_task(data: ReportData) -> None:
    html = render_html([data], NOW)
    assert html.startswith("<!DOCTYPE html>")
    assert "<script" not in html and "http" not in html and "url(" not in html
    assert html.count('class="timeline-row"') == 7
    assert html.count('class="bar"') == 12
    assert html.count('data-outcome="OUT_OF_MEMORY"') == 4
    assert html.count('class="memory-row"') == 3
    assert html.count('class="rss"') == 9  # every sampled MaxRSS
    assert "5 of 7 tasks completed; 1 failed (not retried); 1 exhausted" in html
    assert "boom | bad" in html and "<td class=r>0.211</td>" in html


def test_html_of_several_chains(data: ReportData) -> None:
    html = render_html([data, data], NOW, detailed=True)
    assert html.count('<article class="chain"') == 2
    assert "<title>slurm-escalate report: 2 chains</title>" in html


def test_sqlite_export(data: ReportData, tmp_path: Path) -> None:
    db = tmp_path / "r.sqlite"
    write_sqlite(str(db), [data])
    write_sqlite(str(db), [data])  # again: the chain is replaced, not doubled
    con = sqlite3.connect(db)
    assert con.execute("SELECT count(*) FROM chains").fetchone() == (1,)
    assert con.execute("SELECT count(*) FROM submissions").fetchone() == (4,)
    assert con.execute("SELECT count(*) FROM tasks").fetchone() == (7,)
    rows = con.execute(
        "SELECT outcome, count(*), sum(core_s) FROM attempts GROUP BY outcome ORDER BY outcome"
    ).fetchall()
    assert rows == [
        ("COMPLETED", 5, 370),
        ("FAILED", 1, 10),
        ("NODE_FAIL", 1, 30),
        ("OUT_OF_MEMORY", 4, 228),
        ("TIMEOUT", 1, 120),
    ]
    assert con.execute(
        "SELECT completed, failed, exhausted, recommended_start_level FROM chains"
    ).fetchone() == (5, 1, 1, None)  # no level fits task 6 (see test_json_is_the_documented_shape)


def _chain_with(tmp_path: Path, tokens: list[str], polls: int, run_polls: int) -> ReportData:
    (tmp_path / "job.sh").write_text("#!/bin/bash\necho hi\n")
    slurm = FakeSlurm(ok, run_polls=run_polls)
    options = app.SubmitOptions(min_poll=1)
    prepared = app.prepare(tokens, options, slurm, str(tmp_path))
    store = ChainStore(tmp_path / "state")
    chain = app.create_chain(prepared, options, store, str(tmp_path), 1_790_000_000.0)
    monitor = app.make_monitor(
        chain,
        prepared,
        store,
        slurm,
        {},
        clock=FastClock(),
    )
    monitor.start()
    if polls:
        for _ in range(polls):
            monitor.poll_once()
    else:
        monitor.run(threading.Event())
    return chain_report(monitor.chain, store)


def test_a_running_chain_reports_what_is_known(tmp_path: Path) -> None:
    data = _chain_with(tmp_path, ["--array=0-2", "--mem=100M", "job.sh"], polls=1, run_polls=5)
    assert data.summary.text == (
        "0 of 3 tasks completed; 0 failed (not retried); 0 exhausted; 3 not finished yet"
    )
    assert [s.status for s in data.submissions] == ["RUNNING"]
    assert data.advice.lines == ("no task has completed yet: nothing to size from",)
    md = render_markdown(data, detailed=True)
    assert "| 0 | 1 | 100_0 | 0 | unfinished | - | - | - | - | - | 100M |" in md
    html = render_html([data], NOW)
    assert html.count('class="timeline-row"') == 3 and 'class="bar"' not in html


def test_a_non_array_job(tmp_path: Path) -> None:
    data = _chain_with(tmp_path, ["--mem=100M", "job.sh"], polls=0, run_polls=1)
    assert data.summary.text == "1 of 1 tasks completed; 0 failed (not retried); 0 exhausted"
    md = render_markdown(data, detailed=True)
    assert "| - | 1 | 100 | 0 | COMPLETED | 0 | - | 2026-11-22T10:00:00 | - | - | 100M |" in md
    html = render_html([data], NOW)
    assert html.count('class="timeline-row"') == 1 and 'data-task="job"' in html
    assert json.loads(render_json([data], NOW))["chains"][0]["tasks"][0]["index"] is None
