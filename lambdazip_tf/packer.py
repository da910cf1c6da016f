"""Packing many files on all cores, results in archive order, memory bounded (DESIGN 7).

Worker processes rather than threads: measured on this 2-core machine, 2 processes compress 2.2x
faster than one and 2 threads only 1.76x, because the GIL contends on node_modules' many small files
(DESIGN 7). Files go to workers in batches (one task per file costs more in pickling than deflating
a 2 kB file); at most a few batches are in flight, so peak memory depends on the batch size, not on
the tree (issue 5).
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import os
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


def _pipe(fd: int) -> tuple[int, int, int]:
    st = os.fstat(fd)
    return fd, st.st_ino, st.st_dev


def _close(pipes: tuple[tuple[int, int, int], ...]) -> None:
    """In a worker: close the copies of early packing's result pipes that the fork made, so
    that an early packing process left writing sees its reader go (early.py, close).

    By inode: the pool forks at its first submission, and when the results were collected
    before that, the pipes' numbers may already belong to the pool's own pipes.
    """
    for fd, inode, device in pipes:
        with contextlib.suppress(OSError):
            st = os.fstat(fd)
            if (st.st_ino, st.st_dev) == (inode, device):
                os.close(fd)


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
        items = [(e.source or "", e.size) for e in files]
        total = sum(size for _, size in items)
        pooled = self.workers >= 2 and (total >= POOL_MIN_BYTES or len(items) >= POOL_MIN_FILES)
        limit = self.workers * IN_FLIGHT_PER_WORKER
        head = self._head(items, limit) if pooled else []
        pool = self._start_pool() if pooled else None
        window: deque[Future[Sent]] = deque()
        if pool is not None:
            window.extend(self._submit(pool, batch) for batch in head)
        done = sum(len(batch) for batch in head)
        taken: list[Early | None] = [None] * done
        taken += self._take(files[done:])
        todo = [item for item, got in zip(items[done:], taken[done:], strict=True) if not got]
        rest: Iterator[tuple[int, Packed]]
        if pool is None:
            rest = ((time.time_ns(), pack_file(path, size, self.level)) for path, size in todo)
        else:
            batches = _batches(todo, self.workers)
            more = itertools.islice(batches, limit - len(window))
            window.extend(self._submit(pool, batch) for batch in more)
            rest = self._results(pool, window, batches)
        self._started.set()
        return ((got.started_ns, got.packed) if got else next(rest) for got in taken)

    def _head(self, items: list[tuple[str, int]], limit: int) -> list[Batch]:
        """The first batches, given to the pool before early packing's results are collected.

        Collecting first left a core idle for 0.13-0.19 s while early packing stopped and
        handed over (scratch timelines of cold builds of the benchmark tree): with a head
        start, the pool packs through it. Early packing walks the tree last first (early.py),
        so the first files are the ones it reaches last; when it has packed so much that it
        may have reached them, the results are collected first instead, so that no file is
        packed twice.
        """
        if self._early is None or self._early.collected:
            return []
        head = list(itertools.islice(_batches(items, self.workers), limit))
        done = sum(len(batch) for batch in head)
        return head if self._early.packed_so_far() + 2 * done <= len(items) else []

    def _start_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            inherited: tuple[tuple[int, int, int], ...] = ()
            if self._early is not None:
                self._early.stop()  # before the fork, which would copy its pipe (early.py)
                inherited = tuple(_pipe(fd) for fd in self._early.pipes)
            # fork: workers need nothing but this module, and start in milliseconds.
            context = multiprocessing.get_context("fork")
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=context, initializer=_close, initargs=(inherited,)
            )
        return self._pool

    def _take(self, files: Sequence[Entry]) -> list[Early | None]:
        """Early packing's result for each file, where it packed the file as it is now."""
        if self._early is None:
            return [None] * len(files)
        return self._early.take([(e.source or "", e.stat_key) for e in files])

    def _submit(self, pool: ProcessPoolExecutor, batch: Batch) -> Future[Sent]:
        return pool.submit(_pack_batch, batch, self.level)

    def _results(
        self, pool: ProcessPoolExecutor, window: deque[Future[Sent]], batches: Iterator[Batch]
    ) -> Iterator[tuple[int, Packed]]:
        """The pool's results in order; a batch is submitted as each one in flight is taken."""
        while window:
            sent = window.popleft().result()
            window.extend(self._submit(pool, batch) for batch in itertools.islice(batches, 1))
            yield from _received(sent)


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
