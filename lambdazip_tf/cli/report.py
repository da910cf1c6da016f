"""The dry run's report (`lambdazip-tf plan`), as text for people and as JSON for tools."""

from __future__ import annotations

from typing import Any

from ..core.entries import Entry
from ..core.outputs import ArtifactFacts
from ..pipeline import Outcome


def plan_json(outcome: Outcome) -> dict[str, Any]:
    """Everything `plan` knows, as plain JSON types."""
    layout = outcome.layout

    def zip_json(facts: ArtifactFacts, entries: list[Entry]) -> dict[str, Any]:
        return {
            "path": facts.path,
            "content_hash": facts.content_hash,
            "current": facts.reused,
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
        "content_hash": outcome.content_hash,
        "current": outcome.current,
        "function": zip_json(outcome.function, layout.function),
        "packages": [
            {"name": p.name, "version": p.version, "path": p.arc, "files": p.files, "bytes": p.size}
            for p in layout.packages
        ],
        "excluded": [{"path": x.arc, "reason": x.reason} for x in layout.excluded],
    }
    if outcome.layer is not None and layout.layer is not None:
        data["layer"] = zip_json(outcome.layer, layout.layer)
    return data


def plan_text(outcome: Outcome) -> str:
    """A readable dry-run report."""
    layout = outcome.layout
    lines = [
        f"source:       {layout.context.source} (runtime {layout.context.runtime})",
        f"content hash: {outcome.content_hash}",
    ]
    parts: list[tuple[str, ArtifactFacts, list[Entry]]] = [
        ("function", outcome.function, layout.function)
    ]
    if outcome.layer is not None and layout.layer is not None:
        parts.append(("layer", outcome.layer, layout.layer))
    for label, facts, entries in parts:
        state = "current, nothing to do" if facts.reused else "would be built"
        lines += [
            "",
            f"{label} zip:  {facts.path} ({state})",
            f"  {facts.file_count} files, {facts.symlink_count} links, "
            f"{facts.unzipped_size} bytes unzipped",
        ]
        for e in entries:
            kind = {"file": "f", "dir": "d", "link": "l"}[e.kind]
            size = str(e.size) if e.kind == "file" else "-"
            arrow = f" -> {e.target}" if e.kind == "link" else ""
            lines.append(f"  {kind} {e.mode:04o} {size:>10}  {e.zip_name}{arrow}")
    if layout.packages:
        lines += ["", f"packages ({len(layout.packages)}):"]
        for p in layout.packages:
            lines.append(f"  {p.name}@{p.version}  {p.files} files  {p.size} bytes  {p.arc}")
    lines += ["", f"excluded ({len(layout.excluded)}):"]
    lines += [f"  {x.arc}  ({x.reason})" for x in layout.excluded] or ["  nothing"]
    return "\n".join(lines) + "\n"
