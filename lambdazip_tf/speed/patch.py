"""Rewriting a few members of a written zip, for the change path (docs/design.md, "Fast paths").

The result is byte for byte what the writer (core/archive.py) would write for the new entries:
local records between the changes are copied in runs, each changed member is written by the
same code as the writer's, and the old central directory is copied with the changed records
rebuilt and the later records' offsets moved. A one-file change then costs a copy of the zip,
not a full write.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

from ..core.archive import Written
from ..core.entries import Entry
from ..core.zipformat import (
    OFFSET,
    ZIP64_COUNT_LIMIT,
    ZIP64_LIMIT,
    HashingSink,
    Member,
    Sink,
    central_record,
    copy_range,
    name_and_flags,
    pread_exact,
    write_end,
    write_member,
)
from ..core.zipindex import ZipIndex


class NotPatchable(Exception):
    """A change `patch` does not make (ZIP64 records); the caller writes the zip in full."""


def patch(
    fd: int,
    raw: Sink,
    index: ZipIndex,
    changes: Mapping[int, tuple[Entry, Member]],
    timestamp: tuple[int, int],
) -> Written:
    """Write the zip that `index` describes (read through `fd`) with some members replaced.

    `changes` maps member numbers to their new entry and bytes; names and order stay.
    """
    count = len(index.names)
    cd_offset, cd_size = index.starts[count], index.cdpos[count]
    if count >= ZIP64_COUNT_LIMIT or cd_offset >= ZIP64_LIMIT:
        raise NotPatchable("the zip has ZIP64 records")
    central = bytearray(pread_exact(fd, cd_size, cd_offset))
    new = index.copy()
    out = HashingSink(raw)
    moved: list[tuple[int, int]] = []  # (member number, how far the members after it move)
    try:
        position = 0
        for number in sorted(changes):
            entry, member = changes[number]
            copy_range(fd, out, position, index.starts[number])
            name, flags = name_and_flags(entry)
            record = write_member(out, entry, name, flags, member, timestamp)
            rebuilt = central_record(entry, record, name, flags, timestamp)
            at, end = index.cdpos[number], index.cdpos[number + 1]
            if len(rebuilt) != end - at or record[2] >= ZIP64_LIMIT:
                raise NotPatchable(f"{entry.arc} needs ZIP64 records")
            central[at:end] = rebuilt
            position = index.starts[number + 1]
            new.held[number] = record[0]
            new.modes[number] = entry.unix_mode
            new.starts[number] = record[1]
            new.crc[number], new.size[number], new.csize[number], new.method[number] = record[3:]
            moved.append((number, out.offset - position))
        copy_range(fd, out, position, cd_offset)
        if out.offset >= ZIP64_LIMIT:
            raise NotPatchable("the zip grew past 4 GiB")
        # The members between two changes move by what the changes before them grew or shrank.
        moved.append((count + 1, 0))
        for (first, shift), (last, _) in itertools.pairwise(moved):
            if shift == 0:
                continue
            for number in range(first + 1, last):
                new.starts[number] = start = index.starts[number] + shift
                if number < count:
                    OFFSET.pack_into(central, index.cdpos[number] + 42, start)
        write_end(out, [bytes(central)], count)
        sha256, md5 = out.digests()
    finally:
        out.close()
    return Written(sha256, md5, out.offset, new)
