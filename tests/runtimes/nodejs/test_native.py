"""Node.js's native code after the crawl: node-gyp-build's prebuilds, the fix for an addon the
target cannot load, and the platform packages `plan` lists (docs/design.md, "The target
platform")."""

from __future__ import annotations

from helpers import MACH_O, elf

from lambdazip_tf.core.binaries import Binary, Target, binary
from lambdazip_tf.core.entries import DIR_MODE, FILE_MODE, Entry, Excluded, PackageInfo
from lambdazip_tf.core.native import platform_packages
from lambdazip_tf.core.runtime import Alternatives, Native
from lambdazip_tf.errors import PlatformError
from lambdazip_tf.runtimes.nodejs.lockfiles import Lockfile
from lambdazip_tf.runtimes.nodejs.native import other_prebuilds, refusal

X86, ARM = Target("x86_64"), Target("arm64")
NPM = Lockfile("npm", "/repo", {})
LEVEL = "node_modules/classic-level/prebuilds"


def entries(*arcs: str) -> list[Entry]:
    """Entries for archive paths: a trailing slash makes a folder, anything else a file."""
    return [
        Entry(arc.rstrip("/"), "dir", DIR_MODE)
        if arc.endswith("/")
        else Entry(arc, "file", FILE_MODE, f"/src/{arc}")
        for arc in arcs
    ]


PREBUILDS = entries(
    f"{LEVEL}/",
    f"{LEVEL}/darwin-x64+arm64/",
    f"{LEVEL}/darwin-x64+arm64/classic-level.node",
    f"{LEVEL}/linux-arm64/",
    f"{LEVEL}/linux-arm64/classic-level.armv8.node",
    f"{LEVEL}/linux-x64/",
    f"{LEVEL}/linux-x64/classic-level.glibc.node",
    f"{LEVEL}/win32-x64/",
    f"{LEVEL}/win32-x64/classic-level.node",
    "node_modules/classic-level/index.js",
)


def test_other_platforms_prebuilds_are_left_out_beside_the_targets_files_and_folders() -> None:
    left = other_prebuilds(PREBUILDS, X86)
    assert left == [
        Excluded(
            f"{LEVEL}/darwin-x64+arm64", "prebuilt for darwin-x64+arm64, not Linux x86_64 (glibc)"
        ),
        Excluded(
            f"{LEVEL}/darwin-x64+arm64/classic-level.node",
            "prebuilt for darwin-x64+arm64, not Linux x86_64 (glibc)",
            f"/src/{LEVEL}/darwin-x64+arm64/classic-level.node",
        ),
        Excluded(f"{LEVEL}/linux-arm64", "prebuilt for linux-arm64, not Linux x86_64 (glibc)"),
        Excluded(
            f"{LEVEL}/linux-arm64/classic-level.armv8.node",
            "prebuilt for linux-arm64, not Linux x86_64 (glibc)",
            f"/src/{LEVEL}/linux-arm64/classic-level.armv8.node",
        ),
        Excluded(f"{LEVEL}/win32-x64", "prebuilt for win32-x64, not Linux x86_64 (glibc)"),
        Excluded(
            f"{LEVEL}/win32-x64/classic-level.node",
            "prebuilt for win32-x64, not Linux x86_64 (glibc)",
            f"/src/{LEVEL}/win32-x64/classic-level.node",
        ),
    ]


def test_the_target_decides_which_prebuilds_folder_stays() -> None:
    kept = {e.arc for e in PREBUILDS} - {x.arc for x in other_prebuilds(PREBUILDS, ARM)}
    assert kept == {
        LEVEL,
        f"{LEVEL}/linux-arm64",
        f"{LEVEL}/linux-arm64/classic-level.armv8.node",
        "node_modules/classic-level/index.js",
    }


def test_a_multi_architecture_tag_fits_each_of_its_architectures() -> None:
    tree = entries(
        "node_modules/a/prebuilds/linux-arm64+x64/a.node",
        "node_modules/a/prebuilds/darwin-x64/a.node",
    )
    for target in (X86, ARM):
        assert [x.arc for x in other_prebuilds(tree, target)] == [
            "node_modules/a/prebuilds/darwin-x64/a.node"
        ]


def test_with_no_prebuilds_for_the_target_nothing_is_left_out_so_the_check_refuses() -> None:
    tree = entries(
        "node_modules/mac-only/prebuilds/darwin-arm64/m.node",
        "node_modules/mac-only/prebuilds/linuxmusl-x64/m.node",  # musl is not Lambda's libc
        "node_modules/mac-only/prebuilds/win32-x64/m.node",
    )
    assert other_prebuilds(tree, X86) == []
    # Each package's prebuilds folder is judged on its own.
    fitting = entries(
        "node_modules/ok/prebuilds/linux-x64/o.node", "node_modules/ok/prebuilds/darwin-x64/o.node"
    )
    assert [x.arc for x in other_prebuilds(tree + fitting, X86)] == [
        "node_modules/ok/prebuilds/darwin-x64/o.node"
    ]
    assert other_prebuilds(entries("lib/prebuilds.js", "node_modules/p/index.js"), X86) == []


SHARP = PackageInfo(
    "@img/sharp-darwin-arm64", "0.33.5", "node_modules/@img/sharp-darwin-arm64", 2, 9
)
BCRYPT = PackageInfo("bcrypt", "5.1.1", "node_modules/bcrypt", 4, 90)
NESTED = PackageInfo("inner", "2.0.0", "node_modules/bcrypt/node_modules/inner", 1, 5)
PACKAGES = [SHARP, BCRYPT, NESTED]
MAC = binary(MACH_O, X86)
ARM_ELF = binary(elf(183), X86)


def refused(
    arc: str, found: Binary | None, alternatives: Alternatives | None = None
) -> PlatformError:
    assert found is not None
    error = refusal(PACKAGES, NPM, X86)(
        Entry(arc, "file", FILE_MODE, f"/src/{arc}"), found, alternatives
    )
    assert isinstance(error, PlatformError)
    return error


def test_a_platform_packages_binary_is_refused_naming_the_package_and_the_install() -> None:
    arc = "node_modules/@img/sharp-darwin-arm64/lib/sharp-darwin-arm64.node"
    error = refused(arc, MAC)
    assert str(error) == (
        f"package @img/sharp-darwin-arm64@0.33.5 ships {arc}, a macOS binary, which Linux "
        "x86_64 (glibc) cannot load: run `npm install --os=linux --cpu=x64 --libc=glibc` in /repo"
    )
    assert error.package == "@img/sharp-darwin-arm64"
    # The nearest package that holds the file owns it, and a name's prefix owns nothing.
    assert refused("node_modules/bcrypt/node_modules/inner/x.node", ARM_ELF).package == "inner"
    assert refused("node_modules/bcrypt-extra/x.node", ARM_ELF).package is None


def test_an_addon_compiled_at_install_is_fixed_by_installing_on_the_target() -> None:
    arc = "node_modules/bcrypt/build/Release/bcrypt_lib.node"
    error = refused(arc, ARM_ELF)
    assert str(error) == (
        f"package bcrypt@5.1.1 ships {arc}, a Linux arm64 binary, which Linux x86_64 (glibc) "
        "cannot load: install it on Linux x86_64 (glibc) (in a Linux container), where it is "
        "built for Lambda"
    )
    assert error.package == "bcrypt"


def test_a_binary_no_package_owns_is_the_functions_own() -> None:
    error = refused("lib/addon.node", MAC)
    assert str(error) == (
        "the function's own files ships lib/addon.node, a macOS binary, which Linux x86_64 "
        "(glibc) cannot load: build it on Linux x86_64 (glibc), or leave it out with excludes"
    )
    assert error.package is None


def test_alternatives_name_their_own_owner_and_fix() -> None:
    prisma = Alternatives("the generated Prisma client", "Prisma query engine", "regenerate it")
    arc = "node_modules/.prisma/client/libquery_engine-darwin-arm64.dylib.node"
    error = refused(arc, MAC, prisma)
    assert str(error) == (
        f"the generated Prisma client ships {arc}, a macOS binary, which Linux x86_64 (glibc) "
        "cannot load: regenerate it"
    )
    assert error.package is None
    inside = refused("node_modules/bcrypt/engines/e.node", MAC, prisma)
    assert str(inside).startswith("the generated Prisma client ships")
    assert str(inside).endswith(": regenerate it")
    assert inside.package == "bcrypt"


def test_platform_packages_lists_each_package_that_declares_a_platform_by_folder() -> None:
    packages = [
        PackageInfo("zod", "3.23.8", "node_modules/zod", 1, 1),
        PackageInfo(
            "@img/sharp-linux-x64",
            "0.33.5",
            "node_modules/@img/sharp-linux-x64",
            1,
            1,
            platform="linux x64 glibc",
        ),
        PackageInfo(
            "@esbuild/linux-x64",
            "0.21.5",
            "node_modules/@esbuild/linux-x64",
            1,
            1,
            platform="linux x64",
        ),
    ]
    assert platform_packages(packages) == [
        Native("package", "@esbuild/linux-x64@0.21.5", "linux x64"),
        Native("package", "@img/sharp-linux-x64@0.33.5", "linux x64 glibc"),
    ]
