"""Parsing hundreds of thousands of sacct rows fast: memoised columns, no GC walks.

Profiling ``benchmarks/scale.py`` showed a poll of a big chain spent its time
constructing rows (now msgspec Structs, built in C and never tracked by the
cyclic garbage collector), re-parsing repeated column values and in the
collector itself. One helper for each of the last two.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

T = TypeVar("T")
V = TypeVar("V")


class Memo(dict[str, V], Generic[V]):
    """``memo[key]`` is ``fn(key)``, computed once; forgets everything past ``size`` keys.

    A dict lookup is several times cheaper than calling an lru_cache, and clearing
    now and then bounds memory in a long-running monitor where start and end
    times never repeat.
    """

    def __init__(self, fn: Callable[[str], V], size: int = 16384) -> None:
        super().__init__()
        self.fn = fn
        self.size = size

    def __missing__(self, key: str) -> V:
        if len(self) >= self.size:
            self.clear()
        value = self[key] = self.fn(key)
        return value


@contextmanager
def gc_paused() -> Iterator[None]:
    """Suspend the cyclic garbage collector while building many objects.

    Every few hundred new rows CPython runs a collection, and with hundreds of
    thousands of live rows the full ones walk all of them, finding nothing:
    rows hold only strings, numbers and enums. Pausing it takes about a third
    off parsing and grouping 100,000 tasks (benchmarks/scale.py). It is turned
    back on on the way out only if it was on (a caller's gc.disable wins).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
