"""package.json: the one reader of it, and the dependency names it declares (docs/design.md,
"Dependencies")."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import write

from lambdazip_tf.core.filesystem import ObservedFileSystem
from lambdazip_tf.errors import DependencyError
from lambdazip_tf.runtimes.nodejs.manifest import (
    Dependency,
    declared,
    manifest_object,
    read_manifest,
    valid_name,
)


def test_read_manifest_gives_the_object_and_a_missing_one_only_when_not_required(
    tmp_path: Path,
) -> None:
    write(tmp_path / "pkg" / "package.json", json.dumps({"name": "pkg", "version": "1.2.3"}))
    fs = ObservedFileSystem()
    assert read_manifest(fs, str(tmp_path / "pkg")) == {"name": "pkg", "version": "1.2.3"}
    assert read_manifest(fs, str(tmp_path), required=False) == {}
    path = tmp_path / "package.json"
    with pytest.raises(DependencyError) as error:
        read_manifest(fs, str(tmp_path))
    assert str(error.value) == f"{path} does not exist"


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda p: p.mkdir(parents=True), "is a folder, not a file"),
        (lambda p: write(p, '{"name": "x",\n  "version": }\n'), "is not valid JSON (Expecting"),
        (lambda p: write(p, ""), "is not valid JSON"),
        (lambda p: write(p, '["a", "b"]'), "must hold a JSON object"),
        (lambda p: write(p, '"just a string"'), "must hold a JSON object"),
    ],
    ids=["folder", "invalid", "empty", "array", "string"],
)
def test_an_unusable_package_json_is_one_line_naming_its_path(
    tmp_path: Path, make: Callable[[Path], object], says: str
) -> None:
    path = tmp_path / "package.json"
    make(path)
    for required in (True, False):
        with pytest.raises(DependencyError) as error:
            read_manifest(ObservedFileSystem(), str(tmp_path), required=required)
        message = str(error.value)
        assert message.startswith(f"{path} ")
        assert says in message
        assert "\n" not in message


def test_manifest_object_is_empty_for_a_missing_or_unusable_package_json(tmp_path: Path) -> None:
    fs = ObservedFileSystem()
    write(tmp_path / "good" / "package.json", '{"workspaces": ["packages/*"]}')
    write(tmp_path / "bad" / "package.json", "{not json")
    write(tmp_path / "array" / "package.json", "[]")
    (tmp_path / "folder" / "package.json").mkdir(parents=True)
    (tmp_path / "none").mkdir()
    assert manifest_object(fs, str(tmp_path / "good")) == {"workspaces": ["packages/*"]}
    for folder in ("bad", "array", "folder", "none"):
        assert manifest_object(fs, str(tmp_path / folder)) == {}, folder


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("lodash", True),
        ("lodash.merge", True),
        ("@aws-sdk/client-s3", True),
        ("@img/sharp-linux-x64", True),
        ("@s/a", True),
        ("left-pad-1.3", True),
        ("lodash/fp", False),  # only a scope may have a slash
        ("@/a", False),
        ("@scope/a/b", False),
        ("@scope/", False),
        ("", False),
        (".", False),
        ("..", False),
        ("../escape", False),
        ("@scope/..", False),
        (".bin", False),
        ("@scope/.hidden", False),
        ("@.scope/a", False),
        ("a\\b", False),
        ("c:evil", False),
        ("nul\0byte", False),
        ("/abs", False),
    ],
)
def test_valid_name_accepts_only_names_that_mean_a_folder_below_node_modules(
    name: str, valid: bool
) -> None:
    assert valid_name(name) is valid


def test_declared_reads_every_kind_of_dependency_sorted_by_name() -> None:
    manifest = {
        "dependencies": {"zod": "^3", "@scope/lib": "1", "both": "1"},
        "optionalDependencies": {"fsevents": "2", "both": "1"},  # optional wins, as in npm
        "peerDependencies": {"react": "18", "zod": "^3"},  # a declared dependency stays required
        "bundleDependencies": ["bundled", "zod", 7],
        "devDependencies": {"jest": "29"},
    }
    assert declared(manifest, "/fn", dev=False) == [
        Dependency("@scope/lib", False),
        Dependency("both", True),
        Dependency("bundled", False),
        Dependency("fsevents", True),
        Dependency("react", True),
        Dependency("zod", False),
    ]
    with_dev = declared(manifest, "/fn", dev=True)
    assert Dependency("jest", False) in with_dev
    assert [d.name for d in with_dev] == sorted(d.name for d in with_dev)
    assert declared({"bundledDependencies": ["old-spelling"]}, "/fn", dev=False) == [
        Dependency("old-spelling", False)
    ]
    assert declared({"name": "nothing", "dependencies": None}, "/fn", dev=True) == []


@pytest.mark.parametrize("key", ["dependencies", "optionalDependencies", "peerDependencies"])
def test_declared_refuses_a_name_that_is_a_path(key: str) -> None:
    with pytest.raises(DependencyError) as error:
        declared({key: {"../../etc": "1.0.0"}}, "/fn", dev=False)
    assert error.value.package == "../../etc"
    assert str(error.value).startswith("/fn/package.json names an invalid dependency '../../etc'")


def test_declared_checks_dev_dependency_names_only_when_they_ship() -> None:
    manifest = {"devDependencies": {"@bad/../name": "1"}}
    assert declared(manifest, "/fn", dev=False) == []
    with pytest.raises(DependencyError, match="invalid dependency"):
        declared(manifest, "/fn", dev=True)


def test_declared_refuses_a_table_that_is_not_an_object() -> None:
    with pytest.raises(DependencyError) as error:
        declared({"dependencies": ["lodash"]}, "/fn", dev=False)
    assert str(error.value) == "/fn/package.json: dependencies must be an object of name: version"
