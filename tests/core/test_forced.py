"""Files forced in by the request's `includes` (docs/design.md, "Selection" and "Links")."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest
from helpers import link, write

from lambdazip_tf.core.entries import LINK_MODE, Entry
from lambdazip_tf.core.filesystem import ObservedFileSystem
from lambdazip_tf.core.forced import add_includes
from lambdazip_tf.core.runtime import Forced
from lambdazip_tf.core.selection import DEFAULT_EXCLUDES, Collector, ExcludeRules
from lambdazip_tf.errors import LinkError

INSTALLED = frozenset({"node_modules"})


def collected(
    src: Path, excludes: Sequence[str] = (), skip: frozenset[str] = frozenset()
) -> tuple[Collector, ExcludeRules]:
    """The function's own files walked as the layout walks them, installed folders skipped."""
    collector = Collector(ObservedFileSystem(), allowed_roots=[str(src)])
    rules = ExcludeRules.build(excludes, DEFAULT_EXCLUDES)
    collector.add_tree(str(src), "", rules, skip_dirs=skip, skip_names=INSTALLED)
    return collector, rules


def force(
    collector: Collector,
    rules: ExcludeRules,
    patterns: Sequence[str],
    src: Path,
    package: Path | None = None,
    skip: frozenset[str] = frozenset(),
) -> list[Forced]:
    roots = (str(src), str(package or src))
    return add_includes(collector, patterns, roots, INSTALLED, skip, rules)


@pytest.fixture
def src(tmp_path: Path) -> Path:
    """A function folder at its real path, with a handler."""
    folder = Path(os.path.realpath(tmp_path)) / "fn"
    write(folder / "index.js", "exports.handler = async () => 1;\n")
    return folder


def test_a_pattern_forces_in_what_the_defaults_left_out(src: Path) -> None:
    write(src / ".env", "SECRET=1")
    write(src / ".env.production", "MODE=production")
    collector, rules = collected(src)
    assert {x.arc for x in collector.excluded} == {".env", ".env.production"}
    forced = force(collector, rules, [".env.production"], src)
    assert forced == [Forced(".env.production", "includes")]
    assert collector.entries[".env.production"].source == str(src / ".env.production")
    assert [x.arc for x in collector.excluded] == [".env"]
    assert ".env" not in collector.entries


def test_a_pattern_reaches_into_a_folder_the_requests_excludes_left_out(src: Path) -> None:
    write(src / "generated" / "schema.graphql", "type Q { a: Int }")
    write(src / "generated" / "deep" / "more.graphql", "type R { b: Int }")
    write(src / "generated" / "cache.bin", "x")
    collector, rules = collected(src, excludes=["generated/"])
    forced = force(collector, rules, ["generated/**/*.graphql"], src)
    assert sorted(forced) == [
        Forced("generated/deep/more.graphql", "includes"),
        Forced("generated/schema.graphql", "includes"),
    ]
    assert "generated/cache.bin" not in collector.entries


def test_patterns_reach_installed_dependencies_only_when_they_name_their_folder(
    src: Path,
) -> None:
    write(src / "api" / "schema.graphql", "own")
    write(src / "node_modules" / "x" / "schema.graphql", "installed")
    collector, rules = collected(src, excludes=["*.graphql"])
    forced = force(collector, rules, ["*.graphql"], src)
    assert [f.arc for f in forced] == ["api/schema.graphql"]
    forced = force(collector, rules, ["node_modules/x/*.graphql"], src)
    assert [f.arc for f in forced] == ["node_modules/x/schema.graphql"]


def test_installed_dependencies_are_taken_from_the_package_folder(tmp_path: Path) -> None:
    package = Path(os.path.realpath(tmp_path)) / "project"
    src = package / "dist"
    write(src / "index.js", "x")
    write(package / "node_modules" / ".generated" / "client.js", "generated")
    write(src / "node_modules" / ".generated" / "client.js", "not this one")
    collector, rules = collected(src)
    forced = force(collector, rules, ["node_modules/.generated/"], src, package)
    assert forced == [Forced("node_modules/.generated/client.js", "includes")]
    entry = collector.entries["node_modules/.generated/client.js"]
    assert entry.source == str(package / "node_modules" / ".generated" / "client.js")


def test_a_pattern_walks_only_below_its_literal_leading_folders(src: Path) -> None:
    write(src / "gen" / "api" / "a.graphql", "a")
    write(src / "other" / "deep" / "b.graphql", "b")
    collector, rules = collected(src, excludes=["*.graphql"])
    before = len(collector.fs.facts)
    forced = force(collector, rules, ["gen/api/*.graphql"], src)
    assert forced == [Forced("gen/api/a.graphql", "includes")]
    listed = [path for op, path, _ in collector.fs.facts[before:] if op == "folder"]
    assert listed == [str(src / "gen" / "api")]


def test_git_data_and_the_output_folder_are_never_walked(src: Path) -> None:
    write(src / ".git" / "config", "[core]")
    write(src / "lib" / ".git" / "HEAD", "ref")
    write(src / ".lambdazip" / "fn-0123.zip", "old artifact")
    skip = frozenset({str(src / ".lambdazip")})
    collector, rules = collected(src, skip=skip)
    forced = force(collector, rules, ["*", "**/HEAD", "*.zip"], src, skip=skip)
    assert forced == []
    assert not any(".git" in arc.split("/") for arc in collector.entries)
    assert not any(arc.endswith(".zip") for arc in collector.entries)


def test_a_file_already_selected_is_not_forced_again(src: Path) -> None:
    write(src / "lib" / "util.js", "1")
    collector, rules = collected(src)
    entries = dict(collector.entries)
    assert force(collector, rules, ["*.js", "lib/util.js"], src) == []
    assert collector.entries == entries


def test_a_negated_pattern_keeps_its_files_out(src: Path) -> None:
    write(src / "certs" / "ca.pem", "public")
    write(src / "certs" / "server.pem", "private")
    collector, rules = collected(src)
    forced = force(collector, rules, ["certs/*.pem", "!certs/server.pem"], src)
    assert forced == [Forced("certs/ca.pem", "includes")]
    assert "certs/server.pem" in {x.arc for x in collector.excluded}


def test_a_file_below_a_folder_stored_as_a_link_is_not_forced(src: Path) -> None:
    write(src / "vendor" / "pkg" / "schema.graphql", "x")
    collector, rules = collected(src, excludes=["vendor/"])
    # As a runtime stores a package manager's link to a package.
    collector.add_link("vendor/pkg", "../store/pkg")
    assert force(collector, rules, ["vendor/**/*.graphql"], src) == []


def test_a_link_matched_goes_through_the_link_policy(tmp_path: Path, src: Path) -> None:
    write(src / "certs" / "ca.txt", "public")
    link(src / "ca.pem", "certs/ca.txt")
    collector, rules = collected(src)
    assert force(collector, rules, ["ca.pem"], src) == [Forced("ca.pem", "includes")]
    assert "ca.pem" not in collector.entries  # pending until the links are resolved
    collector.resolve_links()
    assert collector.entries["ca.pem"] == Entry("ca.pem", "link", LINK_MODE, target="certs/ca.txt")

    write(src / ".env", "SECRET=1")
    link(src / "key.pem", ".env")  # a link to what the excludes left out
    collector, rules = collected(src)
    force(collector, rules, ["key.pem"], src)
    with pytest.raises(LinkError, match="excluded"):
        collector.resolve_links()

    write(tmp_path / "outside" / "secret.txt", "x")
    link(src / "far.pem", str(tmp_path / "outside" / "secret.txt"))
    collector, rules = collected(src, excludes=["key.pem"])
    force(collector, rules, ["far.pem"], src)
    with pytest.raises(LinkError, match="outside the function and allowed_roots"):
        collector.resolve_links()


def test_a_pattern_that_names_a_git_folder_forces_nothing_from_it(src: Path) -> None:
    """.git never ships, not even for a pattern whose literal folders lead into it: its
    config may name a remote with its credentials."""
    write(src / ".git" / "config", "[remote]\nurl = https://user:token@host/repo\n")
    write(src / "lib" / ".git" / "hooks" / "pre-commit", "#!/bin/sh\n")
    collector, rules = collected(src)
    forced = force(collector, rules, [".git/config", ".git/**", "lib/.git/hooks/*"], src)
    assert forced == []
    assert not any(".git" in arc.split("/") for arc in collector.entries)
