"""Python: dependencies as pip, uv or Poetry installed them, read from their `*.dist-info`.

`environment` finds the installed packages (a virtual environment or a --target folder) and
their Python, `declared` reads what the function declares, `crawl` follows Requires-Dist with
Lambda's markers, `files` ships each distribution's RECORD, `platform` judges wheels and shared
objects for the runtime, `fixes` names the command that mends a tree (docs/design.md, "Python").
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

from ...core.binaries import Binary, Target
from ...core.entries import Entry, Excluded, PackageInfo
from ...core.filesystem import ObservedFileSystem
from ...core.native import OWN_FILES, own_fix, platform_error, platform_packages
from ...core.paths import is_within
from ...core.runtime import Alternatives, Dependencies, Query, Refusal, Unshipped
from ...core.selection import Collector, ExcludeRules
from ...errors import DependencyError, LambdazipError
from .crawl import Crawled, crawl, excluded_by, lambda_environment
from .declared import PYPROJECT, Declaration, declaration, production_requirements, read_toml
from .distributions import Distribution, installed
from .environment import VENV, Environment, find_environment, holds_distributions
from .files import check_platform, ship
from .fixes import Tooling, install_fix, platform_fix, tooling


class _Found(NamedTuple):
    """What one build learned of the installed packages, asked for by several steps."""

    environment: Environment
    installed: dict[NormalizedName, Distribution]


class PythonRuntime:
    """Python's answers to the core's questions (core/runtime.Runtime)."""

    name = "python"
    manifest = PYPROJECT
    installed = VENV
    layer_prefix = "python/"  # Lambda's Python runtimes put /opt/python on sys.path
    default_excludes = (
        (".pypirc", "likely secret (may hold a package index token)"),
        ("pip.conf", "package manager settings (may hold a package index token)"),
        ("uv.toml", "package manager settings (may hold a package index token)"),
        ("poetry.toml", "package manager settings (may hold a package index token)"),
    )
    own_excludes = (
        ("__pycache__", "bytecode compiled by the host's Python"),
        (".pytest_cache", "test cache"),
        (".mypy_cache", "type checker cache"),
        (".ruff_cache", "linter cache"),
        (".tox", "test environments"),
        (".nox", "test environments"),
    )

    def __init__(self) -> None:
        # Per build (its file system): the environment and its distributions, read once for
        # `skipped` and `collect`.
        self._found: weakref.WeakKeyDictionary[ObservedFileSystem, dict[Query, _Found]] = (
            weakref.WeakKeyDictionary()
        )

    def declares(self, fs: ObservedFileSystem, folder: str) -> bool:
        """pyproject.toml, a requirements file, or installed distributions (pip -t .): the
        folder listed once for both."""
        if fs.isfile(os.path.join(folder, PYPROJECT)):
            return True
        try:  # is_file and is_dir follow links: a cycle among them raises
            entries = fs.scandir(folder)
            return bool(production_requirements(entries)) or holds_distributions(entries)
        except OSError:
            return False

    def is_workspace_root(self, fs: ObservedFileSystem, folder: str) -> bool:
        """A uv workspace's root: a pyproject.toml with [tool.uv.workspace]."""
        path = os.path.join(folder, PYPROJECT)
        if not fs.isfile(path):
            return False
        try:
            tool = read_toml(fs, path).get("tool")
        except (OSError, DependencyError):
            return False
        return isinstance(tool, dict) and "workspace" in (tool.get("uv") or {})

    def hidden_dependencies(self, fs: ObservedFileSystem, folder: str) -> str | None:
        """A declaration of dependencies with a .venv beside it."""
        if not fs.isdir(os.path.join(folder, VENV)):
            return None
        try:
            found = declaration(fs, folder)
        except DependencyError:
            return None  # the crawl names a broken declaration it needs
        return found.path if found is not None and found.requirements else None

    def _find(self, fs: ObservedFileSystem, query: Query) -> _Found:
        known = self._found.setdefault(fs, {})
        if query not in known:
            environment = find_environment(fs, query)
            dists = installed(fs, environment.site) if environment.site else {}
            known[query] = _Found(environment, dists)
        return known[query]

    def skipped(self, fs: ObservedFileSystem, query: Query) -> frozenset[str]:
        """A virtual environment or --target folder inside source_dir; when source_dir is the
        --target folder itself, every path a distribution installed there."""
        found = self._find(fs, query)
        environment, source = found.environment, query.source
        skip = {
            folder
            for folder in (environment.root, environment.site)
            if folder and folder != source and is_within(folder, source)
        }
        if environment.site == source:
            skip |= _installed_paths(fs, source, found.installed.values())
        return frozenset(skip)

    def collect(
        self, collector: Collector, query: Query, rules: ExcludeRules, own_rules: ExcludeRules
    ) -> Dependencies:
        """The declared distributions and what they require, each with its RECORD's files."""
        fs = collector.fs
        found = self._find(fs, query)
        environment = found.environment
        declared = declaration(fs, query.packages_from)
        tools = tooling(fs, query)
        minor = _minor(query, environment, found.installed)
        warnings = _version_warnings(query, environment)
        crawled = _crawled(found, declared, query, tools, minor)
        own = {_own_project(query, declared, r.distribution) for r in crawled.reached}
        reached = [r for r in crawled.reached if r.distribution.name not in own]
        for left in crawled.left_out:
            dist = found.installed.get(NormalizedName(left.name))
            collector.exclude(
                Excluded(
                    dist.folder if dist else left.name,
                    f"exclude_packages {left.glob!r}",
                    dist.path if dist else None,
                    package=left.name,
                    dependent=left.dependent,
                )
            )
        target = query.target
        fix = platform_fix(tools, declared, environment, minor or 12, target)
        if minor is not None:
            check_platform(reached, minor, target, fix, rules)
        shipped = ship(collector, reached, query, environment, rules, own_rules)
        packages = [info for info, _ in shipped]
        owned = frozenset(arc for _, arcs in shipped for arc in arcs)
        owners = {arc: info for info, arcs in shipped for arc in arcs}
        native = platform_packages(packages)
        return Dependencies(
            packages, owned, [], warnings, {}, native, _refusal(owners, target, fix)
        )

    def other_platforms(self, entries: Sequence[Entry], target: Target) -> list[Excluded]:
        """None: a wheel is built for one platform, and the wrong one is refused whole."""
        return []

    def unshipped(self, query: Query, shipped: Sequence[str]) -> list[Unshipped]:
        """Installed distributions that do not ship, but for the function's own project and
        what exclude_packages left out (dev tools beside the function's own)."""
        fs = ObservedFileSystem()
        environment = find_environment(fs, query)
        if not environment.site:
            return []
        taken = set(shipped)
        try:
            declared = declaration(fs, query.packages_from)
        except DependencyError:
            declared = None
        found = []
        for dist in installed(fs, environment.site).values():
            own = _own_project(query, declared, dist)
            excluded = excluded_by(query.exclude_packages or (), dist.display_name)
            if dist.path in taken or own or excluded is not None:
                continue
            files, size = dist.size()
            found.append(Unshipped(dist.name, dist.version, dist.path, files, size))
        return sorted(found, key=lambda u: (-u.size, u.name))

    def notes(self, zips: Sequence[Sequence[Entry]], excluded: Sequence[Excluded]) -> list[str]:
        """None."""
        return []

    def locate(self, query: Query, excluded: Sequence[Excluded]) -> dict[str, str]:
        """Nothing more to find: a left-out distribution is recorded with its dist-info."""
        return {}


def _installed_paths(fs: ObservedFileSystem, site: str, dists: Iterable[Distribution]) -> set[str]:
    """What the distributions installed in the --target folder `site`, which is the function's
    folder too: their dist-info, every file their RECORDs list (pip records the scripts,
    headers and data it moves into the folder as ../../bin/x, ../../include/...), and uv's
    lock file. A folder holding nothing else is left out whole; in a folder the function's own
    files share (a namespace such as acme/), only the installed files."""
    found = {os.path.join(site, ".lock")}
    listed: set[str] = set()
    tops: set[str] = set()
    for dist in dists:
        found.add(dist.path)
        for path, _ in dist.record:
            parts = path.split("/")
            if parts[:2] == ["..", ".."] and len(parts) > 2:
                parts = parts[2:]
            elif parts[0] in ("..", "."):
                continue
            listed.add(os.path.join(site, *parts))
            tops.add(parts[0])
    for top in sorted(tops):
        real = os.path.join(site, top)
        if real in listed:
            found.add(real)
        elif fs.isdir(real):
            whole, inside = _owned(fs, real, listed)
            found |= {real} if whole else inside
    return found


def _owned(fs: ObservedFileSystem, folder: str, listed: set[str]) -> tuple[bool, set[str]]:
    """Whether everything under `folder` was installed (bytecode beside it included), and
    what was, when not everything was."""
    whole, inside = True, set()
    for entry in fs.scandir(folder):
        if entry.is_dir(follow_symlinks=False):
            below, under = _owned(fs, entry.path, listed)
            if below or entry.name == "__pycache__":
                inside.add(entry.path)
            else:
                whole = False
                inside |= under
        elif entry.path in listed:
            inside.add(entry.path)
        else:
            whole = False
    return whole, inside


def _minor(
    query: Query, environment: Environment, dists: dict[NormalizedName, Distribution]
) -> int | None:
    """python_version, else the virtual environment's; an error when packages are installed
    and neither says which Python they are for."""
    if query.version is not None:
        return int(query.version.split(".")[1])
    if environment.minor is not None:
        return environment.minor
    if dists:
        raise DependencyError(
            f"python_version is required: {environment.site} is a --target folder, which does "
            'not say which Python its packages were installed for; set python_version = "3.12" '
            "(the function's runtime)"
        )
    return None


def _version_warnings(query: Query, environment: Environment) -> list[str]:
    if query.version is None or environment.minor is None:
        return []
    if query.version == f"3.{environment.minor}":
        return []
    return [
        f"{environment.described} is Python 3.{environment.minor}, and the function runs on "
        f"python{query.version} (python_version): pure-Python packages load, and compiled ones "
        "are refused unless built for both"
    ]


def _crawled(
    found: _Found,
    declared: Declaration | None,
    query: Query,
    tools: Tooling,
    minor: int | None,
) -> Crawled:
    environment = found.environment
    missing = install_fix(tools, declared, environment, minor or 12, query.target)
    if declared is None:
        if environment.root:
            raise DependencyError(
                f"no pyproject.toml or requirements.txt in {query.packages_from} says which of "
                f"{environment.described}'s packages the function needs; add one, or install "
                "them with `pip install --target` and name that folder in site_packages"
            )
        # A --target folder with no declaration: everything in it was installed for the function.
        requirements = [_everything(d) for d in found.installed.values()]
        origin = environment.site
    else:
        requirements, origin = declared.requirements, declared.path
        if requirements and not environment.site:
            raise DependencyError(
                f"{declared.path} declares dependencies, but none are installed; {missing}"
            )
    exclude = () if query.exclude_packages is None else query.exclude_packages
    markers = lambda_environment(minor if minor is not None else 12, query.target)
    optional = declared.optional if declared is not None else frozenset()
    return crawl(requirements, origin, found.installed, markers, exclude, missing, optional)


def _everything(dist: Distribution) -> Requirement:
    return Requirement(str(dist.name))


def _own_project(query: Query, declared: Declaration | None, dist: Distribution) -> str:
    """The distribution's name when it is the function's own project (installed editable from
    its own folder, or named so in its pyproject.toml): its requirements ship, its files are
    the function's own."""
    editable = dist.editable
    if editable and os.path.normpath(editable) in (query.source, query.packages_from):
        return dist.name
    if (
        declared is not None
        and declared.project
        and canonicalize_name(declared.project) == dist.name
    ):
        return dist.name
    return ""


def _refusal(owners: dict[str, PackageInfo], target: Target, fix: str) -> Refusal:
    def refuse(entry: Entry, found: Binary, alternatives: Alternatives | None) -> LambdazipError:
        owner = owners.get(entry.arc)
        who = f"package {owner.name} {owner.version}" if owner else OWN_FILES
        how = fix if owner else own_fix(target)
        return platform_error(who, entry, found, target, how, owner.name if owner else None)

    return refuse


PYTHON = PythonRuntime()
