"""The rich side of the live view: the status block with its progress bar, fitted to the pane.

Imported only when the output is a terminal (``Console`` with ``live``, ``watch`` on a
TTY): a monitor whose output goes to a file or a pipe never loads rich.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TextIO

from rich.console import Console as Screen
from rich.console import ConsoleOptions, Group, RenderableType, RenderResult
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.text import Text

from slurm_escalate.reporting.eta import Progress
from slurm_escalate.reporting.summary import LiveStatus, live_header, live_progress, progress_texts

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


def status_block(status: LiveStatus | None, now: float) -> RenderableType:
    """The block for the latest poll's status, its clock read at ``now``."""
    if status is None:
        return Text("")
    return block([live_header(status, now), *status.body], live_progress(status, now))


def event_text(text: str, style: str) -> Text:
    """A log event printed above the block (wrapped by rich to the terminal's width)."""
    return Text(text.rstrip("\n"), style=style)
