"""compress() and parse_array_spec() against the implementations they replaced.

Both were rewritten for speed (a million indices in well under the old time);
their output must stay the same for every input, byte for byte. The slow
reference below is the previous code, verbatim but for docstrings, and is the
oracle here: change it only together with a deliberate change of behaviour.
"""

from __future__ import annotations

import operator
import random
import re
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable
from heapq import heapify, heappop, heappush
from itertools import chain, islice, pairwise
from itertools import compress as compress_mask

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slurm_escalate.arrays.spec import (
    MAX_INDEX,
    MAX_SPEC_INDICES,
    ArraySpec,
    compress,
    parse_array_spec,
)
from slurm_escalate.errors import ArraySpecError

# --- the reference (the implementation before the "Scale and speed" rewrite) -------------

_ELEMENT_RE = re.compile(r"(\d+)(?:-(\d+)(?::(\d+))?)?")
_NEIGHBOURS = 16
_MAX_STRIDES = 6
_RARE_GAP = 64
_SAMPLE_WINDOW = 4096
_SAMPLE_WINDOWS = 16
Run = tuple[int, int, int]
_Fail = Callable[[str], ArraySpecError]


def reference_parse_array_spec(text: str) -> ArraySpec:

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
    if len(digits.lstrip("0")) > len(str(MAX_INDEX)) or int(digits) > MAX_INDEX:
        raise fail(f"{what} {digits[:20]}{('...' if len(digits) > 20 else '')} exceeds {MAX_INDEX}")
    return int(digits)


def _union(ranges: list[range]) -> tuple[int, ...]:
    ordered = all((a[-1] < b[0] for a, b in pairwise(ranges)))
    if ordered:
        return tuple(chain.from_iterable(ranges))
    return tuple(sorted(set(chain.from_iterable(ranges))))


def reference_compress(indices: Iterable[int]) -> str:
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
    diffs = list(map(operator.sub, values[1:], values[:-1]))
    same = list(map(operator.eq, diffs[1:], diffs[:-1]))
    rises = map(operator.lt, chain((False,), same), same)
    stretches: list[Run] = []
    for i in compress_mask(range(len(same)), rises):
        try:
            end = same.index(False, i) - 1
        except ValueError:
            end = len(same) - 1
        stretches.append((values[i], values[end + 2], diffs[i]))
    return stretches


def _candidate_strides(values: list[int]) -> list[int]:
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
    found: list[Run] = []
    twice = 2 * stride
    for x in values:
        if x + twice in members and x + stride in members and (x - stride not in members):
            last = x + twice
            while last + stride in members:
                last += stride
            found.append((x, last, stride))
    return found


def _take_longest(candidates: list[Run]) -> tuple[list[Run], set[int]]:
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
    return (runs, taken)


def _extend_and_join(runs: list[Run], loose: set[int]) -> list[Run]:
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
        if joined and joined[-1][2] == run[2] and (joined[-1][1] + run[2] == run[0]):
            joined[-1] = (joined[-1][0], run[1], run[2])
        else:
            joined.append(run)
    return joined


def _format(runs: list[Run], singles: list[int]) -> str:
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
    if count > 8:
        return short
    listed = ",".join(map(str, range(first, last + 1, step)))
    return short if len(short) < len(listed) else listed


# --- compress ----------------------------------------------------------------------------


def random_subset(seed: int, size: int, density: float) -> set[int]:
    rng = random.Random(seed)
    return set(rng.sample(range(size), max(1, int(size * density))))


index_sets = st.one_of(
    st.sets(st.integers(0, 300), min_size=1),
    st.sets(st.integers(0, MAX_INDEX), min_size=1, max_size=60),  # sparse: set-based chains
    st.lists(  # unions of strided runs, the shape compress() is built for
        st.tuples(st.integers(0, 5000), st.integers(1, 60), st.integers(1, 60)),
        min_size=1,
        max_size=8,
    ).map(lambda runs: {a + i * s for a, n, s in runs for i in range(n)}),
    st.builds(  # random subsets: many short overlapping candidates of every kind
        random_subset, st.integers(0, 10**6), st.integers(1, 3000), st.floats(0.05, 0.9)
    ),
)


@settings(max_examples=400, deadline=None)
@given(index_sets)
def test_compress_matches_the_reference(indices: set[int]) -> None:
    assert compress(indices) == reference_compress(indices)


@pytest.mark.parametrize(
    "indices",
    [
        random_subset(1, 200_000, 0.3),  # the benchmark's shape, scaled down: bitset chains
        random_subset(2, 60_000, 0.7),
        set(range(0, 3000, 3)) | set(range(1, 3000, 3)) - {1501},  # long chains, walked
        {x * 7919 + k * 13 for x in range(2000) for k in range(random.Random(x).randint(1, 5))},
        {x * 1_000_003 % MAX_INDEX for x in range(5000)},  # sparse: set-based chains
        set(range(10**5)),  # one stretch: no chain search at all
    ],
    ids=["random-30%", "random-70%", "interleaved", "sparse-progressions", "scattered", "range"],
)
def test_compress_matches_the_reference_at_scale(indices: set[int]) -> None:
    assert compress(indices) == reference_compress(indices)


# --- parse_array_spec --------------------------------------------------------------------

numbers = st.one_of(
    st.integers(0, 99).map(str),
    st.integers(0, MAX_INDEX + 10).map(str),
    st.sampled_from(["0", "00", "007", "99999999999", "2147483647", "2147483648", "0000000000001"]),
)
elements = st.one_of(
    numbers,
    st.tuples(numbers, numbers).map("-".join),
    st.tuples(numbers, numbers, numbers).map(lambda t: f"{t[0]}-{t[1]}:{t[2]}"),
    st.text(alphabet="0123456789-:,%+ \u0663\u00b2", max_size=8),  # junk, unicode digits
)
specs = st.tuples(
    st.lists(elements, min_size=0, max_size=12).map(",".join),
    st.sampled_from(["", "%2", "%0", "%x", "%3%4"]),
).map("".join)


def outcome(parse: Callable[[str], ArraySpec], spec: str) -> ArraySpec | str:
    try:
        return parse(spec)
    except ArraySpecError as exc:
        return f"error: {exc}"


@settings(max_examples=1500, deadline=None)
@given(specs)
def test_parse_array_spec_matches_the_reference(spec: str) -> None:
    assert outcome(parse_array_spec, spec) == outcome(reference_parse_array_spec, spec)


@pytest.mark.parametrize(
    "spec",
    [
        compress(random_subset(3, 100_000, 0.3)),
        "1-3,2-4,0,9-1000000:7",
        "5,4,3,3-3,1-9:100",
        "1:2-3",
        "1-2-3,4-5",
        "1-2:3:4",
        "1-2:,3",
        f"0-{MAX_SPEC_INDICES}",
        f"0-{MAX_SPEC_INDICES - 1},5",
        f"{MAX_INDEX}",
        f"{MAX_INDEX + 1}",
        "0-10:2147483648",
    ],
)
def test_parse_array_spec_matches_the_reference_on_edges(spec: str) -> None:
    assert outcome(parse_array_spec, spec) == outcome(reference_parse_array_spec, spec)
