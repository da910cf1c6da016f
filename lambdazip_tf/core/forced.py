"""Files forced into the zip: the request's `includes`, and generated code a package needs but
no package.json declares (docs/design.md, "Selection").

`includes` are gitignore-style patterns over archive paths, matched after the excludes: a
file they match ships even where an exclude (a default one included) or the crawl left it
out, and a link they match is resolved by the link policy like any other. A pattern
reaches into node_modules only when it starts with `node_modules/`, so that `*.graphql`
does not walk twenty thousand installed files.

Prisma: `@prisma/client` requires `.prisma/client`, which `prisma generate` (or the
client's own install) writes into node_modules beside it. When `@prisma/client` ships, that
folder ships with it, placed where Node finds it from the client; of its query engines only
those the target can load, when one can.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import NamedTuple

import pathspec

from .entries import Entry, PackageInfo, file_entry
from .nodejs import resolve
from .platform import Alternatives, Target
from .selection import Collector, ExcludeRules

_GLOB = re.compile(r"[*?\[\\]")
PRISMA_CLIENT = "@prisma/client"
PRISMA_REASON = f"generated Prisma client, required by {PRISMA_CLIENT}"


class Forced(NamedTuple):
    """A path in the zip that is there although nothing declares it, and why (for `plan`)."""

    arc: str
    reason: str


def _bases(patterns: Sequence[str]) -> set[str]:
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
    # A base below another is walked with it; node_modules only from a base inside it.
    return {b for b in bases if not any(_covers(other, b) for other in bases)}


def _covers(outer: str, inner: str) -> bool:
    if outer == inner or _in_node_modules(inner) != _in_node_modules(outer):
        return False
    return outer == "" or inner.startswith(outer + "/")


def _in_node_modules(arc: str) -> bool:
    return arc == "node_modules" or arc.startswith("node_modules/")


def add_includes(
    collector: Collector,
    patterns: Sequence[str],
    roots: tuple[str, str],
    skip: frozenset[str],
    rules: ExcludeRules,
) -> list[Forced]:
    """Add every file (and link) `patterns` match that is not in the zip yet. `roots` are the
    real folders that archive paths start from: the function's own files, and node_modules'
    parent (the package folder). A link goes through the link policy like any other
    (selection.Collector.resolve_links), with `rules` for what a copied target may hold."""
    if not patterns:
        return []
    spec = pathspec.GitIgnoreSpec.from_lines(patterns)
    fs = collector.fs
    forced: list[Forced] = []
    for base in sorted(_bases(patterns)):
        in_node_modules = _in_node_modules(base)
        root = roots[1] if in_node_modules else roots[0]
        start = os.path.join(root, base) if base else root
        if base and fs.realpath(os.path.dirname(start)) != os.path.dirname(start):
            # The way there goes through a link (pnpm's node_modules/x): what is behind it
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
                    # node_modules only for a pattern that names it; .git never ships.
                    if item.path in skip or item.name == ".git":
                        continue
                    if only is None and (item.name != "node_modules" or in_node_modules):
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
                    st = item.stat(follow_symlinks=False)
                    collector.entries[arc] = file_entry(arc, item.path, st)
                else:
                    continue  # a FIFO or a socket: never opened
                forced.append(Forced(arc, "includes"))
    if forced:
        shipped = {f.arc for f in forced}
        collector.excluded = [x for x in collector.excluded if x.arc not in shipped]
    return forced


def _under_link(arc: str, entries: dict[str, Entry]) -> bool:
    """Whether a folder above `arc` is stored as a link (pnpm's node_modules/x): the file is
    in the zip already, at its real folder's path, if its package ships."""
    folder = arc.rpartition("/")[0]
    while folder:
        entry = entries.get(folder)
        if entry is not None and entry.kind == "link":
            return True
        folder = folder.rpartition("/")[0]
    return False


def add_prisma(
    collector: Collector, packages: Sequence[PackageInfo], rules: ExcludeRules
) -> tuple[list[Forced], list[str]]:
    """The generated `.prisma/client` of each shipped `@prisma/client`, beside it; and a
    warning for a client with none, whose `require("@prisma/client")` fails at cold start.
    A warning, not a refusal: with Prisma's newer generator (`prisma-client`, output
    elsewhere) the function imports its own generated code and only the runtime from
    `@prisma/client`."""
    forced = []
    warnings = []
    for package in packages:
        if package.name != PRISMA_CLIENT or not package.arc.endswith(PRISMA_CLIENT):
            continue
        found = resolve(collector.fs, ".prisma/client", package.path)
        if found is None:
            warnings.append(
                f"{PRISMA_CLIENT}@{package.version} ships without a generated client "
                f"(no .prisma/client beside {package.path}): require('{PRISMA_CLIENT}') "
                "fails at cold start unless the client is generated elsewhere; run `npx "
                "prisma generate` (pnpm caches install scripts' side effects and may skip it)"
            )
            continue
        arc = package.arc.removesuffix(PRISMA_CLIENT) + ".prisma/client"
        if arc in collector.entries:
            continue
        collector.add_tree(found[1], arc, rules, primary=False)
        forced.append(Forced(arc, PRISMA_REASON))
    return forced, warnings


# The binaryTargets entry of Lambda's Node.js runtimes (Amazon Linux 2023, OpenSSL 3).
_PRISMA_TARGETS = {"x86_64": "rhel-openssl-3.0.x", "arm64": "linux-arm64-openssl-3.0.x"}


def prisma_alternatives(forced: Sequence[Forced], target: Target) -> dict[str, Alternatives]:
    """Each generated Prisma client's folder, whose query engines are alternatives for several
    platforms (`binaryTargets` lists the developer's machine and Lambda's): only those the
    target can load ship, and with none, the build names Prisma's fix."""
    fix = (
        f'add "{_PRISMA_TARGETS[target.architecture]}" to binaryTargets in schema.prisma and '
        "run `npx prisma generate`"
    )
    return {
        f.arc + "/": Alternatives("the generated Prisma client", "Prisma query engine", fix)
        for f in forced
        if f.reason == PRISMA_REASON
    }
