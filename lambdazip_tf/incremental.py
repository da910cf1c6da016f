"""The change path of external-program mode: rewrite only the members that changed (DESIGN 7).

When the last build's snapshot replays with every fact holding (snapshot.replay) but some zipped
files' stat keys differ, the selection is the same: the same entries in the same order, where only
those files' content, size or mode may differ. This path reads just those files and writes each
artifact that changed as a patch of the previous one (archive.patch: unchanged records copied in
runs, the central directory copied with the changed records rebuilt and the offsets moved). It
needs no pydantic, no layout and no stat cache: a one-file change costs the replay, one read and
one hash of the previous zip, and a small cache write (issue 5).

It declines (returns None, and the full build runs instead) whenever it cannot be sure or the
full build does better: a changed path that is no longer a regular file, more than MAX_FILES or
MAX_BYTES of changes (the full build packs on all cores), a previous artifact or index that is not
the one recorded, a file that changes while it is read, ZIP64 records, or a total over Lambda's
unzipped limit (the full build words that error). The property tests in tests/test_cache.py
compare what it writes with cache-free builds, byte for byte.
"""

from __future__ import annotations

import logging
import os
import stat
from array import array
from pathlib import Path
from typing import Any

from .archive import Member, NotPatchable, ZipIndex, packed_member, patch
from .artifact import (
    Naming,
    remove_stale_temps,
    result_fields,
    staged,
    store_stamp,
)
from .cache import ArtifactRecord, Cache
from .compress import pack_file
from .entries import Entry, combined_hash, file_entry, manifest_hash
from .errors import SourceError
from .fsview import stat_key, zip_key
from .limits import UNZIPPED_LIMIT, size_warning
from .snapshot import Replay, artifact_key, encode_update

log = logging.getLogger(__name__)

MAX_FILES = 2000
MAX_BYTES = 64 * 1024 * 1024


def rebuild(found: Replay) -> tuple[dict[str, str], list[str]] | None:
    """(result, warnings) after patching the changed files in, or None to take the full path."""
    try:
        return _rebuild(found)
    except (NotPatchable, SourceError, OSError, ValueError, KeyError, IndexError) as exc:
        log.debug("change path declined: %s", exc)
        return None


def _rebuild(found: Replay) -> tuple[dict[str, str], list[str]] | None:
    snap = found.snap
    info = snap["rebuild"]
    paths = snap["paths"].split("\0")
    fresh = _fresh_stats(found.changed, paths)
    if fresh is None:
        return None
    options = info["options"]
    timestamp = (options["timestamp"][0], options["timestamp"][1])
    where = array("q")
    where.frombytes(info["where"])
    by_artifact: dict[int, dict[int, int]] = {}  # artifact -> member -> file number
    for number in fresh:
        by_artifact.setdefault(where[2 * number], {})[where[2 * number + 1]] = number
    folder = Path(os.path.dirname(found.database))
    cache = Cache(folder, info["root"])
    try:
        artifacts = [list(a) for a in snap["artifacts"]]  # path, key, naming, content hash
        indexes = {}
        for part in by_artifact:
            index = cache.index(artifacts[part][0], tuple(artifacts[part][1]))
            if index is None:
                return None
            indexes[part] = index
        result = dict(snap["result"])
        unzipped = int(result["unzipped_size"]) + sum(
            fresh[number].st_size - indexes[part].size[member]
            for part, members in by_artifact.items()
            for member, number in members.items()
        )
        if unzipped > UNZIPPED_LIMIT:
            return None  # the full build says which packages are the largest
        records = []
        for part, members in sorted(by_artifact.items()):
            path, key, naming, _ = artifacts[part]
            index = indexes[part]
            changes = _changes(index, members, fresh, paths, options["level"])
            if changes is None:
                return None
            if changes:
                artifacts[part], fields, pending = _write(
                    part == 1,
                    path,
                    tuple(key),
                    Naming(*naming),
                    index,
                    changes,
                    options,
                    timestamp,
                    cache,
                    folder,
                )
                records += pending
                result.update(fields)
            log.debug("change path: %d members of %s rewritten", len(changes), artifacts[part][0])
        result["unzipped_size"] = str(unzipped)
        layer_hash = artifacts[1][3] if len(artifacts) > 1 else None
        result["content_hash"] = combined_hash(artifacts[0][3], layer_hash)
        sizes = [result["output_size"], result.get("layer_output_size")]
        found_warnings = (
            size_warning(a[0], int(size)) for a, size in zip(artifacts, sizes, strict=False)
        )
        warnings = [w for w in found_warnings if w is not None]
        fresh_keys = {number: stat_key(st) for number, st in fresh.items()}
        update = encode_update(snap, fresh_keys, found.started_ns, artifacts, result, warnings)
        with cache.batch():
            stamp = store_stamp(timestamp)
            for target, record, index in records:
                cache.record_artifact(target, record, options["level"], stamp, index)
            cache.update_snapshot(found.key, update)
            cache.prune(keep=[Path(a[0]) for a in artifacts])
    finally:
        cache.close()
    remove_stale_temps(folder)
    return result, warnings


def _fresh_stats(changed: list[int], paths: list[str]) -> dict[int, os.stat_result] | None:
    """The changed files' stats (taken before they are read), or None to decline."""
    if len(changed) > MAX_FILES:
        return None
    fresh: dict[int, os.stat_result] = {}
    for number in changed:
        st = os.lstat(paths[number])
        if not stat.S_ISREG(st.st_mode):
            return None  # a file became a link, a folder or a FIFO: the selection differs
        fresh[number] = st
    if sum(st.st_size for st in fresh.values()) > MAX_BYTES:
        return None
    return fresh


def _changes(
    index: ZipIndex,
    members: dict[int, int],
    fresh: dict[int, os.stat_result],
    paths: list[str],
    level: int,
) -> dict[int, tuple[Entry, Member]] | None:
    """The members whose content or mode really changed, packed (a touch changes neither)."""
    changes: dict[int, tuple[Entry, Member]] = {}
    for member, number in members.items():
        st = fresh[number]
        if len(index.held[member]) != 64:
            return None  # the index does not hold a file where the snapshot says
        entry = file_entry(index.names[member], paths[number], st)
        packed = pack_file(paths[number], st.st_size, level)
        if packed.sha256 != index.held[member] or entry.unix_mode != index.modes[member]:
            changes[member] = (entry, packed_member(packed))
    return changes


def _write(
    layer: bool,
    previous: str,
    key: tuple[int, int, int],
    naming: Naming,
    index: ZipIndex,
    changes: dict[int, tuple[Entry, Member]],
    options: dict[str, Any],
    timestamp: tuple[int, int],
    cache: Cache,
    folder: Path,
) -> tuple[list[Any], dict[str, str], list[tuple[Path, ArtifactRecord, ZipIndex]]]:
    """The artifact with `changes` patched in, or found current under its new name: (its
    snapshot row, its result fields, what to record of it in the cache)."""
    after = index.copy()
    for member, (entry, packed) in changes.items():
        after.held[member] = packed.key or ""
        after.modes[member] = entry.unix_mode
    digest = manifest_hash(after.manifest(), options)
    target = naming.path(digest)
    record = cache.artifact(target)
    pending = []
    if record is None or record.content_hash != digest:
        fd = os.open(previous, os.O_RDONLY)
        try:
            # The descriptor pins the inode: the index describes exactly the file read.
            if zip_key(os.fstat(fd)) != key:
                raise NotPatchable(f"{previous} changed since it was indexed")
            with staged(folder, target.name) as stage:
                written = patch(fd, stage, index, changes, timestamp)
                stage.publish(target)
        finally:
            os.close(fd)
        record = ArtifactRecord(digest, written.sha256.hex(), written.md5, written.size)
        pending.append((target, record, written.members))
    sha = bytes.fromhex(record.sha256)
    fields = result_fields(layer, str(target), sha, record.md5, record.size)
    return [str(target), artifact_key(str(target)), tuple(naming), digest], fields, pending
