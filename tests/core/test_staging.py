"""Artifacts are renamed into place only when complete (docs/design.md, "The zip")."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    assert_one_line_error,
    external,
    lambdazip_exe,
    link,
    write,
)

from lambdazip_tf.speed.database import CACHE_NAME


def test_a_failed_build_leaves_the_previous_artifact_untouched(
    tmp_path: Path, run_cli: Any
) -> None:
    src = tmp_path / "fn"
    write(src / "index.js", "x")
    target = tmp_path / "out" / "fixed.zip"
    request = {"source_dir": str(src), "output_path": str(target)}
    first = external(run_cli, request)
    assert first.code == 0, first.stderr
    before = target.read_bytes()
    write(src / "index.js", "changed")
    link(src / "bad", "/etc/hostname")
    failed = external(run_cli, request)
    assert failed.code == 1
    assert target.read_bytes() == before
    assert sorted(
        p.name for p in target.parent.iterdir() if p.suffix != ".sqlite3" and "cache" not in p.name
    ) == ["fixed.zip"]


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
