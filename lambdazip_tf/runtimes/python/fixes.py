"""The commands that fix a Python function's installed packages, for the tool that made them
(docs/design.md, "Python"): uv, Poetry or pip, a virtual environment or a --target folder."""

from __future__ import annotations

import os
from typing import NamedTuple

from ...core.binaries import Target
from ...core.filesystem import ObservedFileSystem
from ...core.paths import ancestors, is_within
from ...core.runtime import Query
from .declared import PYPROJECT, Declaration
from .environment import Environment
from .platform import pip_platforms, uv_platform

UV_LOCK = "uv.lock"
POETRY_LOCK = "poetry.lock"


class Tooling(NamedTuple):
    """What installed the packages, as far as the folders tell."""

    manager: str  # "uv", "poetry" or "pip"
    folder: str  # where its command runs: the lock file's folder, else the package folder
    source: str  # the function's folder


def tooling(fs: ObservedFileSystem, query: Query) -> Tooling:
    """uv with a uv.lock, Poetry with a poetry.lock (in the package folder, or above it within
    allowed_roots: a workspace's root), else pip."""
    for folder in ancestors(query.packages_from):
        if not any(is_within(folder, root) for root in query.allowed_roots):
            break
        for lock, manager in ((UV_LOCK, "uv"), (POETRY_LOCK, "poetry")):
            if fs.isfile(os.path.join(folder, lock)):
                return Tooling(manager, folder, query.source)
    return Tooling("pip", query.packages_from, query.source)


def install_fix(
    tools: Tooling,
    declaration: Declaration | None,
    environment: Environment,
    minor: int,
    target: Target,
) -> str:
    """What installs the declared packages where the build looks for them, for the runtime."""
    if tools.manager == "uv":
        return f"run `uv sync` in {tools.folder}"
    if tools.manager == "poetry":
        if not environment.site:
            return (
                "Poetry keeps its environment outside the project by default: set "
                "site_packages to the folder `poetry env info -p` prints, or run `poetry config "
                f"virtualenvs.in-project true` and `poetry install --only main` in {tools.folder}"
            )
        return f"run `poetry install --only main` in {tools.folder}"
    if environment.root and environment.minor == minor:
        what = _pip_source(declaration, tools.folder)
        return f"run `{environment.root}/bin/python -m pip install {what}` in {tools.folder}"
    # A --target folder, or an environment of another Python, whose pip would evaluate
    # markers for itself: wheels for the runtime, installed from any machine.
    return platform_fix(tools, declaration, environment, minor, target)


def platform_fix(
    tools: Tooling,
    declaration: Declaration | None,
    environment: Environment,
    minor: int,
    target: Target,
) -> str:
    """What installs packages Lambda can load, from any machine: wheels for the runtime's
    platform into an empty --target folder that site_packages names."""
    named = bool(environment.site) and not environment.root
    if named and environment.site != tools.source:
        folder, first, then = environment.site, f"remove {environment.site}, then ", ""
    else:
        folder = os.path.join(tools.folder, "package")
        first = ""
        then = f', and set site_packages = "{folder}"'
        if named:  # pip install --target . beside the handler
            then += f" (removing the packages installed in {tools.source})"
    if tools.manager == "uv":
        return (
            f"{first}run `uv export --frozen --no-dev --no-emit-project -o requirements.txt` "
            f"and `uv pip install --python-platform {uv_platform(minor, target)} "
            f"--python-version 3.{minor} --target {folder} -r requirements.txt` in "
            f"{tools.folder}{then}"
        )
    platforms = " ".join(f"--platform {p}" for p in pip_platforms(minor, target))
    if tools.manager == "poetry":
        source = "-r requirements.txt"
        first += (
            "run `poetry export --only main -o requirements.txt` (Poetry 2 needs the "
            "poetry-plugin-export plugin) and "
        )
    else:
        source = _pip_source(declaration, tools.folder)
        first += "run "
    return (
        f"{first}`pip install {platforms} --only-binary=:all: --implementation cp "
        f"--python-version 3.{minor} --target {folder} {source}` in {tools.folder}{then}"
    )


def _pip_source(declaration: Declaration | None, folder: str) -> str:
    """pip's argument for what the function declares."""
    if declaration is None or os.path.basename(declaration.path) == PYPROJECT:
        return folder if declaration is not None else "-r requirements.txt"
    return f"-r {os.path.relpath(declaration.path, folder)}"
