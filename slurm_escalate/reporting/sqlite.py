"""ReportData as SQLite tables for ad-hoc queries (``report --db FILE``).

Tables (one row per chain, submission, task, attempt; a chain already in the
file is replaced, so exporting again is safe and several chains accumulate)::

    chains(chain_id PK, state, script, cwd, config, created_at, finished_at,
           tasks, completed, failed, exhausted, cancelled, resubmissions,
           useful_core_s, failed_core_s, recommended_start_level)
    submissions(chain_id, seq, round, job_id, level, array, mem_mb, time_s,
           partition, tasks, done, oom, timeout, failed, status)
    tasks(chain_id, task_index, state, level, attempts, exit_code, reason)
    attempts(chain_id, task_index, attempt, job_id, array_job_id, round,
           submission, level, outcome, exit_code, reason, start, end, elapsed_s,
           node, partition, req_mem_mb, timelimit_s, max_rss_kb, cpus, core_s)

Times are ISO text (local time); a non-array job's task_index is NULL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime

from slurm_escalate.errors import StateError
from slurm_escalate.reporting.model import ReportData

SCHEMA = """
CREATE TABLE IF NOT EXISTS chains (
  chain_id TEXT PRIMARY KEY, state TEXT, script TEXT, cwd TEXT, config TEXT,
  created_at TEXT, finished_at TEXT, tasks INTEGER, completed INTEGER, failed INTEGER,
  exhausted INTEGER, cancelled INTEGER, resubmissions INTEGER,
  useful_core_s INTEGER, failed_core_s INTEGER, recommended_start_level INTEGER);
CREATE TABLE IF NOT EXISTS submissions (
  chain_id TEXT, seq INTEGER, round INTEGER, job_id TEXT, level INTEGER, array TEXT,
  mem_mb INTEGER, time_s INTEGER, partition TEXT, tasks INTEGER, done INTEGER, oom INTEGER,
  timeout INTEGER, failed INTEGER, status TEXT, PRIMARY KEY (chain_id, seq));
CREATE TABLE IF NOT EXISTS tasks (
  chain_id TEXT, task_index INTEGER, state TEXT, level INTEGER, attempts INTEGER,
  exit_code INTEGER, reason TEXT);
CREATE TABLE IF NOT EXISTS attempts (
  chain_id TEXT, task_index INTEGER, attempt INTEGER, job_id TEXT, array_job_id TEXT,
  round INTEGER, submission INTEGER, level INTEGER, outcome TEXT, exit_code INTEGER,
  reason TEXT, start TEXT, "end" TEXT, elapsed_s INTEGER, node TEXT, partition TEXT,
  req_mem_mb INTEGER, timelimit_s INTEGER, max_rss_kb INTEGER, cpus INTEGER, core_s INTEGER);
CREATE INDEX IF NOT EXISTS attempts_chain ON attempts (chain_id, task_index);
"""


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts).isoformat(timespec="seconds")


def write_sqlite(path: str, reports: Sequence[ReportData]) -> None:
    try:
        con = sqlite3.connect(path)
    except sqlite3.Error as e:
        raise StateError(f"cannot open {path}: {e}") from None
    try:
        with con:
            con.executescript(SCHEMA)
            for d in reports:
                _write_chain(con, d)
    except sqlite3.Error as e:
        raise StateError(f"cannot write {path}: {e}") from None
    finally:
        con.close()


def _write_chain(con: sqlite3.Connection, d: ReportData) -> None:
    for table in ("chains", "submissions", "tasks", "attempts"):
        con.execute(f"DELETE FROM {table} WHERE chain_id = ?", (d.chain_id,))
    s = d.summary
    con.execute(
        "INSERT INTO chains VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            d.chain_id, d.state, d.script, d.cwd, d.config, _iso(d.created_at),
            _iso(d.finished_at), s.tasks, s.completed, s.failed, s.exhausted, s.cancelled,
            s.resubmissions, d.cost.useful_core_s, d.cost.failed_core_s,
            d.advice.recommended_start_level,
        ),
    )  # fmt: skip
    con.executemany(
        "INSERT INTO submissions VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [
            (
                d.chain_id, r.seq, r.round, r.job_id, r.level, r.array, r.mem_mb, r.time_s,
                r.partition, r.tasks, r.done, r.oom, r.timeout, r.failed, r.status,
            )
            for r in d.submissions
        ],
    )  # fmt: skip
    con.executemany(
        "INSERT INTO tasks VALUES (?,?,?,?,?,?,?)",
        [
            (d.chain_id, t.index, t.state, t.level, len(t.attempts), t.exit_code, t.reason)
            for t in d.tasks
        ],
    )
    con.executemany(
        "INSERT INTO attempts VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [
            (
                d.chain_id, a.index, a.attempt, a.job_id, a.array_job_id, a.round,
                a.submission, a.level, a.outcome, a.exit_code, a.reason, a.start, a.end,
                a.elapsed_s, a.node, a.partition, a.req_mem_mb, a.timelimit_s, a.max_rss_kb,
                a.cpus, a.core_s,
            )
            for t in d.tasks
            for a in t.attempts
        ],
    )  # fmt: skip
