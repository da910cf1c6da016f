"""The change path: rewrite only the members whose files changed (docs/design.md, "Fast paths").

When a request's snapshot replays with every fact holding (replay.py) but some zipped files'
stat keys differ, the selection is the same: the same entries in the same order, where only
those files' content, size or mode may differ. This path reads just those files and writes
each artifact that changed as a patch of the previous one (patch.py). It needs no pydantic, no
layout and no stat cache: a one-file change costs the replay, one read and one hash of the
previous zip, and a small cache write.

It declines (returns None, and the full build runs instead) whenever it cannot be sure or the
full build does better: a changed path that is no longer a regular file, more than MAX_FILES or
MAX_BYTES of changes (the full build packs on all cores), a previous artifact or index that is
not the one recorded, a file that changes while it is read, ZIP64 records, or a total over
Lambda's unzipped limit (the full build words that error). The tests compare what it writes
with cache-free builds, byte for byte.
"""

from __future__ import annotations

import logging
import os
import stat
from array import array
from typing import Any

from ..core.binaries import NATIVE
from ..core.compress import pack_file
from ..core.contenthash import ByteOptions, manifest_hashes
from ..core.entries import Entry, file_entry
from ..core.filesystem import stat_key
from ..core.limits import UNZIPPED_LIMIT, size_warning
from ..core.outputs import ArtifactFacts, Naming, result_strings
from ..core.staging import remove_stale_temps, staged
from ..core.zipformat import Member, packed_member
from ..core.zipindex import ZipIndex
from ..errors import SourceError
from .cache import ArtifactRecord, Cache
from .facts import zip_key
from .patch import NotPatchable, patch
from .snapshot import RequestKey, artifacts_of, encode_update

log = logging.getLogger(__name__)

MAX_FILES = 2000
MAX_BYTES = 64 * 1024 * 1024

_Pending = tuple[str, ArtifactRecord, ZipIndex]  # an artifact to record in the cache


def rebuild(
    key: RequestKey, snap: dict[str, Any], changed: list[int], started_ns: int
) -> tuple[dict[str, str], list[str]] | None:
    """(result, warnings) after patching the changed files in, or None to take the full path.

    `changed` numbers the zipped files whose stat keys differ; `started_ns` is when the replay
    began checking them (the racy rule, for their new keys)."""
    try:
        return _rebuild(key, snap, changed, started_ns)
    except (NotPatchable, SourceError, OSError, ValueError, KeyError, IndexError) as exc:
        log.debug("change path declined: %s", exc)
        return None


def _rebuild(
    key: RequestKey, snap: dict[str, Any], changed: list[int], started_ns: int
) -> tuple[dict[str, str], list[str]] | None:
    info = snap["rebuild"]
    paths = snap["paths"].split("\0")
    fresh = _fresh_stats(changed, paths)
    if fresh is None:
        return None
    level, timestamp, architecture = info["options"]
    options = ByteOptions(level, (timestamp[0], timestamp[1]), architecture)
    placed = array("q")
    placed.frombytes(info["members"])
    by_artifact: dict[int, dict[int, int]] = {}  # artifact -> member -> file number
    for number in fresh:
        by_artifact.setdefault(placed[2 * number], {})[placed[2 * number + 1]] = number
    artifacts = artifacts_of(snap)
    cache = Cache(key.output_dir, info["root"])
    try:
        indexes = {}
        for part in by_artifact:
            facts, on_disk, _ = artifacts[part]
            index = cache.index(facts.path, on_disk)
            if index is None:
                return None
            indexes[part] = index
        growth = {
            part: sum(
                fresh[number].st_size - indexes[part].size[m] for m, number in members.items()
            )
            for part, members in by_artifact.items()
        }
        unzipped = sum(facts.unzipped_size for facts, _, _ in artifacts) + sum(growth.values())
        if unzipped > UNZIPPED_LIMIT:
            return None  # the full build says which packages are the largest
        made: list[tuple[ArtifactFacts, Naming]] = []
        pending: list[_Pending] = []
        for part, (recorded, on_disk, naming) in enumerate(artifacts):
            facts = recorded._replace(unzipped_size=recorded.unzipped_size + growth.get(part, 0))
            members = by_artifact.get(part)
            if members:
                changes = _changes(indexes[part], members, fresh, paths, options.level)
                if changes is None:
                    return None
                if changes:
                    facts, written = _write(
                        facts, on_disk, naming, indexes[part], changes, options, cache
                    )
                    pending += written
                log.debug("change path: %d members of %s rewritten", len(changes), facts.path)
            made.append((facts, naming))
        layer = made[1][0] if len(made) > 1 else None
        result = result_strings(made[0][0], layer, snap["build_options"])
        found = (size_warning(facts.path, facts.size) for facts, _ in made)
        warnings = info["layout_warnings"] + [w for w in found if w is not None]
        fresh_keys = {number: stat_key(st) for number, st in fresh.items()}
        update = encode_update(snap, fresh_keys, started_ns, made, warnings)
        with cache.batch():
            for target, record, index in pending:
                cache.record_artifact(target, record, options.level, options.stamp, index)
            cache.update_snapshot(key.digest, update)
            cache.prune(keep=[facts.path for facts, _ in made])
    finally:
        cache.close()
    remove_stale_temps(key.output_dir)
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
        if NATIVE.search(paths[number]):
            return None  # native code: the full build judges it for the target
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
    previous: ArtifactFacts,
    key: tuple[int, int, int],
    naming: Naming,
    index: ZipIndex,
    changes: dict[int, tuple[Entry, Member]],
    options: ByteOptions,
    cache: Cache,
) -> tuple[ArtifactFacts, list[_Pending]]:
    """The artifact with `changes` patched in, or found current under its new name, and what
    to record of it in the cache (nothing when it was found current)."""
    after = index.copy()
    for member, (entry, packed) in changes.items():
        after.held[member] = packed.key or ""
        after.modes[member] = entry.unix_mode
    hashes = manifest_hashes(after.manifest(), options)
    target = naming.path(hashes.content)
    record = cache.artifact(target)
    pending: list[_Pending] = []
    if record is None or record.content_hash != hashes.content:
        fd = os.open(previous.path, os.O_RDONLY)
        try:
            # The descriptor pins the inode: the index describes exactly the file read.
            if zip_key(os.fstat(fd)) != key:
                raise NotPatchable(f"{previous.path} changed since it was indexed")
            with staged(naming.folder, os.path.basename(target)) as stage:
                written = patch(fd, stage, index, changes, options.timestamp)
                stage.publish(target)
        finally:
            os.close(fd)
        record = ArtifactRecord(hashes.content, written.sha256.hex(), written.md5, written.size)
        pending.append((target, record, written.members))
    facts = previous._replace(
        path=target,
        content_hash=hashes.content,
        files_hash=hashes.files,
        sha256=bytes.fromhex(record.sha256),
        md5=record.md5,
        size=record.size,
    )
    return facts, pending
