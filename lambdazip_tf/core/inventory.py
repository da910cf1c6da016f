"""What a plan tells a person besides the zips' entries: how big each thing left out is, and
what a zip not built yet would weigh (the runtime adds the dev-only packages).

Only `plan` asks for these (pipeline.dry_run). The reads here do not decide the selection, so
they are made directly, not through the selection's observed file system.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from typing import NamedTuple

from .compress import deflated_size
from .entries import Entry, Excluded
from .runtime import Unshipped

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
    notes: tuple[str, ...] = ()  # what the runtime tells a person of the shipped files


def tree_size(path: str, *, skip: str | None = None) -> tuple[int, int]:
    """(files, bytes) of a file or of a folder's regular files, links not followed; folders
    named `skip` not counted (a package's own files without its installed dependencies)."""
    try:
        st = os.lstat(path)
    except OSError:
        return 0, 0
    if not stat.S_ISDIR(st.st_mode):
        return (1, st.st_size) if stat.S_ISREG(st.st_mode) else (0, 0)
    files = size = 0
    for folder, folders, names in os.walk(path):
        if skip is not None and skip in folders:
            folders.remove(skip)
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


def estimated_size(entries: Sequence[Entry], level: int) -> int:
    """What a zip of `entries` would weigh, without writing it: each member's headers, and the
    files' bytes at a compression ratio measured on a sample.

    The sample is drawn by bytes, not by files (a file is picked in proportion to its size), so
    that the mean of the picked files' ratios estimates the ratio of the whole: installed
    dependencies mix thousands of small files with a few large, very compressible ones. Each
    pick deflates at most the first SAMPLE_PREFIX bytes of its file.
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
