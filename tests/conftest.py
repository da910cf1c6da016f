"""Shared helpers: build trees in tmp_path, run the CLI in-process, read zips back."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lambdazip_tf import cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@dataclass
class Run:
    """What one CLI invocation produced."""

    code: int
    stdout: str
    stderr: str

    def json(self) -> dict[str, str]:
        """stdout parsed as the one JSON object of strings the protocol promises."""
        data = json.loads(self.stdout)
        assert isinstance(data, dict)
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()), data
        return data


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    """Call `cli.main(args)` in-process with `stdin` text; return a Run."""

    def call(args: list[str], stdin: str | None = None, cwd: Path | None = None) -> Run:
        if cwd is not None:
            monkeypatch.chdir(cwd)
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin if stdin is not None else ""))
        code = cli.main(args)
        out, err = capsys.readouterr()
        return Run(code, out, err)

    return call


def external(run_cli: Any, request: dict[str, Any] | str, cwd: Path | None = None) -> Run:
    """External-program mode: the request as Terraform would send it."""
    text = request if isinstance(request, str) else json.dumps(request)
    return run_cli([], stdin=text, cwd=cwd)


def console(
    request: str, cwd: Path, env: dict[str, str] | None = None, *, module: bool = False
) -> Run:
    """External mode in a new process: the console script, or `python -m lambdazip_tf`."""
    cmd = [sys.executable, "-m", "lambdazip_tf"] if module else [lambdazip_exe()]
    proc = subprocess.run(
        cmd, input=request, capture_output=True, text=True, cwd=cwd, env=env, check=False
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def build_ok(run_cli: Any, src: Path, **extra: Any) -> dict[str, str]:
    """Build in external mode into src/../out (lists jsonencode()d, as Terraform sends them)."""
    request = {"source_dir": str(src), "output_dir": str(src.parent / "out")}
    request.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in extra.items()})
    run = external(run_cli, request)
    assert run.code == 0, run.stderr
    return run.json()


def run_concurrently(requests: list[str]) -> list[tuple[int, str, str]]:
    """Start one external-mode process per request at once; (exit code, stdout, stderr)."""
    procs = [
        subprocess.Popen(
            [lambdazip_exe()],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in requests
    ]
    outputs = [p.communicate(r) for p, r in zip(procs, requests, strict=True)]
    return [(p.returncode, out, err) for p, (out, err) in zip(procs, outputs, strict=True)]


def write(path: Path, text: str = "", mode: int | None = None) -> Path:
    """Create a file (and its folders) with text and, optionally, a mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if mode is not None:
        path.chmod(mode)
    return path


def link(path: Path, target: str) -> Path:
    """Create a symbolic link (and its folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, path)
    return path


def manifest(zip_path: Path | str) -> dict[str, tuple[str, str, str]]:
    """{name: (kind, mode, sha256 or link target)} of a zip, read with zipfile."""
    out: dict[str, tuple[str, str, str]] = {}
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            mode = info.external_attr >> 16
            data = zf.read(info)
            if stat.S_ISLNK(mode):
                out[info.filename] = ("link", f"{stat.S_IMODE(mode):o}", data.decode())
            elif info.is_dir():
                out[info.filename] = ("dir", f"{stat.S_IMODE(mode):o}", "")
            else:
                sha = hashlib.sha256(data).hexdigest()
                out[info.filename] = ("file", f"{stat.S_IMODE(mode):o}", sha)
    return out


def sha256_file(path: Path | str) -> str:
    """hex sha256 of a file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def unzip(zip_path: Path | str, dest: Path) -> Path:
    """Extract with the real Info-ZIP unzip (links restored as links)."""
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(["unzip", "-q", "-o", str(zip_path), "-d", str(dest)], check=True)
    return dest


def copy_tree(src: Path, dst: Path) -> Path:
    """Copy a tree keeping links as links."""
    shutil.copytree(src, dst, symlinks=True)
    return dst


def lambdazip_exe() -> str:
    """The installed console script next to this interpreter."""
    exe = Path(sys.executable).with_name("lambdazip-tf")
    assert exe.exists(), f"console script missing: {exe}"
    return str(exe)


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[Path]:
    """A small function folder: files, a subfolder, an executable, an empty folder."""
    src = tmp_path / "fn"
    write(src / "index.js", "exports.handler = async () => 'ok';\n")
    write(src / "lib" / "util.js", "module.exports = 1;\n")
    write(src / "bin" / "run.sh", "#!/bin/sh\necho hi\n", mode=0o700)
    write(src / "private.txt", "only me\n", mode=0o600)
    (src / "empty").mkdir()
    yield src
