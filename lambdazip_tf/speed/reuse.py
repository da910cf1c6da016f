"""What a rebuild can take from the previous artifact: the plan of its members.

The member store is the artifacts themselves (cache.py). Given the sorted entries of a new zip,
the digests known for its files, and the index of a previous artifact, `plan_members` decides
for each entry, without touching the file system:

- COPY: the previous artifact holds the same member (name and content; a link's target): its
  whole local record is copied, in runs of consecutive records. A local record holds no mode:
  the writer makes the central record from the entry, so a changed mode is still written;
- MOVED: it holds the same content under another name: its compressed bytes are reused;
- PACK: the file must be read and compressed;
- ADD: a folder or a link, written from the entry alone.

artifact.py carries the plan out; `PreviousArtifact` reads what it copies (docs/design.md,
"Fast paths").
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from ..core.archive import ZipWriter
from ..core.entries import Entry
from ..core.zipformat import Record, ident
from ..errors import OutputError
from .cache import Previous
from .facts import zip_key

COPY = "copy"  # (COPY, [(entry, record), ...]): consecutive records copied whole
MOVED = "moved"  # (MOVED, entry, record): another member's compressed bytes
PACK = "pack"  # (PACK, entry): read and compressed
ADD = "add"  # (ADD, entry): a folder or a link

# Plain tuples rather than a class per kind: a plan has a step per entry of the tree.
Step = tuple[Any, ...]


class MemberPlan(NamedTuple):
    """The steps that write a zip, in archive order, and the files they need packed, in the
    same order."""

    steps: list[Step]
    to_pack: list[Entry]


def plan_members(
    entries: Sequence[Entry], digests: Mapping[str, str], records: Mapping[str, Record]
) -> MemberPlan:
    """The plan for `entries` given the previous artifact's records by archive path (none for
    a cold build) and the content digests known so far."""
    steps: list[Step] = []
    to_pack: list[Entry] = []
    if not records:  # nothing to copy: no lookups
        for entry in entries:
            if entry.kind == "file":
                steps.append((PACK, entry))
                to_pack.append(entry)
            else:
                steps.append((ADD, entry))
        return MemberPlan(steps, to_pack)
    # Files by content, for content that moved to another archive path.
    moved = {rec[0]: rec for rec in records.values() if len(rec[0]) == 64}
    run: list[tuple[Entry, Record]] = []
    for entry in entries:
        held = ident(entry, digests.get(entry.source or "") if entry.kind == "file" else None)
        rec = records.get(entry.arc)
        if rec is not None and held is not None and rec[0] == held:
            if run and run[-1][1][2] != rec[1]:  # not adjacent in the previous zip
                steps.append((COPY, run))
                run = []
            run.append((entry, rec))
            continue
        if run:
            steps.append((COPY, run))
            run = []
        if entry.kind != "file":
            steps.append((ADD, entry))
        elif held is not None and held in moved:
            steps.append((MOVED, entry, moved[held]))
        else:
            steps.append((PACK, entry))
            to_pack.append(entry)
    if run:
        steps.append((COPY, run))
    return MemberPlan(steps, to_pack)


class PreviousArtifact:
    """The previous artifact a rebuild copies from, opened once and checked.

    A descriptor pins the inode: every record read through it comes from the file the index
    describes, even if the path is replaced meanwhile.
    """

    def __init__(self, fd: int | None, records: dict[str, Record]) -> None:
        self._fd = fd
        self.records = records

    @classmethod
    def open(cls, previous: Previous | None) -> PreviousArtifact:
        """The artifact `previous` describes, or nothing to copy from when it is not that file
        any more."""
        if previous is None:
            return cls(None, {})
        try:
            fd = os.open(previous.path, os.O_RDONLY)
        except OSError:
            return cls(None, {})
        if zip_key(os.fstat(fd)) != previous.key:
            os.close(fd)
            return cls(None, {})
        return cls(fd, previous.members.records())

    def copy(self, writer: ZipWriter, run: list[tuple[Entry, Record]]) -> None:
        """Copy a run of consecutive records into `writer`."""
        assert self._fd is not None
        writer.copy(self._fd, run)

    def data(self, rec: Record) -> bytes:
        """A member's compressed bytes."""
        assert self._fd is not None
        data = os.pread(self._fd, rec[5], rec[2] - rec[5])
        if len(data) != rec[5]:
            raise OutputError("a previous artifact is shorter than its index; run again")
        return data

    def close(self) -> None:
        """Close the descriptor."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
