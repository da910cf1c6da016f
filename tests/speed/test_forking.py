"""The one seam for other processes: where fork is missing or unsafe, the same zip in one
process (docs/design.md, "Fast paths")."""

from __future__ import annotations

import importlib
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import debug_lines, external, write

from lambdazip_tf.speed import forking, pool


def _tree(src: Path) -> None:
    """More files than the pool and the split stat check start for, out of the racy window."""
    for i in range(pool.POOL_MIN_FILES + 300):
        write(src / f"d{i % 30}" / f"m{i}.js", f"module.exports = {i};\n" * (1 + i % 5))
    time.sleep(2.1)


@pytest.mark.slow
def test_without_fork_every_path_runs_in_one_process_and_writes_the_same_zip(
    tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "fn"
    _tree(src)
    monkeypatch.setenv("LAMBDAZIP_JOBS", "2")
    real_fork = os.fork
    forks: list[int] = []

    def counted() -> int:
        forks.append(1)
        return real_fork()

    monkeypatch.setattr(os, "fork", counted)
    forked = external(run_cli, {"source_dir": str(src), "output_dir": str(tmp_path / "forked")})
    assert forked.code == 0, forked.stderr
    assert forks, "the cold build forked no worker: the comparison would prove nothing"

    def refuse() -> int:
        raise AssertionError("forked where forking is not allowed")

    monkeypatch.setattr(forking, "FORK_SAFE", False)
    monkeypatch.setattr(os, "fork", refuse)
    request = {"source_dir": str(src), "output_dir": str(tmp_path / "alone")}
    alone = external(run_cli, request)
    assert alone.code == 0, alone.stderr
    want, got = forked.json(), alone.json()
    assert Path(got["output_path"]).read_bytes() == Path(want["output_path"]).read_bytes()
    assert got["content_hash"] == want["content_hash"]
    # The no-op (a stat per file, split across two processes where it may) and the change path.
    assert "nothing changed" in debug_lines(run_cli, request, monkeypatch)
    write(src / "d3" / "m3.js", "module.exports = 'edited';\n")
    assert "change path: 1 members of" in debug_lines(run_cli, request, monkeypatch)


def test_macos_and_one_job_mean_no_fork(monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        monkeypatch.setattr(sys, "platform", "darwin")
        importlib.reload(forking)
        assert not forking.fork_allowed()
        assert forking.worker_count() == 1
    finally:
        monkeypatch.undo()
        importlib.reload(forking)
    assert forking.fork_allowed() == hasattr(os, "fork")
    monkeypatch.setenv("LAMBDAZIP_JOBS", "1")
    assert not forking.fork_allowed()
    assert forking.worker_count() == 1
    monkeypatch.setenv("LAMBDAZIP_JOBS", "3")
    assert forking.worker_count() == (3 if forking.fork_allowed() else 1)
