"""Issue 12 part 4, end to end on the real local cluster: a pre-timeout checkpoint.

``examples/signal-checkpoint-job.sh`` asks for ``--signal=B:USR1@10``, traps USR1, finishes the
unit of work in flight, saves its progress keyed by ``SLURM_ESCALATE_CHAIN_ID`` and the task
index, and exits 75 ("saved, not finished"), which ``examples/ladder-signal.yaml`` maps to
``resubmit``. Each task here needs 14 units of 5 s (70 s) against a 1-minute limit, so it cannot
finish in one attempt: slurmctld sends the signal from its 30-s time-limit sweep, 10-40 s before
the limit, i.e. 20-50 s after the start, and Slurm would end the job TIMEOUT 60-89 s after it.

The test runs the example as an array in place and checks, per task:

- Slurm's facts: every attempt but the last ended FAILED with ExitCode 75:0 (the signal path,
  never TIMEOUT), the last COMPLETED, all at level 0 (partition devel, 1 minute), each attempt
  its own job;
- the job's own log (appended across attempts, one banner per attempt under that attempt's
  job id): every non-final attempt got USR1, made progress and saved it; every attempt resumed
  at exactly the unit the previous one saved; the finished units over all attempts are 1..14
  once each (no unit done twice, none lost); only the last attempt says all units are done;
- the tool's outputs: ``status --json`` shows the attempts with outcomes FAILED (exit 75,
  "resubmitting at level 0 (k/8)") then COMPLETED, and the monitor's log has one
  resubmission line per saved attempt and the completion.

Not ``disruptive``: two 1-CPU, 200M tasks in ``devel`` at a time.
"""

from __future__ import annotations

import re
import subprocess

import pytest

pytestmark = pytest.mark.e2e

SCRIPT = "signal-checkpoint-job.sh"
LADDER = "ladder-signal.yaml"
UNITS, SECONDS_PER_UNIT = 14, 5  # 70 s of work: more than a 1-minute limit holds
SAVED_NOT_FINISHED = 75
MAX_RESUBMITS = 8

BANNER = re.compile(
    r"task (\d+): === attempt (\d+) level (\S+) chain (\S+) job (\d+): "
    r"resuming at unit (\d+) of (\d+)$"
)
FINISHED = re.compile(r"task (\d+): finished unit (\d+)/(\d+)$")
USR1 = re.compile(r"task (\d+): got USR1 \(time limit near\) during unit (\d+)$")
SAVED = re.compile(
    r"task (\d+): saved checkpoint at unit (\d+) of (\d+): not finished, exiting (\d+)$"
)
ALL_DONE = re.compile(r"task (\d+): === all (\d+) units done$")


def test_signal_checkpoint_example_files(e2e):
    """The example asks for the warning signal on the batch shell, and its ladder resubmits
    exit code 75 at the same level (and still escalates 137 and OOM)."""
    from slurm_escalate.core.models import Action, FailureKind
    from slurm_escalate.state.ladder_file import load_policy

    policy = load_policy(e2e.examples / LADDER)
    assert policy.exit_codes == {SAVED_NOT_FINISHED: Action.RESUBMIT, 137: Action.ESCALATE}
    assert policy.state_handling[FailureKind.TIMEOUT] is Action.RESUBMIT
    assert policy.state_handling[FailureKind.OUT_OF_MEMORY] is Action.ESCALATE
    assert policy.state_handling[FailureKind.FAILED] is Action.NO_RETRY
    assert policy.max_resubmits == MAX_RESUBMITS
    assert [lv.time_s for lv in policy.levels] == [60, 60]

    path = e2e.examples / SCRIPT
    assert path.stat().st_mode & 0o111, f"{SCRIPT} is not executable"
    subprocess.run(["bash", "-n", str(path)], check=True)
    text = path.read_text()
    assert "#SBATCH --signal=B:USR1@10\n" in text
    assert "#SBATCH --open-mode=append\n" in text
    assert "SAVED_NOT_FINISHED=75" in text and "trap " in text and "USR1" in text


def _attempt_logs(log: str) -> list[list[str]]:
    """The job's log split into attempts: each list starts with that attempt's banner."""
    attempts: list[list[str]] = []
    for line in log.splitlines():
        if BANNER.search(line):
            attempts.append([line])
        elif attempts:
            attempts[-1].append(line)
        else:
            raise AssertionError(f"a line before the first banner: {line!r}\n{log}")
    return attempts


def _matches(pattern: re.Pattern[str], lines: list[str]) -> list[tuple[str, ...]]:
    return [m.groups() for line in lines if (m := pattern.search(line))]


@pytest.mark.timeout(900)
def test_signal_checkpoint_array_saves_resumes_and_completes(e2e):
    r = e2e.run_chain(
        e2e.examples / SCRIPT,
        str(UNITS),
        str(SECONDS_PER_UNIT),
        config=e2e.examples / LADDER,
        sbatch=["--array=0-1"],
        timeout=840,
    )

    assert r.returncode == 0, r.describe() + e2e.debug()
    chain_id = r.chain_id
    status = e2e.status(chain_id)
    assert status["state"] == "COMPLETED", status
    tasks = e2e.by_index(status)
    assert sorted(tasks) == [0, 1], status
    monitor_log = (e2e.home / "chains" / chain_id / "monitor.log").read_text()
    submitted = {s["job_id"]: s for s in status["submissions"]}

    for index, task in tasks.items():
        n = task["attempts"]
        # the tool: COMPLETED at level 0 after at least one saved, resubmitted attempt
        assert (task["state"], task["level"]) == ("COMPLETED", 0), task
        assert 2 <= n <= MAX_RESUBMITS + 1, task
        history = task["history"]
        assert [h["outcome"] for h in history] == ["FAILED"] * (n - 1) + ["COMPLETED"], history
        assert [h["exit_code"] for h in history[:-1]] == [SAVED_NOT_FINISHED] * (n - 1), history
        assert {h["level"] for h in history} == {0}, history
        for h in history[:-1]:
            assert h["reason"] == f"FAILED exit {SAVED_NOT_FINISHED}", h
            assert h["partition"] == "devel" and h["timelimit_s"] == 60, h
        assert task["job_ids"] == [h["job_id"] for h in history], task
        assert len(set(task["job_ids"])) == n, task  # each attempt its own job
        for job_id in task["job_ids"]:
            sub = submitted[e2e.job_base(job_id)]
            assert sub["level"] == 0 and index in e2e.array_indices(sub["array"]), sub

        # Slurm: FAILED 75:0 (saved, not finished) for every attempt but the last, never TIMEOUT
        rows = e2e.task_sacct(task)
        got = [(x.state, x.exit_code) for x in rows]
        want = [("FAILED", f"{SAVED_NOT_FINISHED}:0")] * (n - 1) + [("COMPLETED", "0:0")]
        assert got == want, rows
        assert {(x.partition, x.timelimit) for x in rows} == {("devel", "00:01:00")}, rows

        # the monitor's log: one resubmission per saved attempt, then the completion
        for k, job_id in enumerate(task["job_ids"][:-1], start=1):
            line = (
                f"task {job_id} FAILED exit {SAVED_NOT_FINISHED}: "
                f"resubmitting at level 0 ({k}/{MAX_RESUBMITS})"
            )
            assert monitor_log.count(line) == 1, (line, monitor_log)
        assert f"task {task['job_ids'][-1]} COMPLETED at level 0" in monitor_log, monitor_log

        # the job's own log, appended across attempts
        log = (e2e.dir / f"signal-checkpoint-{index}.out").read_text()
        assert "DUE TO TIME LIMIT" not in log, log
        attempts = _attempt_logs(log)
        assert len(attempts) == n, log
        raw_ids = [e2e.sacct_row(j, "JobIDRaw")[0] for j in task["job_ids"]]
        finished_all: list[int] = []
        resume_at = 0
        for k, lines in enumerate(attempts, start=1):
            ((i, attempt, level, chain, job, start, units),) = _matches(BANNER, lines)
            assert (int(i), int(attempt), level, chain) == (index, k, "0", chain_id), lines
            assert (job, int(units)) == (raw_ids[k - 1], UNITS), (lines, raw_ids)
            assert int(start) == resume_at, (k, lines)  # resumes where the last one saved
            finished = [int(u) for _, u, _ in _matches(FINISHED, lines)]
            assert finished == list(range(resume_at + 1, resume_at + 1 + len(finished))), lines
            finished_all += finished
            saved = _matches(SAVED, lines)
            if k < n:  # warned, finished the unit in flight, saved its progress, exit 75
                assert len(_matches(USR1, lines)) == 1, lines
                assert finished, f"attempt {k} made no progress: {lines}"
                assert saved == [(str(index), str(finished[-1]), str(UNITS), "75")], lines
                assert SAVED.search(lines[-1]), lines
                assert not _matches(ALL_DONE, lines), lines
                resume_at = finished[-1]
            else:  # done: not saved as unfinished, all units done
                assert saved == [], lines
                assert _matches(ALL_DONE, lines) == [(str(index), str(UNITS))], lines
                assert ALL_DONE.search(lines[-1]), lines
        assert finished_all == list(range(1, UNITS + 1)), log  # each unit once, none lost

        ckpt = e2e.dir / "checkpoints" / f"{chain_id}-{index}.state"
        assert ckpt.read_text().strip() == str(UNITS)
