"""The archive's entries and the content hash that names an artifact (DESIGN 6).

An entry is what one zip member will be: its archive path, kind, normalised mode and where its bytes
come from. The content hash is computed over entries and file digests only, never over compressed
bytes, so it is the same on every machine whatever its zlib (DESIGN 6).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterable, Mapping
from typing import Literal, NamedTuple

from .fsview import stat_key

Kind = Literal["file", "dir", "link"]

# Bump when the bytes written for the same entries change (header layout, ordering, timestamps).
FORMAT_VERSION = "1"

FILE_MODE = 0o644
EXEC_MODE = 0o755
DIR_MODE = 0o755
LINK_MODE = 0o777

StatKey = tuple[int, int, int, int, int]  # size, mtime_ns, ctime_ns, inode, device


_KIND_BITS = {"file": stat.S_IFREG, "dir": stat.S_IFDIR, "link": stat.S_IFLNK}


class Entry(NamedTuple):
    """One archive member: a file (with its source), a directory, or a link (with its target).

    A NamedTuple rather than a frozen dataclass: a tree has tens of thousands of entries and a
    frozen dataclass pays an object.__setattr__ per field to build each one (issue 5).
    """

    arc: str
    kind: Kind
    mode: int
    source: str | None = None
    target: str | None = None
    size: int = 0
    stat_key: StatKey | None = None

    @property
    def zip_name(self) -> str:
        """The name stored in the zip: directories end with a slash."""
        return self.arc + "/" if self.kind == "dir" else self.arc

    @property
    def unix_mode(self) -> int:
        """The full st_mode stored in the external attributes."""
        return _KIND_BITS[self.kind] | self.mode


class Excluded(NamedTuple):
    """A path left out of the artifact, and why (shown by `plan`)."""

    arc: str
    reason: str


class PackageInfo(NamedTuple):
    """A shipped npm package, for `plan` and for the size-limit message."""

    name: str
    version: str
    arc: str
    files: int
    size: int


def normalised_mode(st_mode: int) -> int:
    """0755 for files with any execute bit, else 0644: readable by Lambda's unprivileged user."""
    return EXEC_MODE if st_mode & 0o111 else FILE_MODE


def file_entry(arc: str, path: str, st: os.stat_result) -> Entry:
    """A file entry from the `os.stat_result` of the file it will read."""
    # Positional: made once per file of the tree, and NamedTuple's keyword path costs more.
    return Entry(arc, "file", normalised_mode(st.st_mode), path, None, st.st_size, stat_key(st))


def with_parents(entries: Iterable[Entry]) -> list[Entry]:
    """Add a directory entry for every parent folder and sort by archive path (DESIGN 6)."""
    by_arc: dict[str, Entry] = {}
    for entry in entries:
        by_arc[entry.arc] = entry
        parent = entry.arc.rpartition("/")[0]
        while parent and parent not in by_arc:
            by_arc[parent] = Entry(arc=parent, kind="dir", mode=DIR_MODE)
            parent = parent.rpartition("/")[0]
    # Sorting on the stored name keeps directories ("a/") next to their contents, as zip -r does.
    return sorted(by_arc.values(), key=lambda e: e.zip_name.encode("utf-8", "surrogateescape"))


def content_hash(
    entries: Iterable[Entry], digests: Mapping[str, str], options: Mapping[str, object]
) -> str:
    """sha256 over the sorted manifest plus format version and byte-changing options (hex)."""
    lines = []
    for entry in entries:
        if entry.kind == "file":
            what = digests[entry.source]  # type: ignore[index]
        elif entry.kind == "link":
            what = entry.target or ""
        else:
            what = ""
        lines.append(manifest_line(entry.zip_name, entry.kind, entry.mode, what))
    return manifest_hash(lines, options)


def manifest_line(zip_name: str, kind: Kind, mode: int, what: str) -> str:
    """One entry of the manifest: what a content hash covers of it (DESIGN 6)."""
    return f"{zip_name}\0{kind}\0{mode:o}\0{what}"


def manifest_hash(lines: Iterable[str], options: Mapping[str, object]) -> str:
    """The content hash of a manifest's lines, in archive order."""
    header = {"format": FORMAT_VERSION, "options": dict(sorted(options.items()))}
    text = "\n".join((json.dumps(header, sort_keys=True), *lines))
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def combined_hash(function: str, layer: str | None) -> str:
    """The content hash of a request: the function's, combined with the layer's if any."""
    if layer is None:
        return function
    return hashlib.sha256(f"{function}:{layer}".encode()).hexdigest()
