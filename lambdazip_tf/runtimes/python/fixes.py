"""The commands that fix a Python function's installed packages, for the tool that made them
(docs/design.md, "Python"): uv, Poetry or pip, a virtual environment or a --target folder."""

from __future__ import annotations

import os
from typing import NamedTuple

from ...core.binaries import Target
from ...core.filesystem import ObservedFileSystem
from .declared import PYPROJECT, Declaration
from .environment import Environment
from .platform import pip_platforms, uv_platform

UV_LOCK = "uv.lock"
POETRY_LOCK = "poetry.lock"


class Tooling(NamedTuple):
    """What installed the packages, as far as the folder tells."""

    manager: str  # "uv", "poetry" or "pip"
    folder: str  # where its command runs: the package folder


def tooling(fs: ObservedFileSystem, folder: str) -> Tooling:
    """uv with a uv.lock, Poetry with a poetry.lock, else pip."""
    if fs.isfile(os.path.join(folder, UV_LOCK)):
        return Tooling("uv", folder)
    if fs.isfile(os.path.join(folder, POETRY_LOCK)):
        return Tooling("poetry", folder)
    return Tooling("pip", folder)


def install_fix(tools: Tooling, declaration: Declaration | None, environment: Environment) -> str:
    """What installs the declared packages where the build looks for them."""
    if tools.manager == "uv":
        return f"run `uv sync` in {tools.folder}"
    if tools.manager == "poetry":
        return f"run `poetry install --only main` in {tools.folder}"
    what = _pip_source(declaration, tools.folder)
    if environment.root:
        return f"run `{environment.root}/bin/python -m pip install {what}`"
    if environment.site:
        return f"run `pip install {what} --target {environment.site}`"
    return (
        f"run `pip install {what} --target {os.path.join(tools.folder, 'package')}` and set "
        f'site_packages = "{os.path.join(tools.folder, "package")}", or make a virtual '
        f"environment in {os.path.join(tools.folder, '.venv')}"
    )


def platform_fix(
    tools: Tooling,
    declaration: Declaration | None,
    environment: Environment,
    minor: int,
    target: Target,
) -> str:
    """What installs packages Lambda can load, from any machine: wheels for the runtime's
    platform into a --target folder that site_packages names (the one it names already)."""
    named = bool(environment.site) and not environment.root
    folder = environment.site if named else os.path.join(tools.folder, "package")
    then = "" if named else f', and set site_packages = "{folder}"'
    if tools.manager == "uv":
        return (
            "run `uv export --frozen --no-dev --no-emit-project -o requirements.txt` and "
            f"`uv pip install --python-platform {uv_platform(minor, target)} --python-version "
            f"3.{minor} --target {folder} -r requirements.txt` in {tools.folder}{then}"
        )
    platforms = " ".join(f"--platform {p}" for p in pip_platforms(minor, target))
    source = (
        "-r requirements.txt"
        if tools.manager == "poetry"
        else _pip_source(declaration, tools.folder)
    )
    export = (
        "run `poetry export --only main -o requirements.txt` and "
        if tools.manager == "poetry"
        else "run "
    )
    # pip leaves what a --target folder holds already in place unless told to replace it.
    upgrade = " --upgrade" if named else ""
    return (
        f"{export}`pip install {platforms} --only-binary=:all: --implementation cp "
        f"--python-version 3.{minor}{upgrade} --target {folder} {source}` in {tools.folder}{then}"
    )


def _pip_source(declaration: Declaration | None, folder: str) -> str:
    """pip's argument for what the function declares."""
    if declaration is None or os.path.basename(declaration.path) == PYPROJECT:
        return folder if declaration is not None else "-r requirements.txt"
    return f"-r {os.path.relpath(declaration.path, folder)}"
