"""The monitor: one poll = one sacct call → step (pure judgement) → hooks → resubmit → record.

All judgement lives in the pure ``core.step.step`` (classify, decide, learn);
this class sequences it between the side effects: the Slurm client, the
recovery hook, the submitter, the chain's book (journal) and the log. Every
change goes through the book, so a monitor killed at any point loses nothing
that was already recorded.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

import msgspec

from slurm_escalate.arrays.spec import compress
from slurm_escalate.core.chain import Chain, LimitWait, SubmissionStatus, TaskStatus
from slurm_escalate.core.events import ChainSet
from slurm_escalate.core.interval import Sweep, latest_sweep, newer_sweep, next_poll_interval
from slurm_escalate.core.models import ChainState, TaskState
from slurm_escalate.core.step import Absent, Note, NoteKind, StepInput, step
from slurm_escalate.engine.hooks import HookRunner, run_hook
from slurm_escalate.engine.submitter import Clock, FirstSubmissionRefused, Submitter
from slurm_escalate.errors import EscalateError, SlurmCommandError, SlurmParseError
from slurm_escalate.sbatch.plan import PlanContext
from slurm_escalate.state.faults import crash_point
from slurm_escalate.state.journal import StaleWriter

__all__ = ["Clock", "FirstSubmissionRefused", "Monitor", "PollReport"]

GROUP_COMPLETIONS = 10  # more completions than this in one poll are logged as one line per job


@dataclass
class PollReport:
    changed: bool
    interval: float
    failures: int


class Monitor:
    """Polls and judges (through ``step``); its Submitter submits and reconciles."""

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
        self._blocked: set[int | None] = set()
        self._absent: Absent = {}  # tasks missing from their visible array, across polls
        self._starts: dict[int | None, str] = {}  # Start of running tasks: tells a requeue
        self._deadlines: list[float] = []
        self._quiet_since = self.clock.now()  # the last end or submission: see core.interval
        # Slurm's time-limit sweep on this cluster, shared by the chains of this home
        self.cluster = f"{getattr(self.client, 'clusters', None) or ''}@" + self.environ.get(
            "SLURM_CONF", ""
        )
        self.sweep: Sweep | None = self.store.sweep(self.cluster)

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
        # Only rows of tasks still open are read in: a big array's finished tasks
        # stay in sacct's answer until its last task ends.
        wanted = {
            (t.current.job_id, t.slurm_index())
            for t in self.chain.tasks
            if t.current is not None and not t.state.is_final and t.state is not TaskState.RETRY
        }
        records = self.client.query(job_ids, lambda job, i: (job, i) in wanted) if job_ids else []
        now = self.clock.now()
        exhausted_before = {t.index for t in self.chain.tasks if t.state is TaskState.EXHAUSTED}
        given = StepInput(
            self.policy, self.ctx.base, now, self._absent, frozenset(blocked), self._starts
        )
        result = step(self.chain, records, given)
        self._absent, self._deadlines, self._starts = result.absent, result.deadlines, result.starts
        if result.ended:
            self._quiet_since = now
        self._learn_sweep(result.timeout_ends, now)
        if result.base is not None:
            self.ctx = replace(self.ctx, base=result.base)
            self.book.record(ChainSet(base=result.base))
        for index, fields in result.patches:
            self.book.patch(self.chain.task(index), fields)
        self._log_notes(result.notes)
        changed = result.changed
        crash_point("after-classify")
        retries = [self.chain.task(i) for i in result.retries]
        if result.unknown:
            retries.extend(self._recover([self.chain.task(i) for i in result.unknown]))
        if retries and self.chain.rounds:
            retries = self._round_complete(retries)
        if retries and self.submitter.resubmit(retries):
            changed = True  # not while the retries wait for a limit: the polls back off
            self._quiet_since = self.clock.now()
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

    def _learn_sweep(self, timeout_ends: list[float], now: float) -> None:
        sweep = newer_sweep(self.sweep, timeout_ends, now)
        if sweep is self.sweep or sweep is None:
            return
        self.sweep = sweep
        self.log.debug(f"Slurm's time-limit sweep seen at {sweep.at:.0f} (a TIMEOUT's End)")
        try:
            self.store.save_sweep(self.cluster, sweep)
        except (OSError, EscalateError) as e:  # only a hint for other chains' monitors
            self.log.debug(f"cannot save the sweep: {e}")

    def _log_notes(self, notes: list[Note]) -> None:
        """One line per failure; completions one per task, or one per job when there are many."""
        done = [n for n in notes if n.kind is NoteKind.COMPLETED]
        if len(done) > GROUP_COMPLETIONS:
            groups: dict[tuple[str, int], list[int]] = {}
            for n in done:
                groups.setdefault((n.job, n.level), []).append(n.index or 0)
            for (job, level), indices in groups.items():
                self.log.info(
                    f"tasks {job}_[{compress(indices)}] COMPLETED at level {level} "
                    f"({len(indices)} tasks)"
                )
        else:
            for n in done:
                self.log.info(f"task {n.task} {n.text}")
        for n in notes:
            if n.kind in (NoteKind.RETRY, NoteKind.UNKNOWN, NoteKind.REQUEUED):
                self.log.warning(f"task {n.task} {n.text}")
            elif n.kind is NoteKind.FINAL:
                self.log.error(f"task {n.task} {n.text}")

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

    # ------------------------------------------------------------------- loop
    def run(self, stop: threading.Event) -> ChainState:
        """Poll until every task is final or ``stop`` is set; returns the chain state."""
        if self.book.journal.owner.pid != os.getpid():  # a daemon, after the parent submitted
            self.book.journal.reclaim(self.clock.now())
        failures = 0
        stopped = False
        delay = self._first_delay()
        if delay > 0:  # the job just went in: a poll now would only see it pending
            self._beat(0, delay, None)
            stopped = self.clock.wait(stop, delay)
        while not stopped and self.chain.state is ChainState.RUNNING:
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
            if self._deadlines:  # another chain of this home may have seen a sweep since
                self.sweep = latest_sweep(self.sweep, self.store.sweep(self.cluster))
            interval = next_poll_interval(
                now=self.clock.now(),
                quiet_since=self._quiet_since,
                running_deadlines=self._deadlines,
                failures=failures,
                min_poll=self.chain.min_poll,
                max_poll=self.chain.max_poll,
                sweep=self.sweep,
            )
            if self._blocked and not error:  # a submission waits for Slurm to answer
                sub = next((s for s in self.chain.submissions if s.job_id is None), None)
                error = f"submission in doubt: {sub.error if sub else 'Slurm unreachable'}"
            waits = self.submitter.waiting() if self.chain.state is ChainState.RUNNING else {}
            if waits:  # wake when the next try at a level a limit refused is due
                due = min(w.retry_at for w in waits.values()) - self.clock.now()
                # on time, not at the first poll after it; an overdue try (its level
                # was held up) is tried again at the pace of min_poll, never in a spin
                interval = min(interval, due if due > 0 else self.chain.min_poll)
            self._persist()
            self._beat(failures + bool(self._blocked), interval, error, waiting=waits)
            if self.on_poll:
                self.on_poll(self.chain, PollReport(changed, interval, failures))
            if self.chain.state is not ChainState.RUNNING:
                break
            self.log.debug(f"next poll in {interval:.0f}s")
            if self.clock.wait(stop, interval):
                break
        self.book.close()
        # the lease is free at once; a chain left waiting for a limit still says so
        waits = self.submitter.waiting() if self.chain.state is ChainState.RUNNING else {}
        self._beat(0, 0.0, None, stopped=True, waiting=waits)
        return self.chain.state

    def _first_delay(self) -> float:
        """Seconds to the first poll: ``min_poll`` after a submission made just now; none
        after a resume, or while a submission is in doubt (it is reconciled at once)."""
        subs = self.chain.submissions
        if not subs or any(s.status is not SubmissionStatus.SUBMITTED for s in subs):
            return 0.0
        last = max(s.submitted_at or 0.0 for s in subs)
        wait = last + self.chain.min_poll - self.clock.now()
        if not 0 < wait <= self.chain.min_poll:
            return 0.0
        self._quiet_since = last
        return wait

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
        self,
        failures: int,
        interval: float,
        error: str | None,
        stopped: bool = False,
        waiting: dict[int, LimitWait] | None = None,
    ) -> None:
        beat: dict[str, object] = {
            "stopped": stopped,
            "at": self.clock.now(),
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "failures": failures,
            "next_poll_s": round(interval, 1),
            "error": error,
        }
        if waiting:  # what ``watch`` shows as "waiting: <limit>, next try in N s"
            beat["waiting"] = [msgspec.structs.asdict(w) for w in waiting.values()]
        try:
            self.store.beat(self.chain.chain_id, beat)
        except EscalateError as e:  # a missed pulse must not stop the monitor
            self.log.warning(f"cannot write heartbeat: {e}")


def _spec(indices: list[int | None]) -> str:
    real = [i for i in indices if i is not None]
    return compress(real) if real else ""
