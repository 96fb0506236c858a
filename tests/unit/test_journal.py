"""The chain journal: replay equals the live view, torn and corrupt lines, compaction and its
crash windows, one writer (epochs and the heartbeat lease), chains of release 0.1."""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import msgspec
import pytest
from test_monitor import build

from slurm_escalate.core.chain import Attempt, Chain, TaskStatus
from slurm_escalate.core.events import ChainSet, Tasks, apply, group_patches
from slurm_escalate.core.models import ChainState, SlurmState, TaskState
from slurm_escalate.errors import StateError
from slurm_escalate.service import prepare as app
from slurm_escalate.state import journal
from slurm_escalate.state.journal import StaleWriter
from slurm_escalate.state.store import ChainStore
from slurm_escalate.testing import FakeSlurm, FastClock, ok

LEGACY = Path(__file__).parent / "data" / "legacy-0.1"


def oom_then_ok(index, level, attempt):
    if index % 3 == 0 and level == 0:
        return SlurmState.OUT_OF_MEMORY, "0:125"
    return SlurmState.COMPLETED, "0:0"


def test_replaying_the_journal_gives_exactly_the_monitors_view(tmp_path: Path) -> None:
    monitor, store = build(tmp_path, FakeSlurm(oom_then_ok), ["--array=0-29", "job.sh"])
    monitor.start()
    assert monitor.run(threading.Event()) is ChainState.COMPLETED
    assert store.load(monitor.chain.chain_id) == monitor.chain
    assert [len(t.attempts) for t in monitor.chain.tasks[:3]] == [2, 1, 1]
    # The summary's counts, kept change by change, agree with a count of the view.
    summary = store.summary(monitor.chain.chain_id)
    assert summary is not None and summary.state is ChainState.COMPLETED
    assert summary.counts == {"COMPLETED": 30}
    assert summary.levels == {"0": {"COMPLETED": 20}, "1": {"COMPLETED": 10}}
    assert summary.table == {"0": {"done": 20, "OOM": 10}, "1": {"done": 10}}
    counted = journal.summarize_chain(monitor.chain, summary.updated_at, summary.epoch)
    stamp = {"journal_ino": summary.journal_ino, "journal_size": summary.journal_size}
    # kept change by change == counted from the whole chain
    assert msgspec.structs.replace(counted, **stamp) == summary


def test_a_thousand_completions_make_one_short_line() -> None:
    change = {"state": TaskState.COMPLETED, "a.outcome": "COMPLETED", "a.exit_code": 0}
    patches = [(i, {**change, "a.elapsed_s": 60 + i % 7}) for i in range(1000)]
    (event,) = group_patches(patches)
    assert event.idx == "0-999"
    assert event.set == {"state": "COMPLETED", "a.outcome": "COMPLETED", "a.exit_code": 0}
    assert len(event.col["a.elapsed_s"]) == 1000
    line = journal.encode(event)
    assert len(line) < 5_000


def test_a_task_field_that_does_not_exist_is_corruption() -> None:
    chain = _chain(3)
    with pytest.raises(ValueError, match="unknown task field 'colour'"):
        apply(chain, Tasks(idx="0-2", set={"colour": "red"}))


def _chain(n: int) -> Chain:
    return Chain(
        chain_id="20261202-101500-ab12",
        created_at=1.0,
        cwd="/tmp",
        script="job.sh",
        script_copy=None,
        sbatch_args=[f"--array=0-{n - 1}"],
        script_args=[],
        config=None,
        tasks=[
            TaskStatus(i, TaskState.PENDING, 0, [Attempt(job_id="7", level=0, submission=1)])
            for i in range(n)
        ],
    )


def _book(tmp_path: Path, n: int = 4):
    store = ChainStore(tmp_path)
    chain = _chain(n)
    store.create(chain)
    store.save(chain)
    return store, store.open_book(chain.chain_id, time.time())


def test_a_torn_last_line_is_dropped_with_a_warning_and_cut_before_the_next_append(
    tmp_path: Path,
) -> None:
    store, book = _book(tmp_path)
    book.patch(book.chain.tasks[0], {"state": TaskState.RUNNING})
    book.commit()
    book.close()
    path = store.chain_dir(book.chain.chain_id) / "journal.jsonl"
    good = path.read_bytes()
    path.write_bytes(good + b'{"e":2,"ev":{"t":"tasks","idx":"1","set":{"sta')
    warnings: list[str] = []
    loaded = journal.load(path.parent, warn=warnings.append)
    assert loaded.torn and loaded.chain.task(0).state is TaskState.RUNNING
    assert loaded.chain.task(1).state is TaskState.PENDING
    assert warnings and "journal.jsonl:" in warnings[0] and "torn last line" in warnings[0]
    book = store.open_book(book.chain.chain_id, time.time())  # the next writer cuts it off
    book.patch(book.chain.tasks[1], {"state": TaskState.RUNNING})
    book.close()
    assert path.read_bytes().startswith(good) and path.read_bytes().endswith(b"\n")
    assert store.load("ab12").task(1).state is TaskState.RUNNING


def test_a_corrupt_line_inside_the_journal_names_file_and_line_and_is_left_alone(
    tmp_path: Path,
) -> None:
    store, book = _book(tmp_path)
    book.patch(book.chain.tasks[0], {"state": TaskState.RUNNING})
    book.commit()
    book.patch(book.chain.tasks[1], {"state": TaskState.RUNNING})
    book.close()
    path = store.chain_dir(book.chain.chain_id) / "journal.jsonl"
    lines = path.read_bytes().split(b"\n")
    lines[2] = b'{"e":1,"ev":{"t":"tasks" GARBAGE'
    damaged = b"\n".join(lines)
    path.write_bytes(damaged)
    with pytest.raises(StateError, match=r"journal\.jsonl:3: corrupt journal line") as e:
        store.load("ab12")
    assert "\n" not in str(e.value)
    with pytest.raises(StateError, match="journal.jsonl:3"):
        store.open_book(book.chain.chain_id, time.time())
    assert path.read_bytes() == damaged  # never rewritten


def test_compaction_folds_the_journal_and_a_crash_after_the_snapshot_loses_nothing(
    tmp_path: Path,
) -> None:
    store, book = _book(tmp_path, n=50)
    for task in book.chain.tasks:
        book.patch(task, {"state": TaskState.COMPLETED, "a.outcome": "COMPLETED"})
    book.commit()
    before = store.load("ab12")
    directory = store.chain_dir("20261202-101500-ab12")
    # The window between the snapshot and the journal's restart: the snapshot
    # covers the whole old journal, which is still in place.
    snap = journal.snapshot_of(
        book.chain, journal.Covers(book.journal.gen, book.journal.size), book.epoch
    )
    journal.atomic_write(directory / "snapshot.json", journal.encode(snap))
    assert store.load("ab12") == before
    book.journal.compact(book.chain)  # and the whole compaction
    assert len((directory / "journal.jsonl").read_bytes().splitlines()) == 2  # header, owner
    assert store.load("ab12") == before
    book.record(ChainSet(state=ChainState.COMPLETED, finished_at=5.0))
    book.close()
    assert store.load("ab12").state is ChainState.COMPLETED


def test_a_second_writer_takes_over_and_the_first_stops_before_writing(tmp_path: Path) -> None:
    store, first = _book(tmp_path)
    second = store.open_book(first.chain.chain_id, time.time())
    assert second.epoch == first.epoch + 1
    with pytest.raises(StaleWriter, match=f"taken over by {socket.gethostname()}"):
        first.record(ChainSet(state=ChainState.CANCELLED))
    second.patch(second.chain.tasks[0], {"state": TaskState.RUNNING})
    second.close()
    assert store.load("ab12").state is ChainState.RUNNING


def test_a_stale_writers_late_records_are_ignored_on_load(tmp_path: Path) -> None:
    store, first = _book(tmp_path)
    second = store.open_book(first.chain.chain_id, time.time())
    second.close()
    path = store.chain_dir(first.chain.chain_id) / "journal.jsonl"
    late = {"e": first.epoch, "ev": {"t": "chain", "state": "CANCELLED"}}
    with open(path, "a") as f:  # as if the old writer's lock had not held
        f.write(json.dumps(late) + "\n")
    warnings: list[str] = []
    loaded = journal.load(path.parent, warn=warnings.append)
    assert loaded.chain.state is ChainState.RUNNING
    assert "stale writer epoch" in warnings[0]


def test_a_monitor_on_another_host_with_a_fresh_heartbeat_keeps_the_chain(
    tmp_path: Path,
) -> None:
    store, book = _book(tmp_path)
    book.close()
    path = store.chain_dir(book.chain.chain_id) / "journal.jsonl"
    other = {"e": 9, "ev": {"t": "owner", "host": "login2", "pid": 4242, "epoch": 9, "at": 1.0}}
    with open(path, "a") as f:
        f.write(json.dumps(other) + "\n")
    beat = {"at": time.time() - 20, "pid": 4242, "host": "login2", "next_poll_s": 30.0}
    store.beat(book.chain.chain_id, beat)
    with pytest.raises(StateError, match=r"being monitored on login2 \(pid 4242, heartbeat 2\ds"):
        store.open_book(book.chain.chain_id, time.time())
    store.beat(book.chain.chain_id, {**beat, "at": time.time() - 30 - 121})  # lease ran out
    taken = store.open_book(book.chain.chain_id, time.time())
    assert taken.epoch == 10


def test_a_release_0_1_chain_loads_resumes_to_the_end_and_is_kept(tmp_path: Path) -> None:
    """The fixture was written by release 0.1 (5944ff8); see data/legacy-0.1/make_fixture.py.txt."""
    home, work = tmp_path / "state", tmp_path / "work"
    shutil.copytree(LEGACY / "chains", home / "chains")
    (chain_dir,) = (home / "chains").iterdir()
    state = chain_dir / "state.json"
    state.write_text(
        state.read_text()
        .replace("/tmp/legacy-work/state", str(home))
        .replace("/tmp/legacy-work", str(work))
    )
    work.mkdir()
    store = ChainStore(home)
    chain = store.load(chain_dir.name)
    assert [t.state for t in chain.tasks] == [
        TaskState.COMPLETED,
        TaskState.PENDING,
        TaskState.COMPLETED,
        TaskState.FAILED,
        TaskState.PENDING,
        TaskState.COMPLETED,
    ]
    assert [s.job_id for s in chain.submissions] == ["100", "101"]
    slurm = FakeSlurm(ok)
    slurm.next_id = 102
    slurm.jobs.update({"100": _job("100", [0, 1, 2, 3, 4, 5]), "101": _job("101", [1, 4], 1)})
    prepared = app.reload(chain, store, slurm)
    monitor = app.make_monitor(chain, prepared, store, slurm, {}, clock=FastClock())
    assert monitor.run(threading.Event()) is ChainState.FAILED  # task 3 has a real bug
    assert [t.state for t in monitor.chain.tasks].count(TaskState.COMPLETED) == 5
    assert slurm.calls["submit"] == 0  # nothing submitted twice
    assert (chain_dir / "state.json.v1").is_file() and not state.exists()
    assert store.load(chain_dir.name) == monitor.chain


def _job(job_id: str, indices: list[int], level: int = 0):
    from slurm_escalate.testing import Job

    return Job(job_id, indices, level, 1 + level, [], {})


def test_files_stay_private(tmp_path: Path) -> None:
    store, book = _book(tmp_path)
    book.journal.compact(book.chain)
    book.write_summary(time.time())
    book.close()
    directory = store.chain_dir(book.chain.chain_id)
    for name in ("chain.json", "journal.jsonl", "snapshot.json", "summary.json"):
        assert os.stat(directory / name).st_mode & 0o777 == 0o600, name


def test_a_daemon_whose_inherited_descriptors_were_closed_reopens_the_journal(
    tmp_path: Path,
) -> None:
    store, book = _book(tmp_path)
    claimed = book.epoch
    os.close(book.journal._fd)  # what daemonizing does to every inherited descriptor
    book.journal.reclaim(time.time())
    book.patch(book.chain.tasks[0], {"state": TaskState.RUNNING})
    book.close()
    loaded = journal.load(store.chain_dir(book.chain.chain_id))
    assert loaded.epoch == claimed + 1
    assert loaded.owner is not None and loaded.owner.pid == os.getpid()
    assert loaded.chain.task(0).state is TaskState.RUNNING


def test_a_chain_read_twice_unchanged_is_read_once_and_again_after_a_change(
    tmp_path: Path,
) -> None:
    store, book = _book(tmp_path)
    first = store.load("ab12")
    assert store.load("ab12") is first  # nothing changed on disk
    book.patch(book.chain.tasks[0], {"state": TaskState.RUNNING})
    book.close()
    again = store.load("ab12")
    assert again is not first and again.task(0).state is TaskState.RUNNING
