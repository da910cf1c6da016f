"""Atomic writes and concurrent builds into one output folder (DESIGN 6; issue 2)."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from conftest import external, link, run_concurrently, write


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


def test_a_file_that_changes_size_during_the_build_is_an_error(
    tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lambdazip_tf import layout as layout_module

    src = tmp_path / "fn"
    write(src / "index.js", "short")
    original = layout_module.build_layout

    def grow_after_selection(context: Any, fs: Any) -> Any:
        result = original(context, fs)
        write(src / "index.js", "much longer than before")
        return result

    monkeypatch.setattr("lambdazip_tf.pipeline.build_layout", grow_after_selection)
    run = external(run_cli, {"source_dir": str(src), "output_dir": str(tmp_path / "o")})
    assert run.code == 1
    assert "changed size" in run.stderr
    assert not list((tmp_path / "o").glob("*.zip"))
