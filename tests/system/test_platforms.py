"""Native code for the target, on real installs: sharp and esbuild installed by npm as other
machines would install them (npm's --os, --cpu and --libc), and by pnpm for several targets.

docs/design.md, "The target platform". Versions are pinned: sharp 0.33.5 (its binaries are
the @img/* platform packages) and esbuild 0.24.0 (@esbuild/*).
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from helpers import PNPM, assert_one_line_error, external, run_ok, unzip, write
from nodejs_oracle import invoke

pytestmark = pytest.mark.slow
DEPENDENCIES = {"sharp": "0.33.5", "esbuild": "0.24.0"}
HANDLER = (
    "const sharp = require('sharp');\n"
    "exports.handler = async () => ({ vips: sharp.versions.vips, arch: process.arch });\n"
)
# As other machines would install: a Mac, an Alpine (musl) box, a cross install for arm64, this
# machine's own platform.
INSTALLS = {
    "mac": ["--os=darwin", "--cpu=arm64"],
    "musl": ["--os=linux", "--cpu=x64", "--libc=musl"],
    "arm64": ["--os=linux", "--cpu=arm64", "--libc=glibc"],
    "linux": ["--os=linux", "--cpu=x64", "--libc=glibc"],
}


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("platforms")
    found = {}
    for name, flags in INSTALLS.items():
        folder = base / name
        write(folder / "package.json", json.dumps({"name": name, "dependencies": DEPENDENCIES}))
        write(folder / "index.js", HANDLER)
        npm = ["npm", "install", *flags, "--ignore-scripts", "--no-audit", "--no-fund"]
        run_ok([*npm, "--loglevel=error"], folder)
        found[name] = folder
    # Several targets at once: pnpm's supportedArchitectures.
    multi = base / "multi"
    pnpm_settings = {
        "supportedArchitectures": {"os": ["linux"], "cpu": ["x64", "arm64"], "libc": ["glibc"]}
    }
    write(
        multi / "package.json",
        json.dumps({"name": "multi", "dependencies": DEPENDENCIES, "pnpm": pnpm_settings}),
    )
    write(multi / "index.js", HANDLER)
    run_ok([str(PNPM), "install", "--ignore-scripts", "--reporter=silent"], multi)
    found["multi"] = multi
    return found


def _build(run_cli: Any, src: Path, out: Path, **extra: str) -> Any:
    return external(run_cli, {"source_dir": str(src), "output_dir": str(out), **extra})


def _natives(zip_path: str) -> dict[str, bytes]:
    """Each shipped .node and .so (by name) and its first 20 bytes."""
    with zipfile.ZipFile(zip_path) as zf:
        return {
            info.filename: zf.read(info)[:20]
            for info in zf.infolist()
            if info.filename.endswith(".node") or ".so" in info.filename.rsplit("/", 1)[-1]
        }


def test_a_macs_install_is_refused_with_the_command_that_fixes_it(
    installed: dict[str, Path], run_cli: Any, tmp_path: Path
) -> None:
    src = installed["mac"]
    run = _build(run_cli, src, tmp_path / "out")
    assert_one_line_error(
        run,
        "linux-x64 to run on Linux x86_64 (glibc), and it is not installed (installed: ",
        "darwin-arm64)",
        f"run `npm install --os=linux --cpu=x64 --libc=glibc` in {src}",
    )


def test_a_musl_install_is_refused(
    installed: dict[str, Path], run_cli: Any, tmp_path: Path
) -> None:
    run = _build(run_cli, installed["musl"], tmp_path / "out")
    assert_one_line_error(run, "linux-x64 to run on Linux x86_64 (glibc)", "linuxmusl-x64")


def test_a_cross_install_for_arm64_ships_arm64_code_and_is_refused_for_x86_64(
    installed: dict[str, Path], run_cli: Any, tmp_path: Path
) -> None:
    src = installed["arm64"]
    built = _build(run_cli, src, tmp_path / "arm", architecture="arm64")
    assert built.code == 0, built.stderr
    natives = _natives(built.json()["output_path"])
    assert "node_modules/@img/sharp-linux-arm64/lib/sharp-linux-arm64.node" in natives
    for head in natives.values():
        assert head[:4] == b"\x7fELF" and int.from_bytes(head[18:20], "little") == 183
    refused = _build(run_cli, src, tmp_path / "x86")
    assert_one_line_error(refused, "linux-x64 to run on Linux x86_64", "linux-arm64", "--cpu=x64")


def test_several_targets_installed_ship_only_the_targets_packages(
    installed: dict[str, Path], run_cli: Any, tmp_path: Path
) -> None:
    src = installed["multi"]
    for architecture, machine, other in (("arm64", 183, "x64"), ("x86_64", 62, "arm64")):
        built = _build(run_cli, src, tmp_path / architecture, architecture=architecture)
        assert built.code == 0, built.stderr
        names = set(zipfile.ZipFile(built.json()["output_path"]).namelist())
        assert not [n for n in names if f"linux-{other}" in n]
        natives = _natives(built.json()["output_path"])
        assert natives
        assert {int.from_bytes(h[18:20], "little") for h in natives.values()} == {machine}
        plan = json.loads(
            run_cli(
                ["plan", "--json", "--source-dir", str(src), "--output-dir", str(tmp_path / "p"),
                 "--architecture", architecture]
            ).stdout
        )  # fmt: skip
        assert any(f"sharp-linux-{other}" in x["path"] for x in plan["excluded"])
        # What each shipped platform package and native file was built for.
        assert plan["target"] == f"Linux {architecture} (glibc)"
        cpu = "x64" if architecture == "x86_64" else "arm64"
        native = {n["name"]: (n["kind"], n["built_for"]) for n in plan["native"]}
        assert native["@img/sharp-linux-" + cpu + "@0.33.5"] == ("package", f"linux {cpu} glibc")
        assert native[f"@esbuild/linux-{cpu}@0.24.0"] == ("package", f"linux {cpu}")
        # pnpm stores it under node_modules/.pnpm/<name>@<version>/node_modules/.
        suffix = f"node_modules/@img/sharp-linux-{cpu}/lib/sharp-linux-{cpu}.node"
        (node,) = [name for name in native if name.endswith(suffix)]
        assert native[node] == ("file", f"Linux {architecture}")
        assert not [name for name in native if other in name]
        text = run_cli(["plan", "--source-dir", str(src), "--architecture", architecture])
        assert f"target:       Linux {architecture} (glibc)" in text.stdout
        assert re.search(rf"\n  Linux {architecture} +file +{re.escape(node)}\n", text.stdout)


def test_the_x86_64_zip_runs_here_as_lambda_would_and_loads_sharp(
    installed: dict[str, Path], run_cli: Any, tmp_path: Path
) -> None:
    built = _build(run_cli, installed["linux"], tmp_path / "out")
    assert built.code == 0, built.stderr
    natives = _natives(built.json()["output_path"])
    assert {int.from_bytes(h[18:20], "little") for h in natives.values()} == {62}
    unpacked = unzip(built.json()["output_path"], tmp_path / "unpacked")
    run = invoke(unpacked, None, "index.handler", {})
    assert run.returncode == 0, run.stderr
    answer = json.loads(run.stdout.strip().splitlines()[-1])
    assert answer["arch"] == "x64" and answer["vips"]


def test_npms_force_install_of_several_platforms_builds_for_each(
    tmp_path: Path, run_cli: Any
) -> None:
    """sharp's documented recipe for several platforms: `npm install --force` of the other
    platforms' packages, which names them in package.json's dependencies. Each build leaves
    out the others' packages (plan lists them) and ships its own; the x86_64 zip loads sharp."""
    src = tmp_path / "fn"
    sharp = {"sharp": DEPENDENCIES["sharp"]}
    write(src / "package.json", json.dumps({"name": "fn", "dependencies": sharp}))
    write(src / "index.js", HANDLER)
    npm = ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"]
    run_ok(npm, src)
    run_ok(
        [
            *npm,
            "--force",
            "@img/sharp-linux-arm64@0.33.5",
            "@img/sharp-libvips-linux-arm64@1.0.4",
            "@img/sharp-darwin-arm64@0.33.5",
        ],
        src,
    )
    declared = json.loads((src / "package.json").read_text())["dependencies"]
    assert "@img/sharp-linux-arm64" in declared and "@img/sharp-darwin-arm64" in declared
    machines = {"x86_64": 62, "arm64": 183}
    for architecture, machine in machines.items():
        request = {
            "source_dir": str(src),
            "output_dir": str(tmp_path / architecture),
            "architecture": architecture,
        }
        run = external(run_cli, request)
        assert run.code == 0, run.stderr
        with zipfile.ZipFile(run.json()["output_path"]) as zf:
            natives = [n for n in zf.namelist() if n.endswith((".node", ".so.42"))]
            assert natives and all(
                int.from_bytes(zf.read(n)[18:20], "little") == machine for n in natives
            ), natives
        plan = json.loads(
            run_cli(
                ["plan", "--json", "--source-dir", str(src), "--architecture", architecture]
            ).stdout
        )
        reasons = {x["path"]: x["reason"] for x in plan["excluded"]}
        assert reasons["node_modules/@img/sharp-darwin-arm64"].startswith(
            "platform package for darwin"
        )
    task = unzip(
        external(run_cli, {"source_dir": str(src), "output_dir": str(tmp_path / "x86_64")}).json()[
            "output_path"
        ],
        tmp_path / "task",
    )
    ran = invoke(task, None, "index.handler", {})
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["arch"] == "x64"
