"""Entries: what each zip member will be (docs/design.md, "The zip")."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import (
    write,
)

from lambdazip_tf.core.entries import Entry, file_entry, normalised_mode
from lambdazip_tf.core.filesystem import stat_key


@pytest.mark.parametrize("mode", [0o644, 0o600, 0o755, 0o700, 0o744, 0o4711])
def test_a_file_entry_holds_its_files_stat_key_size_and_normalised_mode(
    tmp_path: Path, mode: int
) -> None:
    path = write(tmp_path / "f.js", "module.exports = 1;\n", mode=mode)
    st = os.stat(path)
    entry = file_entry("lib/f.js", str(path), st)
    assert entry == Entry("lib/f.js", "file", normalised_mode(mode), str(path), None, 20)._replace(
        stat_key=stat_key(st)
    )
    assert entry.mode == (0o755 if mode & 0o111 else 0o644)
