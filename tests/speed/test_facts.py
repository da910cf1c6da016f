"""Checking a selection's file-system facts again (docs/design.md, "Fast paths")."""

from __future__ import annotations

import os
from pathlib import Path

from helpers import (
    OLD,
    write,
)

from lambdazip_tf.core.filesystem import ObservedFileSystem
from lambdazip_tf.speed.facts import changed_files, pack_files


def test_the_replay_finds_changes_in_both_of_its_processes(tmp_path: Path) -> None:
    """Past 2,000 files the replay forks: changes on either side of the split are found."""
    files = [write(tmp_path / f"d{i // 100}" / f"f{i}.js", str(i)) for i in range(2500)]
    keys = []
    for path in files:
        st_ = path.stat()
        keys.append((st_.st_size, st_.st_mtime_ns, st_.st_ctime_ns, st_.st_ino, st_.st_dev))
    paths, packed = pack_files([str(p) for p in files], keys)
    facts = [("folder", str(tmp_path / "d0"), list(keys[0]))] * 10  # never true: no folder key
    assert changed_files([], paths, packed, {}) == []
    assert changed_files(facts, paths, packed, {}) is None
    for number in (3, 1249, 1250, 2499):
        files[number].write_text("changed")
    assert changed_files([], paths, packed, {}) == [3, 1249, 1250, 2499]
    files[2000].unlink()  # a file gone: only a full build can tell what that means
    assert changed_files([], paths, packed, {}) is None
    files[2000].write_text("back")
    files[10].unlink()
    assert changed_files([], paths, packed, {}) is None


def test_a_folder_whose_listing_is_the_same_still_holds(tmp_path: Path) -> None:
    """A safe write renames over a file: its folder's stat key changes, its listing does not.
    The same names with other types (a file become a folder) do not hold."""
    folder = tmp_path / "lib"
    write(folder / "a.js", "a")
    (folder / "sub").mkdir()
    os.utime(folder, (OLD, OLD))
    fs = ObservedFileSystem()
    fs.scandir(str(folder))
    assert changed_files(fs.facts, "", b"", fs.listings) == []
    write(folder / ".a.js.new", "b").replace(folder / "a.js")
    assert changed_files(fs.facts, "", b"", fs.listings) == []
    assert changed_files(fs.facts, "", b"", {}) is None  # without the listing: a changed key
    (folder / "a.js").unlink()
    (folder / "a.js").mkdir()
    assert changed_files(fs.facts, "", b"", fs.listings) is None
    (folder / "a.js").rmdir()
    write(folder / "a.js", "a")
    assert changed_files(fs.facts, "", b"", fs.listings) == []
    write(folder / "new.js", "n")
    assert changed_files(fs.facts, "", b"", fs.listings) is None
