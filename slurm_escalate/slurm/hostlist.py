"""Expansion of Slurm hostlists (``d[1-2]``, ``n[01-03,7]``, ``rack[1-2]-n[1-4]``).

Only needed to map a partition's ``Nodes=`` to node records; kept separate so
the rules (zero padding, several bracket groups) can be tested on their own.
"""

from __future__ import annotations

import re
from itertools import product

#: Refuse hostlists that would expand to more names than this.
MAX_HOSTS = 1_000_000

_RANGE_RE = re.compile(r"(\d+)(?:-(\d+))?")


def expand_hostlist(text: str) -> list[str]:
    """Expand a hostlist into node names, in order; raises ValueError if malformed.

    ``n[01-03,7]`` -> n01 n02 n03 n7: a range keeps the zero padding of its
    start, as Slurm does. Several bracket groups in one name give every
    combination (``r[1-2]n[1-2]`` -> r1n1 r1n2 r2n1 r2n2).
    """
    names: list[str] = []
    for item in _split_top_level(text):
        names.extend(_expand_item(item))
        if len(names) > MAX_HOSTS:
            raise ValueError(f"hostlist {text[:60]!r} expands to more than {MAX_HOSTS} names")
    return names


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside brackets."""
    items, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
            if depth > 1:
                raise ValueError(f"nested '[' in hostlist {text!r}")
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise ValueError(f"unbalanced ']' in hostlist {text!r}")
        elif ch == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    if depth:
        raise ValueError(f"unbalanced '[' in hostlist {text!r}")
    items.append(text[start:])
    if any(not item for item in items):
        raise ValueError(f"empty name in hostlist {text!r}")
    return items


def _expand_item(item: str) -> list[str]:
    # "a[1-2]b[3]c" -> literal and bracket parts: ["a", "1-2", "b", "3", "c"]
    parts = re.split(r"\[([^\]]*)\]", item)
    choices: list[list[str]] = []
    for i, part in enumerate(parts):
        choices.append(_expand_ranges(part, item) if i % 2 else [part])
    return ["".join(combo) for combo in product(*choices)]


def _expand_ranges(body: str, item: str) -> list[str]:
    values: list[str] = []
    for element in body.split(","):
        m = _RANGE_RE.fullmatch(element)
        if m is None:
            raise ValueError(f"bad range {element!r} in hostlist item {item!r}")
        first, last = m.group(1), m.group(2) or m.group(1)
        if int(last) < int(first):
            raise ValueError(f"descending range {element!r} in hostlist item {item!r}")
        if int(last) - int(first) >= MAX_HOSTS:
            raise ValueError(f"range {element!r} in hostlist item {item!r} is too large")
        width = len(first)
        values.extend(str(n).zfill(width) for n in range(int(first), int(last) + 1))
    return values
