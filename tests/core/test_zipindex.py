"""The zip index: where each member of a written zip lies (docs/design.md, "Fast paths").

zipfile reads the zips back as the oracle; the manifest is checked against "Content hash".
"""

from __future__ import annotations

import hashlib
import struct
import zipfile
from pathlib import Path

import pytest
from helpers import write

from lambdazip_tf.core.archive import ZipWriter
from lambdazip_tf.core.compress import pack_file
from lambdazip_tf.core.contenthash import ByteOptions, content_hashes, manifest_hashes
from lambdazip_tf.core.entries import DIR_MODE, EXEC_MODE, FILE_MODE, LINK_MODE, Entry
from lambdazip_tf.core.zipformat import EMPTY, dos_timestamp, link_member
from lambdazip_tf.core.zipindex import ZipIndex

LOCAL_HEADER_SIZE = 30  # APPNOTE 4.3.7, before the name and the extra field
CENTRAL_SIGNATURE = b"PK\x01\x02"
END_SIGNATURE = b"PK\x05\x06"


def _entries(src: Path) -> list[Entry]:
    files = {
        "index.js": ("exports.handler = async () => 1;\n" * 20, FILE_MODE),
        "bin/tool": ("#!/bin/sh\necho hi\n", EXEC_MODE),
        "lib/ü.js": ("module.exports = 'ü';\n", FILE_MODE),
        "lib/empty.txt": ("", FILE_MODE),
    }
    entries = [Entry("bin", "dir", DIR_MODE), Entry("lib", "dir", DIR_MODE)]
    for arc, (text, mode) in files.items():
        path = write(src / arc, text)
        entries.append(Entry(arc, "file", mode, str(path), size=path.stat().st_size))
    entries.append(Entry("lib/z.js", "link", LINK_MODE, target="ü.js"))
    return sorted(entries, key=lambda e: e.zip_name.encode())


def _write(path: Path, entries: list[Entry], level: int = 6) -> ZipIndex:
    with path.open("wb") as f:
        writer = ZipWriter(f, dos_timestamp(None))
        for entry in entries:
            if entry.kind == "file":
                writer.add_packed(entry, pack_file(entry.source or "", entry.size, level))
            else:
                writer.add(entry, link_member(entry.target) if entry.target else EMPTY)
        return writer.finish().members


@pytest.fixture
def written(tmp_path: Path) -> tuple[Path, list[Entry], ZipIndex]:
    entries = _entries(tmp_path / "src")
    path = tmp_path / "fn.zip"
    return path, entries, _write(path, entries)


def test_the_index_lists_each_member_as_zipfile_reads_it(
    written: tuple[Path, list[Entry], ZipIndex],
) -> None:
    path, entries, index = written
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
    assert index.names == [e.arc for e in entries]
    assert [e.zip_name for e in entries] == [i.filename for i in infos]
    assert list(index.starts[:-1]) == [i.header_offset for i in infos]
    assert list(index.crc) == [i.CRC for i in infos]
    assert list(index.size) == [i.file_size for i in infos]
    assert list(index.csize) == [i.compress_size for i in infos]
    assert list(index.method) == [i.compress_type for i in infos]
    assert list(index.modes) == [i.external_attr >> 16 for i in infos]


def test_the_index_holds_each_files_sha256_each_links_target_and_a_slash_for_folders(
    written: tuple[Path, list[Entry], ZipIndex],
) -> None:
    path, entries, index = written
    with zipfile.ZipFile(path) as zf:
        expected = [
            "/"
            if e.kind == "dir"
            else ">" + (e.target or "")
            if e.kind == "link"
            else hashlib.sha256(zf.read(e.zip_name)).hexdigest()
            for e in entries
        ]
    assert index.held == expected


def test_each_record_spans_its_local_header_and_data_up_to_the_next(
    written: tuple[Path, list[Entry], ZipIndex],
) -> None:
    path, _, index = written
    data = path.read_bytes()
    records = index.records()
    assert list(records) == index.names
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
    for number, (info, record) in enumerate(zip(infos, records.values(), strict=True)):
        held, start, end, crc, size, csize, method = record
        assert data[start : start + 4] == b"PK\x03\x04"
        assert end - start == LOCAL_HEADER_SIZE + len(info.filename.encode()) + info.compress_size
        assert (held, start, end) == (index.held[number], *index.starts[number : number + 2])
        assert (crc, size, csize, method) == (
            info.CRC,
            info.file_size,
            info.compress_size,
            info.compress_type,
        )
    # The slot after the last member is the central directory's offset, and cdpos's its size.
    end_record = struct.unpack("<IHHHHIIH", data[-22:])
    assert (index.starts[-1], index.cdpos[-1]) == (end_record[6], end_record[5])


def test_cdpos_points_at_each_members_central_record_and_ends_with_its_size(
    written: tuple[Path, list[Entry], ZipIndex],
) -> None:
    path, entries, index = written
    data = path.read_bytes()
    directory = index.starts[-1]
    for entry, position in zip(entries, index.cdpos[:-1], strict=True):
        record = data[directory + position :]
        assert record[:4] == CENTRAL_SIGNATURE
        name_length = struct.unpack_from("<H", record, 28)[0]
        assert record[46 : 46 + name_length] == entry.zip_name.encode()
    # The last slot is the central directory's size: the end record follows it.
    assert data[directory + index.cdpos[-1] :][:4] == END_SIGNATURE
    assert len(index.cdpos) == len(index.starts) == len(entries) + 1


@pytest.mark.parametrize("level", [0, 6])
def test_the_manifest_hashes_as_the_entries_the_zip_was_written_from(
    tmp_path: Path, level: int
) -> None:
    entries = _entries(tmp_path / "src")
    index = _write(tmp_path / "fn.zip", entries, level)
    digests = {
        e.source: hashlib.sha256(Path(e.source).read_bytes()).hexdigest()
        for e in entries
        if e.source is not None
    }
    options = ByteOptions.of(level, None)
    assert manifest_hashes(index.manifest(), options) == content_hashes(entries, digests, options)


def test_the_same_entries_give_equal_indexes_and_other_content_does_not(tmp_path: Path) -> None:
    entries = _entries(tmp_path / "src")
    first = _write(tmp_path / "a.zip", entries)
    assert _write(tmp_path / "b.zip", entries) == first
    write(tmp_path / "src" / "bin" / "tool", "#!/bin/sh\necho HI\n")  # the same size
    assert _write(tmp_path / "c.zip", entries) != first
    assert first != "not an index"
    with pytest.raises(TypeError):
        hash(first)  # mutable: patched in place


def test_a_copy_is_equal_and_patching_it_leaves_the_original_alone(
    written: tuple[Path, list[Entry], ZipIndex],
) -> None:
    _, _, index = written
    before = index.copy()
    patched = index.copy()
    assert patched == index
    patched.names[0] = "renamed"
    patched.held[1] = "/"
    patched.starts[2] += 10
    patched.crc[3] = 0
    patched.method[4] = 8
    patched.append("extra", "/", DIR_MODE, 0, 0, 0, 0, 0, 0)
    assert patched != index
    assert index == before


def test_an_empty_index_has_no_members_records_or_manifest() -> None:
    index = ZipIndex.empty()
    assert index.records() == {}
    assert index.manifest() == []
    assert index == ZipIndex.empty()
    index.append("a.js", "0" * 64, 0o100644, 0, 0, 1, 2, 3, 0)
    assert index != ZipIndex.empty()
    assert index.manifest() == ["a.js\x00file\x00644\x00" + "0" * 64]
