"""Human formatting shared by the text renderers (markdown, HTML)."""

from __future__ import annotations

import math
from datetime import datetime

from slurm_escalate.core.units import format_mem


def mem(mb: float | None, *, up: bool = False) -> str:
    """MiB as a user writes it: 424K, 400M, 1000M, 2G, 1.5G; ``up`` rounds up ("under X")."""
    if mb is None:
        return "-"
    if mb >= 1024:
        g = mb / 1024
        g = math.ceil(g * 10 - 1e-9) / 10 if up else round(g, 1)
        return f"{g:g}G"
    if mb < 1:
        kb = mb * 1024
        return f"{math.ceil(kb - 1e-9) if up else half_up(kb)}K"
    m = math.ceil(mb - 1e-9) if up else half_up(mb)
    return f"{m}M"


def req(mb: int | None) -> str:
    """Requested memory exactly as sbatch takes it: 400M, 3000M, 2G."""
    return "-" if mb is None else format_mem(mb)


def half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def duration(seconds: float | None, *, up: bool = False) -> str:
    """45s, 1m40s, 2m, 1h02m05s, 1h30m; fractions round half up (or up)."""
    if seconds is None:
        return "-"
    s = math.ceil(seconds - 1e-9) if up else half_up(seconds)
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    if h:
        if sec:
            return f"{h}h{m:02d}m{sec:02d}s"
        return f"{h}h{m:02d}m" if m else f"{h}h"
    if m:
        return f"{m}m" + (f"{sec:02d}s" if sec else "")
    return f"{sec}s"


def core_hours(core_s: int) -> str:
    return f"{core_s / 3600:.3f}"


def pct(part: float, whole: float) -> str:
    return "-" if not whole else f"{half_up(100 * part / whole)}%"


def when(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def index(i: int | None) -> str:
    return "-" if i is None else str(i)


def num(x: int | None) -> str:
    return "-" if x is None else str(x)
