"""Checking, on the next run, the file-system facts a selection read (docs/design.md, "Fast
paths").

A build in external mode stores what its selection read (core/filesystem.py) with the stat key
of every zipped file. `changed_files` checks them: if every fact holds, the selection is the
same; then either no zipped file changed (the recorded result stands) or only some files'
content or mode may differ (the change path patches them in).

git's racy-timestamp rule applies to folders and files alike: anything whose mtime or ctime is
within RACY_NS of the recording is not trusted, because a second change in the same timestamp
tick would keep the same key. ctime counts too: it cannot be set back, but the kernel stamps it
from a coarse clock, so an edit that restores the mtime may leave it unchanged if it lands in
the same tick as the recording.
"""

from __future__ import annotations

import itertools
import os
import struct
from array import array
from collections.abc import Mapping, Sequence
from typing import Any

from ..core.filesystem import Fact, listing, stat_key
from .forking import fork_allowed, fork_child

RACY_NS = 2_000_000_000


def zip_key(st: os.stat_result) -> tuple[int, int, int]:
    """(size, mtime_ns, inode): what says an artifact is still the file that was written (an
    artifact is only ever replaced by a rename, never edited in place)."""
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def artifact_key(path: str) -> tuple[int, int, int]:
    """The zip_key of the artifact at `path`; OSError when it is gone."""
    return zip_key(os.stat(path))


def is_racy(key: Sequence[int], at_ns: int) -> bool:
    """git's racy-timestamp rule: a stat key (size, mtime_ns, ctime_ns, ...) whose mtime or
    ctime lies within RACY_NS of `at_ns` may hide a second change in the same tick."""
    return max(key[1], key[2]) + RACY_NS >= at_ns


def racy_facts(facts: Sequence[Fact], recorded_ns: int) -> bool:
    """True when a folder or file fact changed too close to the recording to be trusted."""
    return any(is_racy(k, recorded_ns) for op, _, k in facts if op in ("folder", "file"))


# The stat key stored for a file that was racy when recorded: it never matches a real one, so
# the file always counts as changed (the no-change path declines, the change path re-reads it).
NEVER = (-1, -1, -1, -1, -1)


def trusted_keys(keys: Sequence[tuple[int, ...]], recorded_ns: int) -> list[tuple[int, ...]]:
    """Zipped files' stat keys, with NEVER for those changed too close to the recording."""
    return [NEVER if is_racy(k, recorded_ns) else k for k in keys]


def pack_files(paths: Sequence[str], keys: Sequence[tuple[int, ...]]) -> tuple[str, bytes]:
    """Zipped files' paths and stat keys in a compact form that loads in milliseconds."""
    # array over the chained keys rather than struct.pack over a generator: no call per key.
    return "\0".join(paths), array("q", itertools.chain.from_iterable(keys)).tobytes()


def changed_files(
    facts: Sequence[Fact], paths: str, keys: bytes, listings: Mapping[str, str]
) -> list[int] | None:
    """The numbers of the zipped files whose stat key differs ([] when nothing changed), or None
    when a recorded fact no longer holds or a zipped file is gone: then the selection itself may
    differ, and only a full build can tell.

    Racy facts are never stored and racy files carry NEVER, so equality is enough. Where
    forking is allowed, the files are checked in two processes: a stat per file is the whole
    cost of the no-change path, and a forked child has its own interpreter lock. The child is
    forked before the listing is split, so that neither process touches the other's objects
    (copy-on-write faults on tens of thousands of shared objects would eat the gain).
    """
    count = paths.count("\0") + 1 if paths else 0
    if len(keys) != 40 * count:
        return None
    # The parent also checks the facts (a stat or more each): it takes fewer files.
    cut = max(0, (count - len(facts)) // 2) if count > 2000 else count
    child = None
    if cut < count:
        at = _nth_separator(paths, cut)
        child = _fork_check(paths[at + 1 :], keys[40 * cut :], cut)
        if child is not None:
            paths, keys = paths[: max(at, 0)], keys[: 40 * cut]
    mine = _files_changed(paths, keys, 0)
    held = _facts_hold(facts, listings)
    theirs = _child_answer(child) if child is not None else []
    if mine is None or theirs is None or not held:
        return None
    return mine + theirs


def _nth_separator(paths: str, n: int) -> int:
    """Where the n-th path ends (its separator), counting from 1; -1 for n = 0."""
    at = -1
    for _ in range(n):
        at = paths.find("\0", at + 1)
        if at < 0:
            return len(paths)
    return at


def _fork_check(paths: str, keys: bytes, first: int) -> tuple[int, int] | None:
    """A child checking `paths`, numbered from `first`: (pid, read end of its answer pipe)."""
    if not fork_allowed():
        return None
    try:
        read, write = os.pipe()
    except OSError:
        return None

    def answer() -> None:  # in the child: answer on the pipe, run nothing else
        os.close(read)
        changed = _files_changed(paths, keys, first)
        data = b"-" if changed is None else struct.pack(f"={len(changed)}q", *changed)
        while data:
            data = data[os.write(write, data) :]

    try:
        pid = fork_child(answer)
    except OSError:
        os.close(read)
        os.close(write)
        return None
    os.close(write)
    return pid, read


def _child_answer(child: tuple[int, int]) -> list[int] | None:
    pid, read = child
    chunks = []
    try:
        while chunk := os.read(read, 1 << 16):
            chunks.append(chunk)
    finally:
        os.close(read)
        _, status = os.waitpid(pid, 0)
    data = b"".join(chunks)
    if os.waitstatus_to_exitcode(status) != 0 or data == b"-" or len(data) % 8:
        return None
    return [n for (n,) in struct.iter_unpack("=q", data)]


def _files_changed(paths: str, keys: bytes, first: int) -> list[int] | None:
    """Numbers (from `first`) of the "\0"-separated paths whose stat key is not in `keys`."""
    if not paths:
        return []
    lstat = os.lstat
    changed = []
    try:
        for number, (path, key) in enumerate(
            zip(paths.split("\0"), struct.iter_unpack("=5q", keys), strict=True), first
        ):
            st = lstat(path)
            # stat_key written out, not called: this loop is most of the no-op.
            if (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev) != key:
                changed.append(number)
    except (OSError, ValueError):
        return None
    return changed


def _facts_hold(facts: Sequence[Fact], listings: Mapping[str, str]) -> bool:
    """True when every fact holds. A folder whose stat key changed still holds when it lists the
    same names with the same types: an editor's safe write or git replacing a file renames over
    it, which changes the folder's key; the file itself is then caught by its own stat key."""
    try:
        for op, path, expected in facts:
            if op == "folder":
                if stat_key(os.stat(path)) != tuple(expected):
                    recorded = listings.get(path)
                    if recorded is None:
                        return False
                    with os.scandir(path) as it:
                        if listing(list(it)) != recorded:
                            return False
            elif op == "file":
                if stat_key(os.stat(path)) != tuple(expected):
                    return False
            elif op == "realpath_strict":
                try:
                    got: Any = os.path.realpath(path, strict=True)
                except OSError as exc:
                    got = f"errno {exc.errno}"
                if got != expected:
                    return False
            elif _PROBES[op](path) != expected:
                return False
    except (OSError, KeyError, ValueError):
        return False
    return True


_PROBES: dict[str, Any] = {
    "isdir": os.path.isdir,
    "isfile": os.path.isfile,
    "exists": os.path.exists,
    "lexists": os.path.lexists,
    "realpath": os.path.realpath,
    "readlink": os.readlink,
}
