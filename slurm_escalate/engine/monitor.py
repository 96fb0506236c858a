"""The monitor: one poll = one sacct call → classify → decide → resubmit → record.

All judgement lives in pure functions (classify, decide, plan_group,
next_poll_interval); this class only sequences them around the two side
effects, the Slurm client and the store; submitting is the Submitter's half
(submitter.py). State is saved after every change
and around every sbatch (intent before, job id after), so a monitor killed at
any point loses nothing that already happened.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from slurm_escalate.arrays.spec import compress
from slurm_escalate.core.chain import Chain, TaskStatus
from slurm_escalate.core.classify import classify, decide
from slurm_escalate.core.events import ChainSet
from slurm_escalate.core.interval import next_poll_interval
from slurm_escalate.core.learning import sibling_level
from slurm_escalate.core.models import (
    ChainState,
    Classification,
    FailureKind,
    SlurmState,
    TaskProgress,
    TaskRecord,
    TaskState,
)
from slurm_escalate.core.units import parse_mem_mb
from slurm_escalate.engine.hooks import HookRunner, run_hook
from slurm_escalate.engine.submitter import Clock, FirstSubmissionRefused, Submitter
from slurm_escalate.errors import EscalateError, SlurmCommandError, SlurmParseError
from slurm_escalate.sbatch.plan import PlanContext, resources_for
from slurm_escalate.state.faults import crash_point
from slurm_escalate.state.journal import StaleWriter

__all__ = ["Clock", "FirstSubmissionRefused", "Monitor", "PollReport"]

VANISHED_POLLS = 3  # a task missing from its visible array this many polls in a row ...
VANISHED_GRACE_S = 180.0  # ... and for this long has been cancelled while pending

_UNEXPLAINED = {SlurmState.UNKNOWN, SlurmState.REVOKED, SlurmState.SPECIAL_EXIT}
_RUNNING_STATES = {SlurmState.RUNNING, SlurmState.COMPLETING, SlurmState.SUSPENDED}
_SKIPPABLE = {FailureKind.OUT_OF_MEMORY, FailureKind.TIMEOUT, FailureKind.DEADLINE}


@dataclass
class PollReport:
    changed: bool
    interval: float
    failures: int


class Monitor:
    """Polls, classifies and decides; its Submitter submits and reconciles."""

    def __init__(
        self,
        submitter: Submitter,
        *,
        on_poll: Callable[[Chain, PollReport], None] | None = None,
        hook_runner: HookRunner = run_hook,
    ) -> None:
        self.submitter = submitter
        self.book = submitter.book
        self.chain = submitter.chain
        self.store = submitter.store
        self.client = submitter.client
        self.policy = submitter.policy
        self.environ = submitter.environ
        self.clock = submitter.clock
        self.log = submitter.log
        self.on_poll = on_poll
        self.hook_runner = hook_runner
        self._unknown: list[TaskStatus] = []
        self._blocked: set[int | None] = set()
        self._absent: dict[int | None, tuple[int, float]] = {}  # index -> (polls, since)
        self._deadlines: list[float] = []
        self._siblings: dict[tuple[FailureKind, int], tuple[int, str] | None] = {}

    @property
    def ctx(self) -> PlanContext:
        return self.submitter.ctx

    @ctx.setter
    def ctx(self, value: PlanContext) -> None:
        self.submitter.ctx = value

    def start(self) -> str:
        """Submit the first attempt of every task (see Submitter.start)."""
        return self.submitter.start()

    # ------------------------------------------------------------------- poll
    def poll_once(self) -> bool:
        """One sacct call for every unfinished job; returns whether anything changed."""
        blocked = self._blocked = self.submitter.reconcile()
        job_ids = self.chain.unfinished_job_ids()
        records = self.client.query(job_ids) if job_ids else []
        by_key = {(r.array_job_id, r.index): r for r in records}
        # Only task rows make an array visible: for its first seconds sacct shows a new
        # array under its bare id alone ("569|PENDING"), before the tasks are split out.
        jobs_seen = {r.array_job_id for r in records if r.index is not None}
        now = self.clock.now()
        self._deadlines = []
        self._siblings = {}
        changed = False
        retries: list[TaskStatus] = []
        self._unknown = []
        exhausted_before = {t.index for t in self.chain.tasks if t.state is TaskState.EXHAUSTED}
        for task in self.chain.tasks:
            if task.state is TaskState.RETRY:
                if task.index not in blocked:
                    retries.append(task)
                continue
            if task.state.is_final or task.current is None:
                continue
            record = by_key.get((task.current.job_id, task.slurm_index()))
            if record is None:
                changed |= self._missing(task, task.current.job_id in jobs_seen, now)
                continue
            self._absent.pop(task.index, None)
            changed |= self._observe(task, record, now, retries)
        crash_point("after-classify")
        if self._unknown:
            retries.extend(self._recover(self._unknown))
        if retries and self.chain.rounds:
            retries = self._round_complete(retries)
        if retries:
            self.submitter.resubmit(retries)
            changed = True
        exhausted = [
            t.index
            for t in self.chain.tasks
            if t.state is TaskState.EXHAUSTED and t.index not in exhausted_before
        ]
        if exhausted:  # before on_complete, and before saving: run at least once
            self._hook("on_exhausted", {"SLURM_ESCALATE_INDICES": _spec(exhausted)})
        final = self.chain.final_state()
        if final is not ChainState.RUNNING and self.chain.state is ChainState.RUNNING:
            self._hook("on_complete", {"SLURM_ESCALATE_STATE": final.value})
            self.book.record(ChainSet(state=final, finished_at=now))
            changed = True
        self.book.commit()
        return changed

    def _round_complete(self, retries: list[TaskStatus]) -> list[TaskStatus]:
        """``--rounds``: the retries whose submission has no task left pending or running.

        This is how dependency-chained handler jobs behave (``afterany`` on the
        whole array): the next round starts when the last task of this one ends.
        """
        busy = {
            t.current.submission
            for t in self.chain.tasks
            if t.current is not None and t.state in (TaskState.PENDING, TaskState.RUNNING)
        }
        return [t for t in retries if t.current is None or t.current.submission not in busy]

    def _hook(self, name: str, extra: dict[str, str]) -> int | None:
        argv = getattr(self.policy.hooks, name)
        if not argv:
            return None
        env = {
            **self.environ,
            "SLURM_ESCALATE_CHAIN_ID": self.chain.chain_id,
            "SLURM_ESCALATE_HOOK": name,
            **extra,
        }
        return self.hook_runner(
            name, argv, env=env, cwd=self.chain.cwd, timeout=self.policy.hooks.timeout_s
        )

    def _recover(self, tasks: list[TaskStatus]) -> list[TaskStatus]:
        """Tasks that failed for a reason Slurm does not explain: the recovery hook decides.

        Exit 0 retries them at their level (within max_resubmits); anything else,
        or no answer, fails them.
        """
        code = self._hook(
            "recovery_hook", {"SLURM_ESCALATE_INDICES": _spec([t.index for t in tasks])}
        )
        retry = []
        for task in tasks:
            change: dict[str, object]
            if code != 0:
                change = {
                    "state": TaskState.FAILED,
                    "reason": f"{task.reason}; recovery hook said no (exit {code})",
                }
            elif task.resubmits_at_level >= self.policy.max_resubmits:
                change = {
                    "state": TaskState.EXHAUSTED,
                    "reason": f"{task.reason}; resubmit cap {self.policy.max_resubmits} reached",
                }
            else:
                change = {
                    "state": TaskState.RETRY,
                    "target_level": task.level,
                    "reason": f"{task.reason}; recovery hook: retry",
                }
                retry.append(task)
            self.book.patch(task, change)
        return retry

    def _missing(self, task: TaskStatus, job_visible: bool, now: float) -> bool:
        """A task sacct does not show is pending, unless its array is visible without it.

        sacct lists a pending array as one ``123_[...]`` row; a task cancelled
        while pending silently drops out of it. Only when it has been missing for
        ``VANISHED_POLLS`` polls and ``VANISHED_GRACE_S`` seconds in a row (so a
        row in transit is never mistaken for it) does it count as CANCELLED.
        """
        if not job_visible:
            self._absent.pop(task.index, None)
            return False
        polls, since = self._absent.get(task.index, (0, now))
        self._absent[task.index] = (polls + 1, since)
        if polls + 1 < VANISHED_POLLS or now - since < VANISHED_GRACE_S:
            return False
        reason = "vanished from sacct while pending (cancelled before it started)"
        if self.policy.hooks.recovery_hook:
            self.book.patch(task, {"state": TaskState.FAILED, "reason": reason})
            self._unknown.append(task)
        else:
            self.book.patch(task, {"state": TaskState.CANCELLED, "reason": reason})
        name = task.task_job_id(task.current) if task.current else str(task.index)
        self.log.error(f"task {name} CANCELLED: {task.reason}")
        return True

    def _observe(
        self, task: TaskStatus, record: TaskRecord, now: float, retries: list[TaskStatus]
    ) -> bool:
        c = classify(record, self.policy)
        if c.kind is FailureKind.ACTIVE:
            running = record.job.state in _RUNNING_STATES
            if running and record.job.start and record.job.timelimit_s:
                self._deadlines.append(_epoch(record.job.start) + record.job.timelimit_s)
            new = TaskState.RUNNING if running else TaskState.PENDING
            if new is task.state:
                return False
            self.book.patch(task, {"state": new})
            return True
        self._learn_base(record)
        attempt = task.current
        assert attempt is not None
        job = record.job
        progress = self._progress(task, c)
        decision = decide(c, progress, self.policy)
        assert decision is not None
        change: dict[str, object] = {
            "a.outcome": c.kind.value,
            "a.exit_code": c.exit_code,
            "a.reason": c.reason,
            "a.max_rss_kb": c.max_rss_kb,
            "a.start": job.start,
            "a.end": job.end,
            "a.elapsed_s": job.elapsed_s,
            "a.node": job.nodes,
            "a.partition": job.partition,
            "a.req_mem": job.req_mem,
            "a.timelimit_s": job.timelimit_s,
            "a.skipped": decision.skipped,
            "exit_code": c.exit_code,
            "reason": decision.reason,
        }
        name = task.task_job_id(attempt)
        if record.job.state in _UNEXPLAINED and self.policy.hooks.recovery_hook:
            change.update(state=TaskState.FAILED, reason=f"{job.state_text} (cause unknown)")
            self.book.patch(task, change)
            self._unknown.append(task)
            self.log.warning(f"task {name} {task.reason}: asking the recovery hook")
            return True
        if decision.task_state is TaskState.RETRY and self._same_resources(
            task, decision.target_level
        ):
            change.update(
                state=TaskState.EXHAUSTED, reason=f"{c.reason}: resources already at their cap"
            )
        elif decision.task_state is TaskState.RETRY:
            change.update(state=TaskState.RETRY, target_level=decision.target_level)
            retries.append(task)
        else:
            change["state"] = decision.task_state
        self.book.patch(task, change)
        self._log_outcome(name, task, c)
        return True

    def _progress(self, task: TaskStatus, c: Classification) -> TaskProgress:
        """The task's history, plus what escalation "skip" learns from the level sizes and
        from siblings (computed once per poll and failure kind)."""
        progress = TaskProgress(task.level, len(task.attempts), task.resubmits_at_level)
        if self.policy.escalation != "skip" or c.kind not in _SKIPPABLE:
            return progress
        key = (c.kind, task.level)
        if key not in self._siblings:
            self._siblings[key] = sibling_level(self.chain.tasks, c.kind, task.level)
        sizes = None
        if not self.policy.levels:
            levels = range(self.policy.top_level + 1)
            sizes = tuple(
                (resources_for(self.policy, n, self.ctx.base) or self.ctx.base).mem_mb
                for n in levels
            )
        return replace(progress, level_mem_mb=sizes, sibling=self._siblings[key])

    def _same_resources(self, task: TaskStatus, target: int | None) -> bool:
        """An escalation that changes nothing (a multiplier at its caps) cannot help."""
        if target is None or target == task.level or self.policy.levels:
            return False
        return resources_for(self.policy, target, self.ctx.base) == resources_for(
            self.policy, task.level, self.ctx.base
        )

    def _learn_base(self, record: TaskRecord) -> None:
        """Without a ladder, grow from what Slurm granted when the user asked for nothing."""
        if self.policy.levels:
            return
        base = self.ctx.base
        mem, time_s = base.mem_mb, base.time_s
        if mem is None and record.job.req_mem:
            try:
                mem = parse_mem_mb(record.job.req_mem.rstrip("nc"))
            except ValueError:
                mem = None
        if time_s is None and record.job.timelimit_s:
            time_s = record.job.timelimit_s
        if (mem, time_s) != (base.mem_mb, base.time_s):
            self.ctx = replace(self.ctx, base=replace(base, mem_mb=mem, time_s=time_s))
            self.book.record(ChainSet(base=self.ctx.base))

    def _log_outcome(self, name: str, task: TaskStatus, c: Classification) -> None:
        if task.state is TaskState.COMPLETED:
            self.log.info(f"task {name} COMPLETED at level {task.level}")
        elif task.state is TaskState.RETRY:
            self.log.warning(f"task {name} {task.reason}")
        else:
            self.log.error(f"task {name} {task.state.value}: {task.reason}")

    # ------------------------------------------------------------------- loop
    def run(self, stop: threading.Event) -> ChainState:
        """Poll until every task is final or ``stop`` is set; returns the chain state."""
        if self.book.journal.owner.pid != os.getpid():  # a daemon, after the parent submitted
            self.book.journal.reclaim(self.clock.now())
        quiet = failures = 0
        while self.chain.state is ChainState.RUNNING:
            error = None
            try:
                changed = self.poll_once()
                failures = 0
            except (SlurmCommandError, SlurmParseError) as e:
                # Output we cannot read is treated like no answer: nothing is classified
                # from it, and the monitor backs off and asks again.
                failures += 1
                changed = False
                error = str(e)
                self.log.warning(f"Slurm query failed ({e}); backing off")
            quiet = 0 if changed else quiet + 1
            interval = next_poll_interval(
                now=self.clock.now(),
                running_deadlines=self._deadlines,
                quiet_polls=quiet,
                failures=failures,
                min_poll=self.chain.min_poll,
                max_poll=self.chain.max_poll,
            )
            if self._blocked and not error:  # a submission waits for Slurm to answer
                sub = next((s for s in self.chain.submissions if s.job_id is None), None)
                error = f"submission in doubt: {sub.error if sub else 'Slurm unreachable'}"
            self._persist()
            self._beat(failures + bool(self._blocked), interval, error)
            if self.on_poll:
                self.on_poll(self.chain, PollReport(changed, interval, failures))
            if self.chain.state is not ChainState.RUNNING:
                break
            self.log.debug(f"next poll in {interval:.0f}s")
            if self.clock.wait(stop, interval):
                break
        self.book.close()
        self._beat(0, 0.0, None, stopped=True)  # the lease is free at once
        return self.chain.state

    def _persist(self) -> None:
        """After a poll: the summary for list/status/watch, and compaction when it is due."""
        try:
            self.book.maybe_compact()
            self.book.write_summary(self.clock.now())
        except StaleWriter:
            raise
        except EscalateError as e:  # the journal has every event; these can wait a poll
            self.log.warning(f"cannot write the summary or snapshot: {e}")

    def _beat(
        self, failures: int, interval: float, error: str | None, stopped: bool = False
    ) -> None:
        beat = {
            "stopped": stopped,
            "at": self.clock.now(),
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "failures": failures,
            "next_poll_s": round(interval, 1),
            "error": error,
        }
        try:
            self.store.beat(self.chain.chain_id, beat)
        except EscalateError as e:  # a missed pulse must not stop the monitor
            self.log.warning(f"cannot write heartbeat: {e}")


def _epoch(iso: str) -> float:
    """sacct prints local time without a zone, e.g. 2026-11-22T03:01:02."""
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return 0.0


def _spec(indices: list[int | None]) -> str:
    real = [i for i in indices if i is not None]
    return compress(real) if real else ""
