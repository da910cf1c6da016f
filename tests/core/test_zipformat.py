"""The bytes of a zip: headers, end records, ZIP64 (docs/design.md, "The zip")."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import struct
import time
import zipfile
import zlib
from pathlib import Path

import pytest
from helpers import write

from lambdazip_tf.core.compress import DEFLATED, STORED, pack_file
from lambdazip_tf.core.entries import DIR_MODE, EXEC_MODE, FILE_MODE, LINK_MODE, Entry
from lambdazip_tf.core.zipformat import (
    EMPTY,
    UTF8_FLAG,
    ZIP64_COUNT_LIMIT,
    ZIP64_LIMIT,
    HashingSink,
    Member,
    central_record,
    copy_range,
    dos_timestamp,
    ident,
    link_member,
    name_and_flags,
    packed_member,
    pread_exact,
    write_end,
    write_member,
)
from lambdazip_tf.errors import SourceError

# The local header as APPNOTE 4.3.7 lays it out, spelt out here rather than taken from the module.
LOCAL_HEADER = struct.Struct("<IHHHHHIIIHH")
EOCD64_SIGNATURE = b"PK\x06\x06"


def _stored(data: bytes) -> Member:
    return Member(zlib.crc32(data), len(data), len(data), STORED, (data,))


def _zip(members: list[tuple[Entry, Member]], timestamp: tuple[int, int]) -> bytes:
    """A whole zip written with zipformat's pieces, in the order given."""
    raw = io.BytesIO()
    out = HashingSink(raw)
    try:
        central = []
        for entry, member in members:
            name, flags = name_and_flags(entry)
            record = write_member(out, entry, name, flags, member, timestamp)
            central.append(central_record(entry, record, name, flags, timestamp))
        write_end(out, central, len(central))
    finally:
        out.close()
    return raw.getvalue()


def test_stored_members_are_byte_for_byte_what_zipfile_writes() -> None:
    # zipfile as an independent writer: the same names, modes, timestamp and data, stored.
    members = [
        (Entry("bin", "dir", DIR_MODE), EMPTY, b""),
        (Entry("bin/run.sh", "file", EXEC_MODE), _stored(b"#!/bin/sh\n"), b"#!/bin/sh\n"),
        (Entry("lib/ñandú.js", "file", FILE_MODE), _stored(b"x = 1\n"), b"x = 1\n"),
        (
            Entry("lib/z", "link", LINK_MODE, target="ñandú.js"),
            link_member("ñandú.js"),
            "ñandú.js".encode(),
        ),
    ]
    timestamp = dos_timestamp("1700000000")
    ours = _zip([(entry, member) for entry, member, _ in members], timestamp)
    t = time.gmtime(1700000000)
    date_time = (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)
    reference = io.BytesIO()
    with zipfile.ZipFile(reference, "w") as zf:
        for entry, _, data in members:
            info = zipfile.ZipInfo(entry.zip_name, date_time)
            info.create_system = 3
            info.external_attr = (entry.unix_mode << 16) | (0x10 if entry.kind == "dir" else 0)
            info.compress_type = zipfile.ZIP_STORED
            zf.writestr(info, data)
    assert ours == reference.getvalue()


def test_deflated_files_links_and_folders_read_back_with_zipfile(tmp_path: Path) -> None:
    text = write(tmp_path / "a.js", "module.exports = 'lambda';\n" * 400)
    entries = [
        (
            Entry("a.js", "file", FILE_MODE),
            packed_member(pack_file(str(text), text.stat().st_size, 6)),
        ),
        (Entry("empty", "dir", DIR_MODE), EMPTY),
        (Entry("link.js", "link", LINK_MODE, target="a.js"), link_member("a.js")),
    ]
    with zipfile.ZipFile(io.BytesIO(_zip(entries, dos_timestamp(None)))) as zf:
        assert zf.testzip() is None
        infos = {info.filename: info for info in zf.infolist()}
        assert list(infos) == ["a.js", "empty/", "link.js"]
        assert zf.read("a.js") == text.read_bytes()
        assert infos["a.js"].compress_type == zipfile.ZIP_DEFLATED
        assert infos["a.js"].compress_size < infos["a.js"].file_size // 10
        assert zf.read("link.js") == b"a.js"
        assert infos["link.js"].compress_type == zipfile.ZIP_STORED
        modes = {name: info.external_attr >> 16 for name, info in infos.items()}
        assert modes == {
            "a.js": stat.S_IFREG | 0o644,
            "empty/": stat.S_IFDIR | 0o755,
            "link.js": stat.S_IFLNK | 0o777,
        }
        assert infos["empty/"].is_dir()
        for info in infos.values():
            assert info.create_system == 3
            assert info.extra == b""
            assert info.date_time == (1980, 1, 1, 0, 0, 0)


@pytest.mark.parametrize(
    ("source_date_epoch", "date_time"),
    [
        (None, (1980, 1, 1, 0, 0, 0)),
        ("", (1980, 1, 1, 0, 0, 0)),
        ("1000", (1980, 1, 1, 0, 0, 0)),  # before 1980: clamped
        ("1700000001", (2023, 11, 14, 22, 13, 20)),  # odd seconds: the zip keeps two-second steps
        ("99999999999", (2107, 12, 31, 23, 59, 58)),  # after the last date a zip can store
    ],
)
def test_the_timestamp_reads_back_as_source_date_epoch_in_utc(
    source_date_epoch: str | None, date_time: tuple[int, ...]
) -> None:
    data = _zip([(Entry("a", "dir", DIR_MODE), EMPTY)], dos_timestamp(source_date_epoch))
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.infolist()[0].date_time == date_time


def test_a_source_date_epoch_that_is_not_whole_seconds_is_refused() -> None:
    for value in ("1700000000.5", "yesterday"):
        with pytest.raises(SourceError, match="SOURCE_DATE_EPOCH must be whole seconds"):
            dos_timestamp(value)


@pytest.mark.parametrize("size", [ZIP64_LIMIT - 1, ZIP64_LIMIT, ZIP64_LIMIT + 1])
def test_a_member_of_4_gib_carries_its_sizes_in_zip64_extra_fields(size: int) -> None:
    # Only the headers are read: a member that claims 4 GiB unpacked, with a few bytes packed.
    packed = b"\x03\x00"
    member = Member(0x12345678, size, len(packed), DEFLATED, (packed,))
    data = _zip([(Entry("big.bin", "file", FILE_MODE), member)], dos_timestamp(None))
    zip64 = size >= ZIP64_LIMIT
    fields = LOCAL_HEADER.unpack_from(data)
    version, csize, usize, extra_length = fields[1], fields[7], fields[8], fields[10]
    start = LOCAL_HEADER.size + len(b"big.bin")
    extra = data[start : start + extra_length]
    if zip64:
        # APPNOTE 4.5.3: the local header's ZIP64 extra holds both sizes.
        assert (version, csize, usize) == (45, 0xFFFFFFFF, 0xFFFFFFFF)
        assert struct.unpack("<HHQQ", extra) == (1, 16, size, len(packed))
    else:
        assert (version, csize, usize, extra) == (20, len(packed), size, b"")
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        (info,) = zf.infolist()
    assert (info.file_size, info.compress_size, info.CRC) == (size, len(packed), 0x12345678)
    # The central record's extra holds only the field that overflows.
    assert info.extra == (struct.pack("<HHQ", 1, 8, size) if zip64 else b"")
    assert info.extract_version == (45 if zip64 else 20)


def test_a_local_header_past_4_gib_is_found_through_the_central_zip64_extra() -> None:
    entry = Entry("late.txt", "file", FILE_MODE)
    timestamp = dos_timestamp(None)
    raw = io.BytesIO()
    out = HashingSink(raw)
    try:
        name, flags = name_and_flags(entry)
        record = write_member(out, entry, name, flags, _stored(b"late\n"), timestamp)
        moved = (record[0], ZIP64_LIMIT + 7, *record[2:])  # as if 4 GiB of members came first
        write_end(out, [central_record(entry, moved, name, flags, timestamp)], 1)
    finally:
        out.close()
    with zipfile.ZipFile(raw) as zf:
        (info,) = zf.infolist()
    assert info.header_offset == ZIP64_LIMIT + 7
    assert info.extra == struct.pack("<HHQ", 1, 8, ZIP64_LIMIT + 7)
    assert (info.file_size, info.compress_size) == (5, 5)


@pytest.mark.parametrize("count", [ZIP64_COUNT_LIMIT - 1, ZIP64_COUNT_LIMIT])
def test_end_records_switch_to_zip64_at_65535_entries(count: int) -> None:
    # 0xFFFF in the 16-bit count means "see the ZIP64 record", so 65535 entries need one.
    members = [(Entry(f"d{i:05}", "dir", DIR_MODE), EMPTY) for i in range(count)]
    data = _zip(members, dos_timestamp(None))
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
    assert len(names) == count
    assert names[-1] == f"d{count - 1:05}/"
    end = struct.unpack("<IHHHHIIH", data[-22:])
    assert end[0] == 0x06054B50
    assert end[3] == end[4] == count  # both 16-bit counts
    # The ZIP64 end record (56 bytes) and its locator (20) sit right before the end record.
    assert (data[-22 - 20 - 56 : -22 - 20][:4] == EOCD64_SIGNATURE) == (count >= ZIP64_COUNT_LIMIT)


def test_a_member_with_fewer_bytes_than_it_claims_is_refused() -> None:
    entry = Entry("grew.js", "file", FILE_MODE, source="/src/grew.js")
    short = Member(0, 10, 10, STORED, (b"only8byt",))
    out = HashingSink(io.BytesIO())
    try:
        name, flags = name_and_flags(entry)
        with pytest.raises(SourceError, match=r"/src/grew\.js changed while it was being zipped"):
            write_member(out, entry, name, flags, short, dos_timestamp(None))
    finally:
        out.close()


def test_only_names_beyond_ascii_need_the_utf8_flag_and_undecodable_names_are_refused() -> None:
    assert name_and_flags(Entry("lib/a.js", "file", FILE_MODE)) == (b"lib/a.js", 0)
    assert name_and_flags(Entry("lib", "dir", DIR_MODE)) == (b"lib/", 0)
    assert name_and_flags(Entry("lib/π.js", "file", FILE_MODE)) == (
        "lib/π.js".encode(),
        UTF8_FLAG,
    )
    latin1 = b"caf\xe9.js".decode("utf-8", "surrogateescape")  # a Latin-1 name on disk
    entry = Entry(latin1, "file", FILE_MODE, source=f"/src/{latin1}")
    with pytest.raises(SourceError, match="not valid UTF-8"):
        name_and_flags(entry)


def test_an_index_records_a_files_digest_a_folders_slash_and_a_links_target() -> None:
    digest = hashlib.sha256(b"x").hexdigest()
    assert ident(Entry("a.js", "file", FILE_MODE), digest) == digest
    assert ident(Entry("a.js", "file", FILE_MODE), None) is None
    assert ident(Entry("lib", "dir", DIR_MODE), digest) == "/"
    assert ident(Entry("z", "link", LINK_MODE, target="../a.js"), None) == ">../a.js"


def test_the_hashing_sink_passes_on_and_hashes_every_byte_in_order() -> None:
    big = os.urandom(HashingSink.BLOCK + 3)  # over the 1 MiB block: written on its own
    pieces: list[bytes] = [b"header", big, b"", b"tail" * 1000]
    raw = io.BytesIO()
    out = HashingSink(raw)
    try:
        for piece in pieces:
            out.write(piece)
        out.write_record(b"H" * 30, b"name.js", big)
        out.write_record(b"H" * 30, b"small.js", b"data")
        expected = (
            b"".join(pieces) + b"H" * 30 + b"name.js" + big + b"H" * 30 + b"small.js" + b"data"
        )
        assert out.offset == len(expected)
        sha256, md5 = out.digests()
    finally:
        out.close()
    assert raw.getvalue() == expected
    assert sha256 == hashlib.sha256(expected).digest()
    assert md5 == hashlib.md5(expected).hexdigest()


def test_copy_range_copies_exactly_the_range_and_a_short_file_is_an_oserror(
    tmp_path: Path,
) -> None:
    previous = tmp_path / "previous.zip"
    content = os.urandom(100_000)
    previous.write_bytes(content)
    fd = os.open(previous, os.O_RDONLY)
    try:
        raw = io.BytesIO()
        out = HashingSink(raw)
        try:
            copy_range(fd, out, 1000, 60_000)
            out.flush()
            assert raw.getvalue() == content[1000:60_000]
            assert out.offset == 59_000
            with pytest.raises(OSError, match="shorter than its index says"):
                copy_range(fd, out, 99_000, 100_001)
        finally:
            out.close()
        assert pread_exact(fd, 10, 5) == content[5:15]
        with pytest.raises(OSError, match="shorter than its index says"):
            pread_exact(fd, 10, 99_995)
    finally:
        os.close(fd)
