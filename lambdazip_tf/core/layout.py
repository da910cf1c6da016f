"""From a request to the sorted entries of the function zip and the layer zip.

Resolves the request's paths and defaults (docs/design.md, "The request"), walks the function's
files, runs the dependency crawl for runtime nodejs, and splits dependencies into the layer when
asked (docs/design.md, "Layout").
"""

from __future__ import annotations

import json
import os
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import LinkError, OutputError, RequestError, SourceError
from .contenthash import ByteOptions
from .engines import engine_warnings, major_of
from .entries import (
    LINK_MODE,
    Entry,
    Excluded,
    PackageInfo,
    file_entry,
    with_parents,
    with_prefix,
)
from .filesystem import ObservedFileSystem
from .forced import Forced, add_includes, add_prisma, prisma_alternatives
from .nodejs import crawl
from .outputs import Naming, naming_for, output_folder
from .platform import (
    Binary,
    Gate,
    Native,
    Target,
    lockfile_of,
    native_files,
    platform_packages,
)
from .request import Request
from .selection import Collector, ExcludeRules, is_within

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
    package_dir: str = ""  # the real folder whose package.json the crawl starts from

    @property
    def packages_from(self) -> str:
        """The folder whose package.json and node_modules supply the dependencies."""
        return self.package_dir or self.source

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
    forced: list[Forced] = field(default_factory=list)  # in, though nothing declares them
    native: list[Native] = field(default_factory=list)  # what platform-bound code was built for


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
    package_dir = _package_dir(request, fs, base, source)
    packages_from = package_dir or source
    has_manifest = fs.isfile(os.path.join(packages_from, "package.json"))
    runtime = request.runtime or ("nodejs" if has_manifest else "files")
    if runtime == "nodejs" and not has_manifest:
        raise RequestError(
            f"runtime nodejs needs {source}/package.json; add one, set package_dir to the "
            'folder that has it, or set runtime = "files"',
            key="runtime",
        )
    if package_dir and runtime != "nodejs":
        raise RequestError(
            'package_dir supplies dependencies, which runtime = "files" does not ship; '
            "remove one of the two",
            key="package_dir",
        )
    if request.allowed_roots is None:
        roots: tuple[str, ...] = (source, *_default_root(fs, source))
    else:
        roots = (source, *(fs.realpath(str(base / r)) for r in request.allowed_roots))
    if package_dir and not any(is_within(package_dir, root) for root in roots):
        roots = (*roots, package_dir)
    if request.runtime is None and not package_dir and not has_manifest:
        _refuse_hidden_dependencies(fs, source, roots)
    if request.layer and runtime != "nodejs":
        raise RequestError("layer = true needs runtime nodejs (a package.json)", key="layer")
    options = ByteOptions.of(
        request.compression_level, os.environ.get("SOURCE_DATE_EPOCH"), request.architecture
    )
    return Context(request, source, Path(folder), name, runtime, roots, options, package_dir)


def _package_dir(request: Request, fs: ObservedFileSystem, base: Path, source: str) -> str:
    """The real package_dir, checked; "" when it is not set or is source_dir itself."""
    if request.package_dir is None:
        return ""
    path = str(base / request.package_dir)
    if not fs.isdir(path):
        where = "" if request.package_dir.is_absolute() else f" (relative to {base})"
        raise RequestError(
            f"package_dir {request.package_dir} is not a folder{where}", key="package_dir"
        )
    real = fs.realpath(path)
    if not fs.isfile(os.path.join(real, "package.json")):
        raise RequestError(
            f"package_dir {real} has no package.json; name the folder that holds the "
            "function's package.json and node_modules",
            key="package_dir",
        )
    return "" if real == source else real


def _refuse_hidden_dependencies(
    fs: ObservedFileSystem, source: str, roots: tuple[str, ...]
) -> None:
    """A source_dir without package.json below a package with installed dependencies (a
    TypeScript project's dist/) would zip without them, and fail at its first cold start:
    the request must say which it means."""
    folder = os.path.dirname(source)
    while any(is_within(folder, root) for root in roots[1:]):
        installed = fs.isdir(os.path.join(folder, "node_modules"))
        if installed and _manifest_object(fs, folder).get("dependencies"):
            manifest_path = os.path.join(folder, "package.json")
            raise RequestError(
                f"source_dir {source} has no package.json, but {manifest_path} above it "
                "has installed dependencies, which this zip would leave out; set "
                f'package_dir = "{folder}" to ship them, or runtime = "files" to zip '
                "the folder as it is",
                key="package_dir",
            )
        parent = os.path.dirname(folder)
        if parent == folder:
            return
        folder = parent


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
    return "workspaces" in _manifest_object(fs, folder)


def _manifest_object(fs: ObservedFileSystem, folder: str) -> dict[str, Any]:
    """A folder's package.json, or {} when it has none or it is not a JSON object: these
    checks look for one key, and the crawl names a bad package.json that it needs."""
    path = os.path.join(folder, "package.json")
    if not fs.isfile(path):
        return {}
    try:
        manifest = json.loads(fs.read_bytes(path))
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


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
    forced: list[Forced] = []
    prisma_warnings: list[str] = []
    gate = Gate(Target(request.architecture), lockfile_of(context.packages_from))
    if nodejs:
        dep_rules = ExcludeRules.build(request.excludes, defaults=False, node_modules=False)
        if context.package_dir:
            _package_manifest(context, collector, own_rules)
        packages = crawl(
            context.packages_from,
            context.allowed_roots,
            request.exclude_packages,
            include_dev=request.include_dev_dependencies,
            collector=collector,
            rules=dep_rules,
            own_rules=own_rules,  # under nodejs, the function's own rules: no node_modules rule
            gate=gate,
            keep=_kept(context),
        )
        forced, prisma_warnings = add_prisma(collector, packages, dep_rules)
    roots = (context.source, context.packages_from)
    forced += add_includes(collector, request.includes, roots, skip, own_rules)
    collector.resolve_links()
    alternatives = prisma_alternatives(forced, gate.target)
    selected = list(collector.entries.values())
    entries, left_out, built = native_files(selected, packages, gate, alternatives)
    collector.excluded += left_out
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
    function = with_parents(entries)
    check_links(function, layer, link)
    native = platform_packages(packages) + _native_files(function, layer, built)
    excluded = sorted(collector.excluded, key=lambda x: x.arc)
    major = major_of(request.node_version) if request.node_version else None
    warnings = prisma_warnings + (engine_warnings(packages, major) if major is not None else [])
    return Layout(context, function, layer, excluded, packages, warnings, forced, native)


def _native_files(
    function: list[Entry], layer: list[Entry] | None, built: dict[str, Binary]
) -> list[Native]:
    """Each native file in the zips, in their order, with what it was built for (`built` is
    keyed by the path before the layer split)."""
    found = [Native("file", e.arc, built[e.arc].machine) for e in function if e.arc in built]
    for entry in layer or []:
        arc = entry.arc.removeprefix(LAYER_PREFIX)
        if arc in built:
            found.append(Native("file", entry.arc, built[arc].machine))
    return found


FUNCTION_MOUNT, LAYER_MOUNT = "/var/task", "/opt"
_MAX_HOPS = 40  # as Linux's limit on links followed in one path lookup


def check_links(
    function: list[Entry], layer: list[Entry] | None, node_modules_link: str | None = None
) -> None:
    """Every link in each zip must lead to an entry of the zips as Lambda mounts them (the
    function at /var/task, the layer at /opt), whatever the source tree held: a link the
    split left behind would dangle at run time. `node_modules_link` points at a layer that
    another build makes, and is taken on trust."""
    zips = ((FUNCTION_MOUNT, function), (LAYER_MOUNT, layer or []))
    if not any(e.kind == "link" for _, entries in zips for e in entries):
        return
    mounted = {f"{mount}/{e.arc}": e for mount, entries in zips for e in entries}
    for mount, entries in zips:
        label = "function" if mount == FUNCTION_MOUNT else "layer"
        for entry in entries:
            if entry.kind != "link" or entry.target is None:
                continue
            if mount == FUNCTION_MOUNT and entry.arc == "node_modules" and node_modules_link:
                continue
            where = _follow(f"{mount}/{entry.arc}", mounted)
            if where is None or (
                where not in mounted and where not in (FUNCTION_MOUNT, LAYER_MOUNT)
            ):
                shown = where or "a link cycle"
                raise LinkError(
                    f"link {entry.arc} -> {entry.target} in the {label} zip leads to {shown}, "
                    f"where Lambda finds nothing (the function is mounted at {FUNCTION_MOUNT}, "
                    f'layers at {LAYER_MOUNT}); set symlinks = "dereference" to store what '
                    "it points to in its place, or remove the link",
                    entry.arc,
                    entry.target,
                )


def _follow(path: str, mounted: dict[str, Entry]) -> str | None:
    """Where `path` leads once every link on the way is followed (None: a cycle)."""
    for _ in range(_MAX_HOPS):
        parts = path.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            prefix = "/" + "/".join(parts[:i])
            entry = mounted.get(prefix)
            if entry is not None and entry.kind == "link" and entry.target is not None:
                base = posixpath.dirname(prefix)
                rest = "/".join(parts[i:])
                path = posixpath.normpath(posixpath.join(base, entry.target, rest))
                break
        else:
            return path
    return None


def _kept(context: Context) -> str | None:
    """Where the installed tree keeps its paths and links (nodejs.crawl's `keep`)."""
    request = context.request
    if request.symlinks == "dereference":
        return None  # every package's files at the path Node finds it by, no links
    if context.package_dir or request.layer:
        # The function's own files (or, in a layer, the zip the packages are in) do not hold
        # the package folder's other files: a local package outside node_modules is copied.
        return os.path.join(context.packages_from, "node_modules")
    return context.source


def _package_manifest(context: Context, collector: Collector, rules: ExcludeRules) -> None:
    """package_dir's package.json at the zip's root when source_dir has none: Node reads
    "type" (ESM or CommonJS) from the nearest package.json above the handler."""
    if "package.json" in collector.entries or rules.reason("package.json", is_dir=False):
        return
    path = os.path.join(context.package_dir, "package.json")
    collector.entries["package.json"] = file_entry("package.json", path, collector.fs.stat(path))


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
