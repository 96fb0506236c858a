"""What the chain state costs, the previous release against the new code (issue 10).

    python benchmarks/state_cost.py            # 100,000 tasks (9 minutes on 2 cores, 5944ff8)
    python benchmarks/state_cost.py --quick    # 10,000 tasks, a smoke run
    python benchmarks/state_cost.py --tasks N [--clock poll --per-poll 1000] [--prev 5944ff8]
    python benchmarks/state_cost.py --new-commit HEAD   # a commit as the new side, not the tree
    python benchmarks/state_cost.py --render            # rewrite state_cost.md from its .json

Two sides, each a real installed tool run as a real process:

* previous: the release ``--prev`` (default 5944ff8), exported with ``git archive`` into
  /tmp/slurm-escalate-bench/prev/<sha>/ and installed into its own venv there (built once,
  reused by later runs);
* new: the working tree as installed in /work/main/.venv (``./dev.sh setup``; an editable
  install, so whatever the tree holds when a command starts is what runs).

Slurm is the fake in benchmarks/fakeslurm/ (first on PATH; see fakeslurm_core.py for the
scenario). Per side, in a fresh $SLURM_ESCALATE_HOME:

1. ``sbatch_escalate --config ladder.yaml --min-poll 1 --max-poll 2 --array 0-(N-1) job.sh``
   in the foreground, stdout a pipe. By default tasks end at FAKESLURM_RATE=1000 per second of
   wall time (``--clock wall``): a monitor that polls every second sees about 1,000 end per
   poll; a slower one sees more per poll and polls less (``--clock poll``: exactly
   ``--per-poll`` tasks end per poll, whatever the speed). Tasks whose index is a multiple of
   10 run out of memory at level 0 and complete at level 1. Every 0.2 s the benchmark reads
   the monitor's /proc/PID/status (VmHWM, VmRSS), /proc/PID/io (write_bytes, wchar) and
   /proc/PID/stat (utime + stime). The kernel adds a reaped child's I/O to its parent's
   counters, so what the fake Slurm commands report of their own I/O is subtracted.
2. 49 small chains (``--array 0-9``) are run to completion in the same home, then timed,
   wall time of the process, median of 3, the sides alternating: ``slurm-escalate list``
   (50 chains), ``status CHAIN``, ``status CHAIN --json`` and ``resume CHAIN`` (which, for a
   finished chain, loads it and exits: the load time).
3. The finished big chain is checked through ``status --json``: every task COMPLETED, exactly
   the tasks i % 10 == 0 escalated once (level 1, 2 attempts), all others 1 attempt.

Writes benchmarks/results/state_cost.json and state_cost.md; the raw material of the run (the
monitor's output, /proc samples, the fake's call log) stays in
/tmp/slurm-escalate-bench/state-cost/run-<time>/ until the next run.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FAKE = REPO / "benchmarks" / "fakeslurm"
RESULTS = REPO / "benchmarks" / "results"
WORK = Path(os.environ.get("BENCH_WORK", "/tmp/slurm-escalate-bench"))
PREV_ROOT = WORK / "prev"
RUNS_ROOT = WORK / "state-cost"
SHM = Path("/dev/shm") if Path("/dev/shm").is_dir() else WORK
NEW_BIN = REPO / ".venv" / "bin"
SAMPLE_S = 0.2
SMALL_CHAINS = 49
CLI_REPEATS = 3
SIDES = ("previous", "new")

LADDER = """levels:
  - {partition: small, mem: 100M, time: "00:10:00"}
  - {partition: big, mem: 500M, time: "00:20:00"}
state_handling:
  OUT_OF_MEMORY: escalate
"""
JOB = '#!/bin/bash\necho "task ${SLURM_ARRAY_TASK_ID:-0}"\n'
# Both probes read the process's own I/O counters the same way.
_IO = r"""
def io():
    d = {}
    for line in open("/proc/self/io"):
        k, v = line.split(":")
        d[k] = int(v)
    return d
"""
PROBE = _IO + r"""
import json, os, sys, time
from pathlib import Path
from slurm_escalate.store import ChainStore, STATE_FILE

store = ChainStore(Path(sys.argv[1]))
chain = store.load(sys.argv[2])
runs = []
for _ in range(3):
    a, c0 = io(), time.process_time()
    store.save(chain)
    c1, b = time.process_time(), io()
    runs.append({"cpu_s": c1 - c0, "write_bytes": b["write_bytes"] - a["write_bytes"],
                 "wchar": b["wchar"] - a["wchar"]})
size = (store.chain_dir(chain.chain_id) / STATE_FILE).stat().st_size
print(json.dumps({"runs": runs, "state_bytes": size}))
"""

# The new release's cost of persisting one poll in which 1,000 tasks end: its own API
# (ChainBook: patch the tasks, then commit the journal lines and write the summary).
NEW_PROBE = _IO + r"""
import json, sys, time
from pathlib import Path
from slurm_escalate.core.models import TaskState
from slurm_escalate.state.store import ChainStore

store = ChainStore(Path(sys.argv[1]))
runs = []
for r in range(3):
    book = store.open_book(sys.argv[2], time.time())
    tasks = book.chain.tasks[r * 1000:(r + 1) * 1000]
    c0 = time.process_time()
    for t in tasks:
        i = t.index or 0
        book.patch(t, {"state": TaskState.COMPLETED, "a.outcome": "COMPLETED",
                       "a.exit_code": 0, "a.reason": "COMPLETED", "a.max_rss_kb": 1000 + i,
                       "a.start": "2026-12-02T10:00:00", "a.end": f"2026-12-02T10:{i % 60:02d}:00",
                       "a.elapsed_s": 60 + i % 60, "a.node": f"n{i % 7}", "a.partition": "day",
                       "a.req_mem": "100M", "a.timelimit_s": 600, "exit_code": 0,
                       "reason": "COMPLETED"})
    a, c1 = io(), time.process_time()
    book.commit()
    book.write_summary(time.time())
    c2, b = time.process_time(), io()
    runs.append({"apply_s": c1 - c0, "cpu_s": c2 - c1,
                 "write_bytes": b["write_bytes"] - a["write_bytes"],
                 "wchar": b["wchar"] - a["wchar"]})
    book.close()
print(json.dumps({"runs": runs, "state_bytes": 0}))
"""


def log(msg: str) -> None:
    print(f"[state-cost {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- the two sides
def git(*args: str) -> str:
    """Read-only git (no optional locks: another engineer works in this checkout)."""
    return subprocess.run(
        ["git", "--no-optional-locks", "-C", str(REPO), *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def code_hash(package_dir: Path) -> str:
    """Hash of every .py file of a slurm_escalate package directory (to see it change)."""
    h = hashlib.sha256()
    for path in sorted(package_dir.rglob("*.py")):
        h.update(str(path.relative_to(package_dir)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def build_release(commit: str, name: str) -> dict[str, Any]:
    """A commit in its own venv under /tmp/slurm-escalate-bench/prev/<sha>/ (built once)."""
    sha = git("rev-parse", f"{commit}^{{commit}}")
    root = PREV_ROOT / sha[:12]
    venv = root / ".venv"
    ok = root / ".installed"
    if not (ok.exists() and (venv / "bin" / "sbatch_escalate").exists()):
        log(f"{name}: building {sha[:12]} in {root}")
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        archive = subprocess.Popen(
            ["git", "--no-optional-locks", "-C", str(REPO), "archive", sha],
            stdout=subprocess.PIPE,
        )
        subprocess.run(["tar", "-x", "-C", str(root)], stdin=archive.stdout, check=True)
        assert archive.stdout is not None
        archive.stdout.close()
        if archive.wait() != 0:
            raise SystemExit(f"git archive {sha} failed")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", str(root)],
            check=True,
        )
        ok.write_text(sha + "\n")
    else:
        log(f"{name}: {sha[:12]}, reusing {venv}")
    site = package_dir(venv / "bin")
    return {
        "name": name,
        "commit": sha,
        "bin": str(venv / "bin"),
        "package": site,
        "code": code_hash(Path(site)),
        "dirty": False,
        "working_tree": False,
    }


def package_dir(bin_dir: Path) -> str:
    """Where that venv imports slurm_escalate from (run from /, so never from a checkout)."""
    return subprocess.run(
        [
            str(bin_dir / "python"),
            "-c",
            "import slurm_escalate, os; print(os.path.dirname(slurm_escalate.__file__))",
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd="/",
    ).stdout.strip()


def new_side(wait_s: float) -> dict[str, Any]:
    """The working tree as installed in /work/main/.venv (waits for ./dev.sh setup)."""
    exe = NEW_BIN / "sbatch_escalate"
    deadline = time.time() + wait_s
    while not (exe.exists() and (NEW_BIN / "slurm-escalate").exists()):
        if time.time() > deadline:
            raise SystemExit(f"{exe} does not exist after {wait_s:.0f}s: run ./dev.sh setup")
        log(f"waiting for {exe} (./dev.sh setup)")
        time.sleep(10)
    head = git("rev-parse", "HEAD")
    dirty = git("status", "--porcelain", "--untracked-files=no")
    site = package_dir(NEW_BIN)
    return {
        "name": "new",
        "commit": head,
        "bin": str(NEW_BIN),
        "package": site,
        "code": code_hash(Path(site)),
        "dirty": bool(dirty),
        "dirty_files": len(dirty.splitlines()),
        "working_tree": True,
    }


# ---------------------------------------------------------------------------- environment
def make_pybin(work: Path) -> Path:
    """A directory whose python3 is this interpreter: the fake's ``#!/usr/bin/env python3``
    must not go through a slow pyenv shim."""
    pybin = work / "pybin"
    pybin.mkdir(parents=True, exist_ok=True)
    link = pybin / "python3"
    if not link.exists():
        link.symlink_to(os.path.realpath(sys.executable))
    return pybin


def side_env(pybin: Path, home: Path, fake_dir: Path, scenario: dict[str, str]) -> dict[str, str]:
    drop = ("SLURM_", "FAKESLURM_", "SBATCH_", "SALLOC_", "SRUN_", "SQUEUE_", "SACCT_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = f"{FAKE}:{pybin}:/usr/local/bin:/usr/bin:/bin"
    env["SLURM_ESCALATE_HOME"] = str(home)
    env["FAKESLURM_DIR"] = str(fake_dir)
    env.update(scenario)
    return env


def write_job(workdir: Path) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "job.sh").write_text(JOB)
    (workdir / "job.sh").chmod(0o755)
    (workdir / "ladder.yaml").write_text(LADDER)


# ---------------------------------------------------------------------------- measuring
def read_proc(pid: int) -> dict[str, float]:
    """VmHWM/VmRSS (KiB), io counters, own CPU seconds; whatever can be read now."""
    out: dict[str, float] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmHWM:", "VmRSS:")):
                out[line.split(":")[0]] = int(line.split()[1])
    except OSError:
        pass
    try:
        for line in Path(f"/proc/{pid}/io").read_text().splitlines():
            key, _, value = line.partition(":")
            out[key] = int(value)
    except OSError:
        pass
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
        rest = text[text.rindex(")") + 2 :].split()
        tick = os.sysconf("SC_CLK_TCK")
        out["cpu_s"] = (int(rest[11]) + int(rest[12])) / tick
        out["cpu_children_s"] = (int(rest[13]) + int(rest[14])) / tick
    except (OSError, ValueError, IndexError):
        pass
    return out


def fake_calls(fake_dir: Path, since: float = 0.0, until: float = float("inf")) -> dict[str, Any]:
    """The fake's call log between two times: counts, its I/O, the polls."""
    calls: Counter[str] = Counter()
    wchar = write_bytes = cancelled = 0
    polls: list[int] = []
    try:
        lines = (fake_dir / "calls.log").read_text().splitlines()
    except FileNotFoundError:
        lines = []
    for line in lines:
        parts = line.split("\t")
        if len(parts) < 8 or not since <= float(parts[0]) <= until:
            continue
        calls[parts[1]] += 1
        wchar += int(parts[4]) + len(line.encode()) + 1  # + the log line written after reading
        write_bytes += int(parts[5])
        cancelled += int(parts[6])
        if parts[1] == "sacct" and "poll=1" in parts[7]:
            m = re.search(r"\bnew=(\d+)", parts[7])
            polls.append(int(m.group(1)) if m else 0)
    return {
        "calls": dict(calls),
        "wchar": wchar,
        "write_bytes": write_bytes,
        "cancelled_write_bytes": cancelled,
        "polls": polls,
    }


def tree_bytes(root: Path) -> tuple[int, dict[str, int]]:
    total, files = 0, {}
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            size = path.stat().st_size
            total += size
            files[str(path.relative_to(root))] = size
    return total, files


class OutputReader(threading.Thread):
    """Drains the monitor's stdout into a file, counting bytes."""

    def __init__(self, stream: Any, path: Path) -> None:
        super().__init__(daemon=True)
        self.stream, self.path, self.bytes = stream, path, 0

    def run(self) -> None:
        with open(self.path, "wb") as out:
            while chunk := self.stream.read1(1 << 16):
                self.bytes += len(chunk)
                out.write(chunk)


def run_monitor(
    argv: list[str], env: dict[str, str], cwd: Path, raw: Path, timeout: float
) -> dict[str, Any]:
    """Run the monitor to its end, sampling /proc every SAMPLE_S seconds."""
    raw.mkdir(parents=True, exist_ok=True)
    started = time.time()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    reader = OutputReader(proc.stdout, raw / "output.txt")
    reader.start()
    pid = proc.pid
    samples: list[dict[str, float]] = []
    flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
    killed = None
    while os.waitid(os.P_PID, pid, flags) is None:
        sample = read_proc(pid)
        sample["t"] = round(time.perf_counter() - t0, 3)
        samples.append(sample)
        if killed is None and time.perf_counter() - t0 > timeout:
            log(f"monitor still running after {timeout:.0f}s: interrupting it (SIGINT)")
            os.killpg(pid, signal.SIGINT)
            killed = time.perf_counter()
        elif killed is not None and time.perf_counter() - killed > 30:
            os.killpg(pid, signal.SIGKILL)
        time.sleep(SAMPLE_S)
    wall = time.perf_counter() - t0
    exited = time.time()
    final = read_proc(pid)  # a zombie keeps its CPU and I/O counters until reaped
    _, status, _usage = os.wait4(pid, 0)
    reader.join(timeout=30)
    proc.returncode = os.waitstatus_to_exitcode(status)
    last = samples[-1] if samples else {}
    io_keys = ("write_bytes", "wchar", "cancelled_write_bytes", "rchar")
    counters = {k: final.get(k, last.get(k, 0)) for k in io_keys}
    counters["io_from"] = "zombie" if "write_bytes" in final else "last sample"
    cpu = final.get("cpu_s", last.get("cpu_s", 0.0))
    (raw / "samples.json").write_text(json.dumps(samples))
    return {
        "argv": argv,
        "returncode": proc.returncode,
        "interrupted": killed is not None,
        "started": started,
        "exited": exited,
        "wall_s": wall,
        "cpu_s": cpu,
        "cpu_children_s": final.get("cpu_children_s", 0.0),
        "peak_rss_mb": max((s.get("VmHWM", 0) for s in samples), default=0) / 1024,
        "max_vmrss_mb": max((s.get("VmRSS", 0) for s in samples), default=0) / 1024,
        "samples": len(samples),
        "proc_io": counters,
        "stdout_bytes": reader.bytes,
        "output_tail": (raw / "output.txt").read_bytes()[-3000:].decode(errors="replace"),
    }


def big_run(
    side: dict[str, Any],
    tasks: int,
    base: Path,
    pybin: Path,
    scenario: dict[str, str],
    min_poll: float,
    max_poll: float,
    timeout: float,
) -> dict[str, Any]:
    name = side["name"]
    home, workdir, raw = base / name / "home", base / name / "work", base / name / "raw"
    fake_dir = SHM / f"{base.name}-{name}-fakeslurm"
    shutil.rmtree(fake_dir, ignore_errors=True)
    write_job(workdir)
    env = side_env(pybin, home, fake_dir, scenario)
    argv = [
        str(Path(side["bin"]) / "sbatch_escalate"),
        "--config",
        "ladder.yaml",
        "--min-poll",
        f"{min_poll:g}",
        "--max-poll",
        f"{max_poll:g}",
        "--array",
        f"0-{tasks - 1}",
        "job.sh",
    ]
    code_before = code_hash(Path(side["package"]))
    log(f"{name}: {tasks:,}-task chain, monitor in the foreground ({' '.join(argv[1:])})")
    run = run_monitor(argv, env, workdir, raw, timeout)
    run["code_before"], run["code_after"] = code_before, code_hash(Path(side["package"]))
    fake = fake_calls(fake_dir, run["started"] - 1, run["exited"] + 1)
    shutil.copyfile(fake_dir / "calls.log", raw / "fakeslurm-calls.log")
    own = {
        k: run["proc_io"][k] - fake[k] for k in ("write_bytes", "wchar", "cancelled_write_bytes")
    }
    state_bytes, files = tree_bytes(home)
    polls = fake["polls"]
    ended = sum(polls)
    run.update(
        {
            "home": str(home),
            "fake_dir": str(fake_dir),
            "fake": {k: v for k, v in fake.items() if k != "polls"},
            "own_io": own,
            "write_bytes": own["write_bytes"],
            "wchar": own["wchar"],
            "state_bytes": state_bytes,
            "state_files": dict(sorted(files.items(), key=lambda kv: -kv[1])[:12]),
            "monitor_log_bytes": sum(v for k, v in files.items() if k.endswith("monitor.log")),
            "sbatch_calls": fake["calls"].get("sbatch", 0),
            "sacct_calls": fake["calls"].get("sacct", 0),
            "polls": len(polls),
            "ended_seen": ended,
            "ended_per_poll_mean": ended / len(polls) if polls else None,
            "ended_per_poll_max": max(polls) if polls else None,
            "ended_per_poll_median": statistics.median(polls) if polls else None,
        }
    )
    if polls:
        run["cpu_ms_per_poll"] = run["cpu_s"] * 1000 / len(polls)
        run["write_bytes_per_poll"] = own["write_bytes"] / len(polls)
    if ended:
        run["cpu_ms_per_1000_ended"] = run["cpu_s"] * 1000 / (ended / 1000)
        run["write_bytes_per_1000_ended"] = own["write_bytes"] / (ended / 1000)
    log(
        f"{name}: exit {run['returncode']} in {run['wall_s']:.0f}s, CPU {run['cpu_s']:.1f}s, "
        f"peak RSS {run['peak_rss_mb']:.0f} MB, wrote {own['write_bytes'] / 1e6:.1f} MB "
        f"(wchar {own['wchar'] / 1e6:.1f} MB), {len(polls)} polls, "
        f"{run['sbatch_calls']} sbatch; state dir {state_bytes / 1e6:.1f} MB"
    )
    return run


# ---------------------------------------------------------------------------- CLI timings
def run_cli(
    side: dict[str, Any], env: dict[str, str], args: list[str], out: Path
) -> tuple[float, int]:
    t0 = time.perf_counter()
    with open(out, "wb") as f:
        rc = subprocess.run(
            [str(Path(side["bin"]) / "slurm-escalate"), *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=f,
            stderr=subprocess.STDOUT,
            cwd="/",
            check=False,
        ).returncode
    return time.perf_counter() - t0, rc


def small_chains(
    side: dict[str, Any], base: Path, pybin: Path, scenario: dict[str, str], count: int
) -> dict[str, Any]:
    """``count`` finished 10-task chains in the side's home, four monitors at a time."""
    name = side["name"]
    home, workdir = base / name / "home", base / name / "small"
    fake_dir = SHM / f"{base.name}-{name}-fakeslurm"
    write_job(workdir)
    env = side_env(
        pybin, home, fake_dir, {**scenario, "FAKESLURM_LAG": "0.2", "FAKESLURM_RUNTIME": "0.3"}
    )
    argv = [
        str(Path(side["bin"]) / "sbatch_escalate"),
        "--config",
        "ladder.yaml",
        "--min-poll",
        "0.5",
        "--max-poll",
        "1",
        "--array",
        "0-9",
        "job.sh",
    ]

    def one(_: int) -> int:
        return subprocess.run(
            argv,
            env=env,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        ).returncode

    t0 = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        codes = list(pool.map(one, range(count)))
    log(
        f"{name}: {count} small chains in {time.perf_counter() - t0:.0f}s, exit codes "
        f"{dict(Counter(codes))}"
    )
    return {"count": count, "exit_codes": dict(Counter(codes)), "seconds": time.perf_counter() - t0}


def chain_ids(side: dict[str, Any], env: dict[str, str], scratch: Path) -> list[str]:
    out = scratch / f"list-{side['name']}.json"
    _, rc = run_cli(side, env, ["list", "--json"], out)
    try:
        return [c["chain_id"] for c in json.loads(out.read_text())]
    except (ValueError, KeyError, TypeError):
        home = Path(env["SLURM_ESCALATE_HOME"]) / "chains"
        return sorted(p.name for p in home.iterdir()) if home.is_dir() else []


def verify(status_text: str, tasks: int) -> dict[str, Any]:
    """Every task COMPLETED; exactly i % 10 == 0 escalated once (level 1, 2 attempts)."""
    try:
        data = json.loads(status_text)
    except ValueError as e:
        return {"ok": False, "error": f"status --json is not JSON: {e}"}
    counts = data.get("counts", {})
    bad, escalated = [], 0
    for t in data.get("tasks", []):
        expect = (1, 2) if t["index"] % 10 == 0 else (0, 1)
        got = (t.get("level"), t.get("attempts"))
        escalated += got == (1, 2)
        if got != expect or t.get("state") != "COMPLETED":
            bad.append(
                {"index": t["index"], "state": t.get("state"), "level": got[0], "attempts": got[1]}
            )
    ok = (
        data.get("state") == "COMPLETED"
        and counts.get("COMPLETED") == tasks
        and len(data.get("tasks", [])) == tasks
        and not bad
    )
    return {
        "ok": ok,
        "state": data.get("state"),
        "counts": counts,
        "escalated_once": escalated,
        "unexpected": bad[:10],
        "unexpected_count": len(bad),
    }


def cli_timings(
    sides: list[dict[str, Any]],
    envs: dict[str, dict[str, str]],
    big: dict[str, str],
    scratch: Path,
    repeats: int,
) -> dict[str, dict[str, Any]]:
    """Wall time of each command, median of ``repeats``, the sides alternating."""
    commands = {
        "list": lambda c: ["list"],
        "status": lambda c: ["status", c],
        "status_json": lambda c: ["status", c, "--json"],
        "load_resume": lambda c: ["resume", c],
    }
    out: dict[str, dict[str, Any]] = {s["name"]: {} for s in sides}
    for key, args in commands.items():
        times: dict[str, list[float]] = {s["name"]: [] for s in sides}
        codes: dict[str, list[int]] = {s["name"]: [] for s in sides}
        for rep in range(repeats):
            order = sides if rep % 2 == 0 else list(reversed(sides))
            for side in order:
                name = side["name"]
                path = scratch / f"{key}-{name}.out"
                seconds, rc = run_cli(side, envs[name], args(big[name]), path)
                times[name].append(seconds)
                codes[name].append(rc)
        for side in sides:
            name = side["name"]
            path = scratch / f"{key}-{name}.out"
            out[name][key] = {
                "median_s": statistics.median(times[name]),
                "runs_s": [round(t, 3) for t in times[name]],
                "exit_codes": codes[name],
                "output_bytes": path.stat().st_size,
            }
            log(
                f"{name}: {key} median {out[name][key]['median_s']:.2f}s "
                f"(runs {out[name][key]['runs_s']}, exit {codes[name]})"
            )
    return out


def warm_up(side: dict[str, Any], base: Path, pybin: Path, scenario: dict[str, str]) -> None:
    """One tiny chain and every timed command, in a scratch home: bytecode caches are written
    here, not during the measured runs."""
    name = side["name"]
    home, workdir = base / "warmup" / name / "home", base / "warmup" / name / "work"
    fake_dir = SHM / f"{base.name}-warmup-{name}"
    write_job(workdir)
    env = side_env(
        pybin, home, fake_dir, {**scenario, "FAKESLURM_LAG": "0.2", "FAKESLURM_RUNTIME": "0.3"}
    )
    rc = subprocess.run(
        [
            str(Path(side["bin"]) / "sbatch_escalate"),
            "--config",
            "ladder.yaml",
            "--min-poll",
            "0.5",
            "--array",
            "0-2",
            "job.sh",
        ],
        env=env,
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=False,
    ).returncode
    ids = chain_ids(side, env, base / "warmup")
    for args in (
        ["list"],
        ["status", *ids[:1]],
        ["status", *ids[:1], "--json"],
        ["resume", *ids[:1]],
        ["report", *ids[:1], "--format", "json"],
    ):
        run_cli(side, env, args, base / "warmup" / "out.txt")
    shutil.rmtree(fake_dir, ignore_errors=True)
    log(f"{name}: warm-up chain exit {rc}")


def prev_persist_probe(
    side: dict[str, Any], home: Path, chain_id: str, scratch: Path, probe: str = PROBE
) -> Any:
    """A side's own cost of persisting once, on a copy of its home; median of 3.

    Previous release: ChainStore.save of the 100k chain (whole-file rewrite, whatever
    changed). New (NEW_PROBE): a poll's 1,000 task changes committed to the journal,
    plus the summary."""
    copy = scratch / "probe-home"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(home / "chains" / chain_id, copy / "chains" / chain_id)
    done = subprocess.run(
        [str(Path(side["bin"]) / "python"), "-c", probe, str(copy), chain_id],
        capture_output=True,
        text=True,
        check=False,
        cwd="/",
    )
    shutil.rmtree(copy, ignore_errors=True)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:] or ["failed"]}
    data = json.loads(done.stdout)
    runs = data["runs"]
    return {
        "apply_s": statistics.median(r.get("apply_s", 0.0) for r in runs),
        "cpu_s": statistics.median(r["cpu_s"] for r in runs),
        "write_bytes": statistics.median(r["write_bytes"] for r in runs),
        "wchar": statistics.median(r["wchar"] for r in runs),
        "state_bytes": data["state_bytes"],
    }


# ---------------------------------------------------------------------------- the report
def _ratio(prev: float | None, new: float | None) -> float | None:
    if prev in (None, 0) or new is None:
        return None
    return new / prev  # type: ignore[operator]


def _verdict(value: float | None, limit: float | None) -> str:
    if value is None or limit is None:
        return "-"
    return "met" if value <= limit else "missed"


def rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    runs, cli = results["runs"], results["cli"]
    p, n = runs.get("previous", {}), runs.get("new", {})
    cp, cn = cli.get("previous", {}), cli.get("new", {})
    tasks = results["scenario"]["tasks"]
    out: list[dict[str, Any]] = []

    def add(
        name: str,
        unit: str,
        prev: Any,
        new: Any,
        target: str = "",
        on: str = "",
        limit: float | None = None,
        note: str = "",
    ) -> None:
        ratio = _ratio(prev, new)
        checked = {"new": new, "ratio": ratio}.get(on)
        out.append(
            {
                "measurement": name,
                "unit": unit,
                "previous": prev,
                "new": new,
                "ratio": ratio,
                "target": target,
                "verdict": _verdict(checked, limit),
                "note": note,
            }
        )

    def mib(x: Any) -> Any:
        return None if x is None else x / 2**20

    def kib(x: Any) -> Any:
        return None if x is None else x / 2**10

    add(
        f"monitor peak RSS (VmHWM), {tasks:,} tasks",
        "MiB",
        p.get("peak_rss_mb"),
        n.get("peak_rss_mb"),
        "new ≤ 150 MB",
        "new",
        150.0,
    )
    add(
        "whole run: bytes written by the monitor (write_bytes: state + monitor.log)",
        "MiB",
        mib(p.get("write_bytes")),
        mib(n.get("write_bytes")),
        "new/previous ≤ 1/50",
        "ratio",
        0.02,
    )
    add(
        "whole run: wchar of the monitor (every write(), stdout included)",
        "MiB",
        mib(p.get("wchar")),
        mib(n.get("wchar")),
    )
    add(
        "whole run: monitor stdout (a pipe; not in write_bytes)",
        "MiB",
        mib(p.get("stdout_bytes")),
        mib(n.get("stdout_bytes")),
    )
    add(
        "monitor.log at the end",
        "MiB",
        mib(p.get("monitor_log_bytes")),
        mib(n.get("monitor_log_bytes")),
    )
    add(
        "state directory at the end (every file under SLURM_ESCALATE_HOME)",
        "MiB",
        mib(p.get("state_bytes")),
        mib(n.get("state_bytes")),
    )
    add("whole run: monitor CPU (its own utime + stime)", "s", p.get("cpu_s"), n.get("cpu_s"))
    add("whole run: wall time of the monitor", "s", p.get("wall_s"), n.get("wall_s"))
    add("polls (sacct calls naming jobs)", "", p.get("polls"), n.get("polls"))
    add("sbatch calls", "", p.get("sbatch_calls"), n.get("sbatch_calls"))
    add(
        "tasks seen ending per poll (mean)",
        "",
        p.get("ended_per_poll_mean"),
        n.get("ended_per_poll_mean"),
    )
    add(
        "ESTIMATE per poll: whole-run CPU ÷ polls (includes reading sacct, so an upper "
        "bound of persisting)",
        "ms",
        p.get("cpu_ms_per_poll"),
        n.get("cpu_ms_per_poll"),
        "persist ≤ 20 ms (poll with 1,000 ended)",
    )
    add(
        "ESTIMATE per poll: whole-run write_bytes ÷ polls",
        "KiB",
        kib(p.get("write_bytes_per_poll")),
        kib(n.get("write_bytes_per_poll")),
        "≤ 200 KB (poll with 1,000 ended)",
    )
    add(
        "ESTIMATE per 1,000 ended tasks: whole-run CPU ÷ (ended / 1000)",
        "ms",
        p.get("cpu_ms_per_1000_ended"),
        n.get("cpu_ms_per_1000_ended"),
    )
    add(
        "ESTIMATE per 1,000 ended tasks: whole-run write_bytes ÷ (ended / 1000)",
        "KiB",
        kib(p.get("write_bytes_per_1000_ended")),
        kib(n.get("write_bytes_per_1000_ended")),
    )
    probe = results.get("persist_probe", {})
    mine = results.get("persist_probe_new", {})
    if isinstance(probe, dict) and "cpu_s" in probe:
        ok = isinstance(mine, dict) and "cpu_s" in mine
        add(
            "DIRECT persist once: previous = ChainStore.save() of the finished chain (its "
            "whole-file rewrite); new = journal commit of a poll's 1,000 ended tasks plus the "
            "summary (median of 3)",
            "ms CPU",
            probe["cpu_s"] * 1000,
            mine["cpu_s"] * 1000 if ok else None,
            "≤ 20 ms",
            "new",
            20.0,
        )
        add(
            "DIRECT persist once: bytes written (wchar: what the process handed the kernel)",
            "KiB",
            kib(probe["wchar"]),
            kib(mine["wchar"]) if ok else None,
            "≤ 200 KB",
            "new",
            200 * 1000 / 1024,
        )
        if ok:
            add(
                "new only: applying those 1,000 task changes to the in-memory view "
                "(before persisting)",
                "ms CPU",
                None,
                mine["apply_s"] * 1000,
            )
    for key, label, limit, target in (
        ("load_resume", f"load: `resume` of the finished {tasks:,}-task chain", 1.0, "new ≤ 1 s"),
        ("list", f"`list` with {results['chains_listed']} chains", 0.3, "new ≤ 0.3 s"),
        ("status", f"`status` of the {tasks:,}-task chain", 0.5, "new ≤ 0.5 s"),
        ("status_json", f"`status --json` of the {tasks:,}-task chain", None, ""),
    ):
        add(
            label + " (process wall time, median of 3)",
            "s",
            cp.get(key, {}).get("median_s"),
            cn.get(key, {}).get("median_s"),
            target,
            "new" if limit is not None else "",
            limit,
        )
    return out


def fmt(x: Any) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        if x == 0:
            return "0"
        if abs(x) >= 100:
            return f"{x:,.0f}"
        if abs(x) >= 1:
            return f"{x:.2f}"
        return f"{x:.3g}"
    if isinstance(x, int):
        return f"{x:,}"
    return str(x)


def render(results: dict[str, Any]) -> str:
    sides = results["sides"]
    prev, new = sides["previous"], sides["new"]
    sc = results["scenario"]
    lines = [
        "# State cost: the previous release against the new code (issue 10)",
        "",
        f"- date: {results['date']}; command: `{results['command']}`; "
        f"duration {results['duration_s']:.0f} s",
        f"- previous: {prev['commit'][:12]} (own venv {prev['bin']}), code {prev['code']}",
        (
            f"- new: working tree at HEAD {new['commit'][:12]}"
            + (
                f" **with uncommitted changes** ({new.get('dirty_files', '?')} changed tracked "
                "files)"
                if new.get("dirty")
                else " (clean)"
            )
            if new.get("working_tree")
            else f"- new: commit {new['commit'][:12]} (not the working tree)"
        )
        + f", installed in {new['bin']}, code {new['code']}",
        f"- machine: {results['machine']['nproc']} CPUs ({results['machine']['cpu']}), "
        f"Python {results['machine']['python']}, {results['machine']['platform']}; "
        f"state directory on {results['machine']['state_fs']}",
        f"- scenario: {sc['tasks']:,} tasks, `--min-poll {sc['min_poll']:g} --max-poll "
        f"{sc['max_poll']:g}`, fake Slurm clock `{sc['clock']}` ("
        + (
            f"{sc['rate']:g} tasks end per second"
            if sc["clock"] == "wall"
            else f"{sc['per_poll']} tasks end per poll"
        )
        + f"), every {sc['oom_every']}th task OUT_OF_MEMORY at level 0 (ladder 100M → 500M); "
        f"{results['chains_listed']} chains for `list`",
        "",
        "| measurement | previous | new | new/previous | target | verdict |",
        "| --- | ---: | ---: | ---: | --- | --- |",
    ]
    for r in results["rows"]:
        unit = f" ({r['unit']})" if r["unit"] else ""
        note = f" — {r['note']}" if r["note"] else ""
        lines.append(
            f"| {r['measurement']}{unit}{note} | {fmt(r['previous'])} | {fmt(r['new'])} | "
            f"{fmt(r['ratio'])} | {r['target']} | {r['verdict']} |"
        )
    lines += ["", "Correctness of the big chain (`status --json`):", ""]
    for name in SIDES:
        v = results["verify"].get(name, {})
        lines.append(
            f"- {name}: {'OK' if v.get('ok') else 'NOT OK'} — state {v.get('state')}, counts "
            f"{v.get('counts')}, escalated once {v.get('escalated_once')}, unexpected "
            f"{v.get('unexpected_count')}" + (f" ({v['error']})" if v.get("error") else "")
        )
    lines += [
        "",
        "How: each side's monitor is a real process (`sbatch_escalate` in the foreground, stdout "
        "a pipe) with benchmarks/fakeslurm first on PATH; /proc/PID/status, io and stat are "
        f"read every {SAMPLE_S} s. write_bytes counts pages dirtied on disk (the state "
        "directory is under /tmp), so it includes monitor.log; the fake's own I/O (the kernel "
        "adds a reaped child's to its parent's counters) is subtracted. The per-poll rows "
        "divide whole-run totals: for a whole-file store the cost per poll hardly depends on "
        "how many tasks ended, for an append-only one it follows the tasks that ended, hence "
        "both divisions.",
    ]
    if results["notes"]:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in results["notes"]]
    return "\n".join(lines) + "\n"


def machine(state_dir: Path) -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    fs = "?"
    try:
        df = subprocess.run(["df", "-T", str(state_dir)], capture_output=True, text=True)
        fs = df.stdout.splitlines()[1].split()[1]
    except (OSError, IndexError):
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "state_fs": fs,
    }


# ---------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 10,000 tasks")
    ap.add_argument("--tasks", type=int, help="tasks of the big chain (default 100,000)")
    ap.add_argument("--prev", default="5944ff8", help="the previous release (a commit)")
    ap.add_argument(
        "--clock",
        choices=("wall", "poll"),
        default="wall",
        help="fake Slurm: tasks end per second (wall) or per poll",
    )
    ap.add_argument("--rate", type=float, default=1000.0, help="tasks ending per second (wall)")
    ap.add_argument("--per-poll", type=int, default=1000, help="tasks ending per poll (poll)")
    ap.add_argument("--min-poll", type=float, default=1.0)
    ap.add_argument("--max-poll", type=float, default=2.0)
    ap.add_argument("--small-chains", type=int, default=SMALL_CHAINS)
    ap.add_argument("--repeats", type=int, default=CLI_REPEATS, help="runs per CLI timing")
    ap.add_argument("--timeout", type=float, default=3600.0, help="per big run, seconds")
    ap.add_argument(
        "--wait-setup",
        type=float,
        default=900.0,
        help="seconds to wait for /work/main/.venv (./dev.sh setup)",
    )
    ap.add_argument("--new-bin", help="bin directory of the new side (default .venv/bin)")
    ap.add_argument(
        "--new-commit",
        help="measure this commit (built like --prev) as the new side instead of .venv",
    )
    ap.add_argument(
        "--out",
        default=str(RESULTS / "state_cost"),
        help="results path without suffix (.json and .md are written)",
    )
    ap.add_argument(
        "--render",
        action="store_true",
        help="measure nothing: rewrite the .md (and the rows) from the .json",
    )
    args = ap.parse_args()
    if args.render:
        path = Path(args.out).with_suffix(".json")
        results = json.loads(path.read_text())
        results["rows"] = rows(results)
        path.write_text(json.dumps(results, indent=2, default=str) + "\n")
        Path(args.out).with_suffix(".md").write_text(render(results))
        log(f"rewrote {Path(args.out).with_suffix('.md')} from {path}")
        return
    tasks = args.tasks or (10_000 if args.quick else 100_000)
    t_start = time.time()
    command = " ".join(["python benchmarks/state_cost.py", *sys.argv[1:]])

    global NEW_BIN
    if args.new_bin:
        NEW_BIN = Path(args.new_bin)
    prev = build_release(args.prev, "previous")
    new = build_release(args.new_commit, "new") if args.new_commit else new_side(args.wait_setup)
    sides = [prev, new]
    notes: list[str] = []
    if prev["code"] == new["code"]:
        notes.append(
            f"both sides ran the same code (hash {new['code']}): the ratios measure "
            "run-to-run noise, not a change"
        )

    for old in sorted(RUNS_ROOT.glob("run-*")):  # the previous run's material (can be GBs)
        shutil.rmtree(old, ignore_errors=True)
    for old in SHM.glob("run-*-fakeslurm"):
        shutil.rmtree(old, ignore_errors=True)
    base = RUNS_ROOT / f"run-{time.strftime('%Y%m%d-%H%M%S')}"
    base.mkdir(parents=True)
    pybin = make_pybin(base)
    scenario = {
        "FAKESLURM_CLOCK": args.clock,
        "FAKESLURM_RATE": f"{args.rate:g}",
        "FAKESLURM_PER_POLL": str(args.per_poll),
        "FAKESLURM_LAG": "1",
        "FAKESLURM_RUNTIME": "2",
        "FAKESLURM_OOM_EVERY": "10",
    }
    log(f"work directory {base}; fake Slurm state under {SHM}")
    for side in sides:
        warm_up(side, base, pybin, scenario)

    runs: dict[str, Any] = {}
    for side in sides:  # previous first, then new: the same scenario, one after the other
        runs[side["name"]] = big_run(
            side, tasks, base, pybin, scenario, args.min_poll, args.max_poll, args.timeout
        )
        if runs[side["name"]]["code_before"] != runs[side["name"]]["code_after"]:
            notes.append(f"{side['name']}: the package's source changed during the big run")

    envs, big, verify_results, smalls = {}, {}, {}, {}
    for side in sides:
        name = side["name"]
        home = base / name / "home"
        fake_dir = SHM / f"{base.name}-{name}-fakeslurm"
        envs[name] = side_env(pybin, home, fake_dir, scenario)
        ids = chain_ids(side, envs[name], base)
        if len(ids) != 1:
            notes.append(f"{name}: expected 1 chain after the big run, found {len(ids)}")
        big[name] = ids[0] if ids else "none"
        smalls[name] = small_chains(side, base, pybin, scenario, args.small_chains)
    listed = {s["name"]: len(chain_ids(s, envs[s["name"]], base)) for s in sides}
    for name, n in listed.items():
        if n != args.small_chains + 1:
            notes.append(f"{name}: {n} chains listed, expected {args.small_chains + 1}")
    cli = cli_timings(sides, envs, big, base, args.repeats)
    for side in sides:
        name = side["name"]
        text = (base / f"status_json-{name}.out").read_text(errors="replace")
        verify_results[name] = verify(text, tasks)
        log(
            f"{name}: big chain check {'OK' if verify_results[name]['ok'] else 'NOT OK'}: "
            f"{verify_results[name].get('counts')}, escalated once "
            f"{verify_results[name].get('escalated_once')}"
        )
        if not verify_results[name]["ok"]:
            notes.append(f"{name}: the big chain did not end as the scenario says")
    probe = prev_persist_probe(prev, base / "previous" / "home", big["previous"], base)
    log(f"previous: ChainStore.save() of the big chain: {probe}")
    probe_new = prev_persist_probe(new, base / "new" / "home", big["new"], base, NEW_PROBE)
    log(f"new: journal commit of 1,000 ended tasks of the big chain: {probe_new}")

    for name, run in runs.items():
        if run["returncode"] != 0:
            notes.append(
                f"{name}: the monitor exited {run['returncode']}"
                + (" (interrupted at the timeout)" if run["interrupted"] else "")
            )
        if run["proc_io"].get("io_from") != "zombie":
            notes.append(f"{name}: I/O counters from the last 0.2 s sample, not the exit")
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "command": command,
        "machine": machine(base),
        "sides": {s["name"]: s for s in sides},
        "scenario": {
            "tasks": tasks,
            "clock": args.clock,
            "rate": args.rate,
            "per_poll": args.per_poll,
            "min_poll": args.min_poll,
            "max_poll": args.max_poll,
            "oom_every": 10,
            "ladder": LADDER,
        },
        "runs": {
            k: {kk: vv for kk, vv in v.items() if kk != "output_tail"} for k, v in runs.items()
        },
        "output_tails": {k: v["output_tail"] for k, v in runs.items()},
        "small_chains": smalls,
        "chains_listed": min(listed.values()) if listed else 0,
        "chains_listed_by_side": listed,
        "big_chain": big,
        "cli": cli,
        "verify": verify_results,
        "persist_probe": probe,
        "persist_probe_new": probe_new,
        "work_dir": str(base),
        "notes": notes,
    }
    results["rows"] = rows(results)
    results["duration_s"] = time.time() - t_start
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    md = render(results)
    out.with_suffix(".md").write_text(md)
    for side in sides:  # the fake's state lives in memory (tmpfs)
        shutil.rmtree(SHM / f"{base.name}-{side['name']}-fakeslurm", ignore_errors=True)
    print(md)
    log(f"done in {results['duration_s']:.0f}s: {out.with_suffix('.md')} and .json")


if __name__ == "__main__":
    main()
