"""Packing many files on all cores, results in archive order, memory bounded.

Worker processes rather than threads, because the GIL contends on node_modules' many small
files: threads gain much less than processes (docs/performance.md). Files go to workers in
batches (one task per file costs more in pickling than deflating a 2 kB file); at most a few
batches are in flight, so peak memory depends on the batch size, not on the tree. Where forking
is not allowed (forking.py), every file is packed in this process (docs/design.md, "Fast
paths").
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

from ..core.compress import Fields, Packed, fields, from_fields, pack_file
from ..core.entries import Entry
from .forking import fork_allowed, worker_count

if TYPE_CHECKING:  # speculative.py must not import this module's imports before it forks
    from .speculative import Speculated, SpeculativePacking

BATCH_BYTES = 4 * 1024 * 1024
BATCH_FILES = 256
# The last batches are smaller, down to these (batches).
LAST_BATCH_BYTES = 256 * 1024
LAST_BATCH_FILES = 16
# Batches in flight per worker. Results are taken in order, so a slow batch stops new ones
# being submitted until it is done: a deeper window keeps the workers busy past it
# (docs/performance.md). Memory: at most 4 x 4 MB of input per worker, and its deflated bytes.
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
    """In a worker: close the copies of speculative packing's result pipes that the fork made,
    so that a speculative packing process left writing sees its reader go (speculative.py).

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

    With `speculative`, files that speculative packing already packed as they are now are taken from
    there. `started` is set once packing is under way: the pool has its first batches, or
    this process packs on its own.
    """

    def __init__(
        self,
        level: int,
        workers: int | None = None,
        speculative: SpeculativePacking | None = None,
        started: threading.Event | None = None,
    ) -> None:
        self.level = level
        self.workers = workers or worker_count()
        self._pool: ProcessPoolExecutor | None = None
        self._speculative = (
            speculative if speculative is not None and speculative.level == level else None
        )
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
        big = total >= POOL_MIN_BYTES or len(items) >= POOL_MIN_FILES
        pooled = self.workers >= 2 and big and fork_allowed()
        limit = self.workers * IN_FLIGHT_PER_WORKER
        head = self.head_start(items) if pooled else []
        pool = self._start_pool() if pooled else None
        window: deque[Future[Sent]] = deque()
        if pool is not None:
            window.extend(self._submit(pool, batch) for batch in head)
        done = sum(len(batch) for batch in head)
        taken: list[Speculated | None] = [None] * done
        taken += self._take(files[done:])
        todo = [item for item, got in zip(items[done:], taken[done:], strict=True) if not got]
        rest: Iterator[tuple[int, Packed]]
        if pool is None:
            rest = ((time.time_ns(), pack_file(path, size, self.level)) for path, size in todo)
        else:
            queued = batches(todo, self.workers)
            more = itertools.islice(queued, limit - len(window))
            window.extend(self._submit(pool, batch) for batch in more)
            rest = self._results(pool, window, queued)
        self._started.set()
        return ((got.started_ns, got.packed) if got else next(rest) for got in taken)

    def head_start(self, items: list[tuple[str, int]]) -> list[Batch]:
        """The first batches, given to the pool before speculative packing's results are
        collected.

        Collecting first would leave a core idle while speculative packing stops and hands
        over: with a head start, the pool packs through it. Speculative packing walks the tree
        last first, so the first files are the ones it reaches last; when it has packed so much
        that it may have reached them, the results are collected first instead, so that no
        file is packed twice.
        """
        if self._speculative is None or self._speculative.collected:
            return []
        limit = self.workers * IN_FLIGHT_PER_WORKER
        head = list(itertools.islice(batches(items, self.workers), limit))
        done = sum(len(batch) for batch in head)
        return head if self._speculative.packed_so_far() + 2 * done <= len(items) else []

    @property
    def worker_pids(self) -> list[int]:
        """The pool's worker processes, once it started them."""
        if self._pool is None:
            return []
        return [process.pid for process in self._pool._processes.values() if process.pid]

    def _start_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            inherited: tuple[tuple[int, int, int], ...] = ()
            if self._speculative is not None:
                self._speculative.stop()  # before the fork, which would copy its pipe
                inherited = tuple(_pipe(fd) for fd in self._speculative.pipes)
            # fork: workers need nothing but this module, and start in milliseconds.
            context = multiprocessing.get_context("fork")
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=context, initializer=_close, initargs=(inherited,)
            )
        return self._pool

    def _take(self, files: Sequence[Entry]) -> list[Speculated | None]:
        """Speculative packing's result for each file, where it packed it as it is now."""
        if self._speculative is None:
            return [None] * len(files)
        return self._speculative.take([(e.source or "", e.stat_key) for e in files])

    def _submit(self, pool: ProcessPoolExecutor, batch: Batch) -> Future[Sent]:
        return pool.submit(_pack_batch, batch, self.level)

    def _results(
        self, pool: ProcessPoolExecutor, window: deque[Future[Sent]], queued: Iterator[Batch]
    ) -> Iterator[tuple[int, Packed]]:
        """The pool's results in order; a batch is submitted as each one in flight is taken."""
        while window:
            sent = window.popleft().result()
            window.extend(self._submit(pool, batch) for batch in itertools.islice(queued, 1))
            yield from _received(sent)


def batches(items: list[tuple[str, int]], workers: int) -> Iterator[Batch]:
    """The items in batches of up to BATCH_BYTES or BATCH_FILES, shrinking toward the end.

    A batch holds at most 1/(2 x workers) of what is left, so the workers run out of work
    together: with full-size batches to the end, one worker packs a last 4 MB batch alone while
    the others idle.
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
