"""The Python runtime on installs made by hand: which distributions ship, which of their files,
and the one-line errors (docs/design.md, "Python"). Real pip and uv installs:
tests/system/test_python.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import assert_one_line_error, build_ok, external, manifest, write
from python_dists import dist, pyproject, venv


def _handler(src: Path) -> Path:
    write(src / "handler.py", "def handler(event, context):\n    return 'ok'\n")
    return src


def _app(tmp_path: Path) -> tuple[Path, Path]:
    """A uv-style project: pyproject.toml, .venv with production and dev distributions."""
    src = _handler(tmp_path / "app")
    pyproject(src, "httpx>=0.27", "pydantic[email]")
    site = venv(src / ".venv", uv=True)
    dist(site, "httpx", "0.27.2", requires=["httpcore==1.*", "brotli; extra == 'brotli'"])
    dist(site, "httpcore", "1.0.9", requires=["h11>=0.13", "colorama; sys_platform == 'win32'"])
    dist(site, "h11", "0.16.0")
    dist(site, "pydantic", "2.9.2", requires=["email-validator>=2; extra == 'email'"])
    dist(site, "email-validator", "2.2.0", requires=["dnspython>=2"])
    dist(site, "dnspython", "2.7.0")
    dist(site, "colorama", "0.4.6")  # Windows only: never on Lambda
    dist(site, "brotli", "1.1.0")  # an extra nobody asked for
    dist(site, "pytest", "8.3.3", requires=["pluggy"])  # dev tools in the same environment
    dist(site, "pluggy", "1.5.0")
    return src, site


def _plan(run_cli: Any, src: Path, *flags: str) -> dict[str, Any]:
    run = run_cli(["plan", "--json", "--source-dir", str(src), *flags])
    assert run.code == 0, run.stderr
    return json.loads(run.stdout)


def test_the_declared_distributions_and_what_they_require_on_lambda_ship(
    tmp_path: Path, run_cli: Any
) -> None:
    src, _ = _app(tmp_path)
    plan = _plan(run_cli, src)
    assert plan["runtime"] == "python"
    whys = {p["name"]: p["why"] for p in plan["packages"]}
    assert whys == {
        "httpx": ["pyproject.toml", "httpx"],
        "httpcore": ["pyproject.toml", "httpx", "httpcore"],
        "h11": ["pyproject.toml", "httpx", "httpcore", "h11"],
        "pydantic": ["pyproject.toml", "pydantic"],
        "email-validator": ["pyproject.toml", "pydantic", "email-validator"],
        "dnspython": ["pyproject.toml", "pydantic", "email-validator", "dnspython"],
    }
    unshipped = {p["name"] for p in plan["dev_only"]}
    assert unshipped == {"colorama", "brotli", "pytest", "pluggy"}
    files = set(manifest(build_ok(run_cli, src)["output_path"]))
    assert "handler.py" in files and "pyproject.toml" in files
    assert "httpcore/__init__.py" in files and "h11-0.16.0.dist-info/METADATA" in files
    assert not any(f.startswith((".venv", "pytest", "colorama")) for f in files)


def test_only_the_files_inside_site_packages_that_lambda_needs_ship(
    tmp_path: Path, run_cli: Any
) -> None:
    src = _handler(tmp_path / "fn")
    site = venv(src / ".venv")
    write(src / "requirements.txt", "tool==1.0\n")
    dist(
        site,
        "tool",
        files={
            "tool/__init__.py": "",
            "tool/__pycache__/__init__.cpython-311.pyc": b"host bytecode",
            "tool/data.json": "{}",
            "_tool_native.abi3.so": b"not an ELF, not judged",
        },
        outside=["../../../bin/tool", "../../../include/tool.h"],
    )
    files = set(manifest(build_ok(run_cli, src)["output_path"]))
    shipped = {f for f in files if f.startswith(("tool", "_tool"))}
    assert shipped == {
        "tool/",
        "tool/__init__.py",
        "tool/data.json",
        "_tool_native.abi3.so",
        "tool-1.0.dist-info/",
        "tool-1.0.dist-info/METADATA",
        "tool-1.0.dist-info/WHEEL",
    }


def test_a_target_folder_that_is_the_function_ships_its_own_files_and_what_is_declared(
    tmp_path: Path, run_cli: Any
) -> None:
    """AWS's documented `pip install --target .`: the folder is the function and its packages;
    a tool installed there too, and pip's bin/ scripts, do not ship."""
    src = _handler(tmp_path / "fn")
    write(src / "requirements.txt", "requests\n")
    dist(src, "requests", "2.32.3", requires=["idna"], outside=["../../bin/requests-cli"])
    dist(src, "idna", "3.10")
    dist(src, "black", "24.1.0")
    write(src / "bin" / "requests-cli", "#!/usr/bin/python3\n")
    plan = _plan(run_cli, src, "--python-version", "3.12")
    assert {p["name"] for p in plan["packages"]} == {"requests", "idna"}
    assert {p["name"] for p in plan["dev_only"]} == {"black"}
    files = set(manifest(build_ok(run_cli, src, python_version="3.12")["output_path"]))
    assert {f.split("/")[0] for f in files} == {
        "handler.py",
        "requirements.txt",
        "requests",
        "requests-2.32.3.dist-info",
        "idna",
        "idna-3.10.dist-info",
    }


def test_a_target_folder_without_a_declaration_ships_all_it_holds(
    tmp_path: Path, run_cli: Any
) -> None:
    src = _handler(tmp_path / "fn")
    site = tmp_path / "package"
    dist(site, "six", "1.16.0")
    result = build_ok(run_cli, src, site_packages=str(site), python_version="python3.11")
    assert "six/__init__.py" in manifest(result["output_path"])


def test_requirements_files_are_read_as_pip_reads_them(tmp_path: Path, run_cli: Any) -> None:
    src = _handler(tmp_path / "fn")
    write(
        src / "requirements.txt",
        "# production\n-r requirements/base.txt\n-c constraints.txt\n"
        "--index-url https://example.invalid/simple\n"
        "fancy[fast] ==1.0 \\\n    --hash=sha256:abc\n"
        "old ; python_version < '3.9'\n",
    )
    write(src / "requirements" / "base.txt", "plain  # a comment\n")
    site = venv(src / ".venv")
    dist(site, "fancy", requires=["speedups; extra == 'fast'"])
    dist(site, "speedups")
    dist(site, "plain")
    plan = _plan(run_cli, src)
    assert {p["name"] for p in plan["packages"]} == {"fancy", "speedups", "plain"}


def test_a_missing_distribution_names_what_requires_it_and_the_install_command(
    tmp_path: Path, run_cli: Any
) -> None:
    src, site = _app(tmp_path)
    for folder in site.glob("h11-*.dist-info"):
        for item in folder.iterdir():
            item.unlink()
        folder.rmdir()
    write(src / "uv.lock", "version = 1\n")
    run = external(run_cli, {"source_dir": str(src)})
    assert_one_line_error(
        run,
        "package 'h11' is required by httpcore 1.0.9 (pyproject.toml > httpx > httpcore) but is "
        "not installed",
        f"run `uv sync` in {src}",
    )
    target = _handler(tmp_path / "fn")
    write(target / "requirements.txt", "requests\n")
    dist(target / "package", "idna")
    run = external(
        run_cli,
        {"source_dir": str(target), "site_packages": "package", "python_version": "3.12"},
        cwd=target,
    )
    assert_one_line_error(
        run,
        f"package 'requests' is required by {target / 'requirements.txt'}",
        f"remove {target / 'package'}, then run `pip install --platform manylinux2014_x86_64 "
        "--platform manylinux_2_18_x86_64",
        f"--target {target / 'package'} -r requirements.txt` in {target}",
    )


def test_a_target_folder_needs_python_version(tmp_path: Path, run_cli: Any) -> None:
    src = _handler(tmp_path / "fn")
    dist(src, "six")
    run = external(run_cli, {"source_dir": str(src)})
    assert_one_line_error(run, "python_version is required", 'set python_version = "3.12"')


def test_exclude_packages_leaves_a_distribution_and_what_only_it_needs_out(
    tmp_path: Path, run_cli: Any
) -> None:
    src = _handler(tmp_path / "fn")
    pyproject(src, "boto3", "app-lib")
    site = venv(src / ".venv")
    dist(site, "boto3", requires=["botocore", "jmespath"])
    dist(site, "botocore", requires=["jmespath"])
    dist(site, "jmespath")
    dist(site, "app-lib", requires=["jmespath"])
    everything = {p["name"] for p in _plan(run_cli, src)["packages"]}
    assert everything == {"boto3", "botocore", "jmespath", "app-lib"}  # nothing left out
    plan = _plan(run_cli, src, "--exclude-package", "boto*")
    assert {p["name"] for p in plan["packages"]} == {"app-lib", "jmespath"}
    assert "exclude_packages 'boto*'" in {x["reason"] for x in plan["excluded"]}
    assert not {p["name"] for p in plan["dev_only"]} & {"boto3", "botocore"}


def test_a_layer_holds_the_distributions_under_python(tmp_path: Path, run_cli: Any) -> None:
    src, _ = _app(tmp_path)
    result = build_ok(run_cli, src, layer="true")
    function = set(manifest(result["output_path"]))
    layer = set(manifest(result["layer_output_path"]))
    assert {f for f in function if not f.endswith("/")} == {"handler.py", "pyproject.toml"}
    assert "python/httpx/__init__.py" in layer and "python/h11-0.16.0.dist-info/METADATA" in layer
    assert not any(not f.startswith("python/") for f in layer)


def test_an_editable_workspace_member_ships_its_code_not_its_pth(
    tmp_path: Path, run_cli: Any
) -> None:
    repo = tmp_path / "repo"
    write(repo / ".git" / "HEAD", "ref: refs/heads/main\n")
    member = repo / "packages" / "lib-a"
    write(member / "src" / "lib_a" / "__init__.py", "VALUE = 1\n")
    write(member / "src" / "lib_a" / ".env", "SECRET=1\n")  # someone's working folder
    src = _handler(repo / "functions" / "api")
    pyproject(src, "lib-a")
    site = venv(src / ".venv", uv=True)
    dist(site, "lib-a", "0.1.0", editable_to=member / "src")
    files = set(manifest(build_ok(run_cli, src)["output_path"]))
    assert "lib_a/__init__.py" in files and "lib_a-0.1.0.dist-info/METADATA" in files
    assert "lib_a/.env" not in files and "_lib_a.pth" not in files
    outside = _handler(tmp_path / "alone")
    pyproject(outside, "lib-a")
    dist(venv(outside / ".venv"), "lib-a", "0.1.0", editable_to=member / "src")
    run = external(run_cli, {"source_dir": str(outside), "output_dir": str(tmp_path / "o")})
    assert_one_line_error(run, "installed editable from", "add its workspace root to allowed_roots")


def test_the_functions_own_project_installed_editable_ships_once(
    tmp_path: Path, run_cli: Any
) -> None:
    src = _handler(tmp_path / "app")
    pyproject(src, "six", name="app")
    site = venv(src / ".venv", uv=True)
    dist(site, "six")
    write(src / "requirements.txt", "-e .\n")
    dist(site, "app", "0.1.0", requires=["six"], editable_to=src)
    files = set(manifest(build_ok(run_cli, src)["output_path"]))
    assert "handler.py" in files and "six/__init__.py" in files
    assert not any(f.startswith(("app-", "_app")) for f in files)


@pytest.mark.parametrize(
    ("request_", "needle"),
    [
        ({"python_version": "3.12", "runtime": "nodejs"}, "is for runtime python"),
        ({"site_packages": "nowhere"}, "site_packages nowhere is not a folder"),
    ],
)
def test_python_keys_are_checked(
    tmp_path: Path, run_cli: Any, request_: dict[str, str], needle: str
) -> None:
    src = _handler(tmp_path / "fn")
    if "runtime" in request_:
        write(src / "package.json", '{"name": "fn"}')
    run = external(run_cli, {"source_dir": str(src), **request_}, cwd=tmp_path)
    assert_one_line_error(run, needle)


def test_a_src_layout_without_package_dir_is_refused_rather_than_zipped_without_its_packages(
    tmp_path: Path, run_cli: Any
) -> None:
    root = tmp_path / "project"
    write(root / ".git" / "HEAD", "ref: refs/heads/main\n")
    pyproject(root, "six")
    dist(venv(root / ".venv"), "six")
    src = _handler(root / "src")
    assert_one_line_error(
        external(run_cli, {"source_dir": str(src)}),
        f"source_dir {src} has no pyproject.toml, but {root / 'pyproject.toml'} above it has "
        "installed dependencies",
        f'set package_dir = "{root}"',
    )
    files = set(manifest(build_ok(run_cli, src, package_dir=str(root))["output_path"]))
    assert files == {
        "handler.py",
        "six/",
        "six/__init__.py",
        "six-1.0.dist-info/",
        "six-1.0.dist-info/METADATA",
        "six-1.0.dist-info/WHEEL",
    }
    pyproject(root)  # declares nothing: a folder of scripts below it is just files
    assert build_ok(run_cli, src)["file_count"] == "1"


def test_a_target_folder_shared_with_the_functions_own_package_keeps_both(
    tmp_path: Path, run_cli: Any
) -> None:
    """pip install --target . of a distribution that installs into acme/, where the handler
    lives too: the handler ships, and only the installed files are left to the crawl; pip's
    headers (moved into the folder, recorded as ../../include/...) never ship."""
    src = tmp_path / "fn"
    write(src / "acme" / "orders" / "handler.py", "from acme.common import X\n")
    write(src / "requirements.txt", "acme-common\n")
    dist(
        src,
        "acme-common",
        files={"acme/common/__init__.py": "X = 1\n"},
        outside=["../../include/acme/common.h"],
    )
    write(src / "include" / "acme" / "common.h", "int x;\n")
    dist(src, "devtool", files={"acme/devtool/__init__.py": "", "devtool_cli.py": ""})
    files = set(manifest(build_ok(run_cli, src, python_version="3.12")["output_path"]))
    assert {f for f in files if not f.endswith("/")} == {
        "acme/orders/handler.py",
        "acme/common/__init__.py",
        "acme_common-1.0.dist-info/METADATA",
        "acme_common-1.0.dist-info/WHEEL",
        "requirements.txt",
    }
    assert "acme/devtool/" not in files and "include/" not in files


@pytest.mark.parametrize(
    ("line", "shipped"),
    [
        ("../lib[extra]", {"lib", "plugin"}),
        ("-e ../lib", {"lib"}),
        ("-e '../lib'", {"lib"}),
    ],
)
def test_local_projects_in_requirements_are_named_by_their_pyproject(
    tmp_path: Path, run_cli: Any, line: str, shipped: set[str]
) -> None:
    src = _handler(tmp_path / "fn")
    pyproject(tmp_path / "lib", name="lib")
    write(src / "requirements.txt", line + "\n")
    site = venv(src / ".venv")
    dist(site, "lib", requires=["plugin; extra == 'extra'"])
    dist(site, "plugin")
    assert {p["name"] for p in _plan(run_cli, src)["packages"]} == shipped


def test_poetrys_table_keeps_extras_and_markers(tmp_path: Path, run_cli: Any) -> None:
    src = _handler(tmp_path / "fn")
    write(
        src / "pyproject.toml",
        '[tool.poetry]\nname = "fn"\n\n[tool.poetry.dependencies]\npython = "^3.12"\n'
        'requests = { version = "^2.31", extras = ["socks"] }\n'
        'tomli = { version = "^2", python = "<3.11" }\n'
        'pywin = { version = "1", markers = "sys_platform == \'win32\'" }\n'
        'devonly = { version = "1", optional = true }\n',
    )
    site = venv(src / ".venv")
    dist(site, "requests", requires=["pysocks; extra == 'socks'"])
    dist(site, "pysocks")
    assert {p["name"] for p in _plan(run_cli, src)["packages"]} == {"requests", "pysocks"}


def test_a_pyproject_that_only_names_the_project_leaves_the_declaration_to_requirements(
    tmp_path: Path, run_cli: Any
) -> None:
    src = _handler(tmp_path / "fn")
    write(src / "pyproject.toml", '[project]\nname = "fn"\nversion = "0.1.0"\n')
    write(src / "requirements.txt", "six\n")
    dist(src / "package", "six")
    plan = _plan(run_cli, src, "--site-packages", str(src / "package"), "--python-version", "3.12")
    assert [p["why"] for p in plan["packages"]] == [["requirements.txt", "six"]]


def test_a_uv_workspace_member_finds_the_workspace_roots_environment_and_lock(
    tmp_path: Path, run_cli: Any
) -> None:
    root = tmp_path / "repo"
    write(
        root / "pyproject.toml",
        '[project]\nname = "root"\nversion = "0"\n\n[tool.uv.workspace]\nmembers = ["api"]\n',
    )
    write(root / "uv.lock", "version = 1\n")
    site = venv(root / ".venv", uv=True)
    dist(site, "six")
    member = _handler(root / "api")
    pyproject(member, "six", name="api")
    assert {p["name"] for p in _plan(run_cli, member)["packages"]} == {"six"}
    pyproject(member, "six", "missing", name="api")
    assert_one_line_error(
        external(run_cli, {"source_dir": str(member)}), f"run `uv sync` in {root}"
    )
