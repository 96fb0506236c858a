"""Where the core-hours went and which nodes ran the attempts (pure)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

from slurm_escalate.reporting.model import COMPLETED, NODE_FAIL, AttemptRow, Cost, CostRow, NodeRow


def cost(attempts: Iterable[AttemptRow]) -> Cost:
    useful = useful_n = 0
    failed: dict[str, list[int]] = defaultdict(list)
    for a in attempts:
        if a.outcome is None:
            continue
        if a.outcome == COMPLETED:
            useful += a.core_s
            useful_n += 1
        else:
            failed[a.outcome].append(a.core_s)
    rows = sorted(
        (CostRow(k, len(v), sum(v)) for k, v in failed.items()),
        key=lambda r: (-r.core_s, -r.attempts, r.outcome),
    )
    return Cost(useful, useful_n, tuple(rows), sum(r.core_s for r in rows))


def node_rows(attempts: Iterable[AttemptRow]) -> list[NodeRow]:
    per: dict[str, Counter[str]] = defaultdict(Counter)
    for a in attempts:
        if not a.node or a.node in ("None", "(null)"):
            continue
        c = per[a.node]
        c["attempts"] += 1
        if a.outcome == COMPLETED:
            c["completed"] += 1
        elif a.outcome is not None:
            c["failed"] += 1
        if a.outcome == NODE_FAIL:
            c["node_fail"] += 1
    return [
        NodeRow(node, c["attempts"], c["completed"], c["failed"], c["node_fail"])
        for node, c in sorted(per.items(), key=lambda kv: natural_key(kv[0]))
    ]


def natural_key(text: str) -> tuple[object, ...]:
    """n2 before n10."""
    out: list[object] = []
    digits = ""
    for ch in text + "\0":
        if ch.isdigit():
            digits += ch
            continue
        if digits:
            out.append((0, int(digits)))
            digits = ""
        if ch != "\0":
            out.append((1, ch))
    return tuple(out)
