"""The target platform: Linux with glibc on x86_64 or arm64, and what can be loaded there.

Lambda runs Linux with glibc, on x86_64 or arm64 (`architecture`, spelled as
`aws_lambda_function.architectures` spells it). A zip with native code for another platform
fails at its first cold start, so the build checks (docs/design.md, "The target platform"):

- platform packages: a package.json whose `os`, `cpu` or `libc` leave the target out;
- native files (`.node`, `.so`): the ELF header's machine, or a Mach-O or PE file, which Linux
  never loads. A file with such a name that is not a binary at all is not judged.

The fix commands are those of the package manager that made the tree.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from ..errors import PlatformError
from .entries import Entry, Excluded, PackageInfo

ARCHITECTURES = ("x86_64", "arm64")
_NODE_CPU = {"x86_64": "x64", "arm64": "arm64"}
_ELF_MACHINE = {"x86_64": 62, "arm64": 183}
_ELF_NAMES = {3: "x86 (32-bit)", 40: "ARM (32-bit)", 62: "x86_64", 183: "arm64", 22: "s390x"}
NATIVE = re.compile(r"\.node$|\.so(\.\d+)*$")


class Target(NamedTuple):
    """The platform a zip is for."""

    architecture: str = "x86_64"

    @property
    def cpu(self) -> str:
        """Node's name for the CPU (process.arch)."""
        return _NODE_CPU[self.architecture]

    @property
    def machine(self) -> int:
        """The ELF e_machine of loadable code."""
        return _ELF_MACHINE[self.architecture]

    def __str__(self) -> str:
        return f"Linux {self.architecture} (glibc)"


def _allows(values: Any, wanted: str) -> bool:
    """npm's rule for `os`, `cpu` and `libc`: a list of names, or of "!name" exclusions."""
    if not isinstance(values, list) or not values:
        return True
    names = [v for v in values if isinstance(v, str)]
    if any(v.startswith("!") for v in names):
        return f"!{wanted}" not in names
    return wanted in names


def platform_fields(manifest: Mapping[str, Any]) -> dict[str, list[str]]:
    """The `os`, `cpu` and `libc` a package.json (or a lockfile entry) declares."""
    return {
        key: [v for v in manifest[key] if isinstance(v, str)]
        for key in ("os", "cpu", "libc")
        if isinstance(manifest.get(key), list) and manifest[key]
    }


def fits(fields: Mapping[str, Sequence[str]], target: Target) -> bool:
    """Whether a package declaring `fields` may run on the target."""
    return (
        _allows(list(fields.get("os", [])), "linux")
        and _allows(list(fields.get("cpu", [])), target.cpu)
        and _allows(list(fields.get("libc", [])), "glibc")
    )


def described(fields: Mapping[str, Sequence[str]]) -> str:
    """What a platform package is built for, in words: "darwin arm64", "linux x64 musl"."""
    return " ".join("/".join(fields[key]) for key in ("os", "cpu", "libc") if key in fields)


class Binary(NamedTuple):
    """What a native file was built for."""

    kind: str  # "elf", "mach-o", "pe"
    machine: str  # in words
    loadable: bool  # on the target


def binary(head: bytes, target: Target) -> Binary | None:
    """What the first bytes of a `.node` or `.so` file say it was built for; None when it is
    not a binary at all (a data file named so)."""
    if head[:4] == b"\x7fELF" and len(head) >= 20:
        machine = int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")
        words = _ELF_NAMES.get(machine, f"machine {machine}")
        return Binary("elf", f"Linux {words}", machine == target.machine)
    if head[:4] in (b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xca\xfe\xba\xbe"):
        return Binary("mach-o", "macOS", False)
    if head[:2] == b"MZ":
        return Binary("pe", "Windows", False)
    return None


def file_head(path: str) -> bytes:
    """The first bytes of a file, enough for `binary`; none when it cannot be read."""
    try:
        with open(path, "rb") as f:
            return f.read(64)
    except OSError:
        return b""


# -- the package manager, its lockfile, and the commands that fix a tree ---------------------


class Lockfile(NamedTuple):
    """The package manager that made a tree, and what its lockfile says of platform packages."""

    manager: str  # "npm", "pnpm", "yarn" (1), "yarn-berry", or "" when there is no lockfile
    folder: str
    platforms: dict[str, dict[str, list[str]]]  # package name -> its os/cpu/libc


def lockfile_of(source: str) -> Lockfile:
    """The lockfile that governs `source` (the nearest one above it), read for the platform
    fields of every package it records."""
    folder = source
    while True:
        for name, manager in (
            ("pnpm-lock.yaml", "pnpm"),
            ("yarn.lock", "yarn"),
            ("package-lock.json", "npm"),
        ):
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                return _read_lockfile(path, manager, folder)
        parent = os.path.dirname(folder)
        if parent == folder:
            return Lockfile("", source, {})
        folder = parent


def _read_lockfile(path: str, manager: str, folder: str) -> Lockfile:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
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
    where = lockfile.folder
    wanted = f"os: [linux], cpu: [{target.cpu}], libc: [glibc]"
    if lockfile.manager == "pnpm":
        return (
            f"set pnpm's supportedArchitectures to {{{wanted}}} (pnpm-workspace.yaml, or "
            f"package.json's pnpm field) and run `pnpm install` in {where}"
        )
    if lockfile.manager == "yarn-berry":
        return (
            f"set supportedArchitectures to {{{wanted}}} in .yarnrc.yml and run "
            f"`yarn install` in {where}"
        )
    if lockfile.manager == "yarn":
        return (
            f"Yarn 1 installs only the platform it runs on: run `yarn install` in {where} on "
            f"{target} (a Linux container), or move to npm or pnpm"
        )
    return f"run `npm install --os=linux --cpu={target.cpu} --libc=glibc` in {where}"


# -- during the crawl: which platform packages ship -------------------------------------------

_OS_NAMES = ("linux", "darwin", "win32", "freebsd", "openbsd", "netbsd", "sunos", "aix", "android")
_CPU_NAMES = ("x64", "arm64", "ia32", "arm", "ppc64", "s390x", "riscv64", "loong64", "mips64el")
_NAME_PARTS = re.compile(r"[-_./@]")


def named_fields(name: str) -> dict[str, list[str]]:
    """The platform a package's name says it is for ("@esbuild/linux-arm64"), for lockfiles
    that record none (Yarn 1)."""
    parts = _NAME_PARTS.split(name)
    fields: dict[str, list[str]] = {}
    os_names = [p for p in parts if p in _OS_NAMES or p == "linuxmusl"]
    cpu_names = [p for p in parts if p in _CPU_NAMES]
    if os_names and cpu_names:
        fields["os"] = ["linux" if os_names[0] == "linuxmusl" else os_names[0]]
        fields["cpu"] = [cpu_names[0]]
        if "musl" in name:
            fields["libc"] = ["musl"]
        elif "gnu" in parts or "glibc" in parts:
            fields["libc"] = ["glibc"]
    return fields


class Gate:
    """Decides during the crawl which platform packages ship for the target, and refuses what
    cannot load there."""

    def __init__(self, target: Target, lockfile: Lockfile) -> None:
        self.target = target
        self.lockfile = lockfile
        self.left_out: list[tuple[str, str, str]] = []  # (name, reason, real folder)
        self._fitting: set[str] = set()  # package.json files with a fitting platform dependency
        self._required: dict[str, list[str]] = {}  # package.json -> required ones that do not

    def admits(
        self, name: str, manifest: Mapping[str, Any], real: str, optional: bool, where: str
    ) -> bool:
        """Whether the package `name` (installed at `real`, required by `where`) ships. Another
        target's platform package never does; a required one is refused at `check_needs`
        unless a dependency beside it fits (platform packages listed for several targets)."""
        fields = platform_fields(manifest)
        if not fields:
            return True
        if fits(fields, self.target):
            self._fitting.add(where)
            return True
        reason = f"platform package for {described(fields)}, not {self.target}"
        self.left_out.append((name, reason, real))
        if not optional:
            version = manifest.get("version", "?")
            self._required.setdefault(where, []).append(
                f"package {name}@{version}, required by {where}, is built for "
                f"{described(fields)}, but the function runs on {self.target}"
            )
        return False

    def check_needs(
        self,
        package: str,
        where: str,
        optional: Sequence[str],
        installed: Mapping[str, Mapping[str, Any]],
        satisfied: set[str],
    ) -> None:
        """Once a package's dependencies are resolved: refuse a required platform package for
        another target with none for the target beside it, and an optional platform package
        for the target that is not installed (`installed`: the manifests of its resolved
        dependencies by name; `satisfied`: the names that ship or that exclude_packages left
        out on purpose)."""
        refused = self._required.get(where)
        if refused and where not in self._fitting:
            raise _refused(refused[0], package, self)
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
            raise _refused(
                f"package {package} needs {fitting[0]} to run on {self.target}, and it is not "
                f"installed{seen}",
                fitting[0],
                self,
            )


def _refused(what: str, package: str, gate: Gate) -> PlatformError:
    return PlatformError(f"{what}: {install_command(gate.lockfile, gate.target)}", package)


# -- after the crawl: native files -----------------------------------------------------------

_PREBUILDS = re.compile(r"(^|/)prebuilds/([^/]+)/")


def _fitting_tag(tag: str, target: Target) -> bool:
    """A prebuilds folder's name (node-gyp-build: "linux-x64", "darwin-arm64+x64") fits?"""
    platform, _, archs = tag.partition("-")
    return platform == "linux" and target.cpu in archs.split("+")


def _owner(arc: str, packages: Sequence[PackageInfo]) -> PackageInfo | None:
    best = None
    for package in packages:
        if arc.startswith(package.arc + "/") and (best is None or len(package.arc) > len(best.arc)):
            best = package
    return best


class Alternatives(NamedTuple):
    """A folder of binaries for several platforms, one of which the target needs (Prisma's
    query engines, as `binaryTargets` lists them): the others are left out."""

    owner: str  # who ships them, for the error: "the generated Prisma client"
    binaries: str  # what they are, for `plan`: "Prisma query engine"
    fix: str  # what makes one the target can load


def native_files(
    entries: Sequence[Entry],
    packages: Sequence[PackageInfo],
    gate: Gate,
    alternatives: Mapping[str, Alternatives],
) -> tuple[list[Entry], list[Excluded], dict[str, Binary]]:
    """The entries without other platforms' prebuilt binaries (where the target's are beside
    them) and, in each `alternatives` folder (an archive path ending in "/"), without the
    binaries the target cannot load where one it can is beside them; what was left out; and
    what each native file kept was built for (by archive path). Refuses any other native file
    the target cannot load. Each file's first bytes are read once."""
    target = gate.target
    tags: dict[str, set[str]] = {}  # prebuilds folder -> the platforms it holds
    for entry in entries:
        found = _PREBUILDS.search(entry.arc)
        if found and entry.kind == "file":
            folder = entry.arc[: found.start(2)]
            tags.setdefault(folder, set()).add(found.group(2))
    judged: dict[str, Binary | None] = {}

    def judge(entry: Entry) -> Binary | None:
        if entry.arc not in judged:
            # An unreadable file reads as no bytes: the build names it when it packs it.
            judged[entry.arc] = binary(file_head(entry.source or ""), target)
        return judged[entry.arc]

    def alternative(entry: Entry) -> str | None:
        return next((f for f in alternatives if entry.arc.startswith(f)), None)

    fitting_groups = set()  # alternatives folders holding a binary the target can load
    for entry in entries if alternatives else ():
        group = alternative(entry)
        if group is not None and entry.kind == "file" and NATIVE.search(entry.arc):
            kind = judge(entry)
            if kind is not None and kind.loadable:
                fitting_groups.add(group)
    keep: list[Entry] = []
    left_out: list[Excluded] = []
    built: dict[str, Binary] = {}
    for entry in entries:
        found = _PREBUILDS.search(entry.arc + "/" if entry.kind == "dir" else entry.arc)
        if found:
            folder, tag = entry.arc[: found.start(2)], found.group(2)
            fitting = any(_fitting_tag(t, target) for t in tags.get(folder, ()))
            if fitting and not _fitting_tag(tag, target):
                left_out.append(
                    Excluded(entry.arc, f"prebuilt for {tag}, not {target}", entry.source)
                )
                continue
        if entry.kind == "file" and NATIVE.search(entry.arc):
            kind = judge(entry)
            if kind is not None and not kind.loadable:
                group = alternative(entry)
                if group is None or group not in fitting_groups:
                    others = alternatives.get(group) if group is not None else None
                    raise _refused_binary(entry, kind, packages, gate, others)
                what = alternatives[group].binaries
                left_out.append(
                    Excluded(entry.arc, f"{what} for another platform, not {target}", entry.source)
                )
                continue
            if kind is not None:
                built[entry.arc] = kind
        keep.append(entry)
    return keep, left_out, built


def _refused_binary(
    entry: Entry,
    found: Binary,
    packages: Sequence[PackageInfo],
    gate: Gate,
    alternatives: Alternatives | None,
) -> PlatformError:
    owner = _owner(entry.arc, packages)
    who = f"package {owner.name}@{owner.version}" if owner else "the function's own files"
    if alternatives is not None:
        who, fix = alternatives.owner, alternatives.fix
    elif owner is None:
        fix = f"build it on {gate.target}, or leave it out with excludes"
    elif "/build/" in entry.arc:  # compiled at install (node-gyp): only a rebuild there helps
        fix = f"install it on {gate.target} (in a Linux container), where it is built for Lambda"
    else:
        fix = install_command(gate.lockfile, gate.target)
    return PlatformError(
        f"{who} ships {entry.arc}, a {found.machine} binary, which {gate.target} cannot load: "
        f"{fix}",
        owner.name if owner else None,
    )


# -- for `plan`: what each native file and platform package was built for -------------------


class Native(NamedTuple):
    """A shipped platform package or native file, and what it was built for."""

    kind: str  # "package" or "file"
    name: str  # name@version, or the file's archive path
    built_for: str


def platform_packages(packages: Sequence[PackageInfo]) -> list[Native]:
    """Every shipped package whose package.json declares `os`, `cpu` or `libc`, with what it
    was built for (the build has refused any the target cannot load)."""
    return [
        Native("package", f"{p.name}@{p.version}", p.platform)
        for p in sorted(packages, key=lambda p: p.arc)
        if p.platform
    ]
