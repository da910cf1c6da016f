"""The content hash: what names an artifact and says whether it is current.

A sha256 over the sorted manifest (archive path, kind, mode, content sha256 or link target), the
format version and the options that change bytes, never over compressed bytes, so it is the same
on every machine (docs/design.md, "Content hash").
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from .compress import DEFLATER
from .entries import Entry, Kind
from .zipformat import dos_timestamp

# Bump when the bytes written for the same entries change (header layout, ordering, timestamps).
FORMAT_VERSION = "1"


class ByteOptions(NamedTuple):
    """What changes a zip's bytes besides its entries: the level and the timestamp."""

    level: int
    timestamp: tuple[int, int]  # MS-DOS (time, date) of every entry

    @classmethod
    def of(cls, level: int, source_date_epoch: str | None) -> ByteOptions:
        """The options of a build at `level`, with SOURCE_DATE_EPOCH's value if set."""
        return cls(level, dos_timestamp(source_date_epoch))

    def hashed(self) -> dict[str, object]:
        """The options as the content hash covers them (the deflater too)."""
        return {"level": self.level, "deflate": DEFLATER, "timestamp": list(self.timestamp)}

    @property
    def stamp(self) -> str:
        """The timestamp as the member store files it: members are only reused at the same one."""
        return f"{self.timestamp[0]}:{self.timestamp[1]}"


def manifest_line(zip_name: str, kind: Kind, mode: int, what: str) -> str:
    """One entry of the manifest: what a content hash covers of it."""
    return f"{zip_name}\0{kind}\0{mode:o}\0{what}"


def manifest_hash(lines: Iterable[str], options: ByteOptions) -> str:
    """The content hash of a manifest's lines, in archive order."""
    header = {"format": FORMAT_VERSION, "options": dict(sorted(options.hashed().items()))}
    text = "\n".join((json.dumps(header, sort_keys=True), *lines))
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()


def content_hash(entries: Iterable[Entry], digests: Mapping[str, str], options: ByteOptions) -> str:
    """The content hash of sorted entries, given each file's content sha256 by source path."""
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
