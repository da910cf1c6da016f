"""The target and what a native file's first bytes say it was built for (docs/design.md,
"The target platform")."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import MACH_O, PE, elf

from lambdazip_tf.core.binaries import NATIVE, Binary, Target, binary, file_head

X86_64, ARM64 = Target("x86_64"), Target("arm64")


def test_the_target_defaults_to_x86_64_and_names_its_elf_machine() -> None:
    assert Target() == X86_64
    assert X86_64.machine == 62
    assert ARM64.machine == 183
    assert str(X86_64) == "Linux x86_64 (glibc)"
    assert str(ARM64) == "Linux arm64 (glibc)"


def test_an_unknown_architecture_has_no_machine() -> None:
    with pytest.raises(KeyError):
        _ = Target("riscv64").machine


@pytest.mark.parametrize(
    ("machine", "target", "words", "loadable"),
    [
        (62, X86_64, "Linux x86_64", True),
        (62, ARM64, "Linux x86_64", False),
        (183, ARM64, "Linux arm64", True),
        (183, X86_64, "Linux arm64", False),
        (3, X86_64, "Linux x86 (32-bit)", False),
        (40, ARM64, "Linux ARM (32-bit)", False),
        (243, X86_64, "Linux machine 243", False),  # RISC-V: named by number
    ],
)
def test_a_little_endian_elf_is_loadable_only_on_its_own_machine(
    machine: int, target: Target, words: str, loadable: bool
) -> None:
    assert binary(elf(machine), target) == Binary("elf", words, loadable)


def test_a_big_endian_elf_reads_its_machine_big_endian() -> None:
    head = bytearray(elf(0))
    head[5] = 2  # EI_DATA: big-endian
    head[18:20] = (22).to_bytes(2, "big")
    assert binary(bytes(head), X86_64) == Binary("elf", "Linux s390x", False)
    # The same bytes read little-endian would be another machine entirely.
    head[18:20] = (62).to_bytes(2, "big")
    assert binary(bytes(head), X86_64) == Binary("elf", "Linux x86_64", True)


@pytest.mark.parametrize("length", [0, 4, 5, 19])
def test_an_elf_header_too_short_to_name_its_machine_is_not_a_binary(length: int) -> None:
    assert binary(elf(62)[:length], X86_64) is None


@pytest.mark.parametrize(
    "magic",
    [
        b"\xcf\xfa\xed\xfe",  # 64-bit Mach-O
        b"\xce\xfa\xed\xfe",  # 32-bit Mach-O
        b"\xca\xfe\xba\xbe",  # universal (fat) binary
    ],
)
def test_every_mach_o_is_refused_whatever_the_target(magic: bytes) -> None:
    head = magic + b"\0" * 60
    for target in (X86_64, ARM64):
        assert binary(head, target) == Binary("mach-o", "macOS", False)
    assert binary(MACH_O, X86_64) == Binary("mach-o", "macOS", False)


def test_a_pe_file_is_refused() -> None:
    assert binary(PE, X86_64) == Binary("pe", "Windows", False)
    assert binary(b"MZ", ARM64) == Binary("pe", "Windows", False)


@pytest.mark.parametrize(
    "head",
    [b"", b"module.exports = 1;\n", b"\x7fEL", b"{}", b"\xfe\xed\xfa\xcf" + b"\0" * 60],
)
def test_data_is_not_a_binary(head: bytes) -> None:
    assert binary(head, X86_64) is None


def test_file_head_reads_the_first_64_bytes_and_nothing_of_a_missing_file(
    tmp_path: Path,
) -> None:
    big = tmp_path / "x.node"
    big.write_bytes(elf(183) + b"\xff" * 1000)
    assert file_head(str(big)) == elf(183)[:64]
    small = tmp_path / "small.so"
    small.write_bytes(b"abc")
    assert file_head(str(small)) == b"abc"
    assert file_head(str(tmp_path / "missing.node")) == b""
    assert file_head(str(tmp_path)) == b""  # a folder cannot be read either


@pytest.mark.parametrize(
    "name",
    [
        "x.node",
        "build/Release/addon.node",
        "libx.so",
        "libx.so.1",
        "libx.so.1.2",
        "x.cpython-312-x86_64-linux-gnu.so",
    ],
)
def test_native_matches_addons_and_shared_libraries(name: str) -> None:
    assert NATIVE.search(name)


@pytest.mark.parametrize(
    "name", ["x.node.js", "x.sox", "x.so.js", "libx.so.1a", "node.txt", "x.nodes", "so"]
)
def test_native_does_not_match_other_files(name: str) -> None:
    assert not NATIVE.search(name)
