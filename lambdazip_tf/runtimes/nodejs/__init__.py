"""Node.js: dependencies as npm, pnpm, Yarn or bun installed them into node_modules.

The runtime answers the core's questions (core/runtime.py) from package.json and node_modules:
`crawl` finds the production packages, `placement` lays them out where Node finds them, `gate`
and `native` judge platform code for the target with the `lockfiles`' fix commands, `prisma`
adds the generated client, `engines` warns of engines.node, `unshipped` tells `plan` what was
installed for development only (docs/design.md, "Dependencies", "Layout").
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from ...core.binaries import Target
from ...core.entries import Entry, Excluded
from ...core.filesystem import ObservedFileSystem
from ...core.native import platform_packages
from ...core.runtime import Dependencies, Query, Unshipped
from ...core.selection import Collector, ExcludeRules
from .crawl import Scope, crawl
from .engines import engine_warnings
from .gate import Gate
from .lockfiles import lockfile_of
from .manifest import INSTALLED, MANIFEST, manifest_object
from .native import other_prebuilds, refusal
from .prisma import add_prisma, prisma_alternatives
from .sourcemaps import source_map_notes
from .unshipped import dev_only, locate_packages

# The AWS SDK for JavaScript v3, which every Node.js runtime provides.
DEFAULT_EXCLUDE_PACKAGES = ("@aws-sdk/*",)


class NodeRuntime:
    """Node.js's answers to the core's questions (core/runtime.Runtime)."""

    name = "nodejs"
    manifest = MANIFEST
    installed = INSTALLED
    layer_prefix = "nodejs/"  # Lambda's Node.js runtimes look in /opt/nodejs/node_modules
    # For a function whose folder is its project's root: nothing Node loads at run time, and
    # .npmrc and .yarnrc.yml may hold a registry token.
    default_excludes = (
        (".npmrc", "likely secret (may hold a registry token)"),
        (".yarn", "package manager state (Yarn's install state, cache and releases)"),
        (".yarnrc.yml", "package manager settings (may hold a registry token)"),
        (".yarnrc", "package manager settings"),
        (".pnpm-store", "package manager state (pnpm's store)"),
        (".npm", "package manager state (npm's cache)"),
    )

    own_excludes = ()

    def declares(self, fs: ObservedFileSystem, folder: str) -> bool:
        """A package.json."""
        return fs.isfile(os.path.join(folder, MANIFEST))

    def is_workspace_root(self, fs: ObservedFileSystem, folder: str) -> bool:
        """pnpm-workspace.yaml, or a package.json with workspaces (npm, Yarn, bun)."""
        if fs.exists(os.path.join(folder, "pnpm-workspace.yaml")):
            return True
        return "workspaces" in manifest_object(fs, folder)

    def hidden_dependencies(self, fs: ObservedFileSystem, folder: str) -> str | None:
        """A package.json with dependencies, and a node_modules beside it."""
        installed = fs.isdir(os.path.join(folder, INSTALLED))
        if installed and manifest_object(fs, folder).get("dependencies"):
            return os.path.join(folder, MANIFEST)
        return None

    def skipped(self, fs: ObservedFileSystem, query: Query) -> frozenset[str]:
        """None: node_modules, the folder Node's packages are installed in, is skipped by name."""
        return frozenset()

    def collect(
        self, collector: Collector, query: Query, rules: ExcludeRules, own_rules: ExcludeRules
    ) -> Dependencies:
        """package_dir's package.json at the zip's root, the crawl, Prisma's client."""
        gate = Gate(query.target, lockfile_of(collector.fs, query.packages_from))
        if query.package_dir:
            _package_manifest(collector, query.package_dir, own_rules)
        exclude = query.exclude_packages
        scope = Scope(
            query.packages_from,
            query.allowed_roots,
            DEFAULT_EXCLUDE_PACKAGES if exclude is None else exclude,
            query.include_dev,
            _kept(query),
        )
        # First-party packages take own_rules: under nodejs, no node_modules rule among them.
        packages = crawl(scope, collector, rules, own_rules, gate)
        forced, warnings = add_prisma(collector, packages, rules)
        for left in gate.left_out:
            collector.exclude(Excluded(f"{INSTALLED}/{left.name}", left.reason, left.real))
        if query.version is not None:
            warnings += engine_warnings(packages, int(query.version))
        return Dependencies(
            packages,
            frozenset({INSTALLED}),  # Lambda mounts a layer's node_modules as a whole
            forced,
            warnings,
            prisma_alternatives(forced, query.target),
            platform_packages(packages),
            refusal(packages, gate.lockfile, query.target),
        )

    def other_platforms(self, entries: Sequence[Entry], target: Target) -> list[Excluded]:
        """Other platforms' prebuilt binaries beside the target's (node-gyp-build)."""
        return other_prebuilds(entries, target)

    def unshipped(self, query: Query, shipped: Sequence[str]) -> list[Unshipped]:
        """The packages reached only from devDependencies."""
        if query.include_dev:
            return []
        return dev_only(query.packages_from, shipped, query.allowed_roots)

    def notes(self, zips: Sequence[Sequence[Entry]], excluded: Sequence[Excluded]) -> list[str]:
        """The source maps that ship, and those shipped code names that were left out."""
        return source_map_notes(zips, excluded)

    def locate(self, query: Query, excluded: Sequence[Excluded]) -> dict[str, str]:
        """Where exclude_packages' packages are installed."""
        return locate_packages(excluded)


def _kept(query: Query) -> str | None:
    """Where the installed tree keeps its paths and links (placement.Slots' `keep`)."""
    if query.dereference:
        return None  # every package's files at the path Node finds it by, no links
    if query.package_dir or query.layer:
        # The function's own files (or, in a layer, the zip the packages are in) do not hold
        # the package folder's other files: a local package outside node_modules is copied.
        return os.path.join(query.packages_from, INSTALLED)
    return query.source


def _package_manifest(collector: Collector, package_dir: str, rules: ExcludeRules) -> None:
    """package_dir's package.json at the zip's root when source_dir has none: Node reads
    "type" (ESM or CommonJS) from the nearest package.json above the handler."""
    if MANIFEST in collector.entries or rules.reason(MANIFEST, is_dir=False):
        return
    path = os.path.join(package_dir, MANIFEST)
    collector.add_file(MANIFEST, path, collector.fs.stat(path))


NODEJS = NodeRuntime()
