"""The production dependency crawl on synthetic node_modules trees.

docs/design.md, "Dependencies" and "Layout". Every tree here is checked twice: against the
expected file list, and against Node itself (`nodejs_oracle.edges_agree`) resolving every
dependency edge in the source and in the unzipped artifact.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    assert_one_line_error,
    build_ok,
    external,
    link,
    manifest,
    node_function,
    pkg,
    unzip,
    write,
)
from nodejs_oracle import edges_agree, invoke


def check_with_node(src: Path, search_root: Path, zip_path: str, tmp: Path) -> int:
    """Unzip with Info-ZIP and let Node compare every edge; return how many were compared."""
    out = unzip(zip_path, tmp / f"unzipped-{Path(zip_path).stem}")
    return len(edges_agree(src, search_root, out))


@pytest.mark.slow
def test_nested_versions_scoped_names_cycles_and_dev_dependencies(
    tmp_path: Path, run_cli: Any
) -> None:
    src = node_function(
        tmp_path / "fn",
        dependencies={"a": "1", "@scope/b": "1", "shared": "2"},
        devDependencies={"dev-only": "1"},
        optionalDependencies={"not-installed": "1"},
    )
    nm = src / "node_modules"
    pkg(nm / "a", "a", dependencies={"shared": "1", "cyc-x": "1"})
    pkg(nm / "a" / "node_modules" / "shared", "shared", "1.0.0")
    pkg(nm / "shared", "shared", "2.0.0")
    pkg(nm / "@scope" / "b", "@scope/b", dependencies={"shared": "2"})
    pkg(nm / "cyc-x", "cyc-x", dependencies={"cyc-y": "1"})
    pkg(nm / "cyc-y", "cyc-y", dependencies={"cyc-x": "1"})
    pkg(nm / "dev-only", "dev-only")
    pkg(nm / "unused", "unused")
    write(nm / ".bin" / "tool", "#!/bin/sh\n", mode=0o755)
    write(nm / ".package-lock.json", "{}")
    data = build_ok(run_cli, src)
    names = set(manifest(data["output_path"]))
    assert {
        "node_modules/a/index.js",
        "node_modules/a/node_modules/shared/index.js",
        "node_modules/shared/index.js",
        "node_modules/@scope/b/index.js",
        "node_modules/cyc-x/index.js",
        "node_modules/cyc-y/index.js",
        "handler.js",
        "package.json",
    } <= names
    for absent in (
        "node_modules/dev-only/",
        "node_modules/unused/",
        "node_modules/.bin/",
        "node_modules/.package-lock.json",
    ):
        assert absent not in names
    # 4 from the function (one absent optional), 2 from a, 1 from @scope/b, 2 in the cycle
    assert check_with_node(src, src, data["output_path"], tmp_path) == 9
    with_dev = build_ok(run_cli, src, include_dev_dependencies="true")
    assert "node_modules/dev-only/index.js" in manifest(with_dev["output_path"])


@pytest.mark.slow
def test_hoisted_dependencies_above_source_are_copied_and_nested_when_taken(
    tmp_path: Path, run_cli: Any
) -> None:
    repo = tmp_path / "repo"
    write(repo / "package.json", json.dumps({"name": "root", "workspaces": ["functions/*"]}))
    src = node_function(repo / "functions" / "api", dependencies={"hoisted": "1", "local": "1"})
    pkg(src / "node_modules" / "local", "local", dependencies={"dup": "2"})
    pkg(src / "node_modules" / "dup", "dup", "2.0.0")
    pkg(repo / "node_modules" / "hoisted", "hoisted", dependencies={"dup": "1", "deep": "1"})
    pkg(repo / "node_modules" / "dup", "dup", "1.0.0")
    pkg(repo / "node_modules" / "deep", "deep", "3.0.0")
    data = build_ok(run_cli, src)
    names = set(manifest(data["output_path"]))
    assert "node_modules/hoisted/index.js" in names
    assert "node_modules/deep/index.js" in names
    # node_modules/dup holds 2.0.0 (installed inside source_dir), so hoisted's dup@1 nests.
    assert "node_modules/hoisted/node_modules/dup/index.js" in names
    assert check_with_node(src, repo, data["output_path"], tmp_path) == 5


@pytest.mark.slow
def test_pnpm_style_links_are_kept_as_links(tmp_path: Path, run_cli: Any) -> None:
    src = node_function(tmp_path / "fn", dependencies={"a": "1"})
    store = src / "node_modules" / ".pnpm"
    pkg(store / "a@1.0.0" / "node_modules" / "a", "a", dependencies={"b": "1"})
    pkg(store / "b@1.0.0" / "node_modules" / "b", "b", dependencies={"a": "1"})
    link(store / "a@1.0.0" / "node_modules" / "b", "../../b@1.0.0/node_modules/b")
    link(store / "b@1.0.0" / "node_modules" / "a", "../../a@1.0.0/node_modules/a")
    link(src / "node_modules" / "a", ".pnpm/a@1.0.0/node_modules/a")
    data = build_ok(run_cli, src)
    got = manifest(data["output_path"])
    assert got["node_modules/a"] == ("link", "777", ".pnpm/a@1.0.0/node_modules/a")
    assert got["node_modules/.pnpm/a@1.0.0/node_modules/b"] == (
        "link",
        "777",
        "../../b@1.0.0/node_modules/b",
    )
    assert data["symlink_count"] == "3"
    assert check_with_node(src, src, data["output_path"], tmp_path) == 3


@pytest.mark.slow
def test_workspace_links_are_replaced_by_the_package_files(tmp_path: Path, run_cli: Any) -> None:
    repo = tmp_path / "repo"
    write(repo / "package.json", json.dumps({"name": "root", "workspaces": ["packages/*"]}))
    src = node_function(repo / "fn", dependencies={"@ws/lib": "1"})
    pkg(repo / "packages" / "lib", "@ws/lib", dependencies={"ms": "2"})
    pkg(repo / "node_modules" / "ms", "ms", "2.1.3")
    link(repo / "node_modules" / "@ws" / "lib", "../../packages/lib")
    link(src / "node_modules" / "@ws" / "lib", "../../../packages/lib")  # `npm link` style
    data = build_ok(run_cli, src)
    got = manifest(data["output_path"])
    assert got["node_modules/@ws/lib/index.js"][0] == "file"
    assert got["node_modules/ms/index.js"][0] == "file"
    assert data["symlink_count"] == "0"
    assert check_with_node(src, repo, data["output_path"], tmp_path) == 2


def test_bundled_and_installed_peer_dependencies_ship(tmp_path: Path, run_cli: Any) -> None:
    src = node_function(tmp_path / "fn", dependencies={"host": "1"})
    nm = src / "node_modules"
    pkg(
        nm / "host",
        "host",
        bundleDependencies=["inner"],
        dependencies={"inner": "1"},
        peerDependencies={"peer": "1", "absent-peer": "1"},
    )
    pkg(nm / "host" / "node_modules" / "inner", "inner")
    pkg(nm / "peer", "peer")
    names = set(manifest(build_ok(run_cli, src)["output_path"]))
    assert "node_modules/host/node_modules/inner/index.js" in names
    assert "node_modules/peer/index.js" in names


def test_exclude_packages_defaults_to_aws_sdk_and_can_be_emptied(
    tmp_path: Path, run_cli: Any
) -> None:
    src = node_function(tmp_path / "fn", dependencies={"@aws-sdk/client-s3": "3", "x": "1"})
    pkg(
        src / "node_modules" / "@aws-sdk" / "client-s3",
        "@aws-sdk/client-s3",
        dependencies={"only-for-sdk": "1"},
    )
    pkg(src / "node_modules" / "only-for-sdk", "only-for-sdk")
    pkg(src / "node_modules" / "x", "x")
    names = set(manifest(build_ok(run_cli, src)["output_path"]))
    assert not any(n.startswith("node_modules/@aws-sdk") for n in names)
    assert "node_modules/only-for-sdk/" not in names
    everything = set(manifest(build_ok(run_cli, src, exclude_packages=[])["output_path"]))
    assert "node_modules/@aws-sdk/client-s3/index.js" in everything
    assert "node_modules/only-for-sdk/index.js" in everything
    no_x = set(
        manifest(build_ok(run_cli, src, exclude_packages=["x", "@aws-sdk/*"])["output_path"])
    )
    assert "node_modules/x/" not in no_x


def test_excludes_apply_to_package_files_but_nested_node_modules_are_crawled(
    tmp_path: Path, run_cli: Any
) -> None:
    src = node_function(tmp_path / "fn", dependencies={"a": "1"})
    a = pkg(src / "node_modules" / "a", "a")
    write(a / "README.md", "docs")
    write(a / "lib" / "native.node", "\x7fELF")
    write(a / "lib" / "mod.mjs", "export default 1")
    write(a / "lib" / "map.js.map", "{}")
    write(a / "node_modules" / "stray" / "index.js", "not a dependency")
    names = set(manifest(build_ok(run_cli, src, excludes=["*.md"])["output_path"]))
    assert "node_modules/a/README.md" not in names
    for kept in ("lib/native.node", "lib/mod.mjs", "lib/map.js.map"):
        assert f"node_modules/a/{kept}" in names
    assert "node_modules/a/node_modules/stray/index.js" not in names


def test_missing_required_dependency_names_package_dependent_and_fix(
    tmp_path: Path, run_cli: Any
) -> None:
    src = node_function(tmp_path / "fn", dependencies={"a": "1"})
    write(src / "package-lock.json", "{}")
    pkg(src / "node_modules" / "a", "a", dependencies={"gone": "1"})
    run = external(run_cli, {"source_dir": str(src), "output_dir": str(tmp_path / "o")})
    assert_one_line_error(
        run,
        "'gone'",
        str(src / "node_modules" / "a" / "package.json"),
        f"run `npm ci --omit=dev` in {src}",
    )


def test_missing_optional_dependency_is_fine(tmp_path: Path, run_cli: Any) -> None:
    src = node_function(tmp_path / "fn", optionalDependencies={"fsevents": "2"})
    assert build_ok(run_cli, src)["file_count"] == "3"


def test_a_dependency_linked_out_of_the_workspace_is_an_error(tmp_path: Path, run_cli: Any) -> None:
    outside = pkg(tmp_path / "elsewhere" / "evil", "evil")
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    src = node_function(repo / "fn", dependencies={"evil": "1"})
    link(src / "node_modules" / "evil", str(outside))
    run = external(run_cli, {"source_dir": str(src), "output_dir": str(tmp_path / "o")})
    assert_one_line_error(run, "'evil'", str(outside), "allowed_roots")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("{not json", "is not valid JSON"),
        ('["a"]', "must hold a JSON object"),
        ('{"dependencies": {"../../etc": "1"}}', "invalid dependency '../../etc'"),
        ('{"dependencies": {"/abs": "1"}}', "invalid dependency '/abs'"),
        ('{"dependencies": ["a"]}', "dependencies must be an object"),
    ],
)
def test_unusable_package_json_is_named(
    tmp_path: Path, run_cli: Any, content: str, needle: str
) -> None:
    src = tmp_path / "fn"
    write(src / "package.json", content)
    run = external(run_cli, {"source_dir": str(src), "output_dir": str(tmp_path / "o")})
    assert_one_line_error(run, needle, str(src / "package.json"))


@pytest.mark.slow
def test_pnpm_hoisted_links_ship_when_their_targets_do(tmp_path: Path, run_cli: Any) -> None:
    """pnpm's hoist-pattern links every package into node_modules/.pnpm/node_modules, where a
    package that requires one it does not declare finds it (a requires b, which only c
    declares): the links whose targets ship are kept, the others left out."""
    src = node_function(tmp_path / "fn", dependencies={"a": "1", "c": "1"})
    store = src / "node_modules" / ".pnpm"
    pkg(store / "a@1.0.0" / "node_modules" / "a", "a")  # requires b, undeclared
    write(store / "a@1.0.0" / "node_modules" / "a" / "index.js", "module.exports = require('b');\n")
    pkg(store / "b@1.0.0" / "node_modules" / "b", "b")
    pkg(store / "c@1.0.0" / "node_modules" / "c", "c", dependencies={"b": "1"})
    pkg(store / "dev@1.0.0" / "node_modules" / "dev", "dev")  # a devDependency: not shipped
    link(store / "c@1.0.0" / "node_modules" / "b", "../../b@1.0.0/node_modules/b")
    for name in ("a", "c"):
        link(src / "node_modules" / name, f".pnpm/{name}@1.0.0/node_modules/{name}")
    for name in ("a", "b", "c", "dev"):
        link(store / "node_modules" / name, f"../{name}@1.0.0/node_modules/{name}")
    write(src / "handler.js", "exports.handler = async () => require('a');\n")
    data = build_ok(run_cli, src)
    got = manifest(data["output_path"])
    hoisted = {n for n in got if n.startswith("node_modules/.pnpm/node_modules/")}
    hoisted.discard("node_modules/.pnpm/node_modules/")
    assert hoisted == {f"node_modules/.pnpm/node_modules/{n}" for n in ("a", "b", "c")}
    assert got["node_modules/.pnpm/node_modules/b"] == ("link", "777", "../b@1.0.0/node_modules/b")
    task = unzip(data["output_path"], tmp_path / "task")
    ran = invoke(task, None, "handler.handler", {})
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout) == "b@1.0.0"


def test_plan_counts_the_source_maps_and_names_those_the_excludes_left_out(
    tmp_path: Path, run_cli: Any
) -> None:
    src = node_function(tmp_path / "fn")
    write(src / "dist" / "index.js", "exports.x = 1;\n//# sourceMappingURL=index.js.map\n")
    write(src / "dist" / "index.js.map", '{"version": 3}')
    write(
        src / "dist" / "inline.js", "x;\n//# sourceMappingURL=data:application/json;base64,e30=\n"
    )

    def notes(*flags: str) -> list[str]:
        run = run_cli(["plan", "--json", "--source-dir", str(src), *flags])
        assert run.code == 0, run.stderr
        return list(json.loads(run.stdout)["notes"])

    assert notes() == [
        "1 source map ship: set NODE_OPTIONS=--enable-source-maps on the function for stack "
        "traces in the original sources"
    ]
    assert notes("--exclude", "*.map") == [
        "1 source map that shipped code names is left out by the excludes: dist/index.js.map "
        "(named by dist/index.js)"
    ]
    text = run_cli(["plan", "--source-dir", str(src)]).stdout
    assert "notes:\n  1 source map ship: set NODE_OPTIONS=--enable-source-maps" in text
