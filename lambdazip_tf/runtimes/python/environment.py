"""Where a Python function's dependencies are installed, and for which Python
(docs/design.md, "Python").

A virtual environment (its root holds `pyvenv.cfg`; packages in `lib/python3.X/site-packages`)
or a `pip install --target` / `uv pip install --target` folder: either way a site-packages
folder of `*.dist-info` distributions, the authority on what is installed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import NamedTuple

from ...core.filesystem import ObservedFileSystem
from ...core.paths import ancestors, is_within
from ...core.runtime import Query
from ...errors import DependencyError

VENV = ".venv"
VENVS = (VENV, "venv")  # the names virtual environments beside a project go by
_PYVENV = "pyvenv.cfg"
_SITE = re.compile(r"^python3\.(\d+)$")
_VERSION = re.compile(r"^3\.(\d+)")


class Environment(NamedTuple):
    """The installed distributions' folder, and what it says of itself."""

    site: str  # the real site-packages folder; "" when nothing is installed
    root: str  # the virtual environment's root, "" for a --target folder
    minor: int | None  # 3.<minor>, from pyvenv.cfg; None for a --target folder

    @property
    def described(self) -> str:
        """The folder in a person's words, for messages."""
        return f"the virtual environment {self.root}" if self.root else self.site


def has_distributions(fs: ObservedFileSystem, folder: str) -> bool:
    """Whether `folder` holds installed distributions (`*.dist-info` folders)."""
    try:
        return holds_distributions(fs.scandir(folder))
    except OSError:
        return False


def holds_distributions(entries: Sequence[os.DirEntry[str]]) -> bool:
    """Whether a folder's entries include installed distributions (`*.dist-info` folders)."""
    return any(e.name.endswith(".dist-info") and e.is_dir() for e in entries)


def find_environment(fs: ObservedFileSystem, query: Query) -> Environment:
    """site_packages as the request names it; else source_dir when it holds distributions
    (AWS's documented `pip install --target .`); else `.venv` (or `venv`) in the package folder
    or in source_dir, else a `.venv` above them within allowed_roots (a uv workspace's root);
    else nothing installed."""
    if query.installed_dir:
        return _environment(fs, query.installed_dir, named=True)
    if has_distributions(fs, query.source):
        return Environment(query.source, "", None)
    for folder in dict.fromkeys((query.packages_from, query.source)):
        for name in VENVS:
            venv = os.path.join(folder, name)
            if fs.isfile(os.path.join(venv, _PYVENV)):
                return _environment(fs, fs.realpath(venv), named=False)
    # A workspace member's packages are installed in the workspace root's environment.
    for folder in ancestors(os.path.dirname(query.packages_from)):
        if not any(is_within(folder, root) for root in query.allowed_roots):
            break
        venv = os.path.join(folder, VENV)
        if fs.isfile(os.path.join(venv, _PYVENV)):
            return _environment(fs, fs.realpath(venv), named=False)
    return Environment("", "", None)


def _environment(fs: ObservedFileSystem, folder: str, *, named: bool) -> Environment:
    if not fs.isfile(os.path.join(folder, _PYVENV)):
        return Environment(folder, "", None)
    minor = _pyvenv_minor(fs, folder)
    lib = os.path.join(folder, "lib")
    found = []
    if fs.isdir(lib):
        found = sorted(e.name for e in fs.scandir(lib) if _SITE.match(e.name))
    if minor is not None and f"python3.{minor}" in found:
        found = [f"python3.{minor}"]
    if len(found) != 1:
        key = "site_packages" if named else "the virtual environment"
        raise DependencyError(
            f"{key} {folder} has {len(found) or 'no'} lib/python3.X folders; name its "
            "site-packages folder in site_packages"
        )
    site = os.path.join(lib, found[0], "site-packages")
    if minor is None:
        minor = int(_SITE.match(found[0]).group(1))  # type: ignore[union-attr]
    return Environment(fs.realpath(site) if fs.isdir(site) else "", folder, minor)


def _pyvenv_minor(fs: ObservedFileSystem, folder: str) -> int | None:
    """pyvenv.cfg's `version` (the venv module) or `version_info` (uv): "3.12.1"."""
    try:
        text = fs.read_bytes(os.path.join(folder, _PYVENV)).decode("utf-8", "replace")
    except OSError:
        return None
    # By hand: pyvenv.cfg is "key = value" lines without a section, which configparser wants.
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip() in ("version", "version_info"):
            found = _VERSION.match(value.strip())
            if found:
                return int(found.group(1))
    return None
