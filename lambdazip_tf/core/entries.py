"""The archive's entries: what each zip member will be.

An entry is one member: its archive path, kind, normalised mode and where its bytes come from
(docs/design.md, "The zip"). A selection is a list of entries sorted by archive path.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Sequence
from typing import Literal, NamedTuple

from .filesystem import StatKey, stat_key

Kind = Literal["file", "dir", "link"]

FILE_MODE = 0o644
EXEC_MODE = 0o755
DIR_MODE = 0o755
LINK_MODE = 0o777

_KIND_BITS = {"file": stat.S_IFREG, "dir": stat.S_IFDIR, "link": stat.S_IFLNK}


class Entry(NamedTuple):
    """One archive member: a file (with its source), a directory, or a link (with its target).

    A NamedTuple rather than a frozen dataclass: a tree has tens of thousands of entries, and a
    frozen dataclass pays an object.__setattr__ per field to build each one.
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
    """A path left out of the artifact, and why (shown by `plan`). A package left out before
    it was found on disk (exclude_packages) is named, with the folder of what requires it."""

    arc: str  # where it would have been in the zip
    reason: str
    path: str | None = None  # what was left out on disk, for `plan` to measure
    package: str = ""
    dependent: str = ""


class PackageInfo(NamedTuple):
    """A shipped dependency, for `plan` and for the size-limit message."""

    name: str
    version: str
    arc: str  # the archive folder of its files
    files: int
    size: int
    chain: tuple[str, ...] = ()  # why it ships: the declaring file, then the names down to it
    path: str = ""  # its real folder
    platform: str = ""  # the platform it declares it is built for, in words ("" if none)
    requires_version: str = ""  # the language versions it declares it runs on ("" if none)


def normalised_mode(st_mode: int) -> int:
    """0755 for files with any execute bit, else 0644: readable by Lambda's unprivileged user."""
    return EXEC_MODE if st_mode & 0o111 else FILE_MODE


def file_entry(arc: str, path: str, st: os.stat_result) -> Entry:
    """A file entry from the `os.stat_result` of the file it will read."""
    # Positional: made once per file of the tree, and NamedTuple's keyword path costs more.
    return Entry(arc, "file", normalised_mode(st.st_mode), path, None, st.st_size, stat_key(st))


def with_parents(entries: Iterable[Entry]) -> list[Entry]:
    """Add a directory entry for every parent folder and sort by archive path."""
    by_arc: dict[str, Entry] = {}
    for entry in entries:
        by_arc[entry.arc] = entry
        parent = entry.arc.rpartition("/")[0]
        while parent and parent not in by_arc:
            by_arc[parent] = Entry(arc=parent, kind="dir", mode=DIR_MODE)
            parent = parent.rpartition("/")[0]
    # Sorting on the stored name keeps directories ("a/") next to their contents, as zip -r does.
    return sorted(by_arc.values(), key=lambda e: e.zip_name.encode("utf-8", "surrogateescape"))


def with_prefix(entry: Entry, prefix: str) -> Entry:
    """The entry moved under `prefix` in the archive (where a layer holds dependencies)."""
    return entry._replace(arc=prefix + entry.arc)


def counts(entries: Sequence[Entry]) -> tuple[int, int, int]:
    """Files, links and the files' total size."""
    files = links = size = 0
    for entry in entries:  # one pass over tens of thousands of entries, not three
        if entry.kind == "file":
            files += 1
            size += entry.size
        elif entry.kind == "link":
            links += 1
    return files, links, size
