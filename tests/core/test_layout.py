"""From a request to the zips' entries: source and output folders, runtime, the layer.

docs/design.md, "The request" and "Layout".
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import (
    assert_one_line_error,
    build_ok,
    external,
    manifest,
    node_function,
    pkg,
    write,
)

from lambdazip_tf.core.entries import PackageInfo
from lambdazip_tf.core.layout import check_one_version_per_path
from lambdazip_tf.errors import DependencyError


def test_missing_and_non_folder_source_dir_are_named(tmp_path: Path, run_cli: Any) -> None:
    missing = tmp_path / "nope"
    assert_one_line_error(
        external(run_cli, {"source_dir": str(missing)}), str(missing), "does not exist"
    )
    afile = write(tmp_path / "file.js", "x")
    assert_one_line_error(
        external(run_cli, {"source_dir": str(afile)}), str(afile), "is not a folder"
    )


def test_unwritable_output_folder_is_named(tmp_path: Path, run_cli: Any) -> None:
    # We run as root, so permissions do not stop us; a regular file in the way does.
    write(tmp_path / "fn" / "index.js", "x")
    blocker = write(tmp_path / "blocker", "I am a file")
    run = external(run_cli, {"source_dir": str(tmp_path / "fn"), "output_dir": str(blocker / "o")})
    assert_one_line_error(run, "cannot create output folder", str(blocker / "o"))


@pytest.mark.parametrize(
    ("key", "where"),
    [("output_dir", "."), ("output_dir", "lib/.."), ("output_path", "fn.zip")],
)
def test_artifacts_in_source_dir_itself_are_refused(
    tree: Path, run_cli: Any, key: str, where: str
) -> None:
    # Every build would zip the previous one's artifacts and the cache database.
    before = sorted(p.name for p in tree.iterdir())
    run = external(run_cli, {"source_dir": str(tree), key: str(tree / where)})
    assert_one_line_error(run, f"request key {key!r}", "source_dir", "itself")
    assert sorted(p.name for p in tree.iterdir()) == before  # nothing written
    nested = external(run_cli, {"source_dir": str(tree), key: str(tree / "out" / where)})
    assert nested.code == 0, nested.stderr


def test_output_folder_inside_source_and_default_excludes(tree: Path, run_cli: Any) -> None:
    for name in (
        ".git/config",
        ".terraform/x",
        ".env",
        ".env.local",
        "key.pem",
        "id_rsa",
        "id_rsa.pub",
        ".npmrc",
        "node_modules/x/index.js",
    ):
        write(tree / name, "secret")
    run = external(run_cli, {"source_dir": str(tree), "output_dir": str(tree / ".lambdazip")})
    first = run.json()
    again = external(run_cli, {"source_dir": str(tree), "output_dir": str(tree / ".lambdazip")})
    # The first artifact (and the cache) now lie inside source_dir: still the same content.
    assert again.json()["content_hash"] == first["content_hash"]
    names = set(manifest(first["output_path"]))
    assert names == {
        "bin/",
        "bin/run.sh",
        "empty/",
        "index.js",
        "lib/",
        "lib/util.js",
        "private.txt",
    }


def test_package_json_that_is_a_folder_means_files_runtime_unless_asked(
    tmp_path: Path, run_cli: Any
) -> None:
    src = tmp_path / "fn"
    (src / "package.json").mkdir(parents=True)
    write(src / "index.js", "x")
    run = external(
        run_cli, {"source_dir": str(src), "output_dir": str(tmp_path / "o"), "runtime": "nodejs"}
    )
    assert_one_line_error(run, "package.json")


def test_layer_splits_dependencies_and_adds_the_link(tmp_path: Path, run_cli: Any) -> None:
    src = node_function(tmp_path / "fn", dependencies={"a": "1"})
    pkg(src / "node_modules" / "a", "a")
    data = build_ok(run_cli, src, layer="true", node_modules_link="/opt/nodejs/node_modules")
    fn = manifest(data["output_path"])
    layer = manifest(data["layer_output_path"])
    assert fn["node_modules"] == ("link", "777", "/opt/nodejs/node_modules")
    assert not any(n.startswith("node_modules/") for n in fn)
    assert "nodejs/node_modules/a/index.js" in layer
    assert set(layer) >= {"nodejs/", "nodejs/node_modules/"}
    assert data["layer_output_size"] == str(Path(data["layer_output_path"]).stat().st_size)
    assert Path(data["layer_output_path"]).name.startswith("fn-layer-")
    clash = external(
        run_cli,
        {
            "source_dir": str(src),
            "output_dir": str(tmp_path / "o"),
            "node_modules_link": "/opt/nodejs/node_modules",
        },
    )
    assert_one_line_error(clash, "node_modules_link", "layer")


def test_two_versions_of_a_package_at_one_archive_path_are_refused() -> None:
    same = PackageInfo("ms", "2.1.3", "node_modules/ms", 1, 10, path="/a/ms")
    check_one_version_per_path([same, same._replace(path="/b/ms")])  # one version, two copies
    other = same._replace(version="2.0.0", path="/c/ms")
    with pytest.raises(
        DependencyError,
        match=r"ms@2.1.3 \(/a/ms\) and ms@2.0.0 \(/c/ms\) would both be stored at node_modules/ms",
    ):
        check_one_version_per_path([same, other])
