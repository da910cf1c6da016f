"""The content hash: what names an artifact and says whether it is current.

A sha256 over the sorted manifest (archive path, kind, mode, content sha256 or link target), the
format version and the options that change bytes, never over compressed bytes, so it is the same
on every machine (docs/design.md, "Content hash").
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from .compress import DEFLATER
from .entries import Entry, Kind
from .zipformat import dos_timestamp

# Bump when the bytes written for the same entries change (header layout, ordering, timestamps).
FORMAT_VERSION = "1"


class ByteOptions(NamedTuple):
    """What a content hash covers besides the entries: the level and the timestamp, which
    change the bytes, and the target architecture, which changes what the entries may be."""

    level: int
    timestamp: tuple[int, int]  # MS-DOS (time, date) of every entry
    architecture: str = "x86_64"

    @classmethod
    def of(
        cls, level: int, source_date_epoch: str | None, architecture: str = "x86_64"
    ) -> ByteOptions:
        """The options of a build at `level`, with SOURCE_DATE_EPOCH's value if set."""
        return cls(level, dos_timestamp(source_date_epoch), architecture)

    def hashed(self) -> dict[str, object]:
        """The options as the content hash covers them (the deflater too). The default
        architecture adds nothing, so that artifacts built before it was an option keep their
        names."""
        options: dict[str, object] = {
            "level": self.level,
            "deflate": DEFLATER,
            "timestamp": list(self.timestamp),
        }
        if self.architecture != "x86_64":
            options["architecture"] = self.architecture
        return options

    def described(self) -> str:
        """The options in words, for the result (what `ensure` compares with the plan's)."""
        time_, date = self.timestamp
        when = (
            f"{(date >> 9) + 1980:04}-{(date >> 5) & 15:02}-{date & 31:02} "
            f"{time_ >> 11:02}:{(time_ >> 5) & 63:02}:{(time_ & 31) * 2:02}"
        )
        return f"level {self.level}, {DEFLATER}, timestamp {when} UTC, for {self.architecture}"

    @property
    def stamp(self) -> str:
        """The timestamp as the member store files it: members are only reused at the same one."""
        return f"{self.timestamp[0]}:{self.timestamp[1]}"


def manifest_line(zip_name: str, kind: Kind, mode: int, what: str) -> str:
    """One entry of the manifest: what a content hash covers of it."""
    return f"{zip_name}\0{kind}\0{mode:o}\0{what}"


class Hashes(NamedTuple):
    """What a manifest hashes to: with the options (the content hash, which names the artifact
    and fixes its bytes) and without them (the files alone, which tells a change of content from
    the same content written differently)."""

    content: str
    files: str


def manifest_hashes(lines: Sequence[str], options: ByteOptions) -> Hashes:
    """The hashes of a manifest's lines, in archive order."""
    header = {"format": FORMAT_VERSION, "options": dict(sorted(options.hashed().items()))}
    body = "\n".join(lines).encode("utf-8", "surrogateescape")
    content = hashlib.sha256(json.dumps(header, sort_keys=True).encode())
    if lines:
        content.update(b"\n")
        content.update(body)
    return Hashes(content.hexdigest(), hashlib.sha256(body).hexdigest())


def content_hashes(
    entries: Iterable[Entry], digests: Mapping[str, str], options: ByteOptions
) -> Hashes:
    """The hashes of sorted entries, given each file's content sha256 by source path."""
    lines = []
    for entry in entries:
        if entry.kind == "file":
            what = digests[entry.source]  # type: ignore[index]
        elif entry.kind == "link":
            what = entry.target or ""
        else:
            what = ""
        lines.append(manifest_line(entry.zip_name, entry.kind, entry.mode, what))
    return manifest_hashes(lines, options)
