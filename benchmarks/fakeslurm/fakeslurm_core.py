"""A fake Slurm for benchmarks/state_cost.py: sbatch, sacct, scontrol, squeue, scancel, sinfo.

Each command in this directory is a three-line Python script that calls ``main`` here. The
fake's whole state is a directory named by ``FAKESLURM_DIR`` (put it on tmpfs, /dev/shm, so
its own writes are not counted as block I/O):

    state.json   next job id, and per job: array indices (as a spec), level, mem, time,
                 partition, name, comment, submit time, the times of the polls that saw it
    calls.log    one tab-separated line per command: time, name, pid, level, the command's own
                 /proc/self/io (wchar, write_bytes, cancelled_write_bytes) and a summary

The kernel adds a reaped child's I/O to its parent's /proc/PID/io, so the benchmark subtracts
what every fake command reports here (plus the length of the log line it writes afterwards)
from the monitor's counters to get the monitor's own.

Scenario (deterministic, environment variables of the monitor, inherited by the commands):

* ``FAKESLURM_CLOCK=poll`` (default): a job's tasks move forward per sacct call that names
  it. At the job's k-th such call, the tasks at positions < k*PER_POLL have started and
  those < (k-1)*PER_POLL have ended (``FAKESLURM_PER_POLL``, default 1000): every poll sees
  PER_POLL tasks of the big array end, whatever the monitor's speed.
* ``FAKESLURM_CLOCK=wall``: the task at position p starts at submit + LAG + p/RATE and ends
  RUNTIME seconds later (``FAKESLURM_RATE`` tasks per second, default 1000;
  ``FAKESLURM_LAG`` 1 s; ``FAKESLURM_RUNTIME`` 2 s).
* Outcome: at level 0 (``SLURM_ESCALATE_LEVEL`` in sbatch's environment; without it, 0) a task
  whose index i has ``i % FAKESLURM_OOM_EVERY == 0`` (default 10; 0: never) ends
  OUT_OF_MEMORY (ExitCode 0:125, its .batch step too, MaxRSS at the asked memory); every
  other attempt ends COMPLETED.

Output follows Slurm 22.05's ``sacct --parsable2``: a job row plus ``.batch`` and ``.extern``
step rows per started task, one ``<job>_[<indices>]`` PENDING row for the tasks not started
yet, in the order of the fields asked with ``--format`` (unknown fields are empty).
"""

from __future__ import annotations

import fcntl
import json
import operator
import os
import re
import sys
import time
from pathlib import Path

ALL_FIELDS = (
    "JobID",
    "JobIDRaw",
    "State",
    "ExitCode",
    "MaxRSS",
    "Elapsed",
    "Timelimit",
    "Start",
    "End",
    "NodeList",
    "Partition",
    "ReqMem",
    "JobName",
    "Comment",
    "Submit",
    "User",
    "WorkDir",
    "SubmitLine",
)
_FIELD_INDEX = {name.lower(): i for i, name in enumerate(ALL_FIELDS)}

PARTITIONS = {  # name: (MaxTime, RealMemory of its nodes in MB, default?)
    "small": ("1-00:00:00", 64000, True),
    "big": ("2-00:00:00", 256000, False),
}
NODES = [f"n{i}" for i in range(1, 7)]
CONFIG = {
    "MaxArraySize": "200001",
    "MaxJobCount": "1000000",
    "SchedulerParameters": "(null)",
    "MinJobAge": "300",
    "KillWait": "30 sec",
    "OverTimeLimit": "0 min",
}

# sbatch options that take no value (everything else without '=' takes the next token)
_FLAGS = {
    "--parsable",
    "--exclusive",
    "--requeue",
    "--no-requeue",
    "--hold",
    "--wait",
    "--test-only",
    "--verbose",
    "--quiet",
    "--overcommit",
    "--oversubscribe",
    "--contiguous",
    "--spread-job",
    "--use-min-nodes",
    "--ignore-pbs",
    "--no-kill",
    "--get-user-env",
    "--help",
    "--usage",
    "--version",
    "-H",
    "-k",
    "-O",
    "-Q",
    "-s",
    "-v",
    "-V",
    "-W",
    "-h",
}
_SHORT = {
    "-a": "array",
    "-p": "partition",
    "-t": "time",
    "-J": "job-name",
    "-o": "output",
    "-e": "error",
    "-c": "cpus-per-task",
}


# --------------------------------------------------------------------------- helpers
def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip() else default


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    return float(raw) if raw.strip() else default


def expand(spec: str) -> list[int]:
    """``0-9,20,30-90:10%5`` -> sorted unique indices."""
    body = spec.split("%", 1)[0]
    out: set[int] = set()
    for part in body.split(","):
        part = part.strip()
        if not part:
            continue
        rng, _, step = part.partition(":")
        lo, dash, hi = rng.partition("-")
        if dash:
            out.update(range(int(lo), int(hi) + 1, int(step) if step else 1))
        else:
            out.add(int(lo))
    return sorted(out)


def ranges(values: list[int]) -> str:
    """Sorted indices as Slurm prints a bitmap: ``0-4,7,9-12`` (no steps)."""
    parts = []
    start = prev = values[0]
    for v in values[1:]:
        if v == prev + 1:
            prev = v
            continue
        parts.append(f"{start}-{prev}" if prev > start else str(start))
        start = prev = v
    parts.append(f"{start}-{prev}" if prev > start else str(start))
    return ",".join(parts)


def mem_mb(text: str | None) -> int | None:
    if not text:
        return None
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]?)B?", text.strip().upper())
    if not m:
        return None
    factor = {"K": 1 / 1024, "": 1, "M": 1, "G": 1024, "T": 1024 * 1024}[m.group(2)]
    return int(float(m.group(1)) * factor)


def time_s(text: str | None) -> int | None:
    """sbatch --time: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS."""
    if not text or text.upper() in ("UNLIMITED", "INFINITE"):
        return None
    days = 0
    if "-" in text:
        d, text = text.split("-", 1)
        days = int(d)
        parts = [int(x) for x in text.split(":")]
        while len(parts) < 3:
            parts.append(0)
        h, m, s = parts
    else:
        parts = [int(x) for x in text.split(":")]
        if len(parts) == 1:
            h, m, s = 0, parts[0], 0
        elif len(parts) == 2:
            h, m, s = 0, parts[0], parts[1]
        else:
            h, m, s = parts
    return days * 86400 + h * 3600 + m * 60 + s


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "UNLIMITED"
    s = max(0, int(seconds))
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return f"{d}-{h:02d}:{m:02d}:{s:02d}" if d else f"{h:02d}:{m:02d}:{s:02d}"


_ISO: dict[int, str] = {}


def iso(t: float) -> str:
    key = int(t)
    text = _ISO.get(key)
    if text is None:
        text = _ISO[key] = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(key))
    return text


# --------------------------------------------------------------------------- state
class State:
    """The fake's state directory, locked for the whole command."""

    def __init__(self) -> None:
        raw = os.environ.get("FAKESLURM_DIR")
        if not raw:
            sys.stderr.write("fakeslurm: FAKESLURM_DIR is not set\n")
            raise SystemExit(1)
        self.dir = Path(raw)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        path = self.dir / "state.json"
        self.data = json.loads(path.read_text()) if path.exists() else {"next_id": 1000, "jobs": {}}
        self.dirty = False

    def save(self) -> None:
        if not self.dirty:
            return
        tmp = self.dir / f".state.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(self.data, separators=(",", ":")))
        os.replace(tmp, self.dir / "state.json")


def log_call(name: str, level: str, summary: str) -> None:
    """Append this command's line to calls.log, with its own I/O counters (read last)."""
    sys.stdout.flush()
    sys.stderr.flush()
    io = {}
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            key, _, value = line.partition(":")
            io[key] = int(value)
    except OSError:
        pass
    directory = os.environ.get("FAKESLURM_DIR")
    if not directory:
        return
    line = (
        f"{time.time():.3f}\t{name}\t{os.getpid()}\t{level}\t{io.get('wchar', 0)}\t"
        f"{io.get('write_bytes', 0)}\t{io.get('cancelled_write_bytes', 0)}\t{summary}"
    )
    # the log line's own length goes into wchar too; the reader adds it back (len + 1)
    os.makedirs(directory, exist_ok=True)
    fd = os.open(Path(directory) / "calls.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- sbatch
def parse_sbatch(argv: list[str]) -> tuple[dict[str, str], str | None]:
    opts: dict[str, str] = {}
    script = None
    i = 0
    while i < len(argv):
        tok = argv[i]
        if tok == "--":
            script = argv[i + 1] if i + 1 < len(argv) else None
            break
        if not tok.startswith("-") or tok == "-":
            script = tok
            break
        if tok.startswith("--"):
            name, eq, value = tok[2:].partition("=")
            if eq:
                opts[name] = value
            elif tok in _FLAGS:
                opts[name] = ""
            else:
                opts[name] = argv[i + 1] if i + 1 < len(argv) else ""
                i += 1
        else:
            key = tok[:2]
            if key in _FLAGS:
                opts[key] = ""
            else:
                value = tok[2:] if len(tok) > 2 else (argv[i + 1] if i + 1 < len(argv) else "")
                if len(tok) == 2:
                    i += 1
                opts[_SHORT.get(key, key)] = value
        i += 1
    return opts, script


def script_directives(path: str | None) -> dict[str, str]:
    if path is None:
        return {}
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return {}
    found: dict[str, str] = {}
    for line in text.splitlines():
        if not line.startswith("#SBATCH"):
            if line.strip() and not line.startswith("#"):
                break
            continue
        opts, _ = parse_sbatch(line.split()[1:])
        for k, v in opts.items():
            found.setdefault(k, v)
    return found


def sbatch(argv: list[str]) -> int:
    opts, script = parse_sbatch(argv)
    if script is None and "wrap" not in opts:
        sys.stderr.write("sbatch: error: no batch script\n")
        return 1
    if script is not None and not Path(script).is_file():
        sys.stderr.write(f"sbatch: error: Unable to open file {script}\n")
        return 1
    directives = script_directives(script)
    merged = {**directives, **opts}
    indices = expand(merged["array"]) if merged.get("array") else [None]
    level = os.environ.get("SLURM_ESCALATE_LEVEL", "0")
    part = merged.get("partition") or next(p for p, v in PARTITIONS.items() if v[2])
    for name in part.split(","):
        if name not in PARTITIONS:
            sys.stderr.write(
                "sbatch: error: invalid partition specified: " + name + "\n"
                "sbatch: error: Batch job submission failed: Invalid partition name specified\n"
            )
            return 1
    st = State()
    job_id = st.data["next_id"]
    st.data["next_id"] = job_id + len(indices) + 1  # Slurm uses one id per split task
    real = [i for i in indices if i is not None]
    st.data["jobs"][str(job_id)] = {
        "spec": ranges(real) if real else None,
        "level": int(level) if level.isdigit() else 0,
        "mem": merged.get("mem", ""),
        "time_s": time_s(merged.get("time")),
        "partition": part.split(",")[0],
        "name": merged.get("job-name") or (Path(script).name if script else "wrap"),
        "comment": merged.get("comment", ""),
        "submit": time.time(),
        "polls": [],
        "cancelled": None,
    }
    st.dirty = True
    st.save()
    sys.stdout.write(f"{job_id}\n" if "parsable" in opts else f"Submitted batch job {job_id}\n")
    log_call("sbatch", level, f"job={job_id} tasks={len(indices)} mem={merged.get('mem', '')}")
    return 0


# --------------------------------------------------------------------------- sacct
class Scenario:
    def __init__(self) -> None:
        self.clock = os.environ.get("FAKESLURM_CLOCK", "poll")
        self.per_poll = max(1, env_int("FAKESLURM_PER_POLL", 1000))
        self.rate = env_float("FAKESLURM_RATE", 1000.0)
        self.lag = env_float("FAKESLURM_LAG", 1.0)
        self.runtime = env_float("FAKESLURM_RUNTIME", 2.0)
        self.oom_every = env_int("FAKESLURM_OOM_EVERY", 10)

    def progress(self, job: dict, now: float) -> tuple[int, int]:  # type: ignore[type-arg]
        """(started, ended): how many of the job's tasks, by position, have started/ended."""
        if self.clock == "wall":
            t = now - job["submit"] - self.lag
            started = 0 if t < 0 else int(t * self.rate) + 1
            t -= self.runtime
            ended = 0 if t < 0 else int(t * self.rate) + 1
            return started, ended
        k = len(job["polls"])
        return k * self.per_poll, max(0, k - 1) * self.per_poll

    def times(self, job: dict, p: int) -> tuple[float, float]:  # type: ignore[type-arg]
        """(start, end) wall times of the task at position p."""
        if self.clock == "wall":
            start = job["submit"] + self.lag + p / self.rate
            return start, start + self.runtime
        g = p // self.per_poll
        polls = job["polls"]
        start = max(job["submit"], polls[g] - 0.5)
        end = max(start, polls[g + 1] - 0.5) if g + 1 < len(polls) else start
        return start, end

    def fails(self, job: dict, index: int | None) -> bool:  # type: ignore[type-arg]
        return job["level"] == 0 and self.oom_every > 0 and (index or 0) % self.oom_every == 0


def _arg_value(argv: list[str], *names: str) -> str | None:
    for i, tok in enumerate(argv):
        for name in names:
            if tok.startswith(name + "="):
                return tok.split("=", 1)[1]
            if tok == name and i + 1 < len(argv):
                return argv[i + 1]
    return None


def sacct(argv: list[str]) -> int:
    fmt = _arg_value(argv, "--format", "-o") or "JobID,JobName,Partition,State,ExitCode"
    fields = [f.split("%", 1)[0].strip() for f in fmt.split(",") if f.strip()]
    order = [_FIELD_INDEX.get(f.lower(), len(ALL_FIELDS)) for f in fields]
    pick = operator.itemgetter(*order) if len(order) > 1 else (lambda row: (row[order[0]],))
    parsable = "--parsable2" in argv or "-P" in argv
    sep = "|" if parsable else " "
    allocations = "--allocations" in argv or "-X" in argv
    wanted = _arg_value(argv, "--jobs", "-j")
    st = State()
    now = time.time()
    scen = Scenario()
    if wanted is None:
        ids = sorted(st.data["jobs"], key=int)
    else:
        ids = [j.split("_", 1)[0].split(".", 1)[0] for j in wanted.split(",") if j]
        ids = [j for j in dict.fromkeys(ids) if j in st.data["jobs"]]
        if scen.clock == "poll":  # a poll that names a job moves it forward
            for j in ids:
                st.data["jobs"][j]["polls"].append(now)
            st.dirty = bool(ids)
    out: list[str] = []
    ended_total = newly = 0
    for j in ids:
        job = st.data["jobs"][j]
        ended = emit_job(out, j, job, now, scen, pick, sep, allocations)
        ended_total += ended
        if wanted is not None:  # what this poll shows ended for the first time
            newly += ended - job.get("seen", 0)
            job["seen"] = ended
            st.dirty = True
    st.save()
    text = "\n".join(out)
    if text:
        sys.stdout.write(text + "\n")
    log_call(
        "sacct",
        "-",
        f"jobs={len(ids)} lines={len(out)} ended={ended_total} new={newly} "
        f"poll={int(wanted is not None)}",
    )
    return 0


def emit_job(
    out: list[str],
    j: str,
    job: dict,  # type: ignore[type-arg]
    now: float,
    scen: Scenario,
    pick,  # type: ignore[no-untyped-def]
    sep: str,
    allocations: bool,
) -> int:
    indices: list[int | None] = expand(job["spec"]) if job["spec"] else [None]
    started, ended = scen.progress(job, now)
    cancelled = job["cancelled"]
    if cancelled is not None:  # frozen at the moment of scancel
        before = [t for t in job["polls"] if t <= cancelled]
        started, ended = scen.progress({**job, "polls": before}, cancelled)
    limit = duration(job["time_s"])
    mem = job["mem"] or "1000M"
    mem_k = (mem_mb(mem) or 1000) * 1024
    part, name, comment = job["partition"], job["name"], job["comment"]
    submit = iso(job["submit"])
    base = int(j)
    n_ended = 0
    for p, index in enumerate(indices):
        if p >= started:
            break
        raw = str(base + p) if index is not None else j
        tid = f"{j}_{index}" if index is not None else j
        start, end = scen.times(job, p)
        node = NODES[p % len(NODES)]
        is_done = p < ended
        if cancelled is not None and not is_done:
            state, steps_state = f"CANCELLED by {os.getuid()}", "CANCELLED"
            code, rss, e_text, elapsed = "0:15", "", iso(cancelled), cancelled - start
        elif is_done:
            n_ended += 1
            elapsed, e_text = end - start, iso(end)
            if scen.fails(job, index):
                state = steps_state = "OUT_OF_MEMORY"
                code, rss = "0:125", f"{mem_k - 1024}K"
            else:
                state = steps_state = "COMPLETED"
                code = "0:0"
                rss = f"{min(mem_k // 2, 20000 + (((index or 0) * 7919) % 50000))}K"
        else:
            state = steps_state = "RUNNING"
            code, rss, e_text, elapsed = "0:0", "", "Unknown", now - start
        s_text, el = iso(start), duration(elapsed)
        row = (
            tid,
            raw,
            state,
            code,
            "",
            el,
            limit,
            s_text,
            e_text,
            node,
            part,
            mem,
            name,
            comment,
            submit,
            "bench",
            "/tmp",
            "sbatch",
            "",
        )
        out.append(sep.join(pick(row)))
        if allocations:
            continue
        b_rss = rss if state != "RUNNING" else ""
        row = (
            f"{tid}.batch",
            f"{raw}.batch",
            steps_state,
            code,
            b_rss,
            el,
            "",
            s_text,
            e_text,
            node,
            "",
            "",
            "batch",
            "",
            submit,
            "",
            "",
            "",
            "",
        )
        out.append(sep.join(pick(row)))
        ext_state = "COMPLETED" if is_done else steps_state
        row = (
            f"{tid}.extern",
            f"{raw}.extern",
            ext_state,
            "0:0",
            "1032K" if is_done else "",
            el,
            "",
            s_text,
            e_text,
            node,
            "",
            "",
            "extern",
            "",
            submit,
            "",
            "",
            "",
            "",
        )
        out.append(sep.join(pick(row)))
    if started < len(indices):  # the rest is one pending array record
        rest = [i for i in indices[started:] if i is not None]
        if rest:
            tid = f"{j}_[{ranges(rest)}]"
            state = "PENDING" if cancelled is None else f"CANCELLED by {os.getuid()}"
        else:
            tid, state = j, "PENDING" if cancelled is None else f"CANCELLED by {os.getuid()}"
        row = (
            tid,
            j,
            state,
            "0:0",
            "",
            "00:00:00",
            limit,
            "Unknown",
            "Unknown",
            "None assigned",
            part,
            mem,
            name,
            comment,
            submit,
            "bench",
            "/tmp",
            "sbatch",
            "",
        )
        out.append(sep.join(pick(row)))
    return n_ended


# --------------------------------------------------------------------------- others
def squeue(argv: list[str]) -> int:
    st = State()
    now = time.time()
    scen = Scenario()
    fmt = _arg_value(argv, "--format", "-o") or "%F|%k"
    lines = []
    for j, job in sorted(st.data["jobs"].items(), key=lambda kv: int(kv[0])):
        n = len(expand(job["spec"])) if job["spec"] else 1
        _, ended = scen.progress(job, now)
        if ended >= n or job["cancelled"] is not None:
            continue
        lines.append(fmt.replace("%F", j).replace("%k", job["comment"]).replace("%i", j))
    if lines:
        sys.stdout.write("\n".join(lines) + "\n")
    log_call("squeue", "-", f"lines={len(lines)}")
    return 0


def scancel(argv: list[str]) -> int:
    st = State()
    now = time.time()
    for tok in argv:
        if tok.startswith("-"):
            continue
        j = tok.split("_", 1)[0]
        if j in st.data["jobs"] and st.data["jobs"][j]["cancelled"] is None:
            st.data["jobs"][j]["cancelled"] = now
            st.dirty = True
    st.save()
    log_call("scancel", "-", " ".join(argv)[:200])
    return 0


def scontrol(argv: list[str]) -> int:
    words = [a for a in argv if not a.startswith("-")]
    if words[:2] == ["show", "config"]:
        lines = ["Configuration data as of 2026-12-01T00:00:00"]
        lines += [f"{k:<24}= {v}" for k, v in CONFIG.items()]
        sys.stdout.write("\n".join(lines) + "\n")
    elif words[:2] == ["show", "partition"]:
        for name, (max_time, _mem, default) in PARTITIONS.items():
            sys.stdout.write(
                f"PartitionName={name} AllowGroups=ALL AllowAccounts=ALL AllowQos=ALL "
                f"Default={'YES' if default else 'NO'} DefaultTime=NONE Hidden=NO "
                f"MaxNodes=UNLIMITED MaxTime={max_time} MinNodes=0 Nodes=n[1-6] "
                f"State=UP TotalCPUs=24 TotalNodes=6\n"
            )
    elif words[:2] == ["show", "node"]:
        for node in NODES:
            mem = max(v[1] for v in PARTITIONS.values())
            sys.stdout.write(
                f"NodeName={node} Arch=x86_64 CPUTot=4 RealMemory={mem} "
                f"Partitions={','.join(PARTITIONS)} State=IDLE\n"
            )
    else:
        sys.stderr.write(f"scontrol: fake does not know: {' '.join(argv)}\n")
        log_call("scontrol", "-", " ".join(argv)[:200])
        return 1
    log_call("scontrol", "-", " ".join(words)[:200])
    return 0


def sinfo(argv: list[str]) -> int:
    sys.stdout.write("PARTITION AVAIL  TIMELIMIT  NODES  STATE NODELIST\n")
    for name, (max_time, _mem, default) in PARTITIONS.items():
        sys.stdout.write(f"{name}{'*' if default else ''} up {max_time} 6 idle n[1-6]\n")
    log_call("sinfo", "-", "")
    return 0


COMMANDS = {
    "sbatch": sbatch,
    "sacct": sacct,
    "squeue": squeue,
    "scancel": scancel,
    "scontrol": scontrol,
    "sinfo": sinfo,
}


def main(name: str, argv: list[str]) -> int:
    return COMMANDS[name](argv)
