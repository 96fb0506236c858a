"""Pure parsers for what sbatch, sacct and scontrol print. No I/O here.

The fixtures in ``tests/unit/data`` are real output of a Slurm 22.05 cluster,
and ``tests/unit/data/<release>/`` that of each release tested (22.05, 24.11,
26.05; tests/unit/test_releases.py runs over all of them); the comments below
name the quirks they showed. The formats parsed here are the same in all of
them; what differs is in the values (see classify.py and reporting/logs.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from slurm_escalate.arrays.spec import expand
from slurm_escalate.core.models import (
    ClusterLimits,
    PartitionInfo,
    SacctRow,
    SlurmState,
    TaskRecord,
)
from slurm_escalate.core.units import parse_rss_kb, parse_slurm_duration
from slurm_escalate.errors import ArraySpecError, SlurmParseError
from slurm_escalate.slurm.fastbuild import Memo, gc_paused
from slurm_escalate.slurm.hostlist import expand_hostlist

#: ``sacct --format`` fields, in the order parse_sacct reads them. JobName is
#: last on purpose: it is the only user-chosen text, and ``--parsable2`` does
#: not escape a ``|`` in it, so the line is split at most len-1 times.
SACCT_FIELDS: tuple[str, ...] = (
    "JobID",
    "JobIDRaw",
    "State",
    "ExitCode",
    "MaxRSS",
    "Elapsed",
    "Timelimit",
    "Start",
    "End",
    "NodeList",
    "Partition",
    "ReqMem",
    "JobName",
)

# 123 | 123_4 | 123_[1-5%2] | 123+1 (het component), each optionally .batch/.extern/.0/.0+1
_JOB_ID_RE = re.compile(
    r"(?P<job>\d+)"
    r"(?:_(?P<index>\d+)|_\[(?P<spec>[^\]]+)\]|\+(?P<het>\d+))?"
    r"(?:\.(?P<step>[A-Za-z0-9_+-]+))?"
)
_STEP_RE = re.compile(r"[A-Za-z0-9_+-]+")
_EXIT_RE = re.compile(r"(\d+):(\d+)")
_NO_TIME = {"", "UNKNOWN", "NONE"}
_NO_TEXT = {"", "NONE ASSIGNED", "(NULL)"}


def parse_sacct(text: str) -> list[SacctRow]:
    """Parse ``sacct --noheader --parsable2 --format=<SACCT_FIELDS>`` output.

    Blank lines are skipped; a line with the wrong field count or an
    unreadable JobID/ExitCode raises SlurmParseError naming the line, because
    guessing would misclassify tasks. Unknown states become UNKNOWN (which is
    not final, so the task is simply polled again).
    """
    reader = SacctReader()
    with gc_paused():
        reader.feed_lines(text.splitlines())
        return reader.rows


Keep = Callable[[str, int | None], bool]  # (array job id, index) -> is this task wanted?


class SacctReader:
    """sacct output, fed line by line as it arrives, kept only for the tasks wanted.

    A poll of a big array is hundreds of thousands of lines, most of them about
    tasks the monitor already knows are final; ``keep`` drops those lines after
    looking at their JobID alone, before anything is built. A pending array's
    ``123_[...]`` line is always kept. This is the hot loop of the monitor,
    written for speed: lines are read in batches of ``_BATCH`` by one loop,
    every column goes through a memo (the same states, exit codes, durations
    and node names repeat on thousands of lines), a task's step lines reuse
    the ids read from its job line just before, and rows are msgspec Structs,
    built in C (see fastbuild.py). A bad line raises SlurmParseError, naming
    it, from the ``feed`` that completes its batch or from ``rows``.
    """

    def __init__(self, keep: Keep | None = None) -> None:
        self.keep = keep
        self._rows: list[SacctRow] = []
        self._tasks = _TaskRows()
        self._waiting: list[str] = []  # fed, not read yet
        self._read_lines = 0
        self._visible: set[str] = set()  # array jobs whose one task row was kept
        # the JobID of the last line up to its ".step", its (array job id, index) and
        # its task's rows: sacct prints a task's step lines right after its job line
        self._base = ""
        self._ids: tuple[str, int | None] | None = None
        self._task: _Rows | None = None
        self._wanted = True  # keep's answer for that task (asked once per task, not per line)

    def feed(self, line: str) -> None:
        waiting = self._waiting
        waiting.append(line)
        if len(waiting) >= _BATCH:
            self._read()

    def feed_lines(self, lines: Iterable[str]) -> None:
        """Feed many lines at once (a text already held whole), read in one loop."""
        self._waiting.extend(lines)
        self._read()

    @property
    def lines(self) -> int:
        """Lines fed so far, blank ones included."""
        return self._read_lines + len(self._waiting)

    @property
    def rows(self) -> list[SacctRow]:
        """The rows of every line fed so far (of the wanted tasks)."""
        self._read()
        return self._rows

    def records(self) -> list[TaskRecord]:
        """``group_task_records(self.rows)``, from rows gathered by task as they were read."""
        self._read()
        return self._tasks.records()

    def _read(self) -> None:
        lines, self._waiting = self._waiting, []
        keep, visible, append, tasks = self.keep, self._visible, self._rows.append, self._tasks
        seen, ids, task, wanted = self._base, self._ids, self._task, self._wanted
        first = self._read_lines + 1
        self._read_lines += len(lines)
        for number, line in enumerate(lines, first):
            if keep is not None:
                # the JobID up to its ".step", as the split below reads it: keep is asked
                # once per task (its job line and step lines share it), for ``J_I`` only
                base, dot, _ = line.partition("|")[0].strip().partition(".")
                if base != seen:
                    seen, ids, task = base, _task_ids(base), None
                    wanted = ids is None or ids[1] is None or keep(*ids)
                if not wanted:
                    # One job row of each array is kept anyway: it shows the array is
                    # listed, which tells a task that vanished from a task in transit.
                    job = ids[0]  # type: ignore[index]  # not wanted: ids is (job, index)
                    if dot or job in visible:
                        continue
                    visible.add(job)
            # the order of SACCT_FIELDS; NodeList to JobName stay one text (the tail)
            parts = line.split("|", _TAIL)
            if len(parts) != _TAIL + 1 or (tail := _TAILS[parts[_TAIL]]) is None:
                if line.isspace() or not line:
                    continue  # blank lines are skipped
                count = len(line.split("|", _LAST_FIELD))
                raise _line_error(number, line, f"expected {_FIELD_COUNT} fields, got {count}")
            job_id, _, state, exit_code, rss, elapsed, limit, start, end, _ = parts
            job_id = job_id.strip()
            base, dot, step = job_id.partition(".")
            if base != seen:
                seen, ids, task = base, _task_ids(base), None
            if ids is not None and (not dot or _STEPS[step]):
                job, array_index = ids
                step_name = step if dot else None
                if task is None:
                    task = tasks.of(job, array_index)
            else:  # another form (a pending array, a het job component), or unreadable
                task = None
                split = _split_job_id(job_id)
                if split is None:
                    raise _line_error(number, line, f"unreadable JobID {parts[0]!r}")
                job, array_index, step_name = split
            codes = _EXIT_CODES[exit_code]
            if codes is None:
                raise _line_error(number, line, f"unreadable ExitCode {exit_code!r}")
            state_value, state_text = _STATES[state]
            row = _build_row(
                job_id,
                job,
                array_index,
                step_name,
                state_value,
                state_text,
                codes[0],
                codes[1],
                _RSS[rss],
                _DURATIONS[elapsed],
                _DURATIONS[limit],
                _TIMES[start],
                _TIMES[end],
                *tail,
            )
            append(row)
            if task is None:
                tasks.add(row)
            elif dot:
                task.append(row)
            else:
                task[0] = row
        self._base, self._ids, self._task, self._wanted = seen, ids, task, wanted


_BATCH = 4096  # lines read by one loop: its set-up is paid once per batch, not per line
_FIELD_COUNT = len(SACCT_FIELDS)
_LAST_FIELD = _FIELD_COUNT - 1
_TAIL = SACCT_FIELDS.index("NodeList")  # the fields from here on come in one memo lookup


def _task_ids(base: str) -> tuple[str, int | None] | None:
    """(array job id, index) of a JobID ``123`` or ``123_4`` (without its step);
    None for any other form. str.isdecimal accepts exactly what ``\\d`` does."""
    job, underscore, index = base.partition("_")
    if not job.isdecimal():
        return None
    if not underscore:
        return job, None
    return (job, int(index)) if index.isdecimal() else None


def _split_job_id(job_id: str) -> tuple[str, int | None, str | None] | None:
    """(array job id, index, step) of any JobID form, or None if it is unreadable."""
    m = _JOB_ID_RE.fullmatch(job_id)
    if m is None:
        return None
    index = m.group("index")
    step_name = _step_name(m.group("het"), m.group("step"))
    return m.group("job"), int(index) if index is not None else None, step_name


def _exit_code(text: str) -> tuple[int, int] | None:
    m = _EXIT_RE.fullmatch(text.strip() or "0:0")
    return None if m is None else (int(m.group(1)), int(m.group(2)))


def _line_error(number: int, line: str, reason: str) -> SlurmParseError:
    shown = line if len(line) <= 160 else line[:157] + "..."
    return SlurmParseError(f"sacct output line {number}: {reason}: {shown!r}")


def _step_name(het: str | None, step: str | None) -> str | None:
    """Step name; heterogeneous-job components are folded into the leader's record.

    ``123+0`` is the job row of job 123 and ``123+0.batch`` its ``batch`` step.
    Rows of other components become steps named ``+1`` and ``+1.batch``, so a
    het job is one TaskRecord whose state follows component 0 (the leader, the
    id sbatch printed) while an OOM in any component is still seen by classify.
    """
    if het is None or het == "0":
        return step
    return f"+{het}" if step is None else f"+{het}.{step}"


def _state(text: str) -> tuple[SlurmState, str]:
    """``CANCELLED by 0`` -> CANCELLED, ``RUNNING+`` -> RUNNING, unknown -> UNKNOWN;
    with the stripped text, which SacctRow keeps as ``state_text``."""
    words = text.split()
    if not words:
        return SlurmState.UNKNOWN, text.strip()
    try:
        return SlurmState(words[0].rstrip("+").upper()), text.strip()
    except ValueError:
        return SlurmState.UNKNOWN, text.strip()


def _time(text: str) -> str | None:
    text = text.strip()
    return None if text.upper() in _NO_TIME else text


def _tail(text: str) -> tuple[str | None, ...] | None:
    """NodeList, Partition, ReqMem and JobName (which may hold ``|``) of one line, or None
    if the line has fewer fields. They repeat from task to task, so they are memoised
    as one text: one lookup instead of four."""
    fields = text.split("|", _LAST_FIELD - _TAIL)
    return tuple(map(_text, fields)) if len(fields) == _FIELD_COUNT - _TAIL else None


def _text(text: str) -> str | None:
    text = text.strip()
    return None if text.upper() in _NO_TEXT else text


_STEPS = Memo(lambda step: _STEP_RE.fullmatch(step) is not None, 1024)
_STATES = Memo(_state, 1024)
_EXIT_CODES = Memo(_exit_code, 1024)
_RSS = Memo(parse_rss_kb)
_DURATIONS = Memo(parse_slurm_duration)
_TIMES = Memo(_time)
_TAILS = Memo(_tail)


_build_row = SacctRow  # msgspec Structs: built without a Python-level __init__
_build_record = TaskRecord


def _pending_spec(row: SacctRow) -> str | None:
    """The bracket content of a not-yet-split array record (``123_[1-5%2]``)."""
    if row.step is None and row.job_id.endswith("]") and "_[" in row.job_id:
        return row.job_id.split("_[", 1)[1][:-1]
    return None


def group_task_records(rows: Iterable[SacctRow]) -> list[TaskRecord]:
    """One TaskRecord per (array job id, index), sorted by job id then index.

    * A bracket row (``123_[1-5%2]``) stands for tasks Slurm has not split off
      yet; it expands into one record per index whose job row is the bracket
      row itself (its state: PENDING, or CANCELLED if the whole pending array
      was cancelled).
    * A real task row always beats a bracket placeholder: sacct was seen
      listing ``18_3`` RUNNING while ``18_[3-4%1]`` still covered index 3.
    * Steps whose job row is absent are skipped: a made-up job row would carry
      a made-up state, and the task just looks not-yet-visible until sacct
      lists its job row on a later poll.
    * If one task has several job rows (only with ``--duplicates``), the last
      one wins and steps accumulate.
    """
    table = _TaskRows()
    with gc_paused():
        for row in rows:
            table.add(row)
        return table.records()


_Rows = list[SacctRow | None]  # a task's job row (None until seen) and its step rows


class _TaskRows:
    """Rows gathered by task: the work of group_task_records, and of SacctReader as it
    reads (it adds a task's step lines to the task of the job line just before)."""

    def __init__(self) -> None:
        self.by_job: dict[str, dict[int | None, _Rows]] = {}
        self.pending: list[tuple[SacctRow, str]] = []  # bracket rows, and what is inside

    def of(self, job: str, index: int | None) -> _Rows:
        """The rows of one task (``[None]`` until it has any)."""
        of_job = self.by_job.get(job)
        if of_job is None:
            of_job = self.by_job[job] = {}
        found = of_job.get(index)
        if found is None:
            found = of_job[index] = [None]
        return found

    def add(self, row: SacctRow) -> None:
        if row.step is not None:
            self.of(row.array_job_id, row.array_index).append(row)
        elif row.job_id.endswith("]") and (spec := _pending_spec(row)) is not None:
            self.pending.append((row, spec))
        else:
            self.of(row.array_job_id, row.array_index)[0] = row  # the last job row wins

    def records(self) -> list[TaskRecord]:
        placeholders: dict[tuple[str, int], SacctRow] = {}
        for row, spec in self.pending:
            for index in _expand_pending(row, spec):
                # All of them share the bracket row: a 100,000-task array pending
                # whole costs one row, not 100,000 copies of it.
                placeholders[row.array_job_id, index] = row
        for (job, index), row in placeholders.items():
            found = self.of(job, index)
            if found[0] is None:
                found[0] = row
        return [
            _build_record(job, index, rows[0], tuple(rows[1:]))  # type: ignore[arg-type]
            for job, tasks, indices in self.in_order()
            for index in indices
            if (rows := tasks[index])[0] is not None
        ]

    def in_order(self) -> list[tuple[str, dict[int | None, _Rows], list[int | None]]]:
        """The tasks sorted by job id (as a number), then index (None first), as
        (job, its tasks, indices in order) for each job."""
        numbers = {job: int(job) for job in self.by_job}  # a few distinct ids
        if len(set(numbers.values())) < len(numbers):  # "7" and "07": sorted as one job
            every = [(job, i) for job, tasks in self.by_job.items() for i in tasks]
            every.sort(key=lambda k: (numbers[k[0]], _none_first(k[1])))
            return [(job, self.by_job[job], [index]) for job, index in every]
        ordered = []
        for job in sorted(self.by_job, key=numbers.__getitem__):
            tasks = self.by_job[job]
            # ints sort in C; None (a job that is not an array) needs a key
            indices = sorted(tasks, key=_none_first) if None in tasks else sorted(tasks)  # type: ignore[type-var]
            ordered.append((job, tasks, indices))
        return ordered


def _none_first(index: int | None) -> int:
    return -1 if index is None else index


def _expand_pending(row: SacctRow, spec: str) -> list[int]:
    body = spec.partition("%")[0]  # drop the %throttle
    try:
        return expand(body)
    except ArraySpecError as exc:
        raise SlurmParseError(f"sacct array record {row.job_id!r}: {exc}") from exc


_SBATCH_RE = re.compile(r"(\d+)(?:;\S+)?")


def parse_sbatch_parsable(text: str) -> str:
    """The job id from ``sbatch --parsable`` (``123`` or ``123;cluster``)."""
    m = _SBATCH_RE.fullmatch(text.strip())
    if m is None:
        shown = text.strip()[:200]
        raise SlurmParseError(
            f"sbatch --parsable printed {shown!r}, not a job id; the job may have been "
            "submitted anyway, check squeue before submitting again"
        )
    return m.group(1)


# A key starts a new field only at the line start or after whitespace, so
# ``TRES=cpu=4,mem=1000M`` stays one value and ``OS=Linux 6.1 #1 SMP`` keeps its spaces.
_KEY_RE = re.compile(r"(?:^|(?<=\s))([A-Za-z][A-Za-z0-9_:/.]*)=")


def parse_scontrol_oneliner(text: str) -> list[dict[str, str]]:
    """Parse ``scontrol --oneliner show partition|node`` into one dict per line."""
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        keys = list(_KEY_RE.finditer(line))
        if not keys or line[: keys[0].start()].strip():
            raise SlurmParseError(f"scontrol output line {number}: not key=value: {line[:160]!r}")
        record = {}
        for m, nxt in zip(keys, [*keys[1:], None], strict=True):
            end = nxt.start() if nxt is not None else len(line)
            record[m.group(1)] = line[m.end() : end].strip()
        records.append(record)
    return records


def parse_partitions(partition_text: str, node_text: str) -> dict[str, PartitionInfo]:
    """Partitions with their MaxTime and the largest RealMemory of their nodes.

    Membership comes from the nodes' ``Partitions=`` field; the partition's
    ``Nodes=`` hostlist is expanded only for a partition no node record names
    (older Slurm, or node records without that field).
    """
    node_mem: dict[str, int | None] = {}
    members: dict[str, set[str]] = {}
    for node in parse_scontrol_oneliner(node_text):
        name = _require(node, "NodeName", "node")
        node_mem[name] = _int_or_none(node.get("RealMemory", ""))
        for part_name in filter(None, node.get("Partitions", "").split(",")):
            members.setdefault(part_name, set()).add(name)
    result: dict[str, PartitionInfo] = {}
    for part in parse_scontrol_oneliner(partition_text):
        name = _require(part, "PartitionName", "partition")
        nodes = members.get(name) or _partition_nodes(part.get("Nodes", ""), node_mem)
        mems = [m for n in nodes if (m := node_mem.get(n)) is not None]
        result[name] = PartitionInfo(
            name=name,
            max_time_s=parse_slurm_duration(part.get("MaxTime", "")),
            max_node_mem_mb=max(mems) if mems else None,
            is_default=part.get("Default", "").upper() == "YES",
        )
    return result


def _partition_nodes(hostlist: str, node_mem: dict[str, int | None]) -> set[str]:
    if hostlist.upper() == "ALL":
        return set(node_mem)
    if not hostlist or hostlist == "(null)":
        return set()
    try:
        return set(expand_hostlist(hostlist))
    except ValueError as exc:
        raise SlurmParseError(f"scontrol partition Nodes={hostlist!r}: {exc}") from exc


def _require(record: dict[str, str], key: str, what: str) -> str:
    value = record.get(key)
    if not value:
        raise SlurmParseError(f"scontrol {what} record without {key}: {sorted(record)[:5]}")
    return value


def _int_or_none(text: str) -> int | None:
    return int(text) if text.strip().isdigit() else None


def parse_cluster_limits(config_text: str) -> ClusterLimits:
    """Array limits from ``scontrol show config`` (``Key = value`` lines).

    ``MaxArraySize`` bounds the indices (0..MaxArraySize-1). The task count
    per array can be lowered further by ``SchedulerParameters=max_array_tasks=N``.
    """
    config: dict[str, str] = {}
    for line in config_text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and " " not in key.strip():
            config.setdefault(key.strip(), value.strip())
    size_text = config.get("MaxArraySize")
    if size_text is None or not size_text.isdigit():
        raise SlurmParseError(f"scontrol show config: no numeric MaxArraySize ({size_text!r})")
    max_tasks = None
    for option in config.get("SchedulerParameters", "").split(","):
        name, _, value = option.partition("=")
        if name.strip() == "max_array_tasks" and value.strip().isdigit():
            max_tasks = int(value)
    job_count = config.get("MaxJobCount", "")
    return ClusterLimits(
        max_array_size=int(size_text),
        max_array_tasks=max_tasks,
        max_job_count=int(job_count) if job_count.isdigit() else None,
    )


def parse_job_comments(text: str, prefix: str) -> dict[str, str]:
    """``JobID|Comment`` lines (sacct or squeue) -> {comment: array job id} for our tokens.

    ``123``, ``123_4``, ``123_[0-9%2]`` all name job ``123``; a comment may contain
    ``|``, so only the first one separates the fields.
    """
    found: dict[str, str] = {}
    for line in text.splitlines():
        job, sep, comment = line.strip().partition("|")
        if not sep or not comment.startswith(prefix):
            continue
        base = job.split("_", 1)[0].split(".", 1)[0]
        if base.isdigit():
            found.setdefault(comment, base)
    return found


# ``--comment=<token>`` as one argument of a submission's command line (sacct's SubmitLine).
_COMMENT_ARG_RE = re.compile(r"(?:^|\s)--comment=(\S+)")


def parse_job_tokens(text: str, prefix: str) -> dict[str, str]:
    """``JobID|Comment|SubmitLine`` lines (sacct) -> {token: array job id} for our tokens.

    Where accounting does not store comments (Slurm's default: no
    ``AccountingStoreFlags=job_comment``) Comment is empty, but SubmitLine, the
    submitting command line, still holds the ``--comment=<token>`` argument in every
    release: the arguments joined by single spaces, never re-quoted. Our token holds
    neither ``|`` nor whitespace; a user's comment and the command line may hold both,
    so SubmitLine is last in the format and everything after JobID's ``|`` is searched.
    """
    found: dict[str, str] = {}
    for line in text.splitlines():
        job, sep, rest = line.strip().partition("|")
        base = job.split("_", 1)[0].split(".", 1)[0]
        if not sep or not base.isdigit():
            continue
        comment = rest.partition("|")[0]
        if comment.startswith(prefix):
            found.setdefault(comment, base)
        for token in _COMMENT_ARG_RE.findall(rest):
            if token.startswith(prefix):
                found.setdefault(token, base)
    return found
