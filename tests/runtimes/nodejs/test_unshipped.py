"""For `plan`: the dev-only packages installed but not shipped, and where exclude_packages'
packages are installed (docs/design.md, "The program" and "Dependencies")."""

from __future__ import annotations

from pathlib import Path

from helpers import node_function, pkg, write

from lambdazip_tf.core.entries import Excluded
from lambdazip_tf.core.runtime import Unshipped
from lambdazip_tf.runtimes.nodejs.unshipped import dev_only, locate_packages


def sized(folder: Path, name: str, version: str, size: int, **fields: object) -> Path:
    """An installed package with one more file of `size` bytes."""
    pkg(folder, name, version, **fields)
    write(folder / "lib" / "big.js", "x" * size)
    return folder


def own_size(folder: Path) -> tuple[int, int]:
    """(files, bytes) of a package's own files, its node_modules left out."""
    files = [
        p
        for p in folder.rglob("*")
        if p.is_file() and "node_modules" not in p.relative_to(folder).parts
    ]
    return len(files), sum(p.stat().st_size for p in files)


def test_dev_only_lists_packages_reached_from_dev_dependencies_largest_first(
    tmp_path: Path,
) -> None:
    fn = node_function(
        tmp_path.resolve() / "fn",
        dependencies={"zod": "3"},
        devDependencies={"jest": "29", "typescript": "5", "not-installed": "1"},
    )
    modules = fn / "node_modules"
    zod = sized(modules / "zod", "zod", "3.23.8", 50)
    jest_deps = {"jest-cli": "29", "pretty": "1"}
    jest = sized(modules / "jest", "jest", "29.7.0", 100, dependencies=jest_deps)
    cli_optional = {"zod": "3", "watcher": "2"}
    cli = sized(modules / "jest-cli", "jest-cli", "29.7.0", 300, optionalDependencies=cli_optional)
    nested = sized(jest / "node_modules" / "pretty", "pretty", "1.0.0", 10)
    sized(modules / "watcher", "watcher", "2.3.1", 0)
    typescript = sized(modules / "typescript", "typescript", "5.6.3", 2000)
    got = dev_only(str(fn), [str(zod)], [str(fn)])
    assert [p.name for p in got] == ["typescript", "jest-cli", "jest", "pretty", "watcher"]
    assert got[0] == Unshipped("typescript", "5.6.3", str(typescript), *own_size(typescript))
    assert got[1] == Unshipped("jest-cli", "29.7.0", str(cli), *own_size(cli))
    assert got[2] == Unshipped("jest", "29.7.0", str(jest), *own_size(jest))  # without pretty
    assert got[3].path == str(nested)


def test_a_dev_dependency_that_also_ships_is_not_dev_only(tmp_path: Path) -> None:
    fn = node_function(
        tmp_path.resolve() / "fn", dependencies={"shared": "1"}, devDependencies={"shared": "1"}
    )
    shared = pkg(fn / "node_modules" / "shared", "shared", dependencies={"dep": "1"})
    dep = pkg(fn / "node_modules" / "dep", "dep")
    assert dev_only(str(fn), [str(shared), str(dep)], [str(fn)]) == []


def test_dev_only_counts_nothing_outside_the_allowed_roots(tmp_path: Path) -> None:
    repo = tmp_path.resolve()
    fn = node_function(repo / "fn", devDependencies={"eslint": "9", "local": "1"})
    pkg(repo / "node_modules" / "eslint", "eslint")  # hoisted above the function
    local = pkg(fn / "node_modules" / "local", "local", "0.1.0")
    assert [p.path for p in dev_only(str(fn), [], [str(fn)])] == [str(local)]
    assert {p.name for p in dev_only(str(fn), [], [str(repo)])} == {"eslint", "local"}


def test_dev_only_without_dev_dependencies_or_package_json_is_empty(tmp_path: Path) -> None:
    fn = node_function(tmp_path.resolve() / "fn", devDependencies={"../escape": "1"})
    (fn / "node_modules").mkdir()
    pkg(fn / "escape", "escape")  # node_modules/../escape: a path, never a package name
    assert dev_only(str(fn), [], [str(fn)]) == []
    (tmp_path / "empty").mkdir()
    assert dev_only(str(tmp_path / "empty"), [], [str(tmp_path)]) == []


def test_locate_packages_finds_an_excluded_package_from_its_dependents_folder(
    tmp_path: Path,
) -> None:
    repo = tmp_path.resolve()
    fn = repo / "fn"
    s3 = pkg(fn / "node_modules" / "@aws-sdk" / "client-s3", "@aws-sdk/client-s3")
    dynamo = pkg(repo / "node_modules" / "@aws-sdk" / "client-dynamodb", "@aws-sdk/client-dynamodb")
    inner = fn / "node_modules" / "lib"
    nested = pkg(inner / "node_modules" / "@aws-sdk" / "client-s3", "@aws-sdk/client-s3", "3.1.0")
    reason = "exclude_packages '@aws-sdk/*'"

    def left(arc: str, name: str, dependent: Path) -> Excluded:
        return Excluded(arc, reason, package=name, dependent=str(dependent))

    located = locate_packages(
        [
            left("node_modules/@aws-sdk/client-s3", "@aws-sdk/client-s3", fn),
            left("node_modules/@aws-sdk/client-dynamodb", "@aws-sdk/client-dynamodb", fn),
            left("node_modules/lib/node_modules/@aws-sdk/client-s3", "@aws-sdk/client-s3", inner),
            left("node_modules/@aws-sdk/client-sqs", "@aws-sdk/client-sqs", fn),  # not installed
        ]
    )
    assert located == {
        "node_modules/@aws-sdk/client-s3": str(s3),
        "node_modules/@aws-sdk/client-dynamodb": str(dynamo),  # hoisted, found walking up
        "node_modules/lib/node_modules/@aws-sdk/client-s3": str(nested),
    }


def test_locate_packages_skips_what_it_cannot_or_need_not_look_up(tmp_path: Path) -> None:
    fn = tmp_path.resolve() / "fn"
    pkg(fn / "node_modules" / "a", "a")
    pkg(fn / "escape", "escape")
    assert (
        locate_packages(
            [
                Excluded("node_modules/a", "excludes", str(fn / "node_modules" / "a")),  # measured
                Excluded("node_modules/a", "excludes", package="a"),  # no dependent
                Excluded("node_modules/../escape", "x", package="../escape", dependent=str(fn)),
                Excluded("lib/x.js", "excludes"),
            ]
        )
        == {}
    )
