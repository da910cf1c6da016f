"""Python functions on real installs: pip and uv from PyPI, wheels for other platforms fetched
as other machines would, each zip's handler loaded by Lambda's own loader (awslambdaric) under
the matching CPython (docs/design.md, "Python").

Versions are pinned, so that the tests do not move with PyPI.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import EXAMPLES, assert_one_line_error, external, manifest, run_ok, unzip, write
from python_oracle import interpreter, invoke

pytestmark = pytest.mark.slow
UV = str(Path(sys.executable).with_name("uv"))
# pip and uv read nothing of this machine's configuration: PyPI only, as a user's would.
CLEAN = {
    **os.environ,
    "PIP_CONFIG_FILE": "/dev/null",
    "SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt",
    "UV_NO_CONFIG": "1",
    "UV_PYTHON_DOWNLOADS": "never",
}
BINARIES = ["pydantic==2.9.2", "cryptography==43.0.3", "psycopg2-binary==2.9.10", "numpy==2.1.3"]
HANDLER = (
    "import importlib.metadata as metadata\n"
    "import cryptography.hazmat.bindings._rust, numpy, psycopg2, pydantic\n"
    "def handler(event, context):\n"
    "    names = ('pydantic-core', 'cryptography', 'psycopg2-binary', 'numpy')\n"
    "    return {name: metadata.version(name) for name in names} | "
    "{'sum': int(numpy.arange(4).sum())}\n"
)


def python(minor: int) -> str:
    return str(interpreter(minor) / "bin" / f"python3.{minor}")


def pip_target(minor: int, target: Path, *args: str) -> None:
    """`pip install --target` with CPython 3.<minor>'s own pip."""
    run_ok(
        [
            python(minor),
            "-m",
            "pip",
            "--isolated",
            "install",
            "-q",
            "--disable-pip-version-check",
            "--root-user-action=ignore",
            "--target",
            str(target),
            *args,
        ],
        cwd=target.parent,
        env=CLEAN,
    )


def loaded(result: dict[str, str], tmp_path: Path, handler: str, minor: int) -> Any:
    """The handler's answer, loaded from the unpacked zips as Lambda's python3.<minor> would."""
    function = unzip(result["output_path"], tmp_path / "task")
    layer = (
        unzip(result["layer_output_path"], tmp_path / "opt")
        if "layer_output_path" in result
        else None
    )
    for folder in (function, layer):
        if folder is not None:
            folder.chmod(0o755)
    run = invoke(function, layer, handler, {}, minor)
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads(run.stdout)


def test_a_pip_target_install_of_binary_wheels_loads_on_lambda(
    tmp_path: Path, run_cli: Any
) -> None:
    """AWS's documented way: `pip install --target .` beside the handler."""
    src = tmp_path / "fn"
    write(src / "lambda_function.py", HANDLER)
    write(src / "requirements.txt", "\n".join(BINARIES) + "\n")
    pip_target(12, src, "-r", str(src / "requirements.txt"))
    run = external(run_cli, {"source_dir": str(src), "python_version": "3.12"})
    assert run.code == 0, run.stderr
    answer = loaded(run.json(), tmp_path, "lambda_function.handler", 12)
    assert answer == {
        "pydantic-core": "2.23.4",
        "cryptography": "43.0.3",
        "psycopg2-binary": "2.9.10",
        "numpy": "2.1.3",
        "sum": 6,
    }
    plan = json.loads(
        run_cli(["plan", "--json", "--source-dir", str(src), "--python-version", "3.12"]).stdout
    )
    native = {n["name"] for n in plan["native"] if n["kind"] == "package"}
    assert {"pydantic_core@2.23.4", "cryptography@43.0.3", "numpy@2.1.3"} <= native
    # pip's bin/ scripts and the host's bytecode stay out.
    with_names = {e["path"] for e in plan["function"]["entries"]}
    assert not any(p.startswith("bin/") or "__pycache__" in p for p in with_names)


def test_a_uv_project_ships_its_production_dependencies_not_its_dev_group(
    tmp_path: Path, run_cli: Any
) -> None:
    root = tmp_path / "project"
    write(
        root / "pyproject.toml",
        '[project]\nname = "api"\nversion = "0.1.0"\nrequires-python = ">=3.12"\n'
        'dependencies = ["httpx==0.27.2", "pydantic==2.9.2"]\n\n'
        '[dependency-groups]\ndev = ["pytest==8.3.3", "ruff==0.7.1"]\n',
    )
    write(
        root / "api" / "handler.py",
        "import httpx, pydantic\n"
        "def handler(event, context):\n    return [httpx.__version__, pydantic.VERSION]\n",
    )
    run_ok([UV, "sync", "--python", python(12), "--quiet"], cwd=root, env=CLEAN)
    plan = json.loads(
        run_cli(
            ["plan", "--json", "--source-dir", str(root / "api"), "--package-dir", str(root)]
        ).stdout
    )
    shipped = {p["name"] for p in plan["packages"]}
    assert {"httpx", "httpcore", "pydantic", "pydantic_core", "anyio"} <= shipped
    assert {"pytest", "ruff", "pluggy"} <= {p["name"] for p in plan["dev_only"]}
    assert not shipped & {"pytest", "ruff", "pluggy", "iniconfig"}
    httpcore = next(p for p in plan["packages"] if p["name"] == "httpcore")
    assert httpcore["why"] == ["pyproject.toml", "httpx", "httpcore"]
    run = external(
        run_cli, {"source_dir": str(root / "api"), "package_dir": str(root), "layer": "true"}
    )
    assert run.code == 0, run.stderr
    assert loaded(run.json(), tmp_path, "handler.handler", 12) == ["0.27.2", "2.9.2"]


def test_the_same_requirements_installed_by_pip_and_by_uv_zip_to_the_same_bytes(
    tmp_path: Path, run_cli: Any
) -> None:
    hashes = set()
    for tool in ("pip", "uv"):
        src = tmp_path / tool / "deep" / "fn"
        write(src / "app.py", "import requests, pydantic\ndef handler(e, c):\n    return 1\n")
        write(src / "requirements.txt", "requests==2.32.3\npydantic==2.9.2\n")
        target = tmp_path / tool / "site"
        if tool == "pip":
            pip_target(12, target, "-r", str(src / "requirements.txt"))
        else:
            run_ok(
                [
                    UV,
                    "pip",
                    "install",
                    "--quiet",
                    "--python",
                    python(12),
                    "--target",
                    str(target),
                    "-r",
                    str(src / "requirements.txt"),
                ],
                cwd=tmp_path,
                env=CLEAN,
            )
        run = external(
            run_cli,
            {"source_dir": str(src), "site_packages": str(target), "python_version": "3.12"},
        )
        assert run.code == 0, run.stderr
        hashes.add(run.json()["output_base64sha256"])
    assert len(hashes) == 1


@pytest.mark.parametrize(
    ("platform", "target", "words"),
    [
        ("macosx_11_0_arm64", "x86_64", "is a wheel for macOS, CPython 3.12"),
        ("musllinux_1_1_x86_64", "x86_64", "is a wheel for musl Linux (musllinux_1_1_x86_64"),
        ("manylinux2014_aarch64", "x86_64", "is a wheel for manylinux_2_17_aarch64"),
    ],
)
def test_wheels_for_other_platforms_are_refused_with_the_fix(
    tmp_path: Path, run_cli: Any, platform: str, target: str, words: str
) -> None:
    """Installed as a Mac, an Alpine box or a cross install would: pip's --platform."""
    src = tmp_path / "fn"
    write(src / "app.py", "import pydantic_core\n")
    write(src / "requirements.txt", "pydantic-core==2.23.4\n")
    site = tmp_path / "site"
    pip_target(
        12,
        site,
        "--platform",
        platform,
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        "3.12",
        "pydantic-core==2.23.4",
    )
    request = {"source_dir": str(src), "site_packages": str(site), "python_version": "3.12"}
    assert_one_line_error(
        external(run_cli, {**request, "architecture": target}),
        f"package pydantic_core 2.23.4 {words}",
        "--only-binary=:all: --implementation cp --python-version 3.12",
    )
    if platform == "manylinux2014_aarch64":
        run = external(run_cli, {**request, "architecture": "arm64"})
        assert run.code == 0, run.stderr


def test_a_wheel_for_a_newer_glibc_is_refused_for_amazon_linux_2(
    tmp_path: Path, run_cli: Any
) -> None:
    """cryptography's manylinux_2_34 wheel, installed for python3.11 (Amazon Linux 2, glibc
    2.26) as pip's --platform picks it."""
    src = tmp_path / "fn"
    write(src / "app.py", "import cryptography\n")
    site = tmp_path / "site"
    for platform, wanted in (
        ("manylinux2014_x86_64", "cffi==1.17.1"),
        ("manylinux_2_34_x86_64", "cryptography==44.0.1"),
    ):
        pip_target(
            11,
            site,
            "--no-deps",
            "--platform",
            platform,
            "--only-binary=:all:",
            "--implementation",
            "cp",
            "--python-version",
            "3.11",
            wanted,
        )
    pip_target(11, site, "pycparser==2.22")
    request = {"source_dir": str(src), "site_packages": str(site)}
    assert_one_line_error(
        external(run_cli, {**request, "python_version": "3.11"}),
        "package cryptography 44.0.1 is a wheel for manylinux_2_34_x86_64",
        "which python3.11 (x86_64, glibc 2.26) cannot load",
        f"remove {site}, then run `pip install --platform manylinux2014_x86_64 --platform "
        "manylinux_2_18_x86_64",
        "--platform manylinux_2_25_x86_64 --platform manylinux_2_26_x86_64 --only-binary",
    )
    # For python3.12 the glibc fits; cffi's wheel, for CPython 3.11, does not.
    assert_one_line_error(
        external(run_cli, {**request, "python_version": "3.12"}),
        "package cffi 1.17.1 is a wheel for manylinux_2_17_x86_64, CPython 3.11",
    )


@pytest.mark.parametrize("minor", [10, 11, 12, 13])
def test_every_python_runtime_loads_its_zip_and_its_layer(
    tmp_path: Path, run_cli: Any, minor: int
) -> None:
    """A small compiled dependency in a layer, installed by the runtime's own CPython."""
    src = tmp_path / "fn"
    write(
        src / "handler.py",
        "import sys, markupsafe\n"
        "def handler(event, context):\n"
        "    return [sys.version_info[1], str(markupsafe.escape('<'))]\n",
    )
    write(src / "requirements.txt", "markupsafe==3.0.2\n")
    site = tmp_path / "site"
    pip_target(minor, site, "-r", str(src / "requirements.txt"))
    run = external(
        run_cli,
        {
            "source_dir": str(src),
            "site_packages": str(site),
            "python_version": f"3.{minor}",
            "layer": "true",
        },
    )
    assert run.code == 0, run.stderr
    assert loaded(run.json(), tmp_path, "handler.handler", minor) == [minor, "&lt;"]


def test_a_uv_workspace_member_ships_as_its_code(tmp_path: Path, run_cli: Any) -> None:
    root = tmp_path / "repo"
    write(root / ".git" / "HEAD", "ref: refs/heads/main\n")
    write(
        root / "pyproject.toml",
        '[project]\nname = "api"\nversion = "0.1.0"\nrequires-python = ">=3.12"\n'
        'dependencies = ["lib-a"]\n\n[tool.uv.sources]\nlib-a = { workspace = true }\n\n'
        '[tool.uv.workspace]\nmembers = ["packages/lib-a"]\n',
    )
    member = root / "packages" / "lib-a"
    write(
        member / "pyproject.toml",
        '[project]\nname = "lib-a"\nversion = "0.1.0"\nrequires-python = ">=3.12"\n'
        'dependencies = ["six==1.16.0"]\n\n[build-system]\nrequires = ["hatchling"]\n'
        'build-backend = "hatchling.build"\n\n[tool.hatch.build.targets.wheel]\n'
        'packages = ["src/lib_a"]\n',
    )
    write(member / "src" / "lib_a" / "__init__.py", "import six\nVALUE = six.PY3\n")
    write(root / "api" / "handler.py", "import lib_a\ndef handler(e, c):\n    return lib_a.VALUE\n")
    run_ok([UV, "sync", "--python", python(12), "--quiet"], cwd=root, env=CLEAN)
    run = external(run_cli, {"source_dir": str(root / "api"), "package_dir": str(root)})
    assert run.code == 0, run.stderr
    files = set(manifest(run.json()["output_path"]))
    assert {"lib_a/__init__.py", "lib_a-0.1.0.dist-info/METADATA", "six.py"} <= files
    assert not any(f.endswith(".pth") or "uv_cache" in f for f in files)
    assert loaded(run.json(), tmp_path, "handler.handler", 12) is True


def test_the_examples_install_as_the_makefile_does_build_and_load(
    tmp_path: Path, run_cli: Any
) -> None:
    """examples/python (a uv project installed for arm64 from this x86_64 machine) and
    examples/pip-target (pip install --target beside the handler), installed as `make examples`
    does."""
    project = tmp_path / "python"
    shutil.copytree(
        EXAMPLES / "python", project, ignore=shutil.ignore_patterns(".*", "package", "uv.lock")
    )
    (project / "package").mkdir()
    run_ok(
        [
            UV,
            "export",
            "--quiet",
            "--python",
            sys.executable,
            "--no-dev",
            "--no-emit-project",
            "--no-hashes",
            "-o",
            "package/requirements.txt",
        ],
        cwd=project,
        env=CLEAN,
    )
    run_ok(
        [
            UV,
            "pip",
            "install",
            "--quiet",
            "--python-platform",
            "aarch64-manylinux_2_34",
            "--python-version",
            "3.12",
            "--target",
            "package",
            "-r",
            "package/requirements.txt",
        ],
        cwd=project,
        env=CLEAN,
    )
    request = {
        "source_dir": str(project / "orders"),
        "package_dir": str(project),
        "site_packages": str(project / "package"),
        "python_version": "3.12",
    }
    run = external(run_cli, {**request, "architecture": "arm64"})
    assert run.code == 0, run.stderr
    files = set(manifest(run.json()["output_path"]))
    assert "pydantic_core/_pydantic_core.cpython-312-aarch64-linux-gnu.so" in files
    assert not any(f.startswith(("pytest", "bin/")) for f in files)
    assert_one_line_error(
        external(run_cli, {**request, "architecture": "x86_64"}),
        "package pydantic_core 2.23.4 is a wheel for manylinux_2_17_aarch64",
        "--python-platform x86_64-manylinux_2_34",
    )

    function = tmp_path / "pip-target" / "function"
    shutil.copytree(
        EXAMPLES / "pip-target" / "function", function, ignore=shutil.ignore_patterns(".*")
    )
    pip_target(
        12,
        function,
        "--platform",
        "manylinux2014_x86_64",
        "--only-binary=:all:",
        "--implementation",
        "cp",
        "--python-version",
        "3.12",
        "-r",
        str(function / "requirements.txt"),
    )
    run = external(run_cli, {"source_dir": str(function), "python_version": "3.12"})
    assert run.code == 0, run.stderr
    answer = loaded(run.json(), tmp_path, "lambda_function.lambda_handler", 12)
    assert answer == {"requests": "2.32.3", "status": "ok"}


def test_a_namespace_package_ships_as_its_shipped_owners_files(
    tmp_path: Path, run_cli: Any
) -> None:
    """jaraco/ is owned by every jaraco.* distribution (PEP 420): only the declared one's
    files ship under it, though the other is installed beside it."""
    src = tmp_path / "fn"
    write(src / "app.py", "import jaraco.classes\ndef handler(e, c):\n    return __name__\n")
    write(src / "requirements.txt", "jaraco.classes==3.4.0\n")
    pip_target(12, src, "-r", str(src / "requirements.txt"), "jaraco.context==6.0.1")
    run = external(run_cli, {"source_dir": str(src), "python_version": "3.12"})
    assert run.code == 0, run.stderr
    files = set(manifest(run.json()["output_path"]))
    assert "jaraco/classes/properties.py" in files
    assert "jaraco.classes-3.4.0.dist-info/METADATA" in files
    assert not any(f.startswith("jaraco/context") or "jaraco.context" in f for f in files)
    assert loaded(run.json(), tmp_path, "app.handler", 12) == "app"


def test_links_into_uvs_cache_ship_as_the_files(tmp_path: Path, run_cli: Any) -> None:
    """`uv pip install --link-mode symlink` leaves absolute links into uv's cache: the zip holds
    the files they lead to, as a copy install would give."""
    zips = []
    for mode in ("symlink", "copy"):
        src = tmp_path / mode / "fn"
        write(src / "app.py", "import six\n")
        site = tmp_path / mode / "site"
        run_ok(
            [
                UV,
                "pip",
                "install",
                "--quiet",
                "--python",
                python(12),
                "--link-mode",
                mode,
                "--target",
                str(site),
                "six==1.16.0",
            ],
            cwd=tmp_path,
            env=CLEAN,
        )
        assert (site / "six.py").is_symlink() is (mode == "symlink")
        run = external(
            run_cli, {"source_dir": str(src), "site_packages": str(site), "python_version": "3.12"}
        )
        assert run.code == 0, run.stderr
        zips.append(run.json())
    assert zips[0]["output_base64sha256"] == zips[1]["output_base64sha256"]
    assert zips[0]["symlink_count"] == "0"
