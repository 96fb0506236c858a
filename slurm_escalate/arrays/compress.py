"""Stride compression of array indices: the shortest ``--array`` value we can find.

Resubmitting failed tasks means writing an arbitrary set of indices back as an
``--array`` value; ``arrayspec.expand`` is the inverse. See ``compress``.
"""

from __future__ import annotations

import operator
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from itertools import accumulate, chain, count, islice, repeat
from itertools import compress as compress_mask
from typing import NamedTuple

#: Slurm stores task ids in 32-bit fields; anything larger is certainly a mistake.
MAX_INDEX = 2**31 - 1

# compress() tuning; see _candidate_strides for what they bound.
_NEIGHBOURS = 16  # look this many sorted neighbours ahead for stride candidates
_MAX_STRIDES = 6  # at most this many candidate strides are searched
_RARE_GAP = 64  # a gap seen in fewer than 1/64 of sampled neighbour pairs is not a stride
_SAMPLE_WINDOW = 4096
_SAMPLE_WINDOWS = 16

#: From this many indices on, compress() hands the set to compress_bulk.py, the same
#: greedy on numpy columns: several times faster there, while below it numpy's import
#: (about 0.1 s, once per process) would cost more than it saves.
BULK_MIN = 50_000

Run = tuple[int, int, int]  # (first, last, step): first, first+step, ..., last


def compress(indices: Iterable[int]) -> str:
    """Write a set of indices as a short ``--array`` spec (``expand`` is its inverse).

    Greedy "longest arithmetic progression first":

    1. *Candidates.* Every maximal stretch of constant difference in the sorted
       values is a candidate progression (``0-99``, ``8-4998:10``). Values that
       are several progressions of one stride shuffled together
       (``5,6,15,16,...``) show no such stretch, so the most frequent gaps
       between each value and its next 16 neighbours are taken as candidate
       strides, and for each, every maximal chain ``x, x+d, x+2d, ...`` in the
       set becomes a candidate too. Only progressions of >= 3 values count.
    2. *Selection.* Candidates are taken longest first, ties by the smallest
       ``(first, last, step)``. One that overlaps values already taken is cut
       at those values and its remaining pieces (>= 3 values) go back into the
       queue, so the result is a partition.
    3. *Tidy-up.* Left-over values that continue a taken progression extend it,
       and same-stride progressions that continue each other are joined.

    Each progression is written as ``a-b``/``a-b:s`` or as its comma list,
    whichever is shorter, so the result is never longer than the plain comma
    list. A random million indices make half a million candidates, so the work
    is done column-wise by C-level map(), set and bit operations wherever the
    greedy order allows; Python loops run per candidate only where it does not.
    Sets of ``BULK_MIN`` indices or more are handed to compress_bulk.py, which
    writes the same spec. Raises ValueError on empty input, negative indices or
    indices above ``MAX_INDEX``.
    """
    items = indices if isinstance(indices, (list, tuple, set, frozenset)) else list(indices)
    if len(items) >= BULK_MIN:
        from slurm_escalate.arrays.compress_bulk import compress_bulk  # imports numpy

        return compress_bulk(items)
    return compress_small(items)


def compress_small(indices: Iterable[int]) -> str:
    """compress() in pure Python, whatever the size (the reference for compress_bulk)."""
    values, members = _sorted_unique(indices)
    diffs = list(map(operator.sub, values[1:], values[:-1]))
    buckets = _sorted_stretches(values, diffs)
    if buckets.keys() != {len(values)}:  # unless one stretch already holds every value
        _add_chains(values, diffs, members, _candidate_strides(values), buckets)
    runs, taken = _take_longest(buckets)
    loose = members - taken
    runs = _extend_and_join(runs, loose)  # takes the values it uses out of loose
    return _format(runs, sorted(loose))


# A candidate of known length is one int, first << _KEY | step: ints sort several times
# faster than tuples, and for one length they order like (first, last, step).
_KEY = 32  # each field below 2**32: indices and steps (< 2**31), and a last + step
_STEP = (1 << _KEY) - 1
_DENSE = 16  # chains use a bitset when it is at most this many bits per index
_WALK = 64  # chains are measured in bulk until this few are left, then walked one by one

Buckets = dict[int, list[int]]  # length -> candidate keys


class _Runs(NamedTuple):
    """Taken progressions as three columns (150,000 tuples would be as many objects)."""

    firsts: list[int]
    lasts: list[int]
    steps: list[int]


def _keys(firsts: Iterable[int], steps: Iterable[int]) -> Iterator[int]:
    return map(operator.or_, map(operator.lshift, firsts, repeat(_KEY)), steps)


def _sorted_unique(indices: Iterable[int]) -> tuple[list[int], set[int]]:
    members = set(map(operator.index, indices))
    values = sorted(members)
    if not values:
        raise ValueError("cannot compress an empty set of array indices")
    if values[0] < 0:
        raise ValueError(f"array indices cannot be negative: {values[0]}")
    if values[-1] > MAX_INDEX:
        raise ValueError(f"array index {values[-1]} exceeds {MAX_INDEX}")
    return values, members


def _sorted_stretches(values: list[int], diffs: list[int]) -> Buckets:
    """Maximal stretches (>= 3 values) of constant difference in the sorted values.

    Neighbouring stretches may share their boundary value; selection sorts that out.
    """
    same = list(map(operator.eq, diffs[1:], diffs[:-1]))  # values[i:i+3] evenly spaced
    positions = range(len(same))
    starts = list(compress_mask(positions, map(operator.lt, chain((False,), same), same)))
    ends = compress_mask(positions, map(operator.gt, same, chain(islice(same, 1, None), (False,))))
    keys = _keys(map(values.__getitem__, starts), map(diffs.__getitem__, starts))
    buckets: Buckets = defaultdict(list)
    for start, end, key in zip(starts, ends, keys, strict=True):  # values[start] .. [end + 2]
        buckets[end - start + 3].append(key)
    return buckets


def _candidate_strides(values: list[int]) -> list[int]:
    """Frequent gaps (> 1) between values and their near neighbours, sampled in windows.

    Stride 1 needs no search: consecutive integers are adjacent when sorted, so
    they are already sorted stretches.
    """
    if len(values) <= _SAMPLE_WINDOW * _SAMPLE_WINDOWS:
        windows = [values]
    else:
        spacing = len(values) // _SAMPLE_WINDOWS
        windows = [values[i : i + _SAMPLE_WINDOW] for i in range(0, len(values), spacing)]
    gaps: Counter[int] = Counter()
    pairs = 0
    for window in windows:
        for k in range(1, min(_NEIGHBOURS, len(window) - 1) + 1):
            gaps.update(map(operator.sub, window[k:], window[:-k]))
            pairs += len(window) - k
    threshold = max(2, pairs // _RARE_GAP)
    frequent = (gap for gap, count in gaps.most_common() if count >= threshold and gap > 1)
    return list(islice(frequent, _MAX_STRIDES))


def _add_chains(
    values: list[int], diffs: list[int], members: set[int], strides: list[int], buckets: Buckets
) -> None:
    """Add every maximal chain ``x, x+stride, ...`` of >= 3 members, for each stride.

    The chain starts (x, x+stride, x+2*stride in the set, x-stride not) come from
    bit operations on the set as one big int (or set operations, for a sparse
    set); the lengths from set lookups, one length at a time for all chains that
    are still going.
    """
    dense = values[-1] < _DENSE * len(values)
    if dense:
        ones = {gap: "0" * (gap - 1) + "1" for gap in set(diffs)}  # sum(ones) <= values[-1]
        lowest_first = "0" * values[0] + "1" + "".join(map(ones.__getitem__, diffs))
        bits = int(lowest_first[::-1], 2)  # bit x is set for every member x
    for stride in strides:
        if dense:
            three = bits & (bits >> stride) & (bits >> 2 * stride)
            starts = _bit_positions(three & ~(bits << stride))
        else:
            two = members.intersection(map(operator.sub, values, repeat(stride)))
            three_set = two.intersection(map(operator.sub, two, repeat(stride)))
            starts = list(three_set.difference(map(operator.add, values, repeat(stride))))
        length = 3
        while len(starts) > _WALK:  # starts of the chains with at least `length` members
            more = map(operator.add, starts, repeat(length * stride))
            longer = list(map(members.__contains__, more))
            ending = compress_mask(starts, map(operator.not_, longer))
            buckets[length].extend(_keys(ending, repeat(stride)))
            starts = list(compress_mask(starts, longer))
            length += 1
        for x in starts:
            last = x + (length - 1) * stride
            while last + stride in members:
                last += stride
            buckets[(last - x) // stride + 1].append(x << _KEY | stride)


def _bit_positions(bits: int) -> list[int]:
    """The positions of the set bits, ascending, without a Python loop over the bits."""
    gaps = bin(bits)[:1:-1].split("1")  # gaps[k]: the zeros below the k-th set bit
    return list(map(operator.add, accumulate(map(len, gaps[:-1])), count()))


def _take_longest(buckets: Buckets) -> tuple[_Runs, set[int]]:
    """Greedy selection: longest candidate first, cutting later ones around taken values.

    This is a priority queue keyed by (-length, first, last, step), run as one
    sorted list per length: a cut piece is always shorter than its candidate, so
    it lands in a bucket that has not been sorted yet, and sorting each bucket
    when its turn comes pops candidates in exactly the queue's order.
    """
    taken: set[int] = set()
    runs = _Runs([], [], [])
    while buckets:
        length = max(buckets)
        keys = sorted(buckets.pop(length))
        firsts = list(map(operator.rshift, keys, repeat(_KEY)))
        steps = list(map(operator.and_, keys, repeat(_STEP)))
        if length == 3:
            _take_triples(firsts, steps, taken, runs)
            continue
        pieces: list[Run] = []  # what is left of candidates that overlap taken values
        for first, step in zip(firsts, steps, strict=True):
            last = first + (length - 1) * step
            span = range(first, last + 1, step)
            if taken.isdisjoint(span):
                taken.update(span)
                runs.firsts.append(first)
                runs.lasts.append(last)
                runs.steps.append(step)
                continue
            piece_first = first
            for hit in filter(taken.__contains__, span):  # ascending, like span
                if hit - piece_first >= 3 * step:
                    pieces.append((piece_first, hit - step, step))
                piece_first = hit + step
            if last - piece_first >= 2 * step:
                pieces.append((piece_first, last, step))
        for first, last, step in pieces:
            buckets.setdefault((last - first) // step + 1, []).append(first << _KEY | step)
    return runs, taken


def _take_triples(firsts: list[int], steps: list[int], taken: set[int], runs: _Runs) -> None:
    """The last and biggest bucket. Three values leave no piece after any overlap, so the
    candidates that overlap earlier runs (most of them) are dropped by C-level lookups."""
    mids = list(map(operator.add, firsts, steps))
    lasts = list(map(operator.add, mids, steps))
    hit_first, hit_mid, hit_last = (map(taken.__contains__, c) for c in (firsts, mids, lasts))
    hits = map(operator.or_, map(operator.or_, hit_first, hit_mid), hit_last)
    clean = list(map(operator.not_, hits))  # before the loop below changes taken
    add = taken.add
    candidates = zip(firsts, mids, lasts, steps, strict=True)
    for first, mid, last, step in compress_mask(candidates, clean):
        if first not in taken and mid not in taken and last not in taken:
            add(first)
            add(mid)
            add(last)
            runs.firsts.append(first)
            runs.lasts.append(last)
            runs.steps.append(step)


def _extend_and_join(runs: _Runs, loose: set[int]) -> _Runs:
    """Let left-over values extend the runs they continue; join same-stride continuations.

    Takes the values it uses out of ``loose``. Runs extend in selection order, but
    only those next to a loose value are walked (``loose`` only shrinks, so the
    others can never grow).
    """
    firsts, lasts, steps = runs.firsts.copy(), runs.lasts.copy(), runs.steps
    after = map(loose.__contains__, map(operator.add, lasts, steps))
    before = map(loose.__contains__, map(operator.sub, firsts, steps))
    for i in compress_mask(range(len(steps)), list(map(operator.or_, after, before))):
        first, last, step = firsts[i], lasts[i], steps[i]
        while last + step in loose:
            last += step
            loose.discard(last)
        while first - step in loose:
            first -= step
            loose.discard(first)
        firsts[i], lasts[i] = first, last
    # Runs sorted by (step, first) were joined where a neighbour continues its predecessor;
    # such pairs are rare, so look for continuations first and sort only if there are any.
    keys = list(_keys(steps, firsts))  # (step, first); unique, as runs are disjoint
    index = dict(zip(keys, count()))
    nexts = list(_keys(steps, map(operator.add, lasts, steps)))
    continued = list(compress_mask(range(len(keys)), map(index.__contains__, nexts)))
    ordered = sorted(keys) if continued else []
    follows = {
        i: index[nexts[i]]
        for i in continued
        if ordered[bisect_left(ordered, keys[i]) + 1] == nexts[i]
    }
    keep = [True] * len(keys)
    for head in follows.keys() - follows.values():
        tail = head
        while tail in follows:
            tail = follows[tail]
            keep[tail] = False
        lasts[head] = lasts[tail]
    return _Runs(*(list(compress_mask(column, keep)) for column in (firsts, lasts, steps)))


def _format(runs: _Runs, singles: list[int]) -> str:
    """Runs and singletons (all disjoint) as one comma list, ascending by first value."""
    texts = dict(zip(singles, map(str, singles), strict=True))
    texts.update(zip(runs.firsts, _format_runs(runs), strict=True))
    return ",".join(map(texts.__getitem__, sorted(texts)))


def _format_runs(runs: _Runs) -> list[str]:
    """_format_run of each run, with the common case done by C-level calls.

    ``a-b:s`` is shorter than the listed values once there are 4 of them (the
    second value alone is at least as long as ``s``), and for 3 values unless
    the middle value is no longer than ``s``; ``:1`` is dropped.
    """
    firsts, lasts, steps = runs
    texts = list(map(str.removesuffix, map("{}-{}:{}".format, *runs), repeat(":1")))
    spans = list(map(operator.sub, lasts, firsts))
    twice = list(map(operator.mul, steps, repeat(2)))
    ceilings = {step: 10 ** len(str(step)) for step in set(steps)}
    mids = map(operator.add, firsts, steps)
    mid_as_short = map(operator.lt, mids, map(ceilings.__getitem__, steps))
    three_or_fewer = map(operator.le, spans, twice)
    list_may_win = map(operator.or_, map(operator.lt, spans, twice), mid_as_short)
    for i in compress_mask(count(), map(operator.and_, three_or_fewer, list_may_win)):
        texts[i] = _format_run((firsts[i], lasts[i], steps[i]))
    return texts


def _format_run(run: Run) -> str:
    first, last, step = run
    count = (last - first) // step + 1
    if count == 1:
        return str(first)
    short = f"{first}-{last}" if step == 1 else f"{first}-{last}:{step}"
    if count > 8:  # a list of >8 numbers is always longer than a-b:s with s < 2**31
        return short
    listed = ",".join(map(str, range(first, last + 1, step)))
    return short if len(short) < len(listed) else listed
