"""The production dependency crawl (docs/design.md, "Dependencies").

What npm, pnpm or yarn installed is the authority: no reinstall, no bundler. Starting from the
function's package.json, each dependency name is resolved the way Node does (placement.resolve),
breadth first, each package's files added to the collector where `Slots` places them.
"""

from __future__ import annotations

import fnmatch
import os
from collections import deque
from collections.abc import Sequence
from typing import Any, NamedTuple

from ...core.entries import Excluded, PackageInfo
from ...core.filesystem import ObservedFileSystem
from ...core.paths import arc_parents, arc_relpath, is_within
from ...core.selection import Collector, ExcludeRules
from ...errors import DependencyError
from .gate import Gate
from .lockfiles import not_installed
from .manifest import INSTALLED, MANIFEST, Dependency, declared, read_manifest
from .placement import Edge, Slots, resolve
from .platforms import described, platform_fields


class Scope(NamedTuple):
    """What the crawl ships: plain values from the request."""

    packages_from: str  # the package folder whose package.json the crawl starts from
    allowed_roots: Sequence[str]
    exclude_packages: Sequence[str]
    include_dev: bool
    keep: str | None  # where the installed tree keeps its paths (placement.Slots)


class _Queued(NamedTuple):
    arc: str  # the package's archive folder ("" for the function)
    real: str
    is_root: bool


class _Crawl:
    """The crawl's state: what has been placed, by whom, and what is left to visit."""

    def __init__(
        self,
        scope: Scope,
        collector: Collector,
        rules: ExcludeRules,
        own_rules: ExcludeRules,
        gate: Gate,
    ) -> None:
        self.scope = scope
        self.collector = collector
        self.fs: ObservedFileSystem = collector.fs
        self.rules = rules
        self.own_rules = own_rules
        self.gate = gate
        self.slots = Slots(self.fs, scope.packages_from, scope.keep)
        self.instances: dict[str, str] = {}  # archive folder of a package's files -> real folder
        self.required_by: dict[str, tuple[str, str]] = {}  # package -> (dependent's arc, name)
        self.edges: list[Edge] = []
        self.excluded_names: set[str] = set()
        self.manifests: dict[str, dict[str, Any]] = {}
        self.queue: deque[_Queued] = deque([_Queued("", scope.packages_from, True)])

    def manifest(self, real: str, *, required: bool) -> dict[str, Any]:
        found = self.manifests.get(real)
        if found is None:
            found = self.manifests[real] = read_manifest(self.fs, real, required=required)
        return found

    def run(self) -> list[PackageInfo]:
        while self.queue:
            self.visit(self.queue.popleft())
        self.gate.finish()
        self.slots.check(self.edges)
        self.hoisted_links()
        return self.infos()

    def hoisted_links(self) -> None:
        """Links a package manager hoisted where Node's resolution walks, whose targets ship:
        pnpm's hoist-pattern puts one for every package into node_modules/.pnpm/node_modules,
        and shamefully-hoist or public-hoist-pattern into node_modules. A package that
        requires one it does not declare finds it there, so each is kept (a link costs no
        space); those whose targets do not ship are left out."""
        keep = self.scope.keep
        if keep is None:
            return  # dereference: no links; each package is where Node finds it
        shipped = {real: files for files, real in self.instances.items()}
        for folder_arc in (f"{INSTALLED}/.pnpm/{INSTALLED}", INSTALLED):
            folder = os.path.join(self.scope.packages_from, *folder_arc.split("/"))
            if not is_within(folder, keep) or not self.fs.isdir(folder):
                continue
            for arc, path in self._links_in(folder, folder_arc):
                if arc in self.collector.entries or arc in self.slots.held:
                    continue
                try:
                    files = shipped.get(self.fs.realpath(path, strict=True))
                except OSError:
                    continue  # dangling: nothing ships behind it
                if files is not None:
                    self.collector.add_link(arc, arc_relpath(files, arc))

    def _links_in(self, folder: str, folder_arc: str) -> list[tuple[str, str]]:
        """The package links in a node_modules folder, scoped ones (@scope/name) included."""
        found = []
        for entry in self.fs.scandir(folder):
            if entry.is_symlink():
                found.append((f"{folder_arc}/{entry.name}", entry.path))
            elif entry.name.startswith("@") and entry.is_dir(follow_symlinks=False):
                for inner in self.fs.scandir(entry.path):
                    if inner.is_symlink():
                        found.append((f"{folder_arc}/{entry.name}/{inner.name}", inner.path))
        return found

    def visit(self, package: _Queued) -> None:
        """Resolve and place one package's dependencies, then check its platform packages."""
        manifest = self.manifest(package.real, required=package.is_root)
        dev = package.is_root and self.scope.include_dev
        declared_in = os.path.join(package.real, MANIFEST)
        installed: dict[str, dict[str, Any]] = {}  # its resolved dependencies' manifests
        satisfied: set[str] = set()  # its dependencies that ship, or are left out on purpose
        for dep in declared(manifest, package.real, dev=dev):
            if self.excluded(dep, package.real):
                satisfied.add(dep.name)
                continue
            found = self.resolved(dep, package.real, dev)
            if found is None:
                continue
            path, real = found
            installed[dep.name] = self.manifest(real, required=False)
            if not self.gate.admits(dep.name, installed[dep.name], real, dep.optional, declared_in):
                continue
            satisfied.add(dep.name)
            self.edges.append(Edge(package.arc, dep.name, real))
            self.place(package.arc, dep.name, path, real)
        optional = manifest.get("optionalDependencies")
        name = manifest.get("name") or os.path.basename(package.real)
        self.gate.check_needs(str(name), declared_in, list(optional or {}), installed, satisfied)

    def excluded(self, dep: Dependency, dependent: str) -> bool:
        """Whether exclude_packages leaves `dep` out (recorded once, with its dependent)."""
        glob = next(
            (g for g in self.scope.exclude_packages if fnmatch.fnmatchcase(dep.name, g)), None
        )
        if glob is None:
            return False
        if dep.name not in self.excluded_names:
            self.excluded_names.add(dep.name)
            self.collector.exclude(
                Excluded(
                    f"{INSTALLED}/{dep.name}",
                    f"exclude_packages {glob!r}",
                    package=dep.name,
                    dependent=dependent,
                )
            )
        return True

    def resolved(self, dep: Dependency, dependent: str, dev: bool) -> tuple[str, str] | None:
        """Where `dep` is installed for `dependent`; None for a missing optional one."""
        found = resolve(self.fs, dep.name, dependent)
        declared_in = os.path.join(dependent, MANIFEST)
        if found is None:
            if dep.optional:
                return None
            message = not_installed(
                self.fs, self.gate.lockfile, self.scope.packages_from, dep.name, declared_in, dev
            )
            raise DependencyError(message, package=dep.name)
        if not any(is_within(found[1], root) for root in self.scope.allowed_roots):
            raise DependencyError(
                f"package {dep.name!r} (required by {declared_in}) resolves to {found[1]}, "
                "outside source_dir and allowed_roots; add its workspace root to allowed_roots",
                package=dep.name,
            )
        return found

    def place(self, dependent: str, name: str, path: str, real: str) -> None:
        """Put the package where Node finds it from `dependent`, and queue its dependencies."""
        placed = self.slots.place(dependent, name, path, real)
        if placed is None:
            return
        if placed.files != placed.slot:
            self.collector.add_link(placed.slot, arc_relpath(placed.files, placed.slot))
        if placed.files in self.instances:
            return
        self.instances[placed.files] = real
        # The first dependent to reach a package is the shortest way from package.json (the
        # queue is breadth first): why it ships, for `plan`.
        self.required_by[placed.files] = (dependent, name)
        rules = self.own_rules if first_party(real) else self.rules
        self.collector.add_tree(real, placed.files, rules, skip_root_names=frozenset({INSTALLED}))
        self.queue.append(_Queued(placed.files, real, False))

    def infos(self) -> list[PackageInfo]:
        """Each shipped package with its size, why it ships and what it was built for."""
        files: dict[str, int] = dict.fromkeys(self.instances, 0)
        sizes: dict[str, int] = dict.fromkeys(self.instances, 0)
        for entry in self.collector.entries.values():
            if entry.kind != "file":
                continue
            folder = next((f for f in arc_parents(entry.arc) if not f or f in self.instances), "")
            if folder:
                files[folder] += 1
                sizes[folder] += entry.size
        infos = []
        for arc, real in sorted(self.instances.items()):
            manifest = self.manifests.get(real) or read_manifest(self.fs, real, required=False)
            name = manifest.get("name") if isinstance(manifest.get("name"), str) else None
            version = manifest.get("version") if isinstance(manifest.get("version"), str) else "?"
            engines = manifest.get("engines")
            node = engines.get("node") if isinstance(engines, dict) else None
            infos.append(
                PackageInfo(
                    name or arc.rpartition(f"{INSTALLED}/")[2],
                    str(version),
                    arc,
                    files[arc],
                    sizes[arc],
                    self.chain(arc),
                    real,
                    described(platform_fields(manifest)),
                    node.strip() if isinstance(node, str) else "",
                )
            )
        return infos

    def chain(self, arc: str) -> tuple[str, ...]:
        """The names from package.json down to the package at `arc`, package.json first."""
        names = []
        while arc in self.required_by:
            arc, name = self.required_by[arc]
            names.append(name)
        return (MANIFEST, *reversed(names))


def crawl(
    scope: Scope,
    collector: Collector,
    rules: ExcludeRules,
    own_rules: ExcludeRules,
    gate: Gate,
) -> list[PackageInfo]:
    """Add every production package of `scope.packages_from` to `collector`; `gate` decides which
    platform packages ship for the target.

    `rules` filter what a package manager installed into node_modules; `own_rules` (the
    default excludes too) the first-party packages, whose real folders are outside any
    node_modules: workspace packages and `file:` or `link:` dependencies, which are someone's
    working folders, with their .env files and keys, not a registry's published files."""
    return _Crawl(scope, collector, rules, own_rules, gate).run()


def first_party(real: str) -> bool:
    """A package folder nobody published: in no node_modules, or pnpm's copy of a `file:`
    folder, with all its files (node_modules/.pnpm/<name>@file+<path>/...)."""
    parts = real.split(os.sep)
    if INSTALLED not in parts:
        return True
    store = [p for i, p in enumerate(parts[1:]) if parts[i] == ".pnpm"]
    return any("@file+" in p for p in store)
