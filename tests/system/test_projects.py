"""Real-world project layouts on real installs: npm, pnpm, Yarn 1 and Yarn 4 from the registry
(`make tools` puts pnpm and both Yarns in .tools/), Node as the oracle inside the unpacked zip,
and each handler run as Lambda runs it (code at /var/task, layer at /opt, unprivileged user).

docs/design.md, "Dependencies", "Selection" and "Links". Versions are pinned.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    PNPM,
    YARN1,
    YARN4,
    assert_one_line_error,
    external,
    manifest,
    run_ok,
    unzip,
    write,
)
from nodejs_oracle import edges_agree, invoke

pytestmark = pytest.mark.slow
MS, DEBUG = "2.1.3", "4.3.7"  # debug depends on ms: a dependency with one of its own
CJS_HANDLER = (
    "const debug = require('debug');\n"
    "exports.handler = async () => ({ debug: typeof debug, ms: require('ms')(60000) });\n"
)


def _npm(folder: Path, *flags: str) -> None:
    run_ok(["npm", "install", *flags, "--no-audit", "--no-fund", "--loglevel=error"], folder)


def _yarn4_env() -> dict[str, str]:
    """Yarn 4 reads its registry from its own settings, not npm's: the one npm uses here. CI
    sets CI=true, under which Yarn 4 refuses to write a new lockfile."""
    registry = subprocess.run(
        ["npm", "config", "get", "registry"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return {
        **os.environ,
        "YARN_NPM_REGISTRY_SERVER": registry,
        "YARN_ENABLE_IMMUTABLE_INSTALLS": "false",
        "YARN_ENABLE_TELEMETRY": "false",
        "YARN_ENABLE_GLOBAL_CACHE": "false",
    }


def _project(folder: Path, **fields: Any) -> Path:
    """A function folder with the CommonJS handler and a package.json."""
    data = {"name": folder.name, "version": "1.0.0", **fields}
    write(folder / "package.json", json.dumps(data, indent=2))
    write(folder / "index.js", CJS_HANDLER)
    return folder


def _build(run_cli: Any, src: Path, out: Path, **extra: str) -> Any:
    return external(run_cli, {"source_dir": str(src), "output_dir": str(out), **extra})


def _runs(zip_path: str, tmp_path: Path, layer_zip: str | None = None) -> dict[str, Any]:
    """The handler's answer, run from the unpacked zips as Lambda runs it."""
    function = unzip(zip_path, tmp_path / "task")
    layer = unzip(layer_zip, tmp_path / "opt") if layer_zip else None
    run = invoke(function, layer, "index.handler", {})
    assert run.returncode == 0, run.stderr
    answer: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return answer


def _links(zip_path: str) -> list[str]:
    return [name for name, (kind, _, _) in manifest(zip_path).items() if kind == "link"]


def test_a_typescript_project_ships_its_root_dependencies_with_dist(
    tmp_path: Path, run_cli: Any
) -> None:
    root = tmp_path / "app"
    manifest_fields = {"type": "module", "dependencies": {"ms": MS}}
    write(root / "package.json", json.dumps({"name": "app", "version": "1.0.0", **manifest_fields}))
    write(root / "src" / "index.ts", "import ms from 'ms';\nexport const handler = ...\n")
    write(
        root / "dist" / "index.js",
        "import ms from 'ms';\nexport const handler = async () => ({ ms: ms(60000) });\n",
    )
    run_ok(["git", "init", "-q"], root)
    _npm(root)
    dist = root / "dist"
    refused = _build(run_cli, dist, tmp_path / "o")
    assert_one_line_error(refused, "has installed dependencies", f'package_dir = "{root}"')
    built = _build(run_cli, dist, tmp_path / "out", package_dir=str(root))
    assert built.code == 0, built.stderr
    path = built.json()["output_path"]
    assert {"index.js", "package.json", "node_modules/ms/index.js"} <= set(manifest(path))
    assert not [n for n in manifest(path) if n.startswith(("src/", "dist/"))]
    assert _runs(path, tmp_path) == {"ms": "1m"}  # ESM: "type" came with package.json
    edges_agree(root, root, unzip(path, tmp_path / "unpacked"))


def test_the_fix_for_dev_dependencies_left_out_by_npm_is_a_command_that_installs_them(
    tmp_path: Path, run_cli: Any
) -> None:
    src = _project(tmp_path / "fn", dependencies={"ms": MS}, devDependencies={"debug": DEBUG})
    _npm(src, "--omit=dev")
    request = {"include_dev_dependencies": "true"}
    refused = _build(run_cli, src, tmp_path / "o", **request)
    assert_one_line_error(refused, "package 'debug' is required by", f"run `npm ci` in {src}")
    run_ok(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], src)  # what it names
    built = _build(run_cli, src, tmp_path / "out", **request)
    assert built.code == 0, built.stderr
    assert _runs(built.json()["output_path"], tmp_path) == {"debug": "function", "ms": "1m"}


@pytest.mark.parametrize("manager", ["npm", "pnpm"])
def test_prismas_generated_client_ships_and_loads(
    tmp_path: Path, run_cli: Any, manager: str
) -> None:
    # The client's install writes .prisma/client beside it (no engine downloads: no schema,
    # so no `prisma generate`); requiring the client needs it. pnpm runs the install script
    # only for packages it is told to build.
    pnpm = {"onlyBuiltDependencies": ["@prisma/client"]}
    src = _project(tmp_path / "fn", dependencies={"@prisma/client": "5.22.0"}, pnpm=pnpm)
    write(
        src / "index.js",
        "const { PrismaClient } = require('@prisma/client');\n"
        "exports.handler = async () => ({ client: typeof PrismaClient });\n",
    )
    if manager == "pnpm":
        # Without its side-effects cache, so that the script runs on every install: a cached
        # result restores only the client's own folder, not .prisma beside it.
        run_ok(
            [str(PNPM), "install", "--reporter=silent", "--config.side-effects-cache=false"], src
        )
        where = "node_modules/.pnpm/@prisma+client@5.22.0/node_modules/.prisma/client"
    else:
        _npm(src)
        where = "node_modules/.prisma/client"
    assert (src / where / "default.js").is_file()
    built = _build(run_cli, src, tmp_path / "out")
    assert built.code == 0, built.stderr
    path = built.json()["output_path"]
    assert f"{where}/default.js" in manifest(path)
    assert _runs(path, tmp_path) == {"client": "function"}
    plan = run_cli(["plan", "--source-dir", str(src)]).stdout
    assert f"{where}  (generated Prisma client" in plan


def test_a_local_package_in_the_function_folder_goes_into_the_layer(
    tmp_path: Path, run_cli: Any
) -> None:
    src = _project(tmp_path / "fn", dependencies={"local-utils": "file:packages/local-utils"})
    write(
        src / "index.js",
        "const utils = require('local-utils');\n"
        "exports.handler = async () => ({ utils: utils.minute() });\n",
    )
    local = src / "packages" / "local-utils"
    fields = {"name": "local-utils", "version": "1.0.0", "dependencies": {"ms": MS}}
    write(local / "package.json", json.dumps(fields))
    write(local / "index.js", "exports.minute = () => require('ms')(60000);\n")
    _npm(src)
    assert (src / "node_modules" / "local-utils").is_symlink()
    built = _build(run_cli, src, tmp_path / "out", layer="true")
    assert built.code == 0, built.stderr
    result = built.json()
    layer = manifest(result["layer_output_path"])
    assert layer["nodejs/node_modules/local-utils/index.js"][0] == "file"
    assert _runs(result["output_path"], tmp_path, result["layer_output_path"]) == {"utils": "1m"}


@pytest.mark.parametrize("manager", ["pnpm", "npm-linked"])
def test_dereference_stores_every_dependency_link_as_files(
    tmp_path: Path, run_cli: Any, manager: str
) -> None:
    src = _project(tmp_path / "fn", dependencies={"debug": DEBUG, "ms": MS})
    if manager == "pnpm":
        run_ok([str(PNPM), "install", "--reporter=silent"], src)
    else:
        _npm(src, "--install-strategy=linked")
    assert (src / "node_modules" / "debug").is_symlink()
    kept = _build(run_cli, src, tmp_path / "kept")
    assert kept.code == 0, kept.stderr
    assert _links(kept.json()["output_path"])
    built = _build(run_cli, src, tmp_path / "out", symlinks="dereference")
    assert built.code == 0, built.stderr
    path = built.json()["output_path"]
    assert _links(path) == []
    unpacked = unzip(path, tmp_path / "unpacked")
    edges = edges_agree(src, src, unpacked)
    assert {(e.package.partition("@")[0], e.name) for e in edges} >= {("debug", "ms")}
    assert _runs(path, tmp_path) == {"debug": "function", "ms": "1m"}


def test_a_workspace_package_ships_without_its_secrets(tmp_path: Path, run_cli: Any) -> None:
    root = tmp_path / "repo"
    write(
        root / "package.json",
        json.dumps({"name": "repo", "private": True, "workspaces": ["packages/*", "fn"]}),
    )
    src = _project(root / "fn", dependencies={"shared": "1.0.0"})
    write(
        src / "index.js",
        "exports.handler = async () => ({ shared: require('shared').minute() });\n",
    )
    shared = root / "packages" / "shared"
    write(
        shared / "package.json",
        json.dumps({"name": "shared", "version": "1.0.0", "dependencies": {"ms": MS}}),
    )
    write(shared / "index.js", "exports.minute = () => require('ms')(60000);\n")
    for secret in (".env.local", ".npmrc", "deploy.pem"):
        write(shared / secret, "TOKEN=secret\n")
    _npm(root)
    built = _build(run_cli, src, tmp_path / "out")
    assert built.code == 0, built.stderr
    path = built.json()["output_path"]
    names = set(manifest(path))
    assert "node_modules/shared/index.js" in names
    assert not {n for n in names if n.rpartition("/")[2] in (".env.local", ".npmrc", "deploy.pem")}
    assert _runs(path, tmp_path) == {"shared": "1m"}


def test_a_file_dependency_pnpm_copied_ships_without_its_secrets(
    tmp_path: Path, run_cli: Any
) -> None:
    src = _project(tmp_path / "fn", dependencies={"local": "file:local"})
    write(src / "index.js", "exports.handler = async () => ({ local: require('local') });\n")
    write(src / "local" / "package.json", json.dumps({"name": "local", "version": "1.0.0"}))
    write(src / "local" / "index.js", "module.exports = 'local';\n")
    write(src / "local" / ".env", "TOKEN=secret\n")
    run_ok([str(PNPM), "install", "--reporter=silent"], src)
    copied = list((src / "node_modules" / ".pnpm").glob("local@file+*/node_modules/local/.env"))
    assert copied, "pnpm copies a file: folder into its store, .env included"
    built = _build(run_cli, src, tmp_path / "out", excludes='["/local/"]')
    assert built.code == 0, built.stderr
    path = built.json()["output_path"]
    assert not [n for n in manifest(path) if n.endswith("/.env")]
    assert _runs(path, tmp_path) == {"local": "local"}


def test_yarn_4s_plug_n_play_is_refused_with_the_setting_that_fixes_it(
    tmp_path: Path, run_cli: Any
) -> None:
    src = _project(tmp_path / "fn", dependencies={"debug": DEBUG, "ms": MS})
    env = _yarn4_env()
    run_ok([str(YARN4), "install"], src, env)
    assert (src / ".pnp.cjs").is_file() and not (src / "node_modules").exists()
    refused = _build(run_cli, src, tmp_path / "o")
    assert_one_line_error(
        refused, "Yarn Plug'n'Play install (.pnp.cjs)", "`nodeLinker: node-modules`"
    )
    # The fix the line names, done: then the build ships and the handler runs.
    write(src / ".yarnrc.yml", "nodeLinker: node-modules\n")
    run_ok([str(YARN4), "install"], src, env)
    built = _build(run_cli, src, tmp_path / "out")
    assert built.code == 0, built.stderr
    path = built.json()["output_path"]
    names = set(manifest(path))
    assert not [n for n in names if n.startswith((".yarn", ".pnp"))]
    assert ".yarnrc.yml" not in names
    assert _runs(path, tmp_path) == {"debug": "function", "ms": "1m"}
    edges_agree(src, src, unzip(path, tmp_path / "unpacked"))


def test_yarn_1_installs_ship_and_its_fix_is_its_own(tmp_path: Path, run_cli: Any) -> None:
    src = _project(tmp_path / "fn", dependencies={"debug": DEBUG}, devDependencies={"ms": MS})
    write(src / ".yarnrc", "--install.frozen-lockfile false\n")
    run_ok([str(YARN1), "install", "--production", "--no-progress", "--silent"], src)
    # ms is debug's dependency too, so production installs it; the handler needs only debug.
    write(src / "index.js", "exports.handler = async () => ({ debug: typeof require('debug') });\n")
    built = _build(run_cli, src, tmp_path / "out")
    assert built.code == 0, built.stderr
    path = built.json()["output_path"]
    assert ".yarnrc" not in manifest(path)
    assert _runs(path, tmp_path) == {"debug": "function"}
    with_dev = _build(run_cli, src, tmp_path / "dev", include_dev_dependencies="true")
    assert with_dev.code == 0, with_dev.stderr  # ms is installed: as debug's dependency
    shutil.rmtree(src / "node_modules" / "debug")
    missing = _build(run_cli, src, tmp_path / "m")
    assert_one_line_error(missing, "yarn install --production --frozen-lockfile")


@pytest.mark.parametrize("hoisting", ["default", "shamefully-hoist"])
def test_pnpms_hoisted_links_let_a_package_find_what_it_does_not_declare(
    tmp_path: Path, run_cli: Any, hoisting: str
) -> None:
    """A real pnpm install of packages packed by npm: `a` requires `b` without declaring it
    (as puppeteer-extra requires its plugins), `c` declares `b`. Node finds `b` from `a`
    through pnpm's hoisted links (node_modules/.pnpm/node_modules, or the top level with
    shamefully-hoist): the zip keeps those whose targets ship, and the handler runs."""
    packed = tmp_path / "packed"
    packed.mkdir()
    for name, dependencies in (("a", {}), ("b", {}), ("c", {"b": "file:../packed/b-1.0.0.tgz"})):
        folder = tmp_path / "sources" / name
        body = {"name": name, "version": "1.0.0", "main": "index.js", "dependencies": dependencies}
        write(folder / "package.json", json.dumps(body))
        code = (
            "module.exports = require('b');\n" if name == "a" else f"module.exports = '{name}';\n"
        )
        write(folder / "index.js", code)
        run_ok(["npm", "pack", "--silent", "--pack-destination", str(packed)], folder)
    src = tmp_path / "fn"
    deps = {n: f"file:../packed/{n}-1.0.0.tgz" for n in ("a", "c")}
    write(
        src / "package.json", json.dumps({"name": "fn", "version": "1.0.0", "dependencies": deps})
    )
    write(src / "index.js", "exports.handler = async () => require('a');\n")
    flags = ["--shamefully-hoist"] if hoisting == "shamefully-hoist" else []
    run_ok([str(PNPM), "install", "--reporter=silent", *flags], src)
    run = external(run_cli, {"source_dir": str(src), "output_dir": str(tmp_path / "out")})
    assert run.code == 0, run.stderr
    names = set(manifest(run.json()["output_path"]))
    hoisted = (
        "node_modules/b" if hoisting == "shamefully-hoist" else "node_modules/.pnpm/node_modules/b"
    )
    assert hoisted in names
    task = unzip(run.json()["output_path"], tmp_path / "task")
    ran = invoke(task, None, "index.handler", {})
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout) == "b"
