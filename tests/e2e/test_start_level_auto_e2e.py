"""End to end on the real cluster: the first attempt sized from history (issue 12, part 3).

A mixed array runs twice with the same script. The first run (``--start-level auto`` with no
history: level 0) sends its two heavy tasks to OUT_OF_MEMORY at 150M and up to 700M. Then
``slurm-escalate suggest`` reads that chain and says level 1, and the second run, with
``--start-level auto``, starts every task at level 1: nothing fails, and the failed
core-seconds (elapsed x allocated CPUs of every attempt that did not complete, from sacct)
drop from the first run's to zero. Both runs' figures are printed (``pytest -rP`` shows them).
"""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

# Level 0 is too small for the heavy tasks, level 1 is big enough (as in test_escalation_e2e).
LADDER = [
    {"partition": "day", "mem": "150M", "time": "00:02:00"},
    {"partition": "week", "mem": "700M", "time": "00:02:00"},
]
HEAVY = (4, 5)
# Every task works 5 s first, so an attempt that runs out of memory has burnt core-seconds
# (an OOM at once would cost 0 s, and there would be nothing to save). The heavy tasks then
# hold 300 MiB for 6 s, long enough for sacct to sample MaxRSS (every 2 s here).
BODY = """
sleep 5
case "$idx" in
    4|5) PYTHON -c 'import time
block = bytearray(300 * 1024 * 1024)
for i in range(0, len(block), 4096):
    block[i] = 1
time.sleep(6)' || exit 1 ;;
esac
"""


def failed_core_s(e2e: Any, status: dict[str, Any]) -> tuple[int, int, list[str]]:
    """(failed core-seconds, attempts, rows) of a chain, from sacct: ElapsedRaw x AllocCPUS of
    every attempt whose State is not COMPLETED."""
    ids = [j for t in status["tasks"] for j in t["job_ids"]]
    e2e.sacct(*ids, want=ids)  # waits until slurmdbd has every attempt, final
    out = subprocess.run(
        ["sacct", "-n", "-P", "-X", "-j", ",".join(sorted({e2e.job_base(j) for j in ids}))]
        + ["-o", "JobID,State,ElapsedRaw,AllocCPUS,ReqMem"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    rows = [line.split("|") for line in out.splitlines() if line.strip()]
    rows = [r for r in rows if r[0] in ids]
    assert len(rows) == len(ids), (ids, rows)
    lost = sum(int(el) * int(cpus) for _, state, el, cpus, _ in rows if state != "COMPLETED")
    return lost, len(rows), ["|".join(r) for r in sorted(rows)]


def report_cost(e2e: Any, chain_id: str) -> dict[str, Any]:
    r = e2e.slurm_escalate("report", chain_id, "--format", "json")
    assert r.returncode == 0, r.describe()
    (chain,) = json.loads(r.stdout)["chains"]
    return chain


@pytest.mark.timeout(900)
def test_second_run_starts_where_the_first_needed_and_burns_less(e2e):
    ladder = e2e.ladder(LADDER)
    script = e2e.job_script(BODY.replace("PYTHON", e2e.python))
    sbatch = ["--array=0-5", "--output=%x-%a.out"]

    # ---- first run: no history, so auto starts at level 0; the heavy tasks climb
    r1 = e2e.run_chain(script, config=ladder, own=["--start-level", "auto"], sbatch=sbatch)
    assert r1.returncode == 0, r1.describe()
    first = r1.chain_id
    status1 = e2e.wait_chain(first)
    assert status1["state"] == "COMPLETED", status1
    log1 = (e2e.home / "chains" / first / "monitor.log").read_text()
    assert "start level 0 (--start-level auto): no earlier chain of this script: level 0" in log1
    tasks1 = e2e.by_index(status1)
    for i, task in tasks1.items():
        rows = e2e.task_sacct(task)
        if i in HEAVY:
            assert [(x.state, x.req_mem, x.partition) for x in rows] == [
                ("OUT_OF_MEMORY", "150M", "day"),
                ("COMPLETED", "700M", "week"),
            ], (i, rows)
        else:
            assert [(x.state, x.req_mem) for x in rows] == [("COMPLETED", "150M")], (i, rows)

    # ---- suggest reads the first chain: level 1, with its evidence
    s = e2e.slurm_escalate("suggest", str(script), "--json")
    assert s.returncode == 0, s.describe()
    doc = json.loads(s.stdout)
    assert (doc["chains"], doc["tasks"], doc["verdict"]) == ([first], 6, "fits"), doc
    assert (doc["start_level"], doc["option"]) == (1, "--start-level 1"), doc
    assert doc["level"] == {"partition": "week", "mem_mb": 700, "time_s": 120}, doc
    mem = doc["memory"]
    # the heavy tasks' MaxRSS as sacct sampled it at 700M, or, unsampled, "more than 150M"
    assert (mem["lower_bound"] and mem["p95_mb"] == 150) or 300 <= mem["p95_mb"] < 700, mem
    assert mem["tasks"] >= 2 and mem["need_mb"] > 150, mem
    assert doc["time"]["p95_s"] >= 5 and not doc["time"]["lower_bound"], doc["time"]
    text = e2e.slurm_escalate("suggest", str(script))
    assert text.returncode == 0, text.describe()
    assert text.stdout.splitlines()[0] == "start at level 1: --start-level 1", text.stdout

    # ---- --dry-run shows the level it would choose, and why, and submits nothing
    own = ["--config", str(ladder), "--start-level", "auto", "--dry-run"]
    dry = e2e.sbatch_escalate(*own, f"--job-name={e2e.job_name}", *sbatch, str(script))
    assert dry.returncode == 0, dry.describe()
    lines = dry.stdout.splitlines()
    assert lines[0] == f"# start level 1 (--start-level auto): {doc['evidence']}", dry.stdout
    (sbatch_line,) = [line for line in lines if line.startswith("sbatch ")]
    assert "--partition=week" in sbatch_line and "--mem=700M" in sbatch_line, sbatch_line
    assert [c.name for c in e2e.chain_dirs()] == [first], "a dry run creates no chain"

    # ---- second run, the same script: auto starts every task at level 1
    r2 = e2e.run_chain(script, config=ladder, own=["--start-level", "auto"], sbatch=sbatch)
    assert r2.returncode == 0, r2.describe()
    second = r2.chain_id
    status2 = e2e.wait_chain(second)
    assert status2["state"] == "COMPLETED", status2
    log2 = (e2e.home / "chains" / second / "monitor.log").read_text()
    note = re.search(r"start level (\d+) \(--start-level auto\): (.*)", log2)
    assert note is not None, log2
    assert note.group(1) == "1" and note.group(2) == doc["evidence"], (note.group(0), doc)
    assert note.group(2).startswith(f"6 tasks of 1 earlier chain of this script ({first}): ")
    assert note.group(2).endswith("level 1 (700M, 2m, week) is the lowest that covers them")
    assert [(sub["level"], sub["array"]) for sub in status2["submissions"]] == [(1, "0-5")]
    for i, task in e2e.by_index(status2).items():
        (row,) = e2e.task_sacct(task)
        assert (row.state, row.req_mem, row.partition) == ("COMPLETED", "700M", "week"), (i, row)

    # ---- the failed core-seconds of both runs, from sacct and from the reports
    lost1, attempts1, rows1 = failed_core_s(e2e, status1)
    lost2, attempts2, rows2 = failed_core_s(e2e, status2)
    cost1, cost2 = report_cost(e2e, first)["cost"], report_cost(e2e, second)["cost"]
    print(
        f"first run  {first}: start level 0, {attempts1} attempts, failed core-s {lost1} (sacct)"
        f", {cost1['failed_core_s']} (report); useful core-s {cost1['useful_core_s']}"
    )
    print("  " + "\n  ".join(rows1))
    print(
        f"second run {second}: start level 1 (auto), {attempts2} attempts, failed core-s "
        f"{lost2} (sacct), {cost2['failed_core_s']} (report); useful core-s "
        f"{cost2['useful_core_s']}"
    )
    print("  " + "\n  ".join(rows2))
    print(f"evidence: {note.group(0)}")
    assert attempts1 == 8 and attempts2 == 6, (rows1, rows2)
    assert lost1 >= 2 * 5, rows1  # two OOM attempts, each after 5 s of work
    assert lost2 < lost1 and lost2 == 0, rows2
    assert cost2["failed_core_s"] < cost1["failed_core_s"], (cost1, cost2)
