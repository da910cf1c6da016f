"""The build pipeline: request -> layout -> digests -> content hash -> zip -> result.

DESIGN 6 and 7. The no-change path costs a walk, a stat per file and one cache read: when every
file's digest is cached and an artifact with the same content hash is recorded, nothing is read.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import snapshot
from .archive import EMPTY, Member, Record, ZipWriter, dos_timestamp, ident, link_member
from .cache import ArtifactRecord, Cache, Previous
from .compress import hash_file
from .entries import Entry, content_hash
from .errors import LimitError, OutputError
from .fsview import Observed
from .layout import (
    Context,
    Layout,
    build_layout,
    check_output_dir,
    layout_from_record,
    layout_record,
    resolve_context,
)
from .packer import Packer
from .request import Request, Result

log = logging.getLogger(__name__)

MB = 1024 * 1024
DIRECT_UPLOAD_LIMIT = 50 * MB  # Lambda's limit for a zip uploaded with the function
UNZIPPED_LIMIT = 250 * MB  # function plus all its layers, unzipped


@dataclass(frozen=True)
class ZipFacts:
    """One artifact as built or found current."""

    path: Path
    content_hash: str
    sha256: bytes
    md5: str
    size: int
    file_count: int
    symlink_count: int
    unzipped_size: int
    reused: bool = False

    @property
    def base64sha256(self) -> str:
        """The format of Terraform's filebase64sha256() and Lambda's source_code_hash."""
        return base64.b64encode(self.sha256).decode()


@dataclass
class Outcome:
    """Everything a build or a dry run learned."""

    layout: Layout
    function: ZipFacts
    layer: ZipFacts | None
    current: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def content_hash(self) -> str:
        """The function's content hash, combined with the layer's when there is one."""
        if self.layer is None:
            return self.function.content_hash
        both = f"{self.function.content_hash}:{self.layer.content_hash}".encode()
        return hashlib.sha256(both).hexdigest()

    def result(self) -> Result:
        """The DESIGN 4 result."""
        fn, layer = self.function, self.layer
        return Result(
            output_path=str(fn.path),
            output_base64sha256=fn.base64sha256,
            output_sha256=fn.sha256.hex(),
            output_md5=fn.md5,
            output_size=str(fn.size),
            content_hash=self.content_hash,
            file_count=str(fn.file_count + (layer.file_count if layer else 0)),
            symlink_count=str(fn.symlink_count + (layer.symlink_count if layer else 0)),
            unzipped_size=str(fn.unzipped_size + (layer.unzipped_size if layer else 0)),
            layer_output_path=str(layer.path) if layer else None,
            layer_output_base64sha256=layer.base64sha256 if layer else None,
            layer_output_size=str(layer.size) if layer else None,
        )


def build(request: Request, cwd: Path | None = None, *, snapshot_key: str | None = None) -> Outcome:
    """Build (or find current) the artifacts a request describes.

    With `snapshot_key`, what this build read is recorded for the fast path (snapshot.py).
    """
    started = time.perf_counter()
    fs = Observed()
    context = resolve_context(request, fs, cwd)
    layout = _recorded_layout(context, fs, snapshot_key) if snapshot_key is not None else None
    if layout is None:
        layout = build_layout(context, fs)
    log.debug("layout: %d entries in %.3f s", len(layout.function), time.perf_counter() - started)
    _check_unzipped(layout)
    check_output_dir(context.output_dir)
    cache = Cache(context.output_dir, context.source)
    try:
        with Packer(context.request.compression_level) as packer:
            fn = _produce(layout.function, _namer(context, "function"), context, cache, packer)
            layer = None
            if layout.layer is not None:
                layer = _produce(layout.layer, _namer(context, "layer"), context, cache, packer)
        outcome = Outcome(layout, fn, layer, current=fn.reused and (layer is None or layer.reused))
        warnings = _size_warnings(outcome)
        for warning in warnings:
            log.warning("%s", warning)
        if snapshot_key is not None:
            files = [
                (e.source, e.stat_key)
                for e in (*layout.function, *(layout.layer or ()))
                if e.kind == "file" and e.source is not None and e.stat_key is not None
            ]
            encoded = snapshot.encode(
                fs.facts,
                files,
                fs.started_ns,
                outcome.result().as_strings(),
                [str(f.path) for f in (fn, layer) if f is not None],
                warnings,
            )
            recorded = snapshot.encode_layout(layout_record(layout)) if encoded else None
            cache.save_snapshot(snapshot_key, encoded, recorded)
        cache.prune(keep=[f.path for f in (fn, layer) if f is not None])
        _remove_stale_temps(context.output_dir)
    finally:
        cache.close()
    log.debug("build done in %.3f s", time.perf_counter() - started)
    return outcome


def _recorded_layout(context: Context, fs: Observed, key: str) -> Layout | None:
    """The last selection, when only files' content or mode changed since (snapshot.py)."""
    reuse = snapshot.changed_layout(str(context.output_dir), key)
    if reuse is None:
        return None
    facts, record, changed = reuse
    layout = layout_from_record(context, record, changed)
    if layout is not None:
        fs.facts.extend(facts)  # checked just now: they hold as of this build
        log.debug("layout: the recorded selection, %d files changed", len(changed))
    return layout


def _size_warnings(outcome: Outcome) -> list[str]:
    return [
        f"{facts.path} is {facts.size / MB:.1f} MB, over Lambda's 50 MB limit for direct "
        "upload; upload it through S3 (aws_lambda_function.s3_bucket) or move dependencies "
        "into a layer"
        for facts in (outcome.function, outcome.layer)
        if facts is not None and facts.size > DIRECT_UPLOAD_LIMIT
    ]


def dry_run(request: Request, cwd: Path | None = None) -> Outcome:
    """Everything `build` would decide, without writing a byte (the `plan` command)."""
    fs = Observed()
    context = resolve_context(request, fs, cwd)
    layout = build_layout(context, fs)
    cache = Cache(context.output_dir, context.source, readonly=True)
    try:
        fn = _inspect(layout.function, _namer(context, "function"), context, cache)
        layer = None
        if layout.layer is not None:
            layer = _inspect(layout.layer, _namer(context, "layer"), context, cache)
    finally:
        cache.close()
    return Outcome(layout, fn, layer, current=fn.reused and (layer is None or layer.reused))


def build_from(request: Request, cwd: Path | None = None) -> Result:
    """Build and return only the result (the library's simplest entry point)."""
    return build(request, cwd).result()


def ensure(
    request: Request,
    expect_b64: str,
    expect_layer_b64: str | None = None,
    cwd: Path | None = None,
) -> Outcome:
    """Rebuild when missing or stale, then check the artifacts are the ones that were planned."""
    outcome = build(request, cwd)
    checks = [("artifact", outcome.function, expect_b64)]
    if expect_layer_b64 is not None:
        if outcome.layer is None:
            raise OutputError("--expect-layer-sha256 was given but the request builds no layer")
        checks.append(("layer artifact", outcome.layer, expect_layer_b64))
    for label, facts, expected in checks:
        if facts.base64sha256 != expected:
            raise OutputError(
                f"{label} {facts.path} has sha256 {facts.base64sha256} but the plan expected "
                f"{expected}: the sources changed between plan and apply, or plan and apply "
                "ran different lambdazip-tf versions or inputs; run terraform plan again",
                facts.path,
            )
    return outcome


# -- internals ------------------------------------------------------------------------------


def _options(context: Context) -> dict[str, object]:
    """What changes the bytes of a zip besides its entries (DESIGN 6 content_hash)."""
    return {
        "level": context.request.compression_level,
        "timestamp": list(dos_timestamp(os.environ.get("SOURCE_DATE_EPOCH"))),
    }


def _namer(context: Context, part: str) -> Callable[[str], Path]:
    explicit = context.request.output_path
    if explicit is not None:
        path = Path(os.path.abspath(context.output_dir / explicit.name))
        if part == "layer":
            path = path.with_name(f"{path.stem}-layer{path.suffix or '.zip'}")
        return lambda _hash: path
    stem = context.name if part == "function" else f"{context.name}-layer"
    folder = Path(os.path.abspath(context.output_dir))
    return lambda digest: folder / f"{stem}-{digest[:16]}.zip"


def _counts(entries: Sequence[Entry]) -> tuple[int, int, int]:
    files = sum(1 for e in entries if e.kind == "file")
    links = sum(1 for e in entries if e.kind == "link")
    size = sum(e.size for e in entries if e.kind == "file")
    return files, links, size


def _facts_from_record(path: Path, record: ArtifactRecord, entries: Sequence[Entry]) -> ZipFacts:
    files, links, size = _counts(entries)
    return ZipFacts(
        path,
        record.content_hash,
        bytes.fromhex(record.sha256),
        record.md5,
        record.size,
        files,
        links,
        size,
        reused=True,
    )


def _known_digests(entries: Sequence[Entry], cache: Cache) -> dict[str, str]:
    known: dict[str, str] = {}
    for entry in entries:
        if entry.kind == "file" and entry.source is not None and entry.stat_key is not None:
            digest = cache.digest(entry.source, entry.stat_key)
            if digest is not None:
                known[entry.source] = digest
    return known


def _produce(
    entries: Sequence[Entry],
    namer: Callable[[str], Path],
    context: Context,
    cache: Cache,
    packer: Packer,
) -> ZipFacts:
    options = _options(context)
    level = context.request.compression_level
    timestamp = dos_timestamp(os.environ.get("SOURCE_DATE_EPOCH"))
    digests = _known_digests(entries, cache)
    planned: str | None = None
    stamp = f"{timestamp[0]}:{timestamp[1]}"
    previous = cache.previous(level, stamp, prefer=namer("").name[:-4])
    if digests or previous is not None:
        # A warm cache: hash only what it lacks (edited or racy files), so that "nothing
        # changed" is decided, and unchanged records copied, without compressing anything. A
        # cold build skips this and hashes while it compresses, reading each file once.
        for entry in entries:
            if entry.kind == "file" and entry.source not in digests:
                assert entry.source is not None and entry.stat_key is not None
                started = time.time_ns()
                sha = digests[entry.source] = hash_file(entry.source, entry.size)
                cache.record_digest(entry.source, entry.stat_key, sha, started)
        planned = content_hash(entries, digests, options)
        path = namer(planned)
        record = cache.artifact(path)
        log.debug("content hash %s (%d digests cached)", planned[:16], len(digests))
        if record is not None and record.content_hash == planned:
            return _facts_from_record(path, record, entries)
    source = _Source.open(previous)
    plan = [source.decide(entry, digests) for entry in entries]
    todo = [e for e, (how, _) in zip(entries, plan, strict=True) if how == "pack"]
    log.debug("rebuild: %d of %d entries to compress", len(todo), len(entries))
    drifted = False  # a file's content differed from the digest the warm check used
    fd, tmp = _temp_in(context.output_dir, namer("0" * 64).name)
    try:
        with os.fdopen(fd, "wb") as raw:
            writer = ZipWriter(raw, timestamp)
            try:
                packed = packer.pack(todo)
                run: list[tuple[Entry, Record]] = []
                for entry, (how, rec) in zip(entries, plan, strict=True):
                    if how == "copy" and rec is not None:
                        if run and run[-1][1][2] != rec[1]:
                            source.copy(writer, run)
                            run = []
                        run.append((entry, rec))
                        continue
                    if run:
                        source.copy(writer, run)
                        run = []
                    if how == "moved" and rec is not None:
                        data = source.data(rec)
                        writer.add(entry, Member(rec[3], rec[4], rec[5], rec[6], (data,), rec[0]))
                    elif entry.kind == "dir":
                        writer.add(entry, EMPTY)
                    elif entry.kind == "link":
                        writer.add(entry, link_member(entry.target or ""))
                    else:
                        assert entry.source is not None and entry.stat_key is not None
                        started, result = next(packed)
                        known = digests.get(entry.source)
                        drifted = drifted or (known is not None and known != result.sha256)
                        sha = digests[entry.source] = result.sha256
                        cache.record_digest(entry.source, entry.stat_key, sha, started)
                        writer.add(
                            entry,
                            Member(
                                result.crc,
                                result.size,
                                len(result.data),
                                result.method,
                                (result.data,),
                                sha,
                            ),
                        )
                if run:
                    source.copy(writer, run)
            except BaseException:
                writer.abort()
                raise
            written = writer.finish()
            raw.flush()
            # Durable before it is visible: after a crash the artifact's name never points at a
            # file whose blocks were not written (DESIGN 6, issue 6).
            os.fsync(raw.fileno())
        # The name comes from what was actually read, so a file edited during the build cannot
        # give a zip whose name or content_hash describes other content.
        digest = planned if planned is not None and not drifted else None
        digest = digest or content_hash(entries, digests, options)
        path = namer(digest)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    finally:
        source.close()
    files, links, size = _counts(entries)
    record = ArtifactRecord(digest, written.sha256.hex(), written.md5, written.size)
    cache.record_artifact(path, record, level, stamp, written.index)
    return ZipFacts(path, digest, written.sha256, written.md5, written.size, files, links, size)


class _Source:
    """The previous artifact a rebuild copies from, opened once and checked (cache.py).

    A descriptor pins the inode: every record read through it comes from the file the index
    describes, even if the path is replaced meanwhile.
    """

    def __init__(self, fd: int | None, previous: Previous | None) -> None:
        self.fd = fd
        self.index = previous.index if previous is not None and fd is not None else {}
        self.moved = previous.by_content() if self.index and previous is not None else {}

    @classmethod
    def open(cls, previous: Previous | None) -> _Source:
        if previous is None:
            return cls(None, None)
        try:
            fd = os.open(previous.path, os.O_RDONLY)
        except OSError:
            return cls(None, None)
        st = os.fstat(fd)
        if (st.st_size, st.st_mtime_ns, st.st_ino) != previous.key:
            os.close(fd)
            return cls(None, None)
        return cls(fd, previous)

    def decide(self, entry: Entry, digests: dict[str, str]) -> tuple[str, Record | None]:
        """copy (the whole record), moved (its compressed data), pack, or add."""
        held = ident(entry, digests.get(entry.source or "") if entry.kind == "file" else None)
        rec = self.index.get(entry.arc)
        if rec is not None and held is not None and rec[0] == held:
            return "copy", rec
        if entry.kind != "file":
            return "add", None
        moved = self.moved.get(held) if held is not None else None
        return ("moved", moved) if moved is not None else ("pack", None)

    def copy(self, writer: ZipWriter, run: list[tuple[Entry, Record]]) -> None:
        assert self.fd is not None
        writer.copy(self.fd, run)

    def data(self, rec: Record) -> bytes:
        assert self.fd is not None
        data = os.pread(self.fd, rec[5], rec[2] - rec[5])
        if len(data) != rec[5]:
            raise OutputError("a previous artifact is shorter than its index; run again")
        return data

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _inspect(
    entries: Sequence[Entry], namer: Callable[[str], Path], context: Context, cache: Cache
) -> ZipFacts:
    digests = _known_digests(entries, cache)
    for entry in entries:
        if entry.kind == "file" and entry.source not in digests:
            assert entry.source is not None
            digests[entry.source] = hash_file(entry.source, entry.size)
    digest = content_hash(entries, digests, _options(context))
    path = namer(digest)
    record = cache.artifact(path)
    if record is not None and record.content_hash == digest:
        return _facts_from_record(path, record, entries)
    files, links, size = _counts(entries)
    return ZipFacts(path, digest, b"", "", 0, files, links, size)


STALE_TEMP_NS = 3600 * 1_000_000_000


def _remove_stale_temps(folder: Path) -> None:
    """Delete temporary zips that a killed build left (never a running build's: too young)."""
    now = time.time_ns()
    try:
        with os.scandir(folder) as it:
            for item in it:
                if (
                    item.name.startswith(".")
                    and item.name.endswith(".tmp")
                    and ".zip." in item.name
                ):
                    with contextlib.suppress(OSError):
                        if now - item.stat(follow_symlinks=False).st_mtime_ns > STALE_TEMP_NS:
                            os.unlink(item.path)
    except OSError:
        pass


def _temp_in(folder: Path, final_name: str) -> tuple[int, str]:
    """A temporary file beside the artifact, so the final rename is atomic (DESIGN 6)."""
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{final_name}.", suffix=".tmp")
    except OSError as exc:
        raise OutputError(f"cannot write in {folder}: {exc.strerror}", folder) from None
    os.fchmod(fd, 0o644)
    return fd, tmp


def _check_unzipped(layout: Layout) -> None:
    total = sum(e.size for e in layout.function if e.kind == "file")
    if layout.layer is not None:
        total += sum(e.size for e in layout.layer if e.kind == "file")
    if total <= UNZIPPED_LIMIT:
        return
    biggest = sorted(layout.packages, key=lambda p: -p.size)[:3]
    named = ", ".join(f"{p.name} {p.size / MB:.1f} MB" for p in biggest)
    raise LimitError(
        f"unzipped size {total / MB:.1f} MB is over Lambda's 250 MB limit for a function and "
        f"its layers"
        + (f"; largest packages: {named}" if named else "")
        + "; exclude packages or files you do not need at run time"
    )


def now_ns() -> int:
    """Wall-clock time in ns (a seam for tests of the racy-timestamp rule)."""
    return time.time_ns()
