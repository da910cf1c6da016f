"""Source maps, for `plan`: how many ship, and those shipped code names that an exclude left
out (docs/design.md, "Selection").

Node.js maps a stack trace to the original sources (TypeScript's src/) when the function runs
with NODE_OPTIONS=--enable-source-maps and each compiled file's `//# sourceMappingURL=` names
a map that shipped beside it.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence

from ...core.entries import Entry, Excluded

_URL = re.compile(rb"//[#@] sourceMappingURL=(\S+)\s*$")
_CODE = (".js", ".mjs", ".cjs")
_TAIL = 1024  # the comment is the file's last line
_MOST = 3  # left-out maps named; the rest counted


def _named_map(entry: Entry) -> str | None:
    """The archive path of the map a compiled file names, if it names a file."""
    try:
        with open(entry.source or "", "rb") as f:
            f.seek(max(0, entry.size - _TAIL))
            tail = f.read()
    except OSError:
        return None
    found = _URL.search(tail.rstrip())
    if found is None or found.group(1).startswith((b"data:", b"http:", b"https:")):
        return None
    named = found.group(1).decode("utf-8", "replace")
    return posixpath.normpath(posixpath.join(posixpath.dirname(entry.arc), named))


def source_map_notes(zips: Sequence[Sequence[Entry]], excluded: Sequence[Excluded]) -> list[str]:
    """What `plan` says of source maps: how many ship, that NODE_OPTIONS uses them, and the
    maps shipped code names that the excludes left out. `zips`: each zip's entries, the
    layer's without its prefix."""
    left_out = {x.arc for x in excluded}
    maps = missing = 0
    named: list[str] = []
    for entries in zips:
        files = {e.arc: e for e in entries if e.kind == "file"}
        maps += sum(1 for arc in files if arc.endswith(".map"))
        for arc, entry in files.items():
            if not arc.endswith(_CODE) or entry.source is None:
                continue
            target = _named_map(entry)
            if target is not None and target not in files and target in left_out:
                missing += 1
                named += [f"{target} (named by {arc})"] if len(named) < _MOST else []
    notes = []
    if maps:
        notes.append(
            f"{maps} source map{'s' if maps != 1 else ''} ship: set NODE_OPTIONS="
            "--enable-source-maps on the function for stack traces in the original sources"
        )
    if missing:
        more = f" and {missing - len(named)} more" if missing > len(named) else ""
        notes.append(
            f"{missing} source map{'s' if missing != 1 else ''} that shipped code names "
            f"{'are' if missing != 1 else 'is'} left out by the excludes: "
            f"{', '.join(named)}{more}"
        )
    return notes
