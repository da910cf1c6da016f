"""The build pipeline: the one module that joins the core flow and the speed machinery.

request -> selection and layout (core/layout.py) -> each artifact found current or written
(speed/artifact.py) -> result (core/outputs.py). `build` serves external mode and
`lambdazip-tf build`, `dry_run` serves `plan` (it writes nothing), and `ensure` the apply-time
check (docs/design.md, "The program"). With a snapshot key, what the build read is recorded
for the next run's fast paths (speed/snapshot.py).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import os
import threading
import time
import zipfile
from array import array
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from .core.filesystem import ObservedFileSystem
from .core.inventory import Inventory, dev_only, estimated_size, groups, locate_packages
from .core.layout import Layout, build_layout, check_output_dir, resolve_context
from .core.limits import check_unzipped, size_warning
from .core.outputs import ArtifactFacts, build_options, combined_hash, result_strings
from .core.progress import Progress
from .core.request import Request, Result
from .core.staging import remove_stale_temps
from .errors import LimitError, OutputError
from .speed import artifact, snapshot
from .speed.cache import Cache
from .speed.pool import Packer
from .speed.replay import fast_answer
from .speed.snapshot import RequestKey
from .speed.speculative import SpeculativePacking

log = logging.getLogger(__name__)

Hold = Callable[[object], None]


def _nothing(_: object) -> None:
    pass


@dataclass
class Outcome:
    """Everything a build or a dry run learned."""

    layout: Layout
    function: ArtifactFacts
    layer: ArtifactFacts | None
    current: bool = False
    warnings: list[str] = field(default_factory=list)
    inventory: Inventory | None = None  # dry runs only

    @property
    def content_hash(self) -> str:
        """The function's content hash, combined with the layer's when there is one."""
        layer = self.layer.content_hash if self.layer is not None else None
        return combined_hash(self.function.content_hash, layer)

    def strings(self) -> dict[str, str]:
        """The result as external mode prints it: a flat object of strings."""
        options = build_options(self.layout.context.options.described())
        return result_strings(self.function, self.layer, options)

    def result(self) -> Result:
        """The result as a model."""
        return Result(**self.strings())


def build(
    request: Request,
    cwd: Path | None = None,
    *,
    output_dir: str | None = None,
    snapshot_key: str | None = None,
    speculative: SpeculativePacking | None = None,
    hold: Hold = _nothing,
    progress: Progress | None = None,
) -> Outcome:
    """Build (or find current) the artifacts a request describes.

    `output_dir` is the request's output folder when the caller has worked it out already.
    With `snapshot_key`, what this build read is recorded for the fast paths; with
    `speculative`, files packed speculatively are taken from there. `hold` is given what the
    build is done with, for a process that exits without freeing it; `progress` is told how
    the writing goes.
    """
    started = time.perf_counter()
    fs = ObservedFileSystem()
    context = resolve_context(request, fs, cwd, output_dir)
    layout = build_layout(context, fs)
    log.debug("layout: %d entries in %.3f s", len(layout.function), time.perf_counter() - started)
    check_unzipped([layout.function, layout.layer or []], layout.packages)
    check_output_dir(context.output_dir)
    cache = Cache(context.output_dir, context.source, hold=hold)
    namings = [context.naming(layer=False), context.naming(layer=True)]
    background = ThreadPoolExecutor(1)
    packing = threading.Event()
    if progress is not None:
        zipped = [e for entries in (layout.function, layout.layer or []) for e in entries]
        files = [e for e in zipped if e.kind == "file"]
        progress.start(len(files), sum(e.size for e in files))
    try:
        # The snapshot's bulk depends on the selection alone: encoded while the pool packs
        # files and this thread mostly waits, off the build's tail; not before, when it would
        # hold the GIL while the pool is not started.
        selection = (
            background.submit(_selection_snapshot, fs, layout, packing)
            if snapshot_key is not None
            else None
        )
        options = context.options
        with Packer(options.level, speculative=speculative, started=packing) as packer:
            fn = artifact.produce(
                layout.function, namings[0], options, cache, packer, hold, progress
            )
            layer = None
            if layout.layer is not None:
                layer = artifact.produce(
                    layout.layer, namings[1], options, cache, packer, hold, progress
                )
        packing.set()  # already set, unless nothing was packed (the artifacts were current)
        warnings = layout.warnings + _size_warnings(fn, layer)
        for warning in warnings:
            log.warning("%s", warning)
        current = fn.reused and (layer is None or layer.reused)
        outcome = Outcome(layout, fn, layer, current, warnings)
        selected = selection.result() if selection is not None else None
        with cache.batch():  # the artifacts' records, the snapshot and the digests: one commit
            if snapshot_key is not None and selected is not None:
                made = [(fn, namings[0])] + ([] if layer is None else [(layer, namings[1])])
                encoded = snapshot.encode(
                    selected[0],
                    made,
                    warnings,
                    context.source,
                    selected[1],
                    options,
                    layout.warnings,
                )
                cache.save_snapshot(snapshot_key, encoded)
            cache.prune(keep=[f.path for f in (fn, layer) if f is not None])
            cache.save()
        remove_stale_temps(context.output_dir)
    finally:
        packing.set()
        background.shutdown(cancel_futures=True)
        cache.close()
        if progress is not None:
            progress.finish()
    log.debug("build done in %.3f s", time.perf_counter() - started)
    hold((fs, selection))
    return outcome


def _selection_snapshot(
    fs: ObservedFileSystem, layout: Layout, packing: threading.Event
) -> tuple[bytes | None, bytes]:
    """The bulk of the snapshot (snapshot.encode_selection) and each zipped file's (artifact
    number, member number), from the selection alone: computed once packing is under way."""
    packing.wait()
    paths: list[str] = []
    keys: list[tuple[int, ...]] = []
    where = array("q")
    for number, entries in enumerate((layout.function, layout.layer)):
        for member, entry in enumerate(entries or ()):
            if entry.kind == "file" and entry.source is not None and entry.stat_key is not None:
                paths.append(entry.source)
                keys.append(entry.stat_key)
                where.append(number)
                where.append(member)
    selection = snapshot.encode_selection(fs.facts, fs.listings, paths, keys, fs.started_ns)
    return selection, where.tobytes()


def _size_warnings(function: ArtifactFacts, layer: ArtifactFacts | None) -> list[str]:
    found = (size_warning(f.path, f.size) for f in (function, layer) if f is not None)
    return [warning for warning in found if warning is not None]


def dry_run(request: Request, cwd: Path | None = None) -> Outcome:
    """Everything `build` would decide, without writing a byte (the `plan` command), and what
    a person wants to know besides: what was left out and how big it is, the dev-only packages,
    an estimate of each zip not built yet."""
    fs = ObservedFileSystem()
    context = resolve_context(request, fs, cwd)
    layout = build_layout(context, fs)
    cache = Cache(context.output_dir, context.source, readonly=True)
    try:
        options = context.options
        fn = artifact.inspect(layout.function, context.naming(layer=False), options, cache)
        layer = None
        if layout.layer is not None:
            layer = artifact.inspect(layout.layer, context.naming(layer=True), options, cache)
    finally:
        cache.close()
    estimated = {
        label: estimated_size(entries, options.level)
        for label, facts, entries in (
            ("function", fn, layout.function),
            ("layer", layer, layout.layer),
        )
        if facts is not None and entries is not None and not facts.reused
    }
    warnings = [
        warning
        for label, facts in (("function", fn), ("layer", layer))
        if facts is not None
        and (warning := size_warning(facts.path, facts.size or estimated.get(label, 0)))
    ]
    warnings = layout.warnings + warnings
    try:
        check_unzipped([layout.function, layout.layer or []], layout.packages)
    except LimitError as exc:  # the build refuses it; the plan shows why
        warnings.append(str(exc))
    dev = []
    if context.runtime == "nodejs" and not request.include_dev_dependencies:
        shipped = [p.path for p in layout.packages]
        dev = dev_only(context.packages_from, shipped, context.allowed_roots)
    located = locate_packages(context.packages_from, layout.excluded)
    found = Inventory(groups(layout.excluded, located), dev, estimated)
    current = fn.reused and (layer is None or layer.reused)
    return Outcome(layout, fn, layer, current, warnings, found)


def build_from(request: Request, cwd: Path | None = None) -> Result:
    """Build and return only the result (the library's simplest entry point)."""
    return build(request, cwd).result()


class Planned(NamedTuple):
    """What the plan recorded, for `ensure` to compare with: the zips' base64 sha256 and, to
    name the cause of a difference, the result's content_hash, files_hash and build_options."""

    sha256: str
    layer_sha256: str | None = None
    content_hash: str | None = None
    files_hash: str | None = None
    build_options: str | None = None


class Ensured(NamedTuple):
    """What `ensure` found: the function zip's path and base64 sha256, and how it got there."""

    path: str
    base64sha256: str
    current: bool  # False: (re)built by this run


def ensure(
    request: Request,
    planned: Planned,
    cwd: Path | None = None,
    *,
    key: RequestKey | None = None,
    output_dir: str | None = None,
    speculative: Callable[[], AbstractContextManager[SpeculativePacking | None]] | None = None,
    hold: Hold = _nothing,
) -> Ensured:
    """The apply-time check: rebuild when missing or stale, then make sure the bytes on disk are
    the ones that were planned.

    With `key` (the request as the data source sent it), the data source's snapshot answers
    first (the fast paths): an unchanged tree is checked with a stat per file, a changed one
    patched. Either way the artifacts' bytes are hashed: a file changed in place, its size and
    mtime kept, is rebuilt, and a rebuild that still differs from what it recorded fails.
    `speculative` starts speculative packing for a full build.
    """
    answer = fast_answer(key) if key is not None else None
    if answer is not None:
        result, current = answer.result, answer.current
    else:
        result, current = _built(request, cwd, output_dir, speculative, hold)
    if not _on_disk(result):
        # The cache's record matched the file's size, mtime and inode, not its bytes: remove it
        # so that the build below cannot take it for current.
        for path in _paths(result):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        log.warning(
            "%s changed on disk since it was built; building it again", result["output_path"]
        )
        result, current = _built(request, cwd, output_dir, speculative, hold)
        if not _on_disk(result):
            raise OutputError(
                f"{result['output_path']} does not hold the bytes its build wrote, even after "
                "building it again; is something else writing to the output folder?",
                result["output_path"],
            )
    check_planned(result, planned)
    return Ensured(result["output_path"], result["output_base64sha256"], current)


def _built(
    request: Request,
    cwd: Path | None,
    output_dir: str | None,
    speculative: Callable[[], AbstractContextManager[SpeculativePacking | None]] | None,
    hold: Hold,
) -> tuple[dict[str, str], bool]:
    with speculative() if speculative is not None else contextlib.nullcontext() as packing:
        outcome = build(request, cwd, output_dir=output_dir, speculative=packing, hold=hold)
    return outcome.strings(), outcome.current


def _paths(result: dict[str, str]) -> list[str]:
    return [result[key] for key in ("output_path", "layer_output_path") if key in result]


def _on_disk(result: dict[str, str]) -> bool:
    """Whether each artifact on disk has the base64 sha256 the result gives it."""
    for path, b64 in zip(
        _paths(result),
        [
            result[key]
            for key in ("output_base64sha256", "layer_output_base64sha256")
            if key in result
        ],
        strict=True,
    ):
        digest = hashlib.sha256()
        try:
            with open(path, "rb") as f:
                while block := f.read(1 << 20):
                    digest.update(block)
        except FileNotFoundError:
            return False
        if base64.b64encode(digest.digest()).decode() != b64:
            return False
    return True


def check_planned(result: dict[str, str], planned: Planned) -> None:
    """Fail unless the result's artifacts are the ones that were planned, naming the likely
    cause in one line."""
    checks = [("artifact", "output_path", "output_base64sha256", planned.sha256)]
    if planned.layer_sha256 is not None:
        if "layer_output_path" not in result:
            raise OutputError("--expect-layer-sha256 was given but the request builds no layer")
        checks.append(
            (
                "layer artifact",
                "layer_output_path",
                "layer_output_base64sha256",
                planned.layer_sha256,
            )
        )
    for label, path_key, sha_key, expected in checks:
        if result[sha_key] != expected:
            path = result[path_key]
            raise OutputError(
                f"{label} {path} has sha256 {result[sha_key]} but the plan expected {expected}: "
                f"{_cause(result, planned)}; run terraform plan again",
                path,
            )


# What makes the same files into other bytes, as build_options words it, and what sets it.
_OPTION_SOURCES = {
    "lambdazip-tf": "another lambdazip-tf version",
    "level": "another compression_level",
    "libdeflate": "another deflate module",
    "timestamp": "SOURCE_DATE_EPOCH set differently",
    "for": "another architecture",
}


def _cause(result: dict[str, str], planned: Planned) -> str:
    if planned.files_hash is None or planned.build_options is None:
        return (
            "the sources changed between plan and apply, or plan and apply ran different "
            "lambdazip-tf versions or inputs"
        )
    if result["files_hash"] != planned.files_hash:
        changed = _changed_files(result, planned)
        return "the sources changed between plan and apply" + (f" ({changed})" if changed else "")
    if result["build_options"] != planned.build_options:
        applied = result["build_options"].split(", ")
        differing = [
            (was, now)
            for was, now in zip(planned.build_options.split(", "), applied, strict=False)
            if was != now
        ]
        words = "; ".join(
            f"planned with {was}, applied with {now} "
            f"({_OPTION_SOURCES.get(now.split(' ')[0], 'another option')})"
            for was, now in differing
        )
        return f"the same files were written differently: {words or result['build_options']}"
    return (
        "the same files and options gave other bytes: plan and apply ran lambdazip-tf with "
        "different zip writers or deflate modules"
    )


def _changed_files(result: dict[str, str], planned: Planned) -> str:
    """Which files differ, where the planned zip is still here (on the machine that planned)."""
    if planned.content_hash is None or "layer_output_path" in result:
        return ""
    new = result["output_path"]
    suffix = f"-{result['content_hash'][:16]}.zip"  # named by content hash, not output_path
    if not new.endswith(suffix):
        return ""
    old = new[: -len(suffix)] + f"-{planned.content_hash[:16]}.zip"
    if old == new or not os.path.isfile(old):
        return ""
    try:
        with zipfile.ZipFile(old) as before, zipfile.ZipFile(new) as after:
            was = {i.filename: (i.CRC, i.external_attr) for i in before.infolist()}
            now = {i.filename: (i.CRC, i.external_attr) for i in after.infolist()}
    except (OSError, zipfile.BadZipFile):
        return ""
    words = [f"{n} added" for n in sorted(now.keys() - was.keys())]
    words += [f"{n} removed" for n in sorted(was.keys() - now.keys())]
    words += [f"{n} changed" for n in sorted(was.keys() & now.keys()) if was[n] != now[n]]
    more = f" and {len(words) - 3} more" if len(words) > 3 else ""
    return ", ".join(words[:3]) + more
