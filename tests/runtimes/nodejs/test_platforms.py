"""The target platform: platform packages and native files Lambda can load.

docs/design.md, "The target platform". Synthetic trees, with ELF, Mach-O and PE headers made
here; the real installs are in tests/system/test_platforms.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    MACH_O,
    PE,
    assert_one_line_error,
    build_ok,
    elf,
    external,
    manifest,
    node_function,
    pkg,
    write,
)

from lambdazip_tf.core.binaries import Target, binary
from lambdazip_tf.core.filesystem import ObservedFileSystem
from lambdazip_tf.runtimes.nodejs.lockfiles import lockfile_of
from lambdazip_tf.runtimes.nodejs.platforms import fits, named_fields, platform_fields

X86, ARM = Target("x86_64"), Target("arm64")


@pytest.mark.parametrize(
    ("fields", "x86", "arm"),
    [
        ({}, True, True),
        ({"os": ["linux"], "cpu": ["x64"]}, True, False),
        ({"os": ["linux"], "cpu": ["arm64"], "libc": ["glibc"]}, False, True),
        ({"os": ["linux"], "cpu": ["x64"], "libc": ["musl"]}, False, False),
        ({"os": ["darwin"], "cpu": ["arm64"]}, False, False),
        ({"os": ["!win32"]}, True, True),
        ({"os": ["!linux"]}, False, False),
        ({"cpu": ["x64", "arm64"]}, True, True),
    ],
)
def test_npms_os_cpu_and_libc_fields(fields: dict[str, list[str]], x86: bool, arm: bool) -> None:
    assert (fits(fields, X86), fits(fields, ARM)) == (x86, arm)


def test_a_files_first_bytes_say_what_it_was_built_for() -> None:
    assert binary(elf(62), X86) == ("elf", "Linux x86_64", True)
    assert binary(elf(183), X86) == ("elf", "Linux arm64", False)
    assert binary(elf(183), ARM) is not None and binary(elf(183), ARM).loadable  # type: ignore[union-attr]
    assert binary(MACH_O, X86) == ("mach-o", "macOS", False)
    assert binary(b"\xca\xfe\xba\xbe" + b"\0" * 60, ARM) == ("mach-o", "macOS", False)
    assert binary(PE, X86) == ("pe", "Windows", False)
    assert binary(b"a data file that happens to be named .so", X86) is None


def test_names_say_the_platform_where_the_lockfile_does_not() -> None:
    assert named_fields("@esbuild/linux-arm64") == {"os": ["linux"], "cpu": ["arm64"]}
    assert named_fields("@img/sharp-linuxmusl-x64") == {
        "os": ["linux"],
        "cpu": ["x64"],
        "libc": ["musl"],
    }
    assert named_fields("@swc/core-linux-x64-gnu")["libc"] == ["glibc"]
    assert named_fields("lodash") == {}


def _sharp_like(src: Path, installed: list[str], **root: Any) -> None:
    """A package `imgs` with platform packages as optional dependencies, as sharp has."""
    platforms = {
        "@img/x-darwin-arm64": ("darwin", "arm64"),
        "@img/x-linux-x64": ("linux", "x64"),
        "@img/x-linux-arm64": ("linux", "arm64"),
    }
    node_function(src, dependencies={"imgs": "1"}, **root)
    pkg(src / "node_modules" / "imgs", "imgs", optionalDependencies=dict.fromkeys(platforms, "1"))
    for name in installed:
        os_, cpu = platforms[name]
        folder = pkg(src / "node_modules" / name, name, os=[os_], cpu=[cpu], libc=["glibc"])
        write(folder / "lib" / "x.node", "")
        (folder / "lib" / "x.node").write_bytes(
            MACH_O if os_ == "darwin" else elf(62 if cpu == "x64" else 183)
        )
    lock = {
        "lockfileVersion": 3,
        "packages": {
            f"node_modules/{name}": {"version": "1.0.0", "optional": True, "os": [o], "cpu": [c]}
            for name, (o, c) in platforms.items()
        },
    }
    write(src / "package-lock.json", json.dumps(lock))


def test_other_targets_platform_packages_are_left_out_beside_the_fitting_one(
    tmp_path: Path, run_cli: Any
) -> None:
    src = tmp_path / "fn"
    _sharp_like(src, ["@img/x-darwin-arm64", "@img/x-linux-x64", "@img/x-linux-arm64"])
    x86 = set(manifest(build_ok(run_cli, src)["output_path"]))
    assert "node_modules/@img/x-linux-x64/lib/x.node" in x86
    assert not [n for n in x86 if "darwin" in n or "linux-arm64" in n]
    arm = set(manifest(build_ok(run_cli, src, architecture="arm64")["output_path"]))
    assert "node_modules/@img/x-linux-arm64/lib/x.node" in arm
    assert not [n for n in arm if "darwin" in n or "linux-x64" in n]
    plan = json.loads(
        run_cli(
            ["plan", "--json", "--source-dir", str(src), "--output-dir", str(tmp_path / "o")]
        ).stdout
    )
    reasons = {x["path"]: x["reason"] for x in plan["excluded"]}
    assert reasons["node_modules/@img/x-darwin-arm64"] == (
        "platform package for darwin arm64 glibc, not Linux x86_64 (glibc)"
    )


def test_a_missing_platform_package_is_named_with_the_command_that_installs_it(
    tmp_path: Path, run_cli: Any
) -> None:
    """As `npm install` on a Mac leaves it: only darwin's package installed."""
    src = tmp_path / "fn"
    _sharp_like(src, ["@img/x-darwin-arm64"])
    request = {"source_dir": str(src), "output_dir": str(tmp_path / "out")}
    assert_one_line_error(
        external(run_cli, request),
        "package imgs needs @img/x-linux-x64 to run on Linux x86_64 (glibc), and it is not "
        "installed (installed: @img/x-darwin-arm64)",
        f"run `npm install --os=linux --cpu=x64 --libc=glibc` in {src}",
    )
    arm = external(run_cli, {**request, "architecture": "arm64"})
    assert_one_line_error(arm, "needs @img/x-linux-arm64", "--cpu=arm64")


def test_a_required_package_for_another_platform_is_refused(tmp_path: Path, run_cli: Any) -> None:
    src = node_function(tmp_path / "fn", dependencies={"@esbuild/darwin-arm64": "1"})
    pkg(
        src / "node_modules" / "@esbuild" / "darwin-arm64",
        "@esbuild/darwin-arm64",
        os=["darwin"],
        cpu=["arm64"],
    )
    assert_one_line_error(
        external(run_cli, {"source_dir": str(src), "output_dir": str(tmp_path / "o")}),
        "package @esbuild/darwin-arm64@1.0.0",
        "is built for darwin arm64, but the function runs on Linux x86_64 (glibc)",
        "npm install --os=linux --cpu=x64 --libc=glibc",
    )


@pytest.mark.parametrize(
    ("head", "words"),
    [(elf(183), "a Linux arm64 binary"), (MACH_O, "a macOS binary"), (PE, "a Windows binary")],
)
def test_a_native_file_the_target_cannot_load_is_refused(
    tmp_path: Path, run_cli: Any, head: bytes, words: str
) -> None:
    src = node_function(tmp_path / "fn", dependencies={"addon": "1"})
    folder = pkg(src / "node_modules" / "addon", "addon", version="2.1.0")
    (folder / "build" / "Release").mkdir(parents=True)
    (folder / "build" / "Release" / "addon.node").write_bytes(head)
    run = external(run_cli, {"source_dir": str(src), "output_dir": str(tmp_path / "o")})
    assert_one_line_error(
        run,
        f"package addon@2.1.0 ships node_modules/addon/build/Release/addon.node, {words}",
        "which Linux x86_64 (glibc) cannot load",
        "install it on Linux x86_64 (glibc) (in a Linux container)",
    )


def test_data_files_named_like_libraries_and_fitting_binaries_ship(
    tmp_path: Path, run_cli: Any
) -> None:
    src = node_function(tmp_path / "fn", dependencies={"lib": "1"})
    folder = pkg(src / "node_modules" / "lib", "lib")
    write(folder / "dict.so", "not a binary at all")
    (folder / "native.so.1").write_bytes(elf(62))
    names = manifest(build_ok(run_cli, src)["output_path"])
    assert {"node_modules/lib/dict.so", "node_modules/lib/native.so.1"} <= set(names)
    run = external(
        run_cli,
        {"source_dir": str(src), "output_dir": str(tmp_path / "a"), "architecture": "arm64"},
    )
    assert_one_line_error(run, "native.so.1, a Linux x86_64 binary", "Linux arm64 (glibc)")


def test_plan_shows_the_target_and_what_each_native_file_was_built_for(
    tmp_path: Path, run_cli: Any
) -> None:
    src = node_function(tmp_path / "fn", dependencies={"lib": "1", "plat": "1"})
    folder = pkg(src / "node_modules" / "lib", "lib")
    write(folder / "dict.so", "not a binary at all")
    (folder / "native.node").write_bytes(elf(183))
    pkg(src / "node_modules" / "plat", "plat", os=["linux"], cpu=["arm64"])
    request = ["--source-dir", str(src), "--architecture", "arm64"]
    plan = json.loads(run_cli(["plan", "--json", *request]).stdout)
    assert plan["target"] == "Linux arm64 (glibc)" and plan["architecture"] == "arm64"
    assert plan["native"] == [
        {"kind": "package", "name": "plat@1.0.0", "built_for": "linux arm64"},
        {"kind": "file", "name": "node_modules/lib/native.node", "built_for": "Linux arm64"},
    ]  # dict.so is data: not listed
    text = run_cli(["plan", *request]).stdout
    assert "target:       Linux arm64 (glibc)\n" in text
    assert "  Linux arm64  file     node_modules/lib/native.node\n" in text
    pure = node_function(tmp_path / "pure")  # nothing native: no section, for either target
    for architecture in ("x86_64", "arm64"):
        args = ["--source-dir", str(pure), "--architecture", architecture]
        assert "native code" not in run_cli(["plan", *args]).stdout
        assert json.loads(run_cli(["plan", "--json", *args]).stdout)["native"] == []


def test_prebuilt_binaries_for_other_platforms_are_left_out_beside_the_targets(
    tmp_path: Path, run_cli: Any
) -> None:
    src = node_function(tmp_path / "fn", dependencies={"pre": "1"})
    folder = pkg(src / "node_modules" / "pre", "pre")
    for tag, head in (
        ("darwin-x64+arm64", MACH_O),
        ("linux-x64", elf(62)),
        ("linux-arm64", elf(183)),
        ("win32-x64", PE),
    ):
        (folder / "prebuilds" / tag).mkdir(parents=True)
        (folder / "prebuilds" / tag / "pre.node").write_bytes(head)
    x86 = [n for n in manifest(build_ok(run_cli, src)["output_path"]) if "prebuilds" in n]
    assert x86 == [
        "node_modules/pre/prebuilds/",
        "node_modules/pre/prebuilds/linux-x64/",
        "node_modules/pre/prebuilds/linux-x64/pre.node",
    ]
    arm = manifest(build_ok(run_cli, src, architecture="arm64")["output_path"])
    assert "node_modules/pre/prebuilds/linux-arm64/pre.node" in arm
    assert not [n for n in arm if "linux-x64" in n or "darwin" in n]


def test_the_architecture_is_part_of_the_content_hash_and_the_default_adds_nothing(
    tree: Path, run_cli: Any
) -> None:
    default = build_ok(run_cli, tree)
    x86 = build_ok(run_cli, tree, architecture="x86_64")
    arm = build_ok(run_cli, tree, architecture="arm64")
    assert default["content_hash"] == x86["content_hash"] != arm["content_hash"]
    assert Path(x86["output_path"]).read_bytes() == Path(arm["output_path"]).read_bytes()
    assert arm["build_options"].endswith("for arm64")
    bad = external(run_cli, {"source_dir": str(tree), "architecture": "amd64"})
    assert_one_line_error(bad, "'architecture': must be x86_64 or arm64")


@pytest.mark.parametrize(
    ("lockfile", "text", "command"),
    [
        ("package-lock.json", "{}", "npm install --os=linux --cpu=x64 --libc=glibc"),
        ("pnpm-lock.yaml", "lockfileVersion: '9.0'\n", "pnpm's supportedArchitectures"),
        ("yarn.lock", "__metadata:\n  version: 8\n", "supportedArchitectures to {os: [linux]"),
        ("yarn.lock", "# yarn lockfile v1\n", "Yarn 1 installs only the platform it runs on"),
    ],
)
def test_the_fix_is_the_package_managers(
    tmp_path: Path, run_cli: Any, lockfile: str, text: str, command: str
) -> None:
    src = tmp_path / "fn"
    _sharp_like(src, ["@img/x-darwin-arm64"])
    (src / "package-lock.json").unlink()
    write(src / lockfile, text)
    run = external(run_cli, {"source_dir": str(src), "output_dir": str(tmp_path / "o")})
    assert_one_line_error(run, "needs @img/x-linux-x64", command)


def test_lockfiles_record_platforms(tmp_path: Path) -> None:
    write(
        tmp_path / "pnpm" / "pnpm-lock.yaml",
        "lockfileVersion: '9.0'\n\npackages:\n\n  '@img/sharp-linux-x64@0.33.5':\n"
        "    resolution: {integrity: sha512-x}\n    cpu: [x64]\n    os: [linux]\n"
        "    libc: [glibc]\n\n  sharp@0.33.5:\n    resolution: {integrity: sha512-y}\n",
    )
    assert lockfile_of(ObservedFileSystem(), str(tmp_path / "pnpm")).platforms == {
        "@img/sharp-linux-x64": {"cpu": ["x64"], "os": ["linux"], "libc": ["glibc"]}
    }
    write(
        tmp_path / "berry" / "yarn.lock",
        '__metadata:\n  version: 8\n\n"@esbuild/darwin-arm64@npm:0.24.0":\n  version: 0.24.0\n'
        "  conditions: os=darwin & cpu=arm64\n  languageName: node\n",
    )
    berry = lockfile_of(ObservedFileSystem(), str(tmp_path / "berry"))
    assert berry.manager == "yarn-berry"
    assert berry.platforms == {"@esbuild/darwin-arm64": {"os": ["darwin"], "cpu": ["arm64"]}}
    assert platform_fields({"os": ["linux"], "cpu": "x64"}) == {"os": ["linux"]}


def test_platform_packages_listed_as_dependencies_for_several_targets_ship_the_targets(
    tmp_path: Path, run_cli: Any
) -> None:
    src = node_function(
        tmp_path / "fn", dependencies={"@esbuild/linux-x64": "1", "@esbuild/linux-arm64": "1"}
    )
    for cpu in ("x64", "arm64"):
        pkg(
            src / "node_modules" / "@esbuild" / f"linux-{cpu}",
            f"@esbuild/linux-{cpu}",
            os=["linux"],
            cpu=[cpu],
        )
    arm = manifest(build_ok(run_cli, src, architecture="arm64")["output_path"])
    assert "node_modules/@esbuild/linux-arm64/package.json" in arm
    assert "node_modules/@esbuild/linux-x64/package.json" not in arm
    x86 = manifest(build_ok(run_cli, src)["output_path"])
    assert "node_modules/@esbuild/linux-x64/package.json" in x86
    assert "node_modules/@esbuild/linux-arm64/package.json" not in x86


def test_other_platforms_packages_named_as_direct_dependencies_are_left_out(
    tmp_path: Path, run_cli: Any
) -> None:
    """sharp's recipe for several platforms, `npm install --force @img/sharp-...`, names them
    in package.json's dependencies: each build leaves out the others' and ships its own;
    only a target whose package is missing is refused."""
    src = tmp_path / "fn"
    everything = ["@img/x-darwin-arm64", "@img/x-linux-x64", "@img/x-linux-arm64"]
    _sharp_like(src, everything)
    manifest_ = json.loads((src / "package.json").read_text())
    manifest_["dependencies"].update({"@img/x-darwin-arm64": "1", "@img/x-linux-arm64": "1"})
    write(src / "package.json", json.dumps(manifest_))
    shipped: dict[str, set[str]] = {}
    for architecture in ("x86_64", "arm64"):
        request = {"source_dir": str(src), "architecture": architecture}
        names = manifest(build_ok(run_cli, src, architecture=architecture)["output_path"])
        shipped[architecture] = {
            n.split("/")[2] for n in names if n.startswith("node_modules/@img/x-")
        }
        report = run_cli(
            ["plan", "--json", "--source-dir", str(src), "--architecture", architecture]
        )
        left = {x["path"] for x in json.loads(report.stdout)["excluded"]}
        assert {f"node_modules/{n}" for n in everything} - left == {
            f"node_modules/@img/{shipped[architecture].pop()}"
        }, request
    shutil.rmtree(src / "node_modules" / "@img" / "x-linux-x64")
    assert_one_line_error(
        external(run_cli, {"source_dir": str(src), "output_dir": str(tmp_path / "o")}),
        "package imgs needs @img/x-linux-x64 to run on Linux x86_64 (glibc)",
    )
