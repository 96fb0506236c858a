"""Pure parsing and formatting of Slurm sizes and durations."""

from __future__ import annotations

import re

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGTP]?)(?:i?B)?\s*$", re.IGNORECASE)
_UNIT_MB = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024**2, "P": 1024**3, "": 1}
_UNIT_KB = {"K": 1, "M": 1024, "G": 1024**2, "T": 1024**3, "P": 1024**4, "": 1 / 1024}


def parse_mem_mb(text: str | int) -> int:
    """Parse a Slurm ``--mem`` value ("4G", "512M", "1024", "1.5G") into MiB.

    A bare number is MiB, as in sbatch. Raises ValueError on anything else,
    including zero and negative sizes.
    """
    if isinstance(text, bool):
        raise ValueError(f"not a memory size: {text!r}")
    if isinstance(text, int):
        if text <= 0:
            raise ValueError(f"memory must be positive: {text!r}")
        return text
    m = _SIZE_RE.match(str(text))
    if not m:
        raise ValueError(f"not a memory size: {text!r} (expected e.g. 512M, 4G)")
    value = float(m.group(1)) * _UNIT_MB[m.group(2).upper()]
    mb = int(round(value))
    if mb <= 0:
        raise ValueError(f"memory must be positive: {text!r}")
    return mb


def parse_rss_kb(text: str) -> int | None:
    """Parse sacct's MaxRSS ("123456K", "1.5G", "0", "") into KiB; None when empty."""
    text = text.strip()
    if not text:
        return None
    m = _SIZE_RE.match(text)
    if not m:
        return None
    unit = m.group(2).upper()
    # sacct prints a bare number in bytes for MaxRSS
    if unit == "":
        return int(float(m.group(1)) / 1024)
    return int(round(float(m.group(1)) * _UNIT_KB[unit]))


def format_mem(mb: int) -> str:
    """Format MiB the way a user would write it for sbatch."""
    if mb % (1024 * 1024) == 0:
        return f"{mb // (1024 * 1024)}T"
    if mb % 1024 == 0:
        return f"{mb // 1024}G"
    return f"{mb}M"


_TIME_UNLIMITED = {"UNLIMITED", "INFINITE", "PARTITION_LIMIT"}


def parse_time_s(text: str | int) -> int:
    """Parse a Slurm time ("30", "1:00:00", "2-12", "1-00:30:00") into seconds.

    Follows sbatch's rules: "M", "M:S", "H:M:S", "D-H", "D-H:M", "D-H:M:S".
    Raises ValueError for anything else and for zero or negative times.
    """
    if isinstance(text, bool):
        raise ValueError(f"not a time: {text!r}")
    if isinstance(text, int):
        seconds = text * 60
    else:
        seconds = _parse_time_text(str(text).strip())
    if seconds <= 0:
        raise ValueError(f"time must be positive: {text!r}")
    return seconds


def _parse_time_text(s: str) -> int:
    if not re.fullmatch(r"(\d+-)?\d+(:\d+){0,2}", s):
        raise ValueError(f"not a time: {s!r} (expected e.g. 30, 01:00:00, 1-00:00:00)")
    days = 0
    if "-" in s:
        d, s = s.split("-", 1)
        days = int(d)
        parts = [int(p) for p in s.split(":")]
        while len(parts) < 3:
            parts.append(0)
        h, m, sec = parts
    else:
        parts = [int(p) for p in s.split(":")]
        if len(parts) == 1:
            h, m, sec = 0, parts[0], 0
        elif len(parts) == 2:
            h, m, sec = 0, parts[0], parts[1]
        else:
            h, m, sec = parts
    if (len(parts) == 3 and m >= 60) or (len(parts) > 1 and sec >= 60):
        raise ValueError(f"not a time: {s!r} (minutes and seconds must be below 60)")
    return ((days * 24 + h) * 60 + m) * 60 + sec


def parse_slurm_duration(text: str) -> int | None:
    """Parse a duration as sacct/scontrol print it; None for UNLIMITED/empty/invalid."""
    text = text.strip()
    if not text or text.upper() in _TIME_UNLIMITED or text.upper() in {"INVALID", "NONE"}:
        return None
    try:
        return _parse_time_text(text)
    except ValueError:
        return None


def format_time(seconds: int) -> str:
    """Format seconds as Slurm's [D-]HH:MM:SS."""
    days, rest = divmod(int(seconds), 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    hms = f"{h:02d}:{m:02d}:{s:02d}"
    return f"{days}-{hms}" if days else hms
