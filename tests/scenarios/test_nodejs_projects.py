"""Real-world project layouts, on synthetic trees: package_dir, includes, Prisma's generated
client, local packages in a layer, dereference, first-party secrets, Yarn Plug'n'Play and
package-manager state. The same cases on real installs: tests/system/test_projects.py.

docs/design.md, "Dependencies", "Selection" and "Links".
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    MACH_O,
    assert_one_line_error,
    build_ok,
    debug_lines,
    elf,
    external,
    link,
    manifest,
    node_function,
    pkg,
    write,
)

from lambdazip_tf.core.entries import Entry
from lambdazip_tf.core.mounts import check_links
from lambdazip_tf.errors import LinkError
from lambdazip_tf.speed import facts


def _typescript(root: Path) -> Path:
    """package.json and node_modules at the project's root, the compiled handler in dist/."""
    pkg(root, "app", dependencies={"dep": "1.0.0"}, type="module")
    pkg(root / "node_modules" / "dep", "dep")
    pkg(root / "node_modules" / "dev-tool", "dev-tool")  # not a dependency: not shipped
    write(root / "src" / "index.ts", "export const handler = async () => 'ts';\n")
    write(root / "dist" / "index.js", "export const handler = async () => 'js';\n")
    return root


def test_a_source_dir_below_its_package_without_package_dir_is_refused(
    tmp_path: Path, run_cli: Any
) -> None:
    root = _typescript(tmp_path / "app")
    write(root / ".git" / "HEAD", "ref: refs/heads/main\n")  # the default allowed root
    run = external(run_cli, {"source_dir": str(root / "dist")})
    assert_one_line_error(
        run, f"{root / 'package.json'} above it has installed dependencies", "package_dir"
    )
    files = external(run_cli, {"source_dir": str(root / "dist"), "runtime": "files"})
    assert files.code == 0, files.stderr
    assert set(manifest(files.json()["output_path"])) == {"index.js"}


def test_package_dir_ships_the_dependencies_at_the_top_of_the_zip(
    tmp_path: Path, run_cli: Any
) -> None:
    root = _typescript(tmp_path / "app")
    data = build_ok(run_cli, root / "dist", package_dir=str(root))
    names = set(manifest(data["output_path"]))
    assert names == {
        "index.js",
        "package.json",  # for "type": "module"
        "node_modules/",
        "node_modules/dep/",
        "node_modules/dep/package.json",
        "node_modules/dep/index.js",
    }
    plan = run_cli(["plan", "--source-dir", str(root / "dist"), "--package-dir", str(root)])
    assert f"dependencies: {root}/package.json (package_dir)" in plan.stdout
    layered = build_ok(run_cli, root / "dist", package_dir=str(root), layer="true")
    assert set(manifest(layered["output_path"])) == {"index.js", "package.json"}
    assert "nodejs/node_modules/dep/index.js" in manifest(layered["layer_output_path"])


def test_package_dir_must_hold_a_package_json(tmp_path: Path, run_cli: Any) -> None:
    write(tmp_path / "fn" / "index.js", "x")
    run = external(run_cli, {"source_dir": str(tmp_path / "fn"), "package_dir": str(tmp_path)})
    assert_one_line_error(run, f"package_dir {tmp_path} has no package.json")
    missing = external(
        run_cli, {"source_dir": str(tmp_path / "fn"), "package_dir": str(tmp_path / "nope")}
    )
    assert_one_line_error(missing, "is not a folder")
    root = _typescript(tmp_path / "app")
    request = {"source_dir": str(root / "dist"), "package_dir": str(root), "runtime": "files"}
    assert_one_line_error(external(run_cli, request), 'runtime = "files" does not ship')
    nodejs = external(run_cli, {"source_dir": str(root / "dist"), "runtime": "nodejs"})
    assert_one_line_error(nodejs, "runtime nodejs needs", "set package_dir")


def test_includes_force_files_in_after_the_excludes_and_plan_says_why(
    tmp_path: Path, run_cli: Any
) -> None:
    src = node_function(tmp_path / "fn", dependencies={"dep": "1.0.0"})
    pkg(src / "node_modules" / "dep", "dep")
    write(src / "node_modules" / ".generated" / "schema.js", "module.exports = 1;\n")
    write(src / "node_modules" / ".generated" / "notes.txt", "no")
    write(src / "fixtures" / "a.json", "{}")
    write(src / ".env.defaults", "A=1\n")
    request = {
        "excludes": json.dumps(["fixtures/"]),
        "includes": json.dumps(
            ["node_modules/.generated/*.js", "fixtures/a.json", "/.env.defaults"]
        ),
    }
    names = set(manifest(build_ok(run_cli, src, **request)["output_path"]))
    assert {"node_modules/.generated/schema.js", "fixtures/a.json", ".env.defaults"} <= names
    assert "node_modules/.generated/notes.txt" not in names
    args = ["--source-dir", str(src), "--exclude", "fixtures/"]
    args += ["--include", "node_modules/.generated/*.js", "--include", "fixtures/a.json"]
    plan = json.loads(run_cli(["plan", "--json", *args]).stdout)
    assert {"arc": "fixtures/a.json", "reason": "includes"} in plan["forced"]
    text = run_cli(["plan", *args]).stdout
    assert "in, though no package declares them:" in text
    assert "  node_modules/.generated/schema.js  (includes)" in text


def test_links_that_includes_match_go_through_the_link_policy(tmp_path: Path, run_cli: Any) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    src = node_function(repo / "fn")
    write(src / "static" / "logo.svg", "<svg/>")
    link(src / "assets" / "logo.svg", "../static/logo.svg")
    request = {"excludes": json.dumps(["assets/"]), "includes": json.dumps(["assets/*.svg"])}
    names = manifest(build_ok(run_cli, src, **request)["output_path"])
    assert names["assets/logo.svg"] == ("link", "777", "../static/logo.svg")
    named = {"excludes": json.dumps(["assets/"]), "includes": json.dumps(["assets/logo.svg"])}
    assert "assets/logo.svg" in manifest(build_ok(run_cli, src, **named)["output_path"])
    link(src / "assets" / "passwd.svg", "/etc/passwd")
    run = external(run_cli, {"source_dir": str(src), "output_dir": str(tmp_path / "o"), **request})
    assert_one_line_error(run, "passwd.svg", "outside the function and allowed_roots")


def test_the_fast_paths_see_a_new_file_that_includes_or_prisma_would_force_in(
    tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(facts, "RACY_NS", 0)
    src = _prisma(tmp_path / "fn", {})
    write(src / "node_modules" / ".generated" / "a.js", "1")
    request = {
        "source_dir": str(src),
        "output_dir": str(tmp_path / "out"),
        "includes": json.dumps(["node_modules/.generated/"]),
    }
    first = manifest(external(run_cli, request).json()["output_path"])
    assert "node_modules/.generated/a.js" in first
    noop = debug_lines(run_cli, request, monkeypatch)
    assert "layout:" not in noop
    write(src / "node_modules" / ".generated" / "b.js", "2")
    write(src / "node_modules" / ".prisma" / "client" / "edge-extra.js", "3")
    again = external(run_cli, request)
    names = set(manifest(again.json()["output_path"]))
    assert "node_modules/.generated/b.js" in names
    assert "node_modules/.prisma/client/edge-extra.js" in names


def _prisma(src: Path, engines: dict[str, bytes]) -> Path:
    node_function(src, dependencies={"@prisma/client": "5.22.0"})
    client = pkg(src / "node_modules" / "@prisma" / "client", "@prisma/client", "5.22.0")
    write(client / "index.js", "module.exports = require('.prisma/client/default');\n")
    generated = src / "node_modules" / ".prisma" / "client"
    write(generated / "default.js", "module.exports = { PrismaClient: class {} };\n")
    write(generated / "schema.prisma", 'generator client { provider = "prisma-client-js" }\n')
    for name, head in engines.items():
        (generated / name).write_bytes(head)
    return src


def test_prismas_generated_client_ships_with_its_engine_for_the_target_only(
    tmp_path: Path, run_cli: Any
) -> None:
    engines = {
        "libquery_engine-darwin-arm64.dylib.node": MACH_O,
        "libquery_engine-rhel-openssl-3.0.x.so.node": elf(62),
        "libquery_engine-linux-arm64-openssl-3.0.x.so.node": elf(183),
    }
    src = _prisma(tmp_path / "fn", engines)
    for architecture, kept in (
        ("x86_64", "libquery_engine-rhel-openssl-3.0.x.so.node"),
        ("arm64", "libquery_engine-linux-arm64-openssl-3.0.x.so.node"),
    ):
        data = build_ok(run_cli, src, architecture=architecture)
        names = set(manifest(data["output_path"]))
        assert "node_modules/.prisma/client/default.js" in names
        assert "node_modules/.prisma/client/schema.prisma" in names
        shipped = {n.rpartition("/")[2] for n in names if "query_engine" in n}
        assert shipped == {kept}
        args = ["--source-dir", str(src), "--architecture", architecture]
        plan = json.loads(run_cli(["plan", "--json", *args]).stdout)
        assert {
            "arc": "node_modules/.prisma/client",
            "reason": "generated Prisma client, required by @prisma/client",
        } in plan["forced"]
        left = {x["path"].rpartition("/")[2] for x in plan["excluded"]}
        assert "libquery_engine-darwin-arm64.dylib.node" in left


def test_a_prisma_client_that_was_never_generated_is_warned_of(
    tmp_path: Path, run_cli: Any
) -> None:
    src = _prisma(tmp_path / "fn", {})
    shutil.rmtree(src / "node_modules" / ".prisma")
    run = external(run_cli, {"source_dir": str(src), "output_dir": str(tmp_path / "out")})
    assert run.code == 0, run.stderr
    assert run.json()["output_path"]
    assert "@prisma/client@5.22.0 ships without a generated client" in run.stderr
    assert "npx prisma generate" in run.stderr
    assert len(run.stderr.splitlines()) == 1


def test_a_prisma_client_generated_for_a_mac_only_names_prismas_fix(
    tmp_path: Path, run_cli: Any
) -> None:
    src = _prisma(tmp_path / "fn", {"libquery_engine-darwin-arm64.dylib.node": MACH_O})
    run = external(run_cli, {"source_dir": str(src), "output_dir": str(tmp_path / "out")})
    assert_one_line_error(
        run,
        "the generated Prisma client ships node_modules/.prisma/client/libquery_engine-darwin",
        'add "rhel-openssl-3.0.x" to binaryTargets in schema.prisma',
        "npx prisma generate",
    )


def test_a_local_package_used_from_the_layer_has_its_files_in_the_layer(
    tmp_path: Path, run_cli: Any
) -> None:
    src = node_function(tmp_path / "fn", dependencies={"local-utils": "file:packages/local-utils"})
    local = pkg(src / "packages" / "local-utils", "local-utils", dependencies={"ms": "2"})
    pkg(local / "node_modules" / "ms", "ms", "2.1.3")  # its own dependency, nested
    link(src / "node_modules" / "local-utils", "../packages/local-utils")
    data = build_ok(run_cli, src, layer="true")
    layer = manifest(data["layer_output_path"])
    assert layer["nodejs/node_modules/local-utils/index.js"][0] == "file"
    assert layer["nodejs/node_modules/ms/index.js"][0] == "file"
    assert not [n for n, (kind, _, _) in layer.items() if kind == "link"]


def test_a_link_that_would_dangle_where_lambda_mounts_the_zips_is_refused(
    tmp_path: Path, run_cli: Any
) -> None:
    src = node_function(tmp_path / "fn", dependencies={"dep": "1.0.0"})
    pkg(src / "node_modules" / "dep", "dep")
    link(src / "dep-entry.js", "node_modules/dep/index.js")  # into what the layer takes
    run = external(
        run_cli, {"source_dir": str(src), "output_dir": str(tmp_path / "o"), "layer": "true"}
    )
    assert_one_line_error(
        run,
        "link dep-entry.js -> node_modules/dep/index.js in the function zip leads to "
        "/var/task/node_modules/dep/index.js",
        'symlinks = "dereference"',
    )
    fixed = build_ok(run_cli, src, layer="true", symlinks="dereference")
    assert manifest(fixed["output_path"])["dep-entry.js"][0] == "file"


def test_links_are_followed_across_both_mounts() -> None:
    def entry(arc: str, target: str | None = None) -> Entry:
        return Entry(arc, "link" if target else "file", 0o644, target=target)

    layer = [entry("nodejs/node_modules/a", ".store/a"), entry("nodejs/node_modules/.store/a")]
    check_links([entry("x.js")], layer)
    check_links([entry("lib", "/opt/nodejs/node_modules/.store/a")], layer)
    with pytest.raises(LinkError, match="leads to /opt/nodejs/node_modules/b"):
        check_links([entry("lib", "/opt/nodejs/node_modules/b")], layer)
    with pytest.raises(LinkError, match="a link cycle"):
        check_links([entry("a", "b"), entry("b", "a")], None)


def _pnpm_like(src: Path) -> Path:
    """pnpm's layout: top-level links into .pnpm, sibling links between packages."""
    node_function(src, dependencies={"a": "1.0.0"})
    store = src / "node_modules" / ".pnpm"
    pkg(store / "a@1.0.0" / "node_modules" / "a", "a", dependencies={"b": "1.0.0"})
    pkg(store / "b@1.0.0" / "node_modules" / "b", "b")
    link(store / "a@1.0.0" / "node_modules" / "b", "../../b@1.0.0/node_modules/b")
    link(src / "node_modules" / "a", ".pnpm/a@1.0.0/node_modules/a")
    return src


def test_dereference_stores_dependency_links_as_files_where_node_finds_them(
    tmp_path: Path, run_cli: Any
) -> None:
    src = _pnpm_like(tmp_path / "fn")
    kept = manifest(build_ok(run_cli, src)["output_path"])
    assert kept["node_modules/a"] == ("link", "777", ".pnpm/a@1.0.0/node_modules/a")
    flat = manifest(build_ok(run_cli, src, symlinks="dereference")["output_path"])
    assert not [n for n, (kind, _, _) in flat.items() if kind == "link"]
    assert flat["node_modules/a/index.js"][0] == "file"
    assert flat["node_modules/b/index.js"][0] == "file"
    assert not [n for n in flat if ".pnpm" in n]


def test_first_party_packages_get_the_default_secret_excludes(tmp_path: Path, run_cli: Any) -> None:
    root = tmp_path / "repo"
    write(root / "package.json", json.dumps({"name": "repo", "workspaces": ["packages/*"]}))
    src = node_function(root / "fn", dependencies={"shared": "1.0.0", "dep": "1.0.0"})
    shared = pkg(root / "packages" / "shared", "shared")
    for secret in (".env.local", ".npmrc", "key.pem", "id_rsa", ".git/config"):
        write(shared / secret, "secret")
    link(root / "node_modules" / "shared", "../packages/shared")
    dep = pkg(root / "node_modules" / "dep", "dep")  # from a registry: shipped as published
    write(dep / ".npmrc", "published")
    names = set(manifest(build_ok(run_cli, src)["output_path"]))
    assert "node_modules/shared/index.js" in names
    assert not [n for n in names if n.startswith("node_modules/shared/.") or ".pem" in n]
    assert "node_modules/shared/id_rsa" not in names
    assert "node_modules/dep/.npmrc" in names
    plan = json.loads(run_cli(["plan", "--json", "--source-dir", str(src)]).stdout)
    left = {x["path"]: x["reason"] for x in plan["excluded"]}
    assert "likely secret" in left["node_modules/shared/.env.local"]
    assert "node_modules/shared/.git" in left


def test_package_manager_state_is_left_out_of_the_functions_files(
    tmp_path: Path, run_cli: Any
) -> None:
    src = node_function(tmp_path / "fn")
    for path in (
        ".yarn/install-state.gz",
        ".yarn/cache/ms-npm-2.1.3.zip",
        ".yarnrc.yml",
        ".yarnrc",
        ".pnpm-store/v3/files/00/ab",
        ".npm/_cacache/index",
    ):
        write(src / path, "state")
    names = set(manifest(build_ok(run_cli, src)["output_path"]))
    assert names == {"package.json", "index.js", "handler.js"}


@pytest.mark.parametrize("pnp", [".pnp.cjs", ".pnp.loader.mjs"])
def test_a_yarn_plug_n_play_install_is_named_with_its_setting(
    tmp_path: Path, run_cli: Any, pnp: str
) -> None:
    src = node_function(tmp_path / "fn", dependencies={"ms": "2.1.3"})
    write(src / "yarn.lock", "__metadata:\n  version: 8\n")
    write(src / pnp, "// pnp\n")
    run = external(run_cli, {"source_dir": str(src), "output_dir": str(tmp_path / "o")})
    assert_one_line_error(
        run,
        f"is a Yarn Plug'n'Play install ({pnp}), which lambdazip-tf does not support",
        f"set `nodeLinker: node-modules` in {src / '.yarnrc.yml'}",
    )


@pytest.mark.parametrize(
    ("lockfile", "text", "production", "everything"),
    [
        ("package-lock.json", "{}", "npm ci --omit=dev", "npm ci"),
        ("pnpm-lock.yaml", "lockfileVersion: '9.0'\n", "pnpm install --prod", "pnpm install"),
        ("yarn.lock", "# yarn lockfile v1\n", "yarn install --production", "yarn install"),
        ("yarn.lock", "__metadata:\n  version: 8\n", "yarn install --immutable", None),
    ],
)
def test_the_fix_for_a_missing_package_installs_what_the_request_ships(
    tmp_path: Path,
    run_cli: Any,
    lockfile: str,
    text: str,
    production: str,
    everything: str | None,
) -> None:
    src = node_function(tmp_path / "fn", dependencies={"ms": "2"}, devDependencies={"t": "1"})
    write(src / lockfile, text)
    pkg(src / "node_modules" / "ms", "ms")
    dev = external(
        run_cli,
        {
            "source_dir": str(src),
            "output_dir": str(tmp_path / "o"),
            "include_dev_dependencies": "true",
        },
    )
    fix = everything or production
    assert_one_line_error(dev, "package 't' is required by", f"run `{fix}")
    assert "--omit=dev" not in dev.stderr and "--prod" not in dev.stderr
    (src / "node_modules" / "ms" / "package.json").unlink()
    (src / "node_modules" / "ms" / "index.js").unlink()
    (src / "node_modules" / "ms").rmdir()
    prod = external(run_cli, {"source_dir": str(src), "output_dir": str(tmp_path / "o")})
    assert_one_line_error(prod, "package 'ms' is required by", f"run `{production}")


def test_a_source_dir_below_its_package_is_refused_in_a_checkout_without_git(
    tmp_path: Path, run_cli: Any
) -> None:
    """A CI stage that unpacks the sources from an artifact has no .git, so no allowed root
    above source_dir: the package above is still found (reading a package.json is not
    zipping it), up to the nearest one."""
    root = _typescript(tmp_path / "unpacked" / "app")
    run = external(run_cli, {"source_dir": str(root / "dist")})
    assert_one_line_error(
        run, f"{root / 'package.json'} above it has installed dependencies", "package_dir"
    )
    # The nearest package above decides: one without dependencies ends the search.
    plain = root / "tools"
    pkg(plain, "tools")
    write(plain / "scripts" / "run.js", "console.log('x');\n")
    built = external(run_cli, {"source_dir": str(plain / "scripts"), "runtime": "files"})
    assert built.code == 0, built.stderr
    nearest = external(run_cli, {"source_dir": str(plain / "scripts")})
    assert nearest.code == 0, nearest.stderr
