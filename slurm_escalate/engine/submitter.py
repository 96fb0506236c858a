"""Submitting a chain's attempts so that no crash can lose or duplicate one.

Every sbatch is recorded as an intent before it runs and with its job id
after; each job carries a token (``--comment``) by which an interrupted or
ambiguous sbatch is found in Slurm again before anything is resubmitted. An
array that does not fit one submission goes in pieces (see pieces.py).
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

from loguru import logger

from slurm_escalate.arrays.spec import compress
from slurm_escalate.core.chain import (
    LimitWait,
    Submission,
    SubmissionStatus,
    TaskStatus,
    limit_waits,
)
from slurm_escalate.core.events import ChainSet, Intent, SubFailed, Submitted, submission_indices
from slurm_escalate.core.models import ChainState, TaskState
from slurm_escalate.errors import EscalateError, SlurmCommandError, SlurmParseError
from slurm_escalate.sbatch.plan import (
    TOKEN_PREFIX,
    FinalSubmission,
    PlanContext,
    PlannedFile,
    PlannedSubmission,
    cpus_at,
    finalize,
    group_retries,
    plan_first,
    plan_group,
    submission_env,
)
from slurm_escalate.slurm.client import SlurmClient
from slurm_escalate.state.book import ChainBook
from slurm_escalate.state.faults import crash_point
from slurm_escalate.state.store import ChainStore

MAX_REFUSALS = 3  # consecutive refused resubmissions of one group before its tasks fail
LOOKUP_SLACK_S = 300.0  # look for a token in jobs submitted from this long before the intent

# Refusals that lift by themselves once jobs end: submit-count limits of a QOS or an
# association (sbatch: error: QOSMaxSubmitJobPerUserLimit, AssocMaxSubmitJobLimit,
# QOSGrpSubmitJobsLimit ...), and a controller that is full or busy (MaxJobCount:
# "Resource temporarily unavailable"). Their tasks wait and are tried again with
# backoff; they never fail for it. Any other named limit (QOSMaxWallDurationPerJobLimit
# with DenyOnLimit, say) refuses this job for good and counts towards MAX_REFUSALS.
_SUBMIT_LIMIT_RE = re.compile(r"\b(?:QOS|Assoc)\w*Submit\w*Limit\b")
_OTHER_LIMIT_RE = re.compile(r"\b(?:QOS|Assoc)\w+Limit\b")
_TEMPORARY = (
    "Resource temporarily unavailable",
    "temporarily unable to accept job",
)
_POLICY = "Job violates accounting/QOS policy"


def limit_refusal(stderr: str) -> str | None:
    """The limit that refused a submission, when it is one that lifts by itself; else None."""
    found = _SUBMIT_LIMIT_RE.search(stderr)
    if found:
        return found.group(0)
    if _OTHER_LIMIT_RE.search(stderr):
        return None
    for text in _TEMPORARY:
        if text.lower() in stderr.lower():
            return text
    if _POLICY in stderr:
        return "accounting/QOS policy (job submit limit)"
    return None


def limit_backoff(refusals: int, min_poll: float, max_poll: float) -> float:
    """Seconds before the next try after ``refusals`` refusals in a row by a limit:
    ``min_poll``, doubling each time, at most ``max_poll``."""
    return min(max(min_poll, max_poll), min_poll * 2.0 ** min(max(refusals - 1, 0), 20))


class _Unknown:
    """Slurm could not be asked, or the job carries no token."""


UNKNOWN = _Unknown()


class FirstSubmissionRefused(EscalateError):
    exit_code = 3


class Clock:
    """Wall time and interruptible waiting; tests substitute a fast-forward clock."""

    def now(self) -> float:
        return time.time()

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        return stop.wait(seconds)


class Submitter:
    """The submitting half of the monitor: first submission, resubmissions, reconciling."""

    def __init__(
        self,
        book: ChainBook,
        store: ChainStore,
        client: SlurmClient,
        ctx: PlanContext,
        *,
        environ: Mapping[str, str],
        clock: Clock | None = None,
    ) -> None:
        self.book = book
        self.chain = chain = book.chain
        self.store = store
        self.client = client
        self.ctx = ctx
        self.policy = ctx.policy
        self.environ = dict(environ)
        self.clock = clock or Clock()
        self.log = logger.bind(chain=chain.chain_id)
        self._refusals: dict[tuple[int, int], int] = {}

    def start(self) -> str:
        """Submit the first attempt of every task; FirstSubmissionRefused if sbatch says no.

        The plan is ``plan_first``'s, the one ``--dry-run`` prints.
        """
        level = self.chain.start_level
        indices = [t.index for t in self.chain.tasks if t.index is not None]
        plans = plan_first(self.ctx, indices)
        if len(plans) > 1 or plans[0].offset:
            self.log.info(
                f"the array is submitted in {len(plans)} pieces "
                f"(MaxArraySize {self.ctx.max_array_size})"
            )
        try:
            sub = self._submit(plans[0])
        except SlurmCommandError as e:
            for task in self.chain.tasks:
                self.book.patch(
                    task, {"state": TaskState.FAILED, "reason": f"not submitted: {_last_line(e)}"}
                )
            self.book.record(ChainSet(state=ChainState.FAILED, finished_at=self.clock.now()))
            self.book.commit()
            self.book.write_summary(self.clock.now())  # ``list`` says FAILED, as status does
            if e.timed_out:
                raise FirstSubmissionRefused(
                    f"sbatch did not answer ({_last_line(e)}); the job may exist: check squeue"
                ) from None
            limit = self.chain.submissions[-1].limit  # sbatch names it on a line of its own
            said = _last_line(e)
            which = f" ({limit})" if limit and limit not in said else ""
            raise FirstSubmissionRefused(f"sbatch refused the job{which}: {said}") from None
        for plan in plans[1:]:
            try:
                self._submit(plan)
            except SlurmCommandError as e:  # the monitor tries again (or settles a doubt)
                self._submission_failed(plan, e)
                if self.chain.submissions[-1].status is SubmissionStatus.REFUSED:
                    for index in plan.indices or ():
                        task = self.chain.task(index)
                        if not task.state.is_final:
                            self.book.patch(task, {"state": TaskState.RETRY, "target_level": level})
                self.book.commit()
        assert sub.job_id is not None
        return sub.job_id

    def _submit(self, plan: PlannedSubmission) -> Submission:
        """Record the intent, run sbatch, record the outcome; raises SlurmCommandError.

        When sbatch fails, the job is looked up by its token first: sbatch can
        report an error (or time out) after the controller accepted the job.
        """
        final = self._script_for(plan)
        plan = final.plan
        self.book.record(
            Intent(
                seq=final.seq,
                level=plan.level,
                attempt=plan.attempt,
                indices=compress(plan.indices) if plan.indices else None,
                array=plan.array,
                args=list(plan.args),
                intent_at=self.clock.now(),
                cpus=self._cpus(plan.level),
                token=final.token,
                offset=plan.offset,
            )
        )
        sub = self.chain.submissions[-1]
        env = submission_env(self.environ, plan.env)
        crash_point("before-sbatch")
        try:
            job_id = self.client.submit(list(plan.args), env=env, cwd=self.chain.cwd)
        except (SlurmCommandError, SlurmParseError) as e:
            error = e if isinstance(e, SlurmCommandError) else _uncertain(e)
            said = _last_line(error)
            found = self._lookup(sub, error.timed_out)
            if isinstance(found, str):
                self.log.warning(f"sbatch reported '{said}', but job {found} exists")
                self._record_submitted(sub, found, error=said)
                return sub
            status = SubmissionStatus.REFUSED if found is None else SubmissionStatus.UNKNOWN
            limit = limit_refusal(error.stderr or "") if found is None else None
            retry_at = None
            if limit is not None:
                last = self.waiting().get(plan.level)
                delay = limit_backoff(
                    (last.refusals if last else 0) + 1, self.chain.min_poll, self.chain.max_poll
                )
                retry_at = self.clock.now() + delay
            self.book.record(
                SubFailed(seq=sub.seq, status=status, error=said, limit=limit, retry_at=retry_at)
            )
            raise error from None
        crash_point("after-sbatch")
        self._record_submitted(sub, job_id)
        crash_point("after-record")
        return sub

    def _lookup(self, sub: Submission, timed_out: bool) -> str | None | _Unknown:
        """The job id carrying ``sub``'s token; None when Slurm has no such job."""
        if sub.token is None:  # the user's own --comment: no way to tell
            return UNKNOWN if timed_out else None
        try:
            found = self.client.find_tokens(
                f"{TOKEN_PREFIX}{self.chain.chain_id}:", sub.intent_at - LOOKUP_SLACK_S
            )
        except SlurmCommandError as e:
            self.log.warning(f"cannot look for submission {sub.seq} in Slurm yet: {e}")
            return UNKNOWN
        return found.get(sub.token)

    def _record_submitted(self, sub: Submission, job_id: str, error: str | None = None) -> None:
        self.book.record(Submitted(seq=sub.seq, job_id=job_id, at=self.clock.now(), error=error))
        what = f"array {sub.array or sub.indices}" if self.chain.is_array else "job"
        self.log.info(
            f"submitted {what} at level {sub.level} (attempt {sub.attempt}) as job {job_id}"
        )
        if self.ctx.initial_job_id is None:
            self.ctx = replace(self.ctx, initial_job_id=job_id)

    def reconcile(self) -> set[int | None]:
        """Settle submissions whose sbatch was interrupted; returns indices still in doubt.

        A submission recorded as an intent (the monitor died inside sbatch) or as
        UNKNOWN (sbatch timed out) is looked up by its token. Found: its tasks get
        the job as their attempt. Not found: it never happened, and its tasks are
        resubmitted. Slurm unreachable: its tasks wait; nothing is resubmitted
        while it might exist.
        """
        doubtful = [
            s
            for s in self.chain.submissions
            if s.job_id is None and s.status in (SubmissionStatus.INTENT, SubmissionStatus.UNKNOWN)
        ]
        blocked: set[int | None] = set()
        for sub in doubtful:
            indices = submission_indices(sub)
            found = self._lookup(sub, timed_out=True)
            if isinstance(found, str):
                self.log.warning(f"submission {sub.seq} was interrupted; found it as job {found}")
                self._record_submitted(sub, found)
                continue
            if found is UNKNOWN:
                blocked.update(indices)
                if sub.token is None:
                    self._fail(
                        indices,
                        "sbatch was interrupted and the job carries no token: "
                        "check squeue, then resubmit by hand",
                    )
                    self.book.record(SubFailed(seq=sub.seq, status=SubmissionStatus.REFUSED))
                continue
            self.log.warning(f"submission {sub.seq} never reached Slurm; submitting again")
            for index in indices:
                task = self.chain.task(index)
                if not task.state.is_final:
                    self.book.patch(task, {"state": TaskState.RETRY, "target_level": sub.level})
            self.book.record(
                SubFailed(
                    seq=sub.seq,
                    status=SubmissionStatus.REFUSED,
                    error="not found in Slurm after an interruption: never submitted",
                )
            )
        return blocked

    def _fail(self, indices: list[int | None], reason: str) -> None:
        for index in indices:
            task = self.chain.task(index)
            self.book.patch(
                task, {"state": TaskState.FAILED, "reason": reason, "target_level": None}
            )

    def _cpus(self, level: int) -> int:
        return cpus_at(self.ctx, level)

    def _script_for(self, plan: PlannedSubmission) -> FinalSubmission:
        """The next submission as sbatch gets it (``finalize``), its files written.

        See ``finalize``: a script copy without directives that clash with a
        level's ``--mem``, the wrapper of a mapped piece, the ``--comment`` token.
        """
        seq = len(self.chain.submissions) + 1
        directory = str(self.store.chain_dir(self.chain.chain_id))
        final = finalize(self.ctx, plan, seq, directory)
        for file in final.files:
            _write_planned(file)
            if file.kind == "unclashed":
                self.log.info(
                    f"submission {seq}: script copy without directives that clash with --mem"
                )
        return final

    def resubmit(self, retries: list[TaskStatus]) -> bool:
        """Submit the retries, level by level; returns whether that changed anything
        but a limit's wait (a refusal by a limit that lifts by itself is not a change:
        the monitor's polls go on backing off while the chain waits)."""
        changed = False
        if self.ctx.initial_job_id is None and self.chain.initial_job_id is not None:
            self.ctx = replace(self.ctx, initial_job_id=self.chain.initial_job_id)  # adopted
        triples = [(t.index, t.target_level, len(t.attempts) + 1) for t in retries]
        now = self.clock.now()
        for (level, attempt), indices in group_retries(triples).items():  # type: ignore[arg-type]
            wait = self.waiting().get(level)
            if wait is not None and wait.retry_at > now:
                continue  # a limit refused this level: not before its next try is due
            for plan in plan_group(self.ctx, level, attempt, indices):
                try:
                    self._submit(plan)
                    self._refusals.pop((level, attempt), None)
                    changed = True
                except SlurmCommandError as e:
                    self._submission_failed(plan, e)
                    if self.chain.submissions[-1].limit is not None:
                        break  # the other pieces would be refused alike: they wait too
                    changed = True
                    continue
                if wait is not None:
                    self.log.info(
                        f"resubmission at level {level} went through after "
                        f"{wait.refusals} refusal(s) by {wait.limit} "
                        f"({now - wait.since:.0f} s of waiting)"
                    )
                    wait = None
        return changed

    def waiting(self) -> dict[int, LimitWait]:
        """Levels whose resubmissions wait for a limit to lift (from the chain's record)."""
        return {w.level: w for w in limit_waits(self.chain)}

    def _submission_failed(self, plan: PlannedSubmission, e: SlurmCommandError) -> None:
        """A refused resubmission is tried again next poll, up to MAX_REFUSALS times.

        One refused by a limit that lifts by itself (``limit_refusal``) waits
        instead, as long as it takes: it is tried again with backoff
        (``limit_backoff``) and its tasks never fail for it. One whose fate is
        unknown (sbatch timed out and Slurm could not be asked) stays in doubt:
        ``reconcile`` settles it at the next poll.
        """
        sub = self.chain.submissions[-1]
        if sub.limit is not None and sub.retry_at is not None:
            n = len(plan.indices) if plan.indices is not None else 1
            self.log.warning(
                f"resubmission at level {plan.level} ({n} task(s)) refused by {sub.limit}: "
                f"waiting, next try in {sub.retry_at - self.clock.now():.0f} s "
                f"(sbatch said: {_last_line(e)})"
            )
            return
        self.log.warning(f"resubmission at level {plan.level} failed: {_last_line(e)}")
        if sub.status is SubmissionStatus.UNKNOWN:
            return
        key = (plan.level, plan.attempt)
        self._refusals[key] = self._refusals.get(key, 0) + 1
        if self._refusals[key] < MAX_REFUSALS:
            return
        reason = f"sbatch refused the resubmission {self._refusals[key]} times: {_last_line(e)}"
        self._fail(list(plan.indices) if plan.indices is not None else [None], reason)
        self.book.commit()


def _write_planned(file: PlannedFile) -> None:
    """Write one of ``finalize``'s files (its directory private), or only set its mode."""
    path = Path(file.path)
    if file.content is not None:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.write_text(file.content, encoding="utf-8")
    os.chmod(path, file.mode)


def _uncertain(e: SlurmParseError) -> SlurmCommandError:
    """sbatch printed something unexpected: it may or may not have submitted."""
    return SlurmCommandError(["sbatch"], None, str(e), timed_out=True)


def _last_line(e: SlurmCommandError) -> str:
    """sbatch's own last word (``sbatch: error: ...``) is what the user needs to see."""
    text = (e.stderr or str(e)).strip()
    return text.splitlines()[-1] if text else str(e)
