"""From a resolved request to the sorted entries of the function zip and the layer zip
(docs/design.md, "Layout").

Walks the function's own files, asks the runtime for its dependencies (core/runtime.py), forces
in the request's `includes`, resolves links, judges native files for the target, and splits
what the runtime owns into the layer when asked. Nothing here knows a language: the runtime
says which folder holds installed dependencies, what it owns, and where a layer keeps it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from ..errors import DependencyError, RequestError
from .binaries import Binary
from .context import Context
from .entries import LINK_MODE, Entry, Excluded, PackageInfo, with_parents, with_prefix
from .filesystem import ObservedFileSystem
from .forced import add_includes
from .mounts import check_links, check_nothing_below_links
from .native import judge, own_refusal
from .paths import arc_parents
from .runtime import Dependencies, Forced, Native
from .selection import Collector, ExcludeRules


class Part(NamedTuple):
    """One zip of a build: the function's, or the layer's."""

    label: str  # "function" or "layer"
    entries: list[Entry]

    @property
    def is_layer(self) -> bool:
        """Whether this is the layer zip."""
        return self.label == "layer"


@dataclass
class Layout:
    """What goes into each zip, and what was left out."""

    context: Context
    parts: list[Part]  # the function zip, then the layer zip when the request asks for one
    excluded: list[Excluded] = field(default_factory=list)
    packages: list[PackageInfo] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # the build still succeeds
    forced: list[Forced] = field(default_factory=list)  # in, though nothing declares them
    native: list[Native] = field(default_factory=list)  # what platform-bound code was built for

    @property
    def function(self) -> list[Entry]:
        """The function zip's entries."""
        return self.parts[0].entries

    @property
    def layer(self) -> list[Entry] | None:
        """The layer zip's entries, when there is a layer."""
        return self.parts[1].entries if len(self.parts) > 1 else None


def build_layout(context: Context, fs: ObservedFileSystem) -> Layout:
    """Select every entry of the function zip and, with `layer`, of the layer zip."""
    request = context.request
    runtime = context.chosen_runtime
    collector = Collector(
        fs, allowed_roots=context.allowed_roots, dereference=request.symlinks == "dereference"
    )
    own_rules = ExcludeRules.build(request.excludes, context.own_defaults())
    skip = frozenset({fs.realpath(str(context.output_dir))})
    # The folders of installed dependencies: the runtime's crawl finds what ships from them;
    # under runtime files they are left out by default, and `includes` reach into them only
    # when a pattern names them.
    installed = frozenset(r.installed for r in ((runtime,) if runtime else context.runtimes))
    query = context.query()
    collector.add_tree(
        context.source,
        "",
        own_rules,
        skip_dirs=skip,
        skip_quietly=runtime.skipped(fs, query) if runtime else frozenset(),
        skip_names=installed if runtime else frozenset(),
    )
    deps = None
    if runtime is not None:
        deps = runtime.collect(collector, query, ExcludeRules.build(request.excludes), own_rules)
    roots = (context.source, context.packages_from)
    forced = (deps.forced if deps else []) + add_includes(
        collector, request.includes, roots, installed, skip, own_rules
    )
    collector.resolve_links()
    entries, built = _judged(context, collector, deps)
    link = request.layer_link
    if link is not None:
        clash = [e.arc for e in entries if _under(e.arc, frozenset({link[0]}))]
        if clash and not request.layer:
            raise RequestError(
                f"node_modules_link adds a {link[0]} link, but dependencies would be stored in "
                f"{link[0]}/ too; set layer = true to move them into the layer",
                key="node_modules_link",
            )
    prefix = runtime.layer_prefix if runtime else ""
    layer = None
    if request.layer and deps is not None:
        moved = [e for e in entries if _under(e.arc, deps.owned)]
        taken = {e.arc for e in moved}
        entries = [e for e in entries if e.arc not in taken]
        layer = with_parents(with_prefix(e, prefix) for e in moved)
    if link is not None:
        entries.append(Entry(arc=link[0], kind="link", mode=LINK_MODE, target=link[1]))
    function = with_parents(entries)
    parts = [Part("function", function)] + ([Part("layer", layer)] if layer is not None else [])
    for part in parts:
        check_nothing_below_links(part.entries, part.label)
    check_links(function, layer, link[0] if link else None)
    check_one_version_per_path(deps.packages if deps else [])
    excluded = sorted(collector.excluded, key=lambda x: x.arc)
    packages, warnings, native = (
        (deps.packages, list(deps.warnings), list(deps.native)) if deps else ([], [], [])
    )
    native += _native_files(parts, built, prefix)
    return Layout(context, parts, excluded, packages, warnings, forced, native)


def check_one_version_per_path(packages: Sequence[PackageInfo]) -> None:
    """No two packages of different versions land on one archive path: one would overwrite the
    other's files, and the zip would hold neither as installed."""
    held: dict[str, PackageInfo] = {}
    for package in packages:
        other = held.setdefault(package.arc, package)
        if (other.name, other.version) != (package.name, package.version):
            raise DependencyError(
                f"{other.name}@{other.version} ({other.path}) and {package.name}@"
                f"{package.version} ({package.path}) would both be stored at {package.arc}; "
                "please report this with `lambdazip-tf plan` output",
                package=package.name,
            )


def _judged(
    context: Context, collector: Collector, deps: Dependencies | None
) -> tuple[list[Entry], dict[str, Binary]]:
    """The selection without other platforms' copies of binaries the target's copy is beside,
    each native file judged for the target (core/native.py); what was left out is recorded."""
    target = context.target
    selected = list(collector.entries.values())
    runtime = context.chosen_runtime
    # A runtime's convention for prebuilt binaries holds among anyone's files: under runtime
    # files, every runtime's.
    conventions = (runtime,) if runtime else context.runtimes
    left = [x for r in conventions for x in r.other_platforms(selected, target)]
    if left:
        gone = {x.arc for x in left}
        selected = [e for e in selected if e.arc not in gone]
    if deps is not None:
        judged = judge(selected, target, deps.alternatives, deps.refusal)
    else:
        judged = judge(selected, target, {}, own_refusal(target))
    for item in left + judged.left_out:
        collector.exclude(item)
    return judged.entries, judged.built


def _under(arc: str, owned: frozenset[str]) -> bool:
    """Whether `arc` is one of the `owned` archive paths or lies below one."""
    return arc in owned or any(folder in owned for folder in arc_parents(arc))


def _native_files(parts: Sequence[Part], built: dict[str, Binary], prefix: str) -> list[Native]:
    """Each native file in the zips, in their order, with what it was built for (`built` is
    keyed by the path before the layer split, which put `prefix` before the layer's)."""
    found = []
    for part in parts:
        for entry in part.entries:
            arc = entry.arc.removeprefix(prefix) if part.is_layer else entry.arc
            if arc in built:
                found.append(Native("file", entry.arc, built[arc].machine))
    return found
