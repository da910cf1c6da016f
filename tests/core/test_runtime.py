"""The core knows no language: a third runtime, written here from the protocol alone, is
detected, crawled, split into a layer by what it owns and checked like Node.js
(docs/design.md, "Runtimes").

The toy runtime: a folder declares its dependencies in `deps.txt` (one folder name a line),
installed into `vendor/`; a layer keeps them under `lib/`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest
from helpers import elf, write

from lambdazip_tf.core.binaries import Binary, Target
from lambdazip_tf.core.context import resolve_context
from lambdazip_tf.core.entries import Entry, Excluded, PackageInfo
from lambdazip_tf.core.filesystem import ObservedFileSystem
from lambdazip_tf.core.layout import Layout, build_layout
from lambdazip_tf.core.native import platform_error
from lambdazip_tf.core.request import Request
from lambdazip_tf.core.runtime import Alternatives, Dependencies, Query, Runtime, Unshipped
from lambdazip_tf.core.selection import Collector, ExcludeRules
from lambdazip_tf.errors import LambdazipError, PlatformError, RequestError


class Toy:
    """A runtime in thirty lines: what a third one needs to write."""

    name = "toy"
    manifest = "deps.txt"
    installed = "vendor"
    layer_prefix = "lib/"
    default_excludes = ((".toyrc", "package manager settings (may hold a token)"),)
    own_excludes = (("*.toycache", "compiled on the host"),)

    def declares(self, fs: ObservedFileSystem, folder: str) -> bool:
        return fs.isfile(os.path.join(folder, self.manifest))

    def is_workspace_root(self, fs: ObservedFileSystem, folder: str) -> bool:
        return fs.exists(os.path.join(folder, "toy-workspace"))

    def hidden_dependencies(self, fs: ObservedFileSystem, folder: str) -> str | None:
        if self.declares(fs, folder) and fs.isdir(os.path.join(folder, self.installed)):
            return os.path.join(folder, self.manifest)
        return None

    def skipped(self, fs: ObservedFileSystem, query: Query) -> frozenset[str]:
        return frozenset({os.path.join(query.source, "installed-by-hand")})

    def collect(
        self, collector: Collector, query: Query, rules: ExcludeRules, own_rules: ExcludeRules
    ) -> Dependencies:
        declared = Path(query.packages_from, self.manifest).read_text().split()
        packages = []
        for name in declared:
            real = os.path.join(query.packages_from, self.installed, name)
            collector.add_tree(real, f"{self.installed}/{name}", rules)
            packages.append(
                PackageInfo(
                    name, "1", f"{self.installed}/{name}", 0, 0, (self.manifest, name), real
                )
            )
        target = query.target

        def refuse(entry: Entry, found: Binary, _: Alternatives | None) -> LambdazipError:
            return platform_error("a toy package", entry, found, target, "rebuild it")

        return Dependencies(
            packages, frozenset({self.installed}), [], ["toy warning"], {}, [], refuse
        )

    def other_platforms(self, entries: Sequence[Entry], target: Target) -> list[Excluded]:
        return [
            Excluded(e.arc, "another platform's", e.source) for e in entries if "darwin" in e.arc
        ]

    def unshipped(self, query: Query, shipped: Sequence[str]) -> list[Unshipped]:
        return []

    def notes(self, zips: Sequence[Sequence[Entry]], excluded: Sequence[Excluded]) -> list[str]:
        return [f"{sum(len(z) for z in zips)} toy entries"]

    def locate(self, query: Query, excluded: Sequence[Excluded]) -> dict[str, str]:
        return {}


TOY: Runtime = Toy()


def _layout(src: Path, **request: object) -> Layout:
    fs = ObservedFileSystem()
    req = Request.model_validate({"source_dir": str(src), **request})
    context = resolve_context(req, fs, (TOY,), cwd=src.parent)
    return build_layout(context, fs)


def _project(src: Path) -> Path:
    write(src / "handler.py", "def handler(event, context): ...\n")
    write(src / ".toyrc", "token=secret\n")
    write(src / "deps.txt", "alpha\n")
    write(src / "vendor" / "alpha" / "alpha.py", "A = 1\n")
    write(src / "vendor" / "unused" / "unused.py", "U = 1\n")  # installed, not declared
    return src


def test_a_folder_that_declares_the_runtimes_dependencies_is_crawled_by_it(tmp_path: Path) -> None:
    layout = _layout(_project(tmp_path / "fn"))
    assert layout.context.runtime == "toy"
    assert [e.arc for e in layout.function if e.kind == "file"] == [
        "deps.txt",
        "handler.py",
        "vendor/alpha/alpha.py",
    ]
    assert [(p.name, p.chain) for p in layout.packages] == [("alpha", ("deps.txt", "alpha"))]
    assert layout.warnings == ["toy warning"]
    assert [x.reason for x in layout.excluded] == [
        "default: package manager settings (may hold a token) pattern '.toyrc'"
    ]


def test_the_layer_holds_what_the_runtime_owns_under_its_prefix(tmp_path: Path) -> None:
    layout = _layout(_project(tmp_path / "fn"), layer=True)
    assert [e.zip_name for e in layout.function] == ["deps.txt", "handler.py"]
    assert layout.layer is not None
    assert [e.zip_name for e in layout.layer] == [
        "lib/",
        "lib/vendor/",
        "lib/vendor/alpha/",
        "lib/vendor/alpha/alpha.py",
    ]


def test_without_its_manifest_the_folder_is_files_and_its_installed_folder_left_out(
    tmp_path: Path,
) -> None:
    src = _project(tmp_path / "fn")
    (src / "deps.txt").unlink()
    layout = _layout(src)
    assert layout.context.runtime == "files"
    assert [e.arc for e in layout.function if e.kind == "file"] == ["handler.py"]
    assert "default: dependencies come from runtime toy, not from files pattern 'vendor'" in {
        x.reason for x in layout.excluded
    }
    with pytest.raises(RequestError, match=r"layer = true needs runtime toy \(a deps.txt\)"):
        _layout(src, layer=True)


def test_a_folder_below_installed_dependencies_must_say_what_it_means(tmp_path: Path) -> None:
    root = _project(tmp_path / "project")
    write(root / "toy-workspace")
    write(root / "dist" / "handler.py", "def handler(event, context): ...\n")
    with pytest.raises(RequestError, match=r"has no deps.txt, but .*project/deps.txt above it"):
        _layout(root / "dist")
    layout = _layout(root / "dist", package_dir=str(root))
    assert "vendor/alpha/alpha.py" in {e.arc for e in layout.function}


def test_native_files_are_judged_with_the_runtimes_refusal_and_conventions(
    tmp_path: Path,
) -> None:
    src = _project(tmp_path / "fn")
    write(src / "vendor" / "alpha" / "fast.so").write_bytes(elf(62))
    write(src / "vendor" / "alpha" / "darwin" / "fast.so").write_bytes(
        b"\xcf\xfa\xed\xfe" + b"\0" * 60
    )
    layout = _layout(src)
    assert [n.name for n in layout.native] == ["vendor/alpha/fast.so"]
    assert "vendor/alpha/darwin/fast.so" in {x.arc for x in layout.excluded}
    with pytest.raises(
        PlatformError,
        match=r"a toy package ships vendor/alpha/fast.so, a Linux x86_64 binary, which "
        r"Linux arm64 \(glibc\) cannot load: rebuild it",
    ):
        _layout(src, architecture="arm64")
