"""Pure classification of one finished attempt, and the decision what to do next.

Slurm spreads the truth over several sacct rows: the job row can say FAILED or
even COMPLETED while the ``batch`` step says OUT_OF_MEMORY, and an OOM kill
shows up as ExitCode ``0:125`` rather than as a state on some versions. So an
OOM on any row wins; everything else follows the job row, which is what the
user sees in ``squeue``/``sacct`` and what Slurm itself acts on.
"""

from __future__ import annotations

from slurm_escalate.core.models import (
    DEFAULT_STATE_HANDLING,
    FINAL_SLURM_STATES,
    SKIP_HEADROOM,
    Action,
    Classification,
    Decision,
    FailureKind,
    Policy,
    SacctRow,
    SlurmState,
    TaskProgress,
    TaskRecord,
    TaskState,
)

OOM_SIGNAL = 125  # Slurm reports a cgroup OOM kill as ExitCode 0:125

_JOB_STATE_KINDS: dict[SlurmState, FailureKind] = {
    SlurmState.COMPLETED: FailureKind.COMPLETED,
    SlurmState.TIMEOUT: FailureKind.TIMEOUT,
    SlurmState.DEADLINE: FailureKind.DEADLINE,
    SlurmState.PREEMPTED: FailureKind.PREEMPTED,
    SlurmState.NODE_FAIL: FailureKind.NODE_FAIL,
    SlurmState.BOOT_FAIL: FailureKind.BOOT_FAIL,
    SlurmState.CANCELLED: FailureKind.CANCELLED,
    SlurmState.FAILED: FailureKind.FAILED,
    SlurmState.REVOKED: FailureKind.FAILED,
    SlurmState.SPECIAL_EXIT: FailureKind.FAILED,
    SlurmState.OUT_OF_MEMORY: FailureKind.OUT_OF_MEMORY,
}


# classify() runs for every task on every poll: the enum members it tests against are
# module constants, and the state names a dict, because Python 3.11 looks a member up
# on its class, or a member's value up on the member, several times slower.
_NAMES = {state: state.value for state in SlurmState}
_OUT_OF_MEMORY = SlurmState.OUT_OF_MEMORY
_ACTIVE, _OOM_KIND = FailureKind.ACTIVE, FailureKind.OUT_OF_MEMORY
_FAILED, _CANCELLED = FailureKind.FAILED, FailureKind.CANCELLED


def _is_oom(row: SacctRow) -> bool:
    return row.state is _OUT_OF_MEMORY or row.exit_signal == OOM_SIGNAL


def _code(row: SacctRow) -> str:
    return f"{row.exit_code}:{row.exit_signal}"


def _exit_status(row: SacctRow) -> int:
    """The exit status a shell would report: 128+N for death by signal N.

    This is what makes ``exit_codes: {137: escalate}`` catch a task SIGKILLed by
    a node's OOM killer (ExitCode ``0:9``) as well as a script that exits 137.
    """
    if row.exit_code == 0 and row.exit_signal:
        return 128 + row.exit_signal
    return row.exit_code


def classify(record: TaskRecord, policy: Policy) -> Classification:
    """What happened to this attempt, looking at the job row and all its step rows.

    ``policy`` is accepted so that cluster-specific rules (extra OOM markers, say)
    can be configured later without changing every caller. The monitor runs this
    for every task on every poll, so it is written as plain loops over the rows.
    """
    job = record.job
    steps = record.steps
    # max() over the MaxRSS values that are known. 0 is not a measurement: no
    # process runs in 0 KiB, and 22.05 reports 0 for a step it did not sample,
    # an OOM-killed batch step among them (24.11 on reports about the limit).
    max_rss = job.max_rss_kb or None
    for step in steps:
        rss = step.max_rss_kb
        if rss and (max_rss is None or rss > max_rss):
            max_rss = rss
    state = job.state
    if state not in FINAL_SLURM_STATES:
        # A RUNNING job whose batch step already ended is still running (epilog, other steps).
        return Classification(_ACTIVE, None, _NAMES[state], max_rss)
    for step in steps:
        if _is_oom(step):
            reason = f"OUT_OF_MEMORY on step {step.step} ({_code(step)})"
            return Classification(_OOM_KIND, job.exit_code, reason, max_rss)
    if _is_oom(job):
        reason = f"OUT_OF_MEMORY ({_code(job)})"
        return Classification(_OOM_KIND, job.exit_code, reason, max_rss)
    kind = _JOB_STATE_KINDS.get(state, _FAILED)
    if kind is _FAILED:
        status = _exit_status(job)
        by_signal = job.exit_code == 0 and job.exit_signal
        detail = f"signal {job.exit_signal}" if by_signal else f"exit {job.exit_code}"
        return Classification(kind, status, f"{_NAMES[state]} {detail}", max_rss)
    if kind is _CANCELLED:
        return Classification(kind, job.exit_code, job.state_text or "CANCELLED", max_rss)
    return Classification(kind, job.exit_code, _NAMES[state], max_rss)


def action_for(c: Classification, policy: Policy) -> Action | None:
    """The configured action for a final, unsuccessful attempt (None otherwise).

    Exit-code rules only refine FAILED: a TIMEOUT's exit code is Slurm's doing,
    not the program's, so it must not be reinterpreted.
    """
    if c.kind in (FailureKind.COMPLETED, FailureKind.ACTIVE):
        return None
    if c.kind is FailureKind.FAILED and c.exit_code in policy.exit_codes:
        return policy.exit_codes[c.exit_code]
    return policy.state_handling.get(c.kind, DEFAULT_STATE_HANDLING[c.kind])


def _label(c: Classification) -> str:
    if c.kind is FailureKind.FAILED and c.exit_code is not None:
        return f"FAILED exit {c.exit_code}"
    return c.kind.value


def decide(c: Classification, progress: TaskProgress, policy: Policy) -> Decision | None:
    """Turn a classification into the task's next state (None while still active).

    ``progress.level`` is the level the classified attempt ran at, which also
    covers chains that started above level 0. ``policy.top_level`` already
    honours ``max_level``, so a lowered ceiling exhausts tasks earlier.
    """
    if c.kind is FailureKind.ACTIVE:
        return None
    if c.kind is FailureKind.COMPLETED:
        return Decision(TaskState.COMPLETED, None, c.reason)
    action = action_for(c, policy)
    if action is Action.NO_RETRY:
        state = TaskState.CANCELLED if c.kind is FailureKind.CANCELLED else TaskState.FAILED
        return Decision(state, None, f"{c.reason} (not retried)")
    level, top = progress.level, policy.top_level
    if action is Action.ESCALATE:
        if level >= top:
            return Decision(TaskState.EXHAUSTED, None, f"{_label(c)} at top level {top}")
        target, why = next_level(c, progress, policy)
        reason = f"{c.reason}: escalating to level {target}"
        if why:
            reason += f" (skipping {target - level - 1} level(s): {why})"
        return Decision(TaskState.RETRY, target, reason, why)
    cap = policy.max_resubmits
    if progress.resubmits_at_level >= cap:
        reason = f"{_label(c)}: resubmit cap {cap} reached at level {level}"
        return Decision(TaskState.EXHAUSTED, None, reason)
    n = progress.resubmits_at_level + 1
    return Decision(
        TaskState.RETRY, level, f"{c.reason}: resubmitting at level {level} ({n}/{cap})"
    )


def next_level(c: Classification, progress: TaskProgress, policy: Policy) -> tuple[int, str | None]:
    """The level to escalate to from ``progress.level`` (below the top), and why it skips.

    ``step`` climbs one rung. ``skip`` takes the highest of: one rung up; for an
    OOM with a known MaxRSS, the lowest rung whose memory leaves
    ``skip_headroom`` over it; the level most siblings that failed alike at
    this level needed in the end (``progress.sibling``). The reason is None
    when the result is one rung up.
    """
    level, top = progress.level, policy.top_level
    step = min(level + 1, top)
    if policy.escalation != "skip":
        return step, None
    target, why = step, None
    if c.kind is FailureKind.OUT_OF_MEMORY and c.max_rss_kb:
        by_rss = skip_target_level(
            policy, level, c.max_rss_kb, policy.skip_headroom, progress.level_mem_mb
        )
        if by_rss > target:
            pct = round(policy.skip_headroom * 100)
            target, why = by_rss, f"MaxRSS {c.max_rss_kb // 1024}M + {pct}% headroom"
    if progress.sibling is not None and min(progress.sibling[0], top) > target:
        target, why = min(progress.sibling[0], top), progress.sibling[1]
    return target, why


def skip_target_level(
    policy: Policy,
    level: int,
    max_rss_kb: int | None,
    headroom: float = SKIP_HEADROOM,
    level_mem_mb: tuple[int | None, ...] | None = None,
) -> int:
    """The lowest level above ``level`` whose memory exceeds MaxRSS by ``headroom``.

    sacct samples MaxRSS, so an OOM-killed attempt under-reports what it needed;
    the headroom guards against landing on a rung that fails the same way. Rungs
    without a memory setting cannot be judged and are passed over. The memory
    of each level comes from the ladder, or from ``level_mem_mb`` (a multiplier
    policy's sizes depend on what the job asked for). Without a usable MaxRSS
    or level sizes this is a plain step; when no rung is big enough, the top.
    """
    top = policy.top_level
    step = min(level + 1, top)
    sizes = level_mem_mb
    if sizes is None and policy.levels:
        sizes = tuple(lv.mem_mb for lv in policy.levels)
    if not max_rss_kb or sizes is None:
        return step
    need_kb = max_rss_kb * (1 + headroom)
    for candidate in range(level + 1, top + 1):
        mem_mb = sizes[candidate] if candidate < len(sizes) else None
        if mem_mb is not None and mem_mb * 1024 >= need_kb:
            return candidate
    return top
