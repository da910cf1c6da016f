"""The target platform and what a native file was built for, read from its first bytes.

Lambda runs Linux with glibc, on x86_64 or arm64 (`architecture`, spelled as
`aws_lambda_function.architectures` spells it). A native file for another machine, a Mach-O
(macOS) or a PE (Windows) file fails at the first cold start; which files a runtime judges, and
what fixes them, is the runtime's to say (docs/design.md, "The target platform").
"""

from __future__ import annotations

import re
from typing import NamedTuple

_ELF_MACHINE = {"x86_64": 62, "arm64": 183}
_ELF_NAMES = {3: "x86 (32-bit)", 40: "ARM (32-bit)", 62: "x86_64", 183: "arm64", 22: "s390x"}
# File names that may hold native code: Node.js addons and shared libraries (libx.so.1 too).
# The change path declines on these, so that the full build judges them for the target.
NATIVE = re.compile(r"\.node$|\.so(\.\d+)*$")


class Target(NamedTuple):
    """The platform a zip is for."""

    architecture: str = "x86_64"

    @property
    def machine(self) -> int:
        """The ELF e_machine of loadable code."""
        return _ELF_MACHINE[self.architecture]

    def __str__(self) -> str:
        return f"Linux {self.architecture} (glibc)"


class Binary(NamedTuple):
    """What a native file was built for."""

    kind: str  # "elf", "mach-o", "pe"
    machine: str  # in words
    loadable: bool  # on the target


def binary(head: bytes, target: Target) -> Binary | None:
    """What the first bytes of a native file say it was built for; None when it is not a
    binary at all (a data file named so)."""
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
