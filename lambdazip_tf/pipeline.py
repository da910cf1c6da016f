"""The build pipeline: the one module that joins the core flow, the runtimes and the speed
machinery.

request -> context (core/context.py, with the runtimes) -> selection and layout
(core/layout.py) -> each artifact found current or written (speed/artifact.py) -> result
(core/outputs.py). `build` serves external mode, `lambdazip-tf build` and the apply-time check
(planned.py), `dry_run` serves `plan` (it writes nothing) (docs/design.md, "The program").
With a snapshot key, what the build read is recorded for the next run's fast paths
(speed/snapshot.py).
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

from .core.context import Context, check_output_dir, resolve_context
from .core.filesystem import ObservedFileSystem
from .core.inventory import Group, Inventory, estimated_size, groups
from .core.layout import Layout, build_layout
from .core.limits import check_unzipped, size_warning
from .core.outputs import ArtifactFacts, build_options, combined_hash, result_strings
from .core.progress import Progress
from .core.request import Request, Result
from .core.runtime import Unshipped
from .core.staging import remove_stale_temps
from .errors import LimitError
from .runtimes import RUNTIMES
from .speed import artifact, snapshot
from .speed.cache import Cache
from .speed.pool import Packer
from .speed.speculative import SpeculativePacking

log = logging.getLogger(__name__)

Hold = Callable[[object], None]


def drop(_: object) -> None:
    """The default `hold`: keep nothing past its use."""


@dataclass
class Outcome:
    """Everything a build or a dry run learned."""

    layout: Layout
    artifacts: list[ArtifactFacts]  # one for each of the layout's parts, in their order
    warnings: list[str] = field(default_factory=list)
    inventory: Inventory | None = None  # dry runs only

    @property
    def function(self) -> ArtifactFacts:
        """The function zip."""
        return self.artifacts[0]

    @property
    def layer(self) -> ArtifactFacts | None:
        """The layer zip, when there is one."""
        return self.artifacts[1] if len(self.artifacts) > 1 else None

    @property
    def current(self) -> bool:
        """Whether every artifact was current already (nothing was written)."""
        return all(facts.reused for facts in self.artifacts)

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
    hold: Hold = drop,
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
    context = resolve_context(request, fs, RUNTIMES, cwd, output_dir)
    layout = build_layout(context, fs)
    log.debug("layout: %d entries in %.3f s", len(layout.function), time.perf_counter() - started)
    check_unzipped([part.entries for part in layout.parts], layout.packages)
    check_output_dir(context.output_dir)
    cache = Cache(context.output_dir, context.source, hold=hold)
    namings = [context.naming(layer=part.is_layer) for part in layout.parts]
    background = ThreadPoolExecutor(1)
    packing = threading.Event()
    if progress is not None:
        files = [e for part in layout.parts for e in part.entries if e.kind == "file"]
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
            made = [
                artifact.produce(part.entries, naming, options, cache, packer, hold, progress)
                for part, naming in zip(layout.parts, namings, strict=True)
            ]
        packing.set()  # already set, unless nothing was packed (the artifacts were current)
        warnings = layout.warnings + _size_warnings(made)
        for warning in warnings:
            log.warning("%s", warning)
        outcome = Outcome(layout, made, warnings)
        selected = selection.result() if selection is not None else None
        with cache.batch():  # the artifacts' records, the snapshot and the digests: one commit
            if snapshot_key is not None and selected is not None:
                encoded = snapshot.encode(
                    selected[0],
                    list(zip(made, namings, strict=True)),
                    warnings,
                    context.source,
                    selected[1],
                    options,
                    layout.warnings,
                )
                cache.save_snapshot(snapshot_key, encoded)
            cache.prune(keep=[facts.path for facts in made])
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
    members = array("q")
    for number, part in enumerate(layout.parts):
        for member, entry in enumerate(part.entries):
            if entry.kind == "file" and entry.source is not None and entry.stat_key is not None:
                paths.append(entry.source)
                keys.append(entry.stat_key)
                members.append(number)
                members.append(member)
    selection = snapshot.encode_selection(fs.facts, fs.listings, paths, keys, fs.started_ns)
    return selection, members.tobytes()


def _size_warnings(made: list[ArtifactFacts], estimated: list[int] | None = None) -> list[str]:
    """A warning for each artifact over the direct-upload limit (by its size, or, for one not
    built, the estimate)."""
    sizes = [f.size or (estimated[i] if estimated else 0) for i, f in enumerate(made)]
    found = (size_warning(f.path, size) for f, size in zip(made, sizes, strict=True))
    return [warning for warning in found if warning is not None]


def dry_run(request: Request, cwd: Path | None = None) -> Outcome:
    """Everything `build` would decide, without writing a byte (the `plan` command), and what
    a person wants to know besides: what was left out and how big it is, the dev-only packages,
    an estimate of each zip not built yet."""
    fs = ObservedFileSystem()
    context = resolve_context(request, fs, RUNTIMES, cwd)
    layout = build_layout(context, fs)
    cache = Cache(context.output_dir, context.source, readonly=True)
    options = context.options
    try:
        made = [
            artifact.inspect(part.entries, context.naming(layer=part.is_layer), options, cache)
            for part in layout.parts
        ]
    finally:
        cache.close()
    estimates = [
        0 if facts.reused else estimated_size(part.entries, options.level)
        for part, facts in zip(layout.parts, made, strict=True)
    ]
    warnings = layout.warnings + _size_warnings(made, estimates)
    try:
        check_unzipped([part.entries for part in layout.parts], layout.packages)
    except LimitError as exc:  # the build refuses it; the plan shows why
        warnings.append(str(exc))
    found = Inventory(
        *_unshipped(context, layout), _estimated(layout, made, estimates), _notes(context, layout)
    )
    return Outcome(layout, made, warnings, found)


def _notes(context: Context, layout: Layout) -> tuple[str, ...]:
    """The runtime's notes on the shipped files, each zip as the runtime laid it out."""
    runtime = context.chosen_runtime
    if runtime is None:
        return ()
    zips = [
        [e._replace(arc=e.arc.removeprefix(runtime.layer_prefix)) for e in part.entries]
        if part.is_layer
        else part.entries
        for part in layout.parts
    ]
    return tuple(runtime.notes(zips, layout.excluded))


def _unshipped(context: Context, layout: Layout) -> tuple[list[Group], list[Unshipped]]:
    """What was left out, grouped by reason and measured, and the dev-only packages."""
    runtime = context.chosen_runtime
    if runtime is None:
        return groups(layout.excluded, {}), []
    query = context.query()
    dev = runtime.unshipped(query, [p.path for p in layout.packages])
    return groups(layout.excluded, runtime.locate(query, layout.excluded)), dev


def _estimated(layout: Layout, made: list[ArtifactFacts], estimates: list[int]) -> dict[str, int]:
    """Each zip not built yet, by its label: what it would weigh."""
    return {
        part.label: estimate
        for part, facts, estimate in zip(layout.parts, made, estimates, strict=True)
        if not facts.reused
    }


def build_from(request: Request, cwd: Path | None = None) -> Result:
    """Build and return only the result (the library's simplest entry point)."""
    return build(request, cwd).result()
