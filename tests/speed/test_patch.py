"""A patched zip is the zip the writer writes from scratch (docs/design.md, "Fast paths")."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import (
    write,
)

from lambdazip_tf.core.archive import ZipWriter
from lambdazip_tf.core.compress import pack_file
from lambdazip_tf.core.contenthash import ByteOptions, content_hashes, manifest_hashes
from lambdazip_tf.core.entries import DIR_MODE, EXEC_MODE, FILE_MODE, LINK_MODE, Entry
from lambdazip_tf.core.zipformat import EMPTY, Member, dos_timestamp, link_member, packed_member
from lambdazip_tf.core.zipindex import ZipIndex
from lambdazip_tf.speed.patch import NotPatchable, patch


def _write_all(path: Path, entries: list[Entry]) -> ZipIndex:
    with path.open("wb") as f:
        writer = ZipWriter(f, dos_timestamp(None))
        for e in entries:
            if e.kind == "file":
                assert e.source is not None
                writer.add(e, packed_member(pack_file(e.source, e.size, 6)))
            else:
                writer.add(e, link_member(e.target) if e.target else EMPTY)
        return writer.finish().members


def test_a_patched_zip_is_the_zip_written_from_scratch(tmp_path: Path) -> None:
    """Changes that grow, shrink, sit side by side, come first and last, and change a mode."""
    src = tmp_path / "src"
    texts = {f"m{i}.js": f"module.exports = {i};\n" * (i * 7 + 1) for i in range(8)}
    entries = [Entry(arc="lib", kind="dir", mode=DIR_MODE)]
    for name, text in texts.items():
        path = write(src / name, text)
        entries.append(Entry(f"lib/{name}", "file", FILE_MODE, str(path), size=len(text)))
    entries.append(Entry(arc="lib/z", kind="link", mode=LINK_MODE, target="m0.js"))
    index = _write_all(tmp_path / "old.zip", entries)
    changed: dict[int, tuple[Entry, Member]] = {}
    after = list(entries)
    for number, text, mode in (
        (1, "x", FILE_MODE),  # shrinks, first file
        (2, "y" * 5000, FILE_MODE),  # grows, next to the one before
        (5, texts["m4.js"], EXEC_MODE),  # same size as before, new mode
        (8, "last\n" * 300, FILE_MODE),  # the last file
    ):
        path = write(tmp_path / "new" / f"{number}.js", text)
        entry = after[number]._replace(source=str(path), size=len(text), mode=mode)
        after[number] = entry
        changed[number] = (entry, packed_member(pack_file(str(path), len(text), 6)))
    expected_index = _write_all(tmp_path / "fresh.zip", after)
    fd = os.open(tmp_path / "old.zip", os.O_RDONLY)
    try:
        with (tmp_path / "patched.zip").open("wb") as f:
            written = patch(fd, f, index, changed, dos_timestamp(None))
    finally:
        os.close(fd)
    fresh = (tmp_path / "fresh.zip").read_bytes()
    assert (tmp_path / "patched.zip").read_bytes() == fresh
    assert written.size == len(fresh)
    assert written.members == expected_index
    digests = {e.source: m.key for e, m in changed.values() if e.source and m.key}
    for e in after:
        if e.kind == "file" and e.source not in digests:
            assert e.source is not None
            digests[e.source] = pack_file(e.source, e.size, 6).sha256
    options = ByteOptions.of(6, None)
    assert manifest_hashes(written.members.manifest(), options) == content_hashes(
        after, digests, options
    )


def test_a_zip64_zip_is_not_patched(tmp_path: Path) -> None:
    entries = [Entry(arc=f"d{i:06d}", kind="dir", mode=DIR_MODE) for i in range(70_000)]
    index = _write_all(tmp_path / "many.zip", entries)
    fd = os.open(tmp_path / "many.zip", os.O_RDONLY)
    try:
        with (tmp_path / "never.zip").open("wb") as f, pytest.raises(NotPatchable):
            patch(fd, f, index, {0: (entries[0], EMPTY)}, dos_timestamp(None))
    finally:
        os.close(fd)
