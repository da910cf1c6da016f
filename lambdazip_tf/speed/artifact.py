"""One artifact: found current in the cache, or written from a plan (docs/design.md, "Fast
paths").

Given the sorted entries of one zip: decide its content hash from cached digests (hashing only
what the cache lacks) and return the recorded artifact when it is current; otherwise plan its
members against the previous artifact (reuse.py), carry the plan out into a staged file
(core/staging.py), and publish it under the name its content hash gives.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence

from ..core.archive import Written, ZipWriter
from ..core.compress import Packed, hash_file
from ..core.contenthash import ByteOptions, Hashes, content_hashes, manifest_hashes
from ..core.entries import Entry, counts
from ..core.outputs import ArtifactFacts, Naming
from ..core.progress import Progress
from ..core.staging import Stage, staged
from ..core.zipformat import EMPTY, Member, link_member
from .cache import ArtifactRecord, Cache
from .pool import Packer
from .reuse import ADD, COPY, PACK, MemberPlan, PreviousArtifact, plan_members

log = logging.getLogger(__name__)


def _nothing(_: object) -> None:
    pass


def produce(
    entries: Sequence[Entry],
    naming: Naming,
    options: ByteOptions,
    cache: Cache,
    packer: Packer,
    hold: Callable[[object], None] = _nothing,
    progress: Progress | None = None,
) -> ArtifactFacts:
    """The artifact of `entries`: the recorded one if current, else a new one written (told to
    `progress` as its files are written)."""
    digests = known_digests(entries, cache)
    planned: Hashes | None = None
    previous = cache.previous(options.level, options.stamp, prefer=naming.prefix)
    if digests or previous is not None:
        # A warm cache: hash only what it lacks (edited or racy files), so that "nothing
        # changed" is decided, and unchanged records copied, without compressing anything. A
        # cold build skips this and hashes while it compresses, reading each file once.
        planned, path, record = _planned(entries, digests, naming, options, cache)
        if record is not None:
            return _from_record(path, planned, record, entries)
    source = PreviousArtifact.open(previous)
    try:
        plan = plan_members(entries, digests, source.records)
        log.debug("rebuild: %d of %d entries to compress", len(plan.to_pack), len(entries))
        files, links, size = counts(entries)  # here, not in the tail where the other cores idle
        with staged(naming.folder, os.path.basename(naming.path("0" * 64))) as stage:
            written, drifted = _write(
                plan, source, packer, stage, options, cache, digests, progress
            )
            stage.sync()
            # The name comes from what was actually read, so that a file edited during the
            # build cannot give a zip whose name or content_hash describes other content: the
            # index holds each member's digest as packed, and its manifest is the entries'.
            hashes = planned if planned is not None and not drifted else None
            hashes = hashes or manifest_hashes(written.members.manifest(), options)
            path = naming.path(hashes.content)
            stage.publish(path)
    finally:
        source.close()
    record = ArtifactRecord(hashes.content, written.sha256.hex(), written.md5, written.size)
    cache.record_artifact(path, record, options.level, options.stamp, written.members)
    hold((plan, digests, written))
    return ArtifactFacts(
        path, *hashes, written.sha256, written.md5, written.size, files, links, size
    )


def _write(
    plan: MemberPlan,
    source: PreviousArtifact,
    packer: Packer,
    stage: Stage,
    options: ByteOptions,
    cache: Cache,
    digests: dict[str, str],
    progress: Progress | None,
) -> tuple[Written, bool]:
    """Carry the plan out: (the zip written, whether a file's content differed from the digest
    the warm check used)."""
    writer = ZipWriter(stage, options.timestamp)
    drifted = False
    try:
        packed: Iterator[tuple[int, Packed]] = packer.pack(plan.to_pack)
        for step in plan.steps:
            how, entry = step[0], step[1]
            if how == PACK:
                started, result = next(packed)
                known = digests.get(entry.source)
                drifted = drifted or (known is not None and known != result.sha256)
                digests[entry.source] = result.sha256
                cache.record_digest(entry.source, entry.stat_key, result.sha256, started)
                writer.add_packed(entry, result)
                if progress is not None:
                    progress.advance(1, entry.size)
            elif how == ADD:
                writer.add(entry, EMPTY if entry.kind == "dir" else link_member(entry.target))
            elif how == COPY:
                source.copy(writer, entry)  # a run of (entry, record) pairs
                if progress is not None:
                    copied = [e for e, _ in entry if e.kind == "file"]
                    progress.advance(len(copied), sum(e.size for e in copied))
            else:  # MOVED
                rec = step[2]
                member = Member(rec[3], rec[4], rec[5], rec[6], (source.data(rec),), rec[0])
                writer.add(entry, member)
                if progress is not None:
                    progress.advance(1, entry.size)
        return writer.finish(), drifted
    except BaseException:
        writer.abort()
        raise


def known_digests(entries: Sequence[Entry], cache: Cache) -> dict[str, str]:
    """The cached content digests of the entries' files, by source path."""
    known: dict[str, str] = {}
    if not cache.has_digests():  # a cold build: no lookups of nothing
        return known
    for entry in entries:
        if entry.kind == "file" and entry.source is not None and entry.stat_key is not None:
            digest = cache.digest(entry.source, entry.stat_key)
            if digest is not None:
                known[entry.source] = digest
    return known


def _planned(
    entries: Sequence[Entry],
    digests: dict[str, str],
    naming: Naming,
    options: ByteOptions,
    cache: Cache,
) -> tuple[Hashes, str, ArtifactRecord | None]:
    """Hash the files `digests` lacks; (the hashes, artifact path, its record if current)."""
    for entry in entries:
        if entry.kind == "file" and entry.source not in digests:
            assert entry.source is not None and entry.stat_key is not None
            started = time.time_ns()
            sha = digests[entry.source] = hash_file(entry.source, entry.size)
            cache.record_digest(entry.source, entry.stat_key, sha, started)
    planned = content_hashes(entries, digests, options)
    path = naming.path(planned.content)
    record = cache.artifact(path)
    log.debug("content hash %s (%d digests known)", planned.content[:16], len(digests))
    current = record is not None and record.content_hash == planned.content
    return planned, path, record if current else None


def _from_record(
    path: str, hashes: Hashes, record: ArtifactRecord, entries: Sequence[Entry]
) -> ArtifactFacts:
    files, links, size = counts(entries)
    sha256 = bytes.fromhex(record.sha256)
    return ArtifactFacts(path, *hashes, sha256, record.md5, record.size, files, links, size, True)


def inspect(
    entries: Sequence[Entry], naming: Naming, options: ByteOptions, cache: Cache
) -> ArtifactFacts:
    """What `produce` would decide, without writing (a read-only cache saves nothing). An
    artifact that would be built has no digests or size yet."""
    hashes, path, record = _planned(entries, known_digests(entries, cache), naming, options, cache)
    if record is not None:
        return _from_record(path, hashes, record, entries)
    files, links, size = counts(entries)
    return ArtifactFacts(path, *hashes, b"", "", 0, files, links, size)
