"""The ladder YAML: loading, validation, and the resources of each level.

Every problem raises :class:`ConfigError` with a single line that names the file,
the level and the key, because the user fixes these by hand in an editor and a
traceback or a vague "invalid config" would send them hunting.

YAML 1.1 (what PyYAML implements) reads an unquoted ``1:00:00`` as the base-60
integer 3600, so ``time: 1:00:00`` would silently become 3600 *minutes*. The
loader here keeps every h:m:s-looking scalar as a string, so quoted and unquoted
times mean the same thing. A bare integer time (``time: 30``) is minutes, as in
sbatch; a bare integer memory (``mem: 1024``) is MiB, as in sbatch.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Mapping
from dataclasses import replace

from slurm_escalate.core.models import (
    DEFAULT_EXIT_CODES,
    DEFAULT_STATE_HANDLING,
    SKIP_HEADROOM,
    Action,
    FailureKind,
    Hooks,
    Level,
    MultiplierPolicy,
    PartitionInfo,
    Policy,
)
from slurm_escalate.core.units import format_mem, format_time, parse_mem_mb, parse_time_s
from slurm_escalate.errors import ConfigError

HOOK_KEYS = ("on_complete", "on_exhausted", "recovery_hook")
TOP_KEYS = (
    "levels",
    "state_handling",
    "max_resubmits",
    "escalation",
    "skip_headroom",
    "multiplier",
    *HOOK_KEYS,
    "hook_timeout",
)
# YAML spelling -> Level field; the first spelling of each field is the documented one.
LEVEL_KEYS = {
    "partition": "partition",
    "mem": "mem_mb",
    "time": "time_s",
    "cpus-per-task": "cpus_per_task",
    "cpus_per_task": "cpus_per_task",
    "gres": "gres",
    "qos": "qos",
    "account": "account",
    "constraint": "constraint",
    "extra_args": "extra_args",
    "extra": "extra_args",
}
_LEVEL_KEYS_SHOWN = (
    "partition, mem, time, cpus-per-task, gres, qos, account, constraint, extra_args"
)
MULTIPLIER_KEYS = ("memory_factor", "time_factor", "max_mem", "max_time", "max_steps")
ESCALATIONS = ("step", "skip")
_ACTIONS_SHOWN = ", ".join(a.value for a in Action)
_STATES_SHOWN = ", ".join(k.value for k in DEFAULT_STATE_HANDLING) + ", exit_codes"
_NUMBERISH = re.compile(r"^\s*[-+]?\d+(\.\d+)?\s*[KMGTP]?(i?B)?\s*$", re.IGNORECASE)

# Built-in policy (no --config): double memory and time on each escalation, 4 times.
BUILTIN_FACTOR = 2.0
BUILTIN_STEPS = 4


def _err(src: str, where: str, msg: str) -> ConfigError:
    return ConfigError(f"{src}: {where}: {msg}" if where else f"{src}: {msg}")


def _what(value: object) -> str:
    """Describe a wrong value briefly: containers by type, scalars by value."""
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    return repr(value)


def _unknown_key(src: str, where: str, key: object, shown: str) -> ConfigError:
    return _err(src, where, f"unknown key {str(key)!r} (expected one of: {shown})")


def policy_from_mapping(data: object, source: str) -> Policy:
    """Validate already-parsed YAML; ``source`` names the file in messages."""
    if data is None:
        raise _err(source, "", "empty file (expected a mapping with 'levels' or 'multiplier')")
    if not isinstance(data, Mapping):
        raise _err(source, "", f"top level must be a mapping (levels: ...), got {_what(data)}")
    for key in data:
        if key not in TOP_KEYS:
            raise _unknown_key(source, "", key, ", ".join(TOP_KEYS))
    levels = _levels(data.get("levels"), source) if "levels" in data else ()
    multiplier = _multiplier(data["multiplier"], source) if "multiplier" in data else None
    if not levels and multiplier is None:
        multiplier = MultiplierPolicy()  # a file that only tunes state handling
    state_handling, exit_codes = _state_handling(data.get("state_handling"), source)
    return Policy(
        levels=levels,
        multiplier=multiplier,
        state_handling=state_handling,
        exit_codes=exit_codes,
        max_resubmits=_count(data.get("max_resubmits", 3), source, "max_resubmits", 0),
        escalation=_escalation(data.get("escalation", "step"), source),
        skip_headroom=_headroom(data.get("skip_headroom", SKIP_HEADROOM), source),
        source=source,
        hooks=_hooks(data, source),
    )


def _hooks(data: Mapping, src: str) -> Hooks:
    """A hook is a command line (split like a shell would, but never run by one) or a list."""
    commands: dict[str, tuple[str, ...] | None] = {}
    for key in HOOK_KEYS:
        value = data.get(key)
        if value is None:
            commands[key] = None
        elif isinstance(value, str):
            try:
                argv = tuple(shlex.split(value))
            except ValueError as e:
                raise _err(src, key, f"cannot split {value!r}: {e}") from None
            if not argv:
                raise _err(src, key, "empty command")
            commands[key] = argv
        elif isinstance(value, list) and value and all(isinstance(a, str) and a for a in value):
            commands[key] = tuple(value)
        else:
            raise _err(
                src, key, f"expected a command (string or list of strings), got {_what(value)}"
            )
    timeout = data.get("hook_timeout", 300)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise _err(src, "hook_timeout", f"expected seconds > 0, got {_what(timeout)}")
    return Hooks(**commands, timeout_s=float(timeout))  # type: ignore[arg-type]


def _levels(raw: object, src: str) -> tuple[Level, ...]:
    if not isinstance(raw, list):
        raise _err(src, "levels", f"expected a list of levels (lowest first), got {_what(raw)}")
    if not raw:
        raise _err(src, "levels", "empty list (give at least one level, or leave levels out)")
    levels = tuple(_level(item, src, f"levels[{i}]") for i, item in enumerate(raw))
    for i, level in enumerate(levels):
        for j in range(i):
            if levels[j] == level:
                raise _err(src, f"levels[{i}]", f"duplicate of levels[{j}]")
        if i:
            _check_increase(levels[i - 1], level, src, i)
    return levels


def _check_increase(prev: Level, cur: Level, src: str, i: int) -> None:
    """A level may not lower mem or time (where both levels set them).

    Being different is enforced by the duplicate check; partition, cpus and the
    other resources have no order, so any change in them counts as a new rung.
    """
    lower: list[tuple[str, str, str]] = []
    if prev.mem_mb is not None and cur.mem_mb is not None and cur.mem_mb < prev.mem_mb:
        lower.append(("mem", format_mem(cur.mem_mb), format_mem(prev.mem_mb)))
    if prev.time_s is not None and cur.time_s is not None and cur.time_s < prev.time_s:
        lower.append(("time", format_time(cur.time_s), format_time(prev.time_s)))
    if lower:
        what = " and ".join(f"{name} {value}" for name, value, _ in lower)
        verb = "are" if len(lower) > 1 else "is"
        limits = ", ".join(p for _, _, p in lower)
        msg = f"does not increase: {what} {verb} not above levels[{i - 1}] ({limits})"
        raise _err(src, f"levels[{i}]", msg)


def _level(raw: object, src: str, where: str) -> Level:
    if not isinstance(raw, Mapping):
        raise _err(
            src, where, f"expected a mapping like {{mem: 4G, time: 1:00:00}}, got {_what(raw)}"
        )
    if not raw:
        raise _err(src, where, "empty level (set at least one of mem, time, partition, ...)")
    fields: dict[str, object] = {}
    spelled: dict[str, str] = {}
    for key, value in raw.items():
        name = LEVEL_KEYS.get(key) if isinstance(key, str) else None
        if name is None:
            raise _unknown_key(src, where, key, _LEVEL_KEYS_SHOWN)
        if name in spelled:
            raise _err(src, where, f"both {spelled[name]!r} and {key!r} given")
        spelled[name] = key
        if value is not None:  # null: leave whatever the user asked for
            fields[name] = _level_value(name, value, src, f"{where}.{key}")
    return Level(**fields)  # type: ignore[arg-type]


def _level_value(name: str, value: object, src: str, where: str) -> object:
    if name == "mem_mb":
        return _mem(value, src, where)
    if name == "time_s":
        return _time(value, src, where)
    if name == "cpus_per_task":
        return _count(value, src, where, 1)
    if name == "extra_args":
        if not isinstance(value, list):
            raise _err(src, where, f"expected a list of strings, got {_what(value)}")
        for k, arg in enumerate(value):
            if not isinstance(arg, str) or not arg:
                raise _err(src, f"{where}[{k}]", f"expected a non-empty string, got {_what(arg)}")
        return tuple(value)
    text = _name(value, src, where)
    if name == "partition":
        parts = [p.strip() for p in text.split(",")]
        if not all(parts) or any(" " in p for p in parts):
            raise _err(src, where, f"bad partition list {text!r} (expected e.g. day or day,week)")
        text = ",".join(parts)
    return text


def _name(value: object, src: str, where: str) -> str:
    # Account and QOS names can be all digits, which YAML reads as an int.
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        raise _err(src, where, f"expected a non-empty string, got {_what(value)}")
    return str(value).strip()


def _mem(value: object, src: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _err(src, where, f"expected a memory size like 4G, got {_what(value)}")
    bad = _err(src, where, f"not a memory size: {value!r} (expected e.g. 512M, 4G)")
    if isinstance(value, float):
        raise bad
    try:
        return parse_mem_mb(value)
    except ValueError:
        if _NUMBERISH.match(str(value)):
            raise _err(src, where, f"must be positive: {value!r}") from None
        raise bad from None


def _time(value: object, src: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _err(src, where, f"expected a time like 01:00:00, got {_what(value)}")
    msg = f"not a time: {value!r} (expected minutes or e.g. 01:00:00, 1-00:00:00)"
    if isinstance(value, float):
        raise _err(src, where, msg)
    try:
        return parse_time_s(value)
    except ValueError:
        if isinstance(value, int) or re.fullmatch(r"-[\d:-]+|[0:-]+", str(value).strip()):
            raise _err(src, where, f"must be positive: {value!r}") from None
        raise _err(src, where, msg) from None


def _count(value: object, src: str, where: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise _err(src, where, f"expected {kind}, got {_what(value)}")
    return value


def _escalation(value: object, src: str) -> str:
    text = value.strip().lower() if isinstance(value, str) else None
    if text not in ESCALATIONS:
        msg = f"unknown value {_what(value)} (expected {', '.join(ESCALATIONS)})"
        raise _err(src, "escalation", msg)
    return text


def _headroom(value: object, src: str) -> float:
    """A fraction (0.2 = 20%); "20%" is accepted too."""
    number: object = value
    if isinstance(value, str) and value.strip().endswith("%"):
        try:
            number = float(value.strip()[:-1]) / 100
        except ValueError:
            number = None
    if isinstance(number, bool) or not isinstance(number, (int, float)) or not 0 <= number <= 10:
        msg = f"expected a fraction between 0 and 10 such as 0.2 (or 20%), got {_what(value)}"
        raise _err(src, "skip_headroom", msg)
    return float(number)


def _action(value: object, src: str, where: str) -> Action:
    text = value.strip().lower().replace("-", "_") if isinstance(value, str) else None
    for action in Action:
        if action.value == text:
            return action
    hint = "; YAML reads unquoted yes/no/on/off as true/false" if isinstance(value, bool) else ""
    raise _err(src, where, f"unknown action {_what(value)} (expected {_ACTIONS_SHOWN}{hint})")


def _state_handling(raw: object, src: str) -> tuple[dict[FailureKind, Action], dict[int, Action]]:
    """Missing states keep their defaults; exit codes default only when absent."""
    handling = dict(DEFAULT_STATE_HANDLING)
    exit_codes = dict(DEFAULT_EXIT_CODES)
    if raw is None:
        return handling, exit_codes
    if not isinstance(raw, Mapping):
        msg = f"expected a mapping like {{TIMEOUT: resubmit}}, got {_what(raw)}"
        raise _err(src, "state_handling", msg)
    for key, value in raw.items():
        where = f"state_handling.{key}"
        if key == "exit_codes":
            exit_codes = _exit_codes(value, src, where)
            continue
        kind = next((k for k in DEFAULT_STATE_HANDLING if str(key).upper() == k.value), None)
        if kind is None:
            raise _err(src, where, f"unknown state (expected one of {_STATES_SHOWN})")
        handling[kind] = _action(value, src, where)
    return handling, exit_codes


def _exit_codes(raw: object, src: str, where: str) -> dict[int, Action]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise _err(src, where, f"expected a mapping like {{137: escalate}}, got {_what(raw)}")
    codes: dict[int, Action] = {}
    for key, value in raw.items():
        here = f"{where}.{key}"
        if isinstance(key, str) and re.fullmatch(r"-?\d+", key.strip()):
            key = int(key)
        if isinstance(key, bool) or not isinstance(key, int):
            raise _err(src, here, "not an exit code (expected an integer 0-255)")
        if not 0 <= key <= 255:
            raise _err(src, here, "exit code out of range 0-255")
        codes[key] = _action(value, src, here)
    return codes


def _multiplier(raw: object, src: str) -> MultiplierPolicy:
    if not isinstance(raw, Mapping):
        msg = f"expected a mapping like {{memory_factor: 2}}, got {_what(raw)}"
        raise _err(src, "multiplier", msg)
    for key in raw:
        if key not in MULTIPLIER_KEYS:
            raise _unknown_key(src, "multiplier", key, ", ".join(MULTIPLIER_KEYS))
    factors = {}
    for key in ("memory_factor", "time_factor"):
        value = raw.get(key, BUILTIN_FACTOR)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 1:
            raise _err(src, f"multiplier.{key}", f"expected a number >= 1, got {_what(value)}")
        factors[key] = float(value)
    if factors["memory_factor"] == 1 and factors["time_factor"] == 1:
        msg = "memory_factor and time_factor are both 1: nothing would grow"
        raise _err(src, "multiplier", msg)
    max_mem, max_time = raw.get("max_mem"), raw.get("max_time")
    return MultiplierPolicy(
        memory_factor=factors["memory_factor"],
        time_factor=factors["time_factor"],
        max_mem_mb=None if max_mem is None else _mem(max_mem, src, "multiplier.max_mem"),
        max_time_s=None if max_time is None else _time(max_time, src, "multiplier.max_time"),
        max_steps=_count(raw.get("max_steps", BUILTIN_STEPS), src, "multiplier.max_steps", 1),
    )


def cluster_facts_needed(policy: Policy) -> tuple[bool, bool]:
    """(partitions, nodes' memory): what ``check_against_cluster`` needs from Slurm for the
    levels this chain can use (``scontrol show partition``, ``scontrol show node``).

    Only levels that name a partition are checked; the nodes' memory only when such a
    level sets mem. The start level is checked too, although sbatch would refuse it:
    Slurm 22.05 keeps a refused array in accounting as a FAILED job that carries the
    chain's token, which reads like tasks that ran and failed."""
    usable = [lv for lv in policy.levels[policy.start_level : policy.top_level + 1] if lv.partition]
    return bool(usable), any(lv.mem_mb is not None for lv in usable)


def check_against_cluster(policy: Policy, partitions: Mapping[str, PartitionInfo]) -> None:
    """Fail before submitting anything if a level can never be scheduled.

    A level without a partition goes wherever the user's own options send it, so
    only levels that name partitions are checked. A comma list lets Slurm pick any
    listed partition, so a level is only wrong when it fits none of them. Unknown
    limits (``None``: UNLIMITED or not reported) never fail.
    """
    src = policy.source or "ladder"
    for i, level in enumerate(policy.levels):
        if level.partition is None:
            continue
        names = level.partition.split(",")
        for name in names:
            if name not in partitions:
                known = ", ".join(sorted(partitions)) or "none"
                msg = f"no partition {name!r} on this cluster (partitions: {known})"
                raise _err(src, f"levels[{i}].partition", msg)
        what = f"partition{'s' if len(names) > 1 else ''} {level.partition!r}"
        mems = [partitions[n].max_node_mem_mb for n in names]
        if level.mem_mb is not None and None not in mems:
            limit = max(m for m in mems if m is not None)
            if level.mem_mb > limit:
                msg = f"{format_mem(level.mem_mb)} exceeds the largest node of {what} "
                raise _err(src, f"levels[{i}].mem", msg + f"({format_mem(limit)})")
        times = [partitions[n].max_time_s for n in names]
        if level.time_s is not None and None not in times:
            limit = max(t for t in times if t is not None)
            if level.time_s > limit:
                msg = f"{format_time(level.time_s)} exceeds the MaxTime of {what} "
                raise _err(src, f"levels[{i}].time", msg + f"({format_time(limit)})")


def builtin_policy(base_mem_mb: int | None, base_time_s: int | None) -> Policy:
    """The policy used without a ladder file: double mem and time, at most 4 times.

    The caps are the 4th doubling of what the job asked for; they make the ceiling
    explicit (so ``plan`` can print it) and keep it if max_steps is ever raised. A
    resource the job did not ask for has no base to grow from and stays unset.
    """
    growth = BUILTIN_FACTOR**BUILTIN_STEPS
    return Policy(
        multiplier=MultiplierPolicy(
            memory_factor=BUILTIN_FACTOR,
            time_factor=BUILTIN_FACTOR,
            max_mem_mb=None if base_mem_mb is None else int(base_mem_mb * growth),
            max_time_s=None if base_time_s is None else int(base_time_s * growth),
            max_steps=BUILTIN_STEPS,
        ),
        source="built-in policy",
    )


def level_at(policy: Policy, level: int, base: Level) -> Level:
    """The resources of ``level``: a ladder rung, or ``base`` grown ``level`` times.

    ``base`` is what the job asked for (its #SBATCH/command-line resources); a ladder
    ignores it because each rung states its own resources.
    """
    if level < 0:
        raise ValueError(f"level must be >= 0, got {level}")
    if policy.levels:
        if level >= len(policy.levels):
            raise ValueError(f"level {level} is above the top of the ladder")
        return policy.levels[level]
    if policy.multiplier is None:
        if level:
            raise ValueError(f"level {level} without a ladder or multiplier")
        return base
    return multiplier_level(policy.multiplier, base, level, level)


def multiplier_level(m: MultiplierPolicy, base: Level, mem_steps: int, time_steps: int) -> Level:
    """``base`` with memory grown ``mem_steps`` times and time ``time_steps`` times.

    Separate step counts let a caller grow only what failed (memory for an OOM,
    time for a TIMEOUT). Values round up (MiB, seconds), stop at the caps, and are
    never below the base: a cap smaller than the request must not shrink the job.
    """
    mem = _grow(base.mem_mb, m.memory_factor, mem_steps, m.max_mem_mb)
    time = _grow(base.time_s, m.time_factor, time_steps, m.max_time_s)
    return replace(base, mem_mb=mem, time_s=time)


def _grow(value: int | None, factor: float, steps: int, cap: int | None) -> int | None:
    if value is None:
        return None
    # round() first so that float noise (1000 * 1.1 = 1100.0000000000002) does not add 1.
    grown = math.ceil(round(value * factor**steps, 6))
    return max(value, grown if cap is None else min(grown, cap))


def resources_for(policy: Policy, level: int, base: Level) -> Level | None:
    """The resources to impose at ``level``; None means "what the user asked for"."""
    if not policy.levels and level == 0:
        return None
    return level_at(policy, level, base)
