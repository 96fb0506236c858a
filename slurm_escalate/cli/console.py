"""What the user sees while the monitor runs: a live block on a terminal, plain lines otherwise.

On a TTY (tmux) the last few lines are a status block that is redrawn in place
after every poll; log events are printed above it, so the scrollback keeps the
story and the bottom of the screen always shows the current counts. When the
output is a file or a pipe, every event is one plain line and nothing is redrawn.
"""

from __future__ import annotations

import time
from typing import TextIO

from loguru import logger

from slurm_escalate.core.chain import Chain
from slurm_escalate.engine.monitor import PollReport
from slurm_escalate.reporting.summary import counts_line, live_block
from slurm_escalate.service.run import LOG_FORMAT

LEVELS = {-1: "WARNING", 0: "INFO", 1: "DEBUG"}


class Console:
    """Routes log events and poll reports to a stream, live or plain."""

    def __init__(self, stream: TextIO, verbosity: int, live: bool | None = None) -> None:
        self.stream = stream
        self.level = LEVELS[max(-1, min(1, verbosity))]
        self.live = stream.isatty() if live is None else live
        self._drawn = 0
        self._sink: int | None = None
        self._last: tuple[Chain, PollReport] | None = None

    def attach(self) -> None:
        fmt = "{time:HH:mm:ss} {message}" if self.live else LOG_FORMAT
        self._sink = logger.add(self._event, format=fmt, level=self.level, colorize=False)

    def detach(self) -> None:
        if self._sink is not None:
            logger.remove(self._sink)
            self._sink = None

    def _event(self, message: object) -> None:
        self._clear()
        self.stream.write(str(message))
        self.stream.flush()
        self._redraw()

    def on_poll(self, chain: Chain, report: PollReport) -> None:
        self._last = (chain, report)
        if self.live:
            self._clear()
            self._redraw()
        elif report.changed and self.level != "WARNING":
            self.stream.write(
                f"{time.strftime('%Y-%m-%d %H:%M:%S')} STATUS  {counts_line(chain)}\n"
            )
            self.stream.flush()

    def finish(self) -> None:
        if self.live:
            self._clear()
            self._last = None

    def _clear(self) -> None:
        if self.live and self._drawn:
            self.stream.write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0

    def _redraw(self) -> None:
        last = self._last
        if not self.live or last is None:
            return
        chain, report = last
        lines = live_block(chain, time.time(), report.interval)
        self.stream.write("\n".join(lines) + "\n")
        self.stream.flush()
        self._drawn = len(lines)

