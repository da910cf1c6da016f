"""Links as Lambda mounts the zips: the function at /var/task, layers at /opt
(docs/design.md, "Links").

Whatever the source tree held, every link in each zip must lead to an entry of the zips once
they are mounted: a link the split into function and layer left behind would dangle at run time.
"""

from __future__ import annotations

import posixpath

from ..errors import LinkError
from .entries import Entry
from .paths import arc_parents

FUNCTION_MOUNT, LAYER_MOUNT = "/var/task", "/opt"


def check_nothing_below_links(entries: list[Entry], label: str) -> None:
    """No archive path is both a link and a folder holding entries: Lambda rejects such a zip
    whole, at deployment."""
    links = {e.arc: e for e in entries if e.kind == "link"}
    if not links:
        return
    for entry in entries:
        above = next((p for p in arc_parents(entry.arc) if p in links), None)
        if above is not None:
            raise LinkError(
                f"the {label} zip would hold {entry.arc} below {above}, which is a link (-> "
                f"{links[above].target}), and Lambda rejects a zip with a link that is also a "
                'folder; set symlinks = "dereference", or leave one of the two out with excludes',
                above,
                links[above].target,
            )


_MAX_HOPS = 40  # as Linux's limit on links followed in one path lookup


def check_links(
    function: list[Entry], layer: list[Entry] | None, trusted: str | None = None
) -> None:
    """Every link in each zip must lead to an entry of the zips as Lambda mounts them.
    `trusted` is the archive path of a link in the function zip that points at a layer
    another build makes (node_modules_link), taken on trust."""
    zips = ((FUNCTION_MOUNT, function), (LAYER_MOUNT, layer or []))
    if not any(e.kind == "link" for _, entries in zips for e in entries):
        return
    mounted = {f"{mount}/{e.arc}": e for mount, entries in zips for e in entries}
    for mount, entries in zips:
        label = "function" if mount == FUNCTION_MOUNT else "layer"
        for entry in entries:
            if entry.kind != "link" or entry.target is None:
                continue
            if mount == FUNCTION_MOUNT and entry.arc == trusted:
                continue
            reached = _follow(f"{mount}/{entry.arc}", mounted)
            if reached is None or (
                reached not in mounted and reached not in (FUNCTION_MOUNT, LAYER_MOUNT)
            ):
                shown = reached or "a link cycle"
                raise LinkError(
                    f"link {entry.arc} -> {entry.target} in the {label} zip leads to {shown}, "
                    f"where Lambda finds nothing (the function is mounted at {FUNCTION_MOUNT}, "
                    f'layers at {LAYER_MOUNT}); set symlinks = "dereference" to store what '
                    "it points to in its place, or remove the link",
                    entry.arc,
                    entry.target,
                )


def _follow(path: str, mounted: dict[str, Entry]) -> str | None:
    """Where `path` leads once every link on the way is followed (None: a cycle)."""
    for _ in range(_MAX_HOPS):
        parts = path.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            prefix = "/" + "/".join(parts[:i])
            entry = mounted.get(prefix)
            if entry is not None and entry.kind == "link" and entry.target is not None:
                base = posixpath.dirname(prefix)
                rest = "/".join(parts[i:])
                path = posixpath.normpath(posixpath.join(base, entry.target, rest))
                break
        else:
            return path
    return None
