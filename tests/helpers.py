"""Shared helpers of the tests: build trees in tmp_path, run the program, read zips back.

Importable as `helpers` (pyproject.toml puts tests/ on the path); the fixtures are in
conftest.py.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from lambdazip_tf.speed import facts

ROOT = Path(__file__).resolve().parent.parent


EXAMPLES = ROOT / "examples"
TOOLS = ROOT / ".tools"  # what `make tools` installs
PNPM = TOOLS / "node_modules" / ".bin" / "pnpm"
YARN1 = TOOLS / "yarn1" / "node_modules" / ".bin" / "yarn"
YARN4 = TOOLS / "yarn4" / "node_modules" / ".bin" / "yarn"


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


def run_ok(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    """Run a command (an install, a compiler) that must succeed; its output if it does not."""
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False, env=env)
    assert done.returncode == 0, f"{' '.join(command)} in {cwd}:\n{done.stdout}\n{done.stderr}"


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


def assert_one_line_error(run: Run, *needles: str) -> None:
    """The protocol's failure shape: exit 1, nothing on stdout, one line on stderr."""
    assert run.code == 1
    assert run.stdout == ""
    assert run.stderr.endswith("\n")
    assert run.stderr.count("\n") == 1, run.stderr
    assert "Traceback" not in run.stderr
    for needle in needles:
        assert needle in run.stderr, run.stderr


OLD = 1_000_000_000  # 2001: far outside the racy window


PROPERTY = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def mutations(actions: list[str], min_size: int, max_size: int) -> st.SearchStrategy[Any]:
    """Sequences of (mutation, number) steps for `mutate`."""
    return st.lists(
        st.tuples(st.sampled_from(actions), st.integers(min_value=0, max_value=50)),
        min_size=min_size,
        max_size=max_size,
    )


def age(root: Path) -> None:
    """Set every mtime back: a cache keyed on mtime alone would now miss every change."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.utime(Path(dirpath) / name, (OLD, OLD), follow_symlinks=False)
    os.utime(root, (OLD, OLD))


def both(
    run_cli: Any, src: Path, base: Path, monkeypatch: pytest.MonkeyPatch, **extra: str
) -> bytes:
    """Build with the cache and without; the zips and the whole results must agree."""
    request = {"source_dir": str(src), "output_dir": str(base / "cached"), **extra}
    cached = external(run_cli, request)
    assert cached.code == 0, cached.stderr
    got = cached.json()
    same_as_cache_free(run_cli, request, got, base / "fresh", monkeypatch)
    layer = Path(got["layer_output_path"]).read_bytes() if "layer_output_path" in got else b""
    return Path(got["output_path"]).read_bytes() + layer


def same_as_cache_free(
    run_cli: Any,
    request: dict[str, str],
    got: dict[str, str],
    folder: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A cache-free build of `request` into `folder` gives the same zips and result as `got`."""
    monkeypatch.setenv("LAMBDAZIP_NO_CACHE", "1")
    try:
        fresh = external(run_cli, {**request, "output_dir": str(folder)})
    finally:
        monkeypatch.delenv("LAMBDAZIP_NO_CACHE")
    assert fresh.code == 0, fresh.stderr
    want = fresh.json()
    assert got.keys() == want.keys()
    for key, value in got.items():
        if key.endswith("output_path"):  # the same name, in the other output folder
            assert Path(value).read_bytes() == Path(want[key]).read_bytes()
            assert Path(value).name == Path(want[key]).name
        else:
            assert value == want[key], key


def mutate(src: Path, action: str, n: int) -> bool:
    """Apply one mutation; True when it must show in the zip (it changed a file, or added one
    that was not there)."""
    files = sorted(
        p
        for p in src.rglob("*")
        if p.is_file() and not p.is_symlink() and p.name != "package.json"  # keep them JSON
    )
    target = files[n % len(files)] if files else None
    visible = target is not None and action in (
        "edit",
        "same_size",
        "rename",
        "chmod",
        "safe_write",
    )
    if action == "edit" and target:
        target.write_text(target.read_text() + f"// edit {n}\n")
    elif action == "safe_write" and target:  # as editors and git do: a new file renamed over
        temporary = target.with_name(f".{target.name}.new")
        temporary.write_text(target.read_text() + f"// saved {n}\n")
        temporary.chmod(target.stat().st_mode)
        temporary.replace(target)
    elif action == "same_size" and target:
        st_ = target.stat()
        data = bytearray(target.read_bytes() or b"x")
        data[0] = (data[0] + 1) % 128 or 65
        target.write_bytes(bytes(data))
        os.utime(target, ns=(st_.st_atime_ns, st_.st_mtime_ns))  # mtime restored
    elif action == "rename" and target:
        target.rename(target.with_name(f"renamed{n}-{target.name}"))
    elif action == "chmod" and target:
        target.chmod(target.stat().st_mode ^ 0o111)
    elif action == "retarget":
        alias = src / "lib" / "alias.js"
        if alias.is_symlink():
            alias.unlink()
        others = [f for f in files if f.parent == src / "lib" and f.name != "alias.js"]
        if others:
            os.symlink(others[n % len(others)].name, alias)
    elif action == "delete" and target and len(files) > 2 and target.name != "index.js":
        target.unlink()
    elif action == "add":
        added = src / "lib" / f"new{n}.js"
        visible = not added.exists()
        write(added, f"module.exports = {n};\n")
    elif action == "add_dir":
        added = src / f"dir{n}" / "inner.js"
        visible = not added.exists()
        write(added, "x\n")
    alias = src / "lib" / "alias.js"
    if alias.is_symlink() and not alias.exists():  # a rename or delete took its target
        alias.unlink()
        remaining = sorted(p.name for p in (src / "lib").iterdir() if not p.is_symlink())
        if remaining:
            os.symlink(remaining[0], alias)
    return visible


def debug_lines(run_cli: Any, request: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("LAMBDAZIP_DEBUG", "1")
    try:
        run = external(run_cli, request)
    finally:
        monkeypatch.delenv("LAMBDAZIP_DEBUG")
        logging.getLogger("lambdazip_tf").setLevel(logging.WARNING)
    assert run.code == 0, run.stderr
    return run.stderr


def pkg(folder: Path, name: str, version: str = "1.0.0", **fields: Any) -> Path:
    """An installed package: package.json plus an index.js that names itself."""
    data = {"name": name, "version": version, "main": "index.js", **fields}
    write(folder / "package.json", json.dumps(data))
    write(folder / "index.js", f"module.exports = {json.dumps(name + '@' + version)};\n")
    return folder


def node_function(src: Path, **fields: Any) -> Path:
    """A function folder with package.json and handler."""
    pkg(src, "fn", **fields)
    write(src / "handler.js", "exports.handler = async () => 'ok';\n")
    return src


def small_function(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict[str, str]]:
    """Five files and their request, with no racy window: snapshots are always trusted."""
    monkeypatch.setattr(facts, "RACY_NS", 0)
    src = tmp_path / "fn"
    for i in range(5):
        write(src / f"m{i}.js", f"module.exports = {i};\n")
    return src, {"source_dir": str(src), "output_dir": str(tmp_path / "out")}


def cache_free(request: dict[str, str]) -> dict[str, str]:
    """The result of a build with LAMBDAZIP_NO_CACHE=1, in its own process."""
    done = subprocess.run(
        [lambdazip_exe()],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "LAMBDAZIP_NO_CACHE": "1"},
    )
    result: dict[str, str] = json.loads(done.stdout)
    return result


def elf(machine: int) -> bytes:
    """The start of a little-endian ELF shared object for `machine` (62 x86_64, 183 arm64)."""
    return (
        b"\x7fELF\x02\x01\x01"
        + b"\0" * 9
        + b"\x03\x00"
        + machine.to_bytes(2, "little")
        + b"\0" * 44
    )


MACH_O = b"\xcf\xfa\xed\xfe" + b"\0" * 60  # the start of a 64-bit Mach-O file (macOS)
PE = b"MZ" + b"\0" * 62  # the start of a PE file (Windows)


def as_lambda(
    function_dir: Path,
    layer_dir: Path | None,
    binds: dict[str, Path],
    environment: dict[str, str],
    command: str,
    *args: str,
) -> subprocess.CompletedProcess[str]:
    """Run `command "$0" "$1" ...` (`args`) as Lambda runs a handler: the function at
    /var/task, the layer at /opt (an empty /opt without one), each of `binds` at its path under
    /var, in a private mount namespace that dies with the process (the host's /var and /opt are
    untouched), as an unprivileged user, with `environment` alone."""
    opt = f"mount --bind {layer_dir} /opt" if layer_dir else "mount -t tmpfs tmpfs /opt"
    mounts = "".join(f"mkdir {at}; mount --bind {folder} {at}; " for at, folder in binds.items())
    variables = " ".join(f"{key}={value}" for key, value in environment.items())
    script = (
        f"set -e; mount -t tmpfs tmpfs /var; mkdir /var/task; "
        f"mount --bind {function_dir} /var/task; {mounts}{opt}; cd /var/task; "
        f"exec setpriv --reuid=65534 --regid=65534 --clear-groups env -i {variables} {command}"
    )
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
