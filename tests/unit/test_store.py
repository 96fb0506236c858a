"""The chain store: round trips, atomic replacement, locking, clean errors."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import pytest

from slurm_escalate.core.chain import Attempt, Chain, Submission, SubmissionStatus, TaskStatus
from slurm_escalate.core.models import ChainState, Level, TaskState
from slurm_escalate.errors import StateError
from slurm_escalate.state.store import ChainStore, default_home


def make_chain(chain_id: str = "20261122-101500-ab12") -> Chain:
    return Chain(
        chain_id=chain_id,
        created_at=1_790_000_000.0,
        cwd="/work",
        script="job.sh",
        script_copy="/state/job.sh",
        sbatch_args=["--array=0-3%2", "--export=ALL,FOO=a,b", "-p", "devel"],
        script_args=["a b", "it's", "$HOME", "x;y", "*", ""],
        config="ladder.yaml",
        throttle=2,
        base=Level(mem_mb=400, time_s=60, extra_args=("--nice=0",)),
        tasks=[
            TaskStatus(
                index=i,
                state=TaskState.RETRY if i == 2 else TaskState.PENDING,
                attempts=[Attempt(job_id="17", level=0, submission=1, outcome="OUT_OF_MEMORY")],
                target_level=1 if i == 2 else None,
            )
            for i in range(4)
        ],
        submissions=[
            Submission(
                1,
                0,
                1,
                "0-3",
                None,
                ["--array=0-3%2", "job.sh"],
                1.0,
                SubmissionStatus.SUBMITTED,
                "17",
                2.0,
            ),
            Submission(2, 1, 2, "2", "2%2", ["--array=2%2", "job.sh"], 3.0),
        ],
    )


def test_round_trip_keeps_everything(tmp_path: Path) -> None:
    store = ChainStore(tmp_path)
    chain = make_chain()
    store.create(chain)
    store.save(chain)
    assert store.load(chain.chain_id) == chain


def test_state_files_are_plain_json_readable_by_other_tools(tmp_path: Path) -> None:
    store = ChainStore(tmp_path)
    chain = make_chain()
    store.create(chain)
    store.save(chain)
    directory = tmp_path / "chains" / "20261122-101500-ab12"
    assert json.loads((directory / "chain.json").read_text())["script_args"][1] == "it's"
    data = json.loads((directory / "snapshot.json").read_text())
    assert data["state"] == "RUNNING"
    assert data["submissions"][0]["status"] == "SUBMITTED"
    assert "job_id" not in data["submissions"][1]  # a field at its default is left out
    lines = (directory / "journal.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines][0] == {"journal": 1, "gen": 1}


def test_save_replaces_atomically_and_leaves_no_temp_files(tmp_path: Path) -> None:
    store = ChainStore(tmp_path)
    chain = make_chain()
    store.create(chain)
    store.save(chain)
    chain.state = ChainState.COMPLETED
    store.save(chain)
    directory = tmp_path / "chains" / chain.chain_id
    assert sorted(p.name for p in directory.iterdir()) == [
        "chain.json",
        "journal.jsonl",
        "snapshot.json",
        "summary.json",
    ]
    assert store.load(chain.chain_id).state is ChainState.COMPLETED


def test_resolve_by_prefix_and_suffix(tmp_path: Path) -> None:
    store = ChainStore(tmp_path)
    store.create(make_chain("20261122-101500-ab12"))
    store.create(make_chain("20261122-111500-cd34"))
    assert store.resolve("cd34") == "20261122-111500-cd34"
    assert store.resolve("20261122-10") == "20261122-101500-ab12"
    with pytest.raises(StateError, match="ambiguous"):
        store.resolve("20261122")
    with pytest.raises(StateError, match="no chain 'zz'"):
        store.resolve("zz")
    with pytest.raises(StateError, match="not a chain id"):
        store.resolve("../etc")


def test_create_twice_is_refused(tmp_path: Path) -> None:
    store = ChainStore(tmp_path)
    store.create(make_chain())
    with pytest.raises(StateError, match="already exists"):
        store.create(make_chain())


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "invalid JSON at line 1"),
        ("[]", "corrupt chain state (top level is not an object)"),
        ('{"version": 99}', "unsupported state version 99"),
        ('{"version": 1, "chain_id": "x"}', "corrupt chain state"),
    ],
)
def test_corrupt_legacy_state_is_a_one_line_state_error(
    tmp_path: Path, content: str, message: str
) -> None:
    directory = tmp_path / "chains" / "20261122-101500-ab12"
    directory.mkdir(parents=True)
    (directory / "state.json").write_text(content)  # a chain of release 0.1
    store = ChainStore(tmp_path)
    with pytest.raises(StateError, match=message.replace("(", r"\(").replace(")", r"\)")) as e:
        store.load("ab12")
    assert "\n" not in str(e.value)


def _hold_lock(home: str, chain_id: str, ready, release) -> None:
    store = ChainStore(Path(home))
    with store.lock(chain_id):
        ready.set()
        release.wait(10)


def test_a_second_monitor_cannot_take_the_lock(tmp_path: Path) -> None:
    store = ChainStore(tmp_path)
    chain = make_chain()
    store.create(chain)
    store.save(chain)
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(str(tmp_path), chain.chain_id, ready, release))
    holder.start()
    try:
        assert ready.wait(10)
        with pytest.raises(
            StateError, match=rf"already being monitored \(host .*, pid {holder.pid}\)"
        ):
            with store.lock(chain.chain_id, wait_s=0.3):
                pass
        assert store.monitor_info(chain.chain_id)[1] == holder.pid
        assert store.monitor_alive(chain.chain_id) is True
    finally:
        release.set()
        holder.join(10)
    with store.lock(chain.chain_id, wait_s=1):  # free again once the holder is gone
        assert store.monitor_info(chain.chain_id)[1] == os.getpid()
    assert store.monitor_info(chain.chain_id) is None  # released: no stale pid file


def test_default_home_follows_env_then_xdg() -> None:
    assert default_home({"SLURM_ESCALATE_HOME": "/x"}) == Path("/x")
    assert default_home({"XDG_STATE_HOME": "/s"}) == Path("/s/slurm-escalate")
    assert str(default_home({})).endswith(".local/state/slurm-escalate")


def test_state_is_private_to_its_owner(tmp_path: Path) -> None:
    store = ChainStore(tmp_path / "home")
    chain = make_chain()
    store.create(chain)
    store.save(chain)
    store.save(chain)
    log = store.log_path(chain.chain_id)
    with store.lock(chain.chain_id):
        pass
    directory = store.chain_dir(chain.chain_id)
    assert (tmp_path / "home").stat().st_mode & 0o777 == 0o700
    assert directory.stat().st_mode & 0o777 == 0o700
    for name in (
        "chain.json",
        "journal.jsonl",
        "snapshot.json",
        "summary.json",
        "monitor.lock",
        log.name,
    ):
        assert (directory / name).stat().st_mode & 0o777 == 0o600, name


@pytest.mark.skipif(os.getuid() != 0, reason="only root can give a file to another user")
def test_another_users_chain_is_refused(tmp_path: Path) -> None:
    store = ChainStore(tmp_path)
    chain = make_chain()
    store.create(chain)
    store.save(chain)
    os.chown(store.chain_dir(chain.chain_id) / "chain.json", 4242, 4242)
    with pytest.raises(StateError, match=r"belongs to another user \(uid 4242\)"):
        store.load(chain.chain_id)


def test_sweeps_file_unreadable_is_forgotten_and_rewritten(tmp_path):
    from slurm_escalate.core.interval import Sweep
    from slurm_escalate.state.store import SWEEPS_FILE, ChainStore

    store = ChainStore(tmp_path / "home")
    (tmp_path / "home").mkdir()
    assert store.sweep("@") is None
    (tmp_path / "home" / SWEEPS_FILE).write_text("{not json")
    assert store.sweep("@") is None
    store.save_sweep("@", Sweep(at=100.0, seen=110.0))
    store.save_sweep("site@/etc/slurm-site/slurm.conf", Sweep(at=7.0, seen=9.0))
    assert store.sweep("@") == Sweep(at=100.0, seen=110.0)
    assert store.sweep("site@/etc/slurm-site/slurm.conf") == Sweep(at=7.0, seen=9.0)
    (tmp_path / "home" / SWEEPS_FILE).write_text('{"@": {"at": "x"}}')
    assert store.sweep("@") is None
