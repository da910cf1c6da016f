"""The file-system reads a selection makes, each one remembered.

The selection (layout, the Node.js crawl, the link policy) reads the file system only through
`ObservedFileSystem`, which remembers every answer as (operation, path, result). The speed
layer stores those facts and checks them on the next run: if every folder, file and probe
answers as it did, the selection is the same (docs/design.md, "Fast paths").

What is remembered, and why it is enough:
- A folder by its stat key, taken *before* it is listed: adding, removing or renaming an entry
  changes the folder's mtime and ctime, so a listing that could differ is always caught, and a
  change racing the listing leaves a newer key than the one recorded. The listing itself is kept
  too (names and types), so that a folder whose key changed but whose entries did not (an
  editor's safe write renames over a file) still counts as the same.
- A file by its stat key (size, mtime_ns, ctime_ns, inode, device): content edits, mode changes
  and replacements all change it.
- Probes (is it a folder, does it exist, where does this link lead) with their answers,
  "no" included.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Sequence
from typing import Any

StatKey = tuple[int, int, int, int, int]  # size, mtime_ns, ctime_ns, inode, device
Fact = tuple[str, str, Any]  # operation, path, what it answered


def stat_key(st: os.stat_result) -> StatKey:
    """(size, mtime_ns, ctime_ns, inode, device): what says a file or folder is unchanged."""
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


def listing(entries: Sequence[os.DirEntry[str]]) -> str:
    """A folder's entries as the selection sees them: each name with its type (folder, link,
    file or other), without following links, sorted."""
    typed = []
    for entry in entries:
        if entry.is_symlink():
            kind = "l"
        elif entry.is_dir(follow_symlinks=False):
            kind = "d"
        elif entry.is_file(follow_symlinks=False):
            kind = "f"
        else:
            kind = "o"
        typed.append(kind + entry.name)
    return "\0".join(sorted(typed))


class ObservedFileSystem:
    """File-system reads for the selection, each one remembered in `facts`."""

    def __init__(self) -> None:
        self.started_ns = time.time_ns()
        self.facts: list[Fact] = []
        self._scanned: dict[str, list[os.DirEntry[str]]] = {}

    @property
    def listings(self) -> dict[str, str]:
        """Each folder listed, with its entries' names and types as they were listed.

        Made when asked, not while listing: the snapshot asks for them while files are packed,
        off the selection's path. The entries keep the types their listing gave (d_type), or
        the lstat the selection made for them.
        """
        return {folder: listing(entries) for folder, entries in self._scanned.items()}

    def _note(self, op: str, path: str, result: Any) -> Any:
        self.facts.append((op, path, result))
        return result

    def isdir(self, path: str) -> bool:
        """os.path.isdir, remembered."""
        return bool(self._note("isdir", path, os.path.isdir(path)))

    def isfile(self, path: str) -> bool:
        """os.path.isfile, remembered."""
        return bool(self._note("isfile", path, os.path.isfile(path)))

    def exists(self, path: str) -> bool:
        """os.path.exists, remembered."""
        return bool(self._note("exists", path, os.path.exists(path)))

    def lexists(self, path: str) -> bool:
        """os.path.lexists, remembered."""
        return bool(self._note("lexists", path, os.path.lexists(path)))

    def realpath(self, path: str, strict: bool = False) -> str:
        """os.path.realpath, remembered (with the error, when strict and it fails)."""
        try:
            result = os.path.realpath(path, strict=strict)
        except OSError as exc:
            self._note("realpath_strict", path, f"errno {exc.errno}")
            raise
        return str(self._note("realpath_strict" if strict else "realpath", path, result))

    def readlink(self, path: str) -> str:
        """os.readlink, remembered."""
        return str(self._note("readlink", path, os.readlink(path)))

    def scandir(self, folder: str) -> list[os.DirEntry[str]]:
        """The folder's entries; its stat key is remembered before it is listed."""
        self._note("folder", folder, stat_key(os.stat(folder)))
        with os.scandir(folder) as it:
            entries = self._scanned[folder] = list(it)
        return entries

    def read_bytes(self, path: str) -> bytes:
        """A small file's content (a manifest); its stat key is remembered before the read."""
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(path)
        self._note("file", path, stat_key(st))
        with open(path, "rb") as f:
            return f.read()

    def stat(self, path: str) -> os.stat_result:
        """os.stat of a file whose content will be zipped, remembered."""
        st = os.stat(path)
        self._note("file", path, stat_key(st))
        return st
