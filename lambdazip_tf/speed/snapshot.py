"""What a build records for the next run of the same request (docs/design.md, "Fast paths").

Terraform runs the data source on every plan and refresh with the same query, so the same
request. After a successful build in external mode, the pipeline stores a snapshot under a key
made of the request, the working folder, SOURCE_DATE_EPOCH and the tool's code: the
file-system facts its selection read, the stat keys of every zipped file and where each sits in
its artifact, and the artifacts with their stat keys. replay.py checks it on the next run.

This module and replay.py must not import pydantic or the pipeline: the fast path answers
before either is loaded.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import os
import struct
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from .._version import __version__
from ..core.outputs import ArtifactFacts, Naming, build_options, output_folder
from .database import MARSHAL_VERSION
from .facts import artifact_key, pack_files, racy_facts, trusted_keys

if TYPE_CHECKING:  # the fast path loads this module without the content hash's
    from ..core.contenthash import ByteOptions

SNAPSHOT_FORMAT = "11"
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class RequestKey(NamedTuple):
    """What identifies a request across runs, and where its cache lives."""

    digest: str  # of the request, the working folder, the timestamp and the tool's code
    output_dir: str


def request_key(data: Any, cwd: str) -> RequestKey | None:
    """The key of a decoded request as Terraform sends it (an object of strings), for this
    tool's code; None for anything else, which only a full build can answer.

    A JSON object counts by its content, not its spelling: the data source's query and the
    provisioner's `jsonencode()` of the same map are the same request (`ensure`).
    """
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        return None
    material = [
        SNAPSHOT_FORMAT,
        __version__,
        _code_stamp(),
        json.dumps(data, sort_keys=True),
        cwd,
        os.environ.get("SOURCE_DATE_EPOCH"),
    ]
    key = hashlib.sha256(json.dumps(material).encode("utf-8", "surrogateescape")).hexdigest()
    return RequestKey(key, output_folder(data.get("output_path"), data.get("output_dir"), cwd))


def _code_stamp() -> list[tuple[str, int, int]]:
    """The package's own files' sizes and mtimes: an edited checkout (an editable install keeps
    its version string) must not be answered by snapshots the old code recorded."""
    stamp = []
    folders = [_PACKAGE]
    while folders:
        folder = folders.pop()
        with os.scandir(folder) as it:
            for item in it:
                if item.name.endswith(".py"):
                    st = item.stat()
                    stamp.append((os.path.relpath(item.path, _PACKAGE), st.st_size, st.st_mtime_ns))
                elif item.is_dir() and not item.name.startswith(("_", ".")):
                    folders.append(item.path)
    return sorted(stamp)


def encode_selection(
    facts: list[Any],
    listings: dict[str, str],
    paths: list[str],
    keys: list[tuple[int, ...]],
    recorded_ns: int,
) -> bytes | None:
    """The bulk of a snapshot: what the selection read, known before anything is packed (so a
    build encodes it on a thread while it packs), or None when its facts are racy."""
    if racy_facts(facts, recorded_ns):
        return None
    joined, stat_keys = pack_files(paths, trusted_keys(keys, recorded_ns))
    selection = {"facts": facts, "listings": listings, "paths": joined, "keys": stat_keys}
    return marshal.dumps(selection, MARSHAL_VERSION)


def artifact_rows(artifacts: list[tuple[ArtifactFacts, Naming]]) -> list[tuple[Any, ...]]:
    """The artifacts as a snapshot stores them: (facts, stat key of the file, naming)."""
    return [(tuple(facts), artifact_key(facts.path), tuple(naming)) for facts, naming in artifacts]


def encode(
    selection: bytes | None,
    artifacts: list[tuple[ArtifactFacts, Naming]],
    warnings: list[str],
    root: str,
    members: bytes,
    options: ByteOptions,
    layout_warnings: list[str],
) -> bytes | None:
    """A snapshot as stored in the cache, or None when `encode_selection` found it racy.

    Besides the selection and the artifacts, what the change path needs: the function's real
    path (the stat cache's root), each zipped file's artifact and member numbers (`members`), the
    options the artifacts were written with, and the warnings that depend on the selection
    alone (`layout_warnings`, which a patch keeps while it works out the size warnings anew).
    """
    if selection is None:
        return None
    data = {
        "selection": selection,
        "artifacts": artifact_rows(artifacts),
        "warnings": warnings,
        "build_options": build_options(options.described()),
        "rebuild": {
            "root": root,
            "members": members,
            "options": tuple(options),
            "layout_warnings": layout_warnings,
        },
    }
    return marshal.dumps(data, MARSHAL_VERSION)


def encode_update(
    snap: dict[str, Any],
    fresh: Mapping[int, tuple[int, ...]],
    recorded_ns: int,
    artifacts: list[tuple[ArtifactFacts, Naming]],
    warnings: list[str],
) -> bytes:
    """What the change path changed of a replayed snapshot: files' new stat keys (by number,
    with the racy rule), the artifacts and the warnings. Stored beside the snapshot, which
    stays as the full build wrote it (cache.Cache.update_snapshot)."""
    numbers = list(fresh)
    trusted = trusted_keys([fresh[n] for n in numbers], recorded_ns)
    overrides = {**snap.get("overrides", {}), **dict(zip(numbers, trusted, strict=True))}
    update = {"overrides": overrides, "artifacts": artifact_rows(artifacts), "warnings": warnings}
    return marshal.dumps(update, MARSHAL_VERSION)


def decode(data: bytes, update: bytes | None) -> dict[str, Any]:
    """A stored snapshot with its update applied (the errors of a corrupt one propagate)."""
    snap: dict[str, Any] = marshal.loads(data)
    snap.update(marshal.loads(snap.pop("selection")))
    if update is not None:
        changes = marshal.loads(update)
        keys = bytearray(snap["keys"])
        for number, key in changes["overrides"].items():
            struct.pack_into("=5q", keys, 40 * number, *key)
        snap.update(changes, keys=bytes(keys))
    return snap


def artifacts_of(
    snap: dict[str, Any],
) -> list[tuple[ArtifactFacts, tuple[int, int, int], Naming]]:
    """The recorded artifacts: (facts, the file's stat key when recorded, naming)."""
    return [
        (ArtifactFacts(*facts), (key[0], key[1], key[2]), Naming(*naming))
        for facts, key, naming in snap["artifacts"]
    ]
