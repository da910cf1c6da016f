"""The request resolved: the runtime detected, paths made real, defaults filled
(docs/design.md, "The request", "Runtimes")."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import node_function, pkg, write

from lambdazip_tf.core.binaries import Target
from lambdazip_tf.core.context import Context, resolve_context
from lambdazip_tf.core.filesystem import ObservedFileSystem
from lambdazip_tf.core.request import Request
from lambdazip_tf.errors import RequestError
from lambdazip_tf.runtimes import RUNTIMES


def _context(src: Path, **request: object) -> Context:
    req = Request.model_validate({"source_dir": str(src), **request})
    return resolve_context(req, ObservedFileSystem(), RUNTIMES, cwd=src.parent)


def test_the_runtime_is_detected_from_the_folder_that_declares_dependencies(
    tmp_path: Path,
) -> None:
    src = node_function(tmp_path / "fn")
    plain = write(tmp_path / "plain" / "index.js", "").parent
    assert _context(src).runtime == "nodejs"
    assert _context(src).chosen_runtime is RUNTIMES[0]
    assert _context(plain).runtime == "files"
    assert _context(plain).chosen_runtime is None


def test_a_named_runtime_needs_its_manifest(tmp_path: Path) -> None:
    plain = write(tmp_path / "plain" / "index.js", "").parent
    with pytest.raises(RequestError, match=r"runtime nodejs needs .*plain/package.json"):
        _context(plain, runtime="nodejs")


def test_the_query_carries_plain_values_and_leaves_defaults_to_the_runtime(
    tmp_path: Path,
) -> None:
    src = node_function(tmp_path / "fn")
    query = _context(src).query()
    assert query.source == str(src) and query.package_dir == ""
    assert query.exclude_packages is None  # the runtime's default
    assert query.version is None and query.target == Target("x86_64")
    given = _context(
        src,
        exclude_packages=[],
        node_version="nodejs22.x",
        architecture="arm64",
        symlinks="dereference",
        layer=True,
    ).query()
    assert given.exclude_packages == ()
    assert (given.version, given.target, given.dereference, given.layer) == (
        "22",
        Target("arm64"),
        True,
        True,
    )


def test_runtime_files_leaves_every_runtimes_installed_folder_out_by_default(
    tmp_path: Path,
) -> None:
    src = node_function(tmp_path / "fn")
    plain = write(tmp_path / "plain" / "index.js", "").parent
    crawled = dict(_context(src).own_defaults())
    zipped = dict(_context(plain).own_defaults())
    assert "node_modules" not in crawled  # the crawl skips it instead
    assert zipped["node_modules"] == "dependencies come from runtime nodejs, not from files"
    for defaults in (crawled, zipped):
        assert {".git", ".env*", ".npmrc", "terraform.tfstate*"} <= set(defaults)


def test_the_default_allowed_root_is_the_nearest_repository_or_workspace(
    tmp_path: Path,
) -> None:
    repo = tmp_path / "repo"
    write(repo / ".git" / "HEAD", "ref: refs/heads/main\n")
    workspace = repo / "ws"
    pkg(workspace, "ws", workspaces=["packages/*"])
    src = node_function(workspace / "packages" / "fn")
    assert _context(src).allowed_roots == (str(src), str(workspace))
    alone = node_function(tmp_path / "alone")
    assert _context(alone).allowed_roots == (str(alone),)


def test_package_dir_is_checked_and_source_dir_itself_means_none(tmp_path: Path) -> None:
    root = node_function(tmp_path / "app")
    dist = write(root / "dist" / "index.js", "").parent
    assert _context(dist, package_dir=str(root)).package_dir == str(root)
    assert _context(dist, package_dir=str(root)).packages_from == str(root)
    assert _context(root, package_dir=str(root)).package_dir == ""
    with pytest.raises(RequestError, match=r"package_dir .*dist has no package.json"):
        _context(dist, package_dir=str(dist))
    with pytest.raises(
        RequestError, match=r'package_dir supplies dependencies, which runtime = "files"'
    ):
        _context(dist, package_dir=str(root), runtime="files")
