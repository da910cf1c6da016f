"""What a plan tells a person besides the zips' entries: how big each thing left out is, which
dev-only packages are installed but not shipped, and what a zip not built yet would weigh.

Only `plan` asks for these (pipeline.dry_run). The reads here do not decide the selection, so
they are made directly, not through the selection's observed file system.
"""

from __future__ import annotations

import os
import stat
from collections import deque
from collections.abc import Sequence
from typing import NamedTuple

from .compress import deflated_size
from .entries import Entry, Excluded
from .filesystem import ObservedFileSystem
from .nodejs import read_manifest, resolve, valid_name
from .selection import is_within

# A zip member costs its local header and central record besides its data: 30 + 46 bytes and
# the name twice.
_MEMBER_OVERHEAD = 76
_SAMPLES = 256  # files picked for the compression ratio (some more than once)
SAMPLE_PREFIX = 64 * 1024


class Group(NamedTuple):
    """What was left out for one reason: how many paths, files and bytes."""

    reason: str
    paths: int
    files: int
    size: int


class Inventory(NamedTuple):
    """What `plan` reports besides the entries."""

    left_out: list[Group]
    dev_only: list[Unshipped]
    estimated: dict[str, int]  # "function" / "layer": a zip not built yet, in bytes


class Unshipped(NamedTuple):
    """A package installed for development only: in node_modules, not in the zip."""

    name: str
    version: str
    path: str
    files: int
    size: int


def tree_size(path: str, *, nested_node_modules: bool = True) -> tuple[int, int]:
    """(files, bytes) of a file or of a folder's regular files, links not followed; without
    `nested_node_modules`, a package's own files only."""
    try:
        st = os.lstat(path)
    except OSError:
        return 0, 0
    if not stat.S_ISDIR(st.st_mode):
        return (1, st.st_size) if stat.S_ISREG(st.st_mode) else (0, 0)
    files = size = 0
    for folder, folders, names in os.walk(path):
        if not nested_node_modules and "node_modules" in folders:
            folders.remove("node_modules")
        for name in names:
            try:
                item = os.lstat(os.path.join(folder, name))
            except OSError:
                continue
            if stat.S_ISREG(item.st_mode):
                files += 1
                size += item.st_size
    return files, size


def groups(excluded: Sequence[Excluded], located: dict[str, str]) -> list[Group]:
    """The left-out paths grouped by reason, largest first; `located` gives a real path for
    left-out paths that have none of their own (excluded packages)."""
    found: dict[str, list[int]] = {}
    for item in excluded:
        files, size = tree_size(item.path or located.get(item.arc, ""))
        counts = found.setdefault(item.reason, [0, 0, 0])
        counts[0] += 1
        counts[1] += files
        counts[2] += size
    return sorted(
        (Group(reason, *counts) for reason, counts in found.items()),
        key=lambda g: (-g.size, g.reason),
    )


def locate_packages(source: str, excluded: Sequence[Excluded]) -> dict[str, str]:
    """Where the packages exclude_packages left out are installed, by their archive path."""
    fs = ObservedFileSystem()  # its facts are not kept: nothing here decides the selection
    located = {}
    for item in excluded:
        name = item.arc.removeprefix("node_modules/")
        if item.path is None and item.arc.startswith("node_modules/") and valid_name(name):
            found = resolve(fs, name, source)
            if found is not None:
                located[item.arc] = found[1]
    return located


def dev_only(source: str, shipped: Sequence[str], allowed_roots: Sequence[str]) -> list[Unshipped]:
    """The packages reached from package.json's devDependencies and not shipped (`shipped`:
    the shipped packages' real folders), largest first."""
    fs = ObservedFileSystem()
    taken = set(shipped)
    manifest = read_manifest(fs, source, required=False)
    start = manifest.get("devDependencies")
    queue: deque[tuple[str, str]] = deque(
        (name, source) for name in (start if isinstance(start, dict) else {}) if valid_name(name)
    )
    seen: dict[str, Unshipped] = {}
    while queue:
        name, start_at = queue.popleft()
        try:
            found = resolve(fs, name, start_at)
        except OSError:
            continue
        if found is None:
            continue
        real = found[1]
        if real in taken or real in seen or not any(is_within(real, r) for r in allowed_roots):
            continue
        try:
            package = read_manifest(fs, real, required=False)
        except OSError:
            package = {}
        files, size = tree_size(real, nested_node_modules=False)
        version = package.get("version")
        seen[real] = Unshipped(
            name, version if isinstance(version, str) else "?", real, files, size
        )
        for key in ("dependencies", "optionalDependencies"):
            table = package.get(key)
            for dep in table if isinstance(table, dict) else {}:
                if isinstance(dep, str) and valid_name(dep):
                    queue.append((dep, real))
    return sorted(seen.values(), key=lambda p: (-p.size, p.name))


def estimated_size(entries: Sequence[Entry], level: int) -> int:
    """What a zip of `entries` would weigh, without writing it: each member's headers, and the
    files' bytes at a compression ratio measured on a sample.

    The sample is drawn by bytes, not by files (a file is picked in proportion to its size), so
    that the mean of the picked files' ratios estimates the ratio of the whole: node_modules
    mixes thousands of small files with a few large, very compressible ones. Each pick deflates
    at most the first SAMPLE_PREFIX bytes of its file.
    """
    files = [e for e in entries if e.kind == "file" and e.source is not None]
    total = sum(e.size for e in files)
    overhead = sum(
        _MEMBER_OVERHEAD + 2 * len(e.zip_name.encode("utf-8", "replace")) for e in entries
    )
    overhead += sum(len((e.target or "").encode()) for e in entries if e.kind == "link") + 22
    if not total:
        return overhead
    stride = total / _SAMPLES
    ratios: list[float] = []
    position, next_pick = 0, stride / 2
    for entry in files:
        end = position + entry.size
        picks = 0
        while next_pick < end:
            picks += 1
            next_pick += stride
        if picks:
            ratio = _ratio(entry.source or "", level)
            if ratio is not None:
                ratios += [ratio] * picks
        position = end
    ratio = sum(ratios) / len(ratios) if ratios else 1.0
    return int(total * ratio) + overhead


def _ratio(path: str, level: int) -> float | None:
    try:
        with open(path, "rb") as f:
            data = f.read(SAMPLE_PREFIX)
    except OSError:
        return None
    return deflated_size(data, level) / len(data) if data else None
