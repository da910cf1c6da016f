"""The package manager that made a tree, from its lockfile, and the commands that fix a tree:
what installs missing packages, and what installs the target's platform packages."""

from __future__ import annotations

import json
import os
import re
from typing import NamedTuple

from ...core.binaries import Target
from ...core.filesystem import ObservedFileSystem
from ...core.paths import ancestors
from .platforms import node_cpu, platform_fields


class Lockfile(NamedTuple):
    """The package manager that made a tree, and what its lockfile says of platform packages."""

    manager: str  # "npm", "pnpm", "yarn" (1), "yarn-berry", or "" when there is no lockfile
    folder: str
    platforms: dict[str, dict[str, list[str]]]  # package name -> its os/cpu/libc


def lockfile_of(fs: ObservedFileSystem, source: str) -> Lockfile:
    """The lockfile that governs `source` (the nearest one above it), read for the platform
    fields of every package it records. Through the selection's file system: what it says
    decides what ships, so the fast paths check it again (docs/design.md, "Fast paths")."""
    for folder in ancestors(source):
        for name, manager in (
            ("pnpm-lock.yaml", "pnpm"),
            ("yarn.lock", "yarn"),
            ("package-lock.json", "npm"),
        ):
            path = os.path.join(folder, name)
            if fs.isfile(path):
                return _read_lockfile(fs, path, manager, folder)
    return Lockfile("", source, {})


def _read_lockfile(fs: ObservedFileSystem, path: str, manager: str, folder: str) -> Lockfile:
    try:
        text = fs.read_bytes(path).decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return Lockfile(manager, folder, {})
    if manager == "npm":
        return Lockfile(manager, folder, _npm_platforms(text))
    if manager == "yarn" and "__metadata:" in text:
        return Lockfile("yarn-berry", folder, _berry_platforms(text))
    if manager == "pnpm":
        return Lockfile(manager, folder, _pnpm_platforms(text))
    return Lockfile(manager, folder, {})  # Yarn 1 records no platforms


def _npm_platforms(text: str) -> dict[str, dict[str, list[str]]]:
    try:
        packages = json.loads(text).get("packages", {})
    except (ValueError, AttributeError):
        return {}
    found = {}
    for path, entry in packages.items() if isinstance(packages, dict) else ():
        if isinstance(entry, dict) and "node_modules/" in path:
            fields = platform_fields(entry)
            if fields:
                found[path.rpartition("node_modules/")[2]] = fields
    return found


# A package's key line in pnpm-lock.yaml, and its os/cpu/libc lines (flow lists: [linux]).
_PNPM_KEY = re.compile(r"^  '?/?(@?[^@\s'/]+(?:/[^@\s']+)?)@[^:]*'?:\s*$")
_PNPM_FIELD = re.compile(r"^    (os|cpu|libc): \[(.*)\]\s*$")
# A package in a Yarn berry lockfile, and its conditions line: "os=darwin & cpu=arm64".
_BERRY_KEY = re.compile(r'^"?(@?[^@\s"]+(?:/[^@\s"]+)?)@')
_BERRY_CONDITIONS = re.compile(r"^  conditions: (.*)$")


def _pnpm_platforms(text: str) -> dict[str, dict[str, list[str]]]:
    # Read line by line rather than with a YAML library: only these three flow lists of each
    # package are needed, and they are written one per line.
    found: dict[str, dict[str, list[str]]] = {}
    name = None
    for line in text.splitlines():
        key = _PNPM_KEY.match(line)
        if key:
            name = key.group(1)
            continue
        field = _PNPM_FIELD.match(line)
        if field and name:
            values = [v.strip().strip("'\"") for v in field.group(2).split(",") if v.strip()]
            found.setdefault(name, {})[field.group(1)] = values
    return found


def _berry_platforms(text: str) -> dict[str, dict[str, list[str]]]:
    found: dict[str, dict[str, list[str]]] = {}
    name = None
    for line in text.splitlines():
        if line and not line.startswith(" "):
            key = _BERRY_KEY.match(line)
            name = key.group(1) if key else None
            continue
        conditions = _BERRY_CONDITIONS.match(line)
        if conditions and name:
            for part in conditions.group(1).split("&"):
                key_, _, value = part.strip().partition("=")
                if key_ in ("os", "cpu", "libc") and value:
                    found.setdefault(name, {})[key_] = [value]
    return found


def install_command(lockfile: Lockfile, target: Target) -> str:
    """What installs the target's platform packages, for the package manager in use."""
    folder = lockfile.folder
    cpu = node_cpu(target)
    wanted = f"os: [linux], cpu: [{cpu}], libc: [glibc]"
    if lockfile.manager == "pnpm":
        return (
            f"set pnpm's supportedArchitectures to {{{wanted}}} (pnpm-workspace.yaml, or "
            f"package.json's pnpm field) and run `pnpm install` in {folder}"
        )
    if lockfile.manager == "yarn-berry":
        return (
            f"set supportedArchitectures to {{{wanted}}} in .yarnrc.yml and run "
            f"`yarn install` in {folder}"
        )
    if lockfile.manager == "yarn":
        return (
            f"Yarn 1 installs only the platform it runs on: run `yarn install` in {folder} on "
            f"{target} (a Linux container), or move to npm or pnpm"
        )
    return f"run `npm install --os=linux --cpu={cpu} --libc=glibc` in {folder}"


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


def not_installed(
    fs: ObservedFileSystem,
    lockfile: Lockfile,
    source: str,
    name: str,
    declared_in: str,
    dev: bool,
) -> str:
    """Why `name` is missing and what fixes it: a Yarn Plug'n'Play install has no node_modules
    to crawl, and installing again only makes another one."""
    for folder in dict.fromkeys((source, lockfile.folder)):
        pnp = next((f for f in PNP_FILES if fs.isfile(os.path.join(folder, f))), None)
        if pnp is not None:
            return (
                f"package {name!r} is required by {declared_in} but is not installed: {folder} "
                f"is a Yarn Plug'n'Play install ({pnp}), which lambdazip-tf does not support (it "
                "ships node_modules); set `nodeLinker: node-modules` in "
                f"{os.path.join(folder, '.yarnrc.yml')} and run `yarn install` in {folder}"
            )
    return (
        f"package {name!r} is required by {declared_in} but is not installed; "
        f"{fix_command(lockfile, source, include_dev=dev)}"
    )
