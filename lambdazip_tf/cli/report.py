"""The dry run's report (`lambdazip-tf plan`): a summary for people, and JSON for tools.

The text leads with what a person decides on: each zip and its size, the largest packages and
why each ships, what was left out and how much, and warnings. Every file is listed only with
`--files`, so that a 25,000-file function's plan fits on a screen or two.
"""

from __future__ import annotations

import os
from typing import Any

from ..core.binaries import Target
from ..core.entries import Entry, PackageInfo
from ..core.inventory import Inventory
from ..core.outputs import ArtifactFacts
from ..core.runtime import Forced, Native
from ..pipeline import Outcome

TOP_PACKAGES = 25  # the largest packages the summary names; the rest are counted
TOP_DEV_ONLY = 5
TOP_FORCED = 10


def human(size: float) -> str:
    """A size in bytes as a person reads it: 512 B, 3.4 KB, 12.0 MB (powers of 1024)."""
    for unit in ("B", "KB", "MB"):
        if size < 1024 or unit == "MB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def why(package: PackageInfo) -> str:
    """Why a package ships: the chain from the file that declares it down to it."""
    return " > ".join(package.chain)


def _inventory(outcome: Outcome) -> Inventory:
    return outcome.inventory or Inventory([], [], {})


def _zips(outcome: Outcome) -> list[tuple[str, ArtifactFacts, list[Entry]]]:
    return [
        (part.label, facts, part.entries)
        for part, facts in zip(outcome.layout.parts, outcome.artifacts, strict=True)
    ]


def plan_json(outcome: Outcome) -> dict[str, Any]:
    """Everything `plan` knows, as plain JSON types."""
    layout = outcome.layout
    found = _inventory(outcome)

    def zip_json(label: str, facts: ArtifactFacts, entries: list[Entry]) -> dict[str, Any]:
        return {
            "path": facts.path,
            "content_hash": facts.content_hash,
            "current": facts.reused,
            "size": facts.size if facts.reused else None,
            "estimated_size": found.estimated.get(label),
            "file_count": facts.file_count,
            "symlink_count": facts.symlink_count,
            "unzipped_size": facts.unzipped_size,
            "entries": [
                {"path": e.zip_name, "kind": e.kind, "mode": f"{e.mode:04o}", "size": e.size}
                | ({"target": e.target} if e.kind == "link" else {})
                for e in entries
            ],
        }

    data: dict[str, Any] = {
        "source_dir": layout.context.source,
        "runtime": layout.context.runtime,
        "package_dir": layout.context.packages_from,
        "target": str(_target(outcome)),
        "architecture": _target(outcome).architecture,
        "content_hash": outcome.content_hash,
        "current": outcome.current,
        "packages": [
            {
                "name": p.name,
                "version": p.version,
                "path": p.arc,
                "files": p.files,
                "bytes": p.size,
                "why": list(p.chain),
            }
            for p in sorted(layout.packages, key=lambda p: (-p.size, p.arc))
        ],
        "native": [n._asdict() for n in layout.native],
        "forced": [f._asdict() for f in layout.forced],
        "excluded": [{"path": x.arc, "reason": x.reason} for x in layout.excluded],
        "left_out": [g._asdict() for g in found.left_out],
        "dev_only": [p._asdict() for p in found.dev_only],
        "notes": list(found.notes),
        "warnings": list(outcome.warnings),
    }
    for label, facts, entries in _zips(outcome):
        data[label] = zip_json(label, facts, entries)
    return data


def plan_text(outcome: Outcome, *, files: bool = False) -> str:
    """A readable dry-run report; with `files`, every entry and every left-out path too."""
    layout = outcome.layout
    found = _inventory(outcome)
    lines = [f"source:       {layout.context.source} (runtime {layout.context.runtime})"]
    runtime = layout.context.chosen_runtime
    if layout.context.package_dir and runtime is not None:
        declared = os.path.join(layout.context.package_dir, runtime.manifest)
        lines.append(f"dependencies: {declared} (package_dir)")
    for label, facts, _ in _zips(outcome):
        if facts.reused:
            size, state = f"{human(facts.size)} zipped", "current, nothing to do"
        else:
            estimate = found.estimated.get(label, 0)
            size, state = f"about {human(estimate)} zipped", "would be built"
        lines += [
            f"{label + ' zip:':13} {facts.path} ({state})",
            f"              {size}, {facts.file_count} files, {facts.symlink_count} links, "
            f"{human(facts.unzipped_size)} unzipped",
        ]
    lines.append(f"content hash: {outcome.content_hash}")
    lines.append(f"target:       {_target(outcome)}")
    lines += _packages(layout.packages)
    lines += _native(layout.native)
    lines += _forced(layout.forced)
    lines += _left_out(found)
    lines += ["", "notes:"] + [f"  {n}" for n in found.notes] if found.notes else []
    lines += ["", "warnings:"] + [f"  {w}" for w in outcome.warnings] if outcome.warnings else []
    if files:
        lines += _files(outcome)
    else:
        lines += ["", "every file and every left-out path: lambdazip-tf plan --files"]
    return "\n".join(lines) + "\n"


def _target(outcome: Outcome) -> Target:
    return outcome.layout.context.target


def _native(native: list[Native]) -> list[str]:
    if not native:
        return []
    lines = ["", "native code (built for, what):"]
    width = max(len(n.built_for) for n in native)
    lines += [f"  {n.built_for:<{width}}  {n.kind:7}  {n.name}" for n in native]
    return lines


def _forced(forced: list[Forced]) -> list[str]:
    if not forced:
        return []
    lines = ["", "in, though no package declares them:"]
    lines += [f"  {f.arc}  ({f.reason})" for f in forced[:TOP_FORCED]]
    if len(forced) > TOP_FORCED:
        lines.append(f"  and {len(forced) - TOP_FORCED} more (lambdazip-tf plan --json)")
    return lines


def _packages(packages: list[PackageInfo]) -> list[str]:
    if not packages:
        return []
    total = sum(p.size for p in packages)
    ranked = sorted(packages, key=lambda p: (-p.size, p.arc))
    lines = ["", f"packages ({len(packages)}, {human(total)}), largest first:"]
    width = max(len(f"{p.name}@{p.version}") for p in ranked[:TOP_PACKAGES])
    for p in ranked[:TOP_PACKAGES]:
        name = f"{p.name}@{p.version}"
        lines.append(f"  {human(p.size):>9} {p.files:6} files  {name:<{width}}  {why(p)}")
    rest = ranked[TOP_PACKAGES:]
    if rest:
        rest_size = human(sum(p.size for p in rest))
        lines.append(f"  and {len(rest)} smaller packages, {rest_size} ({len(packages)} in all)")
    return lines


def _left_out(found: Inventory) -> list[str]:
    lines = ["", "left out:"]
    if found.dev_only:
        files = sum(p.files for p in found.dev_only)
        size = human(sum(p.size for p in found.dev_only))
        names = ", ".join(f"{p.name}@{p.version}" for p in found.dev_only[:TOP_DEV_ONLY])
        more = (
            f" and {len(found.dev_only) - TOP_DEV_ONLY} more"
            if len(found.dev_only) > TOP_DEV_ONLY
            else ""
        )
        lines.append(
            f"  {size:>9} {files:6} files  {len(found.dev_only)} dev-only packages, installed "
            f"but not shipped: {names}{more}"
        )
    for group in found.left_out:
        paths = f"{group.paths} path{'s' if group.paths != 1 else ''}"
        lines.append(f"  {human(group.size):>9} {group.files:6} files  {group.reason} ({paths})")
    if len(lines) == 2:
        lines.append("  nothing")
    return lines


def _files(outcome: Outcome) -> list[str]:
    lines = []
    for label, _, entries in _zips(outcome):
        lines += ["", f"{label} zip entries ({len(entries)}):"]
        for e in entries:
            kind = {"file": "f", "dir": "d", "link": "l"}[e.kind]
            size = str(e.size) if e.kind == "file" else "-"
            arrow = f" -> {e.target}" if e.kind == "link" else ""
            lines.append(f"  {kind} {e.mode:04o} {size:>10}  {e.zip_name}{arrow}")
    excluded = outcome.layout.excluded
    lines += ["", f"left out ({len(excluded)}):"]
    lines += [f"  {x.arc}  ({x.reason})" for x in excluded] or ["  nothing"]
    return lines
