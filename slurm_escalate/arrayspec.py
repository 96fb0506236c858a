"""Slurm ``--array`` specifications: parsing, expansion and stride compression.

Resubmitting failed tasks means turning an arbitrary set of indices back into
an ``--array`` value. Slurm caps how long that value may be and how many tasks
one array may hold, so the set must be written compactly (``compress``) and,
when it is still too big, split over several submissions (``split_indices``).
"""

from __future__ import annotations

import operator
import re
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from heapq import heapify, heappop, heappush
from itertools import accumulate, chain, islice, pairwise
from itertools import compress as compress_mask

from slurm_escalate.errors import ArraySpecError

#: Refuse specs that would expand to more indices than this (counted before
#: de-duplication), so a typo like ``0-999999999`` fails fast instead of eating memory.
MAX_SPEC_INDICES = 10_000_000
#: Slurm stores task ids in 32-bit fields; anything larger is certainly a mistake.
MAX_INDEX = 2**31 - 1

_ELEMENT_RE = re.compile(r"(\d+)(?:-(\d+)(?::(\d+))?)?")

# compress() tuning; see _interleaved_runs for what they bound.
_NEIGHBOURS = 16  # look this many sorted neighbours ahead for stride candidates
_MAX_STRIDES = 6  # at most this many candidate strides are searched
_RARE_GAP = 64  # a gap seen in fewer than 1/64 of sampled neighbour pairs is not a stride
_SAMPLE_WINDOW = 4096
_SAMPLE_WINDOWS = 16

Run = tuple[int, int, int]  # (first, last, step): first, first+step, ..., last
_Fail = Callable[[str], ArraySpecError]


@dataclass(frozen=True)
class ArraySpec:
    """A parsed ``--array`` value: sorted unique indices plus the optional ``%N`` throttle."""

    indices: tuple[int, ...]
    throttle: int | None = None


def parse_array_spec(text: str) -> ArraySpec:
    """Parse an ``--array`` value the way sbatch would, or raise ArraySpecError.

    Accepted: ``7``, ``0-99``, ``0-100:10`` and comma lists of those, with an
    optional ``%N`` throttle suffix. Rejected with a one-line message naming the
    spec: empty specs or elements, whitespace, negative numbers, descending
    ranges, zero steps or throttles, and specs expanding to more than
    ``MAX_SPEC_INDICES`` indices (checked before anything is allocated).
    """

    def fail(reason: str) -> ArraySpecError:
        return ArraySpecError(f"invalid --array {text!r}: {reason}")

    if not isinstance(text, str):
        raise ArraySpecError(f"invalid --array {text!r}: expected a string")
    if not text:
        raise fail("empty specification")
    if any(ch.isspace() for ch in text):
        raise fail("whitespace is not allowed")
    body, sep, throttle_text = text.partition("%")
    throttle: int | None = None
    if sep:
        if "%" in throttle_text:
            raise fail("more than one '%' throttle")
        if not throttle_text.isdigit() or not throttle_text.isascii():
            raise fail(f"throttle {throttle_text!r} after '%' is not a positive integer")
        throttle = _bounded_int(throttle_text, fail, "throttle")
        if throttle < 1:
            raise fail("throttle after '%' must be at least 1")
    if not body:
        raise fail("no indices before the '%' throttle")

    ranges: list[range] = []
    total = 0
    for element in body.split(","):
        rng = _parse_element(element, fail)
        total += len(rng)
        if total > MAX_SPEC_INDICES:
            raise fail(f"more than {MAX_SPEC_INDICES} indices; split the array")
        ranges.append(rng)
    return ArraySpec(indices=_union(ranges), throttle=throttle)


def _parse_element(element: str, fail: _Fail) -> range:
    """Turn one comma-separated element into a range, with a precise complaint if it's bad."""
    if not element:
        raise fail("empty element (stray comma)")
    if element.startswith("-") or "--" in element or ":-" in element:
        raise fail(f"negative numbers are not allowed ({element!r})")
    m = _ELEMENT_RE.fullmatch(element)
    if m is None or not element.isascii():
        raise fail(f"{element!r} is not an index N, a range N-M or a stepped range N-M:S")
    start = _bounded_int(m.group(1), fail, "index")
    if m.group(2) is None:
        return range(start, start + 1)
    end = _bounded_int(m.group(2), fail, "index")
    if end < start:
        raise fail(f"range end {end} is below start {start}")
    step = 1
    if m.group(3) is not None:
        step = _bounded_int(m.group(3), fail, "step")
        if step < 1:
            raise fail(f"step in {element!r} must be at least 1")
    return range(start, end + 1, step)


def _bounded_int(digits: str, fail: _Fail, what: str) -> int:
    """int() that refuses huge values before Python has to convert thousands of digits."""
    if len(digits.lstrip("0")) > len(str(MAX_INDEX)) or int(digits) > MAX_INDEX:
        raise fail(f"{what} {digits[:20]}{'...' if len(digits) > 20 else ''} exceeds {MAX_INDEX}")
    return int(digits)


def _union(ranges: list[range]) -> tuple[int, ...]:
    """Sorted unique indices of the ranges; cheap when they are already ordered and disjoint."""
    ordered = all(a[-1] < b[0] for a, b in pairwise(ranges))
    if ordered:
        return tuple(chain.from_iterable(ranges))
    return tuple(sorted(set(chain.from_iterable(ranges))))


def expand(spec: str) -> list[int]:
    """Sorted unique indices of an ``--array`` spec; a ``%N`` throttle is accepted and ignored."""
    return list(parse_array_spec(spec).indices)


def format_array(spec: str, throttle: int | None) -> str:
    """Append ``%throttle`` to a spec, so callers never build the suffix by hand."""
    if throttle is None:
        return spec
    if isinstance(throttle, bool) or not isinstance(throttle, int) or throttle < 1:
        raise ArraySpecError(f"invalid --array throttle {throttle!r}: must be a positive integer")
    if "%" in spec:
        raise ArraySpecError(f"invalid --array {spec!r}: already has a '%' throttle")
    return f"{spec}%{throttle}"


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
    2. *Selection.* Candidates are taken longest first. One that overlaps
       values already taken is cut at those values and its remaining pieces
       (>= 3 values) go back into the queue, so the result is a partition.
    3. *Tidy-up.* Left-over values that continue a taken progression extend it,
       and same-stride progressions that continue each other are joined.

    Each progression is written as ``a-b``/``a-b:s`` or as its comma list,
    whichever is shorter, so the result is never longer than the plain comma
    list. Per-value work is done by set and map operations; Python-level work
    scales with the number of progressions, and the number of candidate
    strides is capped, so a million indices take well under a second.
    Raises ValueError on empty input, negative indices or indices above
    ``MAX_INDEX``.
    """
    values = _sorted_unique(indices)
    members = set(values)
    candidates = _sorted_stretches(values)
    if not (len(candidates) == 1 and _run_len(candidates[0]) == len(values)):
        for stride in _candidate_strides(values):
            candidates.extend(_chains(values, members, stride))
    runs, taken = _take_longest(candidates)
    runs = _extend_and_join(runs, members - taken)
    for first, last, step in runs:
        taken.update(range(first, last + 1, step))
    singles = sorted(members - taken)
    return _format(sorted(runs), singles)


def _sorted_unique(indices: Iterable[int]) -> list[int]:
    values = sorted(set(map(operator.index, indices)))
    if not values:
        raise ValueError("cannot compress an empty set of array indices")
    if values[0] < 0:
        raise ValueError(f"array indices cannot be negative: {values[0]}")
    if values[-1] > MAX_INDEX:
        raise ValueError(f"array index {values[-1]} exceeds {MAX_INDEX}")
    return values


def _run_len(run: Run) -> int:
    return (run[1] - run[0]) // run[2] + 1


def _sorted_stretches(values: list[int]) -> list[Run]:
    """Maximal stretches (>= 3 values) of constant difference in the sorted values.

    Neighbouring stretches may share their boundary value; selection sorts that out.
    """
    diffs = list(map(operator.sub, values[1:], values[:-1]))
    # same[i]: values[i], values[i+1], values[i+2] are evenly spaced
    same = list(map(operator.eq, diffs[1:], diffs[:-1]))
    rises = map(operator.lt, chain((False,), same), same)  # False -> True: a stretch starts
    stretches: list[Run] = []
    for i in compress_mask(range(len(same)), rises):
        try:
            end = same.index(False, i) - 1  # last i with same[i]; a C-level scan
        except ValueError:
            end = len(same) - 1
        stretches.append((values[i], values[end + 2], diffs[i]))
    return stretches


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


def _chains(values: list[int], members: set[int], stride: int) -> list[Run]:
    """All maximal chains ``x, x+stride, ...`` of >= 3 members; disjoint by construction."""
    found: list[Run] = []
    twice = 2 * stride
    for x in values:
        if x + twice in members and x + stride in members and x - stride not in members:
            last = x + twice
            while last + stride in members:
                last += stride
            found.append((x, last, stride))
    return found


def _take_longest(candidates: list[Run]) -> tuple[list[Run], set[int]]:
    """Greedy selection: longest candidate first, cutting later ones around taken values."""
    heap = [(-_run_len(run), run) for run in candidates]
    heapify(heap)
    taken: set[int] = set()
    runs: list[Run] = []
    while heap:
        _, run = heappop(heap)
        first, last, step = run
        span = range(first, last + 1, step)
        if taken.isdisjoint(span):
            runs.append(run)
            taken.update(span)
            continue
        piece_first = first
        for hit in sorted(taken.intersection(span)):
            if hit - piece_first >= 3 * step:
                piece = (piece_first, hit - step, step)
                heappush(heap, (-_run_len(piece), piece))
            piece_first = hit + step
        if last - piece_first >= 2 * step:
            piece = (piece_first, last, step)
            heappush(heap, (-_run_len(piece), piece))
    return runs, taken


def _extend_and_join(runs: list[Run], loose: set[int]) -> list[Run]:
    """Let left-over values extend the runs they continue; join same-stride continuations."""
    extended: list[Run] = []
    for first, last, step in runs:
        while last + step in loose:
            last += step
            loose.discard(last)
        while first - step in loose:
            first -= step
            loose.discard(first)
        extended.append((first, last, step))
    extended.sort(key=lambda run: (run[2], run[0]))
    joined: list[Run] = []
    for run in extended:
        if joined and joined[-1][2] == run[2] and joined[-1][1] + run[2] == run[0]:
            joined[-1] = (joined[-1][0], run[1], run[2])
        else:
            joined.append(run)
    return joined


def _format(runs: list[Run], singles: list[int]) -> str:
    """Interleave formatted runs (sorted) with singletons (sorted) in ascending order."""
    texts = list(map(str, singles))
    parts: list[str] = []
    done = 0
    for run in runs:
        upto = bisect_left(singles, run[0], done)
        parts.extend(texts[done:upto])
        parts.append(_format_run(run))
        done = upto
    parts.extend(texts[done:])
    return ",".join(parts)


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


def split_indices(
    indices: Sequence[int], max_tasks: int, max_spec_chars: int = 10000
) -> list[list[int]]:
    """Split strictly increasing indices into consecutive chunks that each fit one sbatch.

    Every chunk holds at most ``max_tasks`` indices and compresses to at most
    ``max_spec_chars`` characters. Chunks are taken greedily as long as
    possible: the count whose plain comma list fits is a guaranteed start, then
    galloping and bisection find a longer prefix that still compresses small
    enough (compressed length is not strictly monotonic, so the result is long,
    not provably longest; every chunk is verified). Raises ValueError on
    unsorted or duplicate input, non-positive limits, or an index too long to
    fit ``max_spec_chars`` on its own.
    """
    if max_tasks < 1:
        raise ValueError(f"max_tasks must be at least 1, got {max_tasks}")
    if max_spec_chars < 1:
        raise ValueError(f"max_spec_chars must be at least 1, got {max_spec_chars}")
    values = list(map(operator.index, indices))
    if any(a >= b for a, b in pairwise(values)):
        raise ValueError("split_indices needs strictly increasing indices")
    # plain[i] = length of ",".join(values[:i]) + 1, to bound chunk sizes from below
    plain = [0, *accumulate(len(str(v)) + 1 for v in values)]

    def fits(start: int, count: int) -> bool:
        return len(compress(values[start : start + count])) <= max_spec_chars

    chunks: list[list[int]] = []
    start = 0
    while start < len(values):
        cap = min(max_tasks, len(values) - start)
        good = _plain_fit(plain, start, cap, max_spec_chars)
        if good == 0:
            raise ValueError(f"index {values[start]} alone exceeds {max_spec_chars} characters")
        bad = None
        probe = good
        while good < cap and bad is None:
            probe = min(cap, probe * 2)
            if fits(start, probe):
                good = probe
            else:
                bad = probe
        while bad is not None and bad - good > 1:
            mid = (good + bad) // 2
            if fits(start, mid):
                good = mid
            else:
                bad = mid
        chunks.append(values[start : start + good])
        start += good
    return chunks


def _plain_fit(plain: list[int], start: int, cap: int, limit: int) -> int:
    """Largest count <= cap whose comma-joined text from ``start`` fits in ``limit``."""
    lo, hi = 0, cap
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if plain[start + mid] - plain[start] - 1 <= limit:
            lo = mid
        else:
            hi = mid - 1
    return lo
