"""The production dependency crawl for runtime nodejs (docs/design.md, "Dependencies").

What npm, pnpm or yarn installed is the authority: no reinstall, no bundler. Starting from the
function's package.json, each dependency name is resolved the way Node does (the requiring
package's real folder, then every ancestor's node_modules, also above source_dir), recursively.

The layout rule (docs/design.md, "Layout"): a package found inside source_dir keeps its path,
and a link on the way to it (pnpm's `node_modules/x -> .pnpm/x@1/node_modules/x`) is kept as a
link. A package found above source_dir (hoisted by a workspace) is copied to the artifact's
top-level node_modules, or under its dependent when that name is taken. Every (dependent, name)
edge is then checked: Node's resolution inside the artifact must reach the same real package as
in the source tree.
"""

from __future__ import annotations

import errno
import fnmatch
import json
import os
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import DependencyError, LinkError
from .entries import Excluded, PackageInfo
from .filesystem import ObservedFileSystem
from .platform import Gate, Lockfile, described, lockfile_of, platform_fields
from .selection import Collector, ExcludeRules, arc_join, arc_relpath, is_within


@dataclass(frozen=True)
class _Dep:
    name: str
    optional: bool


def read_manifest(fs: ObservedFileSystem, folder: str, *, required: bool = True) -> dict[str, Any]:
    """A package.json as a dict; a clear DependencyError when it is unusable."""
    path = os.path.join(folder, "package.json")
    try:
        data = json.loads(fs.read_bytes(path))
    except FileNotFoundError:
        if required:
            raise DependencyError(f"{path} does not exist", required_by=None) from None
        return {}
    except IsADirectoryError:
        raise DependencyError(f"{path} is a folder, not a file", required_by=None) from None
    except PermissionError:
        raise DependencyError(f"cannot read {path}: permission denied") from None
    except (ValueError, RecursionError) as exc:
        detail = exc.msg if isinstance(exc, json.JSONDecodeError) else "not valid JSON"
        raise DependencyError(f"{path} is not valid JSON ({detail})") from None
    if not isinstance(data, dict):
        raise DependencyError(f"{path} must hold a JSON object")
    return data


def valid_name(name: str) -> bool:
    """An npm package name that can only mean a folder below node_modules."""
    parts = name.split("/")
    if len(parts) == 2 and not parts[0].startswith("@"):
        return False
    if len(parts) not in (1, 2) or (len(parts) == 2 and len(parts[0]) < 2):
        return False
    return all(
        p
        and p not in (".", "..")
        and not p.startswith(".")
        and "\\" not in p
        and "\0" not in p
        and ":" not in p
        for p in (parts[-1], parts[0].lstrip("@") if len(parts) == 2 else parts[0])
    )


def _names(manifest: dict[str, Any], path: str, *, dev: bool) -> list[_Dep]:
    where = os.path.join(path, "package.json")
    deps: dict[str, bool] = {}

    def table(key: str) -> dict[str, Any]:
        value = manifest.get(key) or {}
        if not isinstance(value, dict):
            raise DependencyError(f"{where}: {key} must be an object of name: version")
        return value

    for key, optional in (
        ("dependencies", False),
        ("devDependencies", False),
        ("optionalDependencies", True),
        ("peerDependencies", True),  # shipped when installed, skipped quietly when not
    ):
        if key == "devDependencies" and not dev:
            continue
        for name in table(key):
            if key == "peerDependencies" and name in deps:
                continue
            deps[name] = optional
    bundled = manifest.get("bundleDependencies", manifest.get("bundledDependencies"))
    if isinstance(bundled, list):
        for name in bundled:
            if isinstance(name, str):
                deps.setdefault(name, False)
    for name in deps:
        if not valid_name(name):
            raise DependencyError(
                f"{where} names an invalid dependency {name!r}; a package name cannot be a path",
                package=name,
            )
    return [_Dep(n, o) for n, o in sorted(deps.items())]


def resolve(fs: ObservedFileSystem, name: str, start: str) -> tuple[str, str] | None:
    """Where Node finds `name` from the real folder `start`: (path found, its real path)."""
    folder = start
    while True:
        if os.path.basename(folder) != "node_modules":
            candidate = os.path.join(folder, "node_modules", name)
            if fs.isdir(candidate):
                try:
                    return candidate, fs.realpath(candidate, strict=True)
                except OSError as exc:
                    if exc.errno == errno.ELOOP:
                        raise LinkError(f"link cycle at {candidate}", candidate) from None
                    raise
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def _lookup(slots: dict[str, str], arc: str, name: str) -> str | None:
    """The slot Node would reach for `name` from archive folder `arc` (None: not found)."""
    folder = arc
    while True:
        if posix_base(folder) != "node_modules":
            slot = arc_join(folder, f"node_modules/{name}")
            if slot in slots:
                return slot
        if not folder:
            return None
        folder = folder.rpartition("/")[0]


def posix_base(arc: str) -> str:
    """The last component of an archive path."""
    return arc.rpartition("/")[2]


# What installs a tree's missing packages, for each package manager: (production only, all).
# Yarn berry has no production-only install (`yarn workspaces focus --production` needs the
# workspace), and its --immutable install leaves dev dependencies out of the zip anyway.
_INSTALL = {
    "pnpm": ("pnpm install --prod --frozen-lockfile", "pnpm install --frozen-lockfile"),
    "yarn": ("yarn install --production --frozen-lockfile", "yarn install --frozen-lockfile"),
    "yarn-berry": ("yarn install --immutable", "yarn install --immutable"),
    "npm": ("npm ci --omit=dev", "npm ci"),
    "": ("npm install --omit=dev", "npm install"),
}
PNP_FILES = (".pnp.cjs", ".pnp.loader.mjs", ".pnp.js")


def fix_command(lockfile: Lockfile, source: str, *, include_dev: bool = False) -> str:
    """The install command for `lockfile`, the one that governs `source`; with `include_dev`,
    one that installs devDependencies too."""
    folder = lockfile.folder if lockfile.manager else source
    return f"run `{_INSTALL[lockfile.manager][include_dev]}` in {folder}"


def _not_installed(
    fs: ObservedFileSystem, lockfile: Lockfile, source: str, name: str, where: str, dev: bool
) -> str:
    """Why `name` is missing and what fixes it: a Yarn Plug'n'Play install has no node_modules
    to crawl, and installing again only makes another one."""
    for folder in dict.fromkeys((source, lockfile.folder)):
        pnp = next((f for f in PNP_FILES if fs.isfile(os.path.join(folder, f))), None)
        if pnp is not None:
            return (
                f"package {name!r} is required by {where} but is not installed: {folder} is a "
                f"Yarn Plug'n'Play install ({pnp}), which lambdazip-tf does not support (it "
                "ships node_modules); set `nodeLinker: node-modules` in "
                f"{os.path.join(folder, '.yarnrc.yml')} and run `yarn install` in {folder}"
            )
    return (
        f"package {name!r} is required by {where} but is not installed; "
        f"{fix_command(lockfile, source, include_dev=dev)}"
    )


def crawl(
    source: str,
    allowed_roots: Sequence[str],
    exclude_packages: Sequence[str],
    *,
    include_dev: bool,
    collector: Collector,
    rules: ExcludeRules,
    own_rules: ExcludeRules,
    keep: str | None,
    gate: Gate | None = None,
) -> list[PackageInfo]:
    """Add every production package of the package folder `source` to `collector`; `gate`
    decides which platform packages ship for the target.

    `keep` is the real folder inside which the installed tree keeps its paths (relative to
    `source`) and its links: `source` itself, or its node_modules when the zip the packages
    go into does not hold `source`'s other files (a layer, a package_dir); None to keep
    nothing, every package copied to where Node finds it (dereference).

    `rules` filter what a package manager installed into node_modules; `own_rules` (the
    default excludes too) the first-party packages, whose real folders are outside any
    node_modules: workspace packages and `file:` or `link:` dependencies, which are someone's
    working folders, with their .env files and keys, not a registry's published files."""
    fs = collector.fs
    slots: dict[str, str] = {}
    instances: dict[str, str] = {}
    required_by: dict[str, tuple[str, str]] = {}  # package -> (dependent's arc, name it used)
    edges: list[tuple[str, str, str]] = []
    excluded_names: set[str] = set()
    queue: deque[tuple[str, str, bool]] = deque([("", source, True)])
    manifests: dict[str, dict[str, Any]] = {}
    while queue:
        arc, real, is_root = queue.popleft()
        manifest = manifests.get(real)
        if manifest is None:
            manifest = manifests[real] = read_manifest(fs, real, required=is_root)
        wanted = _names(manifest, real, dev=is_root and include_dev)
        installed: dict[str, dict[str, Any]] = {}  # this package's resolved dependencies
        satisfied: set[str] = set()  # its dependencies that ship, or that are left out on purpose
        for dep in wanted:
            glob = next((g for g in exclude_packages if fnmatch.fnmatchcase(dep.name, g)), None)
            if glob is not None:
                satisfied.add(dep.name)
                if dep.name not in excluded_names:
                    excluded_names.add(dep.name)
                    collector.excluded.append(
                        Excluded(f"node_modules/{dep.name}", f"exclude_packages {glob!r}")
                    )
                continue
            found = resolve(fs, dep.name, real)
            if found is None:
                if dep.optional:
                    continue
                where = os.path.join(real, "package.json")
                dev = is_root and include_dev
                # The gate read the lockfile already; without one, it is read for this line.
                lockfile = gate.lockfile if gate is not None else lockfile_of(source)
                raise DependencyError(
                    _not_installed(fs, lockfile, source, dep.name, where, dev), package=dep.name
                )
            path, target = found
            if not any(is_within(target, root) for root in allowed_roots):
                raise DependencyError(
                    f"package {dep.name!r} (required by {os.path.join(real, 'package.json')}) "
                    f"resolves to {target}, outside source_dir and allowed_roots; add its "
                    "workspace root to allowed_roots",
                    package=dep.name,
                )
            if gate is not None:
                found_manifest = manifests.get(target)
                if found_manifest is None:
                    found_manifest = manifests[target] = read_manifest(fs, target, required=False)
                installed[dep.name] = found_manifest
                where = os.path.join(real, "package.json")
                if not gate.admits(dep.name, found_manifest, target, dep.optional, where):
                    continue
            satisfied.add(dep.name)
            edges.append((arc, dep.name, target))
            placed = _place(fs, source, keep, slots, arc, dep.name, path, target)
            if placed is None:
                continue
            slot, files_arc = placed
            slots[slot] = target
            if files_arc != slot:
                collector.add_link(slot, arc_relpath(files_arc, slot))
            if files_arc not in instances:
                instances[files_arc] = target
                # The first dependent to reach a package is the shortest way from package.json
                # (the queue is breadth first): why it ships, for `plan`.
                required_by[files_arc] = (arc, dep.name)
                chosen = own_rules if _first_party(target) else rules
                collector.add_tree(target, files_arc, chosen, skip_node_modules="root")
                queue.append((files_arc, target, False))
        if gate is not None:
            optional = manifest.get("optionalDependencies")
            name = manifest.get("name") or os.path.basename(real)
            where = os.path.join(real, "package.json")
            gate.check_needs(str(name), where, list(optional or {}), installed, satisfied)
    for arc, name, target in edges:
        hit = _lookup(slots, arc, name)
        if hit is None or slots[hit] != target:  # pragma: no cover - a bug in _place
            raise DependencyError(
                f"cannot lay out {name!r} for {arc or 'the function'} so that Node finds "
                f"{target}; please report this with `lambdazip-tf plan` output",
                package=name,
            )
    return _infos(collector, instances, manifests, required_by)


def _first_party(real: str) -> bool:
    """A package folder nobody published: in no node_modules, or pnpm's copy of a `file:`
    folder, with all its files (node_modules/.pnpm/<name>@file+<path>/...)."""
    parts = real.split(os.sep)
    if "node_modules" not in parts:
        return True
    store = [p for i, p in enumerate(parts[1:]) if parts[i] == ".pnpm"]
    return any("@file+" in p for p in store)


def _place(
    fs: ObservedFileSystem,
    source: str,
    keep: str | None,
    slots: dict[str, str],
    arc: str,
    name: str,
    path: str,
    target: str,
) -> tuple[str, str] | None:
    """(slot where Node will look, archive folder of the files), or None when already reachable."""
    hit = _lookup(slots, arc, name)
    nested = arc_join(arc, f"node_modules/{name}")
    if keep is not None and is_within(path, keep):
        # Inside `keep` the installed tree is kept, links included (pnpm's sibling links),
        # even where a farther slot would also resolve: that is the layout the package manager
        # made and tested.
        slot = os.path.relpath(path, source).replace(os.sep, "/")
        if hit is not None and _depth(hit) > _depth(slot):
            # A package copied from elsewhere sits closer than the installed path.
            return None if slots[hit] == target else _claim(slots, nested, name)
        if slot in slots:
            if slots[slot] != target:  # pragma: no cover - two real folders for one path
                raise DependencyError(f"two packages claim {slot}", package=name)
            return None
        if is_within(target, keep):
            return slot, os.path.relpath(target, source).replace(os.sep, "/")
        return slot, slot  # a link to a workspace package: its files replace the link
    if hit is not None and slots[hit] == target:
        return None
    top = f"node_modules/{name}"
    # An installed path inside `keep` may claim `top` later in the crawl.
    taken = keep is not None and fs.lexists(os.path.join(source, top))
    if hit is None and top not in slots and not taken:
        return top, top
    return _claim(slots, nested, name)


def _claim(slots: dict[str, str], slot: str, name: str) -> tuple[str, str]:
    if slot in slots:  # pragma: no cover - Node would have found it on the way up
        raise DependencyError(f"two packages claim {slot}", package=name)
    return slot, slot


def _depth(arc: str) -> int:
    return arc.count("/")


def _infos(
    collector: Collector,
    instances: dict[str, str],
    manifests: dict[str, dict[str, Any]],
    required_by: dict[str, tuple[str, str]],
) -> list[PackageInfo]:
    files: dict[str, int] = dict.fromkeys(instances, 0)
    sizes: dict[str, int] = dict.fromkeys(instances, 0)
    for entry in collector.entries.values():
        if entry.kind != "file":
            continue
        folder = entry.arc.rpartition("/")[0]
        while folder and folder not in instances:
            folder = folder.rpartition("/")[0]
        if folder:
            files[folder] += 1
            sizes[folder] += entry.size

    def chain(arc: str) -> tuple[str, ...]:
        names = []
        while arc in required_by:
            arc, name = required_by[arc]
            names.append(name)
        return tuple(reversed(names))

    infos = []
    for arc, real in sorted(instances.items()):
        manifest = manifests.get(real) or read_manifest(collector.fs, real, required=False)
        name = manifest.get("name") if isinstance(manifest.get("name"), str) else None
        version = manifest.get("version") if isinstance(manifest.get("version"), str) else "?"
        engines = manifest.get("engines")
        node = engines.get("node") if isinstance(engines, dict) else None
        infos.append(
            PackageInfo(
                name or arc.rpartition("node_modules/")[2],
                str(version),
                arc,
                files[arc],
                sizes[arc],
                chain(arc),
                real,
                described(platform_fields(manifest)),
                node.strip() if isinstance(node, str) else "",
            )
        )
    return infos
