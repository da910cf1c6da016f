"""Files forced into the zip by the request's `includes` (docs/design.md, "Selection").

`includes` are gitignore-style patterns over archive paths, matched after the excludes: a
file they match ships even where an exclude (a default one included) or the crawl left it
out, and a link they match is resolved by the link policy like any other. A pattern
reaches into the folder of installed dependencies only when it starts with that folder's
name, so that `*.graphql` does not walk twenty thousand installed files.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

import pathspec

from .entries import Entry
from .paths import arc_parents
from .runtime import Forced
from .selection import Collector, ExcludeRules

_GLOB = re.compile(r"[*?\[\\]")


def _bases(patterns: Sequence[str], installed: frozenset[str]) -> set[str]:
    """The paths (archive paths) each pattern can match at or below: "" for any depth.

    By hand: pathspec matches paths but says nothing of where a pattern's matches can lie.
    gitignore's rule is kept: a pattern with a slash before its end is anchored at the root,
    one without matches at any depth."""
    bases = set()
    for pattern in patterns:
        if pattern.startswith("!") or not pattern.strip() or pattern.startswith("#"):
            continue
        body = pattern.strip().rstrip("/")
        anchored = "/" in body
        parts = body.lstrip("/").split("/")
        fixed = []
        for part in parts if anchored else []:
            if _GLOB.search(part) or part == "**":
                break
            fixed.append(part)
        bases.add("/".join(fixed))
    # A base below another is walked with it; installed dependencies only from a base
    # inside them.
    return {b for b in bases if not any(_covers(other, b, installed) for other in bases)}


def _covers(outer: str, inner: str, installed: frozenset[str]) -> bool:
    if outer == inner or _in_installed(inner, installed) != _in_installed(outer, installed):
        return False
    return outer == "" or inner.startswith(outer + "/")


def _in_installed(arc: str, installed: frozenset[str]) -> bool:
    return arc.partition("/")[0] in installed


def add_includes(
    collector: Collector,
    patterns: Sequence[str],
    roots: tuple[str, str],
    installed: frozenset[str],
    skip: frozenset[str],
    rules: ExcludeRules,
) -> list[Forced]:
    """Add every file (and link) `patterns` match that is not in the zip yet. `roots` are the
    real folders that archive paths start from: the function's own files, and the package
    folder, which holds the folders of installed dependencies named `installed`. A link goes
    through the link policy like any other (selection.Collector.resolve_links), with `rules`
    for what a copied target may hold."""
    if not patterns:
        return []
    spec = pathspec.GitIgnoreSpec.from_lines(patterns)
    fs = collector.fs
    forced: list[Forced] = []
    for base in sorted(_bases(patterns, installed)):
        if ".git" in base.split("/"):
            continue  # .git never ships: its config may hold a remote's credentials
        in_installed = _in_installed(base, installed)
        root = roots[1] if in_installed else roots[0]
        start = os.path.join(root, base) if base else root
        if base and fs.realpath(os.path.dirname(start)) != os.path.dirname(start):
            # The way there goes through a link (a package manager's): what is behind it
            # is selected, or refused, as the link's target.
            continue
        if base and (fs.isfile(start) or fs.realpath(start) != start):
            # A pattern naming one file or link: looked for in its folder.
            stack = [(os.path.dirname(start), base.rpartition("/")[0])]
            only = os.path.basename(start)
        elif fs.isdir(start):
            stack, only = [(start, base)], None
        else:
            continue
        while stack:
            folder, folder_arc = stack.pop()
            for item in fs.scandir(folder):
                if only is not None and item.name != only:
                    continue
                arc = f"{folder_arc}/{item.name}" if folder_arc else item.name
                if item.is_dir(follow_symlinks=False):
                    # Installed dependencies only for a pattern that names their folder; .git
                    # never ships.
                    if item.path in skip or item.name == ".git":
                        continue
                    if only is None and (item.name not in installed or in_installed):
                        stack.append((item.path, arc))
                    continue
                if (
                    arc in collector.entries
                    or not spec.match_file(arc)
                    or _under_link(arc, collector.entries)
                ):
                    continue
                if item.is_symlink():
                    collector.add_found_link(arc, item.path, root, rules)
                elif item.is_file(follow_symlinks=False):
                    collector.add_file(arc, item.path, item.stat(follow_symlinks=False))
                else:
                    continue  # a FIFO or a socket: never opened
                forced.append(Forced(arc, "includes"))
    if forced:
        collector.include(f.arc for f in forced)
    return forced


def _under_link(arc: str, entries: dict[str, Entry]) -> bool:
    """Whether a folder above `arc` is stored as a link (a package manager's link to a
    package): the file is in the zip already, at its real folder's path, if its package ships."""
    return any(
        (entry := entries.get(folder)) is not None and entry.kind == "link"
        for folder in arc_parents(arc)
        if folder
    )
