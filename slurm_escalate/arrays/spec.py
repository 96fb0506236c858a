"""Slurm ``--array`` specifications: parsing, expansion, splitting (compression: compress.py).

Resubmitting failed tasks means turning an arbitrary set of indices back into
an ``--array`` value. Slurm caps how long that value may be and how many tasks
one array may hold, so the set must be written compactly (``compress``) and,
when it is still too big, split over several submissions (``split_indices``).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import accumulate, chain, islice, pairwise, repeat
from itertools import compress as compress_mask

from slurm_escalate.arrays.compress import MAX_INDEX, compress
from slurm_escalate.errors import ArraySpecError

__all__ = [
    "MAX_INDEX",
    "MAX_SPEC_INDICES",
    "ArraySpec",
    "compress",
    "expand",
    "format_array",
    "parse_array_spec",
    "split_indices",
]

#: Refuse specs that would expand to more indices than this (counted before
#: de-duplication), so a typo like ``0-999999999`` fails fast instead of eating memory.
MAX_SPEC_INDICES = 10_000_000

_ELEMENT_RE = re.compile(r"(\d+)(?:-(\d+)(?::(\d+))?)?")

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
    if text.split(maxsplit=1) != [text]:  # a C-level "any(ch.isspace() for ch in text)"
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
    indices = _fast_indices(body)
    if indices is not None:
        return ArraySpec(indices=indices, throttle=throttle)

    ranges: list[range] = []
    total = 0
    for element in body.split(","):
        rng = _parse_element(element, fail)
        total += len(rng)
        if total > MAX_SPEC_INDICES:
            raise fail(f"more than {MAX_SPEC_INDICES} indices; split the array")
        ranges.append(rng)
    return ArraySpec(indices=_union(ranges), throttle=throttle)


_MAX_DIGITS = 10  # int() of this many digits is cheap; the MAX_INDEX check comes after


def _fast_indices(body: str) -> tuple[int, ...] | None:
    """The indices of a well-formed spec body, or None to let the element loop decide.

    compress() writes a million random indices as half a million elements, so
    they are checked and converted in bulk by C-level str and map() calls
    instead of one by one. Anything unusual (bad syntax, bounds, descending
    ranges, zero steps, more than MAX_SPEC_INDICES) returns None, and
    parse_array_spec's element loop then raises its precise error.
    """
    if not body.isascii():
        return None
    elements = body.split(",")
    is_range = list(map(operator.contains, elements, repeat("-")))
    singles = list(compress_mask(elements, map(operator.not_, is_range)))
    ranged = list(compress_mask(elements, is_range))
    stepped = map(operator.contains, ranged, repeat(":"))  # "a-b" is "a-b:1"
    columns = _columns(list(map(operator.add, ranged, map((":1", "").__getitem__, stepped))))
    if columns is None or not _digits(singles):
        return None
    firsts, lasts, steps = columns
    numbers = list(map(int, singles))
    if max(chain(numbers, lasts, steps), default=0) > MAX_INDEX or min(steps, default=1) < 1:
        return None
    if not all(map(operator.le, firsts, lasts)):
        return None
    ranges = list(map(range, firsts, map(operator.add, lasts, repeat(1)), steps))
    if len(numbers) + sum(map(len, ranges)) > MAX_SPEC_INDICES:
        return None
    values = numbers + list(chain.from_iterable(ranges))
    if all(map(operator.lt, values, islice(values, 1, None))):
        return tuple(values)
    return tuple(sorted(set(values)))


def _columns(elements: list[str]) -> list[list[int]] | None:
    """``a-b:s`` elements as three columns of ints, or None if one is not of that form."""
    text = ",".join(elements)
    numbers = text.replace("-", ",").replace(":", ",").split(",") if text else []
    # each element has a "-" and a ":", so only this count means exactly one of each
    if len(numbers) != 3 * len(elements) or not _digits(numbers):
        return None
    dashes, colons = (map(str.find, elements, repeat(sign)) for sign in "-:")
    if not all(map(operator.lt, dashes, colons)):
        return None  # "a:b-c"
    return [list(map(int, numbers[k::3])) for k in range(3)]


def _digits(texts: list[str]) -> bool:
    """All are plain numbers of at most _MAX_DIGITS digits (the caller checked isascii)."""
    return all(map(str.isdigit, texts)) and max(map(len, texts), default=0) <= _MAX_DIGITS


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
