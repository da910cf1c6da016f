"""Paths: real folders on disk and archive paths inside a zip.

Archive paths use "/" whatever the system, and the artifact's root is the empty string.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator


def is_within(path: str, root: str) -> bool:
    """True when `path` is `root` or below it (both absolute and normalised)."""
    return path == root or path.startswith(root.rstrip("/") + "/")


def ancestors(folder: str) -> Iterator[str]:
    """`folder`, then each folder above it, up to the file system's root."""
    while True:
        yield folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return
        folder = parent


def arc_join(base: str, name: str) -> str:
    """Join archive path parts; the artifact root is the empty string."""
    return f"{base}/{name}" if base else name


def arc_relpath(target_arc: str, link_arc: str) -> str:
    """The relative link target that reaches `target_arc` from the folder holding `link_arc`."""
    return posixpath.relpath("/" + target_arc, "/" + posixpath.dirname(link_arc))


def arc_parents(arc: str) -> Iterator[str]:
    """The folders above an archive path, nearest first, the artifact's root ("") last."""
    while arc:
        arc = arc.rpartition("/")[0]
        yield arc


def os_relpath(path: str, start: str) -> str:
    """`path` relative to `start`, as an archive path."""
    return os.path.relpath(path, start).replace(os.sep, "/")
