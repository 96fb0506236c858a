"""adopt: reading scontrol, recovering the command line, the diagnosis, and the
original job becoming submission 1 of a chain the monitor drives on."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from slurm_escalate.cli import main as cli
from slurm_escalate.core.chain import SubmissionStatus
from slurm_escalate.core.events import apply
from slurm_escalate.core.models import ChainState, Policy, SlurmState, TaskState
from slurm_escalate.errors import UsageError
from slurm_escalate.sbatch.plan import PlanContext
from slurm_escalate.service import adopt
from slurm_escalate.service import prepare as app
from slurm_escalate.service.env import Env
from slurm_escalate.slurm.client import SlurmCommands
from slurm_escalate.slurm.parse import group_task_records, parse_sacct
from slurm_escalate.slurm.runner import CommandResult, lines_of
from slurm_escalate.state.store import ChainStore
from slurm_escalate.testing import FakeSlurm, FastClock, Job

DATA = Path(__file__).parent / "data"

# Real `scontrol show job --oneliner 2075` on the test cluster (Slurm 22.05.8), shortened:
# sbatch --array=0-3%2 -p week --mem=100M -t 3 --job-name=probe_cap
#        --output=out/%x_%A-%a.log -e err-%j.txt ./sleep.sh a=1 b c
_COMMON = (
    "ArrayTaskThrottle=2 JobName=probe_cap UserId=root(0) JobState={state} TimeLimit=00:03:00 "
    "Partition=week NumCPUs=1 CPUs/Task=1 TRES=cpu=1,mem=100M,node=1,billing=1 "
    "MinMemoryNode=100M Features=(null) Command=./sleep.sh a=1 b c WorkDir=/tmp/adopt-probe "
    "StdErr=/tmp/adopt-probe/err-{job}.txt StdIn=/dev/null "
    "StdOut=/tmp/adopt-probe/out/probe_cap_2075-{out}.log Power= "
)
SCONTROL_JOB = "\n".join(
    f"JobId={job} ArrayJobId=2075 ArrayTaskId={task} " + _COMMON.format(state=s, job=job, out=o)
    for job, task, s, o in (
        ("2075", "2-3%2", "PENDING", "4294967294"),
        ("2077", "1", "RUNNING", "1"),
        ("2076", "0", "RUNNING", "0"),
    )
)
SUBMIT_LINE = (
    "sbatch --parsable --array=0-3%2 -p week --mem=100M -t 3 --job-name=probe_cap "
    "--output=out/%x_%A-%a.log -e err-%j.txt ./sleep.sh a=1 b c"
)
SCRIPT = "#!/bin/bash\n#SBATCH --mem=150M\nsleep 1\n"


def sacct_rows(job: str, states: Sequence[tuple[str, str]]) -> str:
    """Job rows (and batch steps) in SACCT_FIELDS order, one per (state, exit code)."""
    lines = []
    for i, (state, code) in enumerate(states):
        t = "2026-11-22T03:50:04"
        lines.append(
            f"{job}_{i}|{100 + i}|{state}|{code}||00:00:05|00:03:00|{t}|{t}|w1|week|100M|cap"
        )
        if state != "PENDING":
            lines.append(
                f"{job}_{i}.batch|{100 + i}.batch|{state}|{code}|50M|00:00:05||{t}|{t}|w1|||batch"
            )
    return "\n".join(lines) + "\n"


def records(job: str, states: Sequence[tuple[str, str]]):
    return tuple(group_task_records(parse_sacct(sacct_rows(job, states))))


# ------------------------------------------------------------------ scontrol


def test_parse_scontrol_jobs_keeps_command_arguments_out_of_the_fields():
    jobs = adopt.parse_scontrol_jobs(SCONTROL_JOB)
    assert len(jobs) == 3
    assert jobs[0].command == "./sleep.sh a=1 b c"
    assert "a" not in jobs[0].fields  # the script's "a=1" is no field
    assert jobs[0].fields["WorkDir"] == "/tmp/adopt-probe"
    assert jobs[0].fields["ArrayTaskId"] == "2-3%2"
    assert jobs[1].fields["JobId"] == "2077" and jobs[1].fields["MinMemoryNode"] == "100M"


def test_output_template_finds_the_pattern_behind_every_tasks_path():
    out = {
        0: "/w/out/cap_2075-0.log",
        1: "/w/out/cap_2075-1.log",
        4294967294: "/w/out/cap_2075-4294967294.log",
    }
    assert adopt.output_template(out, "2075", {}) == "/w/out/cap_%A-%a.log"
    err = {0: "/w/err-2076.txt", 1: "/w/err-2077.txt"}
    ids = {0: "2076", 1: "2077"}
    assert adopt.output_template(err, "2075", ids) == "/w/err-%j.txt"
    assert adopt.output_template({0: "/w/same.log", 1: "/w/same.log"}, "5", {}) == "/w/same.log"
    assert adopt.output_template({0: "/w/a.log", 1: "/w/b.log"}, "5", {}) is None
    assert adopt.output_template({}, "5", {}) is None


# ------------------------------------------------------------------ recovery


def view(**kw) -> adopt.SlurmView:
    base = {
        "job_id": "2075",
        "records": records("2075", [("COMPLETED", "0:0"), ("OUT_OF_MEMORY", "0:125")]),
        "workdir": "/tmp/adopt-probe",
    }
    return adopt.SlurmView(**{**base, **kw})


def test_recover_from_the_submit_line():
    v = view(
        submit_line=SUBMIT_LINE,
        scontrol=tuple(adopt.parse_scontrol_jobs(SCONTROL_JOB)),
        batch_script=SCRIPT,
    )
    rec = adopt.recover(v, adopt.Overrides(extra=("--qos=high",)))
    assert rec.tokens == (
        "--array=0-3%2", "-p", "week", "--mem=100M", "-t", "3", "--job-name=probe_cap",
        "--output=out/%x_%A-%a.log", "-e", "err-%j.txt", "--qos=high",
        "./sleep.sh", "a=1", "b", "c",
    )  # fmt: skip
    assert rec.workdir == "/tmp/adopt-probe"
    assert rec.script_text == SCRIPT
    assert rec.sources == (
        "options and command from sacct's SubmitLine",
        "script text from slurmctld",
    )


def test_a_submit_line_that_does_not_split_back_is_rebuilt_from_scontrol():
    # --job-name="my job" was one word; the line shows it as two.
    line = "sbatch --job-name=my job --array=0-1 ./sleep.sh a=1 b c"
    v = view(submit_line=line, scontrol=tuple(adopt.parse_scontrol_jobs(SCONTROL_JOB)))
    rec = adopt.recover(v, adopt.Overrides())
    assert rec.tokens == (
        "--job-name=probe_cap", "--partition=week", "--time=00:03:00", "--mem=100M",
        "--array=0,1%2", "--output=/tmp/adopt-probe/out/probe_cap_%A-%a.log",
        "--error=/tmp/adopt-probe/err-%j.txt", "./sleep.sh", "a=1", "b", "c",
    )  # fmt: skip
    assert rec.sources[0] == "options rebuilt from scontrol show job"
    assert rec.script_text is None  # read from ./sleep.sh


def test_without_submit_line_or_scontrol_the_script_must_be_given():
    with pytest.raises(UsageError, match="pass --script PATH"):
        adopt.recover(view(), adopt.Overrides())
    rec = adopt.recover(view(), adopt.Overrides(script="/abs/job.sh"))
    assert rec.tokens == (
        "--job-name=cap", "--partition=week", "--time=00:03:00", "--mem=100M",
        "--array=0,1", "/abs/job.sh",
    )  # fmt: skip
    assert rec.sources == ("options rebuilt from sacct's job rows", "script read from /abs/job.sh")


def test_overrides_replace_the_script_and_the_workdir():
    v = view(submit_line=SUBMIT_LINE, batch_script=SCRIPT, workdir=None)
    with pytest.raises(UsageError, match="pass --workdir DIR"):
        adopt.recover(v, adopt.Overrides())
    rec = adopt.recover(
        v, adopt.Overrides(workdir="/elsewhere", extra=("-t", "5", "other.sh", "x y"))
    )
    assert rec.tokens[-6:-2] == ("-e", "err-%j.txt", "-t", "5")
    assert rec.tokens[-2:] == ("other.sh", "x y")
    assert rec.workdir == "/elsewhere" and rec.script_text is None
    rec = adopt.recover(v, adopt.Overrides(script="/abs/new.sh", workdir="/w"))
    assert rec.tokens[-4:] == ("/abs/new.sh", "a=1", "b", "c")


def test_dropped_options_do_not_come_back():
    line = "sbatch --parsable -W --chdir=sub --array=0-1 job.sh"
    rec = adopt.recover(view(submit_line=line), adopt.Overrides())
    assert rec.tokens == ("--array=0-1", "job.sh")


def test_wrap_jobs_are_not_recovered_from_their_line():
    v = view(submit_line="sbatch --array=0-1 --wrap=sleep 10")
    with pytest.raises(UsageError, match="--script"):
        adopt.recover(v, adopt.Overrides())


def test_bad_words_after_the_double_dash():
    with pytest.raises(UsageError, match="must be sbatch options"):
        adopt.recover(view(submit_line=SUBMIT_LINE), adopt.Overrides(extra=("--nope",)))


# ----------------------------------------------------------------- diagnosis

LADDER = """\
levels:
  - {partition: week, mem: 150M, time: "00:02:00"}
  - {partition: week, mem: 700M, time: "00:02:00"}
"""


def test_diagnose_and_plan_only_the_failed_tasks(tmp_path: Path):
    from slurm_escalate.sbatch.args import make_request, requested_level
    from slurm_escalate.state.ladder_file import load_policy

    (tmp_path / "ladder.yaml").write_text(LADDER)
    policy = load_policy(tmp_path / "ladder.yaml")
    recs = records(
        "50",
        [
            ("COMPLETED", "0:0"),
            ("OUT_OF_MEMORY", "0:125"),
            ("FAILED", "3:0"),
            ("TIMEOUT", "0:0"),
            ("RUNNING", "0:0"),
        ],
    )
    verdicts = adopt.diagnose(recs, [0, 1, 2, 3, 4, 5], policy, 0)
    assert [(v.index, v.label, v.action) for v in verdicts] == [
        (0, "COMPLETED", "done"),
        (1, "OUT_OF_MEMORY", "retry at level 1"),
        (2, "FAILED exit 3", "not retried"),
        (3, "TIMEOUT", "retry at level 1"),
        (4, "RUNNING", "watched"),
        (5, "PENDING", "watched"),  # not in sacct yet
    ]
    request = make_request(["--array=0-5", "--mem=150M", "job.sh", "x"], SCRIPT)
    ctx = PlanContext(request, policy, requested_level(request), "c", 0, None, None, True, 1001)
    (plan,) = adopt.plan_retries(ctx, verdicts)
    assert plan.args == (
        "--array=1,3", "--partition=week", "--mem=700M", "--time=00:02:00",
        "--open-mode=append", "job.sh", "x",
    )  # fmt: skip
    lines = adopt.diagnosis_lines(verdicts)
    assert lines[1].split() == ["OUT_OF_MEMORY", "1", "task(s)", "1", "retry", "at", "level", "1"]
    assert lines[5].split() == ["PENDING", "1", "task(s)", "5", "watched"]


def test_learned_base_takes_what_slurm_granted_without_a_ladder():
    from slurm_escalate.core.ladder import builtin_policy
    from slurm_escalate.core.models import Level

    recs = records("50", [("OUT_OF_MEMORY", "0:125")])
    base = adopt.learned_base(Level(), recs, builtin_policy(None, None))
    assert (base.mem_mb, base.time_s) == (100, 180)
    assert adopt.learned_base(Level(mem_mb=64), recs, builtin_policy(64, None)).mem_mb == 64
    assert adopt.learned_base(Level(), recs, Policy(levels=(Level(),))) == Level()


# ----------------------------------------------- the original as submission 1


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SLURM_ESCALATE_HOME", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ladder.yaml").write_text(LADDER)
    return tmp_path


def test_the_original_job_is_submission_1_and_only_failed_tasks_go_up(home: Path):
    def outcome(index, level, attempt):
        if level == 0 and index == 1:
            return SlurmState.OUT_OF_MEMORY, "0:125"
        return SlurmState.COMPLETED, "0:0"

    slurm = FakeSlurm(outcome, run_polls=0, next_id=300)
    slurm.jobs["200"] = Job("200", [0, 1, 2], 0, 1, [], {})  # the user's plain sbatch
    v = view(
        job_id="200",
        records=records(
            "200", [("COMPLETED", "0:0"), ("OUT_OF_MEMORY", "0:125"), ("RUNNING", "0:0")]
        ),
        submit_line="sbatch --array=0-2%2 --mem=150M --job-name=cap job.sh in.txt",
        batch_script=SCRIPT,
        workdir=str(home),
        submitted_at=1_700_000_000.0,
    )
    rec = adopt.recover(v, adopt.Overrides())
    opts = app.SubmitOptions(config=str(home / "ladder.yaml"), min_poll=1)
    prepared = adopt.prepare_adopted(rec, v, opts, slurm)
    store = ChainStore()
    chain = app.create_chain(
        prepared, opts, store, rec.workdir, 1_700_000_100.0, created_at=v.submitted_at
    )
    for event in adopt.record_original(chain, v, rec.tokens, 1):
        apply(chain, event)
    store.save(chain)

    chain = store.load(chain.chain_id)  # survives the JSON round trip
    (sub,) = chain.submissions
    assert (sub.seq, sub.job_id, sub.status, sub.array, sub.indices) == (
        1, "200", SubmissionStatus.SUBMITTED, "0-2%2", "0-2",
    )  # fmt: skip
    assert chain.initial_job_id == "200" and chain.created_at == 1_700_000_000.0
    assert chain.throttle == 2
    assert [len(t.attempts) for t in chain.tasks] == [1, 1, 1]

    monitor = app.make_monitor(chain, prepared, store, slurm, {}, clock=FastClock())
    monitor.poll_once()
    new = slurm.jobs["300"]
    assert (new.indices, new.level, new.attempt) == ([1], 1, 2)
    assert new.env["SLURM_ESCALATE_INITIAL_JOB_ID"] == "200"
    assert "--array=1%2" in new.args and "--mem=700M" in new.args
    assert monitor.run(threading.Event()) is ChainState.COMPLETED
    states = [(t.index, t.state, t.level, len(t.attempts)) for t in monitor.chain.tasks]
    assert states == [
        (0, TaskState.COMPLETED, 0, 1),
        (1, TaskState.COMPLETED, 1, 2),
        (2, TaskState.COMPLETED, 0, 1),
    ]


# ---------------------------------------------------------- the command line


class AdoptRunner:
    """Answers adopt's Slurm commands for one job; old Slurm without SubmitLine if asked."""

    def run_lines(self, argv: Sequence[str], on_line, **kw) -> CommandResult:  # type: ignore[no-untyped-def]
        return lines_of(self, argv, on_line, **kw)

    def __init__(self, job: str, states, *, submit_line: bool = True, known: bool = True, uid=None):
        self.job, self.states, self.submit_line, self.known = job, states, submit_line, known
        self.uid = os.getuid() if uid is None else uid
        self.calls: list[tuple[str, ...]] = []
        self.comment: str | None = None  # a --comment on the submit line

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float = 60.0,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> CommandResult:
        self.calls.append(tuple(argv))
        a = tuple(w for w in argv if not w.startswith("--clusters="))  # checked by a test
        if a[0] == "sbatch":
            raise AssertionError("adopt --dry-run must not submit")
        if a[0] == "sacct" and "--format=JobID,UID,Submit,WorkDir,SubmitLine" in a:
            if not self.submit_line:
                return CommandResult(
                    a, 1, "", 'sacct: error: Invalid field requested: "SubmitLine"'
                )
            comment = f" --comment={self.comment}" if self.comment else ""
            line = f"sbatch --array=0-{len(self.states) - 1}{comment} --job-name=cap job.sh in.txt"
            return CommandResult(
                a, 0, f"{self.job}_0|{self.uid}|2026-11-22T03:50:04|/w|{line}\n", ""
            )
        if a[0] == "sacct" and "--format=JobID,UID,Submit,WorkDir" in a:
            return CommandResult(a, 0, f"{self.job}_0|{self.uid}|2026-11-22T03:50:04|/w\n", "")
        if a[0] == "sacct":
            return CommandResult(a, 0, sacct_rows(self.job, self.states) if self.known else "", "")
        if a[:3] == ("scontrol", "show", "job"):
            return CommandResult(a, 1, "", "slurm_load_jobs error: Invalid job id specified")
        name = {
            "partition": "scontrol_partition",
            "node": "scontrol_node",
            "config": "scontrol_config",
        }
        return CommandResult(a, 0, (DATA / f"{name[a[-1]]}.txt").read_text(), "")


def run_adopt(capsys, runner, monkeypatch, *args: str):
    env = Env(client_factory=lambda: SlurmCommands(runner))
    with pytest.raises(SystemExit) as e:
        cli._run(cli.cli, "slurm-escalate", ["adopt", *args], env)
    out, err = capsys.readouterr()
    return e.value.code, out, err


def test_adopt_dry_run_prints_the_diagnosis_and_the_sbatch_line(home, capsys, monkeypatch):
    (home / "job.sh").write_text(SCRIPT)
    runner = AdoptRunner(
        "77", [("COMPLETED", "0:0"), ("OUT_OF_MEMORY", "0:125"), ("COMPLETED", "0:0")]
    )
    code, out, err = run_adopt(
        capsys,
        runner,
        monkeypatch,
        "77",
        "--config",
        "ladder.yaml",
        "--workdir",
        str(home),
        "--dry-run",
    )
    assert (code, err) == (0, "")
    assert (
        "  recovered: options and command from sacct's SubmitLine; script read from job.sh" in out
    )
    assert "OUT_OF_MEMORY        1  task(s) 1" in out
    assert out.splitlines()[-1] == (
        "would run: sbatch --parsable --job-name=cap --array=1 --partition=week --mem=700M "
        "--time=00:02:00 --open-mode=append job.sh in.txt"
    )
    assert not (home / "state" / "chains").exists()


def test_adopt_an_unknown_job_is_one_line_exit_2(home, capsys, monkeypatch):
    code, out, err = run_adopt(capsys, AdoptRunner("78", [], known=False), monkeypatch, "78")
    assert code == 2
    assert (
        err.startswith("slurm-escalate: error: job 78 is unknown to sacct") and err.count("\n") == 1
    )


def test_adopt_on_old_slurm_needs_the_script_once_slurmctld_forgot_the_job(
    home, capsys, monkeypatch
):
    states = [("OUT_OF_MEMORY", "0:125"), ("COMPLETED", "0:0")]
    code, _, err = run_adopt(
        capsys, AdoptRunner("79", states, submit_line=False), monkeypatch, "79"
    )
    assert code == 2
    assert err == (
        "slurm-escalate: error: job 79: its script cannot be recovered (no usable SubmitLine "
        "and slurmctld no longer knows the job): pass --script PATH\n"
    )
    (home / "job.sh").write_text(SCRIPT)
    runner = AdoptRunner("79", states, submit_line=False)
    code, out, err = run_adopt(capsys, runner, monkeypatch, "79", "--script", "job.sh", "--dry-run")
    assert (code, err) == (0, "")
    assert (
        f"--array=0 --partition=week --mem=200M --time=00:06:00 --open-mode=append {home}/job.sh"
        in out
    )


def test_adopt_refuses_another_users_job(home, capsys, monkeypatch):
    runner = AdoptRunner("80", [("OUT_OF_MEMORY", "0:125")], uid=os.getuid() + 1)
    code, _, err = run_adopt(capsys, runner, monkeypatch, "80", "--dry-run")
    assert code == 2 and "only its owner can adopt it" in err


def test_adopt_with_nothing_to_escalate_starts_no_chain(home, capsys, monkeypatch):
    (home / "job.sh").write_text(SCRIPT)
    runner = AdoptRunner("81", [("COMPLETED", "0:0"), ("FAILED", "3:0")])
    code, out, _ = run_adopt(capsys, runner, monkeypatch, "81", "--workdir", str(home))
    assert code == 1
    assert out.splitlines()[-1] == "job 81: nothing to escalate"
    assert not (home / "state" / "chains").exists()


def test_a_job_that_already_belongs_to_a_chain_is_not_adopted_twice(home, capsys, monkeypatch):
    (home / "job.sh").write_text(SCRIPT)
    runner = AdoptRunner("82", [("OUT_OF_MEMORY", "0:125")])
    args = ("82", "--config", "ladder.yaml", "--workdir", str(home))
    v = adopt.SlurmView(job_id="82", records=records("82", runner.states))
    rec = adopt.recover(v, adopt.Overrides(script=str(home / "job.sh"), workdir=str(home)))
    slurm = FakeSlurm(lambda *a: (SlurmState.COMPLETED, "0:0"))
    opts = app.SubmitOptions(config=str(home / "ladder.yaml"))
    prepared = adopt.prepare_adopted(rec, v, opts, slurm)
    chain = app.create_chain(prepared, opts, ChainStore(), str(home), 1_700_000_000.0)
    for event in adopt.record_original(chain, v, rec.tokens, 1):
        apply(chain, event)
    ChainStore().save(chain)
    code, _, err = run_adopt(capsys, runner, monkeypatch, *args, "--dry-run")
    assert code == 2
    assert err == (
        f"slurm-escalate: error: job 82 already belongs to chain {chain.chain_id}: "
        f"slurm-escalate resume {chain.chain_id}\n"
    )
    assert runner.calls == []  # found out before asking Slurm anything


OLD_TOKEN = "slurm-escalate:20261101-090000-aaaa:2"


def test_a_token_of_another_chain_is_left_out_of_the_recovered_line():
    line = f"sbatch --parsable --array=0-1 --mem=150M --comment={OLD_TOKEN} job.sh in.txt"
    rec = adopt.recover(view(submit_line=line), adopt.Overrides())
    assert rec.tokens == ("--array=0-1", "--mem=150M", "job.sh", "in.txt")
    assert rec.old_token == OLD_TOKEN
    assert rec.sources[-1] == (
        f"left out --comment={OLD_TOKEN} (chain 20261101-090000-aaaa's token): "
        "resubmissions carry this chain's own"
    )
    # the user's own comment is theirs: it stays (and the chain then carries no token)
    own = "sbatch --array=0-1 --comment=mine job.sh"
    rec = adopt.recover(view(submit_line=own), adopt.Overrides())
    assert "--comment=mine" in rec.tokens and rec.old_token is None


def test_resubmissions_of_an_adopted_chains_job_carry_the_new_chains_token(home: Path):
    def outcome(index, level, attempt):
        if level == 0 and index == 1:
            return SlurmState.OUT_OF_MEMORY, "0:125"
        return SlurmState.COMPLETED, "0:0"

    slurm = FakeSlurm(outcome, run_polls=0, next_id=300)
    slurm.jobs["200"] = Job("200", [0, 1], 0, 2, [f"--comment={OLD_TOKEN}"], {})
    v = view(
        job_id="200",
        records=records("200", [("COMPLETED", "0:0"), ("OUT_OF_MEMORY", "0:125")]),
        submit_line=f"sbatch --parsable --array=0-1 --comment={OLD_TOKEN} job.sh in.txt",
        batch_script=SCRIPT,
        workdir=str(home),
        submitted_at=1_700_000_000.0,
    )
    rec = adopt.recover(v, adopt.Overrides())
    opts = app.SubmitOptions(config=str(home / "ladder.yaml"), min_poll=1)
    prepared = adopt.prepare_adopted(rec, v, opts, slurm)
    store = ChainStore()
    chain = app.create_chain(prepared, opts, store, rec.workdir, 1_700_000_100.0)
    monitor = app.make_monitor(chain, prepared, store, slurm, {}, clock=FastClock())
    monitor.book.record(*adopt.record_original(chain, v, rec.tokens, 1))
    monitor.poll_once()
    new = slurm.jobs["300"]
    assert new.indices == [1]
    mine = f"--comment=slurm-escalate:{chain.chain_id}:2"
    assert mine in new.args and not any(OLD_TOKEN in a for a in new.args)
    assert monitor.chain.submissions[1].token == f"slurm-escalate:{chain.chain_id}:2"
    # the old chain's lookups no longer find the adopted chain's jobs, and vice versa
    assert slurm.find_tokens("slurm-escalate:20261101-090000-aaaa:", 0) == {OLD_TOKEN: "200"}
    assert slurm.find_tokens(f"slurm-escalate:{chain.chain_id}:", 0) == {mine[10:]: "300"}


def test_a_job_carrying_the_token_of_a_chain_here_is_not_adopted(home, capsys, monkeypatch):
    (home / "job.sh").write_text(SCRIPT)
    slurm = FakeSlurm(lambda *a: (SlurmState.COMPLETED, "0:0"))
    v = adopt.SlurmView(job_id="83", records=records("83", [("OUT_OF_MEMORY", "0:125")]))
    opts = app.SubmitOptions(config=str(home / "ladder.yaml"))
    rec = adopt.recover(v, adopt.Overrides(script=str(home / "job.sh"), workdir=str(home)))
    chain = app.create_chain(
        adopt.prepare_adopted(rec, v, opts, slurm), opts, ChainStore(), str(home), 1.7e9
    )  # a chain whose sbatch was interrupted before it noted the job id
    runner = AdoptRunner("83", [("OUT_OF_MEMORY", "0:125")])
    runner.comment = f"slurm-escalate:{chain.chain_id}:1"
    code, _, err = run_adopt(capsys, runner, monkeypatch, "83", "--workdir", str(home))
    assert code == 2
    assert err == (
        f"slurm-escalate: error: job 83 already belongs to chain {chain.chain_id} "
        f"(it carries its token): slurm-escalate resume {chain.chain_id}\n"
    )


def test_memory_per_cpu_is_rebuilt_without_a_clashing_mem():
    job = SCONTROL_JOB.replace("MinMemoryNode=100M", "MinMemoryCPU=50M").replace(
        "CPUs/Task=1", "CPUs/Task=2"
    )
    v = view(scontrol=tuple(adopt.parse_scontrol_jobs(job)))
    tokens = adopt.recover(v, adopt.Overrides()).tokens
    assert "--mem-per-cpu=50M" in tokens and "--cpus-per-task=2" in tokens
    assert not any(t.startswith("--mem=") for t in tokens)


def test_a_token_in_scontrols_comment_is_found_when_sacct_has_no_submit_line_yet():
    """Seconds after a submission slurmdbd may not have the SubmitLine yet: the options
    are rebuilt from scontrol, whose Comment carries the chain's token all the same."""
    token = "slurm-escalate:20261203-080230-2036:1"
    job = SCONTROL_JOB.replace("Features=(null)", f"Features=(null) Comment={token}")
    v = view(scontrol=tuple(adopt.parse_scontrol_jobs(job)))
    rec = adopt.recover(v, adopt.Overrides())
    assert rec.sources[0] == "options rebuilt from scontrol show job"
    assert rec.old_token == token
    assert not any(t.startswith("--comment") for t in rec.tokens), rec.tokens


class LaggingAccounting(AdoptRunner):
    """sacct lists a just-submitted array as one plain job row; slurmctld knows the array."""

    def run(self, argv, **kw):  # type: ignore[no-untyped-def]
        if tuple(argv[:3]) == ("scontrol", "show", "job"):
            return CommandResult(tuple(argv), 0, SCONTROL_JOB.replace("2075", self.job), "")
        if tuple(argv[:3]) == ("scontrol", "write", "batch_script"):
            return CommandResult(tuple(argv), 0, SCRIPT, "")
        result = super().run(argv, **kw)
        if argv[0] == "sacct" and not any(a.startswith("--format=JobID,UID") for a in argv):
            plain = result.stdout.replace(f"{self.job}_0", self.job)
            return CommandResult(result.argv, 0, plain, "")
        return result


def test_an_array_sacct_does_not_list_yet_is_not_taken_for_a_plain_job(home, capsys, monkeypatch):
    runner = LaggingAccounting("84", [("COMPLETED", "0:0")])
    code, out, err = run_adopt(capsys, runner, monkeypatch, "84", "--dry-run")
    assert code == 2 and out == ""
    assert err == (
        "slurm-escalate: error: job 84 is an array, but sacct does not list its tasks yet: "
        "try again shortly\n"
    )


def test_adopt_with_clusters_asks_that_cluster_and_keeps_it(home, capsys):
    (home / "job.sh").write_text(SCRIPT)
    runner = AdoptRunner("85", [("COMPLETED", "0:0"), ("OUT_OF_MEMORY", "0:125")])
    argv = ["adopt", "85", "-M", "site", "--config", "ladder.yaml", "--workdir", str(home)]
    with pytest.raises(SystemExit) as e:  # the real client, built with the cluster
        cli._run(cli.cli, "slurm-escalate", [*argv, "--dry-run"], Env(runner=runner))
    code, (out, err) = e.value.code, capsys.readouterr()
    assert (code, err) == (0, "")
    slurm_calls = [c for c in runner.calls if c[0] in ("sacct", "scontrol", "squeue")]
    assert slurm_calls and all(c[1] == "--clusters=site" for c in slurm_calls), slurm_calls
    assert out.splitlines()[-1].startswith("would run: sbatch --parsable --clusters=site ")


def test_adopt_clusters_from_the_environment_and_a_list_refused(home, capsys):
    (home / "job.sh").write_text(SCRIPT)
    runner = AdoptRunner("86", [("OUT_OF_MEMORY", "0:125")])
    env = Env(runner=runner, environ={"SLURM_CLUSTERS": "a,b"})
    with pytest.raises(SystemExit) as e:
        cli._run(cli.cli, "slurm-escalate", ["adopt", "86", "--dry-run"], env)
    _, err = capsys.readouterr()
    assert e.value.code == 2
    assert err == (
        "slurm-escalate: error: SLURM_CLUSTERS 'a,b': give exactly one cluster name "
        "(a chain follows its jobs on one cluster)\n"
    )
    assert runner.calls == []
