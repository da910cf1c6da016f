"""The deterministic zip writer (docs/design.md, "The zip").

`ZipWriter` writes local records in the order it is given them, then the central directory,
and fills the zip's index as it goes. The bytes of each record come from zipformat.py, which
the speed layer's patcher shares, so both write the same bytes for the same entries.
"""

from __future__ import annotations

import stat
from typing import NamedTuple

from .compress import Packed
from .entries import Entry
from .zipformat import (
    CENTRAL,
    LOCAL,
    MADE_BY,
    UTF8_FLAG,
    ZIP64_LIMIT,
    HashingSink,
    Member,
    Record,
    Sink,
    central_record,
    copy_range,
    encode_name,
    name_and_flags,
    packed_member,
    write_end,
    write_member,
)
from .zipindex import ZipIndex


class Written(NamedTuple):
    """Digests and size of a finished zip, and its index."""

    sha256: bytes
    md5: str
    size: int
    members: ZipIndex


class ZipWriter:
    """Writes local records in the order given, then the central directory."""

    def __init__(self, raw: Sink, timestamp: tuple[int, int]) -> None:
        self._out = HashingSink(raw)
        self._timestamp = timestamp
        self._central: list[bytes] = []
        self._central_size = 0
        # Filled member by member, while the build mostly waits for packed files, rather than
        # made from all the rows after the last one.
        self.index = ZipIndex.empty()

    def add(self, entry: Entry, member: Member) -> None:
        """Write one entry's local header and data."""
        name, flags = name_and_flags(entry)
        record = write_member(self._out, entry, name, flags, member, self._timestamp)
        self._finish_entry(entry, name, flags, record)

    def add_packed(self, entry: Entry, packed: Packed) -> None:
        """`add` for a file packed by compress.pack_file, with the same bytes and index row.

        Written out in one function because a build calls it once per file of the tree, and
        `add`'s chain of helpers costs about twice as much (docs/performance.md). ZIP64 members
        go through `add`; the tests check that both write the same bytes.
        """
        out = self._out
        offset = out.offset
        data = packed.data
        crc, size, csize, method = packed.crc, packed.size, len(data), packed.method
        if size >= ZIP64_LIMIT or csize >= ZIP64_LIMIT or offset >= ZIP64_LIMIT:
            self.add(entry, packed_member(packed))
            return
        name = encode_name(entry)
        flags = 0 if name.isascii() else UTF8_FLAG
        time_, date = self._timestamp
        header = LOCAL.pack(
            0x04034B50, 20, flags, method, time_, date, crc, csize, size, len(name), 0
        )
        out.write_record(header, name, data)
        mode = stat.S_IFREG | entry.mode  # Entry.unix_mode of a file
        central = CENTRAL.pack(
            0x02014B50, MADE_BY | 20, 20, flags, method, time_, date, crc, csize, size,
            len(name), 0, 0, 0, 0, mode << 16, offset,
        )  # fmt: skip
        self._central.append(central + name)
        self.index.append(
            entry.arc, packed.sha256, mode, offset, self._central_size, crc, size, csize, method
        )
        self._central_size += len(central) + len(name)

    def copy(self, fd: int, entries: list[tuple[Entry, Record]]) -> None:
        """Copy consecutive local records, headers and all, out of a zip this writer wrote.

        Valid only when each record's name, content and timestamp equal the entry's: then the
        bytes this writer would produce are exactly those (the caller checks).
        """
        start, end = entries[0][1][1], entries[-1][1][2]
        shift = self._out.offset - start
        copy_range(fd, self._out, start, end)
        for entry, old in entries:
            name, flags = name_and_flags(entry)
            self._finish_entry(
                entry, name, flags, (old[0], old[1] + shift, old[2] + shift, *old[3:])
            )

    def _finish_entry(self, entry: Entry, name: bytes, flags: int, record: Record) -> None:
        held, start, _, crc, size, csize, method = record
        self.index.append(
            entry.arc, held, entry.unix_mode, start, self._central_size, crc, size, csize, method
        )
        central = central_record(entry, record, name, flags, self._timestamp)
        self._central.append(central)
        self._central_size += len(central)

    def finish(self) -> Written:
        """Write the central directory and end records; return digests, size and index."""
        out = self._out
        try:
            self.index.starts.append(out.offset)
            self.index.cdpos.append(self._central_size)
            write_end(out, self._central, len(self._central))
            sha256, md5 = out.digests()
        finally:
            out.close()
        return Written(sha256, md5, out.offset, self.index)

    def abort(self) -> None:
        """Stop the hashing threads of a build that failed."""
        self._out.close()
