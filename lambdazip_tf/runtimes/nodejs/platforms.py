"""npm's platform fields: a package.json's (or a lockfile entry's) `os`, `cpu` and `libc`,
against the target (docs/design.md, "The target platform")."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from ...core.binaries import Target

_NODE_CPU = {"x86_64": "x64", "arm64": "arm64"}


def node_cpu(target: Target) -> str:
    """Node's name for the target's CPU (process.arch)."""
    return _NODE_CPU[target.architecture]


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
        and _allows(list(fields.get("cpu", [])), node_cpu(target))
        and _allows(list(fields.get("libc", [])), "glibc")
    )


def described(fields: Mapping[str, Sequence[str]]) -> str:
    """What a platform package is built for, in words: "darwin arm64", "linux x64 musl"."""
    return " ".join("/".join(fields[key]) for key in ("os", "cpu", "libc") if key in fields)


_OS_NAMES = ("linux", "darwin", "win32", "freebsd", "openbsd", "netbsd", "sunos", "aix", "android")
_CPU_NAMES = ("x64", "arm64", "ia32", "arm", "ppc64", "s390x", "riscv64", "loong64", "mips64el")
_NAME_PARTS = re.compile(r"[-_./@]")


_LIBC_WORDS = ("linuxmusl", "musl", "gnu", "glibc", "gnueabihf", "musleabihf", "msvc")


def family(name: str) -> str:
    """A platform package's name without its platform words: what the packages for other
    platforms of the same thing share ("@img/sharp-darwin-arm64" and "@img/sharp-linux-x64":
    "img/sharp"; "@img/sharp-libvips-linux-x64": "img/sharp/libvips")."""
    words = (*_OS_NAMES, *_CPU_NAMES, *_LIBC_WORDS)
    return "/".join(p for p in _NAME_PARTS.split(name) if p and p not in words)


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
