"""Many builds at once, and builds killed part-way: never a bad artifact.

docs/design.md, "The zip".
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from helpers import (
    cache_free,
    lambdazip_exe,
    run_concurrently,
    write,
)

from lambdazip_tf.speed.database import CACHE_NAME


@pytest.mark.slow
def test_ten_concurrent_builds_of_one_request_share_an_output_folder(tmp_path: Path) -> None:
    src = tmp_path / "fn"
    for i in range(300):
        write(src / f"m{i // 30}" / f"f{i}.js", f"module.exports = {i};\n" * (i + 1))
    out = tmp_path / "out"
    request = json.dumps({"source_dir": str(src), "output_dir": str(out)})
    results = run_concurrently([request] * 10)
    assert [code for code, _, _ in results] == [0] * 10, [err for _, _, err in results]
    answers = [json.loads(stdout) for _, stdout, _ in results]
    assert all(err == "" for _, _, err in results)
    assert len({a["output_path"] for a in answers}) == 1
    assert len({a["output_base64sha256"] for a in answers}) == 1
    zips = sorted(p.name for p in out.iterdir() if not p.name.startswith(".lambdazip-cache"))
    assert zips == [Path(answers[0]["output_path"]).name]  # one zip, no temp files left
    raw = Path(answers[0]["output_path"]).read_bytes()
    assert (
        base64.b64encode(hashlib.sha256(raw).digest()).decode() == answers[0]["output_base64sha256"]
    )
    subprocess.run(["unzip", "-tq", answers[0]["output_path"]], check=True, capture_output=True)


# Run as the console script runs, but SIGKILLed at the nth call of one of the places where a
# build writes: a block of the zip, the rename that publishes it, a commit of the cache. Kills
# land at chosen points, not at chosen times, so every run kills a build in progress.
_KILLED_AT = """
import os, signal, sqlite3, sys
from lambdazip_tf.core import staging

point, nth = sys.argv[1], int(sys.argv[2])
sys.argv = ["lambdazip-tf"]  # external mode
calls = 0

def strike():
    global calls
    calls += 1
    if calls == nth:
        os.kill(os.getpid(), signal.SIGKILL)

if point == "write":
    write = staging.Stage.write
    staging.Stage.write = lambda self, data: (strike(), write(self, data))[1]
elif point == "rename":
    replace = os.replace
    os.replace = lambda *args: (strike(), replace(*args))[1]
else:
    connect = sqlite3.connect

    class Struck:
        def __init__(self, db):
            self.db = db
        def execute(self, sql, *args):
            if sql == "COMMIT":
                strike()
            return self.db.execute(sql, *args)
        def __getattr__(self, name):
            return getattr(self.db, name)

    sqlite3.connect = lambda *args, **kwargs: Struck(connect(*args, **kwargs))

from lambdazip_tf.cli import run
run()
"""
KILL_POINTS = [("write", 1), ("write", 2), ("rename", 1), ("commit", 1), ("commit", 2)]


@pytest.mark.slow
def test_builds_killed_part_way_never_leave_a_bad_artifact(tmp_path: Path) -> None:
    src = tmp_path / "fn"
    rng = random.Random(6)
    for i in range(800):
        write(src / f"d{i % 20}" / f"f{i}.js", "".join(rng.choice("abcdef\n") for _ in range(8000)))
    target = tmp_path / "out" / "fn.zip"
    request = json.dumps({"source_dir": str(src), "output_path": str(target)})
    time.sleep(2.1)  # out of the racy window: the snapshot is trusted, the change path taken

    def run(*killed_at: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-c", _KILLED_AT, *killed_at] if killed_at else [lambdazip_exe()]
        env = {**os.environ, "LAMBDAZIP_DEBUG": "1"}
        return subprocess.run(
            command, input=request, capture_output=True, text=True, env=env, check=False
        )

    assert run().returncode == 0
    write(src / "d0" / "f0.js", "measure\n")
    assert "change path: 1 members of" in run().stderr
    for attempt, (kind, (point, nth)) in enumerate(
        (kind, at) for kind in ("change path", "full build") for at in KILL_POINTS
    ):
        if kind == "change path":  # an edit in place: the selection stays
            write(src / "d0" / "f0.js", f"version {attempt}\n" * 100)
        else:  # a new file: the selection changes
            write(src / f"d{attempt}" / "new.js", f"version {attempt}\n")
        killed = run(point, str(nth))
        assert killed.returncode == -signal.SIGKILL, (kind, point, nth, killed.stderr)
        if target.exists():
            with zipfile.ZipFile(target) as zf:
                assert zf.testzip() is None  # never truncated, never half-written
    with sqlite3.connect(tmp_path / "out" / CACHE_NAME) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    final = run()
    assert final.returncode == 0, final.stderr
    fresh = cache_free({"source_dir": str(src), "output_path": str(tmp_path / "fresh.zip")})
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
