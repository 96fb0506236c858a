"""Resubmissions refused by a limit that lifts by itself wait with backoff; no task fails for it.

The fake Slurm refuses with the text sbatch 22.05 prints for a QOS with
MaxSubmitJobsPerUser (the site cluster's e2e test, test_site_limits_e2e.py,
proves it against the real thing).
"""

from __future__ import annotations

import threading
from pathlib import Path

import msgspec
import pytest
from loguru import logger
from test_monitor import _resumed, build

from slurm_escalate.core.chain import SubmissionStatus, limit_waits
from slurm_escalate.core.events import Event, SubFailed
from slurm_escalate.core.models import ChainState, SlurmState, TaskState
from slurm_escalate.engine.monitor import FirstSubmissionRefused, Monitor
from slurm_escalate.engine.submitter import MAX_REFUSALS, limit_backoff, limit_refusal
from slurm_escalate.reporting.summary import live_block, status_json, summary_text
from slurm_escalate.state.journal import summarize_chain
from slurm_escalate.state.store import ChainStore
from slurm_escalate.testing import FakeSlurm, FastClock

QOS_REFUSAL = (
    "sbatch: error: QOSMaxSubmitJobPerUserLimit\n"
    "sbatch: error: Batch job submission failed: Job violates accounting/QOS policy "
    "(job submit limit, user's size and/or time limits)\n"
)


def oom_at_level_0(index, level, attempt):
    if index == 0 and level == 0:
        return SlurmState.OUT_OF_MEMORY, "0:125"
    return SlurmState.COMPLETED, "0:0"


class Refuser:
    """Refuses resubmissions (level 1 runs in partition day) ``times`` times, noting when."""

    def __init__(self, times: int, text: str = QOS_REFUSAL) -> None:
        self.left, self.text = times, text
        self.clock: FastClock | None = None
        self.tries: list[float] = []

    def __call__(self, args: list[str]) -> str | None:
        if "--partition=day" not in args:
            return None
        assert self.clock is not None
        self.tries.append(self.clock.t)
        if self.left <= 0:
            return None
        self.left -= 1
        return self.text


def _monitor(tmp_path: Path, refuser: Refuser) -> tuple[Monitor, ChainStore, FakeSlurm]:
    slurm = FakeSlurm(oom_at_level_0, refuse=refuser)
    monitor, store = build(tmp_path, slurm, ["--array=0-1", "job.sh"])
    assert isinstance(monitor.clock, FastClock)
    refuser.clock = monitor.clock
    return monitor, store, slurm


@pytest.fixture
def log_lines():
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m).rstrip()), level="INFO", format="{message}")
    yield lines
    logger.remove(sink)


def test_a_limit_refusal_waits_with_doubling_backoff_and_no_task_fails(tmp_path, log_lines):
    refuser = Refuser(times=5)
    monitor, store, slurm = _monitor(tmp_path, refuser)
    monitor.start()
    assert monitor.run(threading.Event()) is ChainState.COMPLETED
    # min_poll 1, max_poll 10: tries 1, 2, 4, 8 and then 10 (the cap) seconds apart
    gaps = [b - a for a, b in zip(refuser.tries, refuser.tries[1:], strict=False)]
    assert gaps == [1, 2, 4, 8, 10]
    chain = store.load(monitor.chain.chain_id)
    assert chain.state is ChainState.COMPLETED
    assert [t.state for t in chain.tasks] == [TaskState.COMPLETED, TaskState.COMPLETED]
    assert [a.level for a in chain.task(0).attempts] == [0, 1]
    subs = chain.submissions
    assert [s.status for s in subs] == [SubmissionStatus.SUBMITTED] + [
        SubmissionStatus.REFUSED
    ] * 5 + [SubmissionStatus.SUBMITTED]
    assert {s.limit for s in subs[1:6]} == {"QOSMaxSubmitJobPerUserLimit"}
    assert slurm.calls["sbatch"] == 7
    waited = [line for line in log_lines if "refused by QOSMaxSubmitJobPerUserLimit" in line]
    assert len(waited) == 5
    assert (
        "resubmission at level 1 (1 task(s)) refused by QOSMaxSubmitJobPerUserLimit: "
        in (waited[0])
    )
    assert "waiting, next try in 1 s" in waited[0] and "next try in 8 s" in waited[3]
    assert any(
        "went through after 5 refusal(s) by QOSMaxSubmitJobPerUserLimit" in line
        for line in log_lines
    )
    assert not any("resubmission at level 1 failed" in line for line in log_lines)


def test_status_watch_and_heartbeat_show_the_chain_waiting(tmp_path):
    refuser = Refuser(times=3)
    monitor, store, _ = _monitor(tmp_path, refuser)
    seen: list[tuple[list, list[str], object, str]] = []

    def on_poll(chain, report):
        if limit_waits(chain):
            beat = store.heartbeat(chain.chain_id)
            now = monitor.clock.now()
            text = summary_text(summarize_chain(chain, now), now)
            seen.append((status_json(chain)["waiting"], live_block(chain, now, None), beat, text))

    monitor.on_poll = on_poll
    monitor.start()
    assert monitor.run(threading.Event()) is ChainState.COMPLETED
    # waiting 1, 2 and 4 s: fewer polls than one a second (min_poll), one at least per try
    assert 3 <= len(seen) < 1 + 2 + 4, [entry[0] for entry in seen]
    second = [entry for entry in seen if entry[0][0]["refusals"] == 2]
    assert second
    waiting, live, beat, _ = second[0]
    assert [(w["level"], w["limit"], w["refusals"]) for w in waiting] == [
        (1, "QOSMaxSubmitJobPerUserLimit", 2)
    ]
    assert live[-1].startswith("  waiting: QOSMaxSubmitJobPerUserLimit, next try in 2 s")
    assert isinstance(beat, dict) and beat["waiting"][0]["limit"] == "QOSMaxSubmitJobPerUserLimit"
    final = status_json(store.load(monitor.chain.chain_id))
    assert final["waiting"] == [] and final["counts"] == {"COMPLETED": 2}


def test_waiting_survives_a_resume_with_nothing_half_submitted(tmp_path):
    refuser = Refuser(times=3)
    monitor, store, slurm = _monitor(tmp_path, refuser)
    stop = threading.Event()
    monitor.on_poll = lambda chain, report: stop.set() if limit_waits(chain) else None
    monitor.start()
    assert monitor.run(stop) is ChainState.RUNNING  # stopped while waiting (Ctrl-C)
    chain = store.load(monitor.chain.chain_id)
    assert [s.status for s in chain.submissions] == [
        SubmissionStatus.SUBMITTED,
        SubmissionStatus.REFUSED,
    ]
    (wait,) = limit_waits(chain)
    assert (wait.level, wait.refusals, wait.retry_at) == (1, 1, refuser.tries[0] + 1)
    assert chain.task(0).state is TaskState.RETRY

    resumed = _resumed(tmp_path, slurm, store, chain.chain_id)
    assert isinstance(resumed.clock, FastClock)
    resumed.clock.t = refuser.clock.t if refuser.clock else 0.0
    refuser.clock = resumed.clock
    assert resumed.run(threading.Event()) is ChainState.COMPLETED
    # the resumed monitor keeps the backoff: 2 s after the 2nd refusal, 4 s after the 3rd
    gaps = [b - a for a, b in zip(refuser.tries, refuser.tries[1:], strict=False)]
    assert gaps[1:] == [2, 4]
    assert resumed.chain.task(0).state is TaskState.COMPLETED
    assert not [s for s in resumed.chain.submissions if s.status is SubmissionStatus.INTENT]


def test_a_first_submission_refused_by_a_limit_still_exits_3(tmp_path):
    slurm = FakeSlurm(oom_at_level_0, refuse=lambda args: QOS_REFUSAL)
    monitor, store = build(tmp_path, slurm, ["--array=0-1", "job.sh"])
    with pytest.raises(FirstSubmissionRefused, match="Job violates accounting/QOS") as e:
        monitor.start()
    assert e.value.exit_code == 3
    chain = store.load(monitor.chain.chain_id)
    assert chain.state is ChainState.FAILED and limit_waits(chain) == []
    # ``list`` reads the summary: it says FAILED too, and is current with the journal
    summary = store.fresh_summary(chain.chain_id)
    assert summary is not None and summary.state is ChainState.FAILED


def test_a_named_limit_that_refuses_the_job_for_good_still_fails_it(tmp_path):
    refusal = (
        "sbatch: error: QOSMaxWallDurationPerJobLimit\n"
        "sbatch: error: Batch job submission failed: Job violates accounting/QOS policy "
        "(job submit limit, user's size and/or time limits)\n"
    )
    refuser = Refuser(times=100, text=refusal)
    monitor, _, slurm = _monitor(tmp_path, refuser)
    monitor.start()
    assert monitor.run(threading.Event()) is ChainState.FAILED
    task = monitor.chain.task(0)
    assert task.state is TaskState.FAILED
    assert f"refused the resubmission {MAX_REFUSALS} times" in task.reason
    assert len(refuser.tries) == MAX_REFUSALS


@pytest.mark.parametrize(
    ("stderr", "limit"),
    [
        (QOS_REFUSAL, "QOSMaxSubmitJobPerUserLimit"),
        (
            "sbatch: error: AssocMaxSubmitJobLimit\nsbatch: error: Batch job submission "
            "failed: Job violates accounting/QOS policy",
            "AssocMaxSubmitJobLimit",
        ),
        ("sbatch: error: QOSGrpSubmitJobsLimit", "QOSGrpSubmitJobsLimit"),
        (
            "sbatch: error: Batch job submission failed: Job violates accounting/QOS policy "
            "(job submit limit, user's size and/or time limits)",
            "accounting/QOS policy (job submit limit)",
        ),
        (
            "sbatch: error: Slurm temporarily unable to accept job, sleeping and retrying\n"
            "sbatch: error: Batch job submission failed: Resource temporarily unavailable",
            "Resource temporarily unavailable",
        ),
        ("sbatch: error: Batch job submission failed: Invalid partition name specified", None),
        (
            "sbatch: error: QOSMaxWallDurationPerJobLimit\nsbatch: error: Batch job "
            "submission failed: Job violates accounting/QOS policy",
            None,
        ),
        (
            "sbatch: error: Batch job submission failed: Invalid account or "
            "account/partition combination specified",
            None,
        ),
    ],
)
def test_which_refusals_are_limits_that_lift(stderr, limit):
    assert limit_refusal(stderr) == limit


def test_backoff_doubles_from_min_poll_up_to_max_poll():
    assert [limit_backoff(n, 30, 300) for n in range(1, 7)] == [30, 60, 120, 240, 300, 300]
    assert limit_backoff(1000, 30, 300) == 300


def test_journals_written_before_the_limit_fields_still_load():
    old = b'{"t":"sub","seq":2,"status":"REFUSED","error":"sbatch: error: x"}'
    event = msgspec.json.decode(old, type=Event)
    assert isinstance(event, SubFailed) and (event.limit, event.retry_at) == (None, None)
    assert b"limit" not in msgspec.json.encode(event)  # nothing new is written for old refusals


def test_plain_status_and_watch_say_waiting_after_the_monitor_stopped(tmp_path, capsys):
    from slurm_escalate.cli import main as cli
    from slurm_escalate.service.env import Env

    refuser = Refuser(times=2)
    monitor, store, _ = _monitor(tmp_path, refuser)
    stop = threading.Event()
    monitor.on_poll = lambda chain, report: stop.set() if limit_waits(chain) else None
    monitor.start()
    assert monitor.run(stop) is ChainState.RUNNING
    chain_id = monitor.chain.chain_id
    clock = FastClock()
    clock.t = refuser.tries[0] + 0.25  # the next try is due 1 s after the refusal
    env = Env(client_factory=lambda: pytest.fail("status and watch never ask Slurm"), clock=clock)
    env.home = tmp_path / "state"
    outputs = []
    for args in (["status", chain_id], ["watch", chain_id, "--once"]):
        with pytest.raises(SystemExit) as e:
            cli._run(cli.cli, "slurm-escalate", args, env)
        assert e.value.code == 0
        outputs.append(capsys.readouterr().out)
    status, watch = outputs
    line = (
        "waiting: QOSMaxSubmitJobPerUserLimit, next try in 1 s"
        " (resubmission at level 1 refused once"
    )
    assert f"\n  {line}" in status, status
    assert f"\n  {line}" in watch, watch
    assert "retry 1" in status


def test_polls_back_off_while_every_retry_waits_for_a_limit(tmp_path):
    """A poll that only finds the retry still waiting changed nothing: the interval grows
    as it does on any quiet poll, capped by the next try, instead of staying at min_poll."""
    refuser = Refuser(times=5)
    monitor, _, slurm = _monitor(tmp_path, refuser)
    monitor.start()
    assert monitor.run(threading.Event()) is ChainState.COMPLETED
    clock = monitor.clock
    assert isinstance(clock, FastClock)
    waited = refuser.tries[-1] - refuser.tries[0]  # 1 + 2 + 4 + 8 + 10 s
    assert waited == 25
    # every wait of the monitor between the first refusal and the try that went through
    t, inside = clock.t - sum(clock.waits), []
    for w in clock.waits:
        if refuser.tries[0] <= t < refuser.tries[-1]:
            inside.append(w)
        t += w
    assert sum(inside) == pytest.approx(waited)
    assert len(inside) < waited / 2, inside  # at min_poll 1 it would be 25 polls
    assert all(w <= 10 for w in inside), inside  # and never past a try that is due
