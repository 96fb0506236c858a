"""Pure planning of submissions: which sbatch calls to make for which tasks.

Given the tasks that must run again and at which level, produce the sbatch
argument lists. No Slurm, no disk: the monitor records each plan as an intent,
then hands it to the client.

Grouping: tasks that need the same level *and* are on the same attempt number
share one ``sbatch --array``. The attempt number is part of the key because
``SLURM_ESCALATE_ATTEMPT`` is one value per submission; in practice tasks
that fail together are on the same attempt, so this is one sbatch per level.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from slurm_escalate.arrays.pieces import PATTERN_OPTIONS, Piece, map_pattern, plan_pieces
from slurm_escalate.arrays.spec import compress, format_array
from slurm_escalate.core.ladder import level_at
from slurm_escalate.core.models import Level, Policy
from slurm_escalate.sbatch.args import JobRequest, build_sbatch_args, effective

ENV_CHAIN_ID = "SLURM_ESCALATE_CHAIN_ID"
ENV_LEVEL = "SLURM_ESCALATE_LEVEL"
ENV_ATTEMPT = "SLURM_ESCALATE_ATTEMPT"
ENV_INITIAL_JOB_ID = "SLURM_ESCALATE_INITIAL_JOB_ID"
ENV_LONGRUN_INITIAL_JOB_ID = "SLURM_LONGRUN_INITIAL_JOB_ID"
MAX_SPEC_CHARS = 10_000  # a safe --array length: submit lines stay far below Slurm's limits
DEFAULT_ARRAY_OUTPUT = "slurm-%A_%a.out"


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


def resources_for(policy: Policy, level: int, base: Level) -> Level | None:
    """The resources to impose at ``level``; None means "what the user asked for"."""
    if not policy.levels and level == 0:
        return None
    return level_at(policy, level, base)


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
