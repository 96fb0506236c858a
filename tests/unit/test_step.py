"""The pure step: every task state transition of one poll, as a table."""

from __future__ import annotations

import copy
from datetime import datetime

import msgspec
import pytest

from slurm_escalate.core.chain import Attempt, Chain, TaskStatus
from slurm_escalate.core.events import Tasks, apply, group_patches
from slurm_escalate.core.models import (
    Hooks,
    Level,
    MultiplierPolicy,
    Policy,
    SacctRow,
    SlurmState,
    TaskRecord,
    TaskState,
)
from slurm_escalate.core.step import (
    REQUEUE_GRACE_S,
    VANISHED_GRACE_S,
    NoteKind,
    StepInput,
    epoch,
    step,
)

LADDER = Policy(levels=(Level(mem_mb=100), Level(mem_mb=200), Level(mem_mb=400)), max_resubmits=1)
HOOKED = Policy(levels=LADDER.levels, hooks=Hooks(recovery_hook=("true",)))
NOW = 1_790_000_000.0


def chain_of(state: TaskState, level: int = 0, resubmits: int = 0) -> Chain:
    task = TaskStatus(
        index=4,
        state=state,
        level=level,
        attempts=[Attempt(job_id="70", level=level, submission=1)],
        resubmits_at_level=resubmits,
    )
    return Chain(
        chain_id="c",
        created_at=0.0,
        cwd="/",
        script="job.sh",
        script_copy=None,
        sbatch_args=[],
        script_args=[],
        config=None,
        tasks=[task],
    )


def record(state: SlurmState, code: str = "0:0", batch: SlurmState | None = None) -> TaskRecord:
    exit_code, signal = (int(x) for x in code.split(":"))

    def row(step: str | None, st: SlurmState) -> SacctRow:
        return SacctRow(
            job_id="70_4" + (f".{step}" if step else ""),
            array_job_id="70",
            array_index=4,
            step=step,
            state=st,
            state_text=st.value,
            exit_code=exit_code,
            exit_signal=signal,
            start="2026-09-21T10:00:00",
            timelimit_s=60,
            req_mem="100M",
        )

    steps = (row("batch", batch),) if batch else ()
    return TaskRecord("70", 4, row(None, state), steps)


# (task state before, level, resubmits, sacct job state, exit code, policy) ->
# (task state after, target level, retried?, note kind)
TABLE = [
    ("PENDING", 0, 0, SlurmState.PENDING, "0:0", LADDER, "PENDING", None, False, None),
    ("PENDING", 0, 0, SlurmState.RUNNING, "0:0", LADDER, "RUNNING", None, False, None),
    ("RUNNING", 0, 0, SlurmState.RUNNING, "0:0", LADDER, "RUNNING", None, False, None),
    ("RUNNING", 0, 0, SlurmState.REQUEUED, "0:0", LADDER, "PENDING", None, False, "REQUEUED"),
    ("RUNNING", 0, 0, SlurmState.PENDING, "0:0", LADDER, "PENDING", None, False, "REQUEUED"),
    ("RUNNING", 0, 0, SlurmState.COMPLETED, "0:0", LADDER, "COMPLETED", None, False, "COMPLETED"),
    ("RUNNING", 0, 0, SlurmState.OUT_OF_MEMORY, "0:125", LADDER, "RETRY", 1, True, "RETRY"),
    ("RUNNING", 1, 0, SlurmState.TIMEOUT, "0:0", LADDER, "RETRY", 2, True, "RETRY"),
    ("RUNNING", 2, 0, SlurmState.OUT_OF_MEMORY, "0:125", LADDER, "EXHAUSTED", None, False, "FINAL"),
    ("RUNNING", 0, 0, SlurmState.FAILED, "3:0", LADDER, "FAILED", None, False, "FINAL"),
    ("RUNNING", 0, 0, SlurmState.CANCELLED, "0:15", LADDER, "CANCELLED", None, False, "FINAL"),
    ("RUNNING", 0, 0, SlurmState.NODE_FAIL, "0:0", LADDER, "RETRY", 0, True, "RETRY"),
    ("RUNNING", 0, 1, SlurmState.PREEMPTED, "0:0", LADDER, "EXHAUSTED", None, False, "FINAL"),
    ("RUNNING", 0, 0, SlurmState.FAILED, "137:0", LADDER, "RETRY", 1, True, "RETRY"),
    ("RUNNING", 0, 0, SlurmState.SPECIAL_EXIT, "0:0", HOOKED, "FAILED", None, False, "UNKNOWN"),
]


@pytest.mark.parametrize(
    ("before", "level", "resubmits", "sacct", "code", "policy", "after", "target", "retry", "note"),
    TABLE,
)
def test_each_transition(before, level, resubmits, sacct, code, policy, after, target, retry, note):
    chain = chain_of(TaskState(before), level, resubmits)
    frozen = copy.deepcopy(chain)
    result = step(chain, [record(sacct, code)], StepInput(policy, Level(), NOW))
    assert chain == frozen  # pure: the view is not touched
    for event in group_patches(result.patches):
        apply(chain, event)
    task = chain.tasks[0]
    assert task.state is TaskState(after)
    if target is not None:
        assert task.target_level == target
    assert (4 in result.retries) is retry
    assert [n.kind for n in result.notes] == ([NoteKind(note)] if note else [])
    assert result.changed is (before != after)
    running = sacct is SlurmState.RUNNING
    assert result.deadlines == ([epoch("2026-09-21T10:00:00") + 60] if running else [])


def test_a_finished_attempt_records_what_sacct_said():
    chain = chain_of(TaskState.RUNNING)
    oom = [record(SlurmState.OUT_OF_MEMORY, "0:125")]
    result = step(chain, oom, StepInput(LADDER, Level(), NOW))
    ((index, fields),) = result.patches
    assert index == 4
    assert fields["a.outcome"] == "OUT_OF_MEMORY" and fields["a.timelimit_s"] == 60
    assert fields["a.req_mem"] == "100M" and fields["state"] is TaskState.RETRY


def test_a_retry_waiting_for_sbatch_is_resubmitted_unless_its_submission_is_in_doubt():
    chain = chain_of(TaskState.RETRY)
    assert step(chain, [], StepInput(LADDER, Level(), NOW)).retries == [4]
    blocked = StepInput(LADDER, Level(), NOW, blocked=frozenset({4}))
    assert step(chain, [], blocked).retries == []


def test_a_task_missing_from_its_visible_array_is_cancelled_only_after_polls_and_grace():
    chain = chain_of(TaskState.PENDING)
    other = TaskRecord("70", 5, record(SlurmState.PENDING).job)  # the array is visible
    absent: dict = {}
    for poll in range(3):
        now = NOW + poll * VANISHED_GRACE_S
        result = step(chain, [other], StepInput(LADDER, Level(), now, absent))
        absent = result.absent
        assert result.patches == ([] if poll < 2 else [(4, result.patches[0][1])])
    assert result.patches[0][1]["state"] is TaskState.CANCELLED
    # Not visible at all (the array's rows are in transit): nothing counts.
    assert step(chain, [], StepInput(LADDER, Level(), NOW, absent)).absent == {}


def test_without_a_ladder_the_base_is_learned_from_what_slurm_granted():
    policy = Policy(multiplier=MultiplierPolicy())
    chain = chain_of(TaskState.RUNNING)
    oom = [record(SlurmState.OUT_OF_MEMORY, "0:125")]
    result = step(chain, oom, StepInput(policy, Level(), NOW))
    assert result.base == Level(mem_mb=100, time_s=60)
    assert isinstance(group_patches(result.patches)[0], Tasks)


# ---------------------------------------------------------- Slurm's own requeue


def _at(state: SlurmState, start: str | None, code: str = "0:0") -> TaskRecord:
    r = record(state, code)
    return TaskRecord(r.array_job_id, r.index, msgspec.structs.replace(r.job, start=start))


def _poll(chain: Chain, rec: TaskRecord, starts: dict) -> tuple[dict, list]:
    result = step(chain, [rec], StepInput(LADDER, Level(), NOW, starts=starts))
    for event in group_patches(result.patches):
        apply(chain, event)
    return result.starts, result.notes


def test_a_task_slurm_requeues_is_followed_counted_once_and_never_resubmitted():
    chain = chain_of(TaskState.PENDING)
    starts: dict = {}
    runs = [
        _at(SlurmState.RUNNING, "2026-09-21T10:00:00"),
        _at(SlurmState.RUNNING, "2026-09-21T10:00:00"),
        _at(SlurmState.REQUEUED, "2026-09-21T10:00:00"),  # scontrol requeue
        _at(SlurmState.PENDING, None),  # held until its BeginTime
        _at(SlurmState.RUNNING, "2026-09-21T10:02:10"),  # the rerun, same job id
        _at(SlurmState.COMPLETED, "2026-09-21T10:02:10"),
    ]
    kinds = []
    for rec in runs:
        starts, notes = _poll(chain, rec, starts)
        kinds.append([n.kind for n in notes])
    task = chain.tasks[0]
    assert task.state is TaskState.COMPLETED and len(task.attempts) == 1
    assert task.current is not None and task.current.requeues == 1
    assert kinds == [[], [], [NoteKind.REQUEUED], [], [], [NoteKind.COMPLETED]]
    assert "was requeued by Slurm (REQUEUED; requeue 1 of this attempt)" in str(
        [n.text for n in _poll(chain_of(TaskState.RUNNING), runs[2], {})[1]]
    )


def test_a_requeue_between_two_polls_is_told_by_a_new_start():
    chain = chain_of(TaskState.PENDING)
    starts, _ = _poll(chain, _at(SlurmState.RUNNING, "2026-09-21T10:00:00"), {})
    assert starts == {4: "2026-09-21T10:00:00"}
    # requeued, pending and started again, all while the monitor slept
    starts, notes = _poll(chain, _at(SlurmState.RUNNING, "2026-09-21T10:05:00"), starts)
    assert [n.kind for n in notes] == [NoteKind.REQUEUED]
    assert chain.tasks[0].state is TaskState.RUNNING and chain.tasks[0].attempts[0].requeues == 1
    # ... and again, ending before the next poll: counted with the outcome
    starts, notes = _poll(chain, _at(SlurmState.COMPLETED, "2026-09-21T10:09:00"), starts)
    assert [n.kind for n in notes] == [NoteKind.REQUEUED, NoteKind.COMPLETED]
    assert chain.tasks[0].attempts[0].requeues == 2 and starts == {}


def test_without_a_start_seen_running_nothing_counts_as_a_requeue():
    """A resumed monitor knows no Start yet: the first run it sees is the baseline."""
    chain = chain_of(TaskState.PENDING)
    starts, notes = _poll(chain, _at(SlurmState.RUNNING, "2026-09-21T10:05:00"), {})
    assert notes == [] and chain.tasks[0].attempts[0].requeues == 0
    starts, notes = _poll(chain, _at(SlurmState.COMPLETED, "2026-09-21T10:05:00"), starts)
    assert [n.kind for n in notes] == [NoteKind.COMPLETED]
    assert chain.tasks[0].attempts[0].requeues == 0


def _ended(state: SlurmState, end: str) -> TaskRecord:
    r = record(state)
    return TaskRecord(r.array_job_id, r.index, msgspec.structs.replace(r.job, end=end))


@pytest.mark.parametrize("state", [SlurmState.PREEMPTED, SlurmState.NODE_FAIL])
def test_a_preemption_slurm_may_requeue_is_believed_only_after_a_grace(state):
    ended = datetime.fromtimestamp(NOW).isoformat(timespec="seconds")
    chain = chain_of(TaskState.RUNNING)
    starts: dict = {4: "2026-09-21T10:00:00"}
    # PreemptMode=REQUEUE: sacct says PREEMPTED for seconds, then PENDING (same job id)
    result = step(chain, [_ended(state, ended)], StepInput(LADDER, Level(), NOW + 5, starts=starts))
    assert (result.patches, result.retries, result.notes) == ([], [], [])
    starts, notes = _poll(chain, _at(SlurmState.PENDING, None), result.starts)
    assert [n.kind for n in notes] == [NoteKind.REQUEUED]
    assert chain.tasks[0].state is TaskState.PENDING and chain.tasks[0].attempts[0].requeues == 1
    # not requeued (PreemptMode=CANCEL, --no-requeue): judged once the end has stood the grace
    chain = chain_of(TaskState.RUNNING)
    late = StepInput(LADDER, Level(), NOW + REQUEUE_GRACE_S + 1)
    result = step(chain, [_ended(state, ended)], late)
    assert result.retries == [4] and [n.kind for n in result.notes] == [NoteKind.RETRY]
