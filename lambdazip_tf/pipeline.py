"""The build pipeline: request -> layout -> artifacts (artifact.py) -> result.

DESIGN 2, 6 and 7: `build` (external mode and `lambdazip-tf build`), `dry_run` (`plan`, writes
nothing) and `ensure` (the apply-time check), Lambda's size limits, and the snapshot that the
next external-mode run replays (snapshot.py).
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import snapshot
from .artifact import (
    ZipFacts,
    artifact_namer,
    inspect_artifact,
    produce_artifact,
    remove_stale_temps,
)
from .cache import Cache
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
            fn = produce_artifact(
                layout.function, artifact_namer(context, "function"), context, cache, packer
            )
            layer = None
            if layout.layer is not None:
                layer = produce_artifact(
                    layout.layer, artifact_namer(context, "layer"), context, cache, packer
                )
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
        remove_stale_temps(context.output_dir)
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
        fn = inspect_artifact(layout.function, artifact_namer(context, "function"), context, cache)
        layer = None
        if layout.layer is not None:
            layer = inspect_artifact(layout.layer, artifact_namer(context, "layer"), context, cache)
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
