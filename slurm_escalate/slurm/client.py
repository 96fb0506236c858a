"""SlurmClient: the handful of Slurm calls the tool makes, with their rules.

``SlurmClient`` is the Protocol the engine, the services and the CLI are typed
against; ``SlurmCommands`` is the real one, running the Slurm command-line tools
through a CommandRunner; ``slurm_escalate.testing.FakeSlurm`` is the fake one.
The rules of the real client:

* ``submit`` never retries: if sbatch timed out after the controller accepted
  the job, a retry would submit it twice.
* ``query`` makes exactly one sacct call however many ids it is given, so a
  poll costs one round trip to slurmdbd.
* Read-only calls (sacct, scontrol) do not retry either; the poll loop simply
  asks again next round.
* With ``clusters`` (the chain's ``sbatch -M/--clusters``), every sacct, squeue,
  scancel and scontrol call carries ``--clusters=<name>``: the jobs live there.
  sbatch gets it from the user's own arguments (or ``#SBATCH -M``).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping, Sequence
from typing import Protocol

from slurm_escalate.core.models import ClusterLimits, PartitionInfo, TaskRecord
from slurm_escalate.errors import SlurmCommandError
from slurm_escalate.slurm.fastbuild import gc_paused
from slurm_escalate.slurm.parse import (
    SACCT_FIELDS,
    Keep,
    SacctReader,
    parse_cluster_limits,
    parse_job_comments,
    parse_job_tokens,
    parse_partitions,
    parse_sbatch_parsable,
)
from slurm_escalate.slurm.runner import CommandResult, CommandRunner, SubprocessRunner

# What may go into --jobs=/scancel: a job id, or one task of an array. Anything
# else (a comma, a space, a leading '-') would change the command's meaning.
_JOB_ID_RE = re.compile(r"\d+(?:_\d+)?")
# One cluster name: a list or "all" would let one job id name jobs of several clusters.
CLUSTER_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class SlurmClient(Protocol):
    """What the tool asks of Slurm: every call the engine, the services and the CLI make.

    Positional parameters are positional-only here, so an implementation may
    name them as it likes. ``runner`` and the two timeouts are the raw command
    channel that adopting uses for read-only commands of its own (``scontrol
    show job``, ``scontrol write batch_script``, the extra sacct fields), each
    started with ``command`` so that it goes to the client's cluster.
    """

    @property
    def runner(self) -> CommandRunner: ...

    @property
    def query_timeout(self) -> float: ...

    @property
    def control_timeout(self) -> float: ...

    def command(self, name: str, /) -> list[str]:
        """A Slurm command's argv start for the raw channel (with the client's cluster)."""
        ...

    def submit(
        self,
        sbatch_args: Sequence[str],
        /,
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> str:
        """Submit once (never retried) and return the job id."""
        ...

    def query(self, job_ids: Sequence[str], /, keep: Keep | None = None) -> list[TaskRecord]:
        """Task records of the given array job ids, from one sacct call; with ``keep``,
        only of the tasks it says yes to (array job id, index)."""
        ...

    def find_tokens(self, prefix: str, since: float, /) -> dict[str, str]:
        """{comment: job id} of this user's jobs whose comment starts with ``prefix``."""
        ...

    def cancel(self, job_ids: Sequence[str], /) -> None:
        """Cancel the given jobs (one call)."""
        ...

    def partitions(self, node_memory: bool = True) -> dict[str, PartitionInfo]:
        """Partitions by name, hidden ones included (without ``node_memory``, one call
        fewer, and no ``max_node_mem_mb``)."""
        ...

    def limits(self) -> ClusterLimits:
        """The cluster's array limits."""
        ...


class SlurmCommands:
    """The real SlurmClient: submit, query and cancel jobs through a CommandRunner."""

    def __init__(
        self,
        runner: CommandRunner | None = None,
        *,
        submit_timeout: float = 120.0,
        query_timeout: float = 120.0,
        control_timeout: float = 30.0,
        clusters: str | None = None,
    ) -> None:
        if clusters is not None and (
            not CLUSTER_NAME_RE.fullmatch(clusters) or clusters.lower() == "all"
        ):
            raise ValueError(f"not one Slurm cluster name: {clusters!r}")
        self.clusters = clusters
        self.runner: CommandRunner = runner if runner is not None else SubprocessRunner()
        self.submit_timeout = submit_timeout
        self.query_timeout = query_timeout
        self.control_timeout = control_timeout
        self._limits: ClusterLimits | None = None

    def submit(
        self,
        sbatch_args: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> str:
        """Run ``sbatch --parsable <sbatch_args>`` and return the job id.

        ``sbatch_args`` is options, then the script path, then script
        arguments, passed byte for byte. ``env`` is sbatch's complete
        environment (sbatch exports it into the job by default), ``None``
        inherits ours. A timeout raises SlurmCommandError and is *not*
        retried: the job may exist, so the caller must look before resubmitting.
        """
        argv = ["sbatch", "--parsable", *sbatch_args]
        result = self.runner.run(argv, timeout=self.submit_timeout, env=env, cwd=cwd)
        _check(result)
        return parse_sbatch_parsable(result.stdout)

    def query(self, job_ids: Sequence[str], keep: Keep | None = None) -> list[TaskRecord]:
        """All task records of ``job_ids``, from one sacct call (with ``keep``: only
        those of the tasks it wants; the output is read as it arrives, never whole).

        Pass array job ids (``123``) rather than task ids (``123_4``): sacct
        does not find a task that is still pending inside the array's
        ``123_[...]`` record by its task id.

        No ``--duplicates``: without it sacct shows only the newest record of
        each job id, which is the attempt we care about (earlier REQUEUED runs
        are hidden). No ``--starttime``: with ``--jobs`` sacct searches from the
        epoch (``sacct -v`` says "from Epoch 0"), so old jobs are found.
        ``SLURM_TIME_FORMAT=standard`` pins Start/End to ISO text whatever the
        user's environment says. ``SLURM_BITSTR_LEN=0``: without it sacct cuts a
        pending array's ``123_[...]`` record after 64 characters ("...,1...]"),
        and the tasks past the cut would look as if they had vanished.
        """
        ids = _checked_ids(job_ids)
        if not ids:
            return []
        argv = [
            *self.command("sacct"),
            "--noheader",
            "--parsable2",
            f"--format={','.join(SACCT_FIELDS)}",
            f"--jobs={','.join(ids)}",
        ]
        reader = SacctReader(keep)
        with gc_paused():
            result = self.runner.run_lines(
                argv, reader.feed, timeout=self.query_timeout, env=query_env()
            )
            _check(result)
            return reader.records()

    def find_tokens(self, prefix: str, since: float) -> dict[str, str]:
        """Job ids of this user's jobs whose comment starts with ``prefix``: {comment: job id}.

        Used only when resuming, to learn whether an interrupted sbatch went
        through. Looks in accounting (sacct, from ``since``) and in the
        controller (squeue). Accounting keeps comments only where the site sets
        ``AccountingStoreFlags=job_comment`` (Slurm's default does not), and the
        controller forgets a job MinJobAge after it ended; sacct's SubmitLine
        keeps the ``--comment=<token>`` argument everywhere, so it is searched too
        (last in the format: it may contain ``|``).
        """
        user = str(os.getuid())
        start = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(since))
        env = query_env()
        found: dict[str, str] = {}
        sacct = [
            *self.command("sacct"),
            "--noheader",
            "--parsable2",
            "--allocations",
            "--format=JobID,Comment,SubmitLine",
            f"--starttime={start}",
            f"--user={user}",
        ]
        squeue = [
            *self.command("squeue"),
            "--noheader",
            f"--user={user}",
            "--format=%F|%k",
            "--states=all",
        ]
        result = self.runner.run(sacct, timeout=self.query_timeout, env=env)
        _check(result)
        found.update(parse_job_tokens(result.stdout, prefix))
        result = self.runner.run(squeue, timeout=self.query_timeout, env=env)
        _check(result)
        found.update(parse_job_comments(result.stdout, prefix))
        return found

    def cancel(self, job_ids: Sequence[str]) -> None:
        """``scancel`` the given jobs (one call). Already-finished jobs are not an error
        to scancel (it exits 0 for them), so a non-zero exit is raised."""
        ids = _checked_ids(job_ids)
        if not ids:
            return
        _check(self.runner.run([*self.command("scancel"), *ids], timeout=self.control_timeout))

    def partitions(self, node_memory: bool = True) -> dict[str, PartitionInfo]:
        """Partitions by name, including hidden ones (``--all``) a user may still use;
        the nodes' RealMemory only with ``node_memory`` (a second call)."""
        scontrol = self.command("scontrol")
        part = self.runner.run(
            [*scontrol, "--all", "--oneliner", "show", "partition"],
            timeout=self.control_timeout,
        )
        _check(part)
        if not node_memory:
            return parse_partitions(part.stdout, "")
        node = self.runner.run(
            [*scontrol, "--all", "--oneliner", "show", "node"], timeout=self.control_timeout
        )
        _check(node)
        return parse_partitions(part.stdout, node.stdout)

    def limits(self) -> ClusterLimits:
        """Array limits from ``scontrol show config``, fetched once per client."""
        if self._limits is None:
            result = self.runner.run(
                [*self.command("scontrol"), "show", "config"], timeout=self.control_timeout
            )
            _check(result)
            self._limits = parse_cluster_limits(result.stdout)
        return self._limits

    def command(self, name: str, /) -> list[str]:
        """A Slurm command's name, with ``--clusters`` when the chain runs on another cluster."""
        return [name] if self.clusters is None else [name, f"--clusters={self.clusters}"]


def _conforms(client: SlurmCommands) -> SlurmClient:
    """Never called: mypy proves here that SlurmCommands is a SlurmClient."""
    return client


def _check(result: CommandResult) -> None:
    if result.returncode != 0:
        raise SlurmCommandError(result.argv, result.returncode, result.stderr)


def query_env() -> dict[str, str]:
    """Our environment, with sacct/squeue output pinned: ISO times, array specs never cut."""
    return {**os.environ, "SLURM_TIME_FORMAT": "standard", "SLURM_BITSTR_LEN": "0"}


def _checked_ids(job_ids: Sequence[str]) -> list[str]:
    """Validated ids, duplicates dropped, order kept."""
    if isinstance(job_ids, str):
        raise TypeError("job_ids must be a sequence of ids, not one string")
    ids = list(dict.fromkeys(job_ids))
    bad = [i for i in ids if not isinstance(i, str) or not _JOB_ID_RE.fullmatch(i)]
    if bad:
        raise ValueError(f"not Slurm job ids: {bad[:5]!r}")
    return ids
