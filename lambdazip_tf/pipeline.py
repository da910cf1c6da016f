"""The build pipeline: the one module that joins the core flow, the runtimes and the speed
machinery.

request -> context (core/context.py, with the runtimes) -> selection and layout
(core/layout.py) -> each artifact found current or written (speed/artifact.py) -> result
(core/outputs.py). `build` serves external mode and `lambdazip-tf build`, `dry_run` serves
`plan` (it writes nothing), and `ensure` the apply-time check (docs/design.md, "The
program"). With a snapshot key, what the build read is recorded for the next run's fast paths
(speed/snapshot.py).
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
from .errors import LimitError, OutputError
from .runtimes import RUNTIMES
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
    found = Inventory(*_unshipped(context, layout), _estimated(layout, made, estimates))
    return Outcome(layout, made, warnings, found)


def _unshipped(context: Context, layout: Layout) -> tuple[list[Group], list[Unshipped]]:
    """What was left out, grouped by reason and measured, and the dev-only packages."""
    runtime = context.dependencies
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
