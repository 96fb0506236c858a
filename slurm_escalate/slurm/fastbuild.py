"""Building hundreds of thousands of small objects fast (for the sacct parser).

Profiling ``benchmarks/scale.py`` showed a poll of a big chain spent most of
its time constructing frozen dataclasses, re-parsing repeated column values and
in the cyclic garbage collector. One helper for each.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import fields, make_dataclass
from typing import Generic, TypeVar, cast

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


def unfrozen_builder(cls: type[T]) -> Callable[..., T]:
    """A fast constructor for a frozen dataclass: ``build(*fields)`` equals ``cls(*fields)``.

    A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``,
    which made building rows most of the cost of a poll. This builds an instance
    of a plain (unfrozen) twin with the same fields, where each assignment is a
    cheap attribute store, then moves it into ``cls`` (same memory layout, so
    ``__class__`` may be reassigned). The result is an ordinary ``cls`` instance:
    equal, hashable and printable exactly like one made by ``cls(...)``, as the
    unit tests check. Only for classes without ``__post_init__`` or ``__slots__``,
    whose fields are all passed positionally.
    """
    if hasattr(cls, "__post_init__") or "__slots__" in vars(cls):
        raise TypeError(f"{cls.__name__} needs its own __init__")

    def move(self: object) -> None:  # the generated __init__ calls this last
        self.__class__ = cls

    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    twin = make_dataclass(
        f"_Unfrozen{cls.__name__}", names, repr=False, eq=False, namespace={"__post_init__": move}
    )
    return cast("Callable[..., T]", twin)


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
