"""Classification of sacct rows and the decision table, as tables."""

from __future__ import annotations

from dataclasses import replace

import pytest

from slurm_escalate.core.classify import action_for, classify, decide, skip_target_level
from slurm_escalate.core.models import (
    Action,
    Classification,
    Decision,
    FailureKind,
    Level,
    MultiplierPolicy,
    Policy,
    SacctRow,
    SlurmState,
    TaskProgress,
    TaskRecord,
    TaskState,
)

K = FailureKind
POLICY = Policy(levels=(Level(mem_mb=1024), Level(mem_mb=2048), Level(mem_mb=8192)))


def row(state: str, code: str = "0:0", step: str | None = None, rss: int | None = None) -> SacctRow:
    exit_code, exit_signal = (int(x) for x in code.split(":"))
    return SacctRow(
        job_id="100_3" if step is None else f"100_3.{step}",
        array_job_id="100",
        array_index=3,
        step=step,
        state=SlurmState(state.split()[0]),
        state_text=state,
        exit_code=exit_code,
        exit_signal=exit_signal,
        max_rss_kb=rss,
    )


def record(job: SacctRow, *steps: SacctRow) -> TaskRecord:
    return TaskRecord(array_job_id="100", index=3, job=job, steps=steps)


CLASSIFY = [
    # not final yet
    ("pending", record(row("PENDING")), K.ACTIVE, None, "PENDING"),
    ("running", record(row("RUNNING"), row("RUNNING", step="batch")), K.ACTIVE, None, "RUNNING"),
    (
        "running job with a finished step",
        record(row("RUNNING"), row("COMPLETED", step="batch"), row("COMPLETED", step="extern")),
        K.ACTIVE,
        None,
        "RUNNING",
    ),
    (
        "running job with an OOM step",
        record(row("RUNNING"), row("OUT_OF_MEMORY", "0:125", step="0")),
        K.ACTIVE,
        None,
        "RUNNING",
    ),
    ("requeued", record(row("REQUEUED")), K.ACTIVE, None, "REQUEUED"),
    ("suspended", record(row("SUSPENDED")), K.ACTIVE, None, "SUSPENDED"),
    ("completing", record(row("COMPLETING")), K.ACTIVE, None, "COMPLETING"),
    ("unknown", record(row("UNKNOWN")), K.ACTIVE, None, "UNKNOWN"),
    # success
    (
        "completed",
        record(row("COMPLETED"), row("COMPLETED", step="batch")),
        K.COMPLETED,
        0,
        "COMPLETED",
    ),
    # out of memory: any row wins
    (
        "job row OOM",
        record(row("OUT_OF_MEMORY", "0:125")),
        K.OUT_OF_MEMORY,
        0,
        "OUT_OF_MEMORY (0:125)",
    ),
    (
        "batch step OOM, job FAILED",
        record(row("FAILED", "1:0"), row("OUT_OF_MEMORY", "0:125", step="batch")),
        K.OUT_OF_MEMORY,
        1,
        "OUT_OF_MEMORY on step batch (0:125)",
    ),
    (
        "COMPLETED job with an OOM step",
        record(row("COMPLETED"), row("OUT_OF_MEMORY", "0:125", step="batch")),
        K.OUT_OF_MEMORY,
        0,
        "OUT_OF_MEMORY on step batch (0:125)",
    ),
    (
        "extern step OOM",
        record(
            row("FAILED", "1:0"), row("FAILED", step="batch"), row("OUT_OF_MEMORY", step="extern")
        ),
        K.OUT_OF_MEMORY,
        1,
        "OUT_OF_MEMORY on step extern (0:0)",
    ),
    (
        "0:125 on a step without OOM state",
        record(row("FAILED", "0:125"), row("FAILED", "0:125", step="0")),
        K.OUT_OF_MEMORY,
        0,
        "OUT_OF_MEMORY on step 0 (0:125)",
    ),
    (
        "0:125 on the job row only",
        record(row("CANCELLED", "0:125")),
        K.OUT_OF_MEMORY,
        0,
        "OUT_OF_MEMORY (0:125)",
    ),
    (
        "OOM beats the job row's TIMEOUT",
        record(row("TIMEOUT", "0:0"), row("OUT_OF_MEMORY", "0:125", step="batch")),
        K.OUT_OF_MEMORY,
        0,
        "OUT_OF_MEMORY on step batch (0:125)",
    ),
    # job row state wins otherwise
    (
        "timeout",
        record(row("TIMEOUT", "0:0"), row("CANCELLED", "0:15", step="batch")),
        K.TIMEOUT,
        0,
        "TIMEOUT",
    ),
    ("deadline", record(row("DEADLINE")), K.DEADLINE, 0, "DEADLINE"),
    ("preempted", record(row("PREEMPTED", "0:15")), K.PREEMPTED, 0, "PREEMPTED"),
    ("node fail", record(row("NODE_FAIL", "0:0")), K.NODE_FAIL, 0, "NODE_FAIL"),
    ("boot fail", record(row("BOOT_FAIL")), K.BOOT_FAIL, 0, "BOOT_FAIL"),
    ("cancelled", record(row("CANCELLED")), K.CANCELLED, 0, "CANCELLED"),
    ("CANCELLED by 0", record(row("CANCELLED by 0", "0:15")), K.CANCELLED, 0, "CANCELLED by 0"),
    (
        "cancelled while a step completed",
        record(row("CANCELLED by 1000"), row("COMPLETED", step="batch")),
        K.CANCELLED,
        0,
        "CANCELLED by 1000",
    ),
    (
        "failed exit 3",
        record(row("FAILED", "3:0"), row("FAILED", "3:0", step="batch")),
        K.FAILED,
        3,
        "FAILED exit 3",
    ),
    ("failed exit 137", record(row("FAILED", "137:0")), K.FAILED, 137, "FAILED exit 137"),
    ("killed by SIGKILL", record(row("FAILED", "0:9")), K.FAILED, 137, "FAILED signal 9"),
    ("revoked", record(row("REVOKED")), K.FAILED, 0, "REVOKED exit 0"),
    ("special exit", record(row("SPECIAL_EXIT", "5:0")), K.FAILED, 5, "SPECIAL_EXIT exit 5"),
]


@pytest.mark.parametrize(
    ("name", "rec", "kind", "exit_code", "reason"), CLASSIFY, ids=[c[0] for c in CLASSIFY]
)
def test_classify(
    name: str, rec: TaskRecord, kind: FailureKind, exit_code: int | None, reason: str
) -> None:
    c = classify(rec, POLICY)
    assert (c.kind, c.exit_code, c.reason) == (kind, exit_code, reason)


def test_every_failure_kind_is_covered() -> None:
    assert {c[2] for c in CLASSIFY} == set(FailureKind)


def test_max_rss_is_the_max_over_rows() -> None:
    rec = record(
        row("FAILED", "1:0"),
        row("OUT_OF_MEMORY", "0:125", step="batch", rss=900_000),
        row("COMPLETED", step="extern", rss=1_000),
        row("COMPLETED", step="0", rss=None),
    )
    assert classify(rec, POLICY).max_rss_kb == 900_000
    assert classify(record(row("COMPLETED")), POLICY).max_rss_kb is None


def test_max_rss_of_zero_is_unknown_not_measured() -> None:
    """22.05 prints MaxRSS 0 for an OOM-killed batch step (tests/unit/data/22.05): no size
    to skip by, and no "0 MB" in a report; a row that did measure something still counts."""
    oom = row("OUT_OF_MEMORY", "0:125", step="batch", rss=0)
    c = classify(record(row("OUT_OF_MEMORY", "0:125", rss=0), oom), POLICY)
    assert (c.kind, c.max_rss_kb) == (K.OUT_OF_MEMORY, None)
    extern = row("COMPLETED", step="extern", rss=400)
    assert classify(record(row("OUT_OF_MEMORY", "0:125"), oom, extern), POLICY).max_rss_kb == 400


def c_(kind: FailureKind, code: int | None = 0, rss: int | None = None) -> Classification:
    return Classification(kind, code, kind.value, rss)


@pytest.mark.parametrize(
    ("c", "policy", "action"),
    [
        (c_(K.COMPLETED), POLICY, None),
        (c_(K.ACTIVE, None), POLICY, None),
        (c_(K.OUT_OF_MEMORY), POLICY, Action.ESCALATE),
        (c_(K.TIMEOUT), POLICY, Action.ESCALATE),
        (c_(K.PREEMPTED), POLICY, Action.RESUBMIT),
        (c_(K.NODE_FAIL), POLICY, Action.RESUBMIT),
        (c_(K.BOOT_FAIL), POLICY, Action.RESUBMIT),
        (c_(K.DEADLINE), POLICY, Action.ESCALATE),
        (c_(K.CANCELLED), POLICY, Action.NO_RETRY),
        (c_(K.FAILED, 3), POLICY, Action.NO_RETRY),
        (c_(K.FAILED, 137), POLICY, Action.ESCALATE),
        (c_(K.FAILED, 137), Policy(exit_codes={}), Action.NO_RETRY),
        (c_(K.FAILED, 75), Policy(exit_codes={75: Action.RESUBMIT}), Action.RESUBMIT),
        # exit codes refine FAILED only
        (c_(K.TIMEOUT, 137), Policy(exit_codes={137: Action.NO_RETRY}), Action.ESCALATE),
        (
            c_(K.TIMEOUT),
            Policy(state_handling={K.TIMEOUT: Action.RESUBMIT}),
            Action.RESUBMIT,
        ),
        # a state missing from a hand-built policy falls back to the default
        (c_(K.NODE_FAIL), Policy(state_handling={}), Action.RESUBMIT),
    ],
)
def test_action_for(c: Classification, policy: Policy, action: Action | None) -> None:
    assert action_for(c, policy) == action


def progress(level: int, resubmits: int = 0, attempts: int = 1) -> TaskProgress:
    return TaskProgress(level=level, attempts=attempts, resubmits_at_level=resubmits)


DECIDE = [
    ("active", c_(K.ACTIVE, None), progress(0), POLICY, None),
    (
        "completed",
        c_(K.COMPLETED),
        progress(1),
        POLICY,
        Decision(TaskState.COMPLETED, None, "COMPLETED"),
    ),
    (
        "oom escalates",
        c_(K.OUT_OF_MEMORY),
        progress(0),
        POLICY,
        Decision(TaskState.RETRY, 1, "OUT_OF_MEMORY: escalating to level 1"),
    ),
    (
        "start level 1 escalates to 2",
        c_(K.TIMEOUT),
        progress(1, attempts=1),
        Policy(levels=POLICY.levels, start_level=1),
        Decision(TaskState.RETRY, 2, "TIMEOUT: escalating to level 2"),
    ),
    (
        "oom at top level",
        c_(K.OUT_OF_MEMORY),
        progress(2),
        POLICY,
        Decision(TaskState.EXHAUSTED, None, "OUT_OF_MEMORY at top level 2"),
    ),
    (
        "max_level lowers the top",
        c_(K.OUT_OF_MEMORY),
        progress(1),
        Policy(levels=POLICY.levels, max_level=1),
        Decision(TaskState.EXHAUSTED, None, "OUT_OF_MEMORY at top level 1"),
    ),
    (
        "above a lowered max_level",
        c_(K.DEADLINE),
        progress(2),
        Policy(levels=POLICY.levels, max_level=1),
        Decision(TaskState.EXHAUSTED, None, "DEADLINE at top level 1"),
    ),
    (
        "exit 137 escalates",
        Classification(K.FAILED, 137, "FAILED signal 9"),
        progress(0),
        POLICY,
        Decision(TaskState.RETRY, 1, "FAILED signal 9: escalating to level 1"),
    ),
    (
        "exit 137 at the top",
        c_(K.FAILED, 137),
        progress(2),
        POLICY,
        Decision(TaskState.EXHAUSTED, None, "FAILED exit 137 at top level 2"),
    ),
    (
        "multiplier top is max_steps",
        c_(K.OUT_OF_MEMORY),
        progress(3),
        Policy(multiplier=MultiplierPolicy(max_steps=3)),
        Decision(TaskState.EXHAUSTED, None, "OUT_OF_MEMORY at top level 3"),
    ),
    (
        "multiplier escalates",
        c_(K.OUT_OF_MEMORY),
        progress(2),
        Policy(multiplier=MultiplierPolicy(max_steps=3)),
        Decision(TaskState.RETRY, 3, "OUT_OF_MEMORY: escalating to level 3"),
    ),
    (
        "preempted resubmits at the same level",
        c_(K.PREEMPTED),
        progress(1, resubmits=2),
        POLICY,
        Decision(TaskState.RETRY, 1, "PREEMPTED: resubmitting at level 1 (3/3)"),
    ),
    (
        "resubmit cap",
        c_(K.NODE_FAIL),
        progress(1, resubmits=3),
        POLICY,
        Decision(TaskState.EXHAUSTED, None, "NODE_FAIL: resubmit cap 3 reached at level 1"),
    ),
    (
        "resubmit cap 0",
        c_(K.BOOT_FAIL),
        progress(0),
        Policy(levels=POLICY.levels, max_resubmits=0),
        Decision(TaskState.EXHAUSTED, None, "BOOT_FAIL: resubmit cap 0 reached at level 0"),
    ),
    (
        "timeout resubmit at top level still resubmits",
        c_(K.TIMEOUT),
        progress(2),
        Policy(levels=POLICY.levels, state_handling={K.TIMEOUT: Action.RESUBMIT}),
        Decision(TaskState.RETRY, 2, "TIMEOUT: resubmitting at level 2 (1/3)"),
    ),
    (
        "failed is not retried",
        Classification(K.FAILED, 3, "FAILED exit 3"),
        progress(0),
        POLICY,
        Decision(TaskState.FAILED, None, "FAILED exit 3 (not retried)"),
    ),
    (
        "cancelled stays cancelled",
        Classification(K.CANCELLED, 0, "CANCELLED by 0"),
        progress(1),
        POLICY,
        Decision(TaskState.CANCELLED, None, "CANCELLED by 0 (not retried)"),
    ),
    (
        "oom set to no_retry",
        c_(K.OUT_OF_MEMORY),
        progress(0),
        Policy(levels=POLICY.levels, state_handling={K.OUT_OF_MEMORY: Action.NO_RETRY}),
        Decision(TaskState.FAILED, None, "OUT_OF_MEMORY (not retried)"),
    ),
]


@pytest.mark.parametrize(
    ("name", "c", "prog", "policy", "expected"), DECIDE, ids=[d[0] for d in DECIDE]
)
def test_decide(
    name: str, c: Classification, prog: TaskProgress, policy: Policy, expected: Decision | None
) -> None:
    assert decide(c, prog, policy) == expected


LADDER = tuple(Level(mem_mb=m) for m in (1000, 2000, 4000, 8000, 16000))
SKIP = Policy(levels=LADDER, escalation="skip")


@pytest.mark.parametrize(
    ("level", "rss_kb", "expected"),
    [
        (0, None, 1),  # unknown MaxRSS: plain step
        (0, 500 * 1024, 1),  # always at least one rung up
        (0, 1700 * 1024, 2),  # 2000M < 1700M * 1.2
        (0, 1600 * 1024, 1),  # 2000M >= 1920M
        (1, 3000 * 1024, 2),
        (0, 6000 * 1024, 3),
        (0, 100_000 * 1024, 4),  # nothing fits: the top
        (3, 100_000 * 1024, 4),
    ],
)
def test_skip_target_level(level: int, rss_kb: int | None, expected: int) -> None:
    assert skip_target_level(SKIP, level, rss_kb) == expected


def test_skip_passes_over_levels_without_memory_and_respects_max_level() -> None:
    ladder = (Level(mem_mb=1000), Level(partition="week"), Level(mem_mb=8000), Level(mem_mb=9000))
    assert skip_target_level(Policy(levels=ladder), 0, 2000 * 1024) == 2
    capped = Policy(levels=ladder, max_level=1)
    assert skip_target_level(capped, 0, 2000 * 1024) == 1
    assert skip_target_level(Policy(multiplier=MultiplierPolicy()), 1, 10**9) == 2


def test_decide_with_skip_escalation() -> None:
    oom = Classification(K.OUT_OF_MEMORY, 0, "OUT_OF_MEMORY on step batch (0:125)", 6000 * 1024)
    why = "MaxRSS 6000M + 20% headroom"
    assert decide(oom, progress(0), SKIP) == Decision(
        TaskState.RETRY,
        3,
        f"OUT_OF_MEMORY on step batch (0:125): escalating to level 3 (skipping 2 level(s): {why})",
        why,
    )
    timeout = Classification(K.TIMEOUT, 0, "TIMEOUT", 6000 * 1024)
    assert decide(timeout, progress(0), SKIP) == Decision(
        TaskState.RETRY, 1, "TIMEOUT: escalating to level 1"
    )
    step = Policy(levels=LADDER)
    assert decide(oom, progress(0), step) == Decision(
        TaskState.RETRY, 1, "OUT_OF_MEMORY on step batch (0:125): escalating to level 1"
    )


def test_skip_headroom_is_configurable() -> None:
    # 1800M needs 2160M with 20% headroom (level 2: 4000M) but fits level 1 (2000M) at 10%.
    oom = Classification(K.OUT_OF_MEMORY, 0, "OUT_OF_MEMORY", 1800 * 1024)
    decision = decide(oom, progress(0), SKIP)
    assert decision is not None and decision.target_level == 2
    loose = replace(SKIP, skip_headroom=0.1)
    decision = decide(oom, progress(0), loose)
    assert decision is not None and (decision.target_level, decision.skipped) == (1, None)


def test_skip_follows_siblings_and_never_goes_below_the_rss_target() -> None:
    oom = Classification(K.OUT_OF_MEMORY, 0, "OUT_OF_MEMORY", None)  # fast kill: no MaxRSS
    told = replace(progress(0), sibling=(2, "4 of 5 tasks ... needed level 2 or higher"))
    decision = decide(oom, told, SKIP)
    assert decision is not None and decision.target_level == 2
    assert decision.skipped == "4 of 5 tasks ... needed level 2 or higher"
    big = Classification(K.OUT_OF_MEMORY, 0, "OUT_OF_MEMORY", 6000 * 1024)
    decision = decide(big, told, SKIP)
    assert decision is not None and decision.target_level == 3  # MaxRSS says more
    decision = decide(oom, told, Policy(levels=LADDER))  # step ignores siblings
    assert decision is not None and decision.target_level == 1


def test_skip_with_a_multiplier_uses_the_level_sizes_it_is_given() -> None:
    policy = Policy(multiplier=MultiplierPolicy(max_steps=4), escalation="skip")
    oom = Classification(K.OUT_OF_MEMORY, 0, "OUT_OF_MEMORY", 700 * 1024)
    sized = replace(progress(0), level_mem_mb=(100, 200, 400, 800, 1600))
    decision = decide(oom, sized, policy)
    assert decision is not None and decision.target_level == 4  # 840M needs 1600M
    decision = decide(oom, progress(0), policy)
    assert decision is not None and decision.target_level == 1  # sizes unknown: a step
