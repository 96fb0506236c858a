"""Pure planning of submissions: which sbatch calls to make for which tasks.

Given the tasks that must run again and at which level, produce the sbatch
argument lists. No Slurm, no disk: the monitor records each plan as an intent,
then hands it to the client.

Grouping: tasks that need the same level *and* are on the same attempt number
share one ``sbatch --array``. The attempt number is part of the key because
``SLURM_ESCALATE_ATTEMPT`` is one value per submission; in practice tasks
that fail together are on the same attempt, so this is one sbatch per level.

``plan_first`` is the one plan of a chain's first submission (submit, its
``--dry-run`` and adopt use it), and ``finalize`` turns any planned submission
into the exact argv sbatch gets (the ``--comment`` token, the per-submission
script copy or wrapper) plus the files to write first: the submitter writes
them and runs sbatch; a dry run prints them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from slurm_escalate.arrays.pieces import (
    PATTERN_OPTIONS,
    Piece,
    map_pattern,
    plan_pieces,
    wrapper_script,
)
from slurm_escalate.arrays.spec import compress, format_array
from slurm_escalate.core.ladder import resources_for
from slurm_escalate.core.models import Level, Policy
from slurm_escalate.sbatch.args import (
    JobRequest,
    build_sbatch_args,
    effective,
    resolve_directive_conflicts,
)

ENV_CHAIN_ID = "SLURM_ESCALATE_CHAIN_ID"
ENV_LEVEL = "SLURM_ESCALATE_LEVEL"
ENV_ATTEMPT = "SLURM_ESCALATE_ATTEMPT"
ENV_INITIAL_JOB_ID = "SLURM_ESCALATE_INITIAL_JOB_ID"
ENV_LONGRUN_INITIAL_JOB_ID = "SLURM_LONGRUN_INITIAL_JOB_ID"
MAX_SPEC_CHARS = 10_000  # a safe --array length: submit lines stay far below Slurm's limits
DEFAULT_ARRAY_OUTPUT = "slurm-%A_%a.out"
TOKEN_PREFIX = "slurm-escalate:"  # --comment=slurm-escalate:<chain>:<submission>
WRAPPER_NAME = "array-wrapper.sh"
SCRIPT_DIR = "script"  # under the chain directory: the script copy, per-submission files


@dataclass(frozen=True)
class PlannedSubmission:
    level: int
    attempt: int
    indices: tuple[int, ...] | None  # None: a non-array job
    array: str | None  # the --array value, throttle included
    args: tuple[str, ...]  # argv after "sbatch --parsable"
    env: tuple[tuple[str, str], ...]  # the chain's variables for this submission
    offset: int = 0  # >0: tasks run as array index ``index - offset`` under a wrapper


def chain_env(
    chain_id: str, level: int, attempt: int, initial_job_id: str | None
) -> dict[str, str]:
    """The variables every attempt sees.

    They travel in sbatch's own environment, not in ``--export``: sbatch always
    hands ``SLURM_*`` variables of its environment to the job, even under
    ``--export=NONE`` or a named list, so the user's ``--export`` stays untouched.
    """
    env = {ENV_CHAIN_ID: chain_id, ENV_LEVEL: str(level), ENV_ATTEMPT: str(attempt)}
    if attempt > 1 and initial_job_id:
        env[ENV_INITIAL_JOB_ID] = initial_job_id
        env[ENV_LONGRUN_INITIAL_JOB_ID] = initial_job_id
    return env


def submission_env(
    base: Mapping[str, str], chain_vars: Iterable[tuple[str, str]]
) -> dict[str, str]:
    """``base`` without variables of any enclosing chain, plus this chain's."""
    # SBATCH_WAIT would make sbatch block until the job ends, like the refused --wait.
    ours = (ENV_INITIAL_JOB_ID, ENV_LONGRUN_INITIAL_JOB_ID, "SBATCH_WAIT")
    env = {k: v for k, v in base.items() if not k.startswith("SLURM_ESCALATE_") and k not in ours}
    env.update(chain_vars)
    return env


@dataclass(frozen=True)
class PlanContext:
    """Everything about the chain that shapes its sbatch calls."""

    request: JobRequest
    policy: Policy
    base: Level
    chain_id: str
    start_level: int
    script_path: str | None
    throttle: int | None
    is_array: bool
    max_array_size: int
    initial_job_id: str | None = None
    max_array_tasks: int | None = None

    def pieces(self, indices: list[int]) -> list[Piece]:
        return plan_pieces(indices, self.max_array_size, self.max_array_tasks, MAX_SPEC_CHARS)


def pattern_overrides(
    request: JobRequest, offset: int, max_array_size: int
) -> list[tuple[str, str]]:
    """``--output``/``--error``/``--input`` for a mapped piece, so ``%a`` names the real index."""
    if offset == 0:
        return []
    out = []
    for name in PATTERN_OPTIONS:
        pattern = effective(request, name)
        if pattern is None and name == "output":
            pattern = DEFAULT_ARRAY_OUTPUT
        if pattern is not None and map_pattern(pattern, offset, max_array_size) != pattern:
            out.append((name, map_pattern(pattern, offset, max_array_size)))
    return out


def plan_group(
    ctx: PlanContext, level: int, attempt: int, indices: Iterable[int | None]
) -> list[PlannedSubmission]:
    """The sbatch calls for tasks that run next at ``level`` as attempt ``attempt``."""
    resources = resources_for(ctx.policy, level, ctx.base)
    env = tuple(sorted(chain_env(ctx.chain_id, level, attempt, ctx.initial_job_id).items()))

    def one(array: str | None, piece: Piece | None) -> PlannedSubmission:
        offset = piece.offset if piece else 0
        args = build_sbatch_args(
            ctx.request,
            resources,
            array=array,
            keep_user_resources=level == ctx.start_level,
            open_mode_append=attempt > 1,
            script_path=ctx.script_path,
            overrides=pattern_overrides(ctx.request, offset, ctx.max_array_size),
        )
        chunk = piece.indices if piece else None
        return PlannedSubmission(level, attempt, chunk, array, tuple(args), env, offset)

    if not ctx.is_array:
        return [one(None, None)]
    wanted = sorted(i for i in indices if i is not None)
    if not wanted:
        return []
    return [
        one(format_array(compress(piece.slots), ctx.throttle), piece)
        for piece in ctx.pieces(wanted)
    ]


def group_retries(
    retries: Iterable[tuple[int | None, int, int]],
) -> dict[tuple[int, int], list[int | None]]:
    """(index, level, attempt) triples grouped by (level, attempt), in a stable order."""
    groups: dict[tuple[int, int], list[int | None]] = {}
    for index, level, attempt in retries:
        groups.setdefault((level, attempt), []).append(index)
    return dict(sorted(groups.items()))


def plan_first(ctx: PlanContext, indices: Sequence[int]) -> list[PlannedSubmission]:
    """The first attempt of every task, at ``ctx.start_level``.

    It keeps the user's own ``--array`` (throttle included) verbatim; only an
    array that does not fit one submission is split, like a resubmission.
    """
    level = ctx.start_level
    wanted = list(indices)
    pieces = ctx.pieces(wanted) if ctx.is_array else []
    if len(pieces) > 1 or (pieces and pieces[0].offset):
        return plan_group(ctx, level, 1, wanted)
    args = build_sbatch_args(
        ctx.request,
        resources_for(ctx.policy, level, ctx.base),
        array=None,
        keep_user_resources=True,
        open_mode_append=False,
        script_path=ctx.script_path,
    )
    env = tuple(sorted(chain_env(ctx.chain_id, level, 1, None).items()))
    array = effective(ctx.request, "array") if ctx.is_array else None
    chunk = tuple(wanted) if ctx.is_array else None
    return [PlannedSubmission(level, 1, chunk, array, tuple(args), env)]


def cpus_at(ctx: PlanContext, level: int) -> int:
    """CPUs per task of an attempt at ``level`` (for core-hour accounting)."""
    resources = resources_for(ctx.policy, level, ctx.base)
    if resources is not None and resources.cpus_per_task:
        return resources.cpus_per_task
    text = effective(ctx.request, "cpus-per-task")
    return int(text) if text and text.isdigit() and int(text) > 0 else 1


def token_for(chain_id: str, seq: int) -> str:
    return f"{TOKEN_PREFIX}{chain_id}:{seq}"


def script_copy_path(chain_dir: str, script: str) -> str:
    """Where a chain keeps the copy of its job script that every attempt runs."""
    return os.path.join(chain_dir, SCRIPT_DIR, os.path.basename(script))


@dataclass(frozen=True)
class PlannedFile:
    """A file to write before sbatch runs (``content`` None: it exists; only set ``mode``)."""

    path: str
    content: str | None
    mode: int
    kind: str  # "unclashed" (script copy without clashing directives), "wrapper", "executable"


@dataclass(frozen=True)
class FinalSubmission:
    """One submission exactly as it runs: ``plan.args`` is the argv after ``sbatch --parsable``."""

    plan: PlannedSubmission
    seq: int
    token: str | None  # None: the user gave their own --comment
    files: tuple[PlannedFile, ...] = ()

    @property
    def args(self) -> tuple[str, ...]:
        return self.plan.args


def script_position(request: JobRequest, args: Sequence[str]) -> int:
    """Where options end in ``args``: before the script and its arguments (the end with --wrap)."""
    if request.script is None:
        return len(args)
    return len(args) - len(request.script_args) - 1


def finalize(
    ctx: PlanContext, plan: PlannedSubmission, seq: int, chain_dir: str
) -> FinalSubmission:
    """Submission ``seq`` of the chain as sbatch gets it, and the files to write first.

    A level's ``--mem`` on the command line cannot coexist with the script's
    ``#SBATCH --mem-per-cpu`` (sbatch refuses both), and nothing on a command
    line cancels a directive. So when they clash, this attempt runs a copy of
    the script (``script/<seq>/``) with only the clashing words removed. A
    mapped piece (indices above MaxArraySize) runs a generated wrapper that
    execs that script. Unless the user gave a ``--comment``, the job carries the
    token by which an interrupted sbatch is found again.
    """
    args = list(plan.args)
    files: list[PlannedFile] = []
    text = ctx.request.script_text
    if text is not None and ctx.script_path is not None:
        fixed = resolve_directive_conflicts(text, plan.args)
        if fixed != text or plan.offset:
            directory = os.path.join(chain_dir, SCRIPT_DIR, str(seq))
            target = script = ctx.script_path
            if fixed != text:
                target = script = os.path.join(directory, os.path.basename(target))
                mode = 0o700 if plan.offset else 0o600  # the wrapper execs it
                files.append(PlannedFile(target, fixed, mode, "unclashed"))
            elif plan.offset:
                files.append(PlannedFile(target, None, 0o700, "executable"))
            if plan.offset:
                script = os.path.join(directory, WRAPPER_NAME)
                wrapper = wrapper_script(fixed, target, plan.offset)
                files.append(PlannedFile(script, wrapper, 0o600, "wrapper"))
            at = script_position(ctx.request, args)
            assert args[at] == ctx.script_path
            args[at] = script
    token = None
    if effective(ctx.request, "comment") is None:
        token = token_for(ctx.chain_id, seq)
        args.insert(script_position(ctx.request, args), f"--comment={token}")
    return FinalSubmission(replace(plan, args=tuple(args)), seq, token, tuple(files))
