"""package.json: the one reader of it, and the dependency names it declares."""

from __future__ import annotations

import json
import os
from typing import Any, NamedTuple

from ...core.filesystem import ObservedFileSystem
from ...errors import DependencyError

MANIFEST = "package.json"
INSTALLED = "node_modules"


class Dependency(NamedTuple):
    """A name a package.json declares, and whether a missing install of it is fine."""

    name: str
    optional: bool


def read_manifest(fs: ObservedFileSystem, folder: str, *, required: bool = True) -> dict[str, Any]:
    """A package.json as a dict; a clear DependencyError when it is unusable."""
    path = os.path.join(folder, MANIFEST)
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


def manifest_object(fs: ObservedFileSystem, folder: str) -> dict[str, Any]:
    """A folder's package.json, or {} when it has none or it is unusable: for checks that
    look for one key, where the crawl names a bad package.json that it needs."""
    if not fs.isfile(os.path.join(folder, MANIFEST)):
        return {}
    try:
        return read_manifest(fs, folder)
    except (OSError, DependencyError):
        return {}


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


def declared(manifest: dict[str, Any], folder: str, *, dev: bool) -> list[Dependency]:
    """The dependencies a package.json declares, sorted by name: dependencies, optional ones,
    installed peers and bundled ones, and devDependencies with `dev`."""
    path = os.path.join(folder, MANIFEST)
    deps: dict[str, bool] = {}

    def table(key: str) -> dict[str, Any]:
        value = manifest.get(key) or {}
        if not isinstance(value, dict):
            raise DependencyError(f"{path}: {key} must be an object of name: version")
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
                f"{path} names an invalid dependency {name!r}; a package name cannot be a path",
                package=name,
            )
    return [Dependency(n, o) for n, o in sorted(deps.items())]
