"""The pipeline: files that change while a build reads them (docs/design.md, "The zip")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import (
    assert_one_line_error,
    external,
    write,
)

from lambdazip_tf.core import layout as layout_module


def test_a_file_that_disappears_during_the_build_is_an_error(
    tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
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


def test_a_file_that_changes_size_during_the_build_is_an_error(
    tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
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
