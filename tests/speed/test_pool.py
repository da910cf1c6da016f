"""The worker pool: every file once, in order, memory bounded (docs/design.md, "Fast paths")."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from lambdazip_tf.core.compress import pack_file
from lambdazip_tf.core.entries import Entry
from lambdazip_tf.speed import pool


def test_batches_hold_each_file_once_in_order_and_shrink_toward_the_end() -> None:
    # The workers run out of work together: the last batches are small.
    items = [(f"{i:05}.js", 10_000) for i in range(5000)]
    batches = list(pool.batches(items, 2))
    assert [item for batch in batches for item in batch] == items
    sizes = [len(batch) for batch in batches]
    assert sizes[0] == pool.BATCH_FILES
    assert sizes[-1] <= pool.LAST_BATCH_FILES
    assert sizes == sorted(sizes, reverse=True)
    big = [(f"{i:05}.js", 1_000_000) for i in range(40)]
    big_batches = list(pool.batches(big, 2))
    assert sum(size for _, size in big_batches[0]) >= pool.BATCH_BYTES
    assert all(len(batch) == 1 for batch in big_batches[-3:])


@pytest.mark.parametrize("count", [3, pool.POOL_MIN_FILES + 5])
def test_the_packer_gives_each_file_in_order_and_says_when_packing_started(
    tmp_path: Path, count: int
) -> None:
    # A few files are packed in this process, many in the pool; either way in the order given.
    entries = []
    for i in range(count):
        path = tmp_path / f"{i:05}.js"
        path.write_bytes(b"module.exports = %d;\n" % i * (1 + i % 7))
        size = path.stat().st_size
        entries.append(Entry(f"{i:05}.js", "file", 0o644, source=str(path), size=size))
    started = threading.Event()
    with pool.Packer(6, workers=2, started=started) as packer:
        results = packer.pack(entries)
        got = [next(results)[1]]
        assert started.is_set()
        got += [packed for _, packed in results]
    assert got == [pack_file(e.source or "", e.size, 6) for e in entries]


class _Progress:
    """Speculative packing as `Packer.head_start` sees it: collected or not, and a count."""

    def __init__(self, so_far: int, collected: bool = False) -> None:
        self.level, self.collected, self._so_far = 6, collected, so_far

    def packed_so_far(self) -> int:
        return self._so_far


def test_the_pool_gets_a_head_start_only_where_speculative_packing_has_not_been() -> None:
    items = [(f"/src/f{i:05}.js", 100) for i in range(10_000)]
    limit = 2 * pool.IN_FLIGHT_PER_WORKER

    def head(progress: Any) -> int:
        packer = pool.Packer(6, workers=2, speculative=progress)
        return sum(len(batch) for batch in packer.head_start(items))

    full = head(_Progress(0))
    assert full == limit * pool.BATCH_FILES  # the first files, a full window of batches
    assert head(_Progress(len(items) - 2 * full)) == full
    assert head(_Progress(len(items) - 2 * full + 1)) == 0  # it may have reached them
    assert head(_Progress(0, collected=True)) == 0
    assert head(None) == 0
