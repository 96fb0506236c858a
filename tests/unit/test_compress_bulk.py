"""compress() on numpy columns for big sets (slurm_escalate.arrays.compress_bulk).

compress() hands sets of ``BULK_MIN`` indices or more to ``compress_bulk``, which
must write exactly what the pure-Python greedy writes (``compress_small``, the
algorithm as it was before: its output on tricky and at-scale inputs is pinned
literally in test_arrayspec.py's golden tables, whose 200,000-index entries now
take this path). ``compress_bulk`` works on sets of any size, so the properties
below compare the two on small sets, where hypothesis can search widely; equal
output is "the same or shorter" with nothing left to chance.
"""

from __future__ import annotations

import random
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slurm_escalate.arrays import compress as compress_module
from slurm_escalate.arrays import compress_bulk as bulk_module
from slurm_escalate.arrays.compress import BULK_MIN, MAX_INDEX, compress, compress_small
from slurm_escalate.arrays.compress_bulk import compress_bulk
from slurm_escalate.arrays.spec import expand


def subset(seed: int, size: int, density: float) -> set[int]:
    rng = random.Random(seed)
    return {i for i in range(size) if rng.random() < density}


index_sets = st.one_of(
    st.sets(st.integers(0, 300), min_size=1),
    st.sets(st.integers(0, MAX_INDEX), min_size=1, max_size=60),
    # unions of strided runs: stretches, chains, pieces cut out of them, joins
    st.lists(
        st.tuples(st.integers(0, 5000), st.integers(1, 60), st.integers(1, 40)),
        min_size=1,
        max_size=8,
    ).map(lambda runs: {a + i * s for a, n, s in runs for i in range(n)}),
    # random subsets, dense and sparse, big enough to sample strides in windows
    st.builds(subset, st.integers(0, 10**6), st.integers(1, 5000), st.floats(0.05, 0.95)).filter(
        bool
    ),
    # near the top of the index range: keys and bounds at their limits
    st.sets(st.integers(MAX_INDEX - 400, MAX_INDEX), min_size=1),
)


@settings(max_examples=400, deadline=None)
@given(index_sets)
def test_bulk_writes_what_the_pure_greedy_writes(indices: set[int]) -> None:
    spec = compress_bulk(sorted(indices))
    assert spec == compress_small(indices)
    assert expand(spec) == sorted(indices)
    assert len(spec) <= len(",".join(map(str, sorted(indices))))  # never worse than a list


@pytest.mark.parametrize("walk", [0, 10**9], ids=["rounds-first", "walk-only"])
@settings(max_examples=150, deadline=None)
@given(indices=index_sets)
def test_a_bucket_is_decided_alike_in_rounds_or_one_by_one(walk: int, indices: set[int]) -> None:
    """_select settles candidates in rounds while that pays and walks the rest in queue
    order: both ways give the queue's choice."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(bulk_module, "_WALK", walk)
        assert compress_bulk(indices) == compress_small(indices)


def chain_of_overlaps(size: int) -> list[int]:
    """Stretches of three that share their ends, with steps too varied to be strides:
    each candidate overlaps the next, so rounds would settle two a round."""
    rng = random.Random(5)
    values = [0]
    while len(values) < size:
        step = rng.randrange(2, 2000)
        values += [values[-1] + step, values[-1] + 2 * step]
    return values


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 400), min_size=1, max_size=120), st.randoms(use_true_random=False))
def test_bulk_takes_any_order_and_duplicates(values: list[int], rnd: random.Random) -> None:
    shuffled = values * 2
    rnd.shuffle(shuffled)
    assert compress_bulk(shuffled) == compress_bulk(tuple(values)) == compress_small(values)


@pytest.mark.parametrize(
    "build",
    [
        lambda: subset(11, 5 * BULK_MIN, 0.3),  # over 65,536 values: strides sampled
        lambda: subset(12, 2 * BULK_MIN, 0.8),
        lambda: {x * 7919 + k * 13 for x in range(BULK_MIN // 3) for k in range(4)},  # sparse
        lambda: set(range(0, 6 * BULK_MIN, 3)) | set(range(1, 6 * BULK_MIN, 3)),  # interleaved
        lambda: set(range(BULK_MIN * 2)),  # one stretch: no chain search
        lambda: set(chain_of_overlaps(2 * BULK_MIN)),  # walked, not rounds
    ],
    ids=["random-30%", "random-80%", "sparse-progressions", "interleaved", "one-range", "chain"],
)
def test_big_sets_take_the_bulk_path_and_write_the_same(build) -> None:  # type: ignore[no-untyped-def]
    indices = build()
    assert len(indices) >= BULK_MIN
    spec = compress(indices)
    assert spec == compress_small(indices)
    assert expand(spec) == sorted(indices)


@pytest.mark.parametrize(
    "indices",
    [
        [],
        [3, -1, 5],
        [0, MAX_INDEX + 1],
        [0, 2**70],  # beyond 64 bits: numpy cannot hold it, the check must still run
        [1, 2.5],
        [1, "2"],
        [[1], [2, 3]],
    ],
    ids=["empty", "negative", "above-max", "beyond-64-bits", "float", "str", "nested"],
)
def test_bulk_refuses_what_the_pure_greedy_refuses(indices: list[object]) -> None:
    with pytest.raises(Exception) as pure:
        compress_small(indices)  # type: ignore[arg-type]
    with pytest.raises(type(pure.value)) as bulk:
        compress_bulk(indices)  # type: ignore[arg-type]
    assert str(bulk.value) == str(pure.value)


def test_bools_and_numpy_integers_are_indices_as_they_are_for_operator_index() -> None:
    import numpy as np

    assert compress_bulk([True, False, 2]) == compress_small([True, False, 2]) == "0-2"
    assert compress_bulk(list(np.arange(5, 50, 5))) == "5-45:5"


def test_the_size_decides_the_path(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def spy(items):  # type: ignore[no-untyped-def]
        calls.append(len(items))
        return compress_small(items)

    monkeypatch.setattr(bulk_module, "compress_bulk", spy)
    compress(range(BULK_MIN - 1))
    assert calls == []
    compress(iter(range(BULK_MIN)))  # any iterable, counted once it is a list
    assert calls == [BULK_MIN]
    assert compress_module.BULK_MIN == BULK_MIN


def test_numpy_is_imported_only_by_a_process_that_compresses_a_big_set() -> None:
    """The monitor and the CLI stay as light as before: numpy's import (0.1 s) is paid
    only where it saves more than it costs."""
    script = (
        "import sys\n"
        "import slurm_escalate.cli.main\n"
        "from slurm_escalate.arrays.spec import compress, split_indices\n"
        "compress(range(0, 40000, 3)); split_indices(list(range(20000)), 1000)\n"
        "assert 'numpy' not in sys.modules, 'numpy imported for a small set'\n"
        f"compress(range({BULK_MIN}))\n"
        "assert 'numpy' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True)
