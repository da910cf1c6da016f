"""Which platform packages ship for the target, decided during the crawl (docs/design.md,
"The target platform")."""

from __future__ import annotations

from typing import Any

import pytest

from lambdazip_tf.core.binaries import Target
from lambdazip_tf.errors import PlatformError
from lambdazip_tf.runtimes.nodejs.gate import Gate, LeftOut
from lambdazip_tf.runtimes.nodejs.lockfiles import Lockfile

X86, ARM = Target("x86_64"), Target("arm64")
NPM = Lockfile("npm", "/repo", {})
SHARP = "/repo/node_modules/sharp/package.json"
FIX = "run `npm install --os=linux --cpu=x64 --libc=glibc` in /repo"


def manifest(name: str, os: str, cpu: str, libc: str | None = None) -> dict[str, Any]:
    """A platform package's package.json."""
    fields: dict[str, Any] = {"name": name, "version": "0.33.5", "os": [os], "cpu": [cpu]}
    if libc is not None:
        fields["libc"] = [libc]
    return fields


DARWIN = manifest("@img/sharp-darwin-arm64", "darwin", "arm64")
LINUX_X64 = manifest("@img/sharp-linux-x64", "linux", "x64", "glibc")
LINUX_ARM = manifest("@img/sharp-linux-arm64", "linux", "arm64", "glibc")
OPTIONAL = ["@img/sharp-darwin-arm64", "@img/sharp-linux-arm64", "@img/sharp-linux-x64"]


def real(name: str) -> str:
    return f"/repo/node_modules/{name}"


def test_a_package_without_platform_fields_ships_on_every_target() -> None:
    gate = Gate(X86, NPM)
    assert gate.admits("lodash", {"name": "lodash", "version": "4"}, real("lodash"), False, SHARP)
    assert gate.admits("any", {"os": [], "cpu": []}, real("any"), True, SHARP)
    assert gate.left_out == []


def test_another_targets_optional_package_is_left_out_with_its_dependents_package_json() -> None:
    gate = Gate(X86, NPM)
    name = "@img/sharp-darwin-arm64"
    assert not gate.admits(name, DARWIN, real(name), True, SHARP)
    assert gate.admits("@img/sharp-linux-x64", LINUX_X64, real("@img/sharp-linux-x64"), True, SHARP)
    assert gate.left_out == [
        LeftOut(
            name, "platform package for darwin arm64, not Linux x86_64 (glibc)", real(name), SHARP
        )
    ]
    installed = {name: DARWIN, "@img/sharp-linux-x64": LINUX_X64}
    gate.check_needs("sharp", SHARP, OPTIONAL, installed, {"@img/sharp-linux-x64"})


def test_a_required_package_for_another_target_is_refused_with_the_install_command() -> None:
    gate = Gate(X86, NPM)
    declared_in = "/repo/node_modules/tool/package.json"
    name = "@esbuild/darwin-arm64"
    darwin = {"name": name, "version": "0.21.5", "os": ["darwin"], "cpu": ["arm64"]}
    assert not gate.admits(name, darwin, real(name), False, declared_in)
    assert [left.name for left in gate.left_out] == [name]
    gate.check_needs("tool", declared_in, [], {name: darwin}, set())
    with pytest.raises(PlatformError) as error:
        gate.finish()  # once the crawl is done: no package for the target of esbuild ships
    assert error.value.package == "tool"
    assert str(error.value) == (
        f"package {name}@0.21.5, required by {declared_in}, is built for darwin arm64, but the "
        f"function runs on Linux x86_64 (glibc): {FIX}"
    )


def test_a_required_package_for_another_target_is_fine_beside_one_that_fits() -> None:
    gate = Gate(ARM, NPM)
    for name, fields in (
        ("@img/sharp-linux-x64", LINUX_X64),
        ("@img/sharp-linux-arm64", LINUX_ARM),
    ):
        gate.admits(name, fields, real(name), False, SHARP)
    assert [left.name for left in gate.left_out] == ["@img/sharp-linux-x64"]
    installed = {"@img/sharp-linux-x64": LINUX_X64, "@img/sharp-linux-arm64": LINUX_ARM}
    gate.check_needs("sharp", SHARP, [], installed, {"@img/sharp-linux-arm64"})


def test_a_missing_optional_package_for_the_target_is_refused_naming_it() -> None:
    gate = Gate(X86, NPM)  # sharp installed on a Mac
    name = "@img/sharp-darwin-arm64"
    gate.admits(name, DARWIN, real(name), True, SHARP)
    with pytest.raises(PlatformError) as error:
        gate.check_needs("sharp", SHARP, OPTIONAL, {name: DARWIN}, set())
    assert str(error.value) == (
        "package sharp needs @img/sharp-linux-x64 to run on Linux x86_64 (glibc), and it is not "
        f"installed (installed: @img/sharp-darwin-arm64): {FIX}"
    )
    assert error.value.package == "@img/sharp-linux-x64"


def test_the_fitting_optional_package_is_read_from_the_lockfile_before_its_name() -> None:
    # Names that say nothing of the platform: only the lockfile knows which one fits.
    lockfile = Lockfile(
        "pnpm",
        "/repo",
        {
            "binding-a": {"os": ["linux"], "cpu": ["arm64"]},
            "binding-b": {"os": ["linux"], "cpu": ["x64"]},
            "@x/tool-linux-arm64": {"os": ["darwin"], "cpu": ["arm64"]},  # the lockfile wins
        },
    )
    gate = Gate(ARM, lockfile)
    optional = ["binding-a", "binding-b", "@x/tool-linux-arm64"]
    with pytest.raises(PlatformError, match="needs binding-a to run on Linux arm64") as error:
        gate.check_needs("tool", SHARP, optional, {}, set())
    assert "set pnpm's supportedArchitectures to {os: [linux], cpu: [arm64]" in str(error.value)
    gate.check_needs("tool", SHARP, ["binding-b", "@x/tool-linux-arm64"], {}, set())


def test_without_lockfile_platforms_the_fitting_optional_package_is_told_by_its_name() -> None:
    gate = Gate(ARM, Lockfile("yarn", "/repo", {}))  # Yarn 1 records no platforms
    optional = ["@esbuild/darwin-arm64", "@esbuild/linux-arm64", "@esbuild/linux-x64"]
    with pytest.raises(PlatformError, match="needs @esbuild/linux-arm64 to run") as error:
        gate.check_needs("esbuild", SHARP, optional, {}, set())
    assert "Yarn 1 installs only the platform it runs on" in str(error.value)
    gate.check_needs("chokidar", SHARP, ["fsevents"], {}, set())  # no platform in its name


def test_a_fitting_package_left_out_by_exclude_packages_does_not_refuse() -> None:
    gate = Gate(X86, NPM)
    name = "@img/sharp-darwin-arm64"
    gate.admits(name, DARWIN, real(name), True, SHARP)
    # The crawl counts a name exclude_packages left out as satisfied: left out on purpose.
    gate.check_needs("sharp", SHARP, OPTIONAL, {name: DARWIN}, {"@img/sharp-linux-x64"})


def test_a_refusal_is_judged_per_dependent_package_json() -> None:
    gate = Gate(X86, NPM)
    name = "@esbuild/darwin-arm64"
    darwin = {"version": "0.21.5", "os": ["darwin"], "cpu": ["arm64"]}
    gate.admits(name, darwin, real(name), False, "/repo/node_modules/a/package.json")
    gate.admits("fits", LINUX_X64, real("fits"), False, "/repo/node_modules/b/package.json")
    gate.check_needs("b", "/repo/node_modules/b/package.json", [], {}, {"fits"})
    gate.check_needs("a", "/repo/node_modules/a/package.json", [], {name: darwin}, set())
    with pytest.raises(PlatformError) as error:
        gate.finish()
    assert "required by /repo/node_modules/a/package.json" in str(error.value)


def test_a_required_package_for_another_target_is_left_out_when_its_targets_one_ships() -> None:
    """sharp's recipe for several platforms (npm install --force @img/sharp-...) makes them
    direct dependencies: those for other targets are left out when the target's ships,
    wherever it is declared."""
    gate = Gate(X86, NPM)
    root = "/repo/package.json"
    for name, fields in (
        ("@img/sharp-darwin-arm64", DARWIN),
        ("@img/sharp-linux-arm64", LINUX_ARM),
    ):
        assert not gate.admits(name, fields, real(name), False, root)
    gate.check_needs("fn", root, [], {}, set())
    assert gate.admits("@img/sharp-linux-x64", LINUX_X64, real("x64"), True, SHARP)
    gate.finish()
    assert [left.name for left in gate.left_out] == [
        "@img/sharp-darwin-arm64",
        "@img/sharp-linux-arm64",
    ]
