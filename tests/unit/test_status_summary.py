"""Plain `status` reads the chain's summary; it loads the chain only when the summary is stale."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from test_monitor import build

from slurm_escalate.core.models import ChainState, SlurmState
from slurm_escalate.service import chains
from slurm_escalate.service.env import Env
from slurm_escalate.state.journal import PROBLEM_ROWS
from slurm_escalate.state.store import ChainStore
from slurm_escalate.testing import FakeSlurm, FastClock


def bugs_everywhere(index, level, attempt):
    return (SlurmState.FAILED, "3:0") if index % 2 else (SlurmState.COMPLETED, "0:0")


@pytest.fixture
def finished(tmp_path: Path):
    tasks = 2 * PROBLEM_ROWS + 10
    argv = [f"--array=0-{tasks - 1}", "job.sh"]
    monitor, store = build(tmp_path, FakeSlurm(bugs_everywhere), argv)
    monitor.start()
    assert monitor.run(threading.Event()) is ChainState.FAILED
    return monitor.chain.chain_id, store


def test_plain_status_never_loads_the_chain(finished, monkeypatch) -> None:
    chain_id, store = finished
    env = Env(home=store.home, clock=FastClock())

    def no_load(self: ChainStore, ref: str):
        raise AssertionError("plain status loaded the whole chain")

    monkeypatch.setattr(ChainStore, "load", no_load)
    found = chains.status(env, chains.StatusInput(chain_id))
    assert found.chain is None
    s = found.summary
    assert (s.state, s.tasks, s.counts) == (ChainState.FAILED, 110, {"COMPLETED": 55, "FAILED": 55})
    assert len(s.problems) == PROBLEM_ROWS and s.problems_total == 55
    assert [p.task for p in s.problems[:2]] == ["100_1", "100_3"]
    with pytest.raises(AssertionError, match="loaded the whole chain"):
        chains.status(env, chains.StatusInput(chain_id, as_json=True))


def test_the_text_lists_the_first_rows_and_says_how_many_more(finished) -> None:
    from slurm_escalate.reporting.summary import summary, summary_text

    chain_id, store = finished
    text = summary_text(store.summary(chain_id), time.time())
    assert "    ... and 5 more (status --json lists every task)" in text
    # The same text as the one counted from the whole chain in memory.
    assert text == summary(store.load(chain_id), time.time())


def test_a_summary_older_than_the_journal_is_not_trusted(finished) -> None:
    chain_id, store = finished
    directory = store.chain_dir(chain_id)
    with open(directory / "journal.jsonl", "a") as f:  # appended; the monitor died before
        f.write('{"e":1,"ev":{"t":"chain","state":"FAILED"}}\n')  # writing the summary
    assert store.fresh_summary(chain_id) is None
    found = chains.status(Env(home=store.home, clock=FastClock()), chains.StatusInput(chain_id))
    assert found.chain is not None and found.summary.problems_total == 55
