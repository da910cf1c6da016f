"""Where every member of a written zip lies: what lets a later build reuse or patch it.

The writer fills an index as it writes (archive.py); the speed layer stores it with the
artifact (speed/cache.py), copies unchanged records out of the zip through it, and patches
changed members in (docs/design.md, "Fast paths").
"""

from __future__ import annotations

import stat
from array import array

from .contenthash import manifest_line
from .entries import Kind
from .zipformat import Record

COLUMNS = ("modes", "starts", "cdpos", "crc", "size", "csize", "method")  # the integer ones


class ZipIndex:
    """The members of a zip in member order, as columns.

    Columns rather than one tuple per member: an index is saved and loaded on every rebuild, and
    a one-file change patches a few slots of it instead of rebuilding tens of thousands of
    tuples. `starts` and `cdpos` have one slot more than there are members: the offset and the
    size of the central directory.
    """

    __slots__ = ("cdpos", "crc", "csize", "held", "method", "modes", "names", "size", "starts")

    def __init__(
        self,
        names: list[str],
        held: list[str],
        modes: array[int],
        starts: array[int],
        cdpos: array[int],
        crc: array[int],
        size: array[int],
        csize: array[int],
        method: array[int],
    ) -> None:
        self.names = names  # archive paths (Entry.arc)
        self.held = held  # what each member holds (zipformat.ident)
        self.modes = modes  # st_mode stored in the external attributes
        self.starts = starts  # local record offsets
        self.cdpos = cdpos  # central record offsets, relative to the central directory
        self.crc = crc
        self.size = size
        self.csize = csize
        self.method = method

    @classmethod
    def empty(cls) -> ZipIndex:
        """An index with no members, for a writer to fill."""
        return cls([], [], *(array("q") for _ in COLUMNS))

    def append(
        self,
        arc: str,
        held: str,
        mode: int,
        start: int,
        cdpos: int,
        crc: int,
        size: int,
        csize: int,
        method: int,
    ) -> None:
        """Add the next member's row."""
        self.names.append(arc)
        self.held.append(held)
        self.modes.append(mode)
        self.starts.append(start)
        self.cdpos.append(cdpos)
        self.crc.append(crc)
        self.size.append(size)
        self.csize.append(csize)
        self.method.append(method)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ZipIndex):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    __hash__ = None  # type: ignore[assignment]  # mutable: patched in place

    def records(self) -> dict[str, Record]:
        """Each member by archive path."""
        starts = self.starts
        return {
            name: (held, start, end, crc, size, csize, method)
            for name, held, start, end, crc, size, csize, method in zip(
                self.names,
                self.held,
                starts,
                starts[1:],
                self.crc,
                self.size,
                self.csize,
                self.method,
                strict=False,
            )
        }

    def manifest(self) -> list[str]:
        """The manifest lines of the entries this zip holds (contenthash.content_hash's)."""
        # A line is the stored name, then kind and mode, then what the member holds: held minus
        # its "/" or ">" marker. There are few distinct modes, so each one's middle part is made
        # once rather than once per member.
        parts: dict[int, tuple[str, int]] = {}
        for mode in set(self.modes):
            kind: Kind = "dir" if stat.S_ISDIR(mode) else "link" if stat.S_ISLNK(mode) else "file"
            middle = manifest_line("", kind, mode & 0o7777, "")
            parts[mode] = ("/" + middle if kind == "dir" else middle, 0 if kind == "file" else 1)
        lines = []
        for name, held, mode in zip(self.names, self.held, self.modes, strict=True):
            middle, cut = parts[mode]
            lines.append(name + middle + held[cut:])
        return lines

    def copy(self) -> ZipIndex:
        """An independent copy, to patch."""
        return ZipIndex(
            list(self.names),
            list(self.held),
            *(array("q", getattr(self, n)) for n in COLUMNS),
        )
