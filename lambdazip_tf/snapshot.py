"""The no-change fast path of external-program mode (DESIGN 7; issue 5).

Terraform runs the data source on every plan and refresh with the same query, so the same stdin
text. After a successful build, the pipeline stores a snapshot under a key made of that text, the
working folder, SOURCE_DATE_EPOCH and the tool's version: the file-system facts its selection read
(fsview.py), the stat keys of every zipped file, the artifacts' stat keys and the result. The next
run with the same key replays those facts; if all hold, the previous result is printed as it is.

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
import time
from typing import Any

from . import __version__
from .fsview import changed_files, pack_files, racy_facts, still_true, trusted_keys

log = logging.getLogger(__name__)

DEFAULT_OUTPUT_DIR = ".lambdazip"
SNAPSHOT_FORMAT = "2"
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
    """What identifies a request as Terraform sends it, for this tool version."""
    material = [
        SNAPSHOT_FORMAT,
        __version__,
        _code_stamp(),
        text,
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


def encode(
    facts: list[Any],
    files: list[tuple[str, tuple[int, ...]]],
    recorded_ns: int,
    result: dict[str, str],
    artifacts: list[str],
    warnings: list[str],
) -> bytes | None:
    """A snapshot as stored in the cache, or None when its facts could not be trusted (racy)."""
    if racy_facts(facts, recorded_ns):
        return None
    trusted = trusted_keys([key for _, key in files], recorded_ns)
    files = [(path, key) for (path, _), key in zip(files, trusted, strict=True)]
    keys = []
    for path in artifacts:
        st = os.stat(path)
        keys.append((path, (st.st_size, st.st_mtime_ns, st.st_ino)))
    paths, stat_keys = pack_files(files)
    data = {
        "facts": facts,
        "paths": paths,
        "keys": stat_keys,
        "result": result,
        "artifacts": keys,
        "warnings": warnings,
    }
    return marshal.dumps(data)


def encode_layout(layout: dict[str, Any]) -> bytes:
    """The selection itself, for a rebuild after content-only edits (`changed_layout`)."""
    return marshal.dumps(layout)


def changed_layout(folder: str, key: str) -> tuple[list[Any], dict[str, Any], set[str]] | None:
    """(facts, layout, changed files) when the last selection still stands but files changed.

    Every fact holding means no folder gained, lost or renamed an entry and every probe answers
    the same: the selection is the same, and only the listed files' content, size or mode may
    differ (an edit in place changes a file's stat key, not its folder's). Returns None when
    anything else changed, so that the caller selects from scratch.
    """
    try:
        row = _load(os.path.join(folder, CACHE_NAME), key, "layout")
        if row is None or row[1] is None:
            return None
        snap = marshal.loads(row[0])
        layout = marshal.loads(row[1])
        changed = changed_files(snap["facts"], snap["paths"], snap["keys"])
    except (sqlite3.Error, OSError, ValueError, EOFError, TypeError, KeyError):
        return None
    if changed is None:
        return None
    return snap["facts"], layout, changed


def current_result(text: str, cwd: str) -> tuple[dict[str, str], list[str]] | None:
    """The recorded (result, warnings) when nothing the last build read has changed."""
    try:
        request = json.loads(text)
    except ValueError:
        return None
    if not isinstance(request, dict) or not all(isinstance(v, str) for v in request.values()):
        return None
    folder = output_dir_for(request.get("output_path"), request.get("output_dir"), cwd)
    database = os.path.join(folder, CACHE_NAME)
    key = snapshot_key(text, cwd)
    try:
        row = _load(database, key, "used_ns")
        if row is None:
            return None
        snap = marshal.loads(row[0])
        for path, expected in snap["artifacts"]:
            st = os.stat(path)
            if (st.st_size, st.st_mtime_ns, st.st_ino) != tuple(expected):
                return None
        if not still_true(snap["facts"], snap["paths"], snap["keys"]):
            return None
        result = dict(snap["result"])
        warnings = list(snap["warnings"])
    except (sqlite3.Error, OSError, ValueError, EOFError, TypeError, KeyError) as exc:
        log.debug("fast path not taken: %s", exc)
        return None
    if time.time_ns() - row[1] > KEEP_RECENT_NS // 4:
        _mark_used(database, key, [path for path, _ in snap["artifacts"]])
    return result, warnings


def _load(database: str, key: str, column: str) -> tuple[Any, Any] | None:
    """(data, column) of a snapshot, read without writing (None: no cache or no snapshot)."""
    if os.environ.get("LAMBDAZIP_NO_CACHE") or not os.path.isfile(database):
        return None
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    try:
        row = db.execute(f"SELECT data, {column} FROM snapshots WHERE key = ?", (key,)).fetchone()
    finally:
        db.close()
    return None if row is None else (row[0], row[1])


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
