"""Native files in the zips: each judged by its first bytes for the target
(docs/design.md, "The target platform").

Every shipped file whose name says it may hold native code (`binaries.NATIVE`) is read once: an
ELF for another machine, a Mach-O or a PE file is refused, with the fix the runtime names; a
file so named that is not a binary at all is not judged. Where a runtime says a folder holds
alternatives for several platforms (`Alternatives`), those the target cannot load are left out
when one it can is beside them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from ..errors import LambdazipError, PlatformError
from .binaries import NATIVE, Binary, Target, binary, file_head
from .entries import Entry, Excluded, PackageInfo
from .runtime import Alternatives, Native, Refusal


class Judged(NamedTuple):
    """The entries that ship, what was left out, and what each native file kept was built for
    (by archive path)."""

    entries: list[Entry]
    left_out: list[Excluded]
    built: dict[str, Binary]


def judge(
    entries: Sequence[Entry],
    target: Target,
    alternatives: Mapping[str, Alternatives],
    refusal: Refusal,
) -> Judged:
    """Refuse each native file the target cannot load, except in an `alternatives` folder
    holding one it can, where the others are left out. Each file's first bytes are read once."""
    judged: dict[str, Binary | None] = {}

    def read(entry: Entry) -> Binary | None:
        if entry.arc not in judged:
            # An unreadable file reads as no bytes: the build names it when it packs it.
            judged[entry.arc] = binary(file_head(entry.source or ""), target)
        return judged[entry.arc]

    def group_of(entry: Entry) -> str | None:
        return next((f for f in alternatives if entry.arc.startswith(f)), None)

    natives = [e for e in entries if e.kind == "file" and NATIVE.search(e.arc)]
    fitting_groups = set()  # alternatives folders holding a binary the target can load
    for entry in natives if alternatives else ():
        group = group_of(entry)
        if group is not None:
            found = read(entry)
            if found is not None and found.loadable:
                fitting_groups.add(group)
    unloadable: set[str] = set()
    left_out: list[Excluded] = []
    built: dict[str, Binary] = {}
    for entry in natives:
        found = read(entry)
        if found is None:
            continue
        if found.loadable:
            built[entry.arc] = found
            continue
        group = group_of(entry)
        if group is None or group not in fitting_groups:
            raise refusal(entry, found, alternatives.get(group) if group is not None else None)
        what = alternatives[group].binaries
        left_out.append(
            Excluded(entry.arc, f"{what} for another platform, not {target}", entry.source)
        )
        unloadable.add(entry.arc)
    keep = [e for e in entries if e.arc not in unloadable] if unloadable else list(entries)
    return Judged(keep, left_out, built)


OWN_FILES = "the function's own files"


def own_fix(target: Target) -> str:
    """What fixes a native file no package ships."""
    return f"build it on {target}, or leave it out with excludes"


def platform_packages(packages: Sequence[PackageInfo]) -> list[Native]:
    """Every shipped package that declares the platform it is built for, with it, by archive
    path (the build has refused any the target cannot load), for `plan`."""
    return [
        Native("package", f"{p.name}@{p.version}", p.platform)
        for p in sorted(packages, key=lambda p: p.arc)
        if p.platform
    ]


def own_refusal(target: Target) -> Refusal:
    """The refusal for native files among the function's own (runtime files)."""

    def refuse(entry: Entry, found: Binary, _: Alternatives | None) -> LambdazipError:
        return platform_error(OWN_FILES, entry, found, target, own_fix(target))

    return refuse


def platform_error(
    who: str, entry: Entry, found: Binary, target: Target, fix: str, package: str | None = None
) -> PlatformError:
    """One line: who ships which file, what it was built for, the target, and the fix."""
    return PlatformError(
        f"{who} ships {entry.arc}, a {found.machine} binary, which {target} cannot load: {fix}",
        package,
    )
