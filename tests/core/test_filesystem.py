"""The selection's file-system reads, each one remembered (docs/design.md, "Selection" and
"Fast paths")."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from helpers import link, write

from lambdazip_tf.core.filesystem import ObservedFileSystem, listing, stat_key


def _listed(folder: Path) -> str:
    with os.scandir(folder) as it:
        return listing(list(it))


def test_a_stat_key_is_size_mtime_ctime_inode_and_device(tmp_path: Path) -> None:
    path = write(tmp_path / "a.js", "module.exports = 1;\n")
    os.utime(path, ns=(1_000_000_000_123, 1_000_000_000_456))
    st = os.stat(path)
    assert stat_key(st) == (20, 1_000_000_000_456, st.st_ctime_ns, st.st_ino, st.st_dev)
    # A safe write of the same size with the mtime put back is another key: another inode.
    replaced = write(tmp_path / "b.js", "module.exports = 2;\n")
    os.utime(replaced, ns=(1_000_000_000_123, 1_000_000_000_456))
    replaced.replace(path)
    assert stat_key(os.stat(path)) != stat_key(st)


def test_a_listing_types_entries_without_following_links_and_sorts_them(tmp_path: Path) -> None:
    folder = tmp_path / "fn"
    write(folder / "a.js")
    (folder / "lib").mkdir()
    link(folder / "to-lib", "lib")  # a link to a folder is a link
    link(folder / "gone", "missing")  # and so is a dangling one
    os.mkfifo(folder / "pipe")  # neither file nor folder
    assert _listed(folder) == "\0".join(["dlib", "fa.js", "lgone", "lto-lib", "opipe"])


def test_a_listing_changes_with_a_name_or_a_type_but_not_with_content(tmp_path: Path) -> None:
    folder = tmp_path / "fn"
    write(folder / "a.js", "1")
    before = _listed(folder)
    write(folder / "a.js", "a longer content")
    assert _listed(folder) == before
    (folder / "a.js").unlink()
    link(folder / "a.js", "elsewhere.js")
    assert _listed(folder) != before
    (folder / "a.js").unlink()
    write(folder / "b.js")
    assert _listed(folder) == "fb.js"


def test_scandir_remembers_the_folders_stat_key_and_keeps_its_listing(tmp_path: Path) -> None:
    folder = write(tmp_path / "fn" / "index.js").parent
    (folder / "lib").mkdir()
    fs = ObservedFileSystem()
    entries = fs.scandir(str(folder))
    assert sorted(e.name for e in entries) == ["index.js", "lib"]
    assert fs.facts == [("folder", str(folder), stat_key(os.stat(folder)))]
    assert fs.listings == {str(folder): "dlib\0findex.js"}


def test_listings_show_a_folder_as_it_was_listed(tmp_path: Path) -> None:
    folder = write(tmp_path / "fn" / "index.js").parent
    fs = ObservedFileSystem()
    fs.scandir(str(folder))
    write(folder / "added.js")  # after the listing, while files are packed
    assert fs.listings == {str(folder): "findex.js"}
    assert _listed(folder) == "fadded.js\0findex.js"  # what the next run's check compares


def test_probes_remember_their_answers_no_included(tmp_path: Path) -> None:
    write(tmp_path / "a.js")
    link(tmp_path / "dangling", "missing")
    fs = ObservedFileSystem()
    a, folder = str(tmp_path / "a.js"), str(tmp_path)
    missing, dangling = str(tmp_path / "missing"), str(tmp_path / "dangling")
    answers = [
        fs.isdir(folder),
        fs.isdir(a),
        fs.isfile(a),
        fs.isfile(missing),
        fs.exists(dangling),
        fs.lexists(dangling),
        fs.lexists(missing),
        fs.readlink(dangling),
    ]
    assert answers == [True, False, True, False, False, True, False, "missing"]
    assert fs.facts == [
        ("isdir", folder, True),
        ("isdir", a, False),
        ("isfile", a, True),
        ("isfile", missing, False),
        ("exists", dangling, False),
        ("lexists", dangling, True),
        ("lexists", missing, False),
        ("readlink", dangling, "missing"),
    ]


def test_realpath_is_remembered_and_a_strict_failure_with_its_errno(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    link(tmp_path / "alias", "real")
    link(tmp_path / "loop", "loop")
    fs = ObservedFileSystem()
    alias, real = str(tmp_path / "alias"), str(tmp_path / "real")
    assert fs.realpath(alias) == real
    assert fs.realpath(alias, strict=True) == real
    with pytest.raises(FileNotFoundError):
        fs.realpath(str(tmp_path / "missing"), strict=True)
    with pytest.raises(OSError) as cycle:
        fs.realpath(str(tmp_path / "loop"), strict=True)
    assert cycle.value.errno == errno.ELOOP
    assert fs.facts == [
        ("realpath", alias, real),
        ("realpath_strict", alias, real),
        ("realpath_strict", str(tmp_path / "missing"), f"errno {errno.ENOENT}"),
        ("realpath_strict", str(tmp_path / "loop"), f"errno {errno.ELOOP}"),
    ]


def test_read_bytes_remembers_the_files_stat_key_and_refuses_a_folder(tmp_path: Path) -> None:
    manifest = write(tmp_path / "package.json", '{"name": "fn"}')
    fs = ObservedFileSystem()
    assert fs.read_bytes(str(manifest)) == b'{"name": "fn"}'
    assert fs.facts == [("file", str(manifest), stat_key(os.stat(manifest)))]
    (tmp_path / "pkg" / "package.json").mkdir(parents=True)
    with pytest.raises(IsADirectoryError):
        fs.read_bytes(str(tmp_path / "pkg" / "package.json"))
    assert len(fs.facts) == 1  # a folder is never recorded as a file


def test_stat_returns_the_files_stat_and_remembers_its_key(tmp_path: Path) -> None:
    path = write(tmp_path / "bin" / "tool", "#!/bin/sh\n", mode=0o755)
    fs = ObservedFileSystem()
    st = fs.stat(str(path))
    assert (st.st_size, st.st_mode & 0o777) == (10, 0o755)
    assert fs.facts == [("file", str(path), stat_key(st))]
    assert stat_key(st) == stat_key(os.stat(path))
