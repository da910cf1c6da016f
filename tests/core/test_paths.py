"""Real folders and archive paths (docs/design.md, "Links" and "Layout")."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lambdazip_tf.core.paths import (
    ancestors,
    arc_join,
    arc_parents,
    arc_relpath,
    is_within,
    os_relpath,
)


@pytest.mark.parametrize(
    ("path", "root"),
    [
        ("/a", "/a"),
        ("/a/b", "/a"),
        ("/a/b/c", "/a"),
        ("/a/b", "/a/"),  # a root with a trailing slash
        ("/", "/"),
        ("/a", "/"),  # everything is within the file system's root
        ("/a/b", "/"),
    ],
)
def test_a_path_is_within_itself_and_the_folders_above_it(path: str, root: str) -> None:
    assert is_within(path, root)


@pytest.mark.parametrize(
    ("path", "root"),
    [
        ("/ab", "/a"),  # a sibling sharing a prefix is not inside
        ("/a", "/ab"),
        ("/a-b/c", "/a"),
        ("/a", "/a/b"),  # a parent is not within its child
        ("/", "/a"),
        ("/b", "/a"),
    ],
)
def test_a_path_that_only_shares_a_prefix_is_not_within(path: str, root: str) -> None:
    assert not is_within(path, root)


def test_ancestors_start_with_the_folder_and_end_at_the_root() -> None:
    assert list(ancestors("/a/b/c")) == ["/a/b/c", "/a/b", "/a", "/"]
    assert list(ancestors("/")) == ["/"]


def test_ancestors_of_a_real_folder_reach_the_root(tmp_path: Path) -> None:
    found = list(ancestors(str(tmp_path)))
    assert found[0] == str(tmp_path)
    assert found[-1] == os.path.dirname(found[-1]) == "/"
    assert len(found) == len(set(found)) == len(tmp_path.parts)


def test_arc_join_treats_the_empty_string_as_the_artifacts_root() -> None:
    assert arc_join("", "index.js") == "index.js"
    assert arc_join("lib", "index.js") == "lib/index.js"
    assert arc_join("node_modules/@scope/x", "a.js") == "node_modules/@scope/x/a.js"


@pytest.mark.parametrize(
    ("target", "link", "relative"),
    [
        ("lib/util.js", "lib/again.js", "util.js"),  # beside it
        ("lib", "alias", "lib"),  # at the root
        ("index.js", "lib/deep/x.js", "../../index.js"),  # up from a nested link
        ("node_modules/.pnpm/a@1/node_modules/a", "node_modules/a", ".pnpm/a@1/node_modules/a"),
        ("shared", "shared/loop", "."),  # the folder that holds the link
        ("a/b", "c/d/e", "../../a/b"),
    ],
)
def test_arc_relpath_is_the_target_relative_to_the_links_folder(
    target: str, link: str, relative: str
) -> None:
    assert arc_relpath(target, link) == relative


def test_arc_parents_go_nearest_first_and_end_with_the_root() -> None:
    assert list(arc_parents("a/b/c.js")) == ["a/b", "a", ""]
    assert list(arc_parents("index.js")) == [""]
    assert list(arc_parents("")) == []


def test_os_relpath_gives_an_archive_path(tmp_path: Path) -> None:
    deep = tmp_path / "x" / "y" / "z.js"
    assert os_relpath(str(deep), str(tmp_path)) == "x/y/z.js"
    assert os_relpath(str(tmp_path), str(tmp_path)) == "."
    assert os_relpath(str(tmp_path / "a"), str(tmp_path / "b")) == "../a"
