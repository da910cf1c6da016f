"""Content hash (docs/design.md, "Content hash")."""

from __future__ import annotations

import hashlib
import time

import pytest

from lambdazip_tf.core.compress import DEFLATER
from lambdazip_tf.core.contenthash import (
    ByteOptions,
    Hashes,
    content_hashes,
    manifest_hashes,
    manifest_line,
)
from lambdazip_tf.core.entries import DIR_MODE, EXEC_MODE, FILE_MODE, LINK_MODE, Entry

INDEX = hashlib.sha256(b"exports.handler = 1;\n").hexdigest()
DEFAULT = ByteOptions.of(6, None)


def _lines() -> list[str]:
    return [
        manifest_line("index.js", "file", FILE_MODE, INDEX),
        manifest_line("lib/", "dir", DIR_MODE, ""),
        manifest_line("lib/entry.js", "link", LINK_MODE, "../index.js"),
    ]


def test_the_content_hash_of_a_known_manifest_is_pinned() -> None:
    # Artifacts are named by this hash: a change here renames every artifact built before it
    # and must come with a new FORMAT_VERSION.
    assert manifest_hashes(_lines(), DEFAULT) == Hashes(
        content="4d49f9c2ba3adda8c909085057bd9609092912421606a05e42b3c2c403928b2a",
        files="9b5e2203aa02dadd42c6101834ce0301f069090cfeea2ca6b7ba179cc5f02a1a",
    )


def test_the_files_hash_is_the_sha256_of_the_manifest_lines_alone() -> None:
    lines = _lines()
    expected = hashlib.sha256("\n".join(lines).encode()).hexdigest()
    assert manifest_hashes(lines, DEFAULT).files == expected
    assert manifest_hashes([], DEFAULT).files == hashlib.sha256(b"").hexdigest()
    assert manifest_hashes([], DEFAULT).content != manifest_hashes(lines, DEFAULT).content


@pytest.mark.parametrize(
    "other",
    [
        ByteOptions.of(9, None),
        ByteOptions.of(0, None),
        ByteOptions.of(6, "1700000000"),
        ByteOptions.of(6, None, "arm64"),
    ],
)
def test_a_byte_option_changes_the_content_hash_and_not_the_files_hash(
    other: ByteOptions,
) -> None:
    base, changed = manifest_hashes(_lines(), DEFAULT), manifest_hashes(_lines(), other)
    assert changed.content != base.content
    assert changed.files == base.files


def test_the_default_architecture_adds_nothing_to_the_hashed_options() -> None:
    # So that artifacts built before `architecture` was an option keep their names.
    assert DEFAULT.hashed() == {"level": 6, "deflate": DEFLATER, "timestamp": [0, 33]}
    assert ByteOptions.of(6, None, "arm64").hashed()["architecture"] == "arm64"


@pytest.mark.parametrize(
    "changed",
    [
        manifest_line("index.mjs", "file", FILE_MODE, INDEX),  # the name
        manifest_line("index.js", "file", EXEC_MODE, INDEX),  # the mode
        manifest_line("index.js", "file", FILE_MODE, "0" * 64),  # the content
        manifest_line("index.js", "link", FILE_MODE, INDEX),  # the kind alone
    ],
)
def test_every_field_of_an_entry_changes_both_hashes(changed: str) -> None:
    lines = _lines()
    base = manifest_hashes(lines, DEFAULT)
    other = manifest_hashes([changed, *lines[1:]], DEFAULT)
    assert other.content != base.content
    assert other.files != base.files


def test_content_hashes_take_files_by_digest_links_by_target_and_folders_by_name() -> None:
    entries = [
        Entry("index.js", "file", FILE_MODE, "/src/index.js", size=21),
        Entry("lib", "dir", DIR_MODE),
        Entry("lib/entry.js", "link", LINK_MODE, target="../index.js"),
    ]
    got = content_hashes(entries, {"/src/index.js": INDEX}, DEFAULT)
    assert got == manifest_hashes(_lines(), DEFAULT)


def test_the_hash_depends_on_file_contents_not_on_where_the_files_are() -> None:
    here = [Entry("index.js", "file", FILE_MODE, "/home/a/fn/index.js", size=21)]
    there = [Entry("index.js", "file", FILE_MODE, "/runner/work/fn/index.js", size=21)]
    assert content_hashes(here, {"/home/a/fn/index.js": INDEX}, DEFAULT) == content_hashes(
        there, {"/runner/work/fn/index.js": INDEX}, DEFAULT
    )


def test_a_name_that_is_not_utf8_hashes_and_differs_from_its_utf8_spelling() -> None:
    raw = b"caf\xe9.js".decode("utf-8", "surrogateescape")  # a Latin-1 name on disk
    latin = manifest_hashes([manifest_line(raw, "file", FILE_MODE, INDEX)], DEFAULT)
    utf8 = manifest_hashes([manifest_line("café.js", "file", FILE_MODE, INDEX)], DEFAULT)
    assert latin.content != utf8.content
    assert latin.files != utf8.files


def test_source_date_epoch_is_described_in_utc_at_the_zips_two_second_resolution() -> None:
    options = ByteOptions.of(9, "1700000001", "arm64")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(1700000000))
    assert options.described() == f"level 9, {DEFLATER}, timestamp {when} UTC, for arm64"
    assert (
        DEFAULT.described() == f"level 6, {DEFLATER}, timestamp 1980-01-01 00:00:00 UTC, for x86_64"
    )
    # One second later is the same zip timestamp: the same stamp and the same content hash.
    same = ByteOptions.of(9, "1700000000", "arm64")
    assert same.stamp == options.stamp == f"{options.timestamp[0]}:{options.timestamp[1]}"
    assert manifest_hashes(_lines(), same) == manifest_hashes(_lines(), options)
    assert ByteOptions.of(9, "1700000002", "arm64").stamp != options.stamp


def test_a_source_date_epoch_before_1980_gives_the_default_options() -> None:
    assert ByteOptions.of(6, "0") == ByteOptions.of(6, "315532799") == DEFAULT
    assert ByteOptions.of(6, "") == DEFAULT
