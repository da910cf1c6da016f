"""Hostile input and faults (issue 6; DESIGN 5.5, 6).

Fuzzed requests, adversarial trees, builds killed at random points, many concurrent builds and
Lambda's size limits. Whatever happens: one JSON object of strings on stdout and exit 0, or an
empty stdout, one line on stderr and exit 1; never a file from outside the project in a zip,
never a truncated artifact at an output path.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import stat
import subprocess
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from conftest import external, lambdazip_exe, link, manifest, run_concurrently, write
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from test_cli import assert_one_line_error

from lambdazip_tf.cache import CACHE_NAME
from lambdazip_tf.request import Request

KEYS = list(Request.model_fields)
odd_text = st.text(
    alphabet=st.characters(codec="utf-8") | st.sampled_from(["\ud800", "\x00", "\n", ".", "/"]),
    max_size=40,
) | st.sampled_from(["..", "/", "", "[]", "[1]", '{"a": 1}', "\ud800/x", "x" * 5000])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | odd_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(odd_text, inner, max_size=4),
    max_leaves=12,
)


def _check_protocol(run: Any) -> None:
    assert "Traceback" not in run.stderr
    assert "internal error" not in run.stderr, run.stderr
    if run.code == 0:
        run.json()
        assert run.stderr == ""
    else:
        assert run.code == 1
        assert run.stdout == ""
        assert run.stderr.count("\n") == 1, run.stderr


def _safe(tmp: Path, data: Any) -> bool:
    """Keep the fuzzer from zipping or writing real folders of this machine."""
    if not isinstance(data, dict):
        return True
    for key in ("source_dir", "allowed_roots"):
        value = data.get(key)
        if isinstance(value, str) and value not in (".", "fn") and "\0" not in value:
            try:
                # Resolved: "fn/.." or ".." would otherwise zip this worker's other tests.
                inside = (tmp / value).resolve().is_relative_to(tmp.resolve())
                if os.path.lexists(tmp / value) and not inside:
                    return False
                if os.path.isabs(value) and os.path.lexists(value):
                    return False
            except (ValueError, UnicodeError):
                pass
    for key in ("output_dir", "output_path"):
        value = data.get(key)
        if isinstance(value, str) and (os.path.isabs(value) or ".." in value):
            return False
    return True


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=st.one_of(
        json_values,
        st.dictionaries(st.sampled_from([*KEYS, "sourcedir", "unknown"]), odd_text, max_size=6),
        st.dictionaries(st.sampled_from(KEYS), json_values, max_size=5),
        st.fixed_dictionaries(
            {"source_dir": st.sampled_from(["fn", ".", "missing", "fn/index.js"])},
            optional={
                key: odd_text | st.sampled_from(["[]", '["*.md"]', "true", "9"])
                for key in KEYS
                if key != "source_dir"
            },
        ),
    )
)
def test_fuzzed_requests_keep_the_protocol(
    data: Any, tmp_path_factory: pytest.TempPathFactory, run_cli: Any
) -> None:
    tmp = tmp_path_factory.mktemp("fuzz")
    write(tmp / "fn" / "index.js", "exports.handler = async () => 1;\n")
    assume(_safe(tmp, data))
    _check_protocol(run_cli([], stdin=json.dumps(data), cwd=tmp))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(max_size=200))
def test_fuzzed_stdin_text_keeps_the_protocol(
    text: str, tmp_path_factory: pytest.TempPathFactory, run_cli: Any
) -> None:
    tmp = tmp_path_factory.mktemp("fuzz-text")
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    assume(_safe(tmp, data))
    _check_protocol(run_cli([], stdin=text, cwd=tmp))


def test_huge_and_invalid_bytes_through_the_real_program(tmp_path: Path) -> None:
    write(tmp_path / "fn" / "index.js", "x")
    cases = [
        b"\xff\xfe not utf-8",
        json.dumps({"source_dir": "fn", "name": "n" * 1_000_000}).encode(),
        json.dumps({"source_dir": "fn", "excludes": json.dumps(["*.md"] * 50_000)}).encode(),
        b"[" * 100_000,
        json.dumps({"source_dir": "\ud800"}).encode(),
    ]
    for stdin in cases:
        proc = subprocess.run(
            [lambdazip_exe()], input=stdin, capture_output=True, cwd=tmp_path, check=False
        )
        assert b"Traceback" not in proc.stderr
        if proc.returncode == 0:
            assert json.loads(proc.stdout)
        else:
            assert proc.returncode == 1, proc.stderr
            assert proc.stdout == b""
            assert proc.stderr.count(b"\n") == 1, proc.stderr


@pytest.mark.parametrize("target", ["/etc/passwd", "HOME_CREDENTIALS", "..", "/", "../.."])
def test_links_out_of_the_project_are_refused_and_named(
    tmp_path: Path, run_cli: Any, target: str
) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    src = repo / "fn"
    write(src / "index.js", "x")
    if target == "HOME_CREDENTIALS":
        credentials = write(tmp_path / "home" / ".aws" / "credentials", "[default]\nkey=secret")
        target = str(credentials)
    bad = link(src / "sneaky", target)
    run = external(run_cli, {"source_dir": str(src), "output_dir": str(tmp_path / "out")})
    if target == "..":
        # ".." is the repository: allowed, but it contains the function itself.
        assert_one_line_error(run, "link cycle", str(bad))
    else:
        assert_one_line_error(run, str(bad), "outside the function and allowed_roots")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.zip"))


def test_sockets_and_device_nodes_are_skipped_and_listed(tmp_path: Path, run_cli: Any) -> None:
    src = tmp_path / "fn"
    write(src / "index.js", "x")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(src / "app.sock"))
    os.mknod(src / "null", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    os.mkfifo(src / "fifo")
    try:
        data = external(run_cli, {"source_dir": str(src), "output_dir": str(tmp_path / "o")})
        assert set(manifest(data.json()["output_path"])) == {"index.js"}
        plan = run_cli(
            ["plan", "--json", "--source-dir", str(src), "--output-dir", str(tmp_path / "o")]
        )
        reasons = {x["path"]: x["reason"] for x in json.loads(plan.stdout)["excluded"]}
        for name in ("app.sock", "null", "fifo"):
            assert reasons[name] == "not a regular file, folder or link"
    finally:
        server.close()


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    # As root every file is readable, so the build runs as nobody, like an unprivileged CI user.
    base = Path(tempfile.mkdtemp(prefix="lambdazip-unreadable-"))
    try:
        base.chmod(0o777)
        src = base / "fn"
        write(src / "index.js", "x")
        secret = write(src / "secret.js", "nobody may read this", mode=0o000)
        for folder in (base, src):
            folder.chmod(0o777)
        request = json.dumps({"source_dir": str(src), "output_dir": str(base / "out")})
        proc = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", lambdazip_exe()],
            input=request,
            capture_output=True,
            text=True,
            check=False,
            env={"PATH": "/usr/bin:/bin", "HOME": str(base)},
        )
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert proc.stdout == ""
        assert proc.stderr.count("\n") == 1
        assert f"cannot read {secret}: permission denied" in proc.stderr
    finally:
        shutil.rmtree(base)


def test_a_file_that_disappears_during_the_build_is_an_error(
    tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lambdazip_tf import layout as layout_module

    src = tmp_path / "fn"
    write(src / "index.js", "x")
    doomed = write(src / "gone.js", "soon gone")
    original = layout_module.build_layout

    def vanish_after_selection(context: Any, fs: Any) -> Any:
        result = original(context, fs)
        doomed.unlink()
        return result

    monkeypatch.setattr("lambdazip_tf.pipeline.build_layout", vanish_after_selection)
    run = external(run_cli, {"source_dir": str(src), "output_dir": str(tmp_path / "o")})
    assert_one_line_error(run, f"cannot read {doomed}")
    assert not list((tmp_path / "o").glob("*.zip"))


def test_non_utf8_names_are_refused_and_long_names_work(tmp_path: Path, run_cli: Any) -> None:
    src = tmp_path / "fn"
    write(src / "index.js", "x")
    long_name = "l" * 251 + ".js"
    write(src / long_name, "long")
    deep = src.joinpath(*["d" * 100] * 30) / "deep.js"
    write(deep, "deep")
    request = {"source_dir": str(src), "output_dir": str(tmp_path / "o")}
    names = manifest(external(run_cli, request).json()["output_path"])
    assert long_name in names
    assert str(deep.relative_to(src)) in names
    bad = os.path.join(os.fsencode(src), b"caf\xe9.js")
    with open(bad, "wb") as f:
        f.write(b"latin-1 name")
    assert_one_line_error(external(run_cli, request), "not valid UTF-8", "caf")


@pytest.mark.slow
def test_builds_killed_at_random_points_never_leave_a_bad_artifact(tmp_path: Path) -> None:
    src = tmp_path / "fn"
    rng = random.Random(6)
    for i in range(400):
        write(src / f"d{i % 20}" / f"f{i}.js", "".join(rng.choice("abcdef\n") for _ in range(8000)))
    target = tmp_path / "out" / "fn.zip"
    request = json.dumps({"source_dir": str(src), "output_path": str(target)})
    time.sleep(2.1)  # out of the racy window: the snapshot is trusted, the change path taken

    def run() -> tuple[float, str]:
        started = time.perf_counter()
        done = subprocess.run(
            [lambdazip_exe()],
            input=request,
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "LAMBDAZIP_DEBUG": "1"},
        )
        return time.perf_counter() - started, done.stderr

    # How long each kind of build takes here, so that the kills land inside builds: a full
    # build (a new file changes the selection) and the change path (an edit in place).
    full, _ = run()
    write(src / "d0" / "f0.js", "measure\n")
    change, log = run()
    assert "change path: 1 members of" in log
    killed = 0
    for attempt in range(16):
        if attempt < 8:  # every run has work to do
            write(src / "d0" / "f0.js", f"version {attempt}\n" * 100)
        else:
            write(src / f"d{attempt}" / "new.js", f"version {attempt}\n")
        duration = change if attempt < 8 else full
        proc = subprocess.Popen(
            [lambdazip_exe()],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdin is not None
        proc.stdin.write(request.encode())
        proc.stdin.close()
        time.sleep(rng.uniform(0.0, duration))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            killed += 1
        proc.wait()
        for stream in (proc.stdout, proc.stderr):
            assert stream is not None
            stream.close()
        if target.exists():
            with zipfile.ZipFile(target) as zf:
                assert zf.testzip() is None  # never truncated, never half-written
    assert killed >= 4, "the timing never caught a build in progress"
    with sqlite3.connect(tmp_path / "out" / CACHE_NAME) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    final = subprocess.run(
        [lambdazip_exe()], input=request, capture_output=True, text=True, check=True
    )
    fresh = _cache_free({"source_dir": str(src), "output_path": str(tmp_path / "fresh.zip")})
    assert target.read_bytes() == (tmp_path / "fresh.zip").read_bytes()
    assert json.loads(final.stdout)["content_hash"] == fresh["content_hash"]


@pytest.mark.slow
def test_twenty_concurrent_overlapping_builds_share_one_folder(tmp_path: Path) -> None:
    sources = []
    for k in range(4):
        src = tmp_path / f"fn{k}"
        for i in range(120):
            write(src / f"m{i}.js", f"module.exports = {i * (k + 1)};\n" * 40)
        write(src / "shared.js", "identical in every function\n" * 200)
        sources.append(src)
    out = tmp_path / "shared-out"
    requests = [
        json.dumps(
            {
                "source_dir": str(sources[i % 4]),
                "output_dir": str(out),
                "compression_level": str(6 if i % 3 else 9),
            }
        )
        for i in range(20)
    ]
    for _round in range(2):
        results = run_concurrently(requests)
        assert [code for code, _, _ in results] == [0] * 20, [err for _, _, err in results]
        for _, stdout, stderr in results:
            assert stderr == ""
            data = json.loads(stdout)
            raw = Path(data["output_path"]).read_bytes()
            assert (
                base64.b64encode(hashlib.sha256(raw).digest()).decode()
                == data["output_base64sha256"]
            )
            with zipfile.ZipFile(data["output_path"]) as zf:
                assert zf.testzip() is None
        write(sources[0] / "m0.js", f"changed in round {_round}\n")


def _cache_free(request: dict[str, str]) -> dict[str, str]:
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


@pytest.mark.slow
def test_concurrent_change_path_runs_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Eight plans at once after an edit all take the change path (the snapshot is trusted):
    they race on the same new artifact name and the same cache rows, and all must answer the
    zip a cache-free build gives."""
    src = tmp_path / "fn"
    for i in range(300):
        write(src / f"d{i % 10}" / f"m{i}.js", f"module.exports = {i};\n" * 30)
    request = json.dumps({"source_dir": str(src), "output_dir": str(tmp_path / "out")})
    time.sleep(2.1)  # out of the racy window
    assert run_concurrently([request])[0][0] == 0
    write(src / "d3" / "m3.js", "module.exports = 'edited';\n")
    monkeypatch.setenv("LAMBDAZIP_DEBUG", "1")
    results = run_concurrently([request] * 8)
    monkeypatch.delenv("LAMBDAZIP_DEBUG")
    assert [code for code, _, _ in results] == [0] * 8, [err for _, _, err in results]
    for _, _, stderr in results:
        # 1 member rewritten, or 0 when a run that finished first had recorded the new zip
        assert "change path: " in stderr
        assert "layout:" not in stderr
    answers = {stdout for _, stdout, _ in results}
    assert len(answers) == 1
    data = json.loads(answers.pop())
    fresh = _cache_free({"source_dir": str(src), "output_dir": str(tmp_path / "fresh")})
    assert Path(data["output_path"]).read_bytes() == Path(fresh["output_path"]).read_bytes()
    leftovers = [p.name for p in (tmp_path / "out").iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []
    with sqlite3.connect(tmp_path / "out" / CACHE_NAME) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_over_50_mb_zipped_warns_and_still_succeeds(tmp_path: Path, run_cli: Any) -> None:
    src = tmp_path / "fn"
    src.mkdir()
    with (src / "blob.bin").open("wb") as f:
        for _ in range(51):
            f.write(os.urandom(1024 * 1024))
    run = external(
        run_cli,
        {"source_dir": str(src), "output_dir": str(tmp_path / "o"), "compression_level": "0"},
    )
    assert run.code == 0
    run.json()
    assert run.stderr.count("\n") == 1
    assert "over Lambda's 50 MB limit for direct upload" in run.stderr


def test_over_250_mb_unzipped_fails_naming_the_largest_packages(
    tmp_path: Path, run_cli: Any
) -> None:
    src = tmp_path / "fn"
    write(src / "package.json", json.dumps({"dependencies": {"huge": "1", "big": "1"}}))
    for name, mb in (("huge", 200), ("big", 60)):
        pkg = src / "node_modules" / name
        write(pkg / "package.json", json.dumps({"name": name, "version": "1.0.0"}))
        with (pkg / "data.bin").open("wb") as f:
            f.truncate(mb * 1024 * 1024)  # sparse: no disk used, never read
    run = external(run_cli, {"source_dir": str(src), "output_dir": str(tmp_path / "o")})
    assert_one_line_error(run, "over Lambda's 250 MB limit", "huge 200.0 MB", "big 60.0 MB")


@pytest.mark.skipif(
    shutil.which("unshare") is None or os.geteuid() != 0,
    reason="needs root and unshare for a private mount namespace",
)
def test_a_full_disk_is_one_line_naming_the_output_folder(tmp_path: Path) -> None:
    # A real ENOSPC: the output folder is a 2 MB tmpfs, mounted in a mount namespace of the
    # build's own that ends with it. The cache database fits; the zip of 3 MB of random bytes
    # does not.
    src, out = tmp_path / "fn", tmp_path / "out"
    write(src / "index.js", "exports.handler = async () => 1;\n")
    (src / "blob.bin").write_bytes(random.Random(7).randbytes(3 * 1024 * 1024))
    out.mkdir()
    script = 'mount -t tmpfs -o size=2m tmpfs "$1" && "$2"; code=$?; ls -A "$1"; exit $code'
    namespace = ["unshare", "--mount", "--propagation", "private"]
    proc = subprocess.run(
        [*namespace, "sh", "-c", script, "sh", str(out), lambdazip_exe()],
        input=json.dumps({"source_dir": str(src), "output_dir": str(out)}),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1
    assert proc.stderr == f"lambdazip-tf: error: cannot write in {out}: No space left on device\n"
    assert proc.stdout.split() == [CACHE_NAME]  # no zip, no temporary file left behind
    assert not list(out.iterdir())  # the mount ended with the namespace


def test_a_failed_fsync_publishes_nothing_and_keeps_the_last_artifact(
    tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "fn"
    write(src / "index.js", "v1")
    request = {"source_dir": str(src), "output_path": str(tmp_path / "out" / "fn.zip")}
    assert external(run_cli, request).code == 0
    before = (tmp_path / "out" / "fn.zip").read_bytes()
    write(src / "index.js", "v2, longer")

    def failing(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing)
    run = external(run_cli, request)
    assert_one_line_error(run, "cannot write", "fn.zip: Input/output error")
    assert "internal error" not in run.stderr
    assert (tmp_path / "out" / "fn.zip").read_bytes() == before
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.endswith(".tmp")]
