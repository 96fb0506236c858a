"""Benchmark infrastructure on the real local cluster: counting wrappers, measured runs, sacct.

* ``make_wrappers`` puts ``sbatch``, ``sacct``, ``scontrol``, ``squeue``, ``scancel`` and
  ``sinfo`` into a directory that goes first on a tool's PATH. Each appends one line
  (time, SLURM_ESCALATE_LEVEL and _ATTEMPT of its environment, argv) to a log and execs
  the real binary, so both tools are counted the same way, from outside.
* ``run_measured`` runs a tool in the foreground and takes its CPU time and peak RSS
  from the kernel (``waitid(WNOWAIT)`` + ``/proc/PID/stat`` for the process alone,
  ``wait4`` for the process with the commands it ran).
* ``sacct_attempts`` reads a run's attempts by its unique job name, with the real sacct
  (the harness's own queries are not counted).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import metrics

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
JOBS = REPO / "benchmarks" / "jobs"
VENV_BIN = Path(sys.executable).parent
SLURM_COMMANDS = ("sbatch", "sacct", "scontrol", "squeue", "scancel", "sinfo")
WORK_ROOT = Path(os.environ.get("BENCH_WORK", "/tmp/slurm-escalate-bench"))

_WRAPPER = """#!/bin/sh
printf '%s\\t%s\\t%s\\t%s\\n' "$(date +%s.%N)" "${{SLURM_ESCALATE_LEVEL:--}}" \\
    "${{SLURM_ESCALATE_ATTEMPT:--}}" "{name} $*" >> '{log}'
exec '{real}' "$@"
"""


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def real_command(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise SystemExit(f"{name} is not on PATH: is Slurm installed? (./dev.sh cluster)")
    return path


def make_wrappers(directory: Path, log_file: Path) -> Path:
    """Counting wrappers for every Slurm command in ``directory``; returns it."""
    directory.mkdir(parents=True, exist_ok=True)
    log_file.touch()
    for name in SLURM_COMMANDS:
        real = real_command(name)
        assert "'" not in real and "'" not in str(log_file)
        path = directory / name
        path.write_text(_WRAPPER.format(name=name, log=log_file, real=real))
        path.chmod(0o755)
    return directory


def wrapped_env(wrappers: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env["PATH"] = f"{wrappers}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    env.update(extra or {})
    return env


@dataclass
class ToolRun:
    argv: list[str]
    returncode: int
    started: float
    exited: float
    wall_s: float
    cpu_self_s: float  # the tool's own process (all its threads)
    cpu_total_s: float  # with the Slurm commands it ran (wait4: self + reaped children)
    maxrss_mb: float  # wait4's ru_maxrss: the largest of the process and its children
    code: str = ""  # the venv the tool ran from (ours-venv-<commit>, longrun-venv-<version>)
    output: str = field(repr=False, default="")


def _proc_cpu(pid: int) -> tuple[float, float]:
    """(own, children) CPU seconds of a process, zombie included, from /proc/PID/stat."""
    text = Path(f"/proc/{pid}/stat").read_text()
    rest = text[text.rindex(")") + 2 :].split()
    tick = os.sysconf("SC_CLK_TCK")
    utime, stime, cutime, cstime = (int(x) for x in rest[11:15])
    return (utime + stime) / tick, (cutime + cstime) / tick


def run_measured(
    argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, output: Path, timeout: float
) -> ToolRun:
    """Run ``argv`` to its end (killed after ``timeout``) and measure it."""
    code = Path(argv[0]).parent.parent.name
    with open(output, "wb") as out:
        started = time.time()
        proc = subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        pid = proc.pid
        flags = os.WEXITED | os.WNOWAIT | os.WNOHANG
        killed = False
        while os.waitid(os.P_PID, pid, flags) is None:
            if not killed and time.time() - started > timeout:
                log(f"{argv[0]} still running after {timeout:.0f}s: killing it")
                os.killpg(pid, 15)
                killed = True
            time.sleep(0.05)
        exited = time.time()
        cpu_self, _children = _proc_cpu(pid)  # a zombie keeps its counters until reaped
        _, status, usage = os.wait4(pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    return ToolRun(
        argv=list(argv),
        returncode=proc.returncode,
        started=started,
        exited=exited,
        wall_s=round(exited - started, 1),
        cpu_self_s=round(cpu_self, 2),
        cpu_total_s=round(usage.ru_utime + usage.ru_stime, 2),
        maxrss_mb=round(usage.ru_maxrss / 1024, 1),
        code=code,
        output=output.read_text(errors="replace"),
    )


def sacct_raw(name: str, since: float) -> str:
    """``sacct -X`` rows of every job named ``name`` submitted after ``since``, as text."""
    start = datetime.fromtimestamp(since - 60).strftime("%Y-%m-%dT%H:%M:%S")
    argv = [
        real_command("sacct"),
        "-X",
        "-P",
        "-n",
        f"--format={metrics.SACCT_FORMAT}",
        f"--name={name}",
        f"--starttime={start}",
    ]
    env = {**os.environ, "SLURM_TIME_FORMAT": "standard"}
    return subprocess.run(argv, capture_output=True, text=True, env=env, check=True).stdout


def sacct_attempts(name: str, since: float, *, settle_s: float = 30.0) -> tuple[str, list]:
    """(text, attempts) of a run; waits (a little) until accounting shows every attempt
    ended. The harness's own sacct calls use the real binary and are not counted."""
    deadline = time.time() + settle_s
    while True:
        text = sacct_raw(name, since)
        attempts = metrics.parse_sacct_x(text)
        ended = bool(attempts) and all(a.end is not None for a in attempts)
        if ended or time.time() > deadline:
            return text, attempts
        time.sleep(2)


def cancel_leftovers(name: str) -> None:
    """scancel whatever a run left behind (a killed tool leaves its jobs running)."""
    subprocess.run(
        [real_command("scancel"), f"--name={name}", f"--user={os.getuid()}"],
        capture_output=True,
        check=False,
    )


def cluster_cores() -> int:
    out = subprocess.run(
        [real_command("sinfo"), "-h", "-o", "%C"], capture_output=True, text=True, check=True
    ).stdout.split()
    return int(out[0].split("/")[-1])  # allocated/idle/other/total


def polls_from_monitor_log(home: Path, chain: str = "*") -> int:
    """Polls of the one chain under ``home`` (or of ``chain``): the monitor logs "next
    poll in" after every poll but the last (the log file is always at DEBUG level)."""
    logs = list((home / "chains").glob(f"{chain}/monitor.log"))
    if len(logs) != 1:
        raise RuntimeError(f"expected one chain under {home}, found {len(logs)}")
    return logs[0].read_text(errors="replace").count("next poll in") + 1


def chain_state(home: Path) -> dict:  # type: ignore[type-arg]
    states = list((home / "chains").glob("*/state.json"))
    return json.loads(states[0].read_text()) if len(states) == 1 else {}


def machine() -> str:
    return (
        f"{platform.node()} {platform.system()} {platform.release()} {platform.machine()}, "
        f"{os.cpu_count()} cpus, Python {platform.python_version()}"
    )


def commit() -> str:
    head = (
        subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
        or "unknown"
    )
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain"], capture_output=True, text=True
    ).stdout.strip()
    return head + ("+dirty" if dirty else "")


def stamp() -> dict[str, str]:
    return {
        "machine": machine(),
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
        "commit": commit(),
    }


_OURS: dict[str, Path] = {}


def our_venv() -> Path:
    """The checkout's HEAD commit installed the way users install it (``pip install`` into
    a venv of its own, bytecode compiled at install, as slurm-longrun's venv has it), made
    once per commit. Not the working tree: others may edit it during a long run, and an
    editable checkout under PYTHONDONTWRITEBYTECODE recompiles every module at each start,
    which is not what a user's monitor pays. Commit what you want measured."""
    head = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short=12", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if head not in _OURS:
        venv = WORK_ROOT / f"ours-venv-{head}"
        if not (venv / "bin" / "sbatch_escalate").exists():
            log(f"installing commit {head} into {venv}")
            shutil.rmtree(venv, ignore_errors=True)
            src = WORK_ROOT / f"ours-src-{head}"
            shutil.rmtree(src, ignore_errors=True)
            src.mkdir(parents=True)
            archive = subprocess.run(
                ["git", "-C", str(REPO), "archive", head], capture_output=True, check=True
            ).stdout
            subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            pip = [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check"]
            subprocess.run([*pip, str(src)], check=True)
        _OURS[head] = venv
    return _OURS[head]


def our_command() -> str:
    return str(our_venv() / "bin" / "sbatch_escalate")


def our_help() -> str:
    return subprocess.run([our_command(), "--help"], capture_output=True, text=True).stdout


def pytest_running() -> list[str]:
    out = subprocess.run(["pgrep", "-af", "pytest"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if str(os.getpid()) != line.split(" ", 1)[0]]


def queue_jobs() -> list[str]:
    out = subprocess.run(
        [real_command("squeue"), "-h", "-o", "%i %j %T"], capture_output=True, text=True
    ).stdout
    return [line for line in out.splitlines() if line.strip()]


def wait_for_quiet_cluster(max_wait_s: float = 1800.0) -> list[str]:
    """Wait until no pytest runs (CI's disruptive tests stop slurmctld) and the queue is
    empty; gives up after ``max_wait_s`` and returns what it saw, as notes."""
    t0 = time.time()
    said = False
    while True:
        busy = pytest_running()
        jobs = queue_jobs()
        if not busy and not jobs:
            return []
        if time.time() - t0 > max_wait_s:
            return [
                f"started although pytest ran ({len(busy)} processes) or "
                f"{len(jobs)} other jobs were queued"
            ]
        if not said:
            log(f"waiting: {len(busy)} pytest processes, {len(jobs)} jobs in the queue")
            said = True
        time.sleep(15)


class Interference:
    """Samples, every 10 s while a scenario runs, other jobs in the queue and pytest runs."""

    def __init__(self, own_prefix: str) -> None:
        self.own_prefix = own_prefix
        self.foreign_jobs: set[str] = set()
        self.pytest_seen: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Interference:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(10):
            try:
                for line in queue_jobs():
                    job, name, _ = (line.split(" ", 2) + ["", ""])[:3]
                    if not name.startswith(self.own_prefix):
                        self.foreign_jobs.add(job.split("_")[0])
                self.pytest_seen.update(line.split(" ", 1)[-1][:120] for line in pytest_running())
            except (OSError, subprocess.SubprocessError):
                pass

    def notes(self, scenario: str) -> list[str]:
        out = []
        if self.foreign_jobs:
            out.append(f"{scenario}: {len(self.foreign_jobs)} other jobs shared the cluster")
        if self.pytest_seen:
            seen = "; ".join(sorted(self.pytest_seen)[:3])
            out.append(f"{scenario}: pytest ran at the same time ({seen})")
        return out


def as_dict(run: ToolRun) -> dict:  # type: ignore[type-arg]
    d = asdict(run)
    d.pop("output")
    return d
