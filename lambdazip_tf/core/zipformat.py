"""The bytes of a zip: headers, members, the central directory and the end records.

Shared by the writer (archive.py) and the speed layer's patcher, so that both give the same
bytes for the same entries. Written by hand rather than with `zipfile.ZipFile` because builds
write members whose deflate bytes were made earlier (in worker processes, or by a previous
build), and zipfile has no public API for writing already-compressed data. The rest follows
APPNOTE 6.3.x and the choices of flit_core's reproducible wheels: fixed timestamps, normalised
modes, `create_system = 3` (Unix, so the external attributes carry modes and the link bit), and
no extra fields except ZIP64's when a size or offset needs it (docs/design.md, "The zip").
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
from typing import Any, NamedTuple, Protocol

from ..errors import SourceError
from .compress import STORED, Packed
from .entries import Entry

ZIP64_LIMIT = 0xFFFFFFFF
ZIP64_COUNT_LIMIT = 0xFFFF
LOCAL = struct.Struct("<IHHHHHIIIHH")
CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
OFFSET = struct.Struct("<I")  # a central record's local-header offset, at byte 42
_ZIP64_LOCAL = struct.Struct("<HHQQ")
_COPY_BLOCK = 8 << 20
UTF8_FLAG = 0x800
MADE_BY = 3 << 8  # "version made by": Unix (create_system 3), so attributes carry modes
_EPOCH_1980 = 315532800  # 1980-01-01T00:00:00Z, the earliest time a zip can store
_LAST_DATE = 4354819199  # 2107-12-31, the last date a zip can store


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
    # UTC, so the time zone of the machine never reaches the bytes.
    t = time.gmtime(min(epoch, _LAST_DATE))
    dos_time = (t.tm_hour << 11) | (t.tm_min << 5) | (t.tm_sec // 2)
    dos_date = ((t.tm_year - 1980) << 9) | (t.tm_mon << 5) | t.tm_mday
    return dos_time, dos_date


class Member(NamedTuple):
    """The bytes of one entry as they go into the zip, and how to read them."""

    crc: int
    size: int
    compressed_size: int
    method: int
    chunks: Iterable[bytes | bytearray]
    key: str | None = None  # a file's content sha256, recorded in the artifact's index


def link_member(target: str) -> Member:
    """A link's target stored uncompressed, as Info-ZIP does, so any reader can follow it."""
    data = target.encode("utf-8", "surrogateescape")
    return Member(zlib.crc32(data), len(data), len(data), STORED, (data,))


EMPTY = Member(0, 0, 0, STORED, ())


def packed_member(packed: Packed) -> Member:
    """A file packed by compress.pack_file as a zip member, keyed by its content sha256."""
    return Member(
        packed.crc, packed.size, len(packed.data), packed.method, (packed.data,), packed.sha256
    )


# One member as a zip index records it: what it holds (content sha256, "/" for a folder,
# ">" + target for a link), where its local record starts and ends, and its crc32, size,
# compressed size and method.
Record = tuple[str, int, int, int, int, int, int]


def ident(entry: Entry, digest: str | None) -> str | None:
    """What an entry holds, as an index records it (None: a file not hashed yet)."""
    if entry.kind == "dir":
        return "/"
    if entry.kind == "link":
        return ">" + (entry.target or "")
    return digest


class Sink(Protocol):
    """Where a zip's bytes go: a binary file, or a staging.Stage (which names failures)."""

    def write(self, data: bytes | bytearray, /) -> object: ...


class HashingSink:
    """Counts and hashes every byte written, so that the artifact is never read back.

    Headers and small members are gathered into 1 MiB blocks: a zip of node_modules is tens of
    thousands of small pieces, and hashing and writing each one alone costs more than the
    deflate of a small change. sha256 and md5 each run on a thread of their own (hashlib
    releases the GIL on large updates), beside the writing.
    """

    BLOCK = 1 << 20

    def __init__(self, raw: Sink) -> None:
        self.raw = raw
        self.offset = 0
        self._buffer = bytearray()
        self._sha256 = hashlib.sha256()
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._queues: list[queue.Queue[bytes | bytearray | None]] = []
        self._hashers = []
        for digest in (self._sha256, self._md5):
            blocks: queue.Queue[bytes | bytearray | None] = queue.Queue(maxsize=16)
            hasher = threading.Thread(target=_hash, args=(digest, blocks), daemon=True)
            hasher.start()
            self._queues.append(blocks)
            self._hashers.append(hasher)

    def write(self, data: bytes | bytearray) -> None:
        """Append bytes."""
        self.offset += len(data)
        if len(data) >= self.BLOCK:
            self.flush()
            self._emit(data)
            return
        self._buffer += data
        if len(self._buffer) >= self.BLOCK:
            self.flush()

    def write_record(self, header: bytes, name: bytes, data: bytes | bytearray) -> None:
        """write(header + name + data), without joining them first."""
        self.offset += len(header) + len(name) + len(data)
        buffer = self._buffer
        buffer += header
        buffer += name
        if len(data) >= self.BLOCK:
            self.flush()
            self._emit(data)
            return
        buffer += data
        if len(buffer) >= self.BLOCK:
            self.flush()

    def flush(self) -> None:
        """Pass what is gathered on to the file and the hashers."""
        if self._buffer:
            block, self._buffer = self._buffer, bytearray()
            self._emit(block)

    def _emit(self, data: bytes | bytearray) -> None:
        self.raw.write(data)
        for blocks in self._queues:
            blocks.put(data)

    def digests(self) -> tuple[bytes, str]:
        """Flush, stop the hashing threads, and return (sha256 digest, md5 hex)."""
        self.flush()
        self.close()
        return self._sha256.digest(), self._md5.hexdigest()

    def close(self) -> None:
        """Stop the hashing threads (also when the build fails half-way)."""
        for blocks, hasher in zip(self._queues, self._hashers, strict=True):
            if hasher.is_alive():
                blocks.put(None)
                hasher.join()


def _hash(digest: Any, blocks: queue.Queue[bytes | bytearray | None]) -> None:
    while (block := blocks.get()) is not None:
        digest.update(block)


def encode_name(entry: Entry) -> bytes:
    """The stored name as UTF-8; a SourceError for a name that is not valid UTF-8."""
    try:
        return entry.zip_name.encode("utf-8")
    except UnicodeEncodeError:
        raise SourceError(
            f"file name is not valid UTF-8: {entry.source or entry.arc!r}; "
            "Lambda's zip reader cannot store it, rename it or exclude it",
            entry.source or entry.arc,
        ) from None


def name_and_flags(entry: Entry) -> tuple[bytes, int]:
    """The stored name and the general-purpose flags it needs (UTF-8 when not ASCII)."""
    name = encode_name(entry)
    return name, 0 if name.isascii() else UTF8_FLAG


def write_member(
    out: HashingSink,
    entry: Entry,
    name: bytes,
    flags: int,
    member: Member,
    timestamp: tuple[int, int],
) -> Record:
    """Write a local header and the member's data; return its record."""
    offset = out.offset
    zip64 = member.size >= ZIP64_LIMIT or member.compressed_size >= ZIP64_LIMIT
    extra = _ZIP64_LOCAL.pack(1, 16, member.size, member.compressed_size) if zip64 else b""
    out.write(
        LOCAL.pack(
            0x04034B50,
            45 if zip64 else 20,
            flags,
            member.method,
            timestamp[0],
            timestamp[1],
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
    return (held, offset, out.offset, member.crc, member.size, written, member.method)


def central_record(
    entry: Entry, record: Record, name: bytes, flags: int, ts: tuple[int, int]
) -> bytes:
    """The central directory record of a member written as `record`."""
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
        CENTRAL.pack(
            0x02014B50,
            MADE_BY | version,
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


def write_end(out: HashingSink, central: list[bytes], count: int) -> None:
    """Write the central directory, then the end records (ZIP64's too when needed)."""
    cd_offset = out.offset
    out.write(b"".join(central))  # one write, not one per member
    cd_size = out.offset - cd_offset
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


def copy_range(fd: int, out: HashingSink, start: int, end: int) -> None:
    """Copy bytes [start, end) of an earlier zip, read through `fd`."""
    position = start
    while position < end:
        data = os.pread(fd, min(_COPY_BLOCK, end - position), position)
        if not data:
            raise OSError("the previous artifact is shorter than its index says")
        out.write(data)
        position += len(data)


def pread_exact(fd: int, size: int, offset: int) -> bytes:
    """`size` bytes at `offset` of an earlier zip; OSError when it is shorter."""
    data = os.pread(fd, size, offset)
    if len(data) != size:
        raise OSError("the previous artifact is shorter than its index says")
    return data
