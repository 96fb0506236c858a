"""``adopt``: take over a job array that was submitted with plain sbatch.

Where the pieces come from, best first:

* the command line: sacct's ``SubmitLine`` (Slurm 21.08+; it is argv joined
  by spaces, so it is used only when it splits back into options and a script
  that agree with ``scontrol``'s ``Command=``), else rebuilt from the fields of
  ``scontrol show job`` (while slurmctld still knows the job, ``MinJobAge``),
  else from sacct's JobName/Partition/ReqMem/Timelimit plus ``--script``;
* the script's text: ``scontrol write batch_script`` (exactly what ran), else
  the file the command line names (or ``--script``);
* the work directory: ``--workdir``, else sacct's ``WorkDir``, else scontrol's.

The original job becomes submission 1 of the chain (status SUBMITTED, its own
job id) and every task's first attempt, so the monitor classifies its tasks
like any other attempt and ``resume``/``status``/``report`` treat it as usual.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from loguru import logger

from slurm_escalate.arrays.spec import compress, format_array
from slurm_escalate.core.chain import Chain
from slurm_escalate.core.classify import classify, decide
from slurm_escalate.core.events import Event, Intent, Submitted
from slurm_escalate.core.ladder import check_against_cluster
from slurm_escalate.core.models import (
    ClusterLimits,
    FailureKind,
    Level,
    Policy,
    TaskProgress,
    TaskRecord,
    TaskState,
)
from slurm_escalate.core.units import format_time, parse_mem_mb, parse_slurm_duration
from slurm_escalate.errors import ScriptError, SlurmCommandError, StateError, UsageError
from slurm_escalate.sbatch.args import _without, array_spec, load_request, make_request
from slurm_escalate.sbatch.args import requested_level as requested
from slurm_escalate.sbatch.options import OptionSyntaxError, getopt
from slurm_escalate.sbatch.plan import (
    TOKEN_PREFIX,
    PlanContext,
    PlannedSubmission,
    cpus_at,
    group_retries,
    plan_group,
)
from slurm_escalate.service.env import Env, env_clusters, one_cluster
from slurm_escalate.service.prepare import (
    Prepared,
    SubmitOptions,
    create_chain,
    ladder_policy,
    make_monitor,
    new_chain,
    plan_context,
)
from slurm_escalate.service.run import EXIT_OK, MonitorView, add_file_sink, detached, foreground
from slurm_escalate.slurm.client import SlurmClient, query_env
from slurm_escalate.slurm.parse import parse_scontrol_oneliner
from slurm_escalate.state.store import ChainStore

#: Options of the original line that must not come back: adopt adds --parsable
#: itself, --wait would block, and --chdir is already resolved into WorkDir.
DROPPED = frozenset({"parsable", "wait", "chdir"})
EXTRA_FIELDS = ("JobID", "UID", "Submit", "WorkDir", "SubmitLine")  # SubmitLine last: free text
NO_VAL_INDEX = 4294967294
NO_VALUE = {"", "(null)", "None", "Unknown", "N/A"}


@dataclass(frozen=True)
class ScontrolJob:
    """One line of ``scontrol show job --oneliner`` (one array record)."""

    fields: dict[str, str]
    command: str | None  # Command= (script and arguments, space-joined) or None


@dataclass(frozen=True)
class SlurmView:
    """What Slurm still knows about one job (array)."""

    job_id: str
    records: tuple[TaskRecord, ...]
    uid: int | None = None
    submitted_at: float | None = None
    workdir: str | None = None
    submit_line: str | None = None
    scontrol: tuple[ScontrolJob, ...] = ()
    batch_script: str | None = None


@dataclass(frozen=True)
class Overrides:
    script: str | None = None  # --script (absolute)
    workdir: str | None = None  # --workdir (absolute)
    extra: tuple[str, ...] = ()  # after --: [SBATCH OPTIONS...] [SCRIPT [ARGS...]]


@dataclass(frozen=True)
class Recovered:
    tokens: tuple[str, ...]  # [sbatch options...] script [args...]
    workdir: str
    script_text: str | None  # None: read the script the tokens name
    sources: tuple[str, ...] = field(default=())
    # The job was submitted by a chain: its --comment token, dropped from ``tokens`` so
    # that the adopting chain's resubmissions carry a token of their own.
    old_token: str | None = None


# ------------------------------------------------------------------ parsing


def parse_scontrol_jobs(text: str) -> list[ScontrolJob]:
    """``scontrol show job --oneliner`` lines. ``Command=`` is free text (it may hold
    ``x=y`` arguments), so it is cut out before the rest is read as key=value."""
    jobs = []
    for line in text.splitlines():
        if not line.strip():
            continue
        head, sep, tail = line.partition(" Command=")
        command = None
        if sep:
            command, sep2, rest = tail.partition(" WorkDir=")
            line = head + (f" WorkDir={rest}" if sep2 else "")
            command = None if command.strip() in NO_VALUE else command.strip()
        jobs.append(ScontrolJob(parse_scontrol_oneliner(line)[0], command))
    return jobs


def _epoch(text: str | None) -> float | None:
    try:
        return datetime.fromisoformat(text).timestamp() if text else None
    except ValueError:
        return None


def _value(text: str | None) -> str | None:
    return None if text is None or text.strip() in NO_VALUE else text.strip()


# ---------------------------------------------------------------- fetching


def fetch(client: SlurmClient, job_id: str) -> SlurmView:
    """Ask sacct (twice) and, while it knows the job, slurmctld (twice)."""
    if not job_id.isdigit():
        raise UsageError(f"not a job id: {job_id!r} (give the array's job id, e.g. 1234)")
    records = tuple(client.query([job_id]))
    others = sorted({r.array_job_id for r in records} - {job_id})
    if others:
        raise UsageError(f"job {job_id} is a task of array {others[0]}: adopt {others[0]}")
    if not records:
        raise UsageError(
            f"job {job_id} is unknown to sacct (wrong id, another cluster, or submitted "
            "seconds ago: try again shortly)"
        )
    extras = _sacct_extras(client, job_id)
    run, timeout = client.runner.run, client.control_timeout
    scontrol = client.command("scontrol")
    show = run([*scontrol, "show", "job", "--oneliner", job_id], timeout=timeout)
    jobs = tuple(parse_scontrol_jobs(show.stdout)) if show.returncode == 0 else ()
    script = None
    if jobs:
        written = run([*scontrol, "write", "batch_script", job_id, "-"], timeout=timeout)
        script = written.stdout if written.returncode == 0 and written.stdout.strip() else None
    uid = extras.get("UID", "")
    if uid.isdigit() and int(uid) != os.getuid():
        raise UsageError(f"job {job_id} belongs to uid {uid}: only its owner can adopt it")
    return SlurmView(
        job_id=job_id,
        records=records,
        uid=int(uid) if uid.isdigit() else None,
        submitted_at=_epoch(_value(extras.get("Submit"))),
        workdir=_value(extras.get("WorkDir")),
        submit_line=_value(extras.get("SubmitLine")),
        scontrol=jobs,
        batch_script=script,
    )


def _sacct_extras(client: SlurmClient, job_id: str) -> dict[str, str]:
    env = query_env()
    for fields in (EXTRA_FIELDS, EXTRA_FIELDS[:-1]):  # SubmitLine is new in Slurm 21.08
        argv = [*client.command("sacct"), "--noheader", "--parsable2", "--allocations"]
        argv += [f"--format={','.join(fields)}", f"--jobs={job_id}"]
        result = client.runner.run(argv, timeout=client.query_timeout, env=env)
        if result.returncode != 0 and "SubmitLine" in fields and "field" in result.stderr:
            continue
        if result.returncode != 0:
            raise SlurmCommandError(result.argv, result.returncode, result.stderr)
        for line in result.stdout.splitlines():
            if line.strip():
                return dict(zip(fields, line.split("|", len(fields) - 1), strict=False))
    return {}


# --------------------------------------------------------------- recovering


def _options_and_command(words: Sequence[str]) -> tuple[list[str], list[str]] | None:
    """Split ``[OPTIONS] SCRIPT [ARGS]``; None when the words are not that."""
    try:
        items, opt_end, rest = getopt(words)
    except OptionSyntaxError:
        return None
    if any(item.option.name == "wrap" for item in items):
        return None
    return list(words[:opt_end]), list(words[rest:])


def _from_submit_line(view: SlurmView) -> tuple[list[str], list[str]] | None:
    words = (view.submit_line or "").split()
    if not words or os.path.basename(words[0]) != "sbatch":
        return None
    split = _options_and_command(words[1:])
    if split is None or not split[1]:
        return None
    command = next((j.command for j in view.scontrol if j.command), None)
    if command is not None and command.split() != split[1]:
        return None  # an option's value held a space: the words do not split back
    return split


def output_template(paths: dict[int, str], array_id: str, job_ids: dict[int, str]) -> str | None:
    """A ``--output`` pattern (``%A``, ``%a``, ``%j``) that gives every task's
    path, or None. ``paths`` and ``job_ids`` are keyed by array index."""
    if not paths:
        return None
    index, path = min(paths.items())
    folder, base = os.path.split(path)

    def expand(template: str, i: int) -> str:
        return (
            template.replace("%A", array_id).replace("%a", str(i)).replace("%j", job_ids.get(i, ""))
        )

    def whole(number: str) -> str:
        return rf"(?<!\d){re.escape(number)}(?!\d)"

    t = re.sub(whole(array_id), "%A", base)
    if job_ids.get(index) and job_ids[index] != array_id:
        t = re.sub(whole(job_ids[index]), "%j", t)
    spots = list(re.finditer(whole(str(index)), t))
    if spots:
        t = t[: spots[-1].start()] + "%a" + t[spots[-1].end() :]
    template = os.path.join(folder, t)
    if all(expand(template, i) == p for i, p in paths.items()):
        return template
    return path if len(set(paths.values())) == 1 else None


def _from_fields(view: SlurmView, indices: list[int]) -> list[str]:
    """sbatch options rebuilt from scontrol's fields, else from sacct's job rows."""
    opts: list[str] = []
    job = view.scontrol[0].fields if view.scontrol else {}
    first = view.records[0].job
    name = _value(job.get("JobName")) or first.name
    limit = _value(job.get("TimeLimit"))
    time_s = parse_slurm_duration(limit) if limit else first.timelimit_s
    per_cpu = _value(job.get("MinMemoryCPU"))
    mem = _value(job.get("MinMemoryNode")) or (first.req_mem or "").rstrip("nc") or None
    for option, value in (
        ("job-name", name),
        ("partition", _value(job.get("Partition")) or first.partition),
        ("time", format_time(time_s) if time_s else None),
        ("mem", mem if mem and _is_mem(mem) and not per_cpu else None),
        ("mem-per-cpu", per_cpu),
        ("constraint", _value(job.get("Features"))),
        ("comment", _value(job.get("Comment"))),  # a chain's token: recover() takes it out
    ):
        if value is not None:
            opts.append(f"--{option}={value}")
    cpus = job.get("CPUs/Task", "1")
    if cpus.isdigit() and int(cpus) > 1:
        opts.append(f"--cpus-per-task={cpus}")
    if indices:
        throttle = job.get("ArrayTaskThrottle", "0")
        cap = int(throttle) if throttle.isdigit() and int(throttle) > 0 else None
        opts.append(f"--array={format_array(compress(indices), cap)}")
    opts += _output_options(view)
    return opts


def _is_mem(text: str) -> bool:
    try:
        return parse_mem_mb(text) > 0
    except ValueError:
        return False


def _output_options(view: SlurmView) -> list[str]:
    out: list[str] = []
    tasks = {_task_id(j.fields): j.fields for j in view.scontrol}
    tasks.pop(None, None)
    for option, key in (("output", "StdOut"), ("error", "StdErr")):
        paths = {i: t[key] for i, t in tasks.items() if i is not None and _value(t.get(key))}
        ids = {i: t.get("JobId", "") for i, t in tasks.items() if i is not None}
        template = output_template(paths, view.job_id, ids)
        if template is None or template.endswith("slurm-%A_%a.out"):
            continue
        if option == "error" and out and out[0] == f"--output={template}":
            continue
        out.append(f"--{option}={template}")
    return out


def _task_id(fields: dict[str, str]) -> int | None:
    """The record's array index; a record of still-pending tasks names its files
    with NO_VAL (4294967294) in place of ``%a``."""
    task = fields.get("ArrayTaskId", "")
    if task.isdigit():
        return int(task)
    return NO_VAL_INDEX if str(NO_VAL_INDEX) in fields.get("StdOut", "") else None


def recover(view: SlurmView, over: Overrides) -> Recovered:
    """The command line, work directory and script text of the original job."""
    extra = _options_and_command(over.extra)
    if extra is None:
        raise UsageError("the words after -- must be sbatch options, then optionally SCRIPT ARGS")
    extra_opts, extra_command = extra
    sources = []
    indices = sorted(r.index for r in view.records if r.index is not None)
    split = _from_submit_line(view)
    if split is not None:
        opts, command = split
        sources.append("options and command from sacct's SubmitLine")
    else:
        opts = _from_fields(view, indices)
        scontrol_command = next((j.command for j in view.scontrol if j.command), None)
        command = scontrol_command.split() if scontrol_command else []
        where = "scontrol show job" if view.scontrol else "sacct's job rows"
        sources.append(f"options rebuilt from {where}")
    if extra_command:
        command = extra_command
    if over.script:
        command = [over.script, *command[1:]]
    if not command:
        raise UsageError(
            f"job {view.job_id}: its script cannot be recovered (no usable SubmitLine and "
            "slurmctld no longer knows the job): pass --script PATH"
        )
    workdir = (
        over.workdir
        or view.workdir
        or next((w for j in view.scontrol if (w := _value(j.fields.get("WorkDir")))), None)
    )
    if workdir is None:
        raise UsageError(f"job {view.job_id}: its work directory is unknown: pass --workdir DIR")
    text = None if over.script or extra_command else view.batch_script
    sources.append("script text from slurmctld" if text else f"script read from {command[0]}")
    opts = _without(opts, DROPPED) if opts else []
    old = chain_token(opts)
    if old is not None:
        opts = _without(opts, {"comment"})
        sources.append(
            f"left out --comment={old} (chain {token_chain(old)}'s token): "
            "resubmissions carry this chain's own"
        )
    return Recovered(tuple(opts + extra_opts + command), workdir, text, tuple(sources), old)


def chain_token(opts: Sequence[str]) -> str | None:
    """The ``--comment`` token a chain put on the job (``slurm-escalate:<chain>:<seq>``)."""
    last = _last_option(opts, "comment") or ""
    return last if last.startswith(TOKEN_PREFIX) and token_chain(last) else None


def _last_option(tokens: Sequence[str], name: str) -> str | None:
    """The value of sbatch option ``name`` (the last one given) before the script."""
    try:
        items, _, _ = getopt(tokens)
    except OptionSyntaxError:
        return None
    values = [i.option.value or "" for i in items if i.option.name == name]
    return values[-1] if values else None


def with_cluster(rec: Recovered, clusters: str | None) -> Recovered:
    """The job's cluster (adopt -M, or the environment's) kept in the chain's options, so
    its resubmissions go there and a resume asks there (``chain_clusters``)."""
    if clusters is None:
        return rec
    recorded = _last_option(rec.tokens, "clusters")
    if recorded is None:
        return replace(rec, tokens=(f"--clusters={clusters}", *rec.tokens))
    if recorded != clusters:
        raise UsageError(f"job was submitted with -M {recorded}, not {clusters}")
    return rec


def token_chain(token: str) -> str:
    """The chain id in a token ``slurm-escalate:<chain>:<seq>``."""
    return token[len(TOKEN_PREFIX) :].rpartition(":")[0]


# --------------------------------------------------------------- diagnosing


@dataclass(frozen=True)
class Verdict:
    index: int | None
    label: str  # COMPLETED, OUT_OF_MEMORY, FAILED exit 3, RUNNING, PENDING ...
    action: str  # done, retry at level N, not retried, watched ...
    retry_level: int | None = None


def diagnose(
    records: Sequence[TaskRecord], indices: Sequence[int | None], policy: Policy, level: int
) -> list[Verdict]:
    """What the monitor will do with each task of the original job (its first attempt)."""
    by_index = {r.index: r for r in records}
    out = []
    for index in indices:
        record = by_index.get(index)
        if record is None:
            out.append(Verdict(index, "PENDING", "watched"))
            continue
        c = classify(record, policy)
        if c.kind is FailureKind.ACTIVE:
            out.append(Verdict(index, record.job.state.value, "watched"))
            continue
        label = f"FAILED exit {c.exit_code}" if c.kind is FailureKind.FAILED else c.kind.value
        decision = decide(c, TaskProgress(level, 1, 0), policy)
        assert decision is not None
        if decision.task_state is TaskState.RETRY:
            retry = decision.target_level
            out.append(Verdict(index, label, f"retry at level {retry}", retry))
        elif decision.task_state is TaskState.COMPLETED:
            out.append(Verdict(index, label, "done"))
        elif decision.task_state is TaskState.EXHAUSTED:
            out.append(Verdict(index, label, f"not retried: {decision.reason}"))
        else:
            out.append(Verdict(index, label, "not retried"))
    return out


def learned_base(base: Level, records: Sequence[TaskRecord], policy: Policy) -> Level:
    """Without a ladder, escalation grows from what Slurm granted (as the monitor does)."""
    if policy.levels:
        return base
    done = next((r.job for r in records if r.job.state.is_final), None)
    if done is None:
        return base
    mem = base.mem_mb
    if mem is None and done.req_mem and _is_mem(done.req_mem.rstrip("nc")):
        mem = parse_mem_mb(done.req_mem.rstrip("nc"))
    return replace(base, mem_mb=mem, time_s=base.time_s or done.timelimit_s)


def plan_retries(ctx: PlanContext, verdicts: Sequence[Verdict]) -> list[PlannedSubmission]:
    triples = [(v.index, v.retry_level, 2) for v in verdicts if v.retry_level is not None]
    plans: list[PlannedSubmission] = []
    for (level, attempt), indices in group_retries(triples).items():  # type: ignore[arg-type]
        plans.extend(plan_group(ctx, level, attempt, indices))
    return plans


def diagnosis_lines(verdicts: Sequence[Verdict]) -> list[str]:
    groups: dict[tuple[str, str], list[int | None]] = {}
    for v in verdicts:
        groups.setdefault((v.label, v.action), []).append(v.index)
    lines = []
    for (label, action), indices in groups.items():
        real = [i for i in indices if i is not None]
        which = f"task(s) {compress(real)}" if real else "the job"
        lines.append(f"  {label:<16} {len(indices):>5}  {which:<24} {action}")
    return lines


# ----------------------------------------------------------------- recording


def record_original(chain: Chain, view: SlurmView, args: Sequence[str], cpus: int) -> list[Event]:
    """The events that make the original job submission 1 and every task's first attempt."""
    at = view.submitted_at or chain.created_at
    indices = [t.index for t in chain.tasks if t.index is not None]
    array = effective_array(args) if chain.is_array else None
    spec = compress(indices) if chain.is_array else None
    return [
        Intent(
            seq=1,
            level=chain.start_level,
            attempt=1,
            indices=spec,
            array=array or spec,
            args=list(args),
            intent_at=at,
            cpus=cpus,
        ),
        Submitted(seq=1, job_id=view.job_id, at=at),
    ]


def effective_array(args: Sequence[str]) -> str | None:
    try:
        items, _, _ = getopt(args)
    except OptionSyntaxError:
        return None
    values = [i.option.value for i in items if i.option.name == "array"]
    return values[-1] if values else None


# ------------------------------------------------------------------ the command


def prepare_adopted(
    rec: Recovered, view: SlurmView, opts: SubmitOptions, client: SlurmClient
) -> Prepared:
    """``prepare`` for a job that already ran: its request, the policy, its tasks.

    ``opts.config`` is absolute here (``adopt`` resolves it against the caller's cwd).
    """
    if rec.script_text is not None:
        request = make_request(rec.tokens, rec.script_text)
    else:
        try:
            request = load_request(rec.tokens, rec.workdir, path_env=os.environ.get("PATH"))
        except ScriptError as e:
            raise ScriptError(f"{e} (looked in {rec.workdir}): pass --script PATH") from None
    base = requested(request)
    policy, config_path = ladder_policy(opts, base, rec.workdir)
    if policy.levels:
        check_against_cluster(policy, client.partitions())
    spec = array_spec(request)
    seen = {r.index for r in view.records if r.index is not None}
    indices = tuple(sorted(seen | set(spec.indices if spec else ())))
    return Prepared(
        request=request,
        policy=policy,
        base=base,
        indices=indices if spec or seen else None,
        throttle=spec.throttle if spec else None,
        limits=client.limits() if spec or seen else ClusterLimits(),
        config_path=config_path,
    )


def chain_of(store: ChainStore, job_id: str) -> str | None:
    """The chain that already submitted or adopted ``job_id``, if any."""
    for chain_id in store.chain_ids():
        try:
            chain = store.load(chain_id)
        except StateError:
            continue
        if any(s.job_id == job_id for s in chain.submissions):
            return chain_id
    return None


def _belongs(job_id: str, chain_id: str, how: str = "") -> UsageError:
    """One line: whose the job is, and the command that takes that chain over again."""
    return UsageError(
        f"job {job_id} already belongs to chain {chain_id}{how}: slurm-escalate resume {chain_id}"
    )


@dataclass(frozen=True)
class AdoptInput:
    job_id: str
    extra: tuple[str, ...] = ()  # after --: [SBATCH OPTIONS...] [SCRIPT [ARGS...]]
    options: SubmitOptions = field(default_factory=SubmitOptions)
    script: str | None = None  # --script, as typed
    workdir: str | None = None  # --workdir, as typed
    detached: bool = False
    dry_run: bool = False
    clusters: str | None = None  # -M: the cluster the job ran on


@dataclass(frozen=True)
class Diagnosis:
    """What was recovered of the job, what became of each task, and what will run."""

    job_id: str
    what: str  # "array of N task(s)" or "job"
    recovered: Recovered
    policy: str | None  # the ladder file, or the built-in policy's name
    level: int  # the level the job ran at
    verdicts: tuple[Verdict, ...]
    plans: tuple[PlannedSubmission, ...]  # the resubmissions of the first poll


@dataclass(frozen=True)
class Adopted:
    diagnosis: Diagnosis
    exit_code: int
    nothing: bool = False  # nothing to escalate: no chain was started
    chain_id: str | None = None
    log_path: str | None = None
    pid: int | None = None  # the daemon's, when detached


def _absolute(cwd: str, path: str) -> str:
    return os.path.abspath(os.path.join(cwd, path))


def _no_diagnosis(diagnosis: Diagnosis) -> None:
    return None


def _no_start(chain_id: str, log_path: str) -> None:
    return None


def adopt(
    env: Env,
    inp: AdoptInput,
    view: MonitorView,
    on_diagnosis: Callable[[Diagnosis], None] = _no_diagnosis,
    on_started: Callable[[str, str], None] = _no_start,
) -> Adopted:
    """Diagnose a plain sbatch array and start a chain that escalates its failed tasks."""
    cwd = env.cwd()
    opts = inp.options
    if opts.config is not None:
        opts = replace(opts, config=_absolute(cwd, opts.config))
    store = env.store
    owner = chain_of(store, inp.job_id)
    if owner is not None:
        raise _belongs(inp.job_id, owner)
    clusters = (
        one_cluster(inp.clusters, "--clusters/-M") if inp.clusters else env_clusters(env.environ)
    )
    client = env.client(clusters)
    view_ = fetch(client, inp.job_id)
    over = Overrides(
        _absolute(cwd, inp.script) if inp.script else None,
        _absolute(cwd, inp.workdir) if inp.workdir else None,
        inp.extra,
    )
    rec = with_cluster(recover(view_, over), clusters)
    if rec.old_token is not None and token_chain(rec.old_token) in store.chain_ids():
        # its sbatch was interrupted before the chain noted the job id: resume finds it
        raise _belongs(inp.job_id, token_chain(rec.old_token), " (it carries its token)")
    if any(_value(j.fields.get("ArrayJobId")) for j in view_.scontrol) and all(
        r.index is None for r in view_.records
    ):  # accounting lags slurmctld by a moment after the submission
        raise UsageError(
            f"job {inp.job_id} is an array, but sacct does not list its tasks yet: "
            "try again shortly"
        )
    prepared = prepare_adopted(rec, view_, opts, client)
    level = prepared.policy.start_level
    indices = prepared.indices if prepared.indices is not None else (None,)
    verdicts = diagnose(view_.records, indices, prepared.policy, level)
    now = env.clock.now()
    chain_id = env.new_chain_id(now)
    chain = new_chain(prepared, opts, rec.workdir, chain_id, store.chain_dir(chain_id), now)
    ctx = replace(
        plan_context(chain, prepared),
        base=learned_base(prepared.base, view_.records, prepared.policy),
        script_path=None,  # shown as the user knows it; the chain runs its copy
        initial_job_id=inp.job_id,
    )
    what = f"array of {len(indices)} task(s)" if prepared.indices is not None else "job"
    policy = opts.config or prepared.policy.source
    diagnosis = Diagnosis(
        inp.job_id, what, rec, policy, level, tuple(verdicts), tuple(plan_retries(ctx, verdicts))
    )
    on_diagnosis(diagnosis)
    if inp.dry_run:
        return Adopted(diagnosis, EXIT_OK)
    active = any(v.action == "watched" for v in verdicts)
    if not diagnosis.plans and not active:
        code = EXIT_OK if all(v.action == "done" for v in verdicts) else 1
        return Adopted(diagnosis, code, nothing=True)
    chain = create_chain(
        prepared,
        opts,
        store,
        rec.workdir,
        now,
        created_at=view_.submitted_at or now,
        chain_id=chain_id,
    )
    monitor = make_monitor(chain, prepared, store, client, env.environ, clock=env.clock)
    events = record_original(chain, view_, rec.tokens, cpus_at(monitor.ctx, chain.start_level))
    monitor.book.record(*events)
    log_path = str(store.log_path(chain.chain_id))
    file_sink = add_file_sink(log_path)
    view.attach()
    logger.info(f"chain {chain.chain_id}: adopted job {view_.job_id} (in {rec.workdir})")
    if inp.detached:
        view.detach()
        logger.remove(file_sink)
        pid = detached(monitor, store, log_path, chain.cwd)
        return Adopted(diagnosis, EXIT_OK, chain_id=chain.chain_id, log_path=log_path, pid=pid)
    on_started(chain.chain_id, log_path)
    code = foreground(monitor, store, view, log_path)
    return Adopted(diagnosis, code, chain_id=chain.chain_id, log_path=log_path)
