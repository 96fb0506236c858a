"""compress() for big sets: the greedy of compress.py, computed on numpy columns.

compress.py describes the algorithm; this module writes exactly the same spec
(tests/unit/test_compress_bulk.py compares the two on random and adversarial
sets; test_arrayspec.py pins the output of both to that of the implementation
before this one). compress() hands it sets of at least ``BULK_MIN`` indices:
there a million random indices take about a fifth of the pure-Python time, and
a process that never compresses that many never imports numpy (0.1 s).

What differs is only how the work is laid out:

* *Positions, not values.* ``values`` is the sorted set; a candidate
  progression is a slice ``order[offset : offset + length]`` of one array of
  positions into it. Sorted stretches are slices of ``0..n-1``; the chains of
  a stride ``d`` are slices of the positions sorted by ``value % d``, where
  every chain ``x, x+d, ...`` is a run of consecutive entries ``d`` apart. A
  piece cut out of a candidate is a shorter slice of the same array.
* *A bucket at a time.* The candidates of one length are decided together
  (``_select``), and what is left of those not taken is cut around everything
  taken in the bucket, once, at its end. That gives the pieces compress.py
  gets by cutting each candidate at its turn: a cut at more taken values only
  removes pieces that the queue would drop later anyway.
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from slurm_escalate.arrays.compress import (
    _MAX_STRIDES,
    _NEIGHBOURS,
    _RARE_GAP,
    _SAMPLE_WINDOW,
    _SAMPLE_WINDOWS,
    MAX_INDEX,
    _format_run,
)

Ints = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]


def compress_bulk(indices: Iterable[int]) -> str:
    """``compress(indices)``, the same spec, for big sets (see the module docstring)."""
    values = _sorted_unique(indices)
    stretches = _sorted_stretches(values)
    pool = _Pool(values, stretches)
    lengths = stretches[2]
    if not (len(lengths) == 1 and lengths[0] == len(values)):  # unless one stretch is all
        for stride in _candidate_strides(values):
            pool.add_chains(stride)
    runs, taken = _take_longest(pool)
    loose = values[~taken]
    firsts, lasts, steps, loose = _extend_and_join(runs, loose)
    return _format(firsts, lasts, steps, loose)


def _sorted_unique(indices: Iterable[int]) -> Ints:
    """The sorted unique values, with compress.py's checks and errors.

    A list of plain ints becomes an array in one numpy call; anything else
    (bools, ints too big for 64 bits, non-integers) goes through operator.index
    first, as in compress.py.
    """
    items = indices if isinstance(indices, list) else list(indices)
    try:
        values = np.array(items)
    except (OverflowError, ValueError):  # ints beyond 64 bits, ragged nesting
        values = np.array(None)
    if values.ndim != 1 or values.dtype.kind not in "iu":
        values = np.array(list(map(operator.index, items)), dtype=object)
    if len(values) == 0:
        raise ValueError("cannot compress an empty set of array indices")
    lowest, highest = int(values.min()), int(values.max())
    if lowest < 0:
        raise ValueError(f"array indices cannot be negative: {lowest}")
    if highest > MAX_INDEX:
        raise ValueError(f"array index {highest} exceeds {MAX_INDEX}")
    values = values.astype(np.int64)
    if not bool(np.all(values[1:] > values[:-1])):
        values = np.unique(values)
    return values


def _true_runs(mask: Mask, shortest: int) -> tuple[Ints, Ints]:
    """(start, length) of every maximal run of True in ``mask`` at least ``shortest`` long."""
    edges = np.flatnonzero(np.diff(np.concatenate(([False], mask, [False])).astype(np.int8)))
    starts, ends = edges[0::2], edges[1::2]
    long = ends - starts >= shortest
    return starts[long], (ends - starts)[long]


def _sorted_stretches(values: Ints) -> tuple[Ints, Ints, Ints]:
    """(first position, step, length) of every maximal stretch (>= 3 values) of constant
    difference in the sorted values; neighbouring stretches may share a value."""
    diffs = np.diff(values)
    starts, runs = _true_runs(diffs[1:] == diffs[:-1], 1)
    return starts, diffs[starts], runs + 2


def _candidate_strides(values: Ints) -> list[int]:
    """compress.py's ``_candidate_strides``: the same windows, counts and tie order."""
    n = len(values)
    if n <= _SAMPLE_WINDOW * _SAMPLE_WINDOWS:
        windows = [values]
    else:
        spacing = n // _SAMPLE_WINDOWS
        windows = [values[i : i + _SAMPLE_WINDOW] for i in range(0, n, spacing)]
    parts = []
    for window in windows:
        for k in range(1, min(_NEIGHBOURS, len(window) - 1) + 1):
            parts.append(window[k:] - window[:-k])
    gaps = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    threshold = max(2, len(gaps) // _RARE_GAP)
    if len(gaps) and gaps.max() < 4 * len(gaps):  # small gaps (dense sets): count by index
        tally = np.bincount(gaps)
        seen = np.flatnonzero(tally)
        counts = tally[seen]
    else:
        seen, counts = np.unique(gaps, return_counts=True)
    frequent = (counts >= threshold) & (seen > 1)
    ranked = list(zip(counts[frequent].tolist(), seen[frequent].tolist(), strict=True))
    # Counter.most_common orders equal counts by first occurrence; only ties need it
    tied = {c for c, n in Counter(c for c, _ in ranked).items() if n > 1}
    ranked.sort(key=lambda c: (-c[0], int(np.argmax(gaps == c[1])) if c[0] in tied else 0))
    return [gap for _, gap in ranked[:_MAX_STRIDES]]


class _Pool:
    """Candidate progressions as slices of ``order``, by length (see the module docstring)."""

    def __init__(self, values: Ints, stretches: tuple[Ints, Ints, Ints]) -> None:
        self.values = values
        self.orders: list[Ints] = [np.arange(len(values), dtype=np.int64)]
        self.size = len(values)  # where the next order array starts in ``order``
        self.buckets: dict[int, list[tuple[Ints, Ints]]] = {}
        self.add(*stretches)

    def add(self, offsets: Ints, steps: Ints, lengths: Ints) -> None:
        for length in np.unique(lengths).tolist():
            same = lengths == length
            self.buckets.setdefault(length, []).append((offsets[same], steps[same]))

    def add_chains(self, stride: int) -> None:
        """Every maximal chain ``x, x+stride, ...`` of >= 3 values."""
        residues = self.values % stride
        if stride < 2**16:  # numpy sorts 16-bit keys by radix, in linear time
            residues = residues.astype(np.uint16)
        by_residue = np.argsort(residues, kind="stable")
        apart = np.diff(self.values[by_residue]) == stride
        starts, gaps = _true_runs(apart, 2)
        self.orders.append(by_residue)
        self.add(self.size + starts, np.full(len(starts), stride, np.int64), gaps + 1)
        self.size += len(by_residue)

    def order(self) -> Ints:
        return np.concatenate(self.orders)


def _take_longest(pool: _Pool) -> tuple[list[tuple[Ints, Ints, Ints]], Mask]:
    """compress.py's greedy selection, a bucket at a time; the runs in selection order."""
    values, order = pool.values, pool.order()
    flags = bytearray(len(values))
    taken: Mask = np.frombuffer(flags, dtype=np.bool_)  # flags[i] is taken[i]
    first = np.zeros(len(values), dtype=np.int64)
    runs: list[tuple[Ints, Ints, Ints]] = []
    buckets = pool.buckets
    while buckets:
        length = max(buckets)
        offsets = np.concatenate([o for o, _ in buckets[length]])
        steps = np.concatenate([s for _, s in buckets.pop(length)])
        firsts = values[order[offsets]]
        queue = np.argsort(firsts << 32 | steps, kind="stable")  # (first, step), as in the queue
        offsets, steps, firsts = offsets[queue], steps[queue], firsts[queue]
        members = order[offsets[:, None] + np.arange(length)]
        won = _select(members, taken, flags, first)
        runs.append((firsts[won], firsts[won] + (length - 1) * steps[won], steps[won]))
        if length > 3:  # three values leave no piece of three after any cut
            lost = ~won
            pool.add(*_pieces(taken[members[lost]], offsets[lost], steps[lost]))
    return runs, taken


def _select(members: Ints, taken: Mask, flags: bytearray, first: Ints) -> Mask:
    """Which candidates of one bucket (rows of member positions, in queue order) the queue
    takes; marks their members in ``taken``.

    The queue takes a candidate if none of its members is taken yet. Those that
    touch values taken before the bucket never are. Of the rest, a candidate
    that comes first on each of its members is taken, and every one sharing a
    member with it is not; that is repeated while it settles many candidates a
    round (it needs a round for each link of the longest chain of overlapping
    candidates), and the rest are walked one by one, in order, as compress.py
    does. ``flags`` is ``taken``'s memory, for the walk; ``first`` is scratch
    space, one entry per value.
    """
    won = np.zeros(len(members), dtype=np.bool_)
    alive = np.flatnonzero(~taken[members].any(axis=1))
    width = members.shape[1]
    while len(alive) > _WALK:
        rows = members[alive]
        first[rows] = len(members)
        np.minimum.at(first, rows.ravel(), np.repeat(alive, width))
        wins = (first[rows] == alive[:, None]).all(axis=1)
        won[alive[wins]] = True
        taken[rows[wins]] = True
        settled = len(alive)
        alive = alive[~taken[rows].any(axis=1)]
        if len(alive) * _ROUND_GAIN > settled * (_ROUND_GAIN - 1):
            break  # a long chain of overlaps: walking it is faster
    walked = []
    for candidate, row in zip(alive.tolist(), members[alive].tolist(), strict=True):
        if not any(map(flags.__getitem__, row)):
            for position in row:
                flags[position] = 1
            walked.append(candidate)
    won[walked] = True
    return won


_WALK = 64  # this few candidates are walked one by one at once
_ROUND_GAIN = 8  # a round must settle an eighth of the candidates left, or they are walked


def _pieces(hits: Mask, offsets: Ints, steps: Ints) -> tuple[Ints, Ints, Ints]:
    """The parts (>= 3 values) of candidates between their taken members: (offset, step,
    length) of each, as slices of the same order array."""
    rows, width = hits.shape
    walls = np.ones((rows, width + 2), dtype=np.bool_)  # a taken value just outside each end
    walls[:, 1:-1] = hits
    row, column = np.nonzero(walls)  # row by row, columns ascending
    gap = np.diff(column) - 1
    piece = (row[1:] == row[:-1]) & (gap >= 3)
    owner = row[:-1][piece]
    return offsets[owner] + column[:-1][piece], steps[owner], gap[piece]


def _extend_and_join(
    chosen: list[tuple[Ints, Ints, Ints]], loose: Ints
) -> tuple[Ints, Ints, Ints, Ints]:
    """compress.py's ``_extend_and_join``; also returns the loose values it leaves."""
    empty = np.zeros(0, np.int64)
    firsts, lasts, steps = (np.concatenate([empty, *(run[k] for run in chosen)]) for k in range(3))
    near = _contains(loose, lasts + steps) | _contains(loose, firsts - steps)
    if near.any():  # few do: a loose value next to a run is usually in a chain of its own
        left, used = set(loose.tolist()), []
        for i in np.flatnonzero(near).tolist():  # in selection order, as compress.py does
            first, last, step = int(firsts[i]), int(lasts[i]), int(steps[i])
            while last + step in left:
                last += step
                left.discard(last)
                used.append(last)
            while first - step in left:
                first -= step
                left.discard(first)
                used.append(first)
            firsts[i], lasts[i] = first, last
        loose = loose[~_contains(np.sort(np.array(used, dtype=np.int64)), loose)]
    # Join a run to the next by (step, first) where that one continues it.
    by_key = np.lexsort((firsts, steps))
    firsts, lasts, steps = firsts[by_key], lasts[by_key], steps[by_key]
    follows = (steps[1:] == steps[:-1]) & (firsts[1:] == lasts[:-1] + steps[:-1])
    if follows.any():
        head = np.concatenate(([True], ~follows))  # the first run of each joined group
        group_end = np.concatenate((np.flatnonzero(head)[1:], [len(head)])) - 1
        firsts, steps = firsts[head], steps[head]
        lasts = lasts[group_end]
    return firsts, lasts, steps, loose


def _contains(sorted_values: Ints, queries: Ints) -> Mask:
    at = np.searchsorted(sorted_values, queries)
    found = at < len(sorted_values)
    found[found] = sorted_values[at[found]] == queries[found]
    return found


def _format(firsts: Ints, lasts: Ints, steps: Ints, singles: Ints) -> str:
    """Runs and singletons as one comma list, ascending by first value (compress.py's)."""
    texts = _run_texts(firsts, lasts, steps) + list(map(str, singles.tolist()))
    ascending = np.argsort(np.concatenate((firsts, singles)), kind="stable")
    return ",".join(map(texts.__getitem__, ascending.tolist()))


_POWERS_OF_TEN = 10 ** np.arange(11, dtype=np.int64)  # steps are below 2**31 < 10**10


def _run_texts(firsts: Ints, lasts: Ints, steps: Ints) -> list[str]:
    """compress.py's ``_format_runs``: ``a-b:s`` (``a-b`` for step 1), or the listed
    values for a run of three whose middle value is no longer than its step."""
    spans, twice = lasts - firsts, 2 * steps
    digits = np.searchsorted(_POWERS_OF_TEN, steps, side="right")
    mid_as_short = firsts + steps < _POWERS_OF_TEN[digits]
    list_may_win = (spans <= twice) & ((spans < twice) | mid_as_short)
    a, b, s = firsts.tolist(), lasts.tolist(), steps.tolist()
    texts = [f"{x}-{y}" if z == 1 else f"{x}-{y}:{z}" for x, y, z in zip(a, b, s, strict=True)]
    for i in np.flatnonzero(list_may_win).tolist():
        texts[i] = _format_run((a[i], b[i], s[i]))
    return texts
