"""What Lambda's Python runtime can load: wheel tags, and the shared objects themselves
(docs/design.md, "Python").

A wheel fits when one of its tags does: interpreter `cp3Y` of the runtime, `abi3` of an older
one or `py3`; platform `any`, or manylinux for the architecture up to the runtime's glibc
(python3.10 and 3.11 run on Amazon Linux 2, glibc 2.26; 3.12 and later on Amazon Linux 2023,
glibc 2.34). Each shipped `.so` is read besides: one built for another CPython
(`.cpython-311-...so` under python3.12) is skipped by the import system without a word; one
linked against musl, or needing a newer glibc than the runtime's, fails at its first import.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache
from typing import NamedTuple

from packaging.tags import Tag, compatible_tags, cpython_tags, parse_tag

from ...core.binaries import Target

_ARCH = {"x86_64": "x86_64", "arm64": "aarch64"}
_SUFFIX = re.compile(r"\.cpython-3(\d+)[a-z]*-([a-z0-9_]+)-linux-(gnu|musl)\.so$")
_GLIBC = re.compile(r"^GLIBC_2\.(\d+)")
_GLIBCXX = re.compile(r"^GLIBCXX_3\.4\.(\d+)")


def glibc_of(minor: int) -> int:
    """The glibc minor version of the runtime python3.<minor>: Amazon Linux 2 or 2023."""
    return 26 if minor <= 11 else 34


def glibcxx_of(minor: int) -> int:
    """The newest GLIBCXX_3.4.N of the runtime's libstdc++: GCC 7's on Amazon Linux 2, GCC 11's
    on Amazon Linux 2023."""
    return 24 if minor <= 11 else 29


def runtime_name(minor: int, target: Target) -> str:
    """The runtime in words: "python3.12 (Linux x86_64, glibc 2.34)"."""
    return f"python3.{minor} ({target.architecture}, glibc 2.{glibc_of(minor)})"


@cache
def supported(minor: int, architecture: str) -> frozenset[Tag]:
    """Every tag a wheel for python3.<minor> on Lambda may carry."""
    arch = _ARCH[architecture]
    ceiling = glibc_of(minor)
    platforms = [f"manylinux_2_{n}_{arch}" for n in range(ceiling, 16, -1)]
    platforms.append(f"manylinux2014_{arch}")
    if arch == "x86_64":
        platforms += [f"manylinux_2_{n}_{arch}" for n in range(16, 4, -1)]
        platforms += [f"manylinux2010_{arch}", f"manylinux1_{arch}"]
    platforms.append(f"linux_{arch}")  # a local build: its .so files are judged instead
    version = (3, minor)
    tags = set(cpython_tags(version, abis=[f"cp3{minor}"], platforms=platforms))
    tags |= set(compatible_tags(version, interpreter=f"cp3{minor}", platforms=platforms))
    return frozenset(tags)


def wheel_fits(tags: Sequence[str], minor: int, target: Target) -> bool:
    """Whether one of a wheel's tags fits (a distribution with no WHEEL tags is not judged)."""
    wanted = supported(minor, target.architecture)
    return not tags or any(t in wanted for text in tags for t in parse_tag(text))


def built_for(tags: Sequence[str]) -> str:
    """What a wheel's first tag says it was built for, in words."""
    interpreter, abi, platforms = [*tags[0].split("-"), "", "", ""][:3]
    platform = platforms.split(".")[0]  # a compressed tag set: the first names it
    if platform.startswith("macosx"):
        where = "macOS"
    elif platform.startswith("win"):
        where = "Windows"
    elif platform.startswith("musllinux"):
        where = f"musl Linux ({platform}, as Alpine)"
    else:
        where = platform
    python = (
        f"CPython 3.{interpreter[3:]}"
        if interpreter.startswith("cp3") and abi != "abi3"
        else interpreter
    )
    return f"{where}, {python}"


class SharedObject(NamedTuple):
    """What a shared object's ELF says it needs."""

    musl: bool
    glibc: int | None  # the highest GLIBC_2.x it needs
    glibcxx: int | None = None  # the highest GLIBCXX_3.4.x it needs


def read_shared_object(path: str) -> SharedObject | None:
    """The libc a shared object links against and the newest glibc symbol version it needs;
    None when it is not an ELF file (the core judges what it is)."""
    from elftools.common.exceptions import ELFError  # noqa: PLC0415 - only for .so files
    from elftools.elf.elffile import ELFFile  # noqa: PLC0415

    try:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            dynamic = elf.get_section_by_name(".dynamic")
            needed = (
                [t.needed for t in dynamic.iter_tags("DT_NEEDED")]  # type: ignore[attr-defined]
                if dynamic is not None
                else []
            )
            newest = newest_cxx = None
            versions = elf.get_section_by_name(".gnu.version_r")
            for _, auxiliaries in versions.iter_versions() if versions is not None else ():  # type: ignore[attr-defined]
                for aux in auxiliaries:
                    found = _GLIBC.match(aux.name)
                    if found:
                        newest = max(newest or 0, int(found.group(1)))
                    found = _GLIBCXX.match(aux.name)
                    if found:
                        newest_cxx = max(newest_cxx or 0, int(found.group(1)))
    except (ELFError, OSError, ValueError, AttributeError):
        return None
    return SharedObject(any(n.startswith("libc.musl-") for n in needed), newest, newest_cxx)


def suffix_problem(name: str, minor: int, target: Target) -> str | None:
    """What is wrong with an extension module's file name for the runtime, if anything."""
    found = _SUFFIX.search(name)
    if found is None:
        return None  # .abi3.so, or a plain library
    built_minor, arch, libc = int(found.group(1)), found.group(2), found.group(3)
    if libc == "musl":
        return "an extension module built for musl"
    if arch != _ARCH[target.architecture]:
        return f"an extension module built for {arch}"
    if built_minor != minor:
        return (
            f"an extension module built for CPython 3.{built_minor}, which python3.{minor} "
            'skips on import (the import fails with "No module named")'
        )
    return None


def pip_platforms(minor: int, target: Target) -> list[str]:
    """pip's --platform values for the runtime: pip matches each exactly (manylinux2014 takes
    2010 and 1 too), so every glibc version from 2.18 up to the runtime's is named."""
    arch = _ARCH[target.architecture]
    return [f"manylinux2014_{arch}"] + [
        f"manylinux_2_{n}_{arch}" for n in range(18, glibc_of(minor) + 1)
    ]


def uv_platform(minor: int, target: Target) -> str:
    """uv's --python-platform for the runtime: the newest it offers within the runtime's glibc
    (uv has nothing between manylinux2014 and manylinux_2_28)."""
    arch = _ARCH[target.architecture]
    return (
        f"{arch}-manylinux_2_{glibc_of(minor)}"
        if glibc_of(minor) >= 28
        else f"{arch}-manylinux2014"
    )
