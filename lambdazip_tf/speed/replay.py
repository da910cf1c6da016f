"""The fast paths of external-program mode: the last build's snapshot, checked again.

The next run with the same request key checks the snapshot's facts (facts.changed_files):

- all hold and no zipped file changed: the recorded result stands (the no-op);
- all hold but some zipped files changed: the selection is the same, so the change path
  (change_path.py) patches only those files' members into new artifacts;
- anything else: None, and the full build runs.

Anything that fails here (no cache, a changed fact, a corrupt snapshot) means "take the full
path", never an error. Like snapshot.py, this module must not import pydantic or the pipeline
(docs/design.md, "Fast paths").
"""

from __future__ import annotations

import logging
import sqlite3
import struct
import time
from typing import Any, NamedTuple

from ..core.outputs import result_strings
from .database import mark_used, read_snapshot
from .facts import artifact_key, changed_files
from .snapshot import RequestKey, artifacts_of, decode

log = logging.getLogger(__name__)


class Replay(NamedTuple):
    """A snapshot whose selection still stands, and the files that changed since it was taken."""

    key: RequestKey
    snap: dict[str, Any]
    changed: list[int]  # numbers of the zipped files whose stat key differs
    started_ns: int  # taken before any file was checked (the racy rule, for their new keys)


def replay(key: RequestKey) -> Replay | None:
    """Check the last build of this request again; None when only a full build can answer."""
    started_ns = time.time_ns()
    try:
        row = read_snapshot(key.output_dir, key.digest)
        if row is None:
            return None
        snap = decode(row[0], row[2])
        for facts, recorded, _ in artifacts_of(snap):
            if artifact_key(facts.path) != recorded:
                return None
        changed = changed_files(snap["facts"], snap["paths"], snap["keys"], snap["listings"])
    except (sqlite3.Error, OSError, ValueError, EOFError, TypeError, KeyError, struct.error) as exc:
        log.debug("fast path not taken: %s", exc)
        return None
    if changed is None:
        return None
    if not changed:
        paths = [facts.path for facts, _, _ in artifacts_of(snap)]
        mark_used(key.output_dir, key.digest, paths, row[1])
    return Replay(key, snap, changed, started_ns)


def unchanged_answer(found: Replay) -> tuple[dict[str, str], list[str]]:
    """The no-op: the recorded (result, warnings), when no zipped file changed either."""
    log.debug("fast path: nothing changed")
    parts = [facts for facts, _, _ in artifacts_of(found.snap)]
    result = result_strings(
        parts[0], parts[1] if len(parts) > 1 else None, found.snap["build_options"]
    )
    return result, list(found.snap["warnings"])


class FastAnswer(NamedTuple):
    """What a fast path answered: the result, its warnings (already logged), and whether the
    recorded artifacts were current (False: the change path wrote new ones)."""

    result: dict[str, str]
    warnings: list[str]
    current: bool


def fast_answer(key: RequestKey) -> FastAnswer | None:
    """The no-op or the change path for a request, or None when only a full build can answer."""
    found = replay(key)
    if found is None:
        return None
    if not found.changed:
        answer, warnings = unchanged_answer(found)
        current = True
    else:
        from .change_path import rebuild  # noqa: PLC0415 - only when files changed

        rebuilt = rebuild(found.key, found.snap, found.changed, found.started_ns)
        if rebuilt is None:
            return None
        answer, warnings = rebuilt
        current = False
    for warning in warnings:
        log.warning("%s", warning)
    return FastAnswer(answer, warnings, current)
