"""What the user sees while the monitor runs: a live block on a terminal, plain lines otherwise.

On a terminal (tmux) the last few lines are a status block drawn with rich's
``Live``: the chain's header, a progress bar of the tasks finished with the ETA
(``reporting.eta``), the counts by state and level. Log events are printed
above it, so the scrollback keeps the story and the bottom of the screen always
shows the current state. Every line of the block is cut to the terminal's width,
which rich reads again at every refresh (once a second), so a narrow or resized
pane never wraps it; log events are wrapped by rich, never by the terminal. rich
honours ``NO_COLOR``. When the output is a file or a pipe, rich is not involved:
every event is one plain line and nothing is redrawn.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

from loguru import logger

from slurm_escalate.core.chain import Chain
from slurm_escalate.engine.monitor import PollReport
from slurm_escalate.engine.submitter import Clock
from slurm_escalate.reporting.summary import LiveStatus, counts_line, live_status
from slurm_escalate.service.run import LOG_FORMAT

if TYPE_CHECKING:
    from rich.console import Console as Screen
    from rich.console import RenderableType
    from rich.live import Live

LEVELS = {-1: "WARNING", 0: "INFO", 1: "DEBUG"}
EVENT_STYLES = {"WARNING": "yellow", "ERROR": "bold red", "CRITICAL": "bold red"}
REFRESH_PER_SECOND = 1.0  # the live block's clock ticks, and a resize is followed, once a second


class Console:
    """Routes log events and poll reports to a stream, live or plain.

    ``screen``: the rich console of a live view (tests give one of a fixed width);
    ``refresh_per_second`` 0: the block is redrawn only at polls and events.
    """

    def __init__(
        self,
        stream: TextIO,
        verbosity: int,
        live: bool | None = None,
        *,
        clock: Clock | None = None,
        screen: Screen | None = None,
        refresh_per_second: float = REFRESH_PER_SECOND,
    ) -> None:
        self.stream = stream
        self.level = LEVELS[max(-1, min(1, verbosity))]
        self.live = stream.isatty() if live is None else live
        self.clock = clock or Clock()
        self._screen: Screen | None = None
        if self.live:  # rich is loaded only for a terminal
            from slurm_escalate.cli import live as view

            self._screen = screen or view.terminal(stream)
        self._refresh = refresh_per_second
        self._view: Live | None = None
        self._status: LiveStatus | None = None
        self._sink: int | None = None

    def attach(self) -> None:
        fmt = "{time:HH:mm:ss} {message}" if self.live else LOG_FORMAT
        self._sink = logger.add(self._event, format=fmt, level=self.level, colorize=False)

    def detach(self) -> None:
        if self._sink is not None:
            logger.remove(self._sink)
            self._sink = None
        self.finish()

    def _event(self, message: Any) -> None:
        self._line(str(message), EVENT_STYLES.get(message.record["level"].name, ""))

    def echo(self, text: str) -> None:
        """A line of the command's own (not a log event)."""
        self._line(f"{text}\n")

    def _line(self, text: str, style: str = "") -> None:
        """Plain, or printed by rich above the block and wrapped to the terminal's width."""
        if self._screen is None:
            self.stream.write(text)
            self.stream.flush()
        else:
            from slurm_escalate.cli.live import event_text

            self._screen.print(event_text(text, style))

    def on_poll(self, chain: Chain, report: PollReport) -> None:
        now = self.clock.now()
        if self._screen is None:
            if report.changed and self.level != "WARNING":
                at = datetime.fromtimestamp(now).strftime("%Y-%m-%d %H:%M:%S")
                self.stream.write(f"{at} STATUS  {counts_line(chain)}\n")
                self.stream.flush()
            return
        self._status = live_status(chain, now, report.interval)
        if self._view is None:
            # transient: the block goes at the end; the summary follows as events
            from slurm_escalate.cli.live import Fresh, live_view

            self._view = live_view(self._screen, True, self._refresh, Fresh(self._render))
            self._view.start(refresh=True)
        else:
            self._view.refresh()

    def _render(self) -> RenderableType:
        from slurm_escalate.cli.live import status_block

        return status_block(self._status, self.clock.now())

    def finish(self) -> None:
        if self._view is not None:
            self._view.stop()
            self._view = None
        self._status = None
