"""Speculative packing: a cold build's idle cores pack the source folder's files while the
build is still selecting them.

Before the first file can be packed, a cold build imports pydantic, validates the request and
selects the files on one core, with the other cores idle. Speculative packing forks one process
for each of those other cores, at nice 10 so that the build's own work goes first, as soon as
the request's source folder is known. Each walks its share of that folder (not the output
folder) and packs (reads, hashes, deflates) its regular files of up to 4 MB, as the pool would
later, until the build asks for the results or a byte budget runs out. (One process per core,
a process more than the build leaves free, would only take slices of the build's own core.)

The results are a guess at what the selection will pick, checked before use: a file's result is
used only when the selection picks the same path with the same stat key (size, mtime, ctime,
inode, device) that the file had before and after it was read, and not when that key is racy
(facts.is_racy), so what a result holds is what the pool would have read. Results for files the
selection leaves out are dropped. The zip is byte for byte the one a build without speculative
packing writes.

Only cold builds start it (no cache database in the output folder yet, or LAMBDAZIP_NO_CACHE):
a warm build packs little, and speculative packing would only compete with it for the cores.
Only where forking is allowed (forking.py).

Plain os.fork rather than multiprocessing: the processes start before pydantic and the pool's
modules are imported, in a few milliseconds, and need nothing but a pipe each way
(docs/design.md, "Fast paths").
"""

from __future__ import annotations

import contextlib
import functools
import logging
import mmap
import os
import pickle
import signal
import struct
import time
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

from ..core.compress import DEFAULT_LEVEL, Fields, Packed, fields, from_fields, pack_file
from ..core.filesystem import stat_key
from ..errors import LambdazipError
from .database import CACHE_NAME
from .facts import is_racy
from .forking import fork_allowed, fork_child, worker_count

log = logging.getLogger(__name__)

# Input bytes one process packs at most: results wait in memory until the build uses them
# (deflated: about a quarter of that on the benchmark tree).
BUDGET_BYTES = 64 * 1024 * 1024
# Larger files are left to the pool: the build waits for the file in hand when it collects.
LARGEST_BYTES = 4 * 1024 * 1024
# Folders per process before the tree is dealt out (files_of_share).
FOLDERS_PER_SHARE = 8


class Speculated(NamedTuple):
    """One file packed speculatively: its stat key before and after reading, when reading
    started, and what packing it gave."""

    key: tuple[int, int, int, int, int]
    started_ns: int
    packed: Packed


class SpeculativePacking:
    """The speculative packing processes of one build, and what they packed once collected."""

    def __init__(self, level: int, stop: int, progress: mmap.mmap | None = None) -> None:
        self.level = level
        self._pids: list[int] = []
        self._stop: int | None = stop  # the write end of the pipe whose end of file stops them
        self._results: list[int] = []
        self._packed: dict[str, Speculated] | None = None
        self._progress = progress  # shared with the processes: how many files each has packed
        self.used = 0  # results taken by the build

    @property
    def collected(self) -> bool:
        """Whether the results were collected (the processes are then gone)."""
        return self._packed is not None

    def packed_so_far(self) -> int:
        """How many files the processes have packed by now (a count they keep up to date)."""
        if self._progress is None:
            return 0
        return sum(count for (count,) in struct.iter_unpack("=q", self._progress))

    @property
    def pids(self) -> list[int]:
        """The speculative packing processes not reaped yet."""
        return list(self._pids)

    @property
    def descriptors(self) -> list[int]:
        """Every pipe end this build holds of the processes: the stop pipe's, until it is
        closed, and the result pipes' not collected yet."""
        return ([] if self._stop is None else [self._stop]) + self._results

    @property
    def pipes(self) -> list[int]:
        """The read ends of their result pipes, not collected yet."""
        return list(self._results)

    def add(self, pid: int, results: int) -> None:
        """Take charge of one more speculative packing process and its result pipe."""
        self._pids.append(pid)
        self._results.append(results)

    def stop(self) -> None:
        """Tell the processes to stop after the file in hand (they then send their results).

        Before this process forks others (the pool): a copy of the pipe's write end in them
        would keep the end of file from ever arriving.
        """
        if self._stop is not None:
            os.close(self._stop)
            self._stop = None

    def take(self, files: Sequence[tuple[str, tuple[int, ...] | None]]) -> list[Speculated | None]:
        """For each (path, stat key), its result if it was read with that key, or None.

        Each result is used once. All files in one call, not three calls per file.
        """
        packed = self.collect()
        found: list[Speculated | None] = []
        for path, key in files:
            result = packed.get(path)
            if result is not None and result.key == key:
                del packed[path]
                found.append(result)
            else:
                found.append(None)
        self.used += len(found) - found.count(None)
        return found

    def collect(self, *, finish: bool = False) -> dict[str, Speculated]:
        """Stop the processes and gather what they packed (once; later calls return it).

        With `finish` (tests), they first pack all they would: their whole share of the tree,
        or up to the budget.
        """
        if self._packed is not None:
            return self._packed
        self._packed = {}
        if not finish:
            self.stop()
        for fd in self._results:
            with os.fdopen(fd, "rb") as pipe:
                data = pipe.read()
            with contextlib.suppress(pickle.UnpicklingError, EOFError, ValueError):
                sent: dict[str, tuple[Any, int, Fields]] = pickle.loads(data)  # our own child's
                for path, (key, started_ns, packed) in sent.items():
                    self._packed[path] = Speculated(key, started_ns, from_fields(packed))
        self._results = []
        self.stop()
        self._reap()
        log.debug("speculative packing: %d files packed", len(self._packed))
        return self._packed

    def close(self) -> None:
        """Stop the processes without using their results (also when the build failed)."""
        if self._packed is None:
            self._packed = {}
            self.stop()
            for fd in self._results:
                os.close(fd)  # a process still writing gets EPIPE and exits
            self._results = []
        elif self._packed:
            log.debug("speculative packing: %d files not used", len(self._packed))
        self._packed.clear()
        self._reap()

    def _reap(self) -> None:
        for pid in self._pids:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self._pids = []


@contextlib.contextmanager
def started(source_dir: str, output_dir: str, level: int) -> Iterator[SpeculativePacking | None]:
    """Speculative packing of `source_dir` for a cold build at `level`, stopped on leaving the
    block; `output_dir` is the request's output folder (not walked, and warm when it holds a
    cache).

    Yields None when it does not apply: a warm cache, one core, no fork, or a source that is
    not a folder; the build then packs everything itself.
    """
    packing = _start(source_dir, output_dir, level)
    try:
        yield packing
    finally:
        if packing is not None:
            packing.close()


def started_unvalidated(
    data: dict[str, str], cwd: str, output_dir: str
) -> contextlib.AbstractContextManager[SpeculativePacking | None]:
    """`started` for an external-mode request not validated yet (pydantic is not imported).

    Read leniently: a value that validation will refuse only means no speculative packing, and
    whatever is packed is checked against the real selection before it is used.
    """
    source = data.get("source_dir")
    level = data.get("compression_level", str(DEFAULT_LEVEL))
    if not source or not (level in "0123456789" and len(level) == 1):
        return contextlib.nullcontext()
    return started(os.path.join(cwd, source), output_dir, int(level))


def _start(source_dir: str, output_dir: str, level: int) -> SpeculativePacking | None:
    count = worker_count()
    try:  # a path validation will refuse (a NUL, a lone surrogate) only means no packing
        root = os.path.realpath(source_dir)
        artifacts = os.path.realpath(output_dir)
        folder = os.path.isdir(root)
        warm = os.path.exists(os.path.join(artifacts, CACHE_NAME))
    except (OSError, ValueError):
        return None
    if (
        count < 2
        or not fork_allowed()
        or not folder
        or (warm and not os.environ.get("LAMBDAZIP_NO_CACHE"))
    ):
        return None
    shares = count - 1  # the build's own process keeps the remaining core busy
    try:
        progress = mmap.mmap(-1, 8 * shares)  # shared: each process's count of files packed
        stop_read, stop_write = os.pipe()
    except OSError:
        return None
    packing = SpeculativePacking(level, stop_write, progress)
    try:
        for share in range(shares):
            job = Share(root, artifacts, level, share, shares)
            result_read, result_write = os.pipe()
            inherited = (stop_write, result_read, *packing.pipes)
            try:
                pid = fork_child(
                    functools.partial(_child, job, stop_read, result_write, inherited, progress)
                )
            except OSError:
                os.close(result_read)
                os.close(result_write)
                raise
            os.close(result_write)
            packing.add(pid, result_read)
    except OSError:  # no more processes or descriptors: the build packs everything itself
        packing.close()
        return None
    finally:
        os.close(stop_read)
    return packing


class Share(NamedTuple):
    """What one speculative packing process packs: share `share` of `shares` of the tree at
    `root`."""

    root: str
    output_dir: str  # not walked: it holds artifacts
    level: int
    share: int
    shares: int


def _child(
    job: Share, stop: int, out: int, inherited: tuple[int, ...], progress: mmap.mmap | None
) -> None:
    """In the child: pack this share of the tree until stopped, and send the results."""
    # Only its stop pipe's read end and its own result pipe's write end stay open: the end
    # of file on the stop pipe and EPIPE on the result pipe then mean what they should.
    for fd in inherited:
        os.close(fd)
    # The parent's stdout is Terraform's pipe: never hold it open, never write to it. (A
    # parent started with its standard descriptors closed may have had them reused for
    # the pipes: those stay.)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in {0, 1, 2} - {stop, out}:
        os.dup2(null, fd)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    # Below the build's own priority: on a busy core the build's selection goes first,
    # and speculative packing takes what is left.
    os.nice(10)
    os.set_blocking(stop, False)
    packed = _pack_share(job, stop, progress)
    sent = {path: (e.key, e.started_ns, fields(e.packed)) for path, e in packed.items()}
    data = pickle.dumps(sent, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(data)
    while view:
        view = view[os.write(out, view) :]


def _pack_share(job: Share, stop: int, progress: mmap.mmap | None = None) -> dict[str, Speculated]:
    packed: dict[str, Speculated] = {}
    budget = BUDGET_BYTES
    for item in files_of_share(job):
        if _stopped(stop):
            break
        try:
            before = item.stat(follow_symlinks=False)
            if before.st_size > min(budget, LARGEST_BYTES):
                continue
            started_ns = time.time_ns()
            result = pack_file(item.path, before.st_size, job.level)
            key = stat_key(before)
            if stat_key(os.lstat(item.path)) != key or is_racy(key, started_ns):
                continue
        except (OSError, LambdazipError):
            continue
        packed[item.path] = Speculated(key, started_ns, result)
        if progress is not None:
            struct.pack_into("=q", progress, 8 * job.share, len(packed))
        budget -= before.st_size
        if budget <= 0:
            break
    return packed


def files_of_share(job: Share) -> Iterator[os.DirEntry[str]]:
    """The regular files of this share of the tree; together the shares hold each file once.

    Each process lists only its own part, rather than every process walking the whole tree and
    taking every Nth folder of it. The folders
    are listed breadth first, in name order, until there are FOLDERS_PER_SHARE per process
    (a function's packages: node_modules/*); files met on the way and those folders' subtrees
    are dealt out in turn, the subtrees walked from the last folder to the first: the build's
    pool starts on the first files in archive order before it collects these results, so what
    each packs first is what the pool reaches last (pool.py).
    """
    level, dealt = [job.root], 0
    while level and len(level) < FOLDERS_PER_SHARE * job.shares:
        deeper = []
        for folder in level:
            folders, files = _contents(folder, job.output_dir, ordered=True)
            deeper += folders
            for item in files:
                if dealt % job.shares == job.share:
                    yield item
                dealt += 1
        level = deeper
    for number in range(len(level) - 1, -1, -1):
        if number % job.shares == job.share:
            yield from _subtree_files(level[number], job.output_dir)


def _subtree_files(folder: str, output_dir: str) -> Iterator[os.DirEntry[str]]:
    stack = [folder]
    while stack:
        folders, files = _contents(stack.pop(), output_dir, ordered=False)
        stack += folders
        yield from files


def _contents(
    folder: str, output_dir: str, *, ordered: bool
) -> tuple[list[str], list[os.DirEntry[str]]]:
    """A folder's subfolders (not the output folder: artifacts, never selected) and
    regular files, without following links; in name order where every process deals from the
    same order."""
    try:
        with os.scandir(folder) as listed:
            items = sorted(listed, key=lambda item: item.name) if ordered else list(listed)
    except OSError:
        return [], []
    folders, files = [], []
    for item in items:
        if item.is_dir(follow_symlinks=False):
            if item.path != output_dir:
                folders.append(item.path)
        elif item.is_file(follow_symlinks=False):
            files.append(item)
    return folders, files


def _stopped(stop: int) -> bool:
    """True once the parent closed the stop pipe (or died): nobody ever writes to it."""
    try:
        return os.read(stop, 1) == b""
    except BlockingIOError:
        return False
