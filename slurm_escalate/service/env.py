"""What a command needs from the outside world, in one object.

The CLI builds one ``Env`` per command and hands it to the service through
click's context object (``ctx.obj``); tests build their own with a fake Slurm,
a fast clock, a fixed chain id. Nothing here is a module global.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TextIO

from slurm_escalate.core.chain import Chain
from slurm_escalate.engine.submitter import Clock
from slurm_escalate.errors import UsageError
from slurm_escalate.sbatch.args import JobRequest, effective, make_request
from slurm_escalate.slurm.client import CLUSTER_NAME_RE, SlurmClient, SlurmCommands
from slurm_escalate.slurm.runner import CommandRunner
from slurm_escalate.state.store import ChainStore, default_home, new_chain_id

SBATCH_TIMEOUT_ENV = "SLURM_ESCALATE_SBATCH_TIMEOUT"


def default_client(
    environ: Mapping[str, str], clusters: str | None = None, runner: CommandRunner | None = None
) -> SlurmClient:
    """The real client; SLURM_ESCALATE_SBATCH_TIMEOUT (seconds) bounds each sbatch call.
    ``clusters``: the chain's ``-M``, carried by every sacct, squeue, scancel and scontrol."""
    raw = environ.get(SBATCH_TIMEOUT_ENV, "")
    try:
        timeout = float(raw) if raw else 120.0
    except ValueError:
        msg = f"{SBATCH_TIMEOUT_ENV}={raw!r} is not a number of seconds"
        raise UsageError(msg) from None
    return SlurmCommands(runner, submit_timeout=timeout, clusters=clusters)


def request_clusters(request: JobRequest) -> str | None:
    """The cluster sbatch submits to (``-M``/``--clusters``, command line or #SBATCH), or None.

    Only one cluster: with a list (or ``all``) sbatch picks one per submission, and one
    job id could then name jobs of several clusters in every later sacct and scancel.
    """
    value = effective(request, "clusters")
    return None if value is None else one_cluster(value, "--clusters/-M")


def one_cluster(value: str, source: str) -> str:
    """``value`` if it names exactly one cluster; else a usage error naming ``source``."""
    if not CLUSTER_NAME_RE.fullmatch(value) or value.lower() == "all":
        raise UsageError(
            f"{source} {value!r}: give exactly one cluster name "
            "(a chain follows its jobs on one cluster)"
        )
    return value


CLUSTERS_ENV = ("SBATCH_CLUSTERS", "SLURM_CLUSTERS")  # sbatch's -M from the environment


def submission_clusters(
    tokens: list[str], request: JobRequest, environ: Mapping[str, str]
) -> tuple[list[str], str | None]:
    """The tokens to submit and their one cluster (``request_clusters``).

    sbatch takes -M from SBATCH_CLUSTERS or SLURM_CLUSTERS too; a chain resumed from a
    shell without them would then ask the wrong cluster about its jobs. So a cluster
    that only the environment names is written out as ``--clusters``, and the chain
    keeps it (``chain_clusters``) wherever it is resumed.
    """
    given = request_clusters(request)
    if given is not None:
        return tokens, given
    value = env_clusters(environ)
    return ([f"--clusters={value}", *tokens] if value else tokens), value


def env_clusters(environ: Mapping[str, str]) -> str | None:
    """The one cluster SBATCH_CLUSTERS or SLURM_CLUSTERS names, as sbatch reads them."""
    for name in CLUSTERS_ENV:
        value = environ.get(name, "").strip()
        if value:
            return one_cluster(value, name)
    return None


def chain_clusters(chain: Chain) -> str | None:
    """The cluster of a stored chain's jobs: its sbatch options, or its script copy's #SBATCH."""
    tokens = [*chain.sbatch_args, *([chain.script] if chain.script else []), *chain.script_args]
    text = None
    if chain.script:
        try:
            text = Path(chain.script_copy).read_text(encoding="utf-8") if chain.script_copy else ""
        except OSError:
            text = ""  # the copy is gone: the command line's -M still counts
    return request_clusters(make_request(tokens, text))


@dataclass
class Env:
    """The Slurm client factory, the state directory, the clock, the environment, stdout."""

    client_factory: Callable[[], SlurmClient] | None = None  # None: the real client
    runner: CommandRunner | None = None  # the real client's commands (None: subprocesses)
    home: Path | None = None  # None: $SLURM_ESCALATE_HOME or the XDG state directory
    clock: Clock = field(default_factory=Clock)
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    new_chain_id: Callable[[float], str] = new_chain_id
    cwd: Callable[[], str] = os.getcwd

    def client(self, clusters: str | None = None) -> SlurmClient:
        """The Slurm client; ``clusters``: the one cluster of the chain's jobs (sbatch -M)."""
        if self.client_factory is not None:
            return self.client_factory()
        return default_client(self.environ, clusters, self.runner)

    @cached_property
    def store(self) -> ChainStore:
        """The chain store (StateError when no state directory can be named)."""
        return ChainStore(self.home if self.home is not None else default_home(dict(self.environ)))
