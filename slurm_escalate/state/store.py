"""Chain state on disk.

Layout, under ``$SLURM_ESCALATE_HOME`` or ``${XDG_STATE_HOME:-~/.local/state}/slurm-escalate``::

    chains/<chain-id>/chain.json     the request, written once
    chains/<chain-id>/journal.jsonl  one line per event, appended (see journal.py)
    chains/<chain-id>/snapshot.json  the view at one point of the journal (compaction)
    chains/<chain-id>/summary.json   counts by state and level, for list/status/watch
    chains/<chain-id>/state.json     a chain of release 0.1 (whole state), read and
                                     migrated to the journal when a monitor resumes it
    chains/<chain-id>/monitor.log    the monitor's story (loguru)
    chains/<chain-id>/monitor.lock   held (fcntl.lockf) by the one monitor driving the chain
    chains/<chain-id>/monitor.pid    "<host> <pid>" of that monitor, for humans and `list`
    chains/<chain-id>/ladder.yaml    the ladder as it was at submission
    chains/<chain-id>/script/<name>  the job script as it was at submission
    sweeps.json                      per cluster, the last time-limit sweep a monitor saw
                                     (a TIMEOUT's End): when the next TIMEOUT will show

Why this shape:
- A save appends what changed to the journal, fsynced; whole files (spec,
  snapshot, summary, heartbeat) go to a temporary file that is fsynced and
  renamed into place. Rename is atomic on local filesystems and on NFS (a single
  server-side operation), so a reader in another shell, or on another login
  node, sees the old file or the new one, never half of one.
- ``lockf`` takes a POSIX record lock, which NFSv3 (through lockd) and NFSv4
  honour across hosts, unlike ``flock`` on older clients. It dies with the
  process, so a crashed monitor never leaves a stale lock behind.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import secrets
import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import msgspec
from loguru import logger

from slurm_escalate.arrays.compress import compress
from slurm_escalate.core.chain import Chain, Headline, from_dict
from slurm_escalate.core.interval import Sweep
from slurm_escalate.core.models import TaskState
from slurm_escalate.errors import StateError
from slurm_escalate.state import journal
from slurm_escalate.state.book import ChainBook
from slurm_escalate.state.journal import (
    SNAPSHOT_FILE,
    SPEC_FILE,
    Covers,
    Journal,
    Loaded,
    atomic_write,
)

STATE_FILE = "state.json"  # release 0.1's whole-chain state
MIGRATED_FILE = "state.json.v1"  # kept, untouched, after migration to the journal
LOG_FILE = "monitor.log"
LOCK_FILE = "monitor.lock"
PID_FILE = "monitor.pid"
HEARTBEAT_FILE = "heartbeat.json"
SWEEPS_FILE = "sweeps.json"
LEASE_GRACE_S = 120.0  # a heartbeat this much past its announced next poll: the owner is gone


def default_home(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get("SLURM_ESCALATE_HOME"):
        return Path(env["SLURM_ESCALATE_HOME"]).expanduser()
    xdg = env.get("XDG_STATE_HOME")
    if not xdg:
        # Without HOME, expanduser asks the password database; a user unknown to
        # it would otherwise get a directory literally named "~" in the cwd.
        xdg = os.path.expanduser("~/.local/state")
        if xdg.startswith("~"):
            raise StateError(
                "HOME is not set and this user has no password entry: "
                "set SLURM_ESCALATE_HOME to a state directory"
            )
    return Path(xdg) / "slurm-escalate"


def new_chain_id(now: float) -> str:
    """Sortable, unique without coordination, short enough to type: ``20261122-153012-a1b2``."""
    stamp = datetime.fromtimestamp(now).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{secrets.token_hex(2)}"


class ChainStore:
    def __init__(self, home: Path | None = None) -> None:
        self.home = home if home is not None else default_home()
        self.chains_dir = self.home / "chains"
        # The last chain loaded, with what its files looked like: a command that loads a
        # chain to check it and then opens its book reads it once, not twice.
        self._last: tuple[str, tuple[object, ...], Loaded] | None = None

    def chain_dir(self, chain_id: str) -> Path:
        return self.chains_dir / chain_id

    def log_path(self, chain_id: str) -> Path:
        """The chain's log, created private (0600) so loguru only ever appends to it."""
        path = self.chain_dir(chain_id) / LOG_FILE
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        except OSError:
            pass  # reported when the log is opened
        return path

    def create(self, chain: Chain) -> Path:
        """Make the chain's directory (must be new) and write its spec and empty journal."""
        try:
            self.chains_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            self.home.chmod(0o700)
            path = self.chain_dir(chain.chain_id)
            path.mkdir(mode=0o700)
        except FileExistsError:
            raise StateError(f"chain {chain.chain_id} already exists") from None
        except OSError as e:
            raise StateError(
                f"cannot create state directory {self.chains_dir}: {e.strerror}"
            ) from None
        real = [t.index for t in chain.tasks if t.index is not None]
        try:
            journal.write_spec(path, chain, compress(real) if chain.is_array else None)
        except StateError:
            self.discard(chain.chain_id)
            raise
        return path

    def discard(self, chain_id: str) -> None:
        """Remove the directory of a chain that never submitted anything (its setup failed)."""
        shutil.rmtree(self.chain_dir(chain_id), ignore_errors=True)

    def load(self, chain_ref: str) -> Chain:
        """The chain as its last writer left it (for readers: status, report, list)."""
        return self._load(self.resolve(chain_ref)).chain

    def _check_owner(self, chain_id: str) -> Path:
        """The chain's directory, if it is this user's (StateError otherwise)."""
        directory = self.chain_dir(chain_id)
        main = directory / (SPEC_FILE if journal.is_journal_chain(directory) else STATE_FILE)
        try:
            owner = main.stat().st_uid
        except OSError:
            owner = os.getuid()
        if owner != os.getuid():
            raise StateError(f"chain {chain_id} belongs to another user (uid {owner}): {main}")
        return directory

    def _load(self, chain_id: str) -> Loaded:
        directory = self._check_owner(chain_id)
        if journal.is_journal_chain(directory):
            seen = _files_key(directory)
            if self._last is not None and self._last[:2] == (chain_id, seen):
                return self._last[2]
            loaded = journal.load(directory, warn=lambda m: logger.warning(m))
            self._last = (chain_id, seen, loaded)
            return loaded
        chain = self._load_legacy(chain_id)
        return Loaded(chain, 0, None, -1, 0, 0, False)

    def _load_legacy(self, chain_id: str) -> Chain:
        path = self.chain_dir(chain_id) / STATE_FILE
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise StateError(f"chain {chain_id}: no state file {path}") from None
        except (OSError, UnicodeDecodeError) as e:
            raise StateError(f"chain {chain_id}: cannot read {path}: {e}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise StateError(
                f"{path}: corrupt chain state (invalid JSON at line {e.lineno})"
            ) from None
        return from_dict(data, str(path))

    def open_book(self, chain_id: str, now: float) -> ChainBook:
        """Become the chain's one writer (hold ``lock`` first): load, claim, return its book.

        A chain of release 0.1 is migrated first: its state becomes the first
        snapshot, and state.json is kept, renamed, beside it.
        """
        directory = self.chain_dir(chain_id)
        loaded = self._load(chain_id)
        if loaded.gen < 0:
            loaded = self._migrate(loaded.chain)
        self._check_lease(chain_id, loaded)
        book = ChainBook(loaded.chain, Journal.claim(directory, loaded, now))
        book.write_summary(now)
        return book

    def save(self, chain: Chain) -> None:
        """Write the chain whole, as a snapshot that covers its journal to the end.

        For importing a chain built elsewhere (tests, fixtures); a monitor never
        calls this: it appends events through its book.
        """
        book = self.open_book(chain.chain_id, time.time())
        try:
            book.journal.compact(chain)
            book.journal.write_summary(journal.summarize_chain(chain, time.time(), book.epoch))
        finally:
            book.close()

    def _migrate(self, chain: Chain) -> Loaded:
        directory = self.chain_dir(chain.chain_id)
        header = journal.header(0)
        snap = journal.snapshot_of(chain, Covers(0, len(header)), epoch=0)
        atomic_write(directory / SNAPSHOT_FILE, journal.encode(snap))
        real = [t.index for t in chain.tasks if t.index is not None]
        journal.write_spec(directory, chain, compress(real) if chain.is_array else None)
        try:
            os.replace(directory / STATE_FILE, directory / MIGRATED_FILE)
        except OSError as e:
            raise StateError(f"cannot rename {directory / STATE_FILE}: {e.strerror}") from None
        logger.bind(chain=chain.chain_id).info(
            f"chain state moved to a journal; the old state is kept as {MIGRATED_FILE}"
        )
        return journal.load(directory)

    def _check_lease(self, chain_id: str, loaded: Loaded) -> None:
        """Refuse while another host's monitor is alive by its heartbeat.

        ``lockf`` already keeps two monitors apart where locks work. On a home
        mounted without working locks (``nolock``, ``local_lock=all``) the last
        owner's heartbeat is the lease: fresh (its next poll is not overdue by
        more than LEASE_GRACE_S), the chain stays with it.
        """
        owner = loaded.owner
        if owner is None or (owner.host, owner.pid) == (socket.gethostname(), os.getpid()):
            return
        beat = self.heartbeat(chain_id) or {}
        if beat.get("host") != owner.host or beat.get("pid") != owner.pid:
            return
        if owner.host == socket.gethostname() and not _pid_alive(owner.pid):
            return
        at, next_s = beat.get("at"), beat.get("next_poll_s")
        if not isinstance(at, (int, float)) or not isinstance(next_s, (int, float)):
            return
        if beat.get("stopped"):
            return
        age = time.time() - at
        if age <= next_s + LEASE_GRACE_S:
            raise StateError(
                f"chain {chain_id} is being monitored on {owner.host} (pid {owner.pid}, "
                f"heartbeat {age:.0f}s ago)"
            )

    def summary(self, chain_id: str) -> journal.Summary | None:
        """The chain's summary.json (None for a chain no monitor has summarised)."""
        return journal.read_summary(self.chain_dir(chain_id))

    def fresh_summary(self, chain_id: str) -> journal.Summary | None:
        """The summary, if it was written after the journal's last append; else None.

        A monitor writes it after every poll, noting the journal's size (and inode),
        so it lags the journal only when the monitor died in between: then the
        caller loads the chain instead.
        """
        directory = self._check_owner(chain_id)
        if not journal.is_journal_chain(directory):
            return None
        summary = journal.read_summary(directory)
        try:
            st = (directory / journal.JOURNAL_FILE).stat()
        except OSError:
            return None
        if summary is None or (summary.journal_ino, summary.journal_size) != (
            st.st_ino,
            st.st_size,
        ):
            return None  # something was appended (or compacted) since it was written
        return summary

    def headline(self, chain_id: str) -> Headline:
        """What ``list`` shows of a chain, from its summary: the same cost at any size."""
        directory = self.chain_dir(chain_id)
        found = journal.read_summary(directory) if journal.is_journal_chain(directory) else None
        if found is not None:
            try:
                script = msgspec.json.decode((directory / SPEC_FILE).read_bytes(), type=_Script)
            except (OSError, msgspec.DecodeError, msgspec.ValidationError):
                found = None
        if found is None:  # a chain of release 0.1, or one no monitor has summarised yet
            chain = self.load(chain_id)
            return Headline(chain_id, chain.state, chain.script, len(chain.tasks), chain.counts())
        counts = {TaskState(k): v for k, v in found.counts.items()}
        return Headline(chain_id, found.state, script.script, found.tasks, counts)

    def resolve(self, chain_ref: str) -> str:
        """A full chain id, or a unique prefix or suffix of one."""
        if not chain_ref or "/" in chain_ref or chain_ref.startswith("."):
            raise StateError(f"not a chain id: {chain_ref!r}")
        ids = self.chain_ids()
        if chain_ref in ids:
            return chain_ref
        matches = [c for c in ids if c.startswith(chain_ref) or c.endswith(chain_ref)]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            raise StateError(f"no chain {chain_ref!r} under {self.chains_dir}")
        raise StateError(f"chain {chain_ref!r} is ambiguous: {', '.join(matches[:5])}")

    def chain_ids(self) -> list[str]:
        try:
            return sorted(
                p.name
                for p in self.chains_dir.iterdir()
                if (p / SPEC_FILE).is_file() or (p / STATE_FILE).is_file()
            )
        except FileNotFoundError:
            return []

    def beat(self, chain_id: str, beat: dict[str, object]) -> None:
        """The monitor's pulse after every poll (small; the state file is not rewritten)."""
        atomic_write(self.chain_dir(chain_id) / HEARTBEAT_FILE, json.dumps(beat))

    def sweep(self, cluster: str) -> Sweep | None:
        """The last time-limit sweep seen on ``cluster`` by any chain of this home."""
        try:
            known = json.loads((self.home / SWEEPS_FILE).read_text()).get(cluster)
            return Sweep(at=float(known["at"]), seen=float(known["seen"]))
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            return None  # none yet, or unreadable: the monitor learns it again

    def save_sweep(self, cluster: str, sweep: Sweep) -> None:
        """Remember a newer sweep for the monitors of other chains (a small rewrite)."""
        path = self.home / SWEEPS_FILE
        try:
            known = json.loads(path.read_text())
            known = known if isinstance(known, dict) else {}
        except (OSError, ValueError):
            known = {}
        known[cluster] = {"at": sweep.at, "seen": sweep.seen}
        atomic_write(path, json.dumps(known))

    def heartbeat(self, chain_id: str) -> dict[str, object] | None:
        """The last pulse: {"at", "pid", "host", "failures", "next_poll_s", "error"}, or None."""
        try:
            data = json.loads((self.chain_dir(chain_id) / HEARTBEAT_FILE).read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def monitor_info(self, chain_id: str) -> tuple[str, int] | None:
        """(host, pid) of the monitor that last claimed the chain, if its pid file says so."""
        try:
            host, pid = (self.chain_dir(chain_id) / PID_FILE).read_text().split()
            return host, int(pid)
        except (OSError, ValueError):
            return None

    def monitor_alive(self, chain_id: str) -> bool | None:
        """True/False when the monitor ran on this host; None when it ran elsewhere."""
        info = self.monitor_info(chain_id)
        if info is None:
            return False
        host, pid = info
        if host != socket.gethostname():
            return None
        return _pid_alive(pid)

    @contextmanager
    def lock(self, chain_id: str, wait_s: float = 5.0) -> Iterator[None]:
        """Hold the chain's monitor lock, or raise StateError naming the holder."""
        directory = self.chain_dir(chain_id)
        fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        locked = False
        try:
            deadline = time.monotonic() + wait_s
            while True:
                try:
                    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as e:
                    if e.errno not in (errno.EACCES, errno.EAGAIN):
                        raise StateError(f"cannot lock chain {chain_id}: {e.strerror}") from None
                    if time.monotonic() >= deadline:
                        who = self.monitor_info(chain_id)
                        holder = f" (host {who[0]}, pid {who[1]})" if who else ""
                        raise StateError(
                            f"chain {chain_id} is already being monitored{holder}"
                        ) from None
                    time.sleep(0.1)
            atomic_write(directory / PID_FILE, f"{socket.gethostname()} {os.getpid()}\n")
            locked = True
            yield
        finally:
            if locked and self.monitor_info(chain_id) == (socket.gethostname(), os.getpid()):
                try:
                    (directory / PID_FILE).unlink()
                except OSError:
                    pass
            os.close(fd)  # closing releases the lock


class _Script(msgspec.Struct):
    script: str | None


def _files_key(directory: Path) -> tuple[object, ...]:
    """Changes whenever the journal or the snapshot does (appends, compaction)."""
    key: list[object] = []
    for name in (journal.JOURNAL_FILE, SNAPSHOT_FILE):
        try:
            st = os.stat(directory / name)
            key += [st.st_ino, st.st_size, st.st_mtime_ns]
        except OSError:
            key.append(None)
    return tuple(key)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
