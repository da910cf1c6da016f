"""The build pipeline: the one module that joins the core flow and the speed machinery.

request -> selection and layout (core/layout.py) -> each artifact found current or written
(speed/artifact.py) -> result (core/outputs.py). `build` serves external mode and
`lambdazip-tf build`, `dry_run` serves `plan` (it writes nothing), and `ensure` the apply-time
check (docs/design.md, "The program"). With a snapshot key, what the build read is recorded
for the next run's fast paths (speed/snapshot.py).
"""

from __future__ import annotations

import logging
import threading
import time
from array import array
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .core.filesystem import ObservedFileSystem
from .core.layout import Layout, build_layout, check_output_dir, resolve_context
from .core.limits import check_unzipped, size_warning
from .core.outputs import ArtifactFacts, combined_hash, result_strings
from .core.request import Request, Result
from .core.staging import remove_stale_temps
from .errors import OutputError
from .speed import artifact, snapshot
from .speed.cache import Cache
from .speed.pool import Packer
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

    @property
    def content_hash(self) -> str:
        """The function's content hash, combined with the layer's when there is one."""
        layer = self.layer.content_hash if self.layer is not None else None
        return combined_hash(self.function.content_hash, layer)

    def strings(self) -> dict[str, str]:
        """The result as external mode prints it: a flat object of strings."""
        return result_strings(self.function, self.layer)

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
) -> Outcome:
    """Build (or find current) the artifacts a request describes.

    `output_dir` is the request's output folder when the caller has worked it out already.
    With `snapshot_key`, what this build read is recorded for the fast paths; with
    `speculative`, files packed speculatively are taken from there. `hold` is given what the
    build is done with, for a process that exits without freeing it.
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
            fn = artifact.produce(layout.function, namings[0], options, cache, packer, hold)
            layer = None
            if layout.layer is not None:
                layer = artifact.produce(layout.layer, namings[1], options, cache, packer, hold)
        packing.set()  # already set, unless nothing was packed (the artifacts were current)
        warnings = _size_warnings(fn, layer)
        for warning in warnings:
            log.warning("%s", warning)
        current = fn.reused and (layer is None or layer.reused)
        outcome = Outcome(layout, fn, layer, current, warnings)
        selected = selection.result() if selection is not None else None
        with cache.batch():  # the artifacts' records, the snapshot and the digests: one commit
            if snapshot_key is not None and selected is not None:
                made = [(fn, namings[0])] + ([] if layer is None else [(layer, namings[1])])
                encoded = snapshot.encode(
                    selected[0], made, warnings, context.source, selected[1], options
                )
                cache.save_snapshot(snapshot_key, encoded)
            cache.prune(keep=[f.path for f in (fn, layer) if f is not None])
            cache.save()
        remove_stale_temps(context.output_dir)
    finally:
        packing.set()
        background.shutdown(cancel_futures=True)
        cache.close()
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
    """Everything `build` would decide, without writing a byte (the `plan` command)."""
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
    current = fn.reused and (layer is None or layer.reused)
    return Outcome(layout, fn, layer, current, _size_warnings(fn, layer))


def build_from(request: Request, cwd: Path | None = None) -> Result:
    """Build and return only the result (the library's simplest entry point)."""
    return build(request, cwd).result()


def ensure(
    request: Request,
    expect_b64: str,
    expect_layer_b64: str | None = None,
    cwd: Path | None = None,
    *,
    output_dir: str | None = None,
    speculative: SpeculativePacking | None = None,
    hold: Hold = _nothing,
) -> Outcome:
    """Rebuild when missing or stale, then check the artifacts are the ones that were planned."""
    outcome = build(request, cwd, output_dir=output_dir, speculative=speculative, hold=hold)
    fn, layer = outcome.function, outcome.layer
    check_planned(
        (fn.path, fn.base64sha256),
        None if layer is None else (layer.path, layer.base64sha256),
        expect_b64,
        expect_layer_b64,
    )
    return outcome


def check_planned(
    function: tuple[str, str],
    layer: tuple[str, str] | None,
    expect_b64: str,
    expect_layer_b64: str | None,
) -> None:
    """Fail unless the artifacts, as (path, base64 sha256), are the ones that were planned."""
    checks = [("artifact", *function, expect_b64)]
    if expect_layer_b64 is not None:
        if layer is None:
            raise OutputError("--expect-layer-sha256 was given but the request builds no layer")
        checks.append(("layer artifact", *layer, expect_layer_b64))
    for label, path, actual, expected in checks:
        if actual != expected:
            raise OutputError(
                f"{label} {path} has sha256 {actual} but the plan expected "
                f"{expected}: the sources changed between plan and apply, or plan and apply "
                "ran different lambdazip-tf versions or inputs; run terraform plan again",
                path,
            )
