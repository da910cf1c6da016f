"""Where Node finds a package, on disk and in the zip (docs/design.md, "Layout").

On disk: `node_modules/<name>` in the requiring package's real folder, then in each ancestor's.
In the zip: a package found inside `keep` keeps its installed path, a link on the way to it
included (that is the layout the package manager made and tested); one found elsewhere (hoisted
above the function by a workspace) is copied to the zip's top-level node_modules, or nested
under its dependent when that name is taken. `Slots.check` then proves, for every (dependent,
name) edge, that Node's resolution inside the zip reaches the same real package.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence
from typing import NamedTuple

from ...core.filesystem import ObservedFileSystem
from ...core.paths import ancestors, arc_join, arc_parents, is_within, os_relpath
from ...errors import DependencyError, LinkError
from .manifest import INSTALLED


def resolve(fs: ObservedFileSystem, name: str, start: str) -> tuple[str, str] | None:
    """Where Node finds `name` from the real folder `start`: (path found, its real path)."""
    for folder in ancestors(start):
        if os.path.basename(folder) == INSTALLED:
            continue
        candidate = os.path.join(folder, INSTALLED, name)
        if fs.isdir(candidate):
            try:
                return candidate, fs.realpath(candidate, strict=True)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise LinkError(f"link cycle at {candidate}", candidate) from None
                raise
    return None


class Placed(NamedTuple):
    """A package's place in the zip: the slot where Node looks for it, and the archive folder
    of its files (the same, or the slot is a link to it)."""

    slot: str
    files: str


class Edge(NamedTuple):
    """A dependent (its archive folder) requires `name`, found at the real folder `real`."""

    dependent: str
    name: str
    real: str


class Slots:
    """The archive folders Node finds packages in, each with the real package it holds."""

    def __init__(self, fs: ObservedFileSystem, source: str, keep: str | None) -> None:
        """`keep`: the real folder inside which the installed tree keeps its paths (relative
        to `source`) and its links; None to keep nothing (every package copied)."""
        self.fs = fs
        self.source = source
        self.keep = keep
        self.held: dict[str, str] = {}  # slot -> the real folder it holds

    def lookup(self, arc: str, name: str) -> str | None:
        """The slot Node would reach for `name` from archive folder `arc` (None: not found)."""
        for folder in (arc, *arc_parents(arc)):
            if folder.rpartition("/")[2] != INSTALLED:
                slot = arc_join(folder, f"{INSTALLED}/{name}")
                if slot in self.held:
                    return slot
        return None

    def place(self, arc: str, name: str, path: str, real: str) -> Placed | None:
        """Where the package `name`, found at `path` (really `real`) from the package at
        archive folder `arc`, goes; None when Node already reaches it from there."""
        placed = self._place(arc, name, path, real)
        if placed is not None:
            self.held[placed.slot] = real
        return placed

    def _place(self, arc: str, name: str, path: str, real: str) -> Placed | None:
        hit = self.lookup(arc, name)
        nested = arc_join(arc, f"{INSTALLED}/{name}")
        keep = self.keep
        if keep is not None and is_within(path, keep):
            # Inside `keep` the installed tree is kept, links included (pnpm's sibling links),
            # even where a farther slot would also resolve: that is the layout the package
            # manager made and tested.
            slot = os_relpath(path, self.source)
            if hit is not None and _depth(hit) > _depth(slot):
                # A package copied from elsewhere sits closer than the installed path.
                return None if self.held[hit] == real else self._claim(nested, name)
            if slot in self.held:
                if self.held[slot] != real:  # pragma: no cover - two real folders for one path
                    raise DependencyError(f"two packages claim {slot}", package=name)
                return None
            if is_within(real, keep):
                return Placed(slot, os_relpath(real, self.source))
            return Placed(slot, slot)  # a link to a workspace package: its files replace it
        if hit is not None and self.held[hit] == real:
            return None
        top = f"{INSTALLED}/{name}"
        # An installed path inside `keep` may claim `top` later in the crawl.
        taken = keep is not None and self.fs.lexists(os.path.join(self.source, top))
        if hit is None and top not in self.held and not taken:
            return Placed(top, top)
        return self._claim(nested, name)

    def _claim(self, slot: str, name: str) -> Placed:
        if slot in self.held:  # pragma: no cover - Node would have found it on the way up
            raise DependencyError(f"two packages claim {slot}", package=name)
        return Placed(slot, slot)

    def check(self, edges: Sequence[Edge]) -> None:
        """Node's resolution inside the zip reaches, for every edge, the real package it
        reaches in the source tree."""
        for edge in edges:
            hit = self.lookup(edge.dependent, edge.name)
            if hit is None or self.held[hit] != edge.real:  # pragma: no cover - a bug in place
                raise DependencyError(
                    f"cannot lay out {edge.name!r} for {edge.dependent or 'the function'} so "
                    f"that Node finds {edge.real}; please report this with `lambdazip-tf plan` "
                    "output",
                    package=edge.name,
                )


def _depth(arc: str) -> int:
    return arc.count("/")
