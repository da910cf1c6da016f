"""What `plan` reports besides the entries: sizes of what was left out, and a zip's estimated
size (docs/design.md, "The program")."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import pytest
from helpers import build_ok, link, write

from lambdazip_tf.core.entries import Entry, Excluded, with_parents
from lambdazip_tf.core.filesystem import ObservedFileSystem
from lambdazip_tf.core.inventory import Group, estimated_size, groups, tree_size
from lambdazip_tf.core.selection import DEFAULT_EXCLUDES, Collector, ExcludeRules


def selected(src: Path) -> list[Entry]:
    """The entries a build of `src` under runtime files stores, selected as it selects them."""
    collector = Collector(ObservedFileSystem(), allowed_roots=[str(src)])
    collector.add_tree(str(src), "", ExcludeRules.build([], DEFAULT_EXCLUDES))
    collector.resolve_links()
    return with_parents(collector.entries.values())


def mixed_tree(src: Path) -> Path:
    """Many small files of code, a few large compressible ones, one that does not compress."""
    rng = random.Random(7)
    for i in range(400):
        words = " ".join(
            rng.choice(["const", "x", "=", "require", "(", ")", ";"]) for _ in range(i)
        )
        write(src / "lib" / f"m{i}.js", f"// module {i}\nmodule.exports = {i};\n{words}\n")
    for i in range(3):
        rows = [
            {"id": n, "name": f"row-{n % 97}", "tags": ["a", "b"][: n % 3]} for n in range(9000)
        ]
        write(src / "data" / f"table{i}.json", json.dumps(rows, indent=i))
    (src / "data" / "blob.bin").write_bytes(rng.randbytes(300_000))
    link(src / "lib" / "alias.js", "m1.js")
    return src


def test_tree_size_counts_a_file_and_nothing_for_a_link_or_a_missing_path(tmp_path: Path) -> None:
    write(tmp_path / "a.txt", "12345")
    link(tmp_path / "to-a", "a.txt")
    assert tree_size(str(tmp_path / "a.txt")) == (1, 5)
    assert tree_size(str(tmp_path / "to-a")) == (0, 0)
    assert tree_size(str(tmp_path / "missing")) == (0, 0)


def test_tree_size_counts_a_folders_regular_files_without_following_links(
    tmp_path: Path,
) -> None:
    pkg = tmp_path / "pkg"
    write(pkg / "index.js", "abc")
    write(pkg / "lib" / "deep" / "x.js", "1234567")
    write(tmp_path / "outside" / "big.bin", "x" * 10_000)
    link(pkg / "big.bin", "../outside/big.bin")
    link(pkg / "outside", "../outside")
    assert tree_size(str(pkg)) == (2, 10)


def test_tree_size_skips_folders_with_the_skipped_name_at_any_depth(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    write(pkg / "index.js", "abc")
    write(pkg / "node_modules" / "dep" / "index.js", "x" * 100)
    write(pkg / "lib" / "node_modules" / "nested" / "index.js", "y" * 100)
    write(pkg / "lib" / "node_modules.js", "zz")
    assert tree_size(str(pkg)) == (4, 205)
    assert tree_size(str(pkg), skip="node_modules") == (2, 5)


def test_groups_count_paths_files_and_bytes_per_reason_largest_first(tmp_path: Path) -> None:
    write(tmp_path / ".env", "S=1")  # 3 bytes
    write(tmp_path / ".env.local", "S=22")  # 4 bytes
    write(tmp_path / "tests" / "a.test.js", "x" * 50)
    write(tmp_path / "tests" / "b.test.js", "x" * 50)
    write(tmp_path / "installed" / "@aws-sdk" / "client" / "index.js", "x" * 500)
    excluded = [
        Excluded(".env", "secret", str(tmp_path / ".env")),
        Excluded(".env.local", "secret", str(tmp_path / ".env.local")),
        Excluded("tests", "excludes pattern 'tests/'", str(tmp_path / "tests")),
        Excluded("node_modules/@aws-sdk/client", "exclude_packages", None, "@aws-sdk/client"),
        Excluded("gone", "secret", str(tmp_path / "gone")),  # vanished since: counted, empty
    ]
    located = {"node_modules/@aws-sdk/client": str(tmp_path / "installed" / "@aws-sdk")}
    assert groups(excluded, located) == [
        Group("exclude_packages", 1, 1, 500),
        Group("excludes pattern 'tests/'", 1, 2, 100),
        Group("secret", 3, 2, 7),
    ]


def test_groups_of_equal_size_are_ordered_by_reason(tmp_path: Path) -> None:
    write(tmp_path / "a", "xx")
    write(tmp_path / "b", "yy")
    excluded = [
        Excluded("b", "zeta", str(tmp_path / "b")),
        Excluded("a", "alpha", str(tmp_path / "a")),
    ]
    assert [g.reason for g in groups(excluded, {})] == ["alpha", "zeta"]
    assert groups([], {}) == []


def test_estimated_size_of_folders_and_links_is_the_zips_size_exactly(
    tmp_path: Path, run_cli: Any
) -> None:
    src = tmp_path / "fn"
    (src / "empty" / "deeper").mkdir(parents=True)
    link(src / "lib" / "again.js", "../empty")
    link(src / "up", "empty/deeper")
    built = build_ok(run_cli, src, runtime="files")
    assert estimated_size(selected(src), 6) == int(built["output_size"])


def test_estimated_size_is_exact_when_stored_uncompressed(tmp_path: Path, run_cli: Any) -> None:
    src = mixed_tree(tmp_path / "fn")
    built = build_ok(run_cli, src, runtime="files", compression_level="0")
    assert estimated_size(selected(src), 0) == int(built["output_size"])


@pytest.mark.parametrize("level", [1, 6, 9])
def test_estimated_size_is_close_to_the_built_zips_size(
    tmp_path: Path, run_cli: Any, level: int
) -> None:
    src = mixed_tree(tmp_path / "fn")
    built = int(
        build_ok(run_cli, src, runtime="files", compression_level=str(level))["output_size"]
    )
    estimate = estimated_size(selected(src), level)
    assert abs(estimate - built) <= 0.10 * built, (estimate, built)


def test_estimated_size_takes_unreadable_files_as_stored(tmp_path: Path) -> None:
    gone = str(tmp_path / "gone.js")
    assert not os.path.exists(gone)
    entries = [Entry("gone.js", "file", 0o644, gone, size=1000), Entry("lib", "dir", 0o755)]
    overhead = (76 + 2 * len("gone.js")) + (76 + 2 * len("lib/")) + 22
    assert estimated_size(entries, 6) == 1000 + overhead
