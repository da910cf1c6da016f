"""Native files judged by their first bytes for the target (docs/design.md, "The target
platform")."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from helpers import MACH_O, PE, elf

from lambdazip_tf.core import native
from lambdazip_tf.core.binaries import Binary, Target, file_head
from lambdazip_tf.core.entries import FILE_MODE, LINK_MODE, Entry, Excluded
from lambdazip_tf.core.native import judge, own_refusal
from lambdazip_tf.core.runtime import Alternatives
from lambdazip_tf.errors import LambdazipError, PlatformError

X86_64, ARM64 = Target("x86_64"), Target("arm64")
ENGINES = "node_modules/.prisma/client/"
PRISMA = Alternatives("the generated Prisma client", "Prisma query engine", "add a binaryTarget")


class Refused(LambdazipError):
    """What the test's refusal returns, with what it was called with."""

    def __init__(self, entry: Entry, found: Binary, group: Alternatives | None) -> None:
        super().__init__(f"refused {entry.arc}")
        self.entry, self.found, self.group = entry, found, group


def refuse(entry: Entry, found: Binary, group: Alternatives | None) -> LambdazipError:
    return Refused(entry, found, group)


def files(root: Path, contents: dict[str, bytes]) -> list[Entry]:
    """A file entry for each archive path, its content written under `root`."""
    entries = []
    for arc, data in sorted(contents.items()):
        path = root / arc
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        entries.append(Entry(arc, "file", FILE_MODE, str(path), size=len(data)))
    return entries


def test_loadable_binaries_ship_and_are_recorded_with_what_they_were_built_for(
    tmp_path: Path,
) -> None:
    entries = files(
        tmp_path,
        {"addon.node": elf(183), "lib/libx.so.1.2": elf(183), "index.js": b"x"},
    )
    judged = judge(entries, ARM64, {}, refuse)
    assert judged.entries == entries
    assert judged.left_out == []
    assert judged.built == {
        "addon.node": Binary("elf", "Linux arm64", True),
        "lib/libx.so.1.2": Binary("elf", "Linux arm64", True),
    }


@pytest.mark.parametrize(
    ("head", "found"),
    [
        (elf(62), Binary("elf", "Linux x86_64", False)),
        (MACH_O, Binary("mach-o", "macOS", False)),
        (PE, Binary("pe", "Windows", False)),
    ],
)
def test_a_binary_the_target_cannot_load_raises_the_refusal_it_is_given(
    tmp_path: Path, head: bytes, found: Binary
) -> None:
    entries = files(tmp_path, {"index.js": b"x", "build/Release/addon.node": head})
    with pytest.raises(Refused) as caught:
        judge(entries, ARM64, {}, refuse)
    assert caught.value.entry == entries[0]
    assert caught.value.found == found
    assert caught.value.group is None


def test_data_files_with_native_names_and_binaries_with_other_names_are_not_judged(
    tmp_path: Path,
) -> None:
    entries = files(
        tmp_path,
        {
            "data/table.so": b"not a binary at all",
            "empty.node": b"",
            "tool.bin": elf(62),  # not a name that may hold native code
            "x.node.js": MACH_O,
        },
    )
    judged = judge(entries, ARM64, {}, refuse)
    assert judged.entries == entries
    assert judged.built == {}
    assert judged.left_out == []


def test_folders_and_links_named_like_native_files_are_not_read(tmp_path: Path) -> None:
    entries = [
        Entry("lib/x.so", "dir", 0o755),
        Entry("libx.so", "link", LINK_MODE, target="lib/x.so"),
    ]
    judged = judge(entries, X86_64, {}, refuse)
    assert judged.entries == entries
    assert judged.built == {}


def test_an_alternatives_folder_with_a_loadable_binary_leaves_the_others_out(
    tmp_path: Path,
) -> None:
    entries = files(
        tmp_path,
        {
            ENGINES + "libquery_engine-darwin-arm64.dylib.node": MACH_O,
            ENGINES + "libquery_engine-linux-arm64-openssl-3.0.x.so.node": elf(183),
            ENGINES + "libquery_engine-debian-openssl-3.0.x.so.node": elf(62),
            ENGINES + "index.js": b"module.exports = {};",
        },
    )
    judged = judge(entries, ARM64, {ENGINES: PRISMA}, refuse)
    reason = "Prisma query engine for another platform, not Linux arm64 (glibc)"
    index, darwin, debian, linux = entries
    assert judged.left_out == [
        Excluded(darwin.arc, reason, darwin.source),
        Excluded(debian.arc, reason, debian.source),
    ]
    assert judged.entries == [index, linux]
    assert judged.built == {linux.arc: Binary("elf", "Linux arm64", True)}


def test_an_alternatives_folder_with_none_loadable_refuses_with_its_alternatives(
    tmp_path: Path,
) -> None:
    entries = files(
        tmp_path,
        {
            ENGINES + "libquery_engine-darwin-arm64.dylib.node": MACH_O,
            ENGINES + "libquery_engine-debian-openssl-3.0.x.so.node": elf(62),
        },
    )
    with pytest.raises(Refused) as caught:
        judge(entries, ARM64, {ENGINES: PRISMA}, refuse)
    assert caught.value.group == PRISMA
    assert caught.value.entry.arc.startswith(ENGINES)


def test_a_fitting_alternative_does_not_excuse_a_binary_outside_its_folder(
    tmp_path: Path,
) -> None:
    entries = files(
        tmp_path,
        {
            ENGINES + "engine-linux.so.node": elf(62),
            ENGINES + "engine-darwin.dylib.node": MACH_O,
            "node_modules/other/addon.node": MACH_O,
        },
    )
    with pytest.raises(Refused) as caught:
        judge(entries, X86_64, {ENGINES: PRISMA}, refuse)
    assert caught.value.entry.arc == "node_modules/other/addon.node"
    assert caught.value.group is None


def test_each_native_file_is_read_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reads: Counter[str] = Counter()

    def counted(path: str) -> bytes:
        reads[path] += 1
        return file_head(path)

    monkeypatch.setattr(native, "file_head", counted)
    entries = files(
        tmp_path,
        {
            ENGINES + "engine-linux.so.node": elf(62),
            ENGINES + "engine-darwin.dylib.node": MACH_O,
            ENGINES + "schema.prisma": b"generator client {}",
            "addon.node": elf(62),
            "data.so": b"data",
        },
    )
    judged = judge(entries, X86_64, {ENGINES: PRISMA}, refuse)
    assert len(judged.left_out) == 1
    native_sources = {e.source for e in entries if not e.arc.endswith(".prisma")}
    assert set(reads) == native_sources
    assert set(reads.values()) == {1}


def test_own_refusal_names_the_file_what_it_was_built_for_the_target_and_the_fix(
    tmp_path: Path,
) -> None:
    entries = files(tmp_path, {"bin/sharp.node": MACH_O})
    with pytest.raises(PlatformError) as caught:
        judge(entries, X86_64, {}, own_refusal(X86_64))
    assert str(caught.value) == (
        "the function's own files ships bin/sharp.node, a macOS binary, which "
        "Linux x86_64 (glibc) cannot load: build it on Linux x86_64 (glibc), or leave it "
        "out with excludes"
    )
    assert caught.value.package is None
