"""Early packing: a cold build's idle cores pack files while the build is still starting.

Before the first file can be packed, a cold build imports pydantic, validates the request and
selects the files (DESIGN 5): a second of one busy core on the benchmark tree, with the other
cores idle. Early packing forks one process for each of those other cores, at nice 10 so that
the build's own work goes first, as soon as the request's source folder is known. (One process
per core, as before, made three processes share two cores: the early packers spent 35-50% more
CPU than the same files cost when packed again alone, scratch measurement, and the second one
only took slices of the build's own core.) Each walks part of that folder
(not the output folder) and packs (reads, hashes, deflates) its regular files of up to 4 MB, as
the pool would later, until the build asks for the results or a byte budget runs out.

The results are a cache in all but name: a file's result is used only when the selection picks
the same path with the same stat key (size, mtime, ctime, inode, device) that the file had
before and after it was read early, and not when that key is racy (fsview.is_racy), so what an
early result holds is what the pool would have read. Results for files the selection leaves
out are dropped. The zip is byte for byte the one a build without early packing writes
(tests/test_early.py).

Only cold builds start it (no cache database in the output folder yet, or LAMBDAZIP_NO_CACHE):
a warm build packs little, and early packing would only compete with it for the cores.

Plain os.fork rather than multiprocessing: the processes start before pydantic is imported,
in a few milliseconds, and need nothing but a pipe each way.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import pickle
import signal
import struct
import time
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple, NoReturn

from .compress import DEFAULT_LEVEL, Fields, Packed, fields, from_fields, pack_file
from .cores import worker_count
from .errors import LambdazipError
from .fsview import is_racy, stat_key
from .snapshot import CACHE_NAME, output_dir_for

log = logging.getLogger(__name__)

# Input bytes one process packs at most: results wait in memory until the build uses them
# (deflated: about a quarter of that on the benchmark tree).
BUDGET_BYTES = 64 * 1024 * 1024
# Larger files are left to the pool: the build waits for the file in hand when it collects, and
# deflating 4 MB takes about 0.07 s here.
LARGEST_BYTES = 4 * 1024 * 1024
# Folders per process before the tree is dealt out (_files_of_share).
FOLDERS_PER_SHARE = 8


class Early(NamedTuple):
    """One file packed early: its stat key before and after reading, when reading started."""

    key: tuple[int, int, int, int, int]
    started_ns: int
    packed: Packed


class EarlyPacking:
    """The early packing processes of one build, and what they packed once collected."""

    def __init__(self, level: int, stop: int, progress: mmap.mmap | None = None) -> None:
        self.level = level
        self._pids: list[int] = []
        self._stop: int | None = stop  # the write end of the pipe whose end of file stops them
        self._results: list[int] = []
        self._packed: dict[str, Early] | None = None
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
        """The early packing processes not reaped yet."""
        return list(self._pids)

    @property
    def pipes(self) -> list[int]:
        """The read ends of their result pipes, not collected yet."""
        return list(self._results)

    def add(self, pid: int, results: int) -> None:
        """Take charge of one more early packing process and its result pipe."""
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

    def take(self, files: Sequence[tuple[str, tuple[int, ...] | None]]) -> list[Early | None]:
        """For each (path, stat key), its early result if it was read with that key, or None.

        Each result is used once. All files in one call, not three calls per file.
        """
        packed = self.collect()
        found: list[Early | None] = []
        for path, key in files:
            early = packed.get(path)
            if early is not None and early.key == key:
                del packed[path]
                found.append(early)
            else:
                found.append(None)
        self.used += len(found) - found.count(None)
        return found

    def collect(self, *, finish: bool = False) -> dict[str, Early]:
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
                    self._packed[path] = Early(key, started_ns, from_fields(packed))
        self._results = []
        self.stop()
        self._reap()
        log.debug("early packing: %d files packed", len(self._packed))
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
            log.debug("early packing: %d files not used", len(self._packed))
        self._packed.clear()
        self._reap()

    def _reap(self) -> None:
        for pid in self._pids:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self._pids = []


@contextlib.contextmanager
def started(source_dir: str, output_dir: str, level: int) -> Iterator[EarlyPacking | None]:
    """Early packing of `source_dir` for a cold build at `level`, stopped on leaving the block.

    Yields None when it does not apply: a warm cache, one core (LAMBDAZIP_JOBS=1), no fork, or
    a source that is not a folder; the build then packs everything itself.
    """
    early = _start(source_dir, output_dir, level)
    try:
        yield early
    finally:
        if early is not None:
            early.close()


def started_raw(data: Any, cwd: str) -> contextlib.AbstractContextManager[EarlyPacking | None]:
    """`started` for an external-mode request not validated yet (pydantic is not imported).

    Read leniently: a value that validation will refuse only means no early packing, and
    whatever is packed early is checked against the real selection before it is used.
    """
    if not isinstance(data, dict):
        return contextlib.nullcontext()
    source = data.get("source_dir")
    level = data.get("compression_level", str(DEFAULT_LEVEL))
    places = (data.get("output_path"), data.get("output_dir"))
    if (
        not isinstance(source, str)
        or not all(p is None or isinstance(p, str) for p in places)
        or not (isinstance(level, str) and level in "0123456789" and len(level) == 1)
    ):
        return contextlib.nullcontext()
    return started_for(cwd, source, places[0], places[1], int(level))


def started_for(
    cwd: str,
    source_dir: str | os.PathLike[str],
    output_path: str | os.PathLike[str] | None,
    output_dir: str | os.PathLike[str] | None,
    level: int,
) -> contextlib.AbstractContextManager[EarlyPacking | None]:
    """`started` for a request's own fields, resolved against `cwd` as the build resolves them
    (the artifacts' folder: snapshot.output_dir_for)."""
    folder = output_dir_for(output_path, output_dir, cwd)
    return started(os.path.join(cwd, source_dir), folder, level)


def _start(source_dir: str, output_dir: str, level: int) -> EarlyPacking | None:
    count = worker_count()
    try:  # a path validation will refuse (a NUL, a lone surrogate) only means no early packing
        root = os.path.realpath(source_dir)
        artifacts = os.path.realpath(output_dir)
        folder = os.path.isdir(root)
        warm = os.path.exists(os.path.join(artifacts, CACHE_NAME))
    except (OSError, ValueError):
        return None
    if (
        count < 2
        or not hasattr(os, "fork")
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
    early = EarlyPacking(level, stop_write, progress)
    try:
        for share in range(shares):
            job = _Share(root, artifacts, level, share, shares)
            result_read, result_write = os.pipe()
            try:
                pid = os.fork()
            except OSError:
                os.close(result_read)
                os.close(result_write)
                raise
            if pid == 0:  # pragma: no cover - runs in the child, which never returns
                _child(
                    job,
                    stop_read,
                    result_write,
                    (stop_write, result_read, *early.pipes),
                    progress,
                )
            os.close(result_write)
            early.add(pid, result_read)
    except OSError:  # no more processes or descriptors: the build packs everything itself
        early.close()
        return None
    finally:
        os.close(stop_read)
    return early


class _Share(NamedTuple):
    """What one early packing process packs: share `share` of `shares` of the tree at `root`."""

    root: str
    output_dir: str  # not walked: it holds artifacts
    level: int
    share: int
    shares: int


def _child(
    job: _Share, stop: int, out: int, inherited: tuple[int, ...], progress: mmap.mmap | None
) -> NoReturn:
    """Pack this share of the tree until stopped, send the results, and exit (never return)."""
    try:
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
        # and early packing takes what is left (measured: selection 0.45 s instead of 0.6-0.7 s
        # beside two early packers at the same priority).
        os.nice(10)
        os.set_blocking(stop, False)
        packed = _pack_share(job, stop, progress)
        sent = {path: (e.key, e.started_ns, fields(e.packed)) for path, e in packed.items()}
        data = pickle.dumps(sent, protocol=pickle.HIGHEST_PROTOCOL)
        view = memoryview(data)
        while view:
            view = view[os.write(out, view) :]
    except BaseException:  # nothing a child meets may reach the build: it only exits
        pass
    finally:
        os._exit(0)


def _pack_share(job: _Share, stop: int, progress: mmap.mmap | None = None) -> dict[str, Early]:
    packed: dict[str, Early] = {}
    budget = BUDGET_BYTES
    for item in _files_of_share(job):
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
        packed[item.path] = Early(key, started_ns, result)
        if progress is not None:
            struct.pack_into("=q", progress, 8 * job.share, len(packed))
        budget -= before.st_size
        if budget <= 0:
            break
    return packed


def _files_of_share(job: _Share) -> Iterator[os.DirEntry[str]]:
    """The regular files of this share of the tree; together the shares hold each file once.

    Each process lists only its own part: dealing out every Nth folder of one walk had each
    process list the whole tree, 0.15-0.2 s of CPU apiece on the benchmark tree. The folders
    are listed breadth first, in name order, until there are FOLDERS_PER_SHARE per process
    (a function's packages: node_modules/*); files met on the way and those folders' subtrees
    are dealt out in turn, the subtrees walked from the last folder to the first: the build's
    pool starts on the first files in archive order before it collects these results, so what
    each packs first is what the pool reaches last (packer.py).
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
    """A folder's subfolders (not the output folder: artifacts, never selected, DESIGN 5) and
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
