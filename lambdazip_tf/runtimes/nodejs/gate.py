"""During the crawl: which platform packages ship for the target (docs/design.md, "The target
platform").

A shipped package whose `os`, `cpu` or `libc` leave the target out is left out when it is
optional (another target's package, installed beside the target's), or when it is required
(sharp's recipe for several platforms, `npm install --force @img/sharp-linux-x64 ...`, makes
them direct dependencies) and the target's package of the same thing ships; refused when the
target's is nowhere. A package whose optional platform package for the target is not
installed (sharp installed on a Mac) is refused, naming it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from ...core.binaries import Target
from ...errors import PlatformError
from .lockfiles import Lockfile, install_command
from .platforms import described, family, fits, named_fields, platform_fields


class LeftOut(NamedTuple):
    """Another target's platform package, not shipped."""

    name: str
    reason: str
    real: str  # its real folder
    dependent: str  # the package.json that declares it


class Gate:
    """Decides during the crawl which platform packages ship for the target, and refuses what
    cannot load there."""

    def __init__(self, target: Target, lockfile: Lockfile) -> None:
        self.target = target
        self.lockfile = lockfile
        self.left_out: list[LeftOut] = []
        self._fitting: set[str] = set()  # package.json files with a fitting platform dependency
        self._families: set[str] = set()  # the families of the platform packages that ship
        # package.json -> the required platform packages for other targets it declares, each
        # with the words of its refusal: judged once the crawl is done (`finish`).
        self._required: dict[str, list[tuple[str, str, str]]] = {}

    def admits(
        self, name: str, manifest: Mapping[str, Any], real: str, optional: bool, declared_in: str
    ) -> bool:
        """Whether the package `name` (installed at `real`, required by the package.json
        `declared_in`) ships. Another target's platform package never does; a required one is
        refused at `check_needs` unless a dependency beside it fits (platform packages listed
        for several targets)."""
        fields = platform_fields(manifest)
        if not fields:
            return True
        if fits(fields, self.target):
            self._fitting.add(declared_in)
            self._families.add(family(name))
            return True
        reason = f"platform package for {described(fields)}, not {self.target}"
        self.left_out.append(LeftOut(name, reason, real, declared_in))
        if not optional:
            version = manifest.get("version", "?")
            words = (
                f"package {name}@{version}, required by {declared_in}, is built for "
                f"{described(fields)}, but the function runs on {self.target}"
            )
            self._required.setdefault(declared_in, []).append((name, words, ""))
        return False

    def check_needs(
        self,
        package: str,
        declared_in: str,
        optional: Sequence[str],
        installed: Mapping[str, Mapping[str, Any]],
        satisfied: set[str],
    ) -> None:
        """Once a package's dependencies are resolved: refuse an optional platform package for
        the target that is not installed (`installed`: the manifests of its resolved
        dependencies by name; `satisfied`: the names that ship or that exclude_packages left
        out on purpose). Its required platform packages for other targets are judged by
        `finish`, once every package is known."""
        for index, (name, words, _) in enumerate(self._required.get(declared_in, [])):
            self._required[declared_in][index] = (name, words, package)
        fitting = []
        for name in optional:
            fields = (
                platform_fields(installed[name])
                if name in installed
                else self.lockfile.platforms.get(name) or named_fields(name)
            )
            if fields and fits(fields, self.target):
                fitting.append(name)
        if fitting and not any(name in satisfied for name in fitting):
            others = sorted(n for n in installed if n in optional and n not in satisfied)
            seen = f" (installed: {', '.join(others)})" if others else ""
            raise self.refused(
                f"package {package} needs {fitting[0]} to run on {self.target}, and it is not "
                f"installed{seen}",
                fitting[0],
            )

    def finish(self) -> None:
        """After the crawl: refuse a required platform package for another target unless a
        platform package for the target ships beside it (the same package.json) or of the
        same thing anywhere (sharp's for Linux x64, among sharp's optional dependencies)."""
        for declared_in, required in self._required.items():
            if declared_in in self._fitting:
                continue
            for name, words, package in required:
                if family(name) not in self._families:
                    raise self.refused(words, package or name)

    def refused(self, what: str, package: str) -> PlatformError:
        """A refusal with the command that installs the target's platform packages."""
        return PlatformError(f"{what}: {install_command(self.lockfile, self.target)}", package)
