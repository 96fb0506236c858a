"""`slurm-escalate report` on a real finished mixed chain: markdown, JSON, HTML and
SQLite, and the HTML opened in a real headless browser (Debian's chromium).

The browser part skips only when chromium is not installed and CI is not set;
under CI=true a missing chromium is a failure (`./dev.sh test` installs it).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from conftest import skip_unless_ci

pytestmark = pytest.mark.e2e

# Level 0 is too small for 400 MiB, level 1 is big enough (as in test_escalation_e2e).
LADDER = [
    {"partition": "day", "mem": "150M", "time": "00:02:00"},
    {"partition": "week", "mem": "700M", "time": "00:02:00"},
]
# Task 1 holds its memory for a few seconds so that sacct samples MaxRSS (every 2 s here).
BODY = """
hold_memory() {
    PYTHON -c 'import sys, time
block = bytearray(int(sys.argv[1]) * 1024 * 1024)
for i in range(0, len(block), 4096):
    block[i] = 1
time.sleep(5)' "$1"
}
case "$idx" in
    1) hold_memory 400 || exit 1 ;;
    2) echo "task 2: a bug" >&2; exit 3 ;;
    *) sleep 1 ;;
esac
"""
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def browser(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    exe = chromium()
    if exe is None:
        skip_unless_ci("chromium is not installed (./dev.sh test installs it)")
    return subprocess.run(
        [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.timeout(900)
def test_report_of_a_mixed_chain_in_every_format(e2e):
    ladder = e2e.ladder(LADDER)
    script = e2e.job_script(BODY.replace("PYTHON", e2e.python))
    r = e2e.run_chain(script, config=ladder, sbatch=["--array=0-3", "--output=%x-%a.out"])
    assert r.returncode == 1, r.describe()  # task 2's bug fails the chain
    chain = r.chain_id

    md = e2e.slurm_escalate("report", chain, "-o", "report.md")
    assert md.returncode == 0, md.describe()
    text = (e2e.dir / "report.md").read_text()
    assert "**3 of 4 tasks completed; 1 failed (not retried); 0 exhausted.**" in text, text
    assert "task 2: a bug" in text, text  # the tail of the failed task's log

    js = e2e.slurm_escalate("report", chain, "--format", "json")
    assert js.returncode == 0, js.describe()
    doc = json.loads(js.stdout)
    assert doc["schema"] == 1
    (c,) = doc["chains"]
    (problem,) = c["problems"]
    assert (problem["index"], problem["state"], problem["exit_code"]) == (2, "FAILED", 3)
    assert problem["log"]["path"] == str(e2e.dir / f"{e2e.job_name}-2.out")
    assert "task 2: a bug" in problem["log"]["lines"]
    assert problem["node"], problem
    level1 = c["levels"][1]
    assert level1["outcomes"] == {"COMPLETED": 1}
    assert level1["max_rss_mb"]["max"] > 300, level1  # the 400 MiB task, measured by sacct
    assert c["advice"]["recommended_start_level"] == 1, c["advice"]
    first, second = (sub["job_id"] for sub in c["submissions"])
    assert f"| 1 | {first} | 0 | 150M | 2m | day | 4 | 2 | 1 | 0 | 1 | FINISHED |" in text, text
    assert f"| 2 | {second} | 1 | 700M | 2m | week | 1 | 1 | 0 | 0 | 0 | FINISHED |" in text
    assert c["cost"]["useful_attempts"] == 3
    assert [r["outcome"] for r in c["cost"]["failed_by_outcome"]] in (
        ["OUT_OF_MEMORY", "FAILED"],
        ["FAILED", "OUT_OF_MEMORY"],
    )

    db = e2e.slurm_escalate("report", chain, "--db", "report.sqlite")
    assert db.returncode == 0, db.describe()
    con = sqlite3.connect(e2e.dir / "report.sqlite")
    assert con.execute("SELECT count(*) FROM attempts").fetchone() == (5,)
    assert con.execute("SELECT count(*) FROM submissions").fetchone() == (2,)
    assert con.execute(
        "SELECT task_index, exit_code FROM attempts WHERE outcome = 'FAILED'"
    ).fetchall() == [(2, 3)]
    assert con.execute("SELECT count(*) FROM attempts WHERE node IS NULL").fetchone() == (0,)

    html = e2e.slurm_escalate("report", chain, "-o", "report.html", "--detailed")
    assert html.returncode == 0, html.describe()
    page = e2e.dir / "report.html"
    source = page.read_text()
    assert "<script" not in source and "http" not in source

    profile = e2e.dir / "chromium-profile"
    dom = browser("--dump-dom", page.as_uri(), profile=profile)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count('class="timeline-row"') == 4, dom.stdout[:2000]
    for index in range(4):
        assert f'data-task="{index}"' in dom.stdout
    assert dom.stdout.count('class="bar"') == 5
    assert "3 of 4 tasks completed" in dom.stdout

    shot = e2e.dir / "report.png"
    snap = browser(f"--screenshot={shot}", "--window-size=1200,900", page.as_uri(), profile=profile)
    assert snap.returncode == 0, snap.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000, len(data)
