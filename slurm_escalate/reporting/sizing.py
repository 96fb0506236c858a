"""The first attempt sized from history: the lowest level that covers 95% of the tasks' needs.

One rule, three callers: ``slurm-escalate suggest SCRIPT``, ``sbatch_escalate
--start-level auto`` (both over every earlier chain of the same script, see
service/suggest.py) and the report's right-sizing advice (over one chain, see
advice.py). Pure: attempts and levels in, a typed :class:`Sizing` out.

What a task needed, per resource, is read from its attempts:

- a COMPLETED attempt measured it: MaxRSS and Elapsed (MaxRSS 0 or None is
  "not sampled", never a figure: Slurm 22.05 prints 0 for OOM-killed steps, and
  a short step may end between two samples);
- an OUT_OF_MEMORY attempt proves the task needed *more* than that attempt's
  memory (ReqMem): a lower bound;
- a TIMEOUT attempt proves it needed *more* than that attempt's time limit.

A task's figure is the largest of these; at a tie the lower bound wins (it says
"more than"). Other outcomes (FAILED, CANCELLED, NODE_FAIL, ...) tell nothing
about size. Over the tasks, each resource's 95th percentile (nearest rank) gets
headroom on top: 20% of memory (sacct samples MaxRSS, so peaks are
under-reported; the same 20% the ``skip`` escalation uses) and 10% of time. A
level covers them when its memory and time reach that (exceed it, for a lower
bound); a level whose memory or time is unknown is not judged on it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from slurm_escalate.core.models import SKIP_HEADROOM, Level
from slurm_escalate.core.units import format_mem, format_time
from slurm_escalate.reporting import fmt
from slurm_escalate.reporting.model import (
    COMPLETED,
    OOM,
    AttemptRow,
    Figure,
    Need,
    Percentile,
    Sizing,
    Verdict,
)

MEM_HEADROOM = SKIP_HEADROOM
TIME_HEADROOM = 0.1
PERCENTILE = 95
TIMEOUT = "TIMEOUT"  # DEADLINE is not a time limit the task ran into
CHAINS_SHOWN = 3  # chain ids named in the one-line evidence; the rest are counted


def rank_of(count: int, pct: float = PERCENTILE) -> int:
    """The 0-based position of the nearest-rank percentile in a sorted sample of ``count``."""
    return max(0, math.ceil(pct / 100 * count) - 1)


def percentile(values: Sequence[float], pct: float = PERCENTILE) -> float | None:
    """The nearest-rank percentile: the smallest value with ``pct``% of the sample at or below."""
    return sorted(values)[rank_of(len(values), pct)] if values else None


def _rank(f: Figure) -> tuple[float, bool]:
    return (f.value, f.lower_bound)  # a bound ranks above a measurement of the same value


def _largest(figures: Iterable[Figure]) -> Figure | None:
    return max(figures, key=_rank, default=None)


def task_need(attempts: Iterable[AttemptRow]) -> Need | None:
    """What one task needed, from all its attempts; None when they tell nothing."""
    mem: list[Figure] = []
    time: list[Figure] = []
    for a in attempts:
        if a.outcome == COMPLETED:
            if a.max_rss_kb:  # 0 or None: not sampled
                mem.append(Figure(a.max_rss_kb / 1024))
            if a.elapsed_s is not None:
                time.append(Figure(float(a.elapsed_s)))
        elif a.outcome == OOM:
            have = a.req_mem_mb or (a.max_rss_kb / 1024 if a.max_rss_kb else None)
            if have:
                mem.append(Figure(float(have), lower_bound=True))
        elif a.outcome == TIMEOUT:
            limit = a.timelimit_s or a.elapsed_s
            if limit:
                time.append(Figure(float(limit), lower_bound=True))
    need = Need(_largest(mem), _largest(time))
    return None if need.mem_mb is None and need.time_s is None else need


def _percentile(figures: Sequence[Figure], headroom: float) -> Percentile | None:
    if not figures:
        return None
    at = sorted(figures, key=_rank)[rank_of(len(figures))]
    bounds = sum(1 for f in figures if f.lower_bound)
    return Percentile(at, headroom, len(figures), bounds)


def covers(level: Level, mem: Percentile | None, time: Percentile | None) -> bool:
    """The level's memory and time reach the percentiles plus headroom (unknown: not judged)."""
    if mem is not None and level.mem_mb is not None:
        if not mem.figure.covered_by(level.mem_mb, mem.headroom):
            return False
    if time is not None and level.time_s is not None:
        if not time.figure.covered_by(level.time_s, time.headroom):
            return False
    return True


def size(needs: Sequence[Need], levels: Mapping[int, Level]) -> Sizing:
    """The lowest of ``levels`` that covers the 95th percentile of ``needs``.

    Without evidence: level 0. When no level covers it: the top level, and
    ``new_level``, a level to add above the top that would.
    """
    mem = _percentile([n.mem_mb for n in needs if n.mem_mb is not None], MEM_HEADROOM)
    time = _percentile([n.time_s for n in needs if n.time_s is not None], TIME_HEADROOM)
    if mem is None and time is None:
        first = min(levels, default=0)
        return Sizing(Verdict.NO_EVIDENCE, first, 0, None, None, levels.get(first))
    tasks = len(needs)
    for lv in sorted(levels):
        if covers(levels[lv], mem, time):
            return Sizing(Verdict.FITS, lv, tasks, mem, time, levels[lv])
    top = max(levels, default=0)
    above = _level_above(levels.get(top, Level()), mem, time)
    return Sizing(Verdict.NONE_FITS, top, tasks, mem, time, levels.get(top), above)


def _level_above(top: Level, mem: Percentile | None, time: Percentile | None) -> Level:
    """The top level's partition with memory and time that cover the percentiles.

    Memory in steps of 100M, time in whole minutes (Slurm's unit), never below the top's;
    only what the top sets (what it leaves to the job was not judged).
    """
    mem_mb = top.mem_mb
    if mem is not None and mem_mb is not None:
        mem_mb = max(mem_mb, _just_enough(mem, 100))
    time_s = top.time_s
    if time is not None and time_s is not None:
        time_s = max(time_s, _just_enough(time, 60))
    return Level(partition=top.partition, mem_mb=mem_mb, time_s=time_s)


def _just_enough(p: Percentile, unit: int) -> int:
    """The smallest multiple of ``unit`` that covers ``p``."""
    n = math.ceil(p.need / unit - 1e-9) * unit
    return n + unit if not p.figure.covered_by(n, p.headroom) else n


# ------------------------------------------------------------------ text


def level_text(level: Level | None) -> str:
    """A level's memory, time and partition, those it sets: 700M, 2m, week."""
    if level is None:
        return "resources unknown"
    parts = []
    if level.mem_mb is not None:
        parts.append(fmt.req(level.mem_mb))
    if level.time_s is not None:
        parts.append(fmt.duration(level.time_s))
    if level.partition:
        parts.append(level.partition)
    return ", ".join(parts) or "the job's own resources"


def ladder_line(level: Level) -> str:
    """The level as a ladder YAML list item, ready to paste under ``levels:``."""
    keys = []
    if level.partition:
        keys.append(f"partition: {level.partition}")
    if level.mem_mb is not None:
        keys.append(f"mem: {format_mem(level.mem_mb)}")
    if level.time_s is not None:
        keys.append(f'time: "{format_time(level.time_s)}"')
    return "- {" + ", ".join(keys) + "}"


def bound_mem(mb: float) -> str:
    """A lower bound of memory: a request (400M, 3000M) exactly as it was made."""
    return fmt.req(int(mb)) if float(mb).is_integer() else fmt.mem(mb)


def _mem_text(p: Percentile) -> str:
    head = round(p.headroom * 100)
    if p.figure.lower_bound:
        return (
            f"p95 memory over {bound_mem(p.figure.value)} (OUT_OF_MEMORY there) "
            f"+ {head}% = over {fmt.mem(p.need)}"
        )
    return f"p95 MaxRSS {fmt.mem(p.figure.value, up=True)} + {head}% = {fmt.mem(p.need, up=True)}"


def _time_text(p: Percentile) -> str:
    head = round(p.headroom * 100)
    if p.figure.lower_bound:
        return (
            f"p95 time over {fmt.duration(p.figure.value)} (TIMEOUT there) "
            f"+ {head}% = over {fmt.duration(p.need)}"
        )
    return (
        f"p95 Elapsed {fmt.duration(p.figure.value, up=True)} + {head}% = "
        f"{fmt.duration(p.need, up=True)}"
    )


def figures_text(s: Sizing) -> str:
    """ "p95 MaxRSS 412M + 20% = 495M, p95 Elapsed 25s + 10% = 28s"."""
    parts = []
    if s.mem is not None:
        parts.append(_mem_text(s.mem))
    if s.time is not None:
        parts.append(_time_text(s.time))
    return ", ".join(parts)


def verdict_text(s: Sizing) -> str:
    """Which level, and why that one."""
    if s.verdict is Verdict.NO_EVIDENCE:
        return f"nothing to size from: level {s.start_level}"
    if s.verdict is Verdict.FITS:
        return f"level {s.start_level} ({level_text(s.level)}) is the lowest that covers them"
    assert s.new_level is not None
    return (
        f"no level covers them, not even the top, level {s.start_level} "
        f"({level_text(s.level)}): start there and add a level above it: "
        f"{ladder_line(s.new_level)}"
    )


def chains_text(chains: Sequence[str]) -> str:
    shown = ", ".join(chains[:CHAINS_SHOWN])
    more = f" and {len(chains) - CHAINS_SHOWN} more" if len(chains) > CHAINS_SHOWN else ""
    return f"{shown}{more}"


def evidence(s: Sizing, chains: Sequence[str]) -> str:
    """One line: which chains, how many tasks, the figures, the level and why."""
    n = len(chains)
    if not n:
        return f"no earlier chain of this script: level {s.start_level}"
    of = f"{n} earlier chain{'s' if n != 1 else ''} of this script ({chains_text(chains)})"
    if s.verdict is Verdict.NO_EVIDENCE:
        return (
            f"{of}, but no task of them completed, ran out of memory or timed out: "
            f"level {s.start_level}"
        )
    tasks = f"{s.tasks} task{'s' if s.tasks != 1 else ''}"
    return f"{tasks} of {of}: {figures_text(s)}; {verdict_text(s)}"


def percentile_json(p: Percentile | None, unit: str) -> dict[str, Any] | None:
    if p is None:
        return None
    return {
        f"p95_{unit}": round(p.figure.value, 1),
        "lower_bound": p.figure.lower_bound,
        "tasks": p.tasks,
        "lower_bounds": p.lower_bounds,
        "headroom": p.headroom,
        f"need_{unit}": round(p.need, 1),
    }


def level_json(level: Level | None) -> dict[str, Any] | None:
    if level is None:
        return None
    return {"partition": level.partition, "mem_mb": level.mem_mb, "time_s": level.time_s}


def sizing_json(s: Sizing) -> dict[str, Any]:
    """The sizing's figures, as ``suggest --json`` and the report's JSON show them."""
    return {
        "verdict": s.verdict.value,
        "start_level": s.start_level,
        "option": s.option,
        "tasks": s.tasks,
        "memory": percentile_json(s.mem, "mb"),
        "time": percentile_json(s.time, "s"),
        "level": level_json(s.level),
        "new_level": None if s.new_level is None else ladder_line(s.new_level),
    }


# ------------------------------------------------------------------ suggest


def suggestion_lines(
    s: Sizing,
    chains: Sequence[str],
    ladder: str,
    levels: Mapping[int, Level],
    state_dir: str,
) -> list[str]:
    """What ``slurm-escalate suggest`` prints: the option first, then the evidence."""
    top = " (the top: no level covers them)" if s.verdict is Verdict.NONE_FITS else ""
    lines = [f"start at level {s.start_level}{top}: {s.option}"]
    if not chains:
        lines.append(f"  no earlier chain of this script under {state_dir}")
    else:
        n = len(chains)
        lines.append(f"  earlier chains of this script: {n} ({', '.join(chains)})")
    lines.append(f"  ladder: {ladder}")
    for lv, res in sorted(levels.items()):
        mark = "  <-" if lv == s.start_level else ""
        lines.append(f"    level {lv}: {level_text(res)}{mark}")
    if s.verdict is Verdict.NO_EVIDENCE:
        if chains:
            lines.append("  no task of them completed, ran out of memory or timed out")
        lines.append(f"  why: {verdict_text(s)}")
        return lines
    lines.append(f"  tasks: {s.tasks} that completed, ran out of memory or timed out")
    if s.mem is not None:
        lines.append(f"  memory: {_mem_text(s.mem)} ({_sample(s.mem, 'OUT_OF_MEMORY')})")
    if s.time is not None:
        lines.append(f"  time: {_time_text(s.time)} ({_sample(s.time, 'TIMEOUT')})")
    lines.append(f"  why: {verdict_text(s)}")
    return lines


def _sample(p: Percentile, failure: str) -> str:
    tasks = f"{p.tasks} task{'s' if p.tasks != 1 else ''}"
    if not p.lower_bounds:
        return f"{tasks}, all measured"
    return f"{tasks}, {p.lower_bounds} of them lower bounds from {failure}"


def suggestion_json(
    s: Sizing,
    chains: Sequence[str],
    ladder: str,
    levels: Mapping[int, Level],
    script: str,
    line: str,
) -> dict[str, Any]:
    """``suggest --json``: the sizing (as in the report's advice) with its context."""
    return {
        "script": script,
        "chains": list(chains),
        "ladder": ladder,
        "levels": [{"level": lv, **(level_json(res) or {})} for lv, res in sorted(levels.items())],
        **sizing_json(s),
        "evidence": line,
    }
