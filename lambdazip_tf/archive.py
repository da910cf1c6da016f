"""The deterministic zip writer (DESIGN 6).

Written by hand rather than with `zipfile.ZipFile` because the speed design (DESIGN 7) writes
members whose deflate bytes were made earlier, in worker processes or by a previous build, and
zipfile has no public API for writing already-compressed data. Everything else follows APPNOTE
6.3.x and mirrors the choices of flit_core's reproducible wheels: fixed timestamps, normalised
modes, `create_system = 3` (Unix, so the external attributes carry modes and the link bit), and no
extra fields except ZIP64's when a size or offset needs it.
"""

from __future__ import annotations

import hashlib
import os
import queue
import struct
import threading
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

from .entries import Entry
from .errors import SourceError

ZIP64_LIMIT = 0xFFFFFFFF
ZIP64_COUNT_LIMIT = 0xFFFF
STORED = 0
DEFLATED = 8
_LOCAL = struct.Struct("<IHHHHHIIIHH")
_ZIP64_LOCAL = struct.Struct("<HHQQ")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_COPY_BLOCK = 8 << 20
_UTF8_FLAG = 0x800
_EPOCH_1980 = 315532800  # 1980-01-01T00:00:00Z, the earliest time a zip can store


def dos_timestamp(source_date_epoch: str | None) -> tuple[int, int]:
    """(time, date) in MS-DOS form: 1980-01-01 00:00, or SOURCE_DATE_EPOCH clamped to 1980."""
    epoch = _EPOCH_1980
    if source_date_epoch:
        try:
            epoch = max(_EPOCH_1980, int(source_date_epoch))
        except ValueError:
            raise SourceError(
                f"SOURCE_DATE_EPOCH must be whole seconds since 1970, got {source_date_epoch!r}"
            ) from None
    # UTC, so the time zone of the machine never reaches the bytes (DESIGN 6).
    t = time.gmtime(min(epoch, 4354819199))  # 2107-12-31, the last date a zip can store
    dos_time = (t.tm_hour << 11) | (t.tm_min << 5) | (t.tm_sec // 2)
    dos_date = ((t.tm_year - 1980) << 9) | (t.tm_mon << 5) | t.tm_mday
    return dos_time, dos_date


@dataclass(frozen=True, slots=True)
class Member:
    """The bytes of one entry as they go into the zip, and how to read them."""

    crc: int
    size: int
    compressed_size: int
    method: int
    chunks: Iterable[bytes]
    key: str | None = None  # a file's content sha256, recorded in the artifact's index


def link_member(target: str) -> Member:
    """A link's target stored uncompressed, as Info-ZIP does, so any reader can follow it."""
    data = target.encode("utf-8", "surrogateescape")
    return Member(zlib.crc32(data), len(data), len(data), STORED, (data,))


EMPTY = Member(0, 0, 0, STORED, ())


class _HashingFile:
    """Counts and hashes every byte written, so the artifact is never read back.

    Headers and small members are gathered into 1 MiB blocks: hashing and writing 80,000 small
    pieces one by one cost more than the deflate of a one-file change (issue 5). sha256 and md5
    run on a second thread (hashlib releases the GIL on large updates), beside the writing.
    """

    BLOCK = 1 << 20

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.offset = 0
        self._buffer = bytearray()
        self._sha256 = hashlib.sha256()
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._blocks: queue.Queue[bytes | bytearray | None] = queue.Queue(maxsize=16)
        self._hasher = threading.Thread(target=self._hash, daemon=True)
        self._hasher.start()

    def _hash(self) -> None:
        while (block := self._blocks.get()) is not None:
            self._sha256.update(block)
            self._md5.update(block)

    def write(self, data: bytes) -> None:
        self.offset += len(data)
        if len(data) >= self.BLOCK:
            self.flush()
            self._emit(data)
            return
        self._buffer += data
        if len(self._buffer) >= self.BLOCK:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            block, self._buffer = self._buffer, bytearray()
            self._emit(block)

    def _emit(self, data: bytes | bytearray) -> None:
        self.raw.write(data)
        self._blocks.put(data)

    def digests(self) -> tuple[bytes, str]:
        """Flush, stop the hashing thread, and return (sha256 digest, md5 hex)."""
        self.flush()
        self.close()
        return self._sha256.digest(), self._md5.hexdigest()

    def close(self) -> None:
        """Stop the hashing thread (also when the build fails half-way)."""
        if self._hasher.is_alive():
            self._blocks.put(None)
            self._hasher.join()


# What an artifact's index remembers of each entry, by archive path: what it holds (content
# sha256, "/" for a folder, ">" + target for a link), where its local record starts and ends,
# and its crc32, size, compressed size and method (cache.py keeps it with the artifact).
Record = tuple[str, int, int, int, int, int, int]


@dataclass(frozen=True)
class Written:
    """Digests and size of a finished zip, and its index."""

    sha256: bytes
    md5: str
    size: int
    index: dict[str, Record]


def ident(entry: Entry, digest: str | None) -> str | None:
    """What an entry holds, as the index records it (None: a file not hashed yet)."""
    if entry.kind == "dir":
        return "/"
    if entry.kind == "link":
        return ">" + (entry.target or "")
    return digest


class ZipWriter:
    """Writes local records in the order given, then the central directory."""

    def __init__(self, raw: BinaryIO, timestamp: tuple[int, int]) -> None:
        self._out = _HashingFile(raw)
        self._timestamp = timestamp
        self._central: list[bytes] = []
        self.index: dict[str, Record] = {}

    def add(self, entry: Entry, member: Member) -> None:
        """Write one entry's local header and data."""
        out = self._out
        name = _encode_name(entry)
        flags = 0 if name.isascii() else _UTF8_FLAG
        offset = out.offset
        zip64 = member.size >= ZIP64_LIMIT or member.compressed_size >= ZIP64_LIMIT
        extra = _ZIP64_LOCAL.pack(1, 16, member.size, member.compressed_size) if zip64 else b""
        out.write(
            _LOCAL.pack(
                0x04034B50,
                45 if zip64 else 20,
                flags,
                member.method,
                self._timestamp[0],
                self._timestamp[1],
                member.crc,
                ZIP64_LIMIT if zip64 else member.compressed_size,
                ZIP64_LIMIT if zip64 else member.size,
                len(name),
                len(extra),
            )
            + name
            + extra
        )
        written = 0
        for chunk in member.chunks:
            out.write(chunk)
            written += len(chunk)
        if written != member.compressed_size:
            raise SourceError(
                f"{entry.source or entry.arc} changed while it was being zipped; run again",
                entry.source,
            )
        held = ident(entry, member.key) or ""
        record = (held, offset, out.offset, member.crc, member.size, written, member.method)
        self._finish_entry(entry, name, flags, record)

    def copy(self, fd: int, entries: list[tuple[Entry, Record]]) -> None:
        """Copy consecutive local records, headers and all, out of a previous artifact.

        Valid only when each record's name, content and timestamp equal the entry's: then the
        bytes this writer would produce are exactly those (the caller checks).
        """
        start, end = entries[0][1][1], entries[-1][1][2]
        base = self._out.offset
        position = start
        while position < end:
            data = os.pread(fd, min(_COPY_BLOCK, end - position), position)
            if not data:
                raise OSError("the previous artifact is shorter than its index says")
            self._out.write(data)
            position += len(data)
        for entry, old in entries:
            name = _encode_name(entry)
            flags = 0 if name.isascii() else _UTF8_FLAG
            shift = base - start
            self._finish_entry(
                entry, name, flags, (old[0], old[1] + shift, old[2] + shift, *old[3:])
            )

    def _finish_entry(self, entry: Entry, name: bytes, flags: int, record: Record) -> None:
        self.index[entry.arc] = record
        self._central.append(_central_record(entry, record, name, flags, self._timestamp))

    def finish(self) -> Written:
        """Write the central directory and end records; return digests, size and index."""
        out = self._out
        try:
            _finish(out, self._central)
            sha256, md5 = out.digests()
        finally:
            out.close()
        return Written(sha256, md5, out.offset, self.index)

    def abort(self) -> None:
        """Stop the hashing thread of a build that failed."""
        self._out.close()


def _central_record(
    entry: Entry, record: Record, name: bytes, flags: int, ts: tuple[int, int]
) -> bytes:
    _, offset, _, crc, size, csize, method = record
    fields: list[int] = []
    # ZIP64 extra: only the fields that overflow, in this fixed order (APPNOTE 4.5.3).
    if size >= ZIP64_LIMIT:
        fields.append(size)
        size = ZIP64_LIMIT
    if csize >= ZIP64_LIMIT:
        fields.append(csize)
        csize = ZIP64_LIMIT
    if offset >= ZIP64_LIMIT:
        fields.append(offset)
        offset = ZIP64_LIMIT
    extra = struct.pack(f"<HH{len(fields)}Q", 1, 8 * len(fields), *fields) if fields else b""
    version = 45 if fields else 20
    return (
        _CENTRAL.pack(
            0x02014B50,
            (3 << 8) | version,  # made by: Unix (create_system 3)
            version,
            flags,
            method,
            ts[0],
            ts[1],
            crc,
            csize,
            size,
            len(name),
            len(extra),
            0,  # comment length
            0,  # disk number
            0,  # internal attributes
            (entry.unix_mode << 16) | (0x10 if entry.kind == "dir" else 0),  # + MS-DOS dir bit
            offset,
        )
        + name
        + extra
    )


def _finish(out: _HashingFile, central: list[bytes]) -> None:
    cd_offset = out.offset
    for record in central:
        out.write(record)
    cd_size = out.offset - cd_offset
    count = len(central)
    if count >= ZIP64_COUNT_LIMIT or cd_offset >= ZIP64_LIMIT or cd_size >= ZIP64_LIMIT:
        eocd64_offset = out.offset
        out.write(
            struct.pack(
                "<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, count, count, cd_size, cd_offset
            )
        )
        out.write(struct.pack("<IIQI", 0x07064B50, 0, eocd64_offset, 1))
        count16 = min(count, ZIP64_COUNT_LIMIT)
        out.write(
            struct.pack(
                "<IHHHHIIH",
                0x06054B50,
                0,
                0,
                count16,
                count16,
                min(cd_size, ZIP64_LIMIT),
                min(cd_offset, ZIP64_LIMIT),
                0,
            )
        )
    else:
        out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, cd_size, cd_offset, 0))
    out.flush()


def _encode_name(entry: Entry) -> bytes:
    try:
        return entry.zip_name.encode("utf-8")
    except UnicodeEncodeError:
        raise SourceError(
            f"file name is not valid UTF-8: {entry.source or entry.arc!r}; "
            "Lambda's zip reader cannot store it, rename it or exclude it",
            entry.source or entry.arc,
        ) from None
