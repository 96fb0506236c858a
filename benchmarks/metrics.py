"""The pure part of the benchmark harness: sacct rows and call logs in, numbers and tables out.

Nothing here touches Slurm, the clock or the disk, so every rule is tested from
recorded sacct lines (tests/unit/test_bench_metrics.py).

Definitions (all times from sacct, which has 1-second resolution):

* **attempt**: one allocation row of ``sacct -X`` (a job, or one task of an array).
* **makespan**: the last attempt's End minus the first attempt's Submit.
* **lower bound**: for each task, the sum of its attempts' Elapsed; the maximum over tasks.
  No schedule can finish sooner than its longest chain of attempts run back to back.
* **capacity bound**: all attempts' core-seconds divided by the cluster's cores; the
  makespan cannot beat that either. The larger of the two bounds is the tighter one.
* **failed core-seconds**: Elapsed x AllocCPUS summed over attempts that did not end COMPLETED.
* **detection latency**: for each resubmission, the next attempt's Submit minus the
  previous attempt's End (the job's end in sacct to the tool's next sbatch); for the
  end of the chain, the tool's exit minus the last End.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

# sacct -X -P -n --format=<SACCT_FORMAT>, with SLURM_TIME_FORMAT=standard
SACCT_FORMAT = "JobID,JobName,Submit,Start,End,Elapsed,State,AllocCPUS"
_PENDING_ARRAY = re.compile(r"^\d+_\[")  # 123_[4-9]: tasks not split out of the array yet


@dataclass(frozen=True)
class Attempt:
    job_id: str  # "123" or "123_4"
    task: int | None  # the array index; None for a plain job
    name: str
    submit: float  # epoch seconds
    start: float | None
    end: float | None  # None while it runs
    elapsed_s: int
    state: str  # first word: "CANCELLED by 0" -> "CANCELLED"
    cpus: int

    @property
    def core_s(self) -> int:
        return self.elapsed_s * self.cpus


def parse_time(text: str) -> float | None:
    """sacct's standard time (local, no zone) to epoch seconds; None for Unknown/None."""
    text = text.strip()
    if not text or text in ("Unknown", "None"):
        return None
    return datetime.fromisoformat(text).timestamp()


def parse_elapsed(text: str) -> int:
    """sacct's Elapsed: ``[D-]HH:MM:SS``, ``MM:SS`` or ``SS`` (with optional fraction)."""
    text = text.strip()
    days = 0
    if "-" in text:
        d, text = text.split("-", 1)
        days = int(d)
    seconds = 0.0
    for part in text.split(":"):
        seconds = seconds * 60 + float(part)
    return int(days * 86400 + seconds)


def parse_sacct_x(text: str) -> list[Attempt]:
    """Allocation rows of ``sacct -X -P -n --format=SACCT_FORMAT``.

    Step rows (``123.batch``) and an array's pending placeholder (``123_[4-9]``) are
    not attempts and are dropped.
    """
    attempts = []
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = line.split("|")
        if len(fields) != 8:
            raise ValueError(f"expected 8 fields ({SACCT_FORMAT}), got {len(fields)}: {line!r}")
        job_id, name, submit, start, end, elapsed, state, cpus = fields
        if "." in job_id or _PENDING_ARRAY.match(job_id):
            continue
        submitted = parse_time(submit)
        if submitted is None:
            raise ValueError(f"no Submit time: {line!r}")
        task = int(job_id.split("_", 1)[1]) if "_" in job_id else None
        attempts.append(
            Attempt(
                job_id=job_id,
                task=task,
                name=name,
                submit=submitted,
                start=parse_time(start),
                end=parse_time(end),
                elapsed_s=parse_elapsed(elapsed),
                state=state.split()[0] if state.strip() else "UNKNOWN",
                cpus=int(cpus) if cpus.strip() else 0,
            )
        )
    return attempts


def by_task(attempts: Iterable[Attempt]) -> dict[int | None, list[Attempt]]:
    """Each task's attempts in submission order."""
    tasks: dict[int | None, list[Attempt]] = defaultdict(list)
    for a in attempts:
        tasks[a.task].append(a)
    for chain in tasks.values():
        chain.sort(key=lambda a: (a.submit, a.job_id))
    return dict(tasks)


def makespan(attempts: Sequence[Attempt]) -> float:
    ends = [a.end for a in attempts if a.end is not None]
    if not attempts or len(ends) != len(attempts):
        raise ValueError("makespan needs every attempt to have ended")
    return max(ends) - min(a.submit for a in attempts)


def lower_bound(attempts: Sequence[Attempt]) -> int:
    """Max over tasks of the sum of their attempts' Elapsed."""
    return max(sum(a.elapsed_s for a in chain) for chain in by_task(attempts).values())


def slurm_span(attempts: Sequence[Attempt]) -> float:
    """Max over tasks of the sum of their attempts' End - Submit: what Slurm itself took
    (queue and run) for each attempt. Makespan minus this is the tool's own gaps: the
    time from an attempt's end to the next one's submission."""
    return max(
        sum((a.end or a.submit) - a.submit for a in chain) for chain in by_task(attempts).values()
    )


def capacity_bound(attempts: Sequence[Attempt], cores: int) -> float:
    return sum(a.core_s for a in attempts) / cores


def failed_core_seconds(attempts: Sequence[Attempt]) -> int:
    return sum(a.core_s for a in attempts if a.state != "COMPLETED")


def failed_core_seconds_by_state(attempts: Sequence[Attempt]) -> dict[str, int]:
    out: Counter[str] = Counter()
    for a in attempts:
        if a.state != "COMPLETED":
            out[a.state] += a.core_s
    return dict(sorted(out.items()))


def resubmit_latencies(attempts: Sequence[Attempt]) -> list[float]:
    """For every attempt that has a successor: the successor's Submit minus its End."""
    out = []
    for chain in by_task(attempts).values():
        for prev, nxt in zip(chain, chain[1:], strict=False):
            if prev.end is not None:
                out.append(nxt.submit - prev.end)
    return out


def final_states(attempts: Sequence[Attempt]) -> dict[str, int]:
    """How the tasks ended: the state of each task's last attempt, counted."""
    return dict(sorted(Counter(chain[-1].state for chain in by_task(attempts).values()).items()))


def attempts_per_task(attempts: Sequence[Attempt]) -> dict[int, int]:
    """{number of attempts: number of tasks}."""
    return dict(sorted(Counter(len(c) for c in by_task(attempts).values()).items()))


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def summarize(
    attempts: Sequence[Attempt], *, cores: int, tool_exit: float | None = None
) -> dict[str, object]:
    """Every per-run number the tables use, from one run's attempts."""
    span = makespan(attempts)
    bound = lower_bound(attempts)
    cap = capacity_bound(attempts, cores)
    latencies = resubmit_latencies(attempts)
    end_latency = None
    if tool_exit is not None:
        end_latency = tool_exit - max(a.end for a in attempts if a.end is not None)
    detect = latencies + ([end_latency] if end_latency is not None else [])
    return {
        "attempts": len(attempts),
        "tasks": len(by_task(attempts)),
        "makespan_s": round(span, 1),
        "slurm_span_s": round(slurm_span(attempts), 1),
        "makespan_over_slurm_span": round(span / slurm_span(attempts), 3)
        if slurm_span(attempts)
        else None,
        "lower_bound_s": bound,
        "makespan_over_lower_bound": round(span / bound, 3) if bound else None,
        "capacity_bound_s": round(cap, 1),
        "makespan_over_best_bound": round(span / max(bound, cap), 3) if bound or cap else None,
        "failed_core_s": failed_core_seconds(attempts),
        "failed_core_s_by_state": failed_core_seconds_by_state(attempts),
        "total_core_s": sum(a.core_s for a in attempts),
        "resubmit_latencies_s": [round(x, 1) for x in latencies],
        "end_latency_s": round(end_latency, 2) if end_latency is not None else None,
        "detection_latency_median_s": _round(median(detect)),
        "detection_latency_max_s": _round(max(detect) if detect else None),
        "final_states": final_states(attempts),
        "attempts_per_task": {str(k): v for k, v in attempts_per_task(attempts).items()},
    }


def _round(x: float | None, n: int = 1) -> float | None:
    return None if x is None else round(x, n)


# ------------------------------------------------------------------ Slurm call logs


@dataclass(frozen=True)
class Call:
    """One line of a wrapper's log: ``epoch<TAB>level<TAB>attempt<TAB>command args...``."""

    at: float
    kind: str
    argv: tuple[str, ...]
    level: str  # SLURM_ESCALATE_LEVEL in the caller's environment, "-" if unset
    attempt: str


def call_kind(argv: Sequence[str]) -> str:
    """``sacct``, ``sbatch``, ``scontrol show job``, ``scontrol show config``, ..."""
    name = argv[0].rsplit("/", 1)[-1]
    if name != "scontrol":
        return name
    words = [a for a in argv[1:] if not a.startswith("-")]
    if len(words) >= 2 and words[0] == "show":
        kind = {"jobs": "job", "partitions": "partition", "nodes": "node"}.get(words[1], words[1])
        return f"scontrol show {kind}"
    return "scontrol " + (words[0] if words else "")


def parse_call_log(text: str) -> list[Call]:
    calls = []
    for line in text.splitlines():
        if not line.strip():
            continue
        at, level, attempt, command = line.split("\t", 3)
        argv = tuple(command.split(" "))
        calls.append(Call(float(at), call_kind(argv), argv, level, attempt))
    calls.sort(key=lambda c: c.at)
    return calls


def count_calls(calls: Iterable[Call]) -> dict[str, int]:
    return dict(sorted(Counter(c.kind for c in calls).items()))


def _job_list(argv: Sequence[str]) -> list[str]:
    for i, arg in enumerate(argv):
        if arg.startswith("--jobs="):
            return arg.split("=", 1)[1].split(",")
        if arg in ("-j", "--jobs") and i + 1 < len(argv):
            return argv[i + 1].split(",")
    return []


def per_task_calls(calls: Iterable[Call]) -> int:
    """Calls aimed at one array task (``--jobs=123_4``, ``scontrol show job 123_4``)."""
    n = 0
    for c in calls:
        if c.kind == "sacct" and any("_" in j for j in _job_list(c.argv)):
            n += 1
        elif c.kind == "scontrol show job" and any("_" in a for a in c.argv[3:]):
            n += 1
    return n


def poll_budget(calls: Sequence[Call], polls: int) -> dict[str, object]:
    """Our monitor's calls per poll. A poll starts with its sacct call, so the calls
    from one sacct to the next belong to one poll; what came before the first sacct
    is the set-up (scontrol) and the first submission.
    """
    segments: list[list[Call]] = [[]]
    for c in calls:
        if c.kind == "sacct":
            segments.append([])
        segments[-1].append(c)
    setup, loop = segments[0], segments[1:]
    sbatch_per_level = [Counter(c.level for c in seg if c.kind == "sbatch") for seg in loop]
    sbatch_per_group = [
        Counter((c.level, c.attempt) for c in seg if c.kind == "sbatch") for seg in loop
    ]
    in_loop = Counter(c.kind for seg in loop for c in seg)
    sacct = in_loop.get("sacct", 0)
    return {
        "polls": polls,
        "setup_calls": count_calls(setup),
        "loop_calls": dict(sorted(in_loop.items())),
        "sacct_per_poll": round(sacct / polls, 3) if polls else None,
        "max_sbatch_per_level_per_poll": max(
            (max(c.values()) for c in sbatch_per_level if c), default=0
        ),
        "max_sbatch_per_level_attempt_per_poll": max(
            (max(c.values()) for c in sbatch_per_group if c), default=0
        ),
        "scontrol_show_job_in_loop": in_loop.get("scontrol show job", 0),
        "scontrol_in_loop": sum(v for k, v in in_loop.items() if k.startswith("scontrol")),
        "per_task_calls": per_task_calls(calls),
    }


# ---------------------------------------------------------------------- rendering


def fmt(x: object, unit: str = "") -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        text = f"{x:.2f}" if abs(x) < 10 else f"{x:.1f}" if abs(x) < 100 else f"{x:.0f}"
    else:
        text = str(x)
    return f"{text} {unit}".strip()


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 3)


def verdict(value: float | None, op: str, target: float) -> str:
    if value is None:
        return "not measured"
    ok = value <= target if op == "<=" else value < target
    return "met" if ok else "**missed**"


def md_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |"]
    out.append("| " + " | ".join("---" if i == 0 else "---:" for i in range(len(header))) + " |")
    for row in rows:
        out.append("| " + " | ".join(fmt(x) if not isinstance(x, str) else x for x in row) + " |")
    return out


def calls_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items()) if counts else "none"


def render_markdown(results: dict) -> str:  # type: ignore[type-arg]
    """The combined table: targets first, then each scenario's numbers side by side."""
    lines = [
        "# Benchmarks",
        "",
        f"Machine: {results['machine']}  ",
        f"Date: {results['date']}  ",
        f"Commit: {results['commit']}  ",
        f"Command: `{results['command']}`",
        "",
        "Every ratio compares numbers measured in the same run, side by side. Times come "
        "from sacct, which has 1-second resolution.",
        "",
    ]
    targets = results.get("targets", [])
    if targets:
        lines += ["## Targets", ""]
        lines += md_table(
            ["target", "measured", "limit", "verdict"],
            [
                (t["name"], fmt(t["value"]), f"{t['op']} {t['limit']}", t["verdict"])
                for t in targets
            ],
        )
        lines.append("")
    if results.get("statement"):
        lines += [results["statement"], ""]
    ck = results.get("checkpoint")
    if ck:
        lines += _render_checkpoint(ck)
    mx = results.get("mixed")
    if mx:
        lines += _render_mixed(mx)
    budget = results.get("budget")
    if budget:
        lines += _render_budget(budget)
    scale = results.get("scale")
    if scale:
        lines += _render_scale(scale)
    notes = results.get("notes", [])
    if notes:
        lines += ["## Notes", ""] + [f"- {note}" for note in notes]
    return "\n".join(lines).rstrip() + "\n"


def _ran(section: dict) -> str:  # type: ignore[type-arg]
    return f"Ran {section.get('date', '?')} at commit {section.get('commit', '?')}.  "


def _render_checkpoint(ck: dict) -> list[str]:  # type: ignore[type-arg]
    tools = ck["tools"]
    names = list(tools)
    lines = [
        "## a. Checkpoint-resume (the slurm-longrun use case)",
        "",
        _ran(ck),
        ck["description"],
        "",
    ]
    rows: list[list[object]] = []

    def row(label: str, key: str, unit: str = "") -> None:
        vals = [tools[n].get(key) for n in names]
        r = ratio(vals[0], vals[1]) if len(vals) == 2 else None
        rows.append([label, *[fmt(v, unit) for v in vals], fmt(r)])

    row("makespan (first Submit to last End)", "makespan_s", "s")
    row("time to result (tool start to tool exit)", "wall_s", "s")
    row("attempts", "attempts")
    row("detection latency, median", "detection_latency_median_s", "s")
    row("detection latency, max", "detection_latency_max_s", "s")
    row("Slurm commands per run", "slurm_calls_total")
    row("monitor CPU (own process)", "cpu_self_s", "s")
    row("monitor CPU (with the Slurm commands it ran)", "cpu_total_s", "s")
    row("peak RSS (wait4 ru_maxrss)", "maxrss_mb", "MB")
    runs = tools[names[0]].get("runs", 1)
    rows.append(
        [
            f"Slurm commands by type ({runs} runs together)",
            *[calls_text(tools[n]["slurm_calls"]) for n in names],
            "",
        ]
    )
    rows.append(
        [
            "detection latencies (each resubmit, then the exit)",
            *[", ".join(fmt(x, "s") for x in tools[n]["detection_latencies_s"]) for n in names],
            "",
        ]
    )
    last = f"ratio {names[0]} / {names[1]}" if len(names) == 2 else "ratio"
    lines += md_table(["", *names, last], rows)
    lines.append("")
    pairs = ck.get("pairs", [])
    if pairs and len(names) == 2:
        a, b = names
        prow = []
        for i, p in enumerate(pairs, 1):
            prow.append(
                [
                    str(i),
                    fmt(p[a]["makespan_s"], "s"),
                    fmt(p[b]["makespan_s"], "s"),
                    fmt(ratio(p[a]["makespan_s"], p[b]["makespan_s"])),
                    fmt(p[a]["wall_s"], "s"),
                    fmt(p[b]["wall_s"], "s"),
                    fmt(p[a]["slurm_calls_total"]),
                    fmt(p[b]["slurm_calls_total"]),
                    ", ".join(fmt(x, "s") for x in p[a]["detection_latencies_s"]),
                    ", ".join(fmt(x, "s") for x in p[b]["detection_latencies_s"]),
                ]
            )
        lines += md_table(
            [
                "pair",
                f"makespan {a}",
                f"makespan {b}",
                "ratio",
                f"to result {a}",
                f"to result {b}",
                f"commands {a}",
                f"commands {b}",
                f"detections {a}",
                f"detections {b}",
            ],
            prow,
        )
        lines.append("")
    return lines


def _render_mixed(mx: dict) -> list[str]:  # type: ignore[type-arg]
    modes = mx["modes"]
    names = list(modes)
    lines = ["## b. Mixed array", "", _ran(mx), mx["description"], ""]
    keys = [
        ("makespan (first Submit to last End)", "makespan_s", "s"),
        ("lower bound (longest task chain)", "lower_bound_s", "s"),
        ("makespan / lower bound", "makespan_over_lower_bound", ""),
        ("capacity bound (core-s / cores)", "capacity_bound_s", "s"),
        ("makespan / max(bounds)", "makespan_over_best_bound", ""),
        ("failed core-seconds", "failed_core_s", ""),
        ("total core-seconds", "total_core_s", ""),
        ("attempts", "attempts", ""),
        ("detection latency, median", "detection_latency_median_s", "s"),
        ("wall time of the tool", "wall_s", "s"),
        ("monitor CPU (own process)", "cpu_self_s", "s"),
        ("peak RSS (wait4 ru_maxrss)", "maxrss_mb", "MB"),
        ("polls", "polls", ""),
        ("sacct calls per poll", "sacct_per_poll", ""),
        ("max sbatch per level per poll", "max_sbatch_per_level_per_poll", ""),
        ("scontrol show job calls", "scontrol_show_job_in_loop", ""),
        ("per-task Slurm calls", "per_task_calls", ""),
    ]
    rows: list[list[object]] = []
    for label, key, unit in keys:
        rows.append([label, *[fmt(modes[n].get(key), unit) for n in names]])
    rows.append(
        [
            "failed core-s by state",
            *[
                ", ".join(f"{k} {v}" for k, v in modes[n]["failed_core_s_by_state"].items())
                for n in names
            ],
        ]
    )
    rows.append(
        [
            "how tasks ended",
            *[", ".join(f"{k} {v}" for k, v in modes[n]["final_states"].items()) for n in names],
        ]
    )
    rows.append(["Slurm commands by type", *[calls_text(modes[n]["slurm_calls"]) for n in names]])
    lines += md_table(["", *names], rows)
    lines.append("")
    ratios = mx.get("ratios", {})
    if ratios:
        lines += md_table(["ratio (same run)", "value"], [(k, fmt(v)) for k, v in ratios.items()])
        lines.append("")
    return lines


def _render_budget(b: dict) -> list[str]:  # type: ignore[type-arg]
    lines = [
        "## Load budget: a 10,000-task chain at the default settings",
        "",
        _ran(b),
        b["description"],
        "",
    ]
    rows = [
        [
            r["phase"],
            fmt(r["hours"]),
            fmt(r["polls"]),
            calls_text(r["calls"]),
            fmt(r["sacct_per_hour"]),
            fmt(r["sbatch_per_hour"]),
            fmt(r["max_sbatch_per_poll"]),
            fmt(r.get("monitor_cpu_s"), "s"),
        ]
        for r in b["phases"]
    ]
    lines += md_table(
        [
            "phase",
            "simulated hours",
            "polls",
            "Slurm calls",
            "sacct / hour",
            "sbatch / hour",
            "max sbatch in one poll",
            "monitor CPU (journal written)",
        ],
        rows,
    )
    lines.append("")
    return lines


def _render_scale(s: dict) -> list[str]:  # type: ignore[type-arg]
    lines = ["## c. Scale without a cluster (benchmarks/scale.py)", "", _ran(s), ""]
    rows = [
        [r["name"], fmt(r["value"], r["unit"]), f"< {r['target']:g} {r['unit']}", fmt(r["ratio"])]
        for r in s["rows"]
    ]
    lines += md_table(["measurement", "result", "target", "ratio to target"], rows)
    lines.append("")
    return lines
