"""For `plan`: the dev-only packages installed but not shipped, and where the packages that
exclude_packages left out are installed. Only `plan` asks; these reads do not decide the
selection, so they go through a file system whose facts are not kept."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from ...core.entries import Excluded
from ...core.filesystem import ObservedFileSystem
from ...core.inventory import tree_size
from ...core.paths import is_within
from ...core.runtime import Unshipped
from .manifest import INSTALLED, read_manifest, valid_name
from .placement import resolve


def locate_packages(excluded: Sequence[Excluded]) -> dict[str, str]:
    """Where the packages exclude_packages left out are installed, by their archive path:
    found as Node finds them from the package that declares them."""
    fs = ObservedFileSystem()
    located = {}
    for item in excluded:
        if item.path is None and item.package and item.dependent and valid_name(item.package):
            found = resolve(fs, item.package, item.dependent)
            if found is not None:
                located[item.arc] = found[1]
    return located


def dev_only(source: str, shipped: Sequence[str], allowed_roots: Sequence[str]) -> list[Unshipped]:
    """The packages reached from package.json's devDependencies and not shipped (`shipped`:
    the shipped packages' real folders), largest first."""
    fs = ObservedFileSystem()
    taken = set(shipped)
    manifest = read_manifest(fs, source, required=False)
    start = manifest.get("devDependencies")
    queue: deque[tuple[str, str]] = deque(
        (name, source) for name in (start if isinstance(start, dict) else {}) if valid_name(name)
    )
    seen: dict[str, Unshipped] = {}
    while queue:
        name, start_at = queue.popleft()
        try:
            found = resolve(fs, name, start_at)
        except OSError:
            continue
        if found is None:
            continue
        real = found[1]
        if real in taken or real in seen or not any(is_within(real, r) for r in allowed_roots):
            continue
        try:
            package = read_manifest(fs, real, required=False)
        except OSError:
            package = {}
        files, size = tree_size(real, skip=INSTALLED)
        version = package.get("version")
        seen[real] = Unshipped(
            name, version if isinstance(version, str) else "?", real, files, size
        )
        for key in ("dependencies", "optionalDependencies"):
            table = package.get(key)
            for dep in table if isinstance(table, dict) else {}:
                if isinstance(dep, str) and valid_name(dep):
                    queue.append((dep, real))
    return sorted(seen.values(), key=lambda p: (-p.size, p.name))
