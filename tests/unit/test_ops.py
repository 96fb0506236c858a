"""The pure parts of watch, log and cancel: per-level counts, monitor health, events,
the cancel plan."""

from __future__ import annotations

from pathlib import Path

import pytest

from slurm_escalate.core.chain import Attempt, Chain, Submission, SubmissionStatus, TaskStatus
from slurm_escalate.core.events import apply
from slurm_escalate.core.models import ChainState, TaskState
from slurm_escalate.service.ops import (
    CANCEL_REASON,
    Snapshot,
    ago,
    cancel_plan,
    exit_status,
    frame,
    health,
    is_monitor_process,
    level_counts,
    mark_cancelled,
    read_tail,
    recent_events,
)
from slurm_escalate.state.journal import summarize_chain

NOW = 1_790_000_000.0


def attempt(job: str, level: int, outcome: str | None = None) -> Attempt:
    return Attempt(job_id=job, level=level, submission=1, outcome=outcome)


def chain_of(*tasks: TaskStatus, state: ChainState = ChainState.RUNNING) -> Chain:
    return Chain(
        chain_id="20261122-101500-ab12",
        created_at=NOW - 65,
        cwd="/tmp",
        script="job.sh",
        script_copy=None,
        sbatch_args=[],
        script_args=[],
        config=None,
        state=state,
        tasks=list(tasks),
    )


def task(index: int, state: TaskState, *attempts: Attempt, **kw: object) -> TaskStatus:
    level = attempts[-1].level if attempts else 0
    return TaskStatus(index=index, state=state, level=level, attempts=list(attempts), **kw)


def mixed_chain() -> Chain:
    return chain_of(
        task(0, TaskState.COMPLETED, attempt("10", 0, "COMPLETED")),
        task(1, TaskState.RUNNING, attempt("10", 0, "OUT_OF_MEMORY"), attempt("11", 1)),
        task(2, TaskState.PENDING, attempt("10", 0, "TIMEOUT"), attempt("11", 1)),
        task(3, TaskState.RETRY, attempt("10", 0, "OUT_OF_MEMORY"), target_level=1),
        task(4, TaskState.FAILED, attempt("10", 0, "FAILED")),
        task(5, TaskState.RETRY, attempt("10", 0, "PREEMPTED"), target_level=0),
        task(6, TaskState.CANCELLED, attempt("10", 0)),
        task(7, TaskState.PENDING),
    )


def test_level_counts_are_tasks_by_the_last_attempt_at_each_level():
    counts = level_counts(mixed_chain())
    assert list(counts) == [0, 1]
    assert dict(counts[0]) == {
        "done": 1,
        "OOM": 2,
        "timeout": 1,
        "failed": 1,
        "pending": 2,  # task 5 waits to run at level 0 again; task 7 was never submitted
        "cancelled": 1,
    }
    assert dict(counts[1]) == {"running": 1, "pending": 2}  # task 3 waits to go to level 1


def test_level_counts_of_an_empty_chain():
    assert level_counts(chain_of()) == {}


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s ago"), (3.7, "3s ago"), (125, "2m05s ago"), (7260, "2h01m ago")]
)
def test_ago(seconds, text):
    assert ago(seconds) == text


BEAT = {"at": NOW - 3, "pid": 42, "host": "login1", "failures": 0, "next_poll_s": 30, "error": None}


@pytest.mark.parametrize(
    ("alive", "info", "beat", "text"),
    [
        (True, ("login1", 42), BEAT, "alive, last poll 3s ago"),
        (True, ("login1", 42), None, "alive (pid 42), no poll yet"),
        (True, ("login1", 42), {**BEAT, "pid": 41}, "alive (pid 42), no poll yet"),
        (
            True,
            ("login1", 42),
            {**BEAT, "failures": 2, "error": "sacct exited 1: Connection refused"},
            "degraded: 2 failed Slurm queries (sacct exited 1: Connection refused), "
            "last poll 3s ago",
        ),
        (
            True,
            ("login1", 42),
            {**BEAT, "failures": 1, "error": None},
            "degraded: 1 failed Slurm query (no detail), last poll 3s ago",
        ),
        (
            True,
            ("login1", 42),
            {**BEAT, "at": NOW - 200},
            "alive, last poll 3m20s ago (overdue: next poll was due after 30s)",
        ),
        (False, ("login1", 42), BEAT, "dead (pid 42 gone), last poll 3s ago"),
        (False, ("login1", 42), None, "dead (pid 42 gone)"),
        (False, None, None, "dead (no monitor running)"),
        (None, ("login2", 42), BEAT, "elsewhere (host login2), last poll 3s ago"),
    ],
)
def test_health_of_a_running_chain(alive, info, beat, text):
    assert health(ChainState.RUNNING, alive, info, beat, NOW) == text


def test_health_of_a_final_chain():
    assert health(ChainState.COMPLETED, False, None, BEAT, NOW) == "none needed (COMPLETED)"
    assert health(ChainState.FAILED, True, ("h", 7), BEAT, NOW) == "finishing (pid 7)"


def test_health_ignores_a_malformed_heartbeat():
    beat = {"at": "yesterday", "pid": 42, "failures": "many"}
    assert health(ChainState.RUNNING, True, ("h", 42), beat, NOW) == "alive, no poll yet"


LOG = """\
2026-11-22 10:15:00 INFO    chain x: sbatch_escalate job.sh
2026-11-22 10:15:01 INFO    submitted array 0-3 at level 0 (attempt 1) as job 10
2026-11-22 10:15:01 DEBUG   next poll in 30s
2026-11-22 10:15:31 WARNING task 10_1 OUT_OF_MEMORY on step batch (0:125): escalating to level 1
2026-11-22 10:15:31 DEBUG   next poll in 30s
  an indented continuation line
"""


def test_recent_events_drop_debug_and_the_date():
    assert recent_events(LOG, 3) == [
        "10:15:01 INFO    submitted array 0-3 at level 0 (attempt 1) as job 10",
        "10:15:31 WARNING task 10_1 OUT_OF_MEMORY on step batch (0:125): escalating to level 1",
        "  an indented continuation line",
    ]
    assert recent_events(LOG, 0) == []
    assert recent_events("", 5) == []


def test_read_tail_keeps_whole_lines(tmp_path: Path):
    path = tmp_path / "monitor.log"
    path.write_text("".join(f"line {i}\n" for i in range(1000)))
    tail = read_tail(path, max_bytes=100)
    assert tail.endswith("line 999\n")
    assert all(line.startswith("line ") for line in tail.splitlines())
    assert read_tail(tmp_path / "missing") == ""


def snapshot(chain, *args):
    return Snapshot(summarize_chain(chain, NOW), *args)


def test_frame_shows_counts_health_table_events_and_a_resume_hint():
    snap = snapshot(mixed_chain(), False, ("login1", 42), BEAT, ["10:15:31 WARNING task x"])
    lines = frame(snap, NOW)
    assert lines[0].startswith("chain 20261122-101500-ab12  RUNNING  elapsed 0:01:05")
    assert "monitor: dead (pid 42 gone), last poll 3s ago" in lines[2]
    assert lines[3] == "  resume with: slurm-escalate resume 20261122-101500-ab12"
    assert lines[4].split() == [
        "level",
        *"pending running done OOM timeout failed cancelled".split(),
    ]
    assert lines[5].split() == ["L0", "2", "0", "1", "2", "1", "1", "1"]
    assert lines[6].split() == ["L1", "2", "1", "0", "0", "0", "0", "0"]
    assert lines[-2:] == ["  recent events:", "    10:15:31 WARNING task x"]


def test_snapshot_key_ignores_the_passing_of_time_but_not_a_new_poll():
    snap = snapshot(mixed_chain(), True, ("h", 42), BEAT, [])
    assert snap.key() == snapshot(mixed_chain(), True, ("h", 42), dict(BEAT), []).key()
    later = snapshot(mixed_chain(), True, ("h", 42), {**BEAT, "at": NOW}, [])
    assert snap.key() != later.key()
    changed = mixed_chain()
    changed.tasks[1].state = TaskState.COMPLETED
    assert snap.key() != snapshot(changed, True, ("h", 42), BEAT, []).key()


def test_exit_status():
    assert exit_status(ChainState.COMPLETED) == 0
    assert exit_status(ChainState.FAILED) == 1
    assert exit_status(ChainState.CANCELLED) == 1


def test_cancel_plan_names_only_the_chains_live_jobs():
    chain = mixed_chain()
    chain.tasks.append(
        task(8, TaskState.PENDING, attempt("10", 0, "OUT_OF_MEMORY"), attempt("12", 1))
    )
    chain.submissions = [
        Submission(1, 0, 1, "0-8", "0-8", [], NOW, SubmissionStatus.SUBMITTED, "10"),
        Submission(2, 1, 2, "1,2", "1,2", [], NOW, SubmissionStatus.SUBMITTED, "11"),
        Submission(3, 1, 2, "8", "8", [], NOW, SubmissionStatus.SUBMITTED, "12"),
        Submission(4, 1, 2, "3", "3", [], NOW, SubmissionStatus.INTENT, token="tok"),
        Submission(5, 1, 2, "3", "3", [], NOW, SubmissionStatus.REFUSED),
    ]
    plan = cancel_plan(chain)
    assert plan.job_ids == ["11", "12"]  # job 10 carries no unfinished task any more
    assert plan.tasks == [1, 2, 3, 5, 7, 8]
    assert [s.seq for s in plan.doubtful] == [4]
    assert not plan.nothing


def test_mark_cancelled_leaves_final_tasks_alone():
    chain = mixed_chain()
    assert len(cancel_plan(chain).tasks) == 5
    for event in mark_cancelled(chain, NOW):
        apply(chain, event)
    assert chain.state is ChainState.CANCELLED and chain.finished_at == NOW
    states = {t.index: (t.state, t.reason) for t in chain.tasks}
    assert states[0] == (TaskState.COMPLETED, "")
    assert states[4][0] is TaskState.FAILED
    assert states[3] == (TaskState.CANCELLED, CANCEL_REASON)
    assert chain.tasks[3].target_level is None
    assert cancel_plan(chain).nothing


def test_is_monitor_process(tmp_path: Path):
    (tmp_path / "12").mkdir()
    (tmp_path / "12" / "cmdline").write_bytes(b"/venv/bin/python\0/venv/bin/sbatch_escalate\0")
    (tmp_path / "13").mkdir()
    (tmp_path / "13" / "cmdline").write_bytes(b"vim\0notes.txt\0")
    assert is_monitor_process(12, tmp_path)
    assert not is_monitor_process(13, tmp_path)  # a recycled pid
    assert not is_monitor_process(14, tmp_path)  # gone
    assert is_monitor_process(14, tmp_path / "no-proc")  # no /proc: trust the pid file
