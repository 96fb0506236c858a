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

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TextIO

from loguru import logger
from rich.console import Console as Screen
from rich.console import ConsoleOptions, Group, RenderableType, RenderResult
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.text import Text

from slurm_escalate.core.chain import Chain
from slurm_escalate.engine.monitor import PollReport
from slurm_escalate.engine.submitter import Clock
from slurm_escalate.reporting.eta import Progress
from slurm_escalate.reporting.summary import (
    LiveStatus,
    counts_line,
    live_header,
    live_progress,
    live_status,
    progress_texts,
)
from slurm_escalate.service.run import LOG_FORMAT

LEVELS = {-1: "WARNING", 0: "INFO", 1: "DEBUG"}
EVENT_STYLES = {"WARNING": "yellow", "ERROR": "bold red", "CRITICAL": "bold red"}
REFRESH_PER_SECOND = 1.0  # the live block's clock ticks, and a resize is followed, once a second
BAR_MAX = 40  # the progress bar's widest, in columns
BAR_MIN = 8  # narrower than this beside its text, the bar gets a line of its own


def terminal(stream: TextIO, width: int | None = None) -> Screen:
    """A rich console for a terminal ``stream``: colour unless ``NO_COLOR`` is set.

    ``width`` None: the terminal's, read again at every render (a resize is followed).
    """
    return Screen(
        file=stream,
        force_terminal=True,  # the caller decided it is one
        width=width,
        highlight=False,
        emoji=False,
        markup=False,
    )


class ProgressLine:
    """The bar of tasks finished and its text (``5/12 done  ETA 0:02:10``), fitted to the width.

    Wide enough: one line, the bar beside the text. In a narrow pane the ETA goes
    to a line of its own, so that the bar and the ETA both stay visible.
    """

    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def __rich_console__(self, console: Screen, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        p = self.progress
        done, eta = progress_texts(p)
        whole = f"{done}  {eta}" if eta else done
        beside = width - 2 - 1 - len(whole)  # the bar's room beside the whole text
        if beside >= BAR_MIN:
            yield self._line(console, options, "  ", min(BAR_MAX, beside), whole)
            return
        yield self._line(console, options, "", width - 1 - len(done), done)
        if eta:
            yield cut(eta)

    def _line(
        self, console: Screen, options: ConsoleOptions, indent: str, bar_width: int, text: str
    ) -> Text:
        p = self.progress
        bar = ProgressBar(max(p.total, 1), p.finished, width=max(1, bar_width))
        line = cut(indent)
        for segment in console.render(bar, options.update_width(max(1, bar_width))):
            line.append(segment.text, segment.style)
        line.append(f" {text}")
        return line


def cut(line: str) -> Text:
    """One line of the block: never wrapped, cut to the width with an ellipsis."""
    return Text(line, no_wrap=True, overflow="ellipsis")


def block(lines: Sequence[str], progress: Progress | None) -> RenderableType:
    """The live block: the first line, the progress bar (when given), the other lines."""
    head, body = lines[:1], lines[1:]
    bar = [ProgressLine(progress)] if progress is not None else []
    return Group(*(cut(line) for line in head), *bar, *(cut(line) for line in body))


class Fresh:
    """A renderable made anew at every render: the clock and the latest poll are read then,
    whether rich refreshes the block or redraws it below an event."""

    def __init__(self, make: Callable[[], RenderableType]) -> None:
        self.make = make

    def __rich_console__(self, console: Screen, options: ConsoleOptions) -> RenderResult:
        yield self.make()


def live_view(
    screen: Screen,
    transient: bool,
    refresh_per_second: float = REFRESH_PER_SECOND,
    renderable: RenderableType | None = None,
) -> Live:
    """rich's Live on ``screen``, redrawn ``refresh_per_second`` (0: only when told to).

    Only this tool's output moves the cursor: sys.stdout and sys.stderr are left alone.
    """
    return Live(
        renderable,
        console=screen,
        transient=transient,
        auto_refresh=refresh_per_second > 0,
        refresh_per_second=refresh_per_second or 1.0,
        redirect_stdout=False,
        redirect_stderr=False,
    )


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
        self._screen = (screen or terminal(stream)) if self.live else None
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
            self._screen.print(Text(text.rstrip("\n"), style=style))

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
            self._view = live_view(self._screen, True, self._refresh, Fresh(self._render))
            self._view.start(refresh=True)
        else:
            self._view.refresh()

    def _render(self) -> RenderableType:
        status = self._status
        if status is None:
            return Text("")
        now = self.clock.now()
        return block([live_header(status, now), *status.body], live_progress(status, now))

    def finish(self) -> None:
        if self._view is not None:
            self._view.stop()
            self._view = None
        self._status = None
