"""Shared fixtures. The e2e ones drive the real local Slurm cluster.

Every test under ``tests/e2e`` gets the ``e2e`` marker and needs the cluster
brought up by ``docker-cluster/cluster.sh up``. Without it the e2e tests are
skipped with the reason, except under ``CI=true``, where a missing cluster is a
failure: a CI run that silently skips every end-to-end test proves nothing.

The ``e2e`` fixture gives each test its own directory (the CLI's working
directory, where job output lands) and its own ``SLURM_ESCALATE_HOME``, a
unique job name, and helpers to run the CLI and read sacct. At teardown it
cancels whatever is still queued under that job name and stops any monitor
daemon started from that home, so a failed test leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
E2E_DIR = Path(__file__).resolve().parent / "e2e"

CLI_TIMEOUT = 600.0  # a whole foreground chain, TIMEOUT escalations included
QUICK_TIMEOUT = 60.0  # status, list, usage errors, --detached's return
# Own options every e2e run passes: poll fast so tests do not wait on back-off.
FAST_POLL = ("--min-poll", "1", "--max-poll", "5")

# Job scripts allocate memory with an absolute interpreter: --export=NONE must not
# change which python runs, and pyenv shims add startup cost inside small cgroups.
PYTHON = shutil.which("python3", path="/usr/bin:/bin") or sys.executable

SACCT_FIELDS = "JobID,State,ExitCode,Partition,ReqMem,Timelimit,JobName"
FINAL_TASK_STATES = {"COMPLETED", "FAILED", "EXHAUSTED", "CANCELLED"}


# --------------------------------------------------------------------------- markers


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "e2e: needs the real local Slurm cluster (docker-cluster/cluster.sh up)"
    )
    config.addinivalue_line("markers", "core: the e2e core set run on every Slurm release (dev.sh)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if E2E_DIR in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.e2e)


# --------------------------------------------------------------------------- cluster


def _cluster_problem() -> str | None:
    """Why the cluster cannot run e2e tests, or None when it can."""
    for tool in ("sinfo", "sbatch", "sacct", "squeue", "scancel"):
        if shutil.which(tool) is None:
            return f"{tool} not found on PATH"
    try:
        p = subprocess.run(
            ["sinfo", "-h", "-N", "-o", "%N %t"], capture_output=True, text=True, timeout=30
        )
    except subprocess.TimeoutExpired:
        return "sinfo -h timed out after 30 s"
    if p.returncode != 0:
        return f"sinfo -h exited {p.returncode}: {p.stderr.strip()}"
    nodes = [line.split() for line in p.stdout.splitlines() if line.strip()]
    if not nodes:
        return "sinfo -h lists no nodes"
    usable = [n for n in nodes if len(n) == 2 and not re.match(r"(down|drain|fail|unk)", n[1])]
    if not usable:
        return "no usable node: " + ", ".join(" ".join(n) for n in nodes)
    try:
        p = subprocess.run(
            ["sacct", "-n", "-X", "-S", "now-1minutes", "-o", "JobID"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except subprocess.TimeoutExpired:
        return "sacct timed out after 30 s (slurmdbd down?)"
    if p.returncode != 0:
        return f"sacct exited {p.returncode} (slurmdbd down?): {p.stderr.strip()}"
    return None


@pytest.fixture(scope="session")
def slurm_cluster() -> None:
    """Fail (CI=true) or skip unless the local cluster answers sinfo and sacct."""
    problem = _cluster_problem()
    if problem is None:
        return
    msg = (
        f"local Slurm cluster not reachable: {problem}. "
        "Start it with `docker-cluster/cluster.sh up` (as root)."
    )
    skip_unless_ci(msg)


def skip_unless_ci(reason: str) -> None:
    """Skip on a developer's machine; under CI=true a missing prerequisite is a failure."""
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _e2e_needs_cluster(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("e2e") is not None:
        request.getfixturevalue("slurm_cluster")


# --------------------------------------------------------------------------- the CLI


def _console_script(name: str, func: str) -> list[str]:
    """The installed console script; else the same entry point through python."""
    beside = Path(sys.executable).parent / name  # the venv/pyenv this pytest runs in
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    found = shutil.which(name)
    if found:
        return [found]
    if name == "slurm-escalate" and (REPO / "slurm_escalate" / "__main__.py").is_file():
        return [sys.executable, "-m", "slurm_escalate"]
    code = f"import sys; from slurm_escalate.cli.main import {func}; sys.exit({func}())"
    return [sys.executable, "-c", code]


SBATCH_ESCALATE = _console_script("sbatch_escalate", "sbatch_escalate_main")
SLURM_ESCALATE = _console_script("slurm-escalate", "main")


@dataclass
class CliResult:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def chain_id(self) -> str:
        """With --parsable the first stdout line is the chain id alone."""
        lines = self.stdout.splitlines()
        assert lines and lines[0].strip(), f"no chain id on stdout\n{self.describe()}"
        return lines[0].strip()

    def describe(self) -> str:
        return (
            f"$ {' '.join(self.argv)}\nexit {self.returncode} after {self.seconds:.0f}s\n"
            f"--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"
        )


def array_indices(spec: object) -> set[int]:
    """Indices of an --array spec ("1,4-6", "0-7:2%3") or of a list of ints/specs."""
    if spec is None:
        return set()
    if isinstance(spec, int):
        return {spec}
    if isinstance(spec, (list, tuple)):
        out: set[int] = set()
        for item in spec:
            out |= array_indices(item)
        return out
    text = str(spec).strip().strip("[]").split("%")[0]
    out = set()
    for part in filter(None, text.split(",")):
        step = 1
        if ":" in part:
            part, step_text = part.split(":")
            step = int(step_text)
        if "-" in part:
            lo, hi = part.split("-")
            out.update(range(int(lo), int(hi) + 1, step))
        else:
            out.add(int(part))
    return out


def job_base(job_id: object) -> str:
    """'123_4' -> '123'; '123' -> '123'."""
    return str(job_id).split("_")[0].split(".")[0]


@dataclass(frozen=True)
class SacctJob:
    job_id: str
    state: str  # first word of the State column ("CANCELLED by 0" -> CANCELLED)
    exit_code: str  # "code:signal"
    name: str
    partition: str
    req_mem: str  # as sacct prints it, e.g. "150M"
    timelimit: str  # e.g. "00:01:00"


def pid_alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return not re.search(r"^State:\s+Z", status, re.M)


def _terminate(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(50):
        if not pid_alive(pid):
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            return value
        time.sleep(interval)


def by_index(status: dict[str, Any]) -> dict[Any, dict[str, Any]]:
    """status --json tasks keyed by their index (None for a non-array job)."""
    return {task["index"]: task for task in status["tasks"]}


def exit_code_of(value: object) -> int | None:
    """A task's exit_code as an int, whether written 3, "3" or "3:0"."""
    if value is None:
        return None
    return int(str(value).split(":")[0])


class E2E:
    """One test's sandbox: own directory, own SLURM_ESCALATE_HOME, own job name."""

    def __init__(self, workdir: Path, job_name: str) -> None:
        self.dir = workdir
        self.home = workdir / "escalate-home"
        self.job_name = job_name
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
        env["SLURM_ESCALATE_HOME"] = str(self.home)
        env["PYTHONUNBUFFERED"] = "1"
        self.env = env

    # Helpers, reachable from tests through the fixture (tests never import conftest).
    repo = REPO
    examples = EXAMPLES
    python = PYTHON
    array_indices = staticmethod(array_indices)
    job_base = staticmethod(job_base)
    by_index = staticmethod(by_index)
    exit_code_of = staticmethod(exit_code_of)
    pid_alive = staticmethod(pid_alive)
    wait_until = staticmethod(wait_until)
    slurm_escalate_cli = SLURM_ESCALATE  # argv of slurm-escalate, for runs with an env of their own

    # ---- files

    def write(self, name: str, text: str, executable: bool = False) -> Path:
        path = self.dir / name
        path.write_text(text)
        if executable:
            path.chmod(0o755)
        return path

    def ladder(
        self, levels: Sequence[dict[str, Any]], name: str = "ladder.yaml", **top: Any
    ) -> Path:
        """Write a ladder YAML file; ``top`` adds state_handling, max_resubmits, ..."""
        data: dict[str, Any] = {"levels": [dict(lv) for lv in levels], **top}
        return self.write(name, yaml.safe_dump(data, sort_keys=False))

    def job_script(self, body: str, name: str = "job.sh", sbatch: Iterable[str] = ()) -> Path:
        """A bash job script: #SBATCH lines, an 'attempt' banner, an env dump, ``body``.

        The banner line ``attempt=<n> level=<l> ...`` is printed first, so an
        appended log shows every attempt. ``env-<index>-<jobid>.env`` keeps the
        whole environment (NUL separated) of each attempt. ``use_memory MIB``
        really allocates and touches MIB MiB.
        """
        directives = "".join(f"#SBATCH {line}\n" for line in sbatch)
        text = f"""#!/bin/bash
{directives}set -u
idx=${{SLURM_ARRAY_TASK_ID:-none}}
echo "attempt=${{SLURM_ESCALATE_ATTEMPT:-unset}} level=${{SLURM_ESCALATE_LEVEL:-unset}}\
 chain=${{SLURM_ESCALATE_CHAIN_ID:-unset}} task=$idx job=${{SLURM_JOB_ID}}\
 partition=${{SLURM_JOB_PARTITION:-unset}}"
env -0 > "env-$idx-$SLURM_JOB_ID.env"
use_memory() {{
    {PYTHON} -c '
import sys
mib = int(sys.argv[1])
block = bytearray(mib * 1024 * 1024)
for i in range(0, len(block), 4096):
    block[i] = 1
print("held", mib, "MiB", flush=True)
' "$1"
}}
{body}
echo "done task=$idx job=$SLURM_JOB_ID"
"""
        return self.write(name, text, executable=True)

    def envs(self, index: object) -> list[dict[str, str]]:
        """The env dumps of one task (index None: a non-array job), oldest job first."""
        tag = "none" if index is None else str(index)
        dumps = []
        for path in self.dir.glob(f"env-{tag}-*.env"):
            job = int(path.name[len(f"env-{tag}-") : -len(".env")])
            items = path.read_bytes().decode(errors="replace").split("\0")
            env = dict(item.split("=", 1) for item in items if "=" in item)
            dumps.append((job, env))
        return [env for _, env in sorted(dumps, key=lambda pair: pair[0])]

    # ---- running the CLI

    def _run(self, argv: list[str], timeout: float, env: dict[str, str] | None) -> CliResult:
        start = time.monotonic()
        try:
            p = subprocess.run(
                argv,
                cwd=self.dir,
                env=env or self.env,
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as e:
            out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
            err = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
            pytest.fail(
                f"$ {' '.join(argv)}\ndid not finish within {timeout:.0f}s\n"
                f"--- stdout\n{out}\n--- stderr\n{err}\n{self.debug()}",
                pytrace=False,
            )
        return CliResult(argv, p.returncode, p.stdout, p.stderr, time.monotonic() - start)

    def chain_argv(
        self,
        script: Path | str,
        *script_args: str,
        config: Path | None = None,
        own: Sequence[str] = (),
        sbatch: Sequence[str] = (),
        parsable: bool = True,
    ) -> list[str]:
        """sbatch_escalate [--config C] [--parsable] [fast polling] [own]
        --job-name=<unique> [sbatch] SCRIPT ARGS."""
        own_args = [*(["--parsable"] if parsable else []), *FAST_POLL, *own]
        if config is not None:
            own_args = ["--config", str(config), *own_args]
        return [
            *SBATCH_ESCALATE,
            *own_args,
            f"--job-name={self.job_name}",
            *sbatch,
            str(script),
            *script_args,
        ]

    def sbatch_escalate(
        self, *args: str, timeout: float = CLI_TIMEOUT, env: dict[str, str] | None = None
    ) -> CliResult:
        return self._run([*SBATCH_ESCALATE, *args], timeout, env)

    def slurm_escalate(self, *args: str, timeout: float = QUICK_TIMEOUT) -> CliResult:
        return self._run([*SLURM_ESCALATE, *args], timeout, None)

    def run_chain(
        self,
        script: Path | str,
        *script_args: str,
        config: Path | None = None,
        own: Sequence[str] = (),
        sbatch: Sequence[str] = (),
        parsable: bool = True,
        timeout: float = CLI_TIMEOUT,
        env: dict[str, str] | None = None,
    ) -> CliResult:
        """Run a whole chain in the foreground (see chain_argv)."""
        argv = self.chain_argv(
            script, *script_args, config=config, own=own, sbatch=sbatch, parsable=parsable
        )
        return self._run(argv, timeout, env)

    def status(self, chain_id: str) -> dict[str, Any]:
        r = self.slurm_escalate("status", chain_id, "--json")
        assert r.returncode == 0, r.describe()
        try:
            data = json.loads(r.stdout)
        except json.JSONDecodeError as e:
            raise AssertionError(f"status --json is not JSON ({e})\n{r.describe()}") from None
        assert data["chain_id"] == chain_id, data
        return data

    def wait_chain(self, chain_id: str, timeout: float = CLI_TIMEOUT) -> dict[str, Any]:
        """Poll status --json until the chain leaves RUNNING."""
        deadline = time.monotonic() + timeout
        while True:
            data = self.status(chain_id)
            if data["state"] != "RUNNING":
                return data
            if time.monotonic() > deadline:
                pytest.fail(
                    f"chain {chain_id} still RUNNING after {timeout:.0f}s:\n"
                    f"{json.dumps(data, indent=1)}\n{self.debug()}",
                    pytrace=False,
                )
            time.sleep(3)

    def chain_dirs(self) -> list[Path]:
        chains = self.home / "chains"
        return sorted(p for p in chains.iterdir() if p.is_dir()) if chains.is_dir() else []

    # ---- Slurm

    def sacct(self, *job_ids: object, want: Iterable[str] = ()) -> dict[str, SacctJob]:
        """sacct -X rows of these jobs (array tasks as '<id>_<index>'), by JobID.

        Waits briefly until no row is still pending/running or incomplete:
        slurmdbd records a job a moment after slurmctld. ``want``: JobIDs
        that must be among the rows before it stops waiting.
        """
        wanted = set(want)
        ids = ",".join(sorted({job_base(j) for j in job_ids}))
        rows: dict[str, SacctJob] = {}
        for _ in range(20):
            p = subprocess.run(
                ["sacct", "-n", "-P", "-X", "-j", ids, "-o", SACCT_FIELDS],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert p.returncode == 0, p.stderr
            rows = {}
            for line in p.stdout.splitlines():
                if not line.strip():
                    continue
                job_id, state, exit_code, partition, req_mem, limit, name = line.split("|", 6)
                rows[job_id] = SacctJob(
                    job_id, state.split()[0], exit_code, name, partition, req_mem, limit
                )
            # A row still in transit to slurmdbd can lack its partition/memory, or
            # show an array task under the bare array id for a second or two.
            if (
                rows
                and wanted <= set(rows)
                and all(
                    r.state not in ("PENDING", "RUNNING", "REQUEUED", "COMPLETING")
                    and r.partition
                    and "?" not in r.req_mem
                    for r in rows.values()
                )
            ):
                break
            time.sleep(1)
        return rows

    def sacct_row(self, job_id: str, *fields: str) -> list[str]:
        """``fields`` of the one ``sacct -X`` row whose JobID is ``job_id`` ("123", "123_4")."""
        out = subprocess.run(
            ["sacct", "-n", "-P", "-X", "-j", job_id, "-o", ",".join(("JobID", *fields))],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        split = (line.split("|") for line in out.splitlines())
        rows = [cols[1:] for cols in split if cols[0] == job_id]
        assert len(rows) == 1, (job_id, out)
        return rows[0]

    def task_sacct(self, task: dict[str, Any]) -> list[SacctJob]:
        """The sacct row of every attempt of one status --json task, oldest first."""
        # job_ids are Slurm's task ids ("123_4"; the slot for an index above MaxArraySize)
        index = task["index"]
        keys = [job_base(j) if index is None else str(j) for j in task["job_ids"]]
        rows = self.sacct(*keys, want=keys)
        missing = [k for k in keys if k not in rows]
        assert not missing, f"sacct has no row for {missing}; it has {sorted(rows)}"
        return [rows[k] for k in keys]

    def rows_per_index(self) -> Counter[int]:
        """sacct rows of this test's jobs per array index: one row per attempt that ran."""
        since = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - 3600))
        out = subprocess.run(
            [
                "sacct",
                "-n",
                "-P",
                "-X",
                f"--name={self.job_name}",
                f"--starttime={since}",
                "--format=JobID",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        return Counter(int(j.split("_")[1]) for j in out.split() if "_" in j and "[" not in j)

    def jobs_named(self) -> list[str]:
        """Every job (queued or in accounting) that carries this test's job name."""
        found: set[str] = set()
        q = subprocess.run(
            ["squeue", "-h", "-n", self.job_name, "-o", "%i"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        found.update(q.stdout.split())
        a = subprocess.run(
            ["sacct", "-n", "-X", "-P", "--name", self.job_name, "-S", "now-2hours", "-o", "JobID"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        found.update(a.stdout.split())
        return sorted(found)

    def debug(self) -> str:
        """Chain logs and the queue, for failure messages."""
        parts = []
        for chain in self.chain_dirs():
            log = chain / "monitor.log"
            if log.is_file():
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
                parts.append(f"--- {log} (tail)\n{tail}")
        q = subprocess.run(
            ["squeue", "-n", self.job_name], capture_output=True, text=True, timeout=60
        )
        parts.append(f"--- squeue -n {self.job_name}\n{q.stdout}")
        return "\n".join(parts)

    # ---- processes

    def escalate_processes(self) -> list[int]:
        """Live pids of slurm-escalate processes started with this test's home."""
        marker = f"SLURM_ESCALATE_HOME={self.home}".encode()
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
                environ = (entry / "environ").read_bytes()
                status = (entry / "status").read_text()
            except OSError:
                continue
            if "escalate" not in cmdline.decode(errors="replace"):
                continue
            if re.search(r"^State:\s+Z", status, re.M):
                continue
            if marker in environ.split(b"\0"):
                pids.append(int(entry.name))
        return pids

    def cleanup(self) -> None:
        for pid in self.escalate_processes():
            _terminate(pid)
        if subprocess.run(
            ["squeue", "-h", "-n", self.job_name, "-o", "%i"],
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout.strip():
            subprocess.run(["scancel", "-n", self.job_name], capture_output=True, timeout=60)


@pytest.fixture
def e2e(request: pytest.FixtureRequest, tmp_path: Path) -> Iterable[E2E]:
    """A sandbox for one e2e test; cleans up its jobs and daemons afterwards."""
    short = re.sub(r"[^A-Za-z0-9]+", "_", request.node.name)[:24].strip("_")
    sandbox = E2E(tmp_path, f"e2e_{short}_{uuid.uuid4().hex[:6]}")
    yield sandbox
    sandbox.cleanup()


# --------------------------------------------------------------------------- the site cluster

# The second cluster that docker-cluster/cluster.sh starts beside the host's (docker-cluster/site/):
# Slurm's defaults where issue 11's site profiles need them (no comments in accounting, MinJobAge
# 10, MaxArraySize 1001, JobRequeue=1, QOS limits, preemption). Partitions: small (s1, 1000 MB,
# 2 min), large (s2, 4000 MB, 15 min), limited (partition QOS: MaxSubmitJobsPerUser=4),
# low/high (s3).
SITE_CONF = "/etc/slurm-site/slurm.conf"


class _SiteConf:
    """Within the block, Slurm commands of this process (no env= of their own) talk to the site."""

    def __enter__(self) -> None:
        self.saved = os.environ.get("SLURM_CONF")
        os.environ["SLURM_CONF"] = SITE_CONF

    def __exit__(self, *exc: object) -> None:
        if self.saved is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = self.saved


class SiteE2E(E2E):
    """An ``E2E`` sandbox on the site cluster: the CLI runs with SLURM_CONF pointing at it, and
    the sacct/squeue/scancel helpers ask it. ``host_env`` is the CLI's environment with the host's
    config (no SLURM_CONF), for ``-M site`` runs."""

    conf = SITE_CONF

    def __init__(self, workdir: Path, job_name: str) -> None:
        super().__init__(workdir, job_name)
        self.host_env = dict(self.env)
        self.env["SLURM_CONF"] = SITE_CONF
        self.slurm_env = {**os.environ, "SLURM_CONF": SITE_CONF}  # for a test's own Slurm calls


def _on_site(method: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(self: SiteE2E, *args: Any, **kwargs: Any) -> Any:
        with _SiteConf():
            return method(self, *args, **kwargs)

    wrapper.__doc__ = method.__doc__
    return wrapper


for _name in ("sacct", "task_sacct", "rows_per_index", "jobs_named", "debug", "cleanup"):
    setattr(SiteE2E, _name, _on_site(getattr(E2E, _name)))


@pytest.fixture(scope="session")
def site_cluster() -> None:
    """Fail (CI=true) or skip unless the site cluster answers sinfo and sacct."""
    if not Path(SITE_CONF).is_file():
        problem: str | None = f"{SITE_CONF} does not exist"
    else:
        with _SiteConf():
            problem = _cluster_problem()
    if problem is not None:
        skip_unless_ci(
            f"site Slurm cluster not reachable: {problem}. "
            "Start it with `docker-cluster/cluster.sh up` (as root)."
        )


@pytest.fixture
def site(request: pytest.FixtureRequest, tmp_path: Path, site_cluster: None) -> Iterable[SiteE2E]:
    """Like ``e2e``, on the site cluster (docker-cluster/site/README.md)."""
    short = re.sub(r"[^A-Za-z0-9]+", "_", request.node.name)[:24].strip("_")
    sandbox = SiteE2E(tmp_path, f"site_{short}_{uuid.uuid4().hex[:6]}")
    yield sandbox
    sandbox.cleanup()
