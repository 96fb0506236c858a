"""The monitor loop against a fake Slurm and a fast-forward clock (no cluster, no sleeping)."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from slurm_escalate.core.chain import SubmissionStatus
from slurm_escalate.core.models import ChainState, SlurmState, TaskState
from slurm_escalate.engine.monitor import FirstSubmissionRefused, Monitor, PollReport
from slurm_escalate.errors import SlurmCommandError
from slurm_escalate.service import prepare as app
from slurm_escalate.state.store import ChainStore
from slurm_escalate.testing import FakeSlurm, FastClock, ok

LADDER = """\
levels:
  - {partition: devel, mem: 400M, time: "00:01:00"}
  - {partition: day, mem: 1000M, time: "00:02:00"}
  - {partition: week, mem: 3000M, time: "00:04:00"}
state_handling: {PREEMPTED: resubmit, exit_codes: {137: escalate}}
max_resubmits: 2
"""


def build(
    tmp_path: Path, slurm: FakeSlurm, tokens: list[str], ladder: str | None = LADDER, **opts
) -> tuple[Monitor, ChainStore]:
    (tmp_path / "job.sh").write_text("#!/bin/bash\n#SBATCH --job-name=t\necho hi\n")
    config = None
    if ladder is not None:
        (tmp_path / "ladder.yaml").write_text(ladder)
        config = "ladder.yaml"
    options = app.SubmitOptions(config=config, min_poll=1, **opts)
    prepared = app.prepare(tokens, options, slurm, str(tmp_path))
    store = ChainStore(tmp_path / "state")
    chain = app.create_chain(prepared, options, store, str(tmp_path), 1_790_000_000.0)
    monitor = app.make_monitor(
        chain,
        prepared,
        store,
        slurm,
        {"PATH": "/bin"},
        clock=FastClock(),
    )
    return monitor, store


def run(monitor: Monitor) -> ChainState:
    monitor.start()
    return monitor.run(threading.Event())


def test_only_failed_indices_climb_and_keep_their_indices(tmp_path: Path) -> None:
    def outcome(index, level, attempt):
        if index in (3, 5, 6) and level == 0:
            return SlurmState.OUT_OF_MEMORY, "0:125"
        return SlurmState.COMPLETED, "0:0"

    slurm = FakeSlurm(outcome)
    monitor, store = build(tmp_path, slurm, ["--array=0-7", "job.sh"])
    assert run(monitor) is ChainState.COMPLETED
    first, second = slurm.jobs.values()
    assert first.indices == list(range(8)) and "--array=0-7" in first.args
    assert second.indices == [3, 5, 6] and "--array=3,5,6" in second.args
    assert second.level == 1 and second.attempt == 2
    assert "--open-mode=append" in second.args and "--open-mode=append" not in first.args
    assert "--mem=1000M" in second.args and "--partition=day" in second.args
    chain = store.load(monitor.chain.chain_id)
    assert chain.state is ChainState.COMPLETED
    assert [t.level for t in chain.tasks] == [0, 0, 0, 1, 0, 1, 1, 0]
    assert chain.task(5).attempts[0].outcome == "OUT_OF_MEMORY"
    assert [a.job_id for a in chain.task(5).attempts] == [first.job_id, second.job_id]


def test_environment_of_each_attempt(tmp_path: Path) -> None:
    slurm = FakeSlurm(lambda i, lv, a: (SlurmState.TIMEOUT, "0:0") if lv == 0 else ok(i, lv, a))
    monitor, _ = build(tmp_path, slurm, ["--array=0-1", "job.sh"])
    run(monitor)
    first, second = slurm.jobs.values()
    chain_id = monitor.chain.chain_id
    assert {k: v for k, v in first.env.items() if "ESCALATE" in k or "LONGRUN" in k} == {
        "SLURM_ESCALATE_CHAIN_ID": chain_id,
        "SLURM_ESCALATE_LEVEL": "0",
        "SLURM_ESCALATE_ATTEMPT": "1",
    }
    assert second.env["SLURM_ESCALATE_INITIAL_JOB_ID"] == first.job_id
    assert second.env["SLURM_LONGRUN_INITIAL_JOB_ID"] == first.job_id
    assert second.env["SLURM_ESCALATE_ATTEMPT"] == "2" and second.env["PATH"] == "/bin"


def test_a_code_error_is_not_retried(tmp_path: Path) -> None:
    slurm = FakeSlurm(lambda i, lv, a: (SlurmState.FAILED, "3:0") if i == 1 else ok(i, lv, a))
    monitor, _ = build(tmp_path, slurm, ["--array=0-2", "job.sh"])
    assert run(monitor) is ChainState.FAILED
    task = monitor.chain.task(1)
    assert (task.state, task.exit_code, len(task.attempts)) == (TaskState.FAILED, 3, 1)
    assert slurm.calls["sbatch"] == 1


def test_exit_code_137_escalates_and_top_of_ladder_exhausts(tmp_path: Path) -> None:
    slurm = FakeSlurm(lambda i, lv, a: (SlurmState.FAILED, "137:0"))
    monitor, _ = build(tmp_path, slurm, ["--array=4", "job.sh"])
    assert run(monitor) is ChainState.FAILED
    task = monitor.chain.task(4)
    assert task.state is TaskState.EXHAUSTED
    assert [a.level for a in task.attempts] == [0, 1, 2]
    assert task.reason == "FAILED exit 137 at top level 2"


def test_max_level_lowers_the_ceiling(tmp_path: Path) -> None:
    slurm = FakeSlurm(lambda i, lv, a: (SlurmState.OUT_OF_MEMORY, "0:125"))
    monitor, _ = build(tmp_path, slurm, ["--array=0", "job.sh"], max_level=1)
    run(monitor)
    assert [a.level for a in monitor.chain.task(0).attempts] == [0, 1]


def test_same_level_resubmissions_are_capped(tmp_path: Path) -> None:
    slurm = FakeSlurm(lambda i, lv, a: (SlurmState.PREEMPTED, "0:0"))
    monitor, _ = build(tmp_path, slurm, ["--array=0", "job.sh"], max_resubmits=1)
    run(monitor)
    task = monitor.chain.task(0)
    assert task.state is TaskState.EXHAUSTED
    assert [a.level for a in task.attempts] == [0, 0]
    assert "resubmit cap 1 reached at level 0" in task.reason


def test_one_sacct_call_per_poll_for_a_thousand_tasks(tmp_path: Path) -> None:
    def outcome(index, level, attempt):
        if index % 10 == 8 and level == 0:
            return SlurmState.OUT_OF_MEMORY, "0:125"
        return SlurmState.COMPLETED, "0:0"

    slurm = FakeSlurm(outcome, run_polls=2)
    monitor, _ = build(tmp_path, slurm, ["--array=0-999", "job.sh"])
    polls = []
    monitor.on_poll = lambda chain, report: polls.append(report)
    assert run(monitor) is ChainState.COMPLETED
    assert slurm.calls["sacct"] == len(polls)
    assert "--array=8-998:10" in list(slurm.jobs.values())[1].args


def test_intent_is_on_disk_before_sbatch_runs(tmp_path: Path) -> None:
    seen = []
    slurm = FakeSlurm(ok)
    monitor, store = build(tmp_path, slurm, ["job.sh"])
    slurm.on_submit = lambda: seen.append(store.load(monitor.chain.chain_id).submissions[-1])
    assert run(monitor) is ChainState.COMPLETED
    assert seen[0].status is SubmissionStatus.INTENT and seen[0].job_id is None
    after = store.load(monitor.chain.chain_id).submissions[0]
    assert (after.status, after.job_id) == (SubmissionStatus.SUBMITTED, "100")
    assert monitor.chain.tasks[0].index is None  # a non-array job is a chain of one task


def test_refused_first_submission(tmp_path: Path) -> None:
    slurm = FakeSlurm(ok, refuse=lambda args: "sbatch: error: invalid partition")
    monitor, store = build(tmp_path, slurm, ["--array=0-3", "job.sh"])
    with pytest.raises(FirstSubmissionRefused, match="invalid partition") as e:
        monitor.start()
    assert e.value.exit_code == 3
    chain = store.load(monitor.chain.chain_id)
    assert chain.state is ChainState.FAILED
    assert chain.submissions[0].status is SubmissionStatus.REFUSED


def test_refused_resubmission_is_retried_then_fails_the_tasks(tmp_path: Path) -> None:
    """A refusal for good (not a limit that lifts: see test_submitter_limits.py)."""
    refusal = "sbatch: error: Batch job submission failed: Invalid partition name specified"
    slurm = FakeSlurm(
        lambda i, lv, a: (SlurmState.OUT_OF_MEMORY, "0:125"),
        refuse=lambda args: refusal if "--partition=day" in args else None,
    )
    monitor, _ = build(tmp_path, slurm, ["--array=0", "job.sh"])
    assert run(monitor) is ChainState.FAILED
    task = monitor.chain.task(0)
    assert task.state is TaskState.FAILED
    assert "refused the resubmission 3 times: sbatch: error: Batch job" in task.reason
    assert slurm.calls["sbatch"] == 4


def test_sacct_failures_back_off_then_recover(tmp_path: Path) -> None:
    slurm = FakeSlurm(ok, fail_queries=3)
    monitor, _ = build(tmp_path, slurm, ["--array=0", "job.sh"])
    reports: list[PollReport] = []
    monitor.on_poll = lambda chain, report: reports.append(report)
    assert run(monitor) is ChainState.COMPLETED
    assert [r.failures for r in reports[:4]] == [1, 2, 3, 0]
    assert [r.interval for r in reports[:3]] == [2, 4, 8]


def test_builtin_policy_doubles_what_the_job_asked_for(tmp_path: Path) -> None:
    slurm = FakeSlurm(
        lambda i, lv, a: (SlurmState.OUT_OF_MEMORY, "0:125") if lv < 2 else ok(i, lv, a)
    )
    monitor, _ = build(tmp_path, slurm, ["--mem=300M", "--time=10", "job.sh"], ladder=None)
    assert run(monitor) is ChainState.COMPLETED
    args = [job.args for job in slurm.jobs.values()]
    assert "--mem=300M" in args[0]
    assert "--mem=600M" in args[1] and "--time=00:20:00" in args[1]
    assert "--mem=1200M" in args[2] and "--time=00:40:00" in args[2]


def test_status_file_is_valid_json_while_running(tmp_path: Path) -> None:
    slurm = FakeSlurm(ok)
    monitor, store = build(tmp_path, slurm, ["--array=0-2", "job.sh"])
    monitor.start()
    directory = store.chain_dir(monitor.chain.chain_id)
    assert json.loads((directory / "summary.json").read_text())["state"] == "RUNNING"
    lines = (directory / "journal.jsonl").read_text().splitlines()
    kinds = [json.loads(line).get("ev", {}).get("t") for line in lines]
    assert kinds == [None, "owner", "intent", "submitted"]


def test_a_task_cancelled_while_pending_vanishes_and_is_not_waited_for(tmp_path: Path) -> None:
    """Recorded on the cluster: after `scancel 8_3` the task has no row and drops out of 8_[...]."""
    slurm = FakeSlurm(ok, run_polls=50)
    monitor, _ = build(tmp_path, slurm, ["--array=0-3", "job.sh"])
    monitor.start()
    job = next(iter(slurm.jobs.values()))
    job.indices = [0, 1, 3]  # index 2 no longer appears anywhere
    clock = monitor.clock
    assert isinstance(clock, FastClock)
    for _ in range(5):  # missing for several polls, but only a few seconds: still pending
        monitor.poll_once()
        clock.t += 1
    assert monitor.chain.task(2).state is TaskState.PENDING
    clock.t += 180
    monitor.poll_once()
    task = monitor.chain.task(2)
    assert task.state is TaskState.CANCELLED
    assert "vanished from sacct" in task.reason
    assert monitor.chain.task(0).state is TaskState.RUNNING


def test_a_job_not_yet_in_sacct_is_pending_not_lost(tmp_path: Path) -> None:
    slurm = FakeSlurm(ok)
    monitor, _ = build(tmp_path, slurm, ["--array=0-3", "job.sh"])
    monitor.start()
    slurm.query = lambda job_ids, keep=None: []  # type: ignore[method-assign]
    for _ in range(10):
        monitor.poll_once()
    assert {t.state for t in monitor.chain.tasks} == {TaskState.PENDING}


def test_script_mem_per_cpu_does_not_clash_with_the_ladders_mem(tmp_path: Path) -> None:
    """sbatch refuses --mem with a script's #SBATCH --mem-per-cpu (checked with --test-only)."""
    slurm = FakeSlurm(ok)
    monitor, store = build(tmp_path, slurm, ["--array=0", "job.sh", "arg"])
    script = "#!/bin/bash\n#SBATCH --mem-per-cpu=100M -c 2\n#SBATCH --job-name=t\necho hi\n"
    request = app.make_request(["--array=0", "job.sh", "arg"], script)
    monitor.ctx = replace(monitor.ctx, request=request)
    run(monitor)
    args = next(iter(slurm.jobs.values())).args
    assert "--mem=400M" in args and args[-1] == "arg"
    copy = Path(args[-2])
    assert copy.parent.name == "1" and copy.name == "job.sh"
    assert copy.read_text() == "#!/bin/bash\n#SBATCH  -c 2\n#SBATCH --job-name=t\necho hi\n"


def test_resume_rebuilds_the_same_plan_from_the_chain_directory(tmp_path: Path) -> None:
    slurm = FakeSlurm(ok)
    monitor, store = build(tmp_path, slurm, ["--array=0-2", "-t", "5", "job.sh", "a b"])
    monitor.start()
    chain = store.load(monitor.chain.chain_id)
    prepared = app.reload(chain, store, slurm)
    assert prepared.request == monitor.ctx.request
    assert prepared.policy == monitor.ctx.policy


def test_a_new_array_seen_only_under_its_bare_id_is_not_vanished(tmp_path: Path) -> None:
    """Recorded on the cluster: for its first seconds sacct shows `569|PENDING` and no tasks."""
    slurm = FakeSlurm(ok)
    monitor, _ = build(tmp_path, slurm, ["--array=0-1", "job.sh"])
    job_id = monitor.start()
    bare = _bare(job_id)
    slurm.query = lambda job_ids, keep=None: [bare]  # type: ignore[method-assign]
    clock = monitor.clock
    assert isinstance(clock, FastClock)
    for _ in range(20):
        monitor.poll_once()
        clock.t += 30
    assert {t.state for t in monitor.chain.tasks} == {TaskState.PENDING}


def _bare(job_id: str):
    from slurm_escalate.core.models import SacctRow, TaskRecord

    row = SacctRow(
        job_id=job_id,
        array_job_id=job_id,
        array_index=None,
        step=None,
        state=SlurmState.COMPLETED,
        state_text="COMPLETED",
        exit_code=0,
        exit_signal=0,
    )
    return TaskRecord(array_job_id=job_id, index=None, job=row)


def _timeout(job_id: str) -> SlurmCommandError:
    return SlurmCommandError(["sbatch"], None, "sbatch: no answer after 120s", timed_out=True)


def test_sbatch_timing_out_after_submitting_is_found_by_its_token(tmp_path: Path) -> None:
    slurm = FakeSlurm(
        lambda i, lv, a: (SlurmState.OUT_OF_MEMORY, "0:125") if lv == 0 else ok(i, lv, a)
    )
    slurm.fail_after = lambda job_id: _timeout(job_id) if job_id == "101" else None
    monitor, _ = build(tmp_path, slurm, ["--array=0-2", "job.sh"])
    assert run(monitor) is ChainState.COMPLETED
    assert slurm.calls["sbatch"] == 2  # no second try: the job was found
    assert [s.status for s in monitor.chain.submissions] == [SubmissionStatus.SUBMITTED] * 2
    assert monitor.chain.task(1).attempts[1].job_id == "101"
    assert "--comment=slurm-escalate:" + monitor.chain.chain_id + ":2" in slurm.jobs["101"].args


def test_sbatch_reporting_an_error_after_submitting_is_not_submitted_twice(tmp_path: Path) -> None:
    slurm = FakeSlurm(ok)
    slurm.fail_after = lambda job_id: SlurmCommandError(["sbatch"], 1, "Socket timed out")
    monitor, _ = build(tmp_path, slurm, ["--array=0-2", "job.sh"])
    assert run(monitor) is ChainState.COMPLETED
    assert slurm.calls["sbatch"] == 1


def test_interrupted_sbatch_waits_while_slurm_cannot_be_asked(tmp_path: Path) -> None:
    slurm = FakeSlurm(
        lambda i, lv, a: (SlurmState.OUT_OF_MEMORY, "0:125") if lv == 0 else ok(i, lv, a)
    )
    slurm.fail_after = lambda job_id: _timeout(job_id) if job_id == "101" else None
    slurm.tokens_unreachable = 3  # the lookup right after the timeout and two reconciles fail
    monitor, _ = build(tmp_path, slurm, ["--array=0", "job.sh"])
    assert run(monitor) is ChainState.COMPLETED
    assert slurm.calls["sbatch"] == 2 and slurm.calls["find_tokens"] == 4
    assert monitor.chain.task(0).attempts[1].job_id == "101"


def _resumed(tmp_path: Path, slurm: FakeSlurm, store: ChainStore, chain_id: str) -> Monitor:
    chain = store.load(chain_id)
    prepared = app.reload(chain, store, slurm)
    return app.make_monitor(chain, prepared, store, slurm, {}, clock=FastClock())


def test_resume_after_a_crash_between_sbatch_and_recording_the_job_id(tmp_path: Path) -> None:
    slurm = FakeSlurm(
        lambda i, lv, a: (SlurmState.OUT_OF_MEMORY, "0:125") if lv == 0 else ok(i, lv, a)
    )
    monitor, store = build(tmp_path, slurm, ["--array=0-3", "job.sh"])
    monitor.start()

    class Crash(BaseException):
        pass

    def crash_after_sbatch(job_id: str) -> None:
        raise Crash  # the monitor dies: sbatch ran, nothing recorded

    slurm.fail_after = lambda job_id: crash_after_sbatch(job_id) if job_id == "101" else None
    with pytest.raises(Crash):
        monitor.run(threading.Event())
    on_disk = store.load(monitor.chain.chain_id)
    assert on_disk.submissions[-1].status is SubmissionStatus.INTENT
    slurm.fail_after = lambda job_id: None
    resumed = _resumed(tmp_path, slurm, store, monitor.chain.chain_id)
    assert resumed.run(threading.Event()) is ChainState.COMPLETED
    assert slurm.calls["sbatch"] == 2  # the interrupted submission was found, not repeated
    assert {t.state for t in resumed.chain.tasks} == {TaskState.COMPLETED}


def test_resume_resubmits_an_intent_that_never_reached_slurm(tmp_path: Path) -> None:
    slurm = FakeSlurm(ok)
    monitor, store = build(tmp_path, slurm, ["--array=0-3", "job.sh"])
    slurm.on_submit = lambda: (_ for _ in ()).throw(KeyboardInterrupt)  # dies before sbatch
    with pytest.raises(KeyboardInterrupt):
        monitor.start()
    slurm.on_submit = None
    resumed = _resumed(tmp_path, slurm, store, monitor.chain.chain_id)
    assert resumed.run(threading.Event()) is ChainState.COMPLETED
    subs = resumed.chain.submissions
    assert [s.status for s in subs] == [SubmissionStatus.REFUSED, SubmissionStatus.SUBMITTED]
    assert subs[1].indices == "0-3" and subs[1].attempt == 1


class Hooks:
    """A hook runner that records calls and answers with a fixed exit status."""

    def __init__(self, answer: int | None = 0) -> None:
        self.answer = answer
        self.calls: list[tuple[str, tuple[str, ...], dict[str, str]]] = []

    def __call__(self, name, argv, *, env, cwd, timeout):  # type: ignore[no-untyped-def]
        self.calls.append((name, tuple(argv), {k: v for k, v in env.items() if "ESCALATE" in k}))
        return self.answer


HOOKS = (
    LADDER
    + """\
on_complete: notify "chain done"
on_exhausted: [report-exhausted, --verbose]
recovery_hook: ./can-retry.sh
hook_timeout: 30
"""
)


def test_hooks_on_complete_and_on_exhausted(tmp_path: Path) -> None:
    slurm = FakeSlurm(
        lambda i, lv, a: (SlurmState.OUT_OF_MEMORY, "0:125") if i == 2 else ok(i, lv, a)
    )
    monitor, _ = build(tmp_path, slurm, ["--array=0-3", "job.sh"], ladder=HOOKS)
    monitor.hook_runner = hooks = Hooks()
    assert run(monitor) is ChainState.FAILED
    chain_id = monitor.chain.chain_id
    assert hooks.calls == [
        (
            "on_exhausted",
            ("report-exhausted", "--verbose"),
            {
                "SLURM_ESCALATE_CHAIN_ID": chain_id,
                "SLURM_ESCALATE_HOOK": "on_exhausted",
                "SLURM_ESCALATE_INDICES": "2",
            },
        ),
        (
            "on_complete",
            ("notify", "chain done"),
            {
                "SLURM_ESCALATE_CHAIN_ID": chain_id,
                "SLURM_ESCALATE_HOOK": "on_complete",
                "SLURM_ESCALATE_STATE": "FAILED",
            },
        ),
    ]


@pytest.mark.parametrize(
    ("answer", "final", "attempts"),
    [(0, TaskState.COMPLETED, 2), (1, TaskState.FAILED, 1), (None, TaskState.FAILED, 1)],
)
def test_recovery_hook_decides_about_unexplained_failures(tmp_path, answer, final, attempts):
    def outcome(index, level, attempt):
        return (SlurmState.SPECIAL_EXIT, "0:0") if attempt == 1 else ok(index, level, attempt)

    slurm = FakeSlurm(outcome)
    monitor, _ = build(tmp_path, slurm, ["--array=5", "job.sh"], ladder=HOOKS)
    monitor.hook_runner = hooks = Hooks(answer)
    run(monitor)
    task = monitor.chain.task(5)
    assert (task.state, len(task.attempts)) == (final, attempts)
    assert hooks.calls[0][0] == "recovery_hook"
    assert hooks.calls[0][2]["SLURM_ESCALATE_INDICES"] == "5"
    if answer != 0:
        assert f"recovery hook said no (exit {answer})" in task.reason


def test_indices_above_max_array_size_run_in_mapped_pieces(tmp_path: Path) -> None:
    def outcome(index, level, attempt):
        if index == 3000 and level == 0:
            return SlurmState.OUT_OF_MEMORY, "0:125"
        return SlurmState.COMPLETED, "0:0"

    slurm = FakeSlurm(outcome)  # MaxArraySize 1001: mapped pieces span 1000 indices
    tokens = ["--array=0-2,2999-3001", "--output=o-%a.log", "job.sh", "arg 1"]
    monitor, store = build(tmp_path, slurm, tokens)
    assert run(monitor) is ChainState.COMPLETED
    first, second, third, retry = slurm.jobs.values()
    assert (first.indices, first.offset) == ([0, 1, 2], 0)
    assert (second.indices, second.offset) == ([999], 2000)
    assert (third.indices, third.offset) == ([0, 1], 3000)
    assert (retry.indices, retry.offset, retry.level) == ([0], 3000, 1)
    assert "--output=o-%a.log" in first.args and first.args[-1] == "arg 1"
    assert first.args[-2].endswith("/script/job.sh")
    assert "--output=o-2%3a.log" in second.args and "--output=o-3%3a.log" in third.args
    assert second.args[-1] == "arg 1" and second.args[-2].endswith("/array-wrapper.sh")
    chain = store.load(monitor.chain.chain_id)
    task = chain.task(3000)
    assert [(a.slot, a.outcome) for a in task.attempts] == [(0, "OUT_OF_MEMORY"), (0, "COMPLETED")]
    assert task.task_job_id(task.attempts[0]) == f"{third.job_id}_0"
    assert [s.offset for s in chain.submissions] == [0, 2000, 3000, 3000]
    assert chain.task(2).attempts[0].slot is None


def test_rounds_wait_for_the_whole_submission(tmp_path: Path) -> None:
    def outcome(index, level, attempt):
        if index == 0 and level == 0 and slurm.calls["sacct"] < 4:
            return SlurmState.RUNNING, "0:0"  # the straggler of the first round
        if index == 1 and level == 0:
            return SlurmState.OUT_OF_MEMORY, "0:125"
        return SlurmState.COMPLETED, "0:0"

    for rounds, resubmitted_at in ((False, 2), (True, 4)):
        slurm = FakeSlurm(outcome)
        seen: list[int] = []
        slurm.on_submit = lambda s=slurm, seen=seen: seen.append(s.calls["sacct"])
        (tmp_path / str(rounds)).mkdir()
        monitor, _ = build(tmp_path / str(rounds), slurm, ["--array=0-2", "job.sh"], rounds=rounds)
        assert run(monitor) is ChainState.COMPLETED
        assert seen == [0, resubmitted_at], rounds


def test_skip_sends_later_ooms_where_siblings_completed(tmp_path: Path) -> None:
    # Tasks 0-3 need level 2; they finish first. Task 4..7 OOM at level 0 later on.
    def outcome(index, level, attempt):
        if index >= 4 and slurm.calls["sacct"] < 8:
            return SlurmState.RUNNING, "0:0"
        if level < 2:
            return SlurmState.OUT_OF_MEMORY, "0:125"
        return SlurmState.COMPLETED, "0:0"

    slurm = FakeSlurm(outcome)
    ladder = LADDER + "escalation: skip\n"
    monitor, store = build(tmp_path, slurm, ["--array=0-7", "job.sh"], ladder=ladder)
    assert run(monitor) is ChainState.COMPLETED
    chain = store.load(monitor.chain.chain_id)
    assert [a.level for a in chain.task(0).attempts] == [0, 1, 2]
    late = chain.task(5)
    assert [a.level for a in late.attempts] == [0, 2]
    assert late.attempts[0].skipped == (
        "4 of 4 tasks that hit OUT_OF_MEMORY at level 0 needed level 2 or higher"
    )
    assert chain.task(0).attempts[0].skipped is None
    # The report says which tasks skipped, and why.
    from slurm_escalate.reporting.jsonout import chain_json
    from slurm_escalate.reporting.markdown import render_markdown
    from slurm_escalate.reporting.stats import build_report

    data = build_report(chain, {}, escalation="skip")
    why = "4 of 4 tasks that hit OUT_OF_MEMORY at level 0 needed level 2 or higher"
    assert f"| 4-7 | 4 | 0 | 2 | {why} |" in render_markdown(data)
    skips = chain_json(data)["skips"]
    assert skips == [
        {"indices": [4, 5, 6, 7], "tasks": 4, "from_level": 0, "to_level": 2, "reason": why}
    ]
    chain.tasks = chain.tasks[:4]  # the ones that climbed rung by rung
    assert "No task skipped a rung (escalation: skip)." in render_markdown(
        build_report(chain, {}, escalation="skip")
    )


def test_unreadable_sacct_output_is_backed_off_not_fatal(tmp_path: Path) -> None:
    from slurm_escalate.errors import SlurmParseError

    slurm = FakeSlurm(ok)
    real_query, broken = slurm.query, [2]

    def query(job_ids, keep=None):
        if broken[0]:
            broken[0] -= 1
            raise SlurmParseError("sacct array record '5_[1,2,1...]': cut short")
        return real_query(job_ids)

    slurm.query = query  # type: ignore[method-assign]
    monitor, _ = build(tmp_path, slurm, ["--array=0-2", "job.sh"])
    assert run(monitor) is ChainState.COMPLETED
    waits = monitor.clock.waits  # type: ignore[attr-defined]
    assert waits[0] < waits[1]  # backed off after the second failure


def test_the_first_poll_waits_min_poll_and_a_start_does_not_restart_the_quiet_clock(
    tmp_path: Path,
) -> None:
    slurm = FakeSlurm(ok, run_polls=4)  # RUNNING at the first 4 polls, then COMPLETED
    monitor, _ = build(tmp_path, slurm, ["--array=0-1", "job.sh"])
    assert run(monitor) is ChainState.COMPLETED
    # no poll right after sbatch; the waits double from the submission although the
    # first poll saw the tasks start (a change, but not an end)
    assert monitor.clock.waits[:5] == [1, 1, 2, 4, 8]
    assert slurm.calls["sacct"] == 5


def test_a_timeouts_end_teaches_the_sweep_to_every_chain_of_the_home(tmp_path: Path) -> None:
    from slurm_escalate.core.step import epoch

    end = "2026-11-22T10:01:17"

    def outcome(index, level, attempt):
        return (SlurmState.TIMEOUT, "0:0") if attempt == 1 else (SlurmState.COMPLETED, "0:0")

    def detail(index, level, attempt):
        return {"end": end} if attempt == 1 else {}

    slurm = FakeSlurm(outcome, detail=detail)
    monitor, store = build(tmp_path, slurm, ["job.sh"], ladder=LADDER + "\n")
    assert store.sweep(monitor.cluster) is None
    assert run(monitor) is ChainState.COMPLETED
    learned = store.sweep(monitor.cluster)
    assert learned is not None and learned.at == epoch(end)
    again, _ = build(tmp_path, FakeSlurm(ok), ["job.sh"])  # another chain of the same home
    assert again.chain.chain_id != monitor.chain.chain_id
    assert again.sweep == learned
