"""From a request to the sorted entries of the function zip and the layer zip.

Resolves the request's paths and defaults (docs/design.md, "The request"), walks the function's
files, runs the dependency crawl for runtime nodejs, and splits dependencies into the layer when
asked (docs/design.md, "Layout").
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import OutputError, RequestError, SourceError
from .contenthash import ByteOptions
from .engines import engine_warnings, major_of
from .entries import LINK_MODE, Entry, Excluded, PackageInfo, with_parents, with_prefix
from .filesystem import ObservedFileSystem
from .nodejs import crawl
from .outputs import Naming, naming_for, output_folder
from .platform import Gate, Target, lockfile_of, native_files
from .request import Request
from .selection import Collector, ExcludeRules

LAYER_PREFIX = "nodejs/"


@dataclass(frozen=True)
class Context:
    """The request with every default and path resolved."""

    request: Request
    source: str
    output_dir: Path
    name: str
    runtime: str
    allowed_roots: tuple[str, ...]
    options: ByteOptions

    def naming(self, *, layer: bool) -> Naming:
        """Where the function's (or the layer's) artifact goes."""
        fixed = self.request.output_path
        return naming_for(
            str(self.output_dir), fixed.name if fixed is not None else None, self.name, layer
        )


@dataclass
class Layout:
    """What goes into each zip, and what was left out."""

    context: Context
    function: list[Entry]
    layer: list[Entry] | None
    excluded: list[Excluded] = field(default_factory=list)
    packages: list[PackageInfo] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # the build still succeeds


def resolve_context(
    request: Request,
    fs: ObservedFileSystem,
    cwd: Path | None = None,
    output_dir: str | None = None,
) -> Context:
    """Check the source folder and fill the request's defaults.

    `output_dir` is the request's output folder when the caller has worked it out already
    (outputs.output_folder, before validation); otherwise it is worked out here.
    """
    base = cwd or Path.cwd()
    source_path = str(base / request.source_dir)
    if not fs.exists(source_path):
        # A relative path is taken from the folder the tool runs in: under Terraform, the root
        # module's, which a newcomer may not expect.
        where = "" if request.source_dir.is_absolute() else f" (relative to {base})"
        raise SourceError(f"source_dir {request.source_dir} does not exist{where}", source_path)
    if not fs.isdir(source_path):
        raise SourceError(f"source_dir {source_path} is not a folder", source_path)
    source = fs.realpath(source_path)
    folder = output_dir or output_folder(request.output_path, request.output_dir, base)
    if fs.realpath(folder) == source:
        # Only a folder inside source_dir can be left out of the zip: here every build would
        # zip the previous builds' artifacts and the cache.
        key = "output_path" if request.output_path is not None else "output_dir"
        raise RequestError(
            f"request key {key!r}: the artifacts would go in source_dir {source} itself, and "
            "each build would zip the last one's; use a folder inside it (such as .lambdazip) "
            "or outside it",
            key=key,
        )
    name = request.name or os.path.basename(source) or "function"
    if request.name is None and not _safe_name(name):
        name = "".join(c if c.isalnum() or c in "._-" else "_" for c in name).lstrip(".") or "fn"
    has_manifest = fs.isfile(os.path.join(source, "package.json"))
    runtime = request.runtime or ("nodejs" if has_manifest else "files")
    if runtime == "nodejs" and not has_manifest:
        raise RequestError(
            f'runtime nodejs needs {source}/package.json; add one or set runtime = "files"',
            key="runtime",
        )
    if request.allowed_roots is None:
        roots: tuple[str, ...] = (source, *_default_root(fs, source))
    else:
        roots = (source, *(fs.realpath(str(base / r)) for r in request.allowed_roots))
    if request.layer and runtime != "nodejs":
        raise RequestError("layer = true needs runtime nodejs (a package.json)", key="layer")
    options = ByteOptions.of(
        request.compression_level, os.environ.get("SOURCE_DATE_EPOCH"), request.architecture
    )
    return Context(request, source, Path(folder), name, runtime, roots, options)


def _safe_name(name: str) -> bool:
    return bool(name) and name[0] != "." and all(c.isalnum() or c in "._-" for c in name)


def _default_root(fs: ObservedFileSystem, source: str) -> tuple[str, ...]:
    """The nearest enclosing workspace or repository root (the default allowed_roots)."""
    folder = source
    while True:
        if _is_root_marker(fs, folder):
            return () if folder == source else (folder,)
        parent = os.path.dirname(folder)
        if parent == folder:
            return ()
        folder = parent


def _is_root_marker(fs: ObservedFileSystem, folder: str) -> bool:
    if fs.exists(os.path.join(folder, ".git")) or fs.exists(
        os.path.join(folder, "pnpm-workspace.yaml")
    ):
        return True
    manifest_path = os.path.join(folder, "package.json")
    if not fs.isfile(manifest_path):
        return False
    try:
        manifest = json.loads(fs.read_bytes(manifest_path))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and "workspaces" in manifest


def build_layout(context: Context, fs: ObservedFileSystem) -> Layout:
    """Select every entry of the function zip and, with `layer`, of the layer zip."""
    request = context.request
    nodejs = context.runtime == "nodejs"
    collector = Collector(
        fs, allowed_roots=context.allowed_roots, dereference=request.symlinks == "dereference"
    )
    own_rules = ExcludeRules.build(request.excludes, defaults=True, node_modules=not nodejs)
    skip = frozenset({fs.realpath(str(context.output_dir))})
    collector.add_tree(
        context.source,
        "",
        own_rules,
        skip_dirs=skip,
        skip_node_modules="all" if nodejs else "",
    )
    packages: list[PackageInfo] = []
    gate = Gate(Target(request.architecture), lockfile_of(context.source))
    if nodejs:
        dep_rules = ExcludeRules.build(request.excludes, defaults=False, node_modules=False)
        packages = crawl(
            context.source,
            context.allowed_roots,
            request.exclude_packages,
            include_dev=request.include_dev_dependencies,
            collector=collector,
            rules=dep_rules,
            gate=gate,
        )
    collector.resolve_links()
    entries, prebuilt = native_files(list(collector.entries.values()), packages, gate)
    collector.excluded += prebuilt
    collector.excluded += [
        Excluded(f"node_modules/{name}", reason, real) for name, reason, real in gate.left_out
    ]
    link = request.node_modules_link
    if link is not None:
        clash = [
            e.arc for e in entries if e.arc == "node_modules" or e.arc.startswith("node_modules/")
        ]
        if clash and not request.layer:
            raise RequestError(
                "node_modules_link adds a node_modules link, but dependencies would be stored in "
                "node_modules/ too; set layer = true to move them into the layer",
                key="node_modules_link",
            )
    layer: list[Entry] | None = None
    if request.layer:
        deps = [e for e in entries if e.arc == "node_modules" or e.arc.startswith("node_modules/")]
        moved = set(deps)
        entries = [e for e in entries if e not in moved]
        layer = with_parents(with_prefix(e, LAYER_PREFIX) for e in deps)
    if link is not None:
        entries.append(Entry(arc="node_modules", kind="link", mode=LINK_MODE, target=link))
    excluded = sorted(collector.excluded, key=lambda x: x.arc)
    major = major_of(request.node_version) if request.node_version else None
    warnings = engine_warnings(packages, major) if major is not None else []
    return Layout(context, with_parents(entries), layer, excluded, packages, warnings)


def check_output_dir(output_dir: Path) -> None:
    """Create the output folder, failing with one clear line when that is impossible."""
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"cannot create output folder {output_dir}: {exc.strerror}", output_dir
        ) from None
    if not os.access(output_dir, os.W_OK | os.X_OK):
        raise OutputError(f"output folder {output_dir} is not writable", output_dir)
