"""The live view: the ETA (pure, from tables), the block on a terminal of any width, NO_COLOR,
plain lines off a terminal, and ``watch``'s live frame.

A terminal here is a rich console of a fixed width writing to a StringIO; what it
shows is read back by dropping the escape sequences and splitting at line feeds
and carriage returns, so a line longer than the width cannot hide.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from loguru import logger
from rich.cells import cell_len

from slurm_escalate.cli.console import Console
from slurm_escalate.cli.live import terminal
from slurm_escalate.cli.ops import FrameView
from slurm_escalate.core.chain import Chain, Submission, SubmissionStatus, TaskStatus
from slurm_escalate.core.models import TaskState
from slurm_escalate.engine.monitor import PollReport
from slurm_escalate.reporting.eta import Progress, eta_seconds, finished_tasks, progress
from slurm_escalate.reporting.summary import live_block, progress_texts
from slurm_escalate.service import chains
from slurm_escalate.service.env import Env
from slurm_escalate.state.store import ChainStore
from slurm_escalate.testing import FastClock

S = TaskState
CHAIN_ID = "20261203-120000-ab12"
CSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
SGR = re.compile(r"\x1b\[([0-9;]*)m")
LONG_EVENT = "task 100_3 OUT_OF_MEMORY at level 0 (MaxRSS 1.2G of 1G): escalating to level 1"


# ---------------------------------------------------------------- the ETA


@pytest.mark.parametrize(
    ("total", "finished", "elapsed", "eta"),
    [
        (10, 0, 100.0, None),  # nothing finished: no pace to go by
        (10, 0, 0.0, None),
        (10, 5, 100.0, 100.0),  # half done in 100 s: 100 s more
        (10, 1, 60.0, 540.0),
        (12, 5, 100.0, 140.0),
        (10, 9, 90.0, 10.0),
        (10, 10, 100.0, 0.0),  # all finished
        (10, 12, 100.0, 0.0),  # never negative
        (10, 5, 0.0, None),  # no time has passed: no rate
        (10, 5, -30.0, None),  # created "later" (another host's clock): no rate
    ],
)
def test_eta_is_the_pace_so_far_and_unknown_without_evidence(total, finished, elapsed, eta):
    assert eta_seconds(total, finished, elapsed) == eta


@pytest.mark.parametrize(
    ("counts", "finished"),
    [
        ({}, 0),
        ({S.PENDING: 3, S.RUNNING: 2, S.RETRY: 1}, 0),
        ({S.COMPLETED: 4}, 4),
        ({S.PENDING: 3, S.RUNNING: 2, S.RETRY: 1, S.COMPLETED: 4, S.FAILED: 1}, 5),
        ({S.EXHAUSTED: 2, S.CANCELLED: 1, S.RUNNING: 1}, 3),  # given up counts as finished
    ],
)
def test_finished_is_completed_or_given_up(counts, finished):
    assert finished_tasks(counts) == finished


@pytest.mark.parametrize(
    ("running", "expected"),
    [(True, Progress(12, 5, 140.0)), (False, Progress(12, 5, None))],
)
def test_only_a_running_chain_has_an_eta(running, expected):
    counts = {S.COMPLETED: 4, S.FAILED: 1, S.RUNNING: 7}
    assert progress(12, counts, 1000.0, 1100.0, running) == expected


@pytest.mark.parametrize(
    ("p", "texts"),
    [
        (Progress(12, 0, None), ("0/12 done", "ETA unknown")),
        (Progress(12, 5, 130.0), ("5/12 done", "ETA 0:02:10")),
        (Progress(12, 5, 130.9), ("5/12 done", "ETA 0:02:10")),
        (Progress(3, 1, 90061.0), ("1/3 done", "ETA 25:01:01")),
        (Progress(12, 12, 0.0), ("12/12 done", "")),  # all finished: no ETA
    ],
)
def test_progress_texts(p, texts):
    assert progress_texts(p) == texts


# ------------------------------------------------- the foreground live block


def make_chain(created_at: float, states: list[TaskState]) -> Chain:
    return Chain(
        chain_id=CHAIN_ID,
        created_at=created_at,
        cwd="/tmp",
        script="job.sh",
        script_copy=None,
        sbatch_args=[f"--array=0-{len(states) - 1}"],
        script_args=[],
        config=None,
        tasks=[TaskStatus(i, state) for i, state in enumerate(states)],
        submissions=[
            Submission(1, 0, 1, "0-11", "0-11", [], created_at, SubmissionStatus.SUBMITTED, "100")
        ],
    )


def twelve(done: int) -> list[TaskState]:
    """12 tasks: ``done`` finished (one of them failed), the others running."""
    finished = [S.FAILED] + [S.COMPLETED] * (done - 1) if done else []
    return finished + [S.RUNNING] * (12 - done)


def shown_lines(raw: str) -> list[str]:
    """Every line the terminal was given, escape sequences dropped."""
    return [piece for piece in re.split(r"[\r\n]", CSI.sub("", raw)) if piece]


def colour_codes(raw: str) -> list[str]:
    """The SGR parameters that set a colour (foreground or background, any palette)."""
    out = []
    for params in SGR.findall(raw):
        for code in params.split(";"):
            if code.isdigit() and (30 <= int(code) <= 49 or 90 <= int(code) <= 107):
                out.append(params)
                break
    return out


@pytest.fixture
def tty_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TERM", "xterm-256color")
    for name in ("NO_COLOR", "FORCE_COLOR", "COLUMNS", "LINES", "TTY_COMPATIBLE"):
        monkeypatch.delenv(name, raising=False)
    yield


def live_console(width: int, clock: FastClock) -> tuple[io.StringIO, Console]:
    """The foreground view on a terminal of ``width``, redrawn at polls and events only."""
    buf = io.StringIO()
    screen = terminal(buf, width)
    return buf, Console(buf, 0, live=True, clock=clock, screen=screen, refresh_per_second=0)


def run_live(width: int, clock: FastClock, chain: Chain) -> tuple[str, Console]:
    """A foreground run on a terminal of ``width``: events, two polls, the end."""
    buf, console = live_console(width, clock)
    console.attach()
    try:
        logger.info("submitted array 0-11 at level 0 (attempt 1) as job 100")
        console.echo(f"chain {CHAIN_ID}: job 100; log /home/someone/.local/state/{CHAIN_ID}.log")
        console.on_poll(chain, PollReport(True, 30.0, 0))
        logger.warning(LONG_EVENT)
        chain.tasks[5].state = S.COMPLETED
        console.on_poll(chain, PollReport(True, 30.0, 0))
        console.finish()
    finally:
        console.detach()
    return buf.getvalue(), console


@pytest.mark.parametrize("width", [20, 30, 40, 200])
def test_no_line_is_wider_than_the_terminal_and_the_bar_and_eta_show(tty_env, width):
    clock = FastClock()
    raw, _ = run_live(width, clock, make_chain(clock.t - 100, twelve(5)))
    lines = shown_lines(raw)
    assert max(cell_len(line) for line in lines) <= width, [ln for ln in lines if len(ln) > width]
    assert any("━" in line for line in lines)  # the bar
    assert any("6/12 done" in line for line in lines)  # after the second poll
    assert any(line.strip().startswith("ETA ") or "  ETA " in line for line in lines)
    # the block's lines are cut, not wrapped: the header keeps one line, ending in an ellipsis
    header = f"chain {CHAIN_ID}  RUNNING  elapsed 0:01:40  next poll in 30s"
    assert (header if len(header) <= width else header[: width - 1] + "…") in lines
    # the long event was wrapped by rich, not cut: every word of it is on screen
    words = " ".join(lines).split()
    assert all(word in words for word in LONG_EVENT.split())


def test_the_eta_of_the_block_is_computed_from_the_chain(tty_env):
    clock = FastClock()
    raw, _ = run_live(200, clock, make_chain(clock.t - 100, twelve(5)))
    lines = shown_lines(raw)
    # 5 of 12 in 100 s: 7 more take 140 s; then 6 of 12 in 100 s: 6 more take 100 s
    assert any(line.endswith("5/12 done  ETA 0:02:20") for line in lines), lines
    assert any(line.endswith("6/12 done  ETA 0:01:40") for line in lines), lines
    assert f"chain {CHAIN_ID}  RUNNING  elapsed 0:01:40  next poll in 30s" in lines


def test_events_scroll_above_the_block_and_its_clock_ticks_between_polls(tty_env):
    clock = FastClock()
    buf, console = live_console(80, clock)
    console.attach()
    try:
        console.on_poll(make_chain(clock.t - 100, twelve(5)), PollReport(True, 30.0, 0))
        mark = len(buf.getvalue())
        clock.t += 10
        logger.info("an event between polls")
        after = buf.getvalue()[mark:]
    finally:
        console.detach()
    text = CSI.sub("", after)
    # the event first, then the block drawn again below it, read at the new time
    assert text.index("an event between polls") < text.index("elapsed 0:01:50  next poll in 20s")
    assert "5/12 done  ETA 0:02:34" in text  # 7 tasks at 5 per 110 s


def test_a_resize_is_followed(tty_env):
    clock = FastClock()
    buf = io.StringIO()
    screen = terminal(buf, 60)
    console = Console(buf, 0, live=True, clock=clock, screen=screen, refresh_per_second=0)
    console.attach()
    try:
        console.on_poll(make_chain(clock.t - 100, twelve(5)), PollReport(True, 30.0, 0))
        before = shown_lines(buf.getvalue())
        mark = len(buf.getvalue())
        screen.width = 24  # the pane was narrowed
        logger.info("narrowed")
        after = shown_lines(buf.getvalue()[mark:])
    finally:
        console.detach()
    assert max(len(line) for line in before) > 24  # the test can fail
    assert max(len(line) for line in after) <= 24, after
    assert "ETA 0:02:20" in after


@pytest.mark.parametrize("no_color", [True, False])
def test_no_color_leaves_no_colour_codes(tty_env, monkeypatch, no_color):
    if no_color:
        monkeypatch.setenv("NO_COLOR", "1")
    clock = FastClock()
    raw, _ = run_live(80, clock, make_chain(clock.t - 100, twelve(5)))
    assert "━" in raw and "OUT_OF_MEMORY" in raw
    if no_color:
        assert colour_codes(raw) == []
    else:
        assert colour_codes(raw)  # the bar and the warning are coloured otherwise


def test_not_a_terminal_gets_plain_lines_and_no_escape_codes(tty_env):
    clock = FastClock()
    buf = io.StringIO()  # not a TTY
    console = Console(buf, 0, clock=clock)
    console.attach()
    try:
        chain = make_chain(clock.t - 100, twelve(5))
        logger.info("submitted array 0-11 at level 0 (attempt 1) as job 100")
        console.echo(f"chain {CHAIN_ID}: job 100; log monitor.log")
        console.on_poll(chain, PollReport(True, 30.0, 0))
        console.on_poll(chain, PollReport(False, 30.0, 0))  # nothing changed: no line
        console.finish()
    finally:
        console.detach()
    lines = buf.getvalue().splitlines()
    assert "\x1b" not in buf.getvalue() and "━" not in buf.getvalue()
    assert len(lines) == 3
    assert lines[0].endswith(" INFO    submitted array 0-11 at level 0 (attempt 1) as job 100")
    assert lines[1] == f"chain {CHAIN_ID}: job 100; log monitor.log"
    at = datetime.fromtimestamp(clock.t).strftime("%Y-%m-%d %H:%M:%S")  # the injected clock's
    assert lines[2] == f"{at} STATUS  running 7  completed 4  failed 1"


def test_live_block_lines_are_unchanged_text():
    chain = make_chain(1000.0, twelve(5))
    assert live_block(chain, 1100.0, 30.0) == [
        f"chain {CHAIN_ID}  RUNNING  elapsed 0:01:40  next poll in 30s",
        "  tasks 12: running 7  completed 4  failed 1",
        "  levels  L0: 7 active/4 done",
        "  submissions 1 (resubmissions 0)",
    ]


# ------------------------------------------------------------------ watch


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ChainStore:
    monkeypatch.setenv("SLURM_ESCALATE_HOME", str(tmp_path / "state"))
    return ChainStore()


def no_slurm() -> object:
    raise AssertionError("watch must not call Slurm")


def saved_chain(store: ChainStore, clock: FastClock) -> Chain:
    chain = make_chain(clock.t - 100, [S.COMPLETED, S.RUNNING, S.FAILED, S.PENDING])
    store.create(chain)
    store.save(chain)
    return chain


def test_watch_frames_carry_the_progress_of_the_summary(store):
    clock = FastClock()
    saved_chain(store, clock)
    frames: list[chains.Frame] = []
    env = Env(client_factory=no_slurm, clock=clock)
    assert chains.watch(env, chains.WatchInput(CHAIN_ID, once=True), frames.append) == 0
    # 2 of 4 finished (one completed, one failed) in 100 s: 2 more take 100 s
    assert [f.progress for f in frames] == [Progress(4, 2, 100.0)]


@pytest.mark.parametrize("width", [20, 30, 120])
def test_watch_live_frame_has_the_bar_and_eta_within_the_width(tty_env, store, width):
    clock = FastClock()
    saved_chain(store, clock)
    buf = io.StringIO()
    view = FrameView(buf, True, screen=terminal(buf, width))
    env = Env(client_factory=no_slurm, clock=clock)
    try:
        chains.watch(env, chains.WatchInput(CHAIN_ID, once=True), view)
    finally:
        view.close()
    lines = shown_lines(buf.getvalue())
    assert max(cell_len(line) for line in lines) <= width, lines
    assert any("━" in line for line in lines)
    assert any("2/4 done" in line for line in lines)
    assert any("ETA 0:01:40" in line for line in lines), lines


def test_watch_off_a_terminal_prints_the_plain_frame(store):
    clock = FastClock()
    saved_chain(store, clock)
    buf = io.StringIO()
    env = Env(client_factory=no_slurm, clock=clock)
    chains.watch(env, chains.WatchInput(CHAIN_ID, once=True), FrameView(buf, False))
    out = buf.getvalue()
    assert "\x1b" not in out and "━" not in out and "ETA" not in out
    assert out.splitlines()[1] == "  tasks 4: pending 1  running 1  completed 1  failed 1"
