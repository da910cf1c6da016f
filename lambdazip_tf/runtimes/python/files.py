"""Each shipped distribution's files, from its RECORD, and the check that Lambda can load them
(docs/design.md, "Python").

Only files inside site-packages ship: a RECORD entry that leaves it (`../../bin/x`, pip's
scripts with the host's absolute shebang, headers) or that a --target install put in `bin/`
(uv's scripts) never does, nor bytecode compiled by the host's Python, nor the dist-info files
that differ between installers and machines. The rest of the dist-info ships:
`importlib.metadata` reads it at run time. An editable install ships its project's code
instead of the `.pth` file that points at a folder on the host.
"""

from __future__ import annotations

import ast
import os
import stat
from collections.abc import Sequence

from packaging.specifiers import InvalidSpecifier, SpecifierSet

from ...core.binaries import Target
from ...core.entries import Excluded, PackageInfo
from ...core.filesystem import ObservedFileSystem
from ...core.paths import is_within
from ...core.runtime import Query
from ...core.selection import Collector, ExcludeRules
from ...errors import DependencyError, PlatformError
from .crawl import Reached
from .distributions import VOLATILE, Distribution
from .environment import Environment
from .platform import (
    built_for,
    glibc_of,
    glibcxx_of,
    read_shared_object,
    runtime_name,
    suffix_problem,
    wheel_fits,
)


def ships(path: str, dist: Distribution) -> bool:
    """Whether a RECORD path is one the zip holds."""
    parts = path.split("/")
    # Scripts (their shebang names the host's Python), headers and data files: uv's --target
    # records them as bin/, include/ and share/, pip's as ../../ (outside site-packages).
    if parts[0] in ("..", "", "bin", "include", "share") or os.path.isabs(path):
        return False
    if "__pycache__" in parts or path.endswith(".pyc"):
        return False
    if parts[0] == dist.folder and len(parts) == 2 and parts[1] in VOLATILE:
        return False
    return not (dist.editable and _editable_hook(parts))


def _editable_hook(parts: list[str]) -> bool:
    """An editable install's .pth or import hook: it points at the host's project folder."""
    return len(parts) == 1 and (parts[0].endswith(".pth") or parts[0].startswith("__editable__"))


def _platform(dist: Distribution) -> str:
    """What a binary wheel was built for, in words; "" for a pure one."""
    tags = dist.tags
    if not tags or all(t.endswith("-any") for t in tags):
        return ""
    return built_for(tags)


def ship(
    collector: Collector,
    reached: Sequence[Reached],
    query: Query,
    environment: Environment,
    rules: ExcludeRules,
    own_rules: ExcludeRules,
) -> list[tuple[PackageInfo, list[str]]]:
    """Add each distribution's files; its PackageInfo, and the archive paths it owns."""
    shipped = []
    for item in reached:
        dist = item.distribution
        arcs: list[str] = []
        files = size = 0
        for path, _ in dist.record:
            if not ships(path, dist):
                continue
            real = os.path.join(environment.site, path)
            why = rules.reason(path, is_dir=False)
            if why:
                collector.exclude(Excluded(path, why, real))
                continue
            if os.path.islink(real):
                # uv's --link-mode symlink: an absolute link into its cache. The file ships,
                # read from where the link leads (the zip's files are never read through a link).
                real = collector.fs.realpath(real)
            st = _stat(collector, real, path, dist)
            collector.add_file(path, real, st)
            arcs.append(path)
            files += 1
            size += st.st_size
        if dist.editable:
            added = _editable_code(collector, dist, query, own_rules)
            arcs += added
            for arc in added:
                entry = collector.entries.get(arc)
                if entry is not None and entry.kind == "file":
                    files += 1
                    size += entry.size
        info = PackageInfo(
            dist.display_name,
            dist.version,
            dist.folder,
            files,
            size,
            item.chain,
            dist.path,
            _platform(dist),
            dist.requires_python,
        )
        shipped.append((info, arcs))
    return shipped


def _stat(collector: Collector, real: str, path: str, dist: Distribution) -> os.stat_result:
    try:
        st = collector.fs.stat(real)  # follows a link into an installer's cache: the file ships
    except OSError:
        raise DependencyError(
            f"{dist.path}/RECORD lists {path}, which is missing from {dist.site}: the "
            f"installation of {dist.name} is damaged; install it again",
            package=dist.name,
        ) from None
    if not stat.S_ISREG(st.st_mode):
        raise DependencyError(
            f"{dist.path}/RECORD lists {path}, which is not a file", package=dist.name
        )
    return st


def _editable_code(
    collector: Collector, dist: Distribution, query: Query, own_rules: ExcludeRules
) -> list[str]:
    """An editable install's importable code, from the folders its .pth or import hook points
    at: someone's working folder, so the function's own default excludes apply."""
    added: list[str] = []
    for folder in _editable_folders(dist):
        for name in _import_names(collector.fs, dist, folder):
            for candidate, arc in (
                (os.path.join(folder, name), name),
                (os.path.join(folder, f"{name}.py"), f"{name}.py"),
            ):
                if not collector.fs.exists(candidate):
                    continue
                real = collector.fs.realpath(candidate)
                if not any(is_within(real, root) for root in query.allowed_roots):
                    raise DependencyError(
                        f"package {dist.name} is installed editable from {real}, outside "
                        "source_dir and allowed_roots; add its workspace root to allowed_roots",
                        package=dist.name,
                    )
                if collector.fs.isdir(real):
                    collector.add_tree(real, arc, own_rules, primary=False)
                else:
                    collector.add_file(arc, real, collector.fs.stat(real))
                added.append(arc)
    if not added:
        raise DependencyError(
            f"package {dist.name} is installed editable, and its code is not where its install "
            f"points ({', '.join(_editable_folders(dist)) or 'nowhere'}); install it again",
            package=dist.name,
        )
    return added


# What a project folder holds beside its code: never its importable names.
_NOT_CODE = frozenset(
    {"test", "tests", "testing", "docs", "doc", "build", "dist", "setup", "conftest", "noxfile"}
)


def _import_names(fs: ObservedFileSystem, dist: Distribution, folder: str) -> list[str]:
    """The top-level names a distribution provides from `folder`: top_level.txt's, else its own
    name's, else (hatchling, uv_build, poetry-core and flit write no top_level.txt, and the
    import name need not be the distribution's) every package and module the folder holds."""
    text = dist.read("top_level.txt")
    names = [n.strip() for n in (text or "").splitlines() if n.strip()]
    own = dist.name.replace("-", "_")
    if names or any(fs.exists(os.path.join(folder, n)) for n in (own, f"{own}.py")):
        return names or [own]
    found = []
    for entry in fs.scandir(folder) if fs.isdir(folder) else []:
        stem = entry.name.removesuffix(".py")
        if stem in _NOT_CODE or not stem.isidentifier():
            continue
        package = entry.is_dir() and fs.isfile(os.path.join(entry.path, "__init__.py"))
        if package or (entry.name.endswith(".py") and entry.is_file()):
            found.append(stem)
    return sorted(found)


def _editable_folders(dist: Distribution) -> list[str]:
    """The folders an editable install adds to sys.path (.pth lines) or maps its packages to
    (setuptools' import hook's MAPPING)."""
    folders: list[str] = []
    for path, _ in dist.record:
        if "/" in path:
            continue
        text = dist.read_installed(path) or ""
        if path.endswith(".pth"):
            folders += [line.strip() for line in text.splitlines() if line.startswith("/")]
        elif path.startswith("__editable__") and path.endswith("_finder.py"):
            folders += _finder_folders(text)
    return list(dict.fromkeys(folders))


def _finder_folders(text: str) -> list[str]:
    """The parents of the package folders in a setuptools import hook's MAPPING."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return []
    for node in tree.body:
        # `MAPPING = {...}`, or `MAPPING: dict[str, str] = {...}` in newer setuptools.
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == "MAPPING" for t in targets):
            try:
                mapping = ast.literal_eval(value)
            except ValueError:
                return []
            return [os.path.dirname(str(p)) for p in mapping.values()]
    return []


def check_platform(
    reached: Sequence[Reached], minor: int, target: Target, fix: str, rules: ExcludeRules
) -> None:
    """Refuse a wheel none of whose tags fit the runtime, a distribution whose Requires-Python
    leaves the runtime out, and a shared object Lambda cannot load: built for another CPython,
    linked against musl, or needing a newer glibc or libstdc++. Files the request's excludes
    leave out are not judged."""
    runtime = runtime_name(minor, target)
    for item in reached:
        dist = item.distribution
        if not wheel_fits(dist.tags, minor, target):
            raise PlatformError(
                f"package {dist.display_name} {dist.version} is a wheel for "
                f"{built_for(dist.tags)}, which {runtime} cannot load: {fix}",
                dist.name,
            )
        if not _admits(dist.requires_python, minor):
            raise PlatformError(
                f"package {dist.display_name} {dist.version} requires Python "
                f"{dist.requires_python} (its Requires-Python), and the function runs on "
                f"python3.{minor}: {fix}",
                dist.name,
            )
    for item in reached:
        dist = item.distribution
        for path, _ in dist.record:
            native = path.endswith(".so") or ".so." in os.path.basename(path)
            if not native or not ships(path, dist) or rules.reason(path, is_dir=False):
                continue
            problem = _problem(os.path.join(dist.site, path), path, minor, target)
            if problem is not None:
                raise PlatformError(
                    f"package {dist.display_name} {dist.version} ships {path}, {problem}, "
                    f"which {runtime} cannot load: {fix}",
                    dist.name,
                )


def _problem(real: str, path: str, minor: int, target: Target) -> str | None:
    """Why python3.<minor> on Lambda cannot load a shared object, if it cannot."""
    problem = suffix_problem(path, minor, target)
    if problem is not None:
        return problem
    found = read_shared_object(real)
    if found is None:
        return None  # not an ELF: the core judges what it is
    if found.musl:
        return "linked against musl libc (an Alpine build)"
    if (found.glibc or 0) > glibc_of(minor):
        return f"in need of GLIBC_2.{found.glibc}, newer than the runtime's"
    if (found.glibcxx or 0) > glibcxx_of(minor):
        return f"in need of GLIBCXX_3.4.{found.glibcxx}, newer than the runtime's libstdc++"
    return None


def _admits(requires_python: str, minor: int) -> bool:
    """Whether Requires-Python admits a release of 3.<minor> (one it cannot read: yes)."""
    if not requires_python:
        return True
    try:
        wanted = SpecifierSet(requires_python)
    except InvalidSpecifier:
        return True
    return any(wanted.contains(f"3.{minor}.{patch}", prereleases=True) for patch in (0, 99))
