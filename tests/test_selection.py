"""The link policy of DESIGN 5.5 and the excludes of DESIGN 5.1, on trees built in tmp_path."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import build_ok as _build
from conftest import external, link, manifest, unzip, write
from test_cli import assert_one_line_error

from lambdazip_tf.entries import Entry, file_entry, normalised_mode
from lambdazip_tf.fsview import stat_key


def test_links_inside_the_artifact_are_stored_as_relative_links(tree: Path, run_cli: Any) -> None:
    link(tree / "lib" / "again.js", "util.js")
    link(tree / "alias", "lib")  # a folder
    link(tree / "abs.js", str(tree / "index.js"))  # absolute, but inside: made relative
    got = manifest(_build(run_cli, tree)["output_path"])
    assert got["lib/again.js"] == ("link", "777", "util.js")
    assert got["alias"] == ("link", "777", "lib")
    assert got["abs.js"] == ("link", "777", "index.js")


def test_links_into_allowed_roots_are_replaced_by_content(tmp_path: Path, run_cli: Any) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)  # the default allowed root: the repository
    src = repo / "fn"
    write(src / "index.js", "x")
    write(repo / "shared" / "lib.js", "shared code")
    write(repo / "shared" / "sub" / "deep.js", "deep", mode=0o755)
    write(repo / "config.json", "{}")
    link(src / "shared", "../shared")
    link(src / "config.json", "../config.json")
    got = manifest(_build(run_cli, src)["output_path"])
    assert got["shared/"][0] == "dir"
    assert got["shared/lib.js"][0] == "file"
    assert got["shared/sub/deep.js"][1] == "755"
    assert got["config.json"][0] == "file"
    assert not any(kind == "link" for kind, _, _ in got.values())


def test_explicit_allowed_roots_replace_the_default(tmp_path: Path, run_cli: Any) -> None:
    write(tmp_path / "lib" / "x.js", "x")
    src = tmp_path / "fn"
    write(src / "index.js", "x")
    link(src / "lib", "../lib")
    refused = external(run_cli, {"source_dir": str(src), "output_dir": str(tmp_path / "o")})
    assert_one_line_error(refused, str(src / "lib"), "outside the function and allowed_roots")
    got = manifest(_build(run_cli, src, allowed_roots=[str(tmp_path / "lib")])["output_path"])
    assert got["lib/x.js"][0] == "file"


def test_links_out_of_bounds_dangling_or_cyclic_are_errors(tmp_path: Path, run_cli: Any) -> None:
    src = tmp_path / "fn"
    write(src / "index.js", "x")
    request = {"source_dir": str(src), "output_dir": str(tmp_path / "o")}
    bad = link(src / "passwd", "/etc/passwd")
    assert_one_line_error(external(run_cli, request), str(bad), "/etc/passwd")
    bad.unlink()
    bad = link(src / "gone.js", "missing.js")
    assert_one_line_error(external(run_cli, request), "dangling link", str(bad))
    bad.unlink()
    link(src / "a", "b")
    link(src / "b", "a")
    assert_one_line_error(external(run_cli, request), "link cycle")


def test_a_folder_copied_into_itself_is_a_cycle(tmp_path: Path, run_cli: Any) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    src = repo / "fn"
    write(src / "index.js", "x")
    write(repo / "shared" / "a.js", "a")
    link(repo / "shared" / "loop", "../shared")
    link(src / "shared", "../shared")
    # shared/ is copied in (it lies outside source_dir); its loop stays a link inside the copy.
    got = manifest(_build(run_cli, src)["output_path"])
    assert got["shared/loop"] == ("link", "777", ".")
    # Dereferenced, shared/loop would contain shared again, forever: reported, not followed.
    assert_one_line_error(
        external(
            run_cli,
            {"source_dir": str(src), "output_dir": str(tmp_path / "o"), "symlinks": "dereference"},
        ),
        "link cycle",
        "loop",
    )


def test_a_link_to_an_excluded_file_is_refused_not_copied(tree: Path, run_cli: Any) -> None:
    write(tree / ".env", "SECRET=1")
    bad = link(tree / "config", ".env")
    assert_one_line_error(
        external(run_cli, {"source_dir": str(tree), "output_dir": str(tree.parent / "o")}),
        str(bad),
        "excluded",
    )


def test_dereference_stores_content_for_links_inside(tree: Path, run_cli: Any) -> None:
    link(tree / "lib" / "again.js", "util.js")
    got = manifest(_build(run_cli, tree, symlinks="dereference")["output_path"])
    assert got["lib/again.js"] == got["lib/util.js"]


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


def test_unzip_round_trip_restores_files_modes_links_and_empty_folders(
    tree: Path, run_cli: Any, tmp_path: Path
) -> None:
    link(tree / "lib" / "again.js", "util.js")
    data = _build(run_cli, tree, node_modules_link="/opt/nodejs/node_modules")
    assert data["symlink_count"] == "2"
    old = os.umask(0o022)
    try:
        out = unzip(data["output_path"], tmp_path / "unzipped")
    finally:
        os.umask(old)
    assert (out / "index.js").read_text() == (tree / "index.js").read_text()
    assert os.readlink(out / "lib" / "again.js") == "util.js"
    assert (out / "lib" / "again.js").read_text() == "module.exports = 1;\n"
    assert os.readlink(out / "node_modules") == "/opt/nodejs/node_modules"
    assert (out / "empty").is_dir()
    assert not any((out / "empty").iterdir())
    assert (out / "bin" / "run.sh").stat().st_mode & 0o777 == 0o755
    for path in out.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert path.stat().st_mode & 0o004, f"{path} is not readable by others"
    assert (out / "private.txt").stat().st_mode & 0o777 == 0o644
    listing = subprocess.run(
        ["zipinfo", data["output_path"]], capture_output=True, text=True, check=True
    ).stdout
    links = [line for line in listing.splitlines() if line.startswith("l")]
    assert len(links) == 2
    assert any(line.endswith("node_modules") for line in links)


def test_special_files_are_skipped_and_listed(tree: Path, run_cli: Any) -> None:
    os.mkfifo(tree / "pipe")
    got = manifest(_build(run_cli, tree)["output_path"])
    assert "pipe" not in got
    plan = run_cli(
        ["plan", "--json", "--source-dir", str(tree), "--output-dir", str(tree.parent / "out")]
    )
    excluded = json.loads(plan.stdout)["excluded"]
    assert {"path": "pipe", "reason": "not a regular file, folder or link"} in excluded


@pytest.mark.parametrize("mode", [0o644, 0o600, 0o755, 0o700, 0o744, 0o4711])
def test_a_file_entry_holds_its_files_stat_key_size_and_normalised_mode(
    tmp_path: Path, mode: int
) -> None:
    path = write(tmp_path / "f.js", "module.exports = 1;\n", mode=mode)
    st = os.stat(path)
    entry = file_entry("lib/f.js", str(path), st)
    assert entry == Entry("lib/f.js", "file", normalised_mode(mode), str(path), None, 20)._replace(
        stat_key=stat_key(st)
    )
    assert entry.mode == (0o755 if mode & 0o111 else 0o644)
