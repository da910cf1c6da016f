"""The build pipeline: request -> layout -> artifacts (artifact.py) -> result.

DESIGN 2, 6 and 7: `build` (external mode and `lambdazip-tf build`), `dry_run` (`plan`, writes
nothing) and `ensure` (the apply-time check), Lambda's size limits, and the snapshot that the
next external-mode run replays (snapshot.py).
"""

from __future__ import annotations

import logging
import threading
import time
from array import array
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import snapshot
from .artifact import (
    Naming,
    ZipFacts,
    byte_options,
    inspect_artifact,
    naming_for,
    produce_artifact,
    remove_stale_temps,
    result_fields,
)
from .cache import Cache
from .entries import combined_hash
from .errors import LimitError, OutputError
from .exiting import keep
from .fsview import Observed
from .layout import (
    Context,
    Layout,
    build_layout,
    check_output_dir,
    resolve_context,
)
from .limits import MB, UNZIPPED_LIMIT, size_warning
from .packer import Packer
from .request import Request, Result

if TYPE_CHECKING:
    from .early import EarlyPacking

log = logging.getLogger(__name__)


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
        layer = self.layer.content_hash if self.layer is not None else None
        return combined_hash(self.function.content_hash, layer)

    def result(self) -> Result:
        """The DESIGN 4 result."""
        fn, layer = self.function, self.layer
        fields = result_fields(False, str(fn.path), fn.sha256, fn.md5, fn.size)
        if layer is not None:
            fields.update(result_fields(True, str(layer.path), layer.sha256, layer.md5, layer.size))
        return Result(
            **fields,
            content_hash=self.content_hash,
            file_count=str(fn.file_count + (layer.file_count if layer else 0)),
            symlink_count=str(fn.symlink_count + (layer.symlink_count if layer else 0)),
            unzipped_size=str(fn.unzipped_size + (layer.unzipped_size if layer else 0)),
        )


def build(
    request: Request,
    cwd: Path | None = None,
    *,
    snapshot_key: str | None = None,
    early: EarlyPacking | None = None,
) -> Outcome:
    """Build (or find current) the artifacts a request describes.

    With `snapshot_key`, what this build read is recorded for the fast paths (snapshot.py);
    with `early`, files packed early (early.py) are taken from there.
    """
    started = time.perf_counter()
    fs = Observed()
    context = resolve_context(request, fs, cwd)
    layout = build_layout(context, fs)
    log.debug("layout: %d entries in %.3f s", len(layout.function), time.perf_counter() - started)
    _check_unzipped(layout)
    check_output_dir(context.output_dir)
    cache = Cache(context.output_dir, context.source)
    namings = [naming_for(context, "function"), naming_for(context, "layer")]
    background = ThreadPoolExecutor(1)
    packing = threading.Event()
    try:
        # The snapshot's bulk depends on the selection alone: encoded while the pool packs
        # files and this thread mostly waits, off the cold build's tail (0.1-0.15 s on the
        # benchmark tree); not before, when it would hold the GIL while the pool is not started.
        selection = (
            background.submit(_selection_snapshot, fs, layout, packing)
            if snapshot_key is not None
            else None
        )
        level = context.request.compression_level
        with Packer(level, early=early, started=packing) as packer:
            fn = produce_artifact(layout.function, namings[0], context, cache, packer)
            layer = None
            if layout.layer is not None:
                layer = produce_artifact(layout.layer, namings[1], context, cache, packer)
        packing.set()  # already set, unless nothing was packed (the artifacts were current)
        outcome = Outcome(layout, fn, layer, current=fn.reused and (layer is None or layer.reused))
        warnings = _size_warnings(outcome)
        for warning in warnings:
            log.warning("%s", warning)
        selected = selection.result() if selection is not None else None
        with cache.batch():  # the artifacts' records, the snapshot and the digests: one commit
            if snapshot_key is not None and selected is not None:
                _save_snapshot(snapshot_key, selected, context, outcome, namings, warnings, cache)
            cache.prune(keep=[f.path for f in (fn, layer) if f is not None])
            cache.save()
        remove_stale_temps(context.output_dir)
    finally:
        packing.set()
        background.shutdown(cancel_futures=True)
        cache.close()
    log.debug("build done in %.3f s", time.perf_counter() - started)
    keep(fs, selection)
    return outcome


def _selection_snapshot(
    fs: Observed, layout: Layout, packing: threading.Event
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


def _save_snapshot(
    key: str,
    selection: tuple[bytes | None, bytes],
    context: Context,
    outcome: Outcome,
    namings: list[Naming],
    warnings: list[str],
    cache: Cache,
) -> None:
    """Record what this build read and made, for the next external-mode run (snapshot.py)."""
    artifacts = [
        (str(facts.path), (naming.fixed, naming.folder, naming.stem), facts.content_hash)
        for facts, naming in zip((outcome.function, outcome.layer), namings, strict=True)
        if facts is not None
    ]
    rebuild = {
        "root": context.source,
        "where": selection[1],
        "options": byte_options(context),  # the level and timestamp the change path writes with
    }
    encoded = snapshot.encode(
        selection[0], outcome.result().as_strings(), artifacts, warnings, rebuild
    )
    cache.save_snapshot(key, encoded)


def _size_warnings(outcome: Outcome) -> list[str]:
    found = (
        size_warning(facts.path, facts.size)
        for facts in (outcome.function, outcome.layer)
        if facts is not None
    )
    return [warning for warning in found if warning is not None]


def dry_run(request: Request, cwd: Path | None = None) -> Outcome:
    """Everything `build` would decide, without writing a byte (the `plan` command)."""
    fs = Observed()
    context = resolve_context(request, fs, cwd)
    layout = build_layout(context, fs)
    cache = Cache(context.output_dir, context.source, readonly=True)
    try:
        fn = inspect_artifact(layout.function, naming_for(context, "function"), context, cache)
        layer = None
        if layout.layer is not None:
            layer = inspect_artifact(layout.layer, naming_for(context, "layer"), context, cache)
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
    early: EarlyPacking | None = None,
) -> Outcome:
    """Rebuild when missing or stale, then check the artifacts are the ones that were planned."""
    outcome = build(request, cwd, early=early)
    fn, layer = outcome.function, outcome.layer
    check_planned(
        (str(fn.path), fn.base64sha256),
        None if layer is None else (str(layer.path), layer.base64sha256),
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


# -- internals ------------------------------------------------------------------------------


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
