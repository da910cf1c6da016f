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
import struct
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from .entries import Entry
from .errors import SourceError

ZIP64_LIMIT = 0xFFFFFFFF
ZIP64_COUNT_LIMIT = 0xFFFF
STORED = 0
DEFLATED = 8
_VERSION_MADE_BY = (3 << 8) | 20  # create_system 3 (Unix), spec version 2.0, like Info-ZIP
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


def link_member(target: str) -> Member:
    """A link's target stored uncompressed, as Info-ZIP does, so any reader can follow it."""
    data = target.encode("utf-8", "surrogateescape")
    return Member(zlib.crc32(data), len(data), len(data), STORED, (data,))


EMPTY = Member(0, 0, 0, STORED, ())


class _HashingFile:
    """Counts and hashes every byte written, so the artifact is never read back."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.offset = 0
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5(usedforsecurity=False)

    def write(self, data: bytes) -> None:
        self.raw.write(data)
        self.sha256.update(data)
        self.md5.update(data)
        self.offset += len(data)


@dataclass(frozen=True)
class Written:
    """Digests and size of a finished zip."""

    sha256: bytes
    md5: str
    size: int


def write_zip(
    raw: BinaryIO, members: Iterator[tuple[Entry, Member]], timestamp: tuple[int, int]
) -> Written:
    """Write entries in the order given, then the central directory; return the zip's digests."""
    out = _HashingFile(raw)
    central: list[bytes] = []
    dos_time, dos_date = timestamp
    for entry, member in members:
        name = _encode_name(entry)
        flags = 0 if name.isascii() else _UTF8_FLAG
        offset = out.offset
        zip64 = member.size >= ZIP64_LIMIT or member.compressed_size >= ZIP64_LIMIT
        version = 45 if zip64 or offset >= ZIP64_LIMIT else 20
        extra = struct.pack("<HHQQ", 1, 16, member.size, member.compressed_size) if zip64 else b""
        out.write(
            struct.pack(
                "<IHHHHHIIIHH",
                0x04034B50,
                version,
                flags,
                member.method,
                dos_time,
                dos_date,
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
        central.append(_central_record(entry, member, name, flags, offset, timestamp))
    return _finish(out, central)


def _central_record(
    entry: Entry, member: Member, name: bytes, flags: int, offset: int, ts: tuple[int, int]
) -> bytes:
    fields: list[int] = []
    size, csize, off = member.size, member.compressed_size, offset
    # ZIP64 extra: only the fields that overflow, in this fixed order (APPNOTE 4.5.3).
    if size >= ZIP64_LIMIT:
        fields.append(size)
        size = ZIP64_LIMIT
    if csize >= ZIP64_LIMIT:
        fields.append(csize)
        csize = ZIP64_LIMIT
    if off >= ZIP64_LIMIT:
        fields.append(off)
        off = ZIP64_LIMIT
    extra = struct.pack(f"<HH{len(fields)}Q", 1, 8 * len(fields), *fields) if fields else b""
    version = 45 if fields else 20
    return (
        struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            _VERSION_MADE_BY if not fields else (3 << 8) | 45,
            version,
            flags,
            member.method,
            ts[0],
            ts[1],
            member.crc,
            csize,
            size,
            len(name),
            len(extra),
            0,  # comment length
            0,  # disk number
            0,  # internal attributes
            (entry.unix_mode << 16) | (0x10 if entry.kind == "dir" else 0),  # + MS-DOS dir bit
            off,
        )
        + name
        + extra
    )


def _finish(out: _HashingFile, central: list[bytes]) -> Written:
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
    return Written(out.sha256.digest(), out.md5.hexdigest(), out.offset)


def _encode_name(entry: Entry) -> bytes:
    try:
        return entry.zip_name.encode("utf-8")
    except UnicodeEncodeError:
        raise SourceError(
            f"file name is not valid UTF-8: {entry.source or entry.arc!r}; "
            "Lambda's zip reader cannot store it, rename it or exclude it",
            entry.source or entry.arc,
        ) from None


def file_chunks(path: str, size: int, chunk: int = 1 << 20) -> Iterator[bytes]:
    """Read a file for a stored (level 0) member, failing if its size changed."""
    try:
        with open(path, "rb") as f:
            remaining = size
            while remaining > 0:
                data = f.read(min(chunk, remaining))
                if not data:
                    break
                remaining -= len(data)
                yield data
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror}", path) from None


def stat_unchanged(path: str, size: int) -> bool:
    """True when the file still has the size it had when it was selected."""
    try:
        return os.stat(path).st_size == size
    except OSError:
        return False
