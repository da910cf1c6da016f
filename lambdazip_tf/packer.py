"""Packing many files on all cores, results in archive order, memory bounded (DESIGN 7).

Worker processes rather than threads: measured on this 2-core machine, 2 processes compress 2.2x
faster than one and 2 threads only 1.76x, because the GIL contends on node_modules' many small files
(DESIGN 7). Files go to workers in batches (one task per file costs more in pickling than deflating
a 2 kB file); at most a few batches are in flight, so peak memory depends on the batch size, not on
the tree (issue 5).
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from types import TracebackType
from typing import TYPE_CHECKING

from .compress import Fields, Packed, fields, from_fields, pack_file
from .cores import worker_count
from .entries import Entry

if TYPE_CHECKING:  # early.py imports this module
    from .early import Early, EarlyPacking

BATCH_BYTES = 4 * 1024 * 1024
BATCH_FILES = 256
# The last batches are smaller, down to these (_batches).
LAST_BATCH_BYTES = 256 * 1024
LAST_BATCH_FILES = 16
# Batches in flight per worker. Results are taken in order, so a slow batch stops new ones
# being submitted until it is done; 4 per worker beat 2 in A/B runs of cold builds of the
# benchmark tree (6 rounds each, paired medians 0.945 and 0.970 of the time). Memory: at most
# 4 x 4 MB of input per worker, and its deflated bytes.
IN_FLIGHT_PER_WORKER = 4
# Below this much work a pool costs more to start than it saves.
POOL_MIN_BYTES = 8 * 1024 * 1024
POOL_MIN_FILES = 2000

Batch = list[tuple[str, int]]
Sent = list[tuple[int, Fields]]  # each file's reading start time and its Packed, as fields


def _pack_batch(batch: Batch, level: int) -> Sent:
    # The time is taken before reading: a digest is only trusted later when the file's mtime is
    # safely older than the moment it was read (the racy-timestamp rule, cache.py).
    return [(time.time_ns(), fields(pack_file(path, size, level))) for path, size in batch]


def _received(sent: Sent) -> Iterator[tuple[int, Packed]]:
    for started, packed in sent:
        yield started, from_fields(packed)


class Packer:
    """Packs files in order, in this process or in a pool it starts when the work is large.

    With `early`, files that early packing (early.py) already packed as they are now are taken
    from there. `started` is set once packing is under way: the pool has its first batches, or
    this process packs on its own.
    """

    def __init__(
        self,
        level: int,
        workers: int | None = None,
        early: EarlyPacking | None = None,
        started: threading.Event | None = None,
    ) -> None:
        self.level = level
        self.workers = workers or worker_count()
        self._pool: ProcessPoolExecutor | None = None
        self._early = early if early is not None and early.level == level else None
        self._started = started or threading.Event()

    def __enter__(self) -> Packer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def pack(self, entries: Sequence[Entry]) -> Iterator[tuple[int, Packed]]:
        """(time read, packed) for each file entry, in the order given."""
        files = [e for e in entries if e.source is not None]
        early: list[Early | None] = [None] * len(files)
        if self._early is not None:
            early = self._early.take([(e.source or "", e.stat_key) for e in files])
        todo = [(e.source or "", e.size) for e, got in zip(files, early, strict=True) if not got]
        rest = self._pack(todo)
        return ((got.started_ns, got.packed) if got else next(rest) for got in early)

    def _pack(self, items: list[tuple[str, int]]) -> Iterator[tuple[int, Packed]]:
        total = sum(size for _, size in items)
        if self.workers < 2 or (total < POOL_MIN_BYTES and len(items) < POOL_MIN_FILES):
            self._started.set()
            return ((time.time_ns(), pack_file(path, size, self.level)) for path, size in items)
        return self._parallel(items)

    def _parallel(self, items: list[tuple[str, int]]) -> Iterator[tuple[int, Packed]]:
        if self._pool is None:
            # fork: workers need nothing but this module, and start in milliseconds.
            context = multiprocessing.get_context("fork")
            self._pool = ProcessPoolExecutor(self.workers, mp_context=context)
        batches = _batches(items, self.workers)
        window: deque[Future[Sent]] = deque()
        limit = self.workers * IN_FLIGHT_PER_WORKER
        for batch in batches:
            window.append(self._pool.submit(_pack_batch, batch, self.level))
            if len(window) >= limit:
                self._started.set()
                yield from _received(window.popleft().result())
        self._started.set()
        while window:
            yield from _received(window.popleft().result())


def _batches(items: list[tuple[str, int]], workers: int) -> Iterator[Batch]:
    """The items in batches of up to BATCH_BYTES or BATCH_FILES, shrinking toward the end.

    A batch holds at most 1/(2 x workers) of what is left, so the workers run out of work
    together: with full-size batches to the end, one worker packed a last 4 MB batch alone for
    0.1-0.2 s while the others idled (scratch timeline of a cold build of the benchmark tree).
    """
    left_bytes = sum(size for _, size in items)
    left_files = len(items)
    share = 2 * workers
    batch: Batch = []
    size = 0
    max_bytes, max_files = BATCH_BYTES, BATCH_FILES
    for item in items:
        if not batch:
            max_bytes = min(BATCH_BYTES, max(LAST_BATCH_BYTES, left_bytes // share))
            max_files = min(BATCH_FILES, max(LAST_BATCH_FILES, left_files // share))
        batch.append(item)
        size += item[1]
        if size >= max_bytes or len(batch) >= max_files:
            yield batch
            left_bytes -= size
            left_files -= len(batch)
            batch, size = [], 0
    if batch:
        yield batch
