"""Real npm and pnpm installs, Node as the oracle, handlers run the way Lambda runs them.

The projects are the committed examples, installed once per test session from their lockfiles
WITH devDependencies, so that leaving dev packages out is the tool's doing, not npm's.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from helpers import EXAMPLES, PNPM, ROOT, external, manifest, run_ok, unzip
from nodejs_oracle import edges_agree, invoke

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The examples copied out of the repository and installed for real."""
    assert PNPM.exists(), "pnpm is missing: run `make tools` (make test does)"
    base = tmp_path_factory.mktemp("projects")
    out: dict[str, Path] = {}
    for name in ("commonjs", "esm-layer", "pnpm", "monorepo", "typescript"):
        shutil.copytree(
            EXAMPLES / name, base / name, ignore=shutil.ignore_patterns("node_modules", ".*")
        )
    npm = ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"]
    run_ok(npm, base / "commonjs" / "src")
    run_ok(npm, base / "esm-layer" / "src")
    run_ok(npm, base / "monorepo")
    run_ok(npm, base / "typescript")
    run_ok([str(PNPM), "install", "--frozen-lockfile", "--reporter=silent"], base / "pnpm" / "src")
    out["commonjs"] = base / "commonjs" / "src"
    out["esm"] = base / "esm-layer" / "src"
    out["pnpm"] = base / "pnpm" / "src"
    out["monorepo"] = base / "monorepo"
    out["typescript"] = base / "typescript"
    # The same dependencies as the pnpm project, installed by npm, for the size comparison.
    same = base / "pnpm-as-npm"
    same.mkdir()
    shutil.copy(base / "pnpm" / "src" / "package.json", same)
    shutil.copy(base / "pnpm" / "src" / "index.js", same)
    run_ok(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"], same)
    out["pnpm-as-npm"] = same
    return out


def _build(run_cli: Any, src: Path, out: Path, **extra: str) -> dict[str, str]:
    run = external(run_cli, {"source_dir": str(src), "output_dir": str(out), **extra})
    assert run.code == 0, run.stderr
    return run.json()


def _packages(names: dict[str, Any], prefix: str = "") -> set[str]:
    found = set()
    for name in names:
        rest = name.removeprefix(prefix)
        if rest.startswith("node_modules/") and rest.endswith("/package.json"):
            found.add(rest.removeprefix("node_modules/").removesuffix("/package.json"))
    return found


def test_npm_commonjs_ships_production_packages_and_runs(
    projects: dict[str, Path], run_cli: Any, tmp_path: Path
) -> None:
    src = projects["commonjs"]
    assert (src / "node_modules" / "is-number").is_dir()  # dev dependency installed...
    assert (src / "node_modules" / "@aws-sdk" / "util-utf8-browser").is_dir()
    data = _build(run_cli, src, tmp_path / "out")
    got = manifest(data["output_path"])
    assert _packages(got) == {"debug", "ms", "uuid"}  # ...but not shipped, nor @aws-sdk, tslib
    unpacked = unzip(data["output_path"], tmp_path / "task")
    edges = edges_agree(src, src, unpacked)
    assert {(e.package.split("@")[0], e.name) for e in edges} >= {("debug", "ms")}
    run = invoke(unpacked, None, "index.handler", {"name": "lambda"})
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["greeting"] == "hello lambda"
    assert result["timeout"] == 172800000


def test_the_typescript_example_compiles_and_ships_dist_with_the_roots_dependencies(
    projects: dict[str, Path], run_cli: Any, tmp_path: Path
) -> None:
    root = projects["typescript"]
    committed = {name: (root / "dist" / name).read_text() for name in ("index.js", "index.js.map")}
    run_ok(["npx", "tsc"], root)  # the committed dist/ is what the compiler makes of src/
    assert {name: (root / "dist" / name).read_text() for name in committed} == committed
    data = _build(run_cli, root / "dist", tmp_path / "out", package_dir=str(root))
    got = manifest(data["output_path"])
    assert _packages(got) == {"ms"}  # not typescript or @types/ms, installed for development
    assert {n for n in got if not n.startswith("node_modules/")} == {
        "index.js",
        "index.js.map",
        "package.json",
    }
    unpacked = unzip(data["output_path"], tmp_path / "task")
    edges_agree(root, root, unpacked)
    run = invoke(unpacked, None, "index.handler", {"seconds": 7200})
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"waited": "2h"}
    failed = invoke(unpacked, None, "index.handler", {"seconds": -1}, "--enable-source-maps")
    assert failed.returncode != 0
    assert "at Module.handler (/var/src/index.ts:11:11)" in failed.stderr  # mapped to src/
    plan = run_cli(["plan", "--source-dir", str(root / "dist"), "--package-dir", str(root)])
    assert "2 dev-only packages, installed but not shipped: typescript@5.6.3" in plan.stdout
    assert "1 source map ship: set NODE_OPTIONS=--enable-source-maps" in plan.stdout


def test_npm_esm_with_dependencies_in_the_zip_runs(
    projects: dict[str, Path], run_cli: Any, tmp_path: Path
) -> None:
    src = projects["esm"]
    data = _build(run_cli, src, tmp_path / "out")
    assert _packages(manifest(data["output_path"])) == {"nanoid", "debug", "ms"}
    unpacked = unzip(data["output_path"], tmp_path / "task")
    edges = edges_agree(src, src, unpacked)
    function_edges = [e for e in edges if e.package == "<function>"]
    # import.meta.resolve was asked too: the function is "type": "module".
    assert all(e.artifact[1] is not None for e in function_edges), function_edges
    assert {e.artifact[1] for e in function_edges} == {"nanoid@5.0.9", "debug@4.3.7"}
    run = invoke(unpacked, None, "index.handler", {"name": "esm"})
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"id": 8, "greeting": "hello esm", "module": "esm"}


def test_esm_with_dependencies_in_a_layer_needs_the_node_modules_link(
    projects: dict[str, Path], run_cli: Any, tmp_path: Path
) -> None:
    src = projects["esm"]
    data = _build(
        run_cli, src, tmp_path / "out", layer="true", node_modules_link="/opt/nodejs/node_modules"
    )
    function = unzip(data["output_path"], tmp_path / "task")
    layer = unzip(data["layer_output_path"], tmp_path / "opt")
    assert _packages(manifest(data["layer_output_path"]), "nodejs/") == {"nanoid", "debug", "ms"}
    run = invoke(function, layer, "index.handler", {"name": "layer"})
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["greeting"] == "hello layer"
    # The bug the link fixes: ESM ignores NODE_PATH, so without the link the import fails.
    plain = _build(run_cli, src, tmp_path / "out2", layer="true")
    bare = unzip(plain["output_path"], tmp_path / "task2")
    layer2 = unzip(plain["layer_output_path"], tmp_path / "opt2")
    failed = invoke(bare, layer2, "index.handler", {"name": "layer"})
    assert failed.returncode != 0
    assert "ERR_MODULE_NOT_FOUND" in failed.stderr
    assert "nanoid" in failed.stderr


def test_pnpm_zip_keeps_links_and_stays_near_the_npm_size(
    projects: dict[str, Path], run_cli: Any, tmp_path: Path
) -> None:
    src = projects["pnpm"]
    assert (src / "node_modules" / "debug").is_symlink()
    data = _build(run_cli, src, tmp_path / "out")
    got = manifest(data["output_path"])
    links = {name: target for name, (kind, _, target) in got.items() if kind == "link"}
    assert links["node_modules/debug"].startswith(".pnpm/debug@4.3.7")
    assert any(name.startswith("node_modules/.pnpm/debug@4.3.7/node_modules/ms") for name in links)
    assert int(data["symlink_count"]) == len(links) >= 4
    assert not any("is-number" in name for name in got)  # devDependency, installed, not shipped
    npm_data = _build(run_cli, projects["pnpm-as-npm"], tmp_path / "npm-out")
    assert int(data["output_size"]) <= 1.1 * int(npm_data["output_size"]), (data, npm_data)
    unpacked = unzip(data["output_path"], tmp_path / "task")
    edges_agree(src, src, unpacked)
    run = invoke(unpacked, None, "index.handler", {"name": "pnpm"})
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"ok": True, "idLength": 36, "greeting": "hello pnpm"}


def test_npm_workspaces_function_gets_its_workspace_package_as_files(
    projects: dict[str, Path], run_cli: Any, tmp_path: Path
) -> None:
    repo = projects["monorepo"]
    src = repo / "functions" / "api"
    assert (repo / "node_modules" / "@demo" / "shared").is_symlink()
    data = _build(run_cli, src, tmp_path / "out")
    got = manifest(data["output_path"])
    assert _packages(got) == {"@demo/shared", "debug", "ms"}
    assert got["node_modules/@demo/shared/index.js"][0] == "file"
    assert data["symlink_count"] == "0"
    unpacked = unzip(data["output_path"], tmp_path / "task")
    edges_agree(src, repo, unpacked)
    run = invoke(unpacked, None, "index.handler", {"name": "monorepo"})
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["greeting"].startswith("hello monorepo, see you in 1 day")


def test_plan_of_a_25000_file_tree_fits_a_screen_or_two(tmp_path: Path, run_cli: Any) -> None:
    """The benchmark's production tree, installed by npm: the summary, not 25,000 lines."""
    app = tmp_path / "app"
    app.mkdir()
    for name in ("package.json", "package-lock.json", "index.js"):
        shutil.copy(ROOT / "benchmarks" / "app" / name, app / name)
    run_ok(["npm", "ci", "--omit=dev", "--no-audit", "--no-fund", "--loglevel=error"], app)
    run = run_cli(["plan", "--source-dir", str(app), "--output-dir", str(tmp_path / "out")])
    assert run.code == 0, run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) <= 80, run.stdout
    assert any("files" in line and "package.json > aws-sdk > " in line for line in lines)
    assert any(line.startswith("  and ") and "smaller packages" in line for line in lines)
    files = run_cli(
        ["plan", "--files", "--source-dir", str(app), "--output-dir", str(tmp_path / "o")]
    )
    assert len(files.stdout.splitlines()) > 20_000


def test_plan_names_the_dev_only_packages_npm_installed(
    projects: dict[str, Path], run_cli: Any, tmp_path: Path
) -> None:
    src = projects["commonjs"]
    run = run_cli(["plan", "--json", "--source-dir", str(src), "--output-dir", str(tmp_path / "o")])
    plan = json.loads(run.stdout)
    dev = {p["name"]: p for p in plan["dev_only"]}
    assert "is-number" in dev and dev["is-number"]["size"] > 0
    assert "is-number" not in {p["name"] for p in plan["packages"]}
