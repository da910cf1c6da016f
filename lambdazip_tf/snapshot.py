"""The fast paths of external-program mode (DESIGN 7; issue 5).

Terraform runs the data source on every plan and refresh with the same query, so the same stdin
text. After a successful build, the pipeline stores a snapshot under a key made of that text, the
working folder, SOURCE_DATE_EPOCH and the tool's version: the file-system facts its selection read
(fsview.py), the stat keys of every zipped file and where each sits in its artifact, the
artifacts' stat keys and the result. The next run with the same key replays those facts:

- all hold and no zipped file changed: the previous result is printed as it is (the no-op);
- all hold but some zipped files changed: the selection is the same, so the change path
  (incremental.py) patches only those files' members into new artifacts;
- anything else: the full build.

This module must not import pydantic or the pipeline: skipping their import is a third of what the
fast path saves. Anything that fails here (no cache, a changed fact, a corrupt snapshot) means
"take the full path", never an error.
"""

from __future__ import annotations

import hashlib
import json
import logging
import marshal
import os
import sqlite3
import struct
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

from . import __version__
from .fsview import (
    MARSHAL_VERSION,
    changed_files,
    pack_files,
    racy_facts,
    trusted_keys,
    zip_key,
)

log = logging.getLogger(__name__)

DEFAULT_OUTPUT_DIR = ".lambdazip"
SNAPSHOT_FORMAT = "6"
CACHE_NAME = ".lambdazip-cache.sqlite3"
KEEP_RECENT_NS = 3600 * 1_000_000_000  # never prune an artifact used in the last hour


def output_dir_for(
    output_path: str | os.PathLike[str] | None,
    output_dir: str | os.PathLike[str] | None,
    cwd: str | os.PathLike[str],
) -> str:
    """Where artifacts and the cache go (DESIGN 3): beside output_path, or output_dir."""
    if output_path:
        return os.path.dirname(os.path.join(cwd, output_path))
    return os.path.join(cwd, output_dir or DEFAULT_OUTPUT_DIR)


def snapshot_key(text: str, cwd: str) -> str:
    """What identifies a request as Terraform sends it, for this tool version.

    A JSON object counts by its content, not its spelling: the data source's query and the
    provisioner's `jsonencode()` of the same map are the same request (`ensure`).
    """
    try:
        request = json.loads(text)
        canonical = json.dumps(request, sort_keys=True) if isinstance(request, dict) else text
    except ValueError:
        canonical = text
    material = [
        SNAPSHOT_FORMAT,
        __version__,
        _code_stamp(),
        canonical,
        cwd,
        os.environ.get("SOURCE_DATE_EPOCH"),
    ]
    return hashlib.sha256(json.dumps(material).encode("utf-8", "surrogateescape")).hexdigest()


def _code_stamp() -> list[tuple[str, int, int]]:
    """This package's own files' sizes and mtimes: an edited checkout (an editable install keeps
    its version string) must not be answered by snapshots the old code recorded."""
    folder = os.path.dirname(os.path.abspath(__file__))
    with os.scandir(folder) as it:
        return sorted(
            (item.name, item.stat().st_size, item.stat().st_mtime_ns)
            for item in it
            if item.name.endswith(".py")
        )


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


def encode(
    selection: bytes | None,
    result: dict[str, str],
    artifacts: list[tuple[str, tuple[str | None, str, str], str]],
    warnings: list[str],
    rebuild: dict[str, Any],
) -> bytes | None:
    """A snapshot as stored in the cache, or None when `encode_selection` found it racy.

    `artifacts` holds each artifact's (path, naming, content hash); `rebuild` what the change
    path needs besides (incremental.py): the function's real path, each file's artifact and
    member numbers, and the content hash options (the compression level and zip timestamp).
    """
    if selection is None:
        return None
    data = {
        "selection": selection,
        "result": result,
        "artifacts": [
            (path, artifact_key(path), naming, digest) for path, naming, digest in artifacts
        ],
        "warnings": warnings,
        "rebuild": rebuild,
    }
    return marshal.dumps(data, MARSHAL_VERSION)


def encode_update(
    snap: dict[str, Any],
    fresh: Mapping[int, tuple[int, ...]],
    recorded_ns: int,
    artifacts: list[Any],
    result: dict[str, str],
    warnings: list[str],
) -> bytes:
    """What the change path changed of a replayed snapshot: files' new stat keys (by number,
    with the racy rule), the artifacts, result and warnings. Stored beside the snapshot, which
    stays as the full build wrote it (cache.update_snapshot)."""
    numbers = list(fresh)
    trusted = trusted_keys([fresh[n] for n in numbers], recorded_ns)
    overrides = {**snap.get("overrides", {}), **dict(zip(numbers, trusted, strict=True))}
    update = {
        "overrides": overrides,
        "artifacts": artifacts,
        "result": result,
        "warnings": warnings,
    }
    return marshal.dumps(update, MARSHAL_VERSION)


def _apply_update(snap: dict[str, Any], update: dict[str, Any]) -> None:
    keys = bytearray(snap["keys"])
    for number, key in update["overrides"].items():
        struct.pack_into("=5q", keys, 40 * number, *key)
    snap.update(update, keys=bytes(keys))


def artifact_key(path: str) -> tuple[int, int, int]:
    """The artifact at `path`'s fsview.zip_key."""
    return zip_key(os.stat(path))


class Replay(NamedTuple):
    """A snapshot whose selection still stands, and the files that changed since it was taken."""

    database: str
    key: str
    snap: dict[str, Any]
    changed: list[int]  # numbers of the zipped files whose stat key differs
    started_ns: int  # taken before any file was checked (the racy rule, for their new keys)


def replay(text: str, cwd: str) -> Replay | None:
    """Re-check the last build of this request (same stdin, folder, version).

    None when there is no usable snapshot or the selection may have changed (a folder's listing,
    a probe, a package.json, an artifact); otherwise which zipped files changed: none means the
    recorded result stands as it is (see `current_result`).
    """
    try:
        request = json.loads(text)
    except ValueError:
        return None
    if not isinstance(request, dict) or not all(isinstance(v, str) for v in request.values()):
        return None
    folder = output_dir_for(request.get("output_path"), request.get("output_dir"), cwd)
    database = os.path.join(folder, CACHE_NAME)
    key = snapshot_key(text, cwd)
    started_ns = time.time_ns()
    try:
        row = _load(database, key)
        if row is None:
            return None
        snap = marshal.loads(row[0])
        snap.update(marshal.loads(snap.pop("selection")))
        if row[2] is not None:
            _apply_update(snap, marshal.loads(row[2]))
        for path, expected, *_ in snap["artifacts"]:
            if artifact_key(path) != tuple(expected):
                return None
        changed = changed_files(snap["facts"], snap["paths"], snap["keys"], snap["listings"])
    except (sqlite3.Error, OSError, ValueError, EOFError, TypeError, KeyError, struct.error) as exc:
        log.debug("fast path not taken: %s", exc)
        return None
    if changed is None:
        return None
    if not changed and time.time_ns() - row[1] > KEEP_RECENT_NS // 4:
        _mark_used(database, key, [path for path, *_ in snap["artifacts"]])
    return Replay(database, key, snap, changed, started_ns)


class FastAnswer(NamedTuple):
    """What a fast path answered: the result, its warnings (already logged), and whether the
    recorded artifacts were current (False: the change path wrote new ones)."""

    result: dict[str, str]
    warnings: list[str]
    current: bool


def fast_answer(text: str, cwd: str) -> FastAnswer | None:
    """The no-op or the change path for a request (external mode, `ensure --request-json`), or
    None when only a full build can answer."""
    found = replay(text, cwd)
    if found is None:
        return None
    answer = current_result(found)
    current = answer is not None
    if answer is None:
        from .incremental import rebuild  # noqa: PLC0415 - it imports this module; files changed

        answer = rebuild(found)
    if answer is None:
        return None
    result, warnings = answer
    for warning in warnings:
        log.warning("%s", warning)
    return FastAnswer(result, warnings, current)


def current_result(found: Replay) -> tuple[dict[str, str], list[str]] | None:
    """The recorded (result, warnings) when no zipped file changed either."""
    if found.changed:
        return None
    return dict(found.snap["result"]), list(found.snap["warnings"])


def _load(database: str, key: str) -> tuple[Any, Any, Any] | None:
    """(data, used_ns, update) of a snapshot, read without writing (None: no cache or no
    snapshot)."""
    if os.environ.get("LAMBDAZIP_NO_CACHE") or not os.path.isfile(database):
        return None
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    try:
        row = db.execute(
            "SELECT s.data, s.used_ns, u.data FROM snapshots s "
            "LEFT JOIN snapshot_updates u ON u.key = s.key WHERE s.key = ?",
            (key,),
        ).fetchone()
    finally:
        db.close()
    return None if row is None else (row[0], row[1], row[2])


def _mark_used(database: str, key: str, artifacts: list[str]) -> None:
    """Keep what the fast path returned from being pruned (at most one write in 15 minutes)."""
    try:
        db = sqlite3.connect(database, timeout=5, isolation_level=None)
        try:
            now = time.time_ns()
            db.execute("BEGIN IMMEDIATE")
            db.executemany(
                "UPDATE artifacts SET used_ns = ? WHERE path = ?",
                [(now, path) for path in artifacts],
            )
            db.execute("UPDATE snapshots SET used_ns = ? WHERE key = ?", (now, key))
            db.execute("COMMIT")
        finally:
            db.close()
    except sqlite3.Error as exc:
        log.debug("could not mark artifacts as used: %s", exc)
