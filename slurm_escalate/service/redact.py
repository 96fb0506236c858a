"""Masking secrets before a command line reaches a log file.

Users pass credentials through ``--export=ALL,API_TOKEN=...``; the log must show
that the variable was exported, never its value.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

SECRET_NAME = re.compile(
    r"TOKEN|SECRET|PASSW(OR)?D|PASSPHRASE|API_?KEY|PRIVATE_?KEY|CREDENTIAL", re.IGNORECASE
)
MASK = "***"


def mask_export(value: str) -> str:
    """``ALL,API_TOKEN=abc,N=1`` -> ``ALL,API_TOKEN=***,N=1``."""
    out = []
    for item in value.split(","):
        name, sep, _ = item.partition("=")
        out.append(f"{name}={MASK}" if sep and SECRET_NAME.search(name) else item)
    return ",".join(out)


def mask_command_line(tokens: Sequence[str]) -> list[str]:
    """The tokens with every ``--export`` value masked (``--export=V`` and ``--export V``)."""
    masked: list[str] = []
    take_next = False
    for token in tokens:
        if take_next:
            masked.append(mask_export(token))
            take_next = False
        elif token.startswith("--export="):
            masked.append("--export=" + mask_export(token[len("--export=") :]))
        else:
            take_next = token == "--export"
            masked.append(token)
    return masked
