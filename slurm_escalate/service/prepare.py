"""From a command line to a validated chain, and from a stored chain back to a monitor.

Everything that can be wrong with the user's input is checked in ``prepare``,
before the first sbatch: options, the script, the array spec, the ladder (its
syntax and, against the live cluster, its partitions, memory and time). So a
bad input costs a one-line error and leaves nothing half-submitted.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final, Literal

from slurm_escalate.core.chain import Chain, TaskStatus
from slurm_escalate.core.ladder import builtin_policy, check_against_cluster, cluster_facts_needed
from slurm_escalate.core.models import ClusterLimits, Level, Policy
from slurm_escalate.engine.monitor import Clock, Monitor
from slurm_escalate.engine.submitter import Submitter
from slurm_escalate.errors import StateError, UsageError
from slurm_escalate.sbatch.args import (
    JobRequest,
    array_spec,
    load_request,
    make_request,
    requested_level,
)
from slurm_escalate.sbatch.plan import PlanContext, script_copy_path
from slurm_escalate.sbatch.validate import check_request
from slurm_escalate.slurm.client import SlurmClient
from slurm_escalate.state.ladder_file import load_policy
from slurm_escalate.state.store import ChainStore, new_chain_id

LADDER_COPY = "ladder.yaml"
OWN_OPTIONS = frozenset(
    {
        "--config",
        "--detached",
        "--max-level",
        "--start-level",
        "--max-resubmits",
        "--min-poll",
        "--max-poll",
        "--dry-run",
        "--parsable",
        "--rounds",
    }
)
DEFAULT_MIN_POLL = 30.0
MAX_POLL_CAP = 600.0
#: ``--start-level auto``: the level earlier chains of the same script needed (service/suggest.py)
AUTO: Final = "auto"


@dataclass(frozen=True)
class SubmitOptions:
    config: str | None = None
    start_level: int | Literal["auto"] | None = None  # "auto": chosen by ``submit``
    max_level: int | None = None
    max_resubmits: int | None = None
    min_poll: float = DEFAULT_MIN_POLL
    max_poll: float | None = None
    rounds: bool = False  # wait for a submission's last task before resubmitting its failures

    @property
    def effective_max_poll(self) -> float:
        """Default: ten times the floor, at most ten minutes (300 s for the default floor)."""
        if self.max_poll is not None:
            return max(self.max_poll, self.min_poll)
        return max(self.min_poll, min(MAX_POLL_CAP, self.min_poll * 10))


@dataclass(frozen=True)
class Prepared:
    request: JobRequest
    policy: Policy
    base: Level
    indices: tuple[int, ...] | None  # None: not an array
    throttle: int | None
    limits: ClusterLimits
    config_path: str | None


def build_request(tokens: Sequence[str], cwd: str, script_file: str | None = None) -> JobRequest:
    """Parse ``[SBATCH OPTIONS] SCRIPT [ARGS]``; ``script_file`` reads a saved copy instead.

    The script is found the way sbatch finds it (``--chdir``, the working
    directory, then ``PATH``), and must be a text file starting with ``#!``.
    """
    try:
        if script_file is None:
            return load_request(tokens, cwd, path_env=os.environ.get("PATH"))
        return make_request(tokens, Path(script_file).read_text(encoding="utf-8"))
    except UsageError as e:
        for token in tokens:
            name = token.split("=", 1)[0]
            if name in OWN_OPTIONS and f"'{name}'" in str(e):
                msg = f"{name} is an option of this tool: put it before any sbatch option"
                raise UsageError(msg) from None
        raise
    except OSError as e:
        raise StateError(f"cannot read the saved job script {script_file}: {e.strerror}") from None


def apply_overrides(policy: Policy, opts: SubmitOptions) -> Policy:
    """The policy with the command line's levels and caps; ``--start-level auto`` starts at 0
    here, and ``submit`` moves it where the script's history says (``suggest.auto_start``)."""
    top = policy.top_level
    given = opts.start_level if isinstance(opts.start_level, int) else None  # None, or auto
    for name, value in (("--start-level", given), ("--max-level", opts.max_level)):
        if value is not None and not 0 <= value <= top:
            raise UsageError(f"{name} {value} is outside the ladder (levels 0-{top})")
    start = given or 0
    if opts.max_level is not None and opts.max_level < start:
        raise UsageError(f"--max-level {opts.max_level} is below --start-level {start}")
    if opts.max_resubmits is not None and opts.max_resubmits < 0:
        raise UsageError(f"--max-resubmits must be 0 or more, got {opts.max_resubmits}")
    if opts.min_poll <= 0:
        raise UsageError(f"--min-poll must be positive, got {opts.min_poll:g}")
    return replace(
        policy,
        start_level=start,
        max_level=opts.max_level if opts.max_level is not None else policy.max_level,
        max_resubmits=(
            opts.max_resubmits if opts.max_resubmits is not None else policy.max_resubmits
        ),
    )


def ladder_policy(opts: SubmitOptions, base: Level, cwd: str) -> tuple[Policy, str | None]:
    """The policy (the ladder file, else the built-in one) with the command line's
    overrides, and the ladder file's absolute path (None without --config)."""
    config_path = None
    if opts.config is not None:
        config_path = str(Path(cwd, opts.config)) if not os.path.isabs(opts.config) else opts.config
        policy = load_policy(config_path, shown_as=opts.config)
    else:
        policy = builtin_policy(base.mem_mb, base.time_s)
    return apply_overrides(policy, opts), config_path


def prepare(tokens: Sequence[str], opts: SubmitOptions, client: SlurmClient, cwd: str) -> Prepared:
    request = build_request(tokens, cwd)
    base = requested_level(request)
    policy, config_path = ladder_policy(opts, base, cwd)
    spec = array_spec(request)
    partitions, node_memory = cluster_facts_needed(policy)
    if partitions:
        check_against_cluster(policy, client.partitions(node_memory))
    # MaxArraySize and max_array_tasks matter to an array only: a plain job asks nothing
    limits = client.limits() if spec is not None else ClusterLimits()
    check_request(request, spec, limits)
    return Prepared(
        request=request,
        policy=policy,
        base=base,
        indices=spec.indices if spec else None,
        throttle=spec.throttle if spec else None,
        limits=limits,
        config_path=config_path,
    )


def new_chain(
    prepared: Prepared,
    opts: SubmitOptions,
    cwd: str,
    chain_id: str,
    chain_dir: Path,
    created_at: float,
) -> Chain:
    """The chain a submission creates, as it will be written (nothing is written here)."""
    request = prepared.request
    has_copy = request.script is not None and request.script_text is not None
    return Chain(
        chain_id=chain_id,
        created_at=created_at,
        cwd=cwd,
        script=request.script,
        script_copy=(
            script_copy_path(str(chain_dir), request.script)
            if has_copy and request.script is not None
            else None
        ),
        sbatch_args=list(request.sbatch_args),
        script_args=list(request.script_args),
        config=opts.config,
        start_level=prepared.policy.start_level,
        max_level=prepared.policy.max_level,
        max_resubmits=opts.max_resubmits,
        min_poll=opts.min_poll,
        max_poll=opts.effective_max_poll,
        throttle=prepared.throttle,
        is_array=prepared.indices is not None,
        rounds=opts.rounds,
        base=prepared.base,
        tasks=[
            TaskStatus(index=i, level=prepared.policy.start_level)
            for i in (prepared.indices if prepared.indices is not None else (None,))
        ],
    )


@dataclass(frozen=True)
class ChainCopy:
    """A file copied into a new chain's directory: the job script or the ladder."""

    path: str
    source: str  # as the user named it


def chain_copies(chain: Chain, prepared: Prepared, store: ChainStore) -> list[ChainCopy]:
    """What ``create_chain`` copies into the chain's directory besides its state."""
    copies = []
    if chain.script_copy is not None and chain.script is not None:
        copies.append(ChainCopy(chain.script_copy, chain.script))
    if prepared.config_path is not None:
        ladder = store.chain_dir(chain.chain_id) / LADDER_COPY
        copies.append(ChainCopy(str(ladder), chain.config or prepared.config_path))
    return copies


def create_chain(
    prepared: Prepared,
    opts: SubmitOptions,
    store: ChainStore,
    cwd: str,
    now: float,
    created_at: float | None = None,
    chain_id: str | None = None,
) -> Chain:
    """Write the new chain's directory: its spec, a copy of the script and of the ladder."""
    chain_id = chain_id or new_chain_id(now)
    chain = new_chain(
        prepared,
        opts,
        cwd,
        chain_id,
        store.chain_dir(chain_id),
        now if created_at is None else created_at,
    )
    directory = store.chain_dir(chain.chain_id)
    text = prepared.request.script_text
    store.create(chain)
    try:
        if chain.script_copy is not None and text is not None:
            copy = Path(chain.script_copy)
            copy.parent.mkdir(mode=0o700)
            copy.write_text(text, encoding="utf-8")
            copy.chmod(0o600)
        if prepared.config_path is not None:
            shutil.copyfile(prepared.config_path, directory / LADDER_COPY)
            (directory / LADDER_COPY).chmod(0o600)
    except OSError as e:
        store.discard(chain.chain_id)  # nothing was submitted: leave nothing behind
        raise StateError(f"cannot copy the job into {directory}: {e.strerror}") from None
    except StateError:
        store.discard(chain.chain_id)
        raise
    return chain


def plan_context(chain: Chain, prepared: Prepared) -> PlanContext:
    return PlanContext(
        request=prepared.request,
        policy=prepared.policy,
        base=chain.base,
        chain_id=chain.chain_id,
        start_level=chain.start_level,
        script_path=chain.script_copy,
        throttle=chain.throttle,
        is_array=chain.is_array,
        max_array_size=prepared.limits.max_array_size,
        initial_job_id=chain.initial_job_id,
        max_array_tasks=prepared.limits.max_array_tasks,
    )


def stored_policy(chain: Chain, store: ChainStore) -> Policy:
    """The chain's policy as submitted: its ladder copy, or the built-in policy."""
    if chain.config is not None:
        ladder = store.chain_dir(chain.chain_id) / LADDER_COPY
        return load_policy(ladder, shown_as=chain.config)
    return builtin_policy(chain.base.mem_mb, chain.base.time_s)


def reload(chain: Chain, store: ChainStore, client: SlurmClient) -> Prepared:
    """Rebuild what the monitor needs from a stored chain (for ``resume``)."""
    tokens = [*chain.sbatch_args, *([chain.script] if chain.script else []), *chain.script_args]
    request = build_request(tokens, chain.cwd, script_file=chain.script_copy)
    ladder = store.chain_dir(chain.chain_id) / LADDER_COPY
    policy = stored_policy(chain, store)
    opts = SubmitOptions(
        start_level=chain.start_level,
        max_level=chain.max_level,
        max_resubmits=chain.max_resubmits,
        min_poll=chain.min_poll,
    )
    return Prepared(
        request=request,
        policy=apply_overrides(policy, opts),
        base=chain.base,
        indices=None,
        throttle=chain.throttle,
        limits=client.limits() if chain.is_array else ClusterLimits(),
        config_path=str(ladder) if chain.config else None,
    )


def make_monitor(
    chain: Chain,
    prepared: Prepared,
    store: ChainStore,
    client: SlurmClient,
    environ: Mapping[str, str],
    clock: Clock | None = None,
    on_poll=None,
) -> Monitor:
    """The chain's monitor, its one writer from here on (hold ``store.lock`` first)."""
    clock = clock or Clock()
    book = store.open_book(chain.chain_id, clock.now())
    submitter = Submitter(
        book, store, client, plan_context(book.chain, prepared), environ=environ, clock=clock
    )
    return Monitor(submitter, on_poll=on_poll)
