"""The module's launcher: the module works with nothing but python3 >= 3.11 on PATH."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from helpers import ROOT, write
from terraform_harness import Terraform

from lambdazip_tf import __version__

pytestmark = pytest.mark.slow
LAUNCHER = ROOT / "terraform" / "launcher" / "lambdazip-tf"
COPIED_OUT = shutil.ignore_patterns(
    ".git", ".venv", ".tools", "node_modules", ".lambdazip", "*.egg-info", "__pycache__",
    ".*_cache", ".hypothesis", "build", "dist", ".terraform*", "*.tfstate*",
)  # fmt: skip


@pytest.fixture(scope="session")
def terraform(tmp_path_factory: pytest.TempPathFactory) -> Terraform:
    """Terraform with the stand-in providers in a filesystem mirror."""
    return Terraform(tmp_path_factory.mktemp("terraform-home"))


def _python_only(folder: Path) -> str:
    """A PATH with python3 (this Python, not its virtual environment) and the system's tools,
    and no lambdazip-tf."""
    folder.mkdir()
    os.symlink(os.path.realpath(sys.executable), folder / "python3")
    path = f"{folder}:/usr/bin:/bin"
    assert shutil.which("lambdazip-tf", path=path) is None
    return path


def test_the_module_installs_what_it_needs_when_only_python_is_there(
    terraform: Terraform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy of the repository at another path, no lambdazip-tf anywhere on PATH, two module
    instances whose data sources start at once: one virtual environment is made, both build."""
    repo = tmp_path / "elsewhere" / "lambdazip-tf"
    shutil.copytree(ROOT, repo, ignore=COPIED_OUT)
    work = tmp_path / "infra"
    for name in ("one", "two"):
        write(work / name / "index.js", f"exports.handler = async () => '{name}';\n")
    (work / "main.tf").write_text(
        "".join(
            f'module "{name}" {{\n  source     = "{os.path.relpath(repo / "terraform", work)}"\n'
            f'  source_dir = "${{path.module}}/{name}"\n}}\n'
            f'output "{name}" {{\n  value = [module.{name}.output_path, '
            f"module.{name}.output_base64sha256, filebase64sha256(module.{name}.output_path)]\n}}\n"
            for name in ("one", "two")
        )
    )
    cache = tmp_path / "cache"
    monkeypatch.setenv("PATH", _python_only(tmp_path / "bin"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    assert terraform(work, "init").code == 0
    applied = terraform(work, "apply", "-auto-approve")
    assert applied.code == 0, applied.stderr
    shown = json.loads(terraform(work, "output", "-json").stdout)
    for name in ("one", "two"):
        path, planned, actual = shown[name]["value"]
        assert planned == actual
        with zipfile.ZipFile(work / path) as zf:
            assert zf.namelist() == ["index.js"]
    versions = [p.name for p in (cache / "lambdazip-tf").iterdir()]
    assert versions == ["0.1.0"]
    venv = cache / "lambdazip-tf" / "0.1.0" / "venv"
    assert (venv / ".complete").read_text().strip() == str(repo)
    assert terraform(work, "plan", "-detailed-exitcode").code == 0  # and again, installed


def test_lambdazip_tf_from_path_is_used_when_its_version_is_the_modules(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    os.symlink(Path(sys.executable).with_name("lambdazip-tf"), bin_dir / "lambdazip-tf")
    os.symlink(os.path.realpath(sys.executable), bin_dir / "python3")
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "XDG_CACHE_HOME": str(tmp_path / "cache")}
    done = subprocess.run(
        ["sh", str(LAUNCHER), "--version"], capture_output=True, text=True, env=env, check=False
    )
    assert (done.returncode, done.stdout.strip()) == (0, "lambdazip-tf 0.1.0"), done.stderr
    assert not (tmp_path / "cache" / "lambdazip-tf" / "0.1.0" / "venv").exists()  # not needed
    verdicts = (tmp_path / "cache" / "lambdazip-tf" / "0.1.0" / "on-path").read_text()
    assert verdicts.splitlines()[0].endswith("\tyes")


@pytest.mark.parametrize("python", ["missing", "too old"])
def test_without_python_311_the_launcher_says_so_in_one_line(tmp_path: Path, python: str) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if python == "too old":  # what launch.py does on a Python older than 3.11: exit 3
        write(bin_dir / "python3", "#!/bin/sh\nexit 3\n", mode=0o755)
    done = subprocess.run(
        ["/bin/sh", str(LAUNCHER)],
        input="{}",
        capture_output=True,
        text=True,
        env={"PATH": str(bin_dir)},
        check=False,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1
    assert "needs python3 3.11 or newer on PATH" in done.stderr


def test_two_installs_of_one_checkout_at_once_both_succeed_and_leave_it_clean(
    tmp_path: Path,
) -> None:
    """The launcher installs from the module's own checkout, which two users or runners may
    share: the build backend builds out of the tree, so two pip installs at once cannot
    collide over build/, and neither leaves build/ or *.egg-info behind."""
    repo = tmp_path / "checkout"
    shutil.copytree(ROOT, repo, ignore=COPIED_OUT)
    before = sorted(p.relative_to(repo) for p in repo.rglob("*"))
    clean = {**os.environ, "PIP_CONFIG_FILE": "/dev/null"}
    started = []
    for name in ("one", "two"):
        venv = tmp_path / name
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        started.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "--isolated",
                    "--python",
                    str(venv / "bin" / "python"),
                    "install",
                    "-q",
                    "--no-deps",
                    "--disable-pip-version-check",
                    str(repo),
                ],
                env=clean,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for proc in started:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, out + err
    assert sorted(p.relative_to(repo) for p in repo.rglob("*")) == before
    for name in ("one", "two"):
        site = next((tmp_path / name / "lib").glob("python3.*/site-packages"))
        assert (site / "lambdazip_tf" / "runtimes" / "python" / "__init__.py").is_file()


def test_the_modules_version_is_the_packages() -> None:
    """The launcher learns its version from VERSION beside it, so that a copy of the module
    alone knows it: it must be the package's."""
    assert (LAUNCHER.parent / "VERSION").read_text().strip() == __version__


def test_a_vendored_copy_of_the_module_uses_lambdazip_tf_from_path(
    terraform: Terraform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """terraform/ copied alone into a root module's modules/, lambdazip-tf installed on PATH
    (as pipx would): the module uses it. Without it on PATH, one line says what to install."""
    work = tmp_path / "infra"
    shutil.copytree(ROOT / "terraform", work / "modules" / "lambdazip", ignore=COPIED_OUT)
    write(work / "fn" / "index.js", "exports.handler = async () => 'vendored';\n")
    (work / "main.tf").write_text(
        'module "fn" {\n  source     = "./modules/lambdazip"\n'
        '  source_dir = "${path.module}/fn"\n}\n'
        'output "hash" {\n  value = module.fn.output_base64sha256\n}\n'
    )
    bin_dir = tmp_path / "bin"
    path = _python_only(bin_dir)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", path)
    assert terraform(work, "init").code == 0
    missing = terraform(work, "plan")
    assert missing.code != 0
    assert "lambdazip-tf 0.1.0 is not on PATH, and this copy of the module has no package" in (
        " ".join(missing.stderr.split())
    )
    os.symlink(Path(sys.executable).with_name("lambdazip-tf"), bin_dir / "lambdazip-tf")
    applied = terraform(work, "apply", "-auto-approve")
    assert applied.code == 0, applied.stderr
    assert not (tmp_path / "cache" / "lambdazip-tf" / "0.1.0" / "venv").exists()
