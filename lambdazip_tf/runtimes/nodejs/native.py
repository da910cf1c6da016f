"""Node.js's native code after the crawl: prebuilt binaries for several platforms, and the fix
for an addon the target cannot load (docs/design.md, "The target platform")."""

from __future__ import annotations

import re
from collections.abc import Sequence

from ...core.binaries import Binary, Target
from ...core.entries import Entry, Excluded, PackageInfo
from ...core.native import OWN_FILES, own_fix, platform_error
from ...core.runtime import Alternatives, Refusal
from ...errors import LambdazipError
from .lockfiles import Lockfile, install_command
from .platforms import node_cpu

_PREBUILDS = re.compile(r"(^|/)prebuilds/([^/]+)/")


def _fitting_tag(tag: str, target: Target) -> bool:
    """A prebuilds folder's name (node-gyp-build: "linux-x64", "darwin-arm64+x64") fits?"""
    platform, _, archs = tag.partition("-")
    return platform == "linux" and node_cpu(target) in archs.split("+")


def other_prebuilds(entries: Sequence[Entry], target: Target) -> list[Excluded]:
    """Other platforms' prebuilt binaries (`prebuilds/<platform>-<arch>/`, as node-gyp-build
    loads them), where the target's are beside them: files and folders alike."""
    tags: dict[str, set[str]] = {}  # prebuilds folder -> the platforms it holds
    for entry in entries:
        found = _PREBUILDS.search(entry.arc)
        if found and entry.kind == "file":
            tags.setdefault(entry.arc[: found.start(2)], set()).add(found.group(2))
    if not tags:
        return []
    left_out = []
    for entry in entries:
        found = _PREBUILDS.search(entry.arc + "/" if entry.kind == "dir" else entry.arc)
        if not found:
            continue
        folder, tag = entry.arc[: found.start(2)], found.group(2)
        fitting = any(_fitting_tag(t, target) for t in tags.get(folder, ()))
        if fitting and not _fitting_tag(tag, target):
            left_out.append(Excluded(entry.arc, f"prebuilt for {tag}, not {target}", entry.source))
    return left_out


def _owner(arc: str, packages: Sequence[PackageInfo]) -> PackageInfo | None:
    best = None
    for package in packages:
        if arc.startswith(package.arc + "/") and (best is None or len(package.arc) > len(best.arc)):
            best = package
    return best


def refusal(packages: Sequence[PackageInfo], lockfile: Lockfile, target: Target) -> Refusal:
    """The error for a native file the target cannot load, naming the package that ships it
    and the fix for the package manager in use."""

    def refuse(entry: Entry, found: Binary, alternatives: Alternatives | None) -> LambdazipError:
        owner = _owner(entry.arc, packages)
        who = f"package {owner.name}@{owner.version}" if owner else OWN_FILES
        if alternatives is not None:
            who, fix = alternatives.owner, alternatives.fix
        elif owner is None:
            fix = own_fix(target)
        elif "/build/" in entry.arc:  # compiled at install (node-gyp): only a rebuild there helps
            fix = f"install it on {target} (in a Linux container), where it is built for Lambda"
        else:
            fix = install_command(lockfile, target)
        return platform_error(who, entry, found, target, fix, owner.name if owner else None)

    return refuse
