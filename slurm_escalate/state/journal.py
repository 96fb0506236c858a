"""A chain on disk: an immutable spec, an append-only journal, snapshots, a summary.

Files in the chain's directory::

    chain.json      the request, written once at creation (never rewritten)
    journal.jsonl   a header line, then one line per event (see core/events.py):
                    {"e": <writer's epoch>, "ev": {"t": "tasks", ...}}
    snapshot.json   the whole view at one point of the journal: {"covers": {"gen", "bytes"}, ...}
    summary.json    counts by state and level, for ``list``, ``status`` and ``watch``

Why this shape:
- A save appends what changed, fsynced, so it costs what changed: a poll in which
  1,000 tasks of a 100,000-task chain end writes a few tens of KB, not the chain.
- Loading is the snapshot plus the replay of the journal after the point it
  covers, through the same ``apply`` the monitor used, so a resumed monitor sees
  exactly what the last one did.
- Compaction writes a snapshot covering the whole current journal (generation
  *g*, *n* bytes), then starts generation *g+1* by renaming a fresh journal into
  place. A crash between the two leaves a snapshot that covers the old journal
  to its end: nothing is replayed twice and nothing is lost.
- A torn last line (a writer killed mid-append) is dropped with a warning. Any
  other unreadable line is an error naming the file and the line; it is never
  rewritten silently.
- Every record carries its writer's epoch. A monitor that takes a chain appends
  an ``owner`` event with the next epoch, so a stale writer (one whose lock did
  not hold, as on an NFS home mounted ``nolock``) finds a newer owner in the
  journal before its next append and stops; readers ignore its late records.
"""

from __future__ import annotations

import os
import socket
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path

import msgspec

from slurm_escalate.arrays.spec import expand
from slurm_escalate.core.chain import (
    Chain,
    Submission,
    SubmissionStatus,
    TaskStatus,
    task_levels,
)
from slurm_escalate.core.events import (
    JOURNAL_VERSION,
    Event,
    EventError,
    Owner,
    Record,
    apply,
)
from slurm_escalate.core.models import ChainState, Level, TaskState
from slurm_escalate.errors import StateError
from slurm_escalate.state.faults import crash_point

SPEC_FILE = "chain.json"
JOURNAL_FILE = "journal.jsonl"
SNAPSHOT_FILE = "snapshot.json"
SUMMARY_FILE = "summary.json"
MUTABLE = ("state", "finished_at", "base", "min_poll", "max_poll", "tasks", "submissions")
COMPACT_ENV = "SLURM_ESCALATE_COMPACT_BYTES"
COMPACT_MIN_BYTES = 8 * 1024 * 1024  # never compact a journal smaller than this ...
# ... nor one smaller than the last snapshot: compaction then costs at most as many
# bytes as the journal it folds away, so the total written stays within twice the journal.

_record_encoder = msgspec.json.Encoder()
_record_decoder = msgspec.json.Decoder(Record)


class Header(msgspec.Struct):
    journal: int  # JOURNAL_VERSION
    gen: int


class Covers(msgspec.Struct):
    gen: int
    bytes: int


class Snapshot(msgspec.Struct):
    covers: Covers
    epoch: int
    state: ChainState
    finished_at: float | None
    base: Level
    min_poll: float
    max_poll: float
    tasks: list[TaskStatus]
    submissions: list[Submission]


def snapshot_of(chain: Chain, covers: Covers, epoch: int) -> Snapshot:
    """The chain's mutable part, as of the journal position ``covers``."""
    return Snapshot(
        covers=covers,
        epoch=epoch,
        **{name: getattr(chain, name) for name in MUTABLE},
    )


PROBLEM_STATES = frozenset({TaskState.FAILED, TaskState.EXHAUSTED, TaskState.CANCELLED})
PROBLEM_ROWS = 50  # the summary lists this many tasks that did not complete; status --json all


class ProblemRow(msgspec.Struct):
    """A task that did not complete, as ``status`` lists it."""

    task: str  # the id Slurm knows its last attempt by, e.g. "123_4"
    state: TaskState
    level: int
    tries: int
    exit_code: int | None
    reason: str


class Summary(msgspec.Struct):
    """Everything ``list``, ``status`` and ``watch`` show, at the same cost for any chain."""

    chain_id: str
    state: ChainState
    tasks: int
    counts: dict[str, int]  # by task state
    levels: dict[str, dict[str, int]]  # level -> task state -> count
    updated_at: float
    epoch: int
    created_at: float = 0.0
    finished_at: float | None = None
    submissions: int = 0
    resubmissions: int = 0  # submitted after the first
    problems: list[ProblemRow] = []  # the first PROBLEM_ROWS tasks that did not complete
    problems_total: int = 0
    script: str | None = None
    table: dict[str, dict[str, int]] = {}  # watch's per-level table: level -> column -> tasks
    # The journal as it was when this was written: while it still is, this is current.
    journal_ino: int = -1
    journal_size: int = -1


# The spec holds every field as it was at creation; a snapshot overrides the MUTABLE ones.
_SPEC_FIELDS = [
    f.name for f in fields(Chain) if f.name not in ("state", "finished_at", "tasks", "submissions")
]


class StaleWriter(StateError):
    """Another monitor took this chain: this one must stop writing."""


@dataclass
class Loaded:
    chain: Chain
    epoch: int  # the newest owner's epoch (0: never owned)
    owner: Owner | None
    gen: int  # the journal's generation
    journal_bytes: int  # how far the journal was read (its size, less a torn tail)
    snapshot_bytes: int
    torn: bool


# ---------------------------------------------------------------- reading


def is_journal_chain(directory: Path) -> bool:
    return (directory / SPEC_FILE).is_file()


def write_spec(directory: Path, chain: Chain, indices: str | None) -> None:
    """The immutable part, written once; the journal's generation 0 starts empty."""
    spec: dict[str, object] = {name: getattr(chain, name) for name in _SPEC_FIELDS}
    spec["indices"] = indices
    atomic_write(directory / JOURNAL_FILE, header(0))
    atomic_write(directory / SPEC_FILE, msgspec.json.encode(spec))


def header(gen: int) -> bytes:
    return msgspec.json.encode(Header(JOURNAL_VERSION, gen)) + b"\n"


def encode(value: object) -> bytes:
    return msgspec.json.encode(value)


def read_spec(directory: Path) -> Chain:
    path = directory / SPEC_FILE
    try:
        raw = msgspec.json.decode(path.read_bytes())
    except OSError as e:
        raise StateError(f"cannot read {path}: {e.strerror}") from None
    except msgspec.DecodeError as e:
        raise StateError(f"{path}: corrupt chain spec ({e})") from None
    try:
        indices = raw.pop("indices")
        base = msgspec.convert(raw.pop("base"), Level)
        if raw.get("version") != 1:
            raise ValueError(f"unsupported chain version {raw.get('version')!r}")
        keys: Iterable[int | None] = expand(indices) if indices is not None else (None,)
        tasks = [TaskStatus(index=i, level=raw["start_level"]) for i in keys]
        return Chain(**raw, base=base, tasks=tasks)
    except (KeyError, TypeError, ValueError, msgspec.ValidationError) as e:
        raise StateError(f"{path}: corrupt chain spec ({e})") from None


def load(directory: Path, warn: Callable[[str], None] | None = None) -> Loaded:
    """The chain as its last writer left it: spec, snapshot, then the journal's tail."""
    chain = read_spec(directory)
    snap_path = directory / SNAPSHOT_FILE
    covers, epoch, snap_bytes = Covers(-1, 0), 0, 0
    try:
        data = snap_path.read_bytes()
    except FileNotFoundError:
        data = None
    except OSError as e:
        raise StateError(f"cannot read {snap_path}: {e.strerror}") from None
    if data is not None:
        try:
            snap = msgspec.json.decode(data, type=Snapshot)
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            raise StateError(f"{snap_path}: corrupt snapshot ({e})") from None
        covers, epoch, snap_bytes = snap.covers, snap.epoch, len(data)
        for name in MUTABLE:
            setattr(chain, name, getattr(snap, name))
    path = directory / JOURNAL_FILE
    try:
        text = path.read_bytes()
    except OSError as e:
        raise StateError(f"cannot read {path}: {e.strerror}") from None
    first = text.find(b"\n")
    try:
        header = msgspec.json.decode(text[: first if first >= 0 else len(text)], type=Header)
    except (msgspec.DecodeError, msgspec.ValidationError):
        raise StateError(f"{path}:1: corrupt journal header") from None
    if header.journal != JOURNAL_VERSION:
        raise StateError(f"{path}: unsupported journal version {header.journal}")
    if header.gen == covers.gen:
        start = covers.bytes
    elif header.gen == covers.gen + 1:
        start = first + 1
    else:
        raise StateError(
            f"{path}: journal generation {header.gen} does not follow snapshot "
            f"generation {covers.gen}"
        )
    start = max(start, first + 1)
    owner, end, torn = None, start, False
    line_no = text.count(b"\n", 0, start) + 1
    pos = start
    size = len(text)
    while pos < size:
        nl = text.find(b"\n", pos)
        if nl < 0:  # killed mid-append: the last line never got its newline
            torn = True
            if warn:
                warn(f"{path}:{line_no}: dropped a torn last line ({size - pos} bytes)")
            break
        try:
            record = _record_decoder.decode(text[pos:nl])
            if record.e < epoch:
                if warn:
                    warn(f"{path}:{line_no}: ignored a record of stale writer epoch {record.e}")
            else:
                if isinstance(record.ev, Owner):
                    if record.ev.epoch > epoch:
                        epoch, owner = record.ev.epoch, record.ev
                else:
                    apply(chain, record.ev)
        except (msgspec.DecodeError, msgspec.ValidationError, EventError) as e:
            raise StateError(f"{path}:{line_no}: corrupt journal line ({e})") from None
        pos = nl + 1
        end = pos
        line_no += 1
    return Loaded(chain, epoch, owner, header.gen, end, snap_bytes, torn)


def read_summary(directory: Path) -> Summary | None:
    try:
        return msgspec.json.decode((directory / SUMMARY_FILE).read_bytes(), type=Summary)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return None


def summarize(
    chain: Chain,
    counts: Mapping[tuple[TaskState, int], int],
    problems: Iterable[int | None],
    table: Mapping[int, Mapping[str, int]],
    now: float,
    epoch: int,
) -> Summary:
    """The summary from counts of tasks by (state, level) and the tasks that did not complete."""
    by_state: Counter[str] = Counter()
    by_level: dict[int, dict[str, int]] = {}
    for (state, level), n in counts.items():
        if n:
            by_state[state.value] += n
            by_level.setdefault(level, {})[state.value] = n
    bad = sorted(problems, key=lambda i: -1 if i is None else i)
    rows = []
    for index in bad[:PROBLEM_ROWS]:
        t = chain.task(index)
        name = t.task_job_id(t.current) if t.current else str(t.index)
        rows.append(ProblemRow(name, t.state, t.level, len(t.attempts), t.exit_code, t.reason))
    return Summary(
        chain_id=chain.chain_id,
        state=chain.state,
        tasks=len(chain.tasks),
        counts=dict(by_state),
        levels={str(k): v for k, v in sorted(by_level.items())},
        updated_at=now,
        epoch=epoch,
        created_at=chain.created_at,
        finished_at=chain.finished_at,
        submissions=len(chain.submissions),
        resubmissions=sum(
            1 for s in chain.submissions[1:] if s.status is SubmissionStatus.SUBMITTED
        ),
        problems=rows,
        problems_total=len(bad),
        script=chain.script,
        table={
            str(level): {c: n for c, n in columns.items() if n}
            for level, columns in sorted(table.items())
            if any(columns.values())
        },
    )


def summarize_chain(chain: Chain, now: float, epoch: int = 0) -> Summary:
    """The same summary, counted from the whole chain (for a chain no book keeps)."""
    counts = Counter((t.state, t.level) for t in chain.tasks)
    problems = [t.index for t in chain.tasks if t.state in PROBLEM_STATES]
    table: dict[int, Counter[str]] = {}
    for task in chain.tasks:
        for level, column in task_levels(task).items():
            table.setdefault(level, Counter())[column] += 1
    return summarize(chain, counts, problems, table, now, epoch)


# ---------------------------------------------------------------- writing


class Journal:
    """The one writer of a chain's journal (take it with :meth:`claim`)."""

    def __init__(self, directory: Path, loaded: Loaded, epoch: int) -> None:
        self.directory = directory
        self.path = directory / JOURNAL_FILE
        self.epoch = epoch
        self.gen = loaded.gen
        self.snapshot_bytes = loaded.snapshot_bytes
        self.owner = Owner(host=socket.gethostname(), pid=os.getpid(), epoch=epoch, at=0.0)
        self._fd = -1
        self._open(loaded.journal_bytes, truncate_torn=loaded.torn)

    @classmethod
    def claim(
        cls, directory: Path, loaded: Loaded, now: float, host: str | None = None
    ) -> Journal:
        """Become the chain's writer: append an ``owner`` event with the next epoch.

        Another writer that appended its own claim first wins; this one then
        raises StaleWriter and writes nothing more.
        """
        epoch = loaded.epoch + 1
        journal = cls(directory, loaded, epoch)
        me = Owner(host=host or socket.gethostname(), pid=os.getpid(), epoch=epoch, at=now)
        journal.owner = me
        before = journal._size
        journal.append([me])
        for record in journal._records_between(before, journal._size):
            if isinstance(record.ev, Owner) and record.ev.epoch >= epoch and record.ev != me:
                journal.close()
                raise StaleWriter(
                    f"chain {directory.name} was claimed at the same moment by "
                    f"{record.ev.host} pid {record.ev.pid}"
                )
            if record.ev == me:
                break
        return journal

    def _open(self, size: int, truncate_torn: bool = False) -> None:
        flags = os.O_WRONLY | os.O_APPEND
        try:
            fd = os.open(self.path, flags)
            if truncate_torn:
                os.ftruncate(fd, size)  # the torn line was never a record
        except OSError as e:
            raise StateError(f"cannot open {self.path}: {e.strerror}") from None
        # ``size`` is how much of the journal this writer has seen; anything beyond it
        # at the next append was written by someone else (see _check_owner).
        self._fd, self._ino, self._size = fd, os.fstat(fd).st_ino, size

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def append(self, events: Iterable[Event]) -> int:
        """Append events as lines, fsynced together; returns the bytes written."""
        data = b"".join(
            _record_encoder.encode(Record(e=self.epoch, ev=ev)) + b"\n" for ev in events
        )
        if not data:
            return 0
        self._check_owner()
        crash_point("mid-append", last_words=lambda: os.write(self._fd, data[: len(data) // 2]))
        try:
            written = os.write(self._fd, data)
            if written != len(data):
                raise OSError(28, "short write")
            os.fsync(self._fd)
        except OSError as e:
            raise StateError(f"cannot write {self.path}: {e.strerror}") from None
        self._size += len(data)
        return len(data)

    def _check_owner(self) -> None:
        """Stop if anyone else wrote here since our last append (a newer owner)."""
        try:
            st = os.stat(self.path)
        except OSError as e:
            raise StateError(f"cannot stat {self.path}: {e.strerror}") from None
        if st.st_ino == self._ino and st.st_size == self._size:
            return
        if st.st_ino != self._ino:
            raise StaleWriter(f"chain {self.directory.name}: another monitor compacted its journal")
        for record in self._records_between(self._size, st.st_size):
            if isinstance(record.ev, Owner) and record.ev.epoch >= self.epoch:
                raise StaleWriter(
                    f"chain {self.directory.name} was taken over by {record.ev.host} "
                    f"pid {record.ev.pid} (epoch {record.ev.epoch}); this monitor stops"
                )
        raise StaleWriter(f"chain {self.directory.name}: another process wrote to its journal")

    def _records_between(self, start: int, end: int) -> list[Record]:
        with open(self.path, "rb") as f:
            f.seek(start)
            data = f.read(end - start)
        out = []
        for line in data.split(b"\n"):
            if line:
                try:
                    out.append(_record_decoder.decode(line))
                except (msgspec.DecodeError, msgspec.ValidationError):
                    continue
        return out

    @property
    def size(self) -> int:
        return self._size

    def should_compact(self) -> bool:
        floor = os.environ.get(COMPACT_ENV, "")
        if floor.isdigit():  # crash tests: compact once the journal passes this many bytes
            return self._size >= int(floor)
        return self._size >= max(COMPACT_MIN_BYTES, self.snapshot_bytes)

    def compact(self, chain: Chain) -> None:
        """Fold the journal into a snapshot and start the next generation."""
        self._check_owner()
        data = msgspec.json.encode(snapshot_of(chain, Covers(self.gen, self._size), self.epoch))
        crash_point("mid-compaction")
        atomic_write(self.directory / SNAPSHOT_FILE, data)
        crash_point("after-snapshot")
        self.gen += 1
        first = header(self.gen)
        # The new generation starts with the owner, so the epoch survives compaction.
        owner = _record_encoder.encode(Record(e=self.epoch, ev=self.owner))
        self.close()
        atomic_write(self.path, first + owner + b"\n")
        self.snapshot_bytes = len(data)
        self._open(len(first) + len(owner) + 1)

    def reclaim(self, now: float) -> None:
        """This process takes over from the one that claimed (a daemon after its parent).

        Daemonizing closed every inherited descriptor, so the journal is opened
        again (the old number may belong to another file by now: not closed).
        """
        self._fd = -1
        self._open(self._size)
        self.epoch += 1
        self.owner = Owner(host=socket.gethostname(), pid=os.getpid(), epoch=self.epoch, at=now)
        self.append([self.owner])

    def write_summary(self, summary: Summary) -> None:
        stamped = msgspec.structs.replace(summary, journal_ino=self._ino, journal_size=self._size)
        atomic_write(self.directory / SUMMARY_FILE, msgspec.json.encode(stamped))


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write a whole file so that readers see the old one or the new one, never half."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    tmp = path.with_name(f".{path.name}.{socket.gethostname()}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fsync(fd)
        finally:
            os.close(fd)
        crash_point("mid-save")
        os.replace(tmp, path)
    except OSError as e:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise StateError(f"cannot write {path}: {e.strerror}") from None
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


__all__ = [
    "Journal",
    "Loaded",
    "StaleWriter",
    "Summary",
    "atomic_write",
    "is_journal_chain",
    "load",
    "read_spec",
    "read_summary",
    "summarize",
    "write_spec",
]
