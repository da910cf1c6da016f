"""What Lambda's Python runtime can load: wheel tags, extension modules' names, and what their
ELF says they need (docs/design.md, "Python")."""

from __future__ import annotations

import shutil
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest
from helpers import assert_one_line_error, build_ok, elf, external, manifest, write
from python_dists import dist, venv

from lambdazip_tf.core.binaries import Target
from lambdazip_tf.runtimes.python.platform import (
    read_shared_object,
    suffix_problem,
    supported,
    wheel_fits,
)

X86, ARM = Target("x86_64"), Target("arm64")


@pytest.mark.parametrize(
    ("tag", "minor", "target", "fits"),
    [
        ("py3-none-any", 10, X86, True),
        ("cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64", 12, X86, True),
        ("cp312-cp312-manylinux_2_17_x86_64", 12, ARM, False),
        ("cp312-cp312-manylinux_2_17_aarch64", 12, ARM, True),
        ("cp311-cp311-manylinux_2_17_x86_64", 12, X86, False),  # another CPython
        ("cp39-abi3-manylinux_2_28_x86_64", 12, X86, True),  # the stable ABI of an older one
        ("cp39-abi3-manylinux_2_28_x86_64", 11, X86, False),  # glibc 2.28 > Amazon Linux 2's
        ("cp311-cp311-manylinux_2_26_x86_64", 11, X86, True),
        ("cp313-cp313-manylinux_2_34_x86_64", 13, X86, True),
        ("cp313-cp313-manylinux_2_35_x86_64", 13, X86, False),
        ("cp312-cp312-manylinux1_x86_64", 12, X86, True),
        ("cp312-cp312-musllinux_1_2_x86_64", 12, X86, False),
        ("cp312-cp312-macosx_11_0_arm64", 12, ARM, False),
        ("cp312-cp312-win_amd64", 12, X86, False),
        ("cp312-cp312-linux_x86_64", 12, X86, True),  # a local build: its files are judged
    ],
)
def test_a_wheel_fits_when_one_of_its_tags_does(
    tag: str, minor: int, target: Target, fits: bool
) -> None:
    assert wheel_fits([tag], minor, target) is fits


def test_the_runtimes_glibc_bounds_its_manylinux_tags() -> None:
    platforms = {t.platform for t in supported(11, "x86_64")}
    assert "manylinux_2_26_x86_64" in platforms and "manylinux_2_27_x86_64" not in platforms
    platforms = {t.platform for t in supported(12, "arm64")}
    assert "manylinux_2_34_aarch64" in platforms and "manylinux2014_aarch64" in platforms
    assert not any("x86_64" in p for p in platforms)


@pytest.mark.parametrize(
    ("name", "minor", "target", "problem"),
    [
        ("m.cpython-312-x86_64-linux-gnu.so", 12, X86, None),
        ("m.abi3.so", 12, X86, None),
        ("libfoo.so.1", 12, X86, None),
        ("m.cpython-311-x86_64-linux-gnu.so", 12, X86, "built for CPython 3.11"),
        ("m.cpython-312-aarch64-linux-gnu.so", 12, X86, "built for aarch64"),
        ("m.cpython-312-x86_64-linux-musl.so", 12, X86, "built for musl"),
    ],
)
def test_an_extension_modules_name_says_which_python_loads_it(
    name: str, minor: int, target: Target, problem: str | None
) -> None:
    found = suffix_problem(name, minor, target)
    assert (found is None) if problem is None else (problem in (found or ""))


def _shared_object(newer_than: int, at_most: int) -> Path:
    """A real extension module of this machine's Python whose newest GLIBC_2.x is in the
    range: the check reads what the linker wrote, so the test uses what a linker wrote."""
    base = {"base": sys.base_prefix, "platbase": sys.base_prefix}
    folder = Path(sysconfig.get_path("platstdlib", vars=base)) / "lib-dynload"
    for path in sorted(folder.glob("*.so")):
        found = read_shared_object(str(path))
        if found is not None and newer_than < (found.glibc or 0) <= at_most:
            return path
    raise AssertionError(f"no extension module in {folder} needs GLIBC_2.{newer_than + 1}+")


def _function_with(tmp_path: Path, so: Path | bytes, so_name: str, minor: int) -> Path:
    src = tmp_path / "fn"
    write(src / "handler.py", "import native\n")
    write(src / "requirements.txt", "native\n")
    data = so.read_bytes() if isinstance(so, Path) else so
    dist(
        venv(src / ".venv", minor),
        "native",
        files={"native/__init__.py": "", f"native/{so_name}": data},
        tags=[f"cp3{minor}-cp3{minor}-linux_x86_64"],
    )
    return src


def test_a_shared_object_that_needs_a_newer_glibc_is_refused_with_the_fix(
    tmp_path: Path, run_cli: Any
) -> None:
    needs_2_27_to_2_34 = _shared_object(26, 34)
    src = _function_with(tmp_path, needs_2_27_to_2_34, "_x.cpython-311-x86_64-linux-gnu.so", 11)
    run = external(run_cli, {"source_dir": str(src)})
    assert_one_line_error(
        run,
        "package native 1.0 ships native/_x.cpython-311-x86_64-linux-gnu.so, in need of GLIBC_2.",
        "which python3.11 (x86_64, glibc 2.26) cannot load",
        "pip install --platform manylinux2014_x86_64 --platform manylinux_2_18_x86_64 ",
        "--platform manylinux_2_25_x86_64 --platform manylinux_2_26_x86_64 --only-binary=:all: "
        f"--implementation cp --python-version 3.11 --target {src / 'package'} -r "
        f'requirements.txt` in {src}, and set site_packages = "{src / "package"}"',
    )
    fine = _function_with(
        tmp_path / "b", needs_2_27_to_2_34, "_x.cpython-312-x86_64-linux-gnu.so", 12
    )
    assert "native/_x.cpython-312-x86_64-linux-gnu.so" in manifest(
        build_ok(run_cli, fine)["output_path"]
    )


def test_an_extension_module_for_another_cpython_or_machine_is_refused(
    tmp_path: Path, run_cli: Any
) -> None:
    src = _function_with(tmp_path, elf(62), "_x.cpython-311-x86_64-linux-gnu.so", 12)
    assert_one_line_error(
        external(run_cli, {"source_dir": str(src)}),
        "an extension module built for CPython 3.11, which python3.12 skips on import",
    )
    arm = _function_with(tmp_path / "arm", elf(183), "_x.cpython-312-x86_64-linux-gnu.so", 12)
    assert_one_line_error(
        external(run_cli, {"source_dir": str(arm)}),
        "package native 1.0 ships native/_x.cpython-312-x86_64-linux-gnu.so, a Linux arm64 "
        "binary, which Linux x86_64 (glibc) cannot load: run `pip install --platform",
    )


def test_a_wheel_for_another_platform_is_refused_naming_it_and_the_uv_fix(
    tmp_path: Path, run_cli: Any
) -> None:
    src = tmp_path / "fn"
    write(src / "handler.py", "")
    write(
        src / "pyproject.toml", '[project]\nname = "fn"\nversion = "1"\ndependencies = ["fast"]\n'
    )
    write(src / "uv.lock", "version = 1\n")
    dist(venv(src / ".venv", 12, uv=True), "fast", "2.0", tags=["cp312-cp312-macosx_11_0_arm64"])
    assert_one_line_error(
        external(run_cli, {"source_dir": str(src)}),
        "package fast 2.0 is a wheel for macOS, CPython 3.12, which python3.12 (x86_64, glibc "
        "2.34) cannot load",
        "uv export --frozen --no-dev --no-emit-project -o requirements.txt",
        "uv pip install --python-platform x86_64-manylinux_2_34 --python-version 3.12 "
        f"--target {src / 'package'} -r requirements.txt",
    )


def test_pure_python_is_never_refused(tmp_path: Path, run_cli: Any) -> None:
    src = tmp_path / "fn"
    write(src / "handler.py", "")
    write(src / "requirements.txt", "pure\n")
    dist(venv(src / ".venv", 10), "pure", tags=["py2.py3-none-any"])
    for arch in ("x86_64", "arm64"):
        assert build_ok(run_cli, src, architecture=arch, python_version="3.13")


def test_copies_of_this_machines_shared_objects_are_read_as_elf(tmp_path: Path) -> None:
    path = _shared_object(0, 99)
    copy = shutil.copy(path, tmp_path / "copy.so")
    found = read_shared_object(str(copy))
    assert found is not None and not found.musl and found.glibc
    assert read_shared_object(str(write(tmp_path / "text.so", "not an ELF"))) is None


def test_a_shared_object_that_needs_a_newer_libstdcxx_is_refused(
    tmp_path: Path, run_cli: Any
) -> None:
    """Amazon Linux 2's libstdc++ (GCC 7) has GLIBCXX_3.4.24 at most: a C++ extension built
    on a newer system fails to load under python3.10 and 3.11."""
    found = None
    for path in sorted(Path("/usr/lib/x86_64-linux-gnu").glob("*.so*")):
        shared = None if path.is_symlink() else read_shared_object(str(path))
        if shared is not None and (shared.glibcxx or 0) > 24 and (shared.glibc or 0) <= 26:
            found = path
            break
    assert found is not None, "no C++ library of this machine needs GLIBCXX_3.4.25+"
    src = _function_with(tmp_path, found, "_cxx.cpython-311-x86_64-linux-gnu.so", 11)
    assert_one_line_error(
        external(run_cli, {"source_dir": str(src)}),
        "ships native/_cxx.cpython-311-x86_64-linux-gnu.so, in need of GLIBCXX_3.4.",
        "newer than the runtime's libstdc++",
    )


def test_requires_python_that_leaves_the_runtime_out_is_refused(
    tmp_path: Path, run_cli: Any
) -> None:
    src = tmp_path / "fn"
    write(src / "handler.py", "")
    write(src / "requirements.txt", "modern\n")
    dist(venv(src / ".venv", 12), "modern", "3.0", requires_python=">=3.12")
    assert build_ok(run_cli, src)
    assert_one_line_error(
        external(run_cli, {"source_dir": str(src), "python_version": "3.11"}),
        "package modern 3.0 requires Python >=3.12 (its Requires-Python), and the function runs "
        "on python3.11",
    )


def test_a_shared_object_the_excludes_leave_out_is_not_judged(tmp_path: Path, run_cli: Any) -> None:
    src = _function_with(tmp_path, elf(183), "_x.cpython-312-x86_64-linux-gnu.so", 12)
    result = build_ok(run_cli, src, excludes=["*.so"])
    assert not any(f.endswith(".so") for f in manifest(result["output_path"]))
