"""The one error boundary: one line on stderr and exit 1 for every failure.

docs/design.md, "The program".
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    Run,
    assert_one_line_error,
    console,
    external,
    lambdazip_exe,
    write,
)

from lambdazip_tf import pipeline


def test_unexpected_errors_are_one_line_unless_debugging(
    tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "fn" / "index.js", "x")

    def boom(*_args: object, **_kw: object) -> None:
        raise RuntimeError("surprise\nsecond line")

    monkeypatch.setattr(pipeline, "build", boom)
    run = external(run_cli, {"source_dir": str(tmp_path / "fn")})
    assert_one_line_error(run, "internal error", "RuntimeError", "surprise second line")
    monkeypatch.setenv("LAMBDAZIP_DEBUG", "1")
    debug = external(run_cli, {"source_dir": str(tmp_path / "fn")})
    assert debug.code == 1
    assert debug.stdout == ""
    assert "Traceback" in debug.stderr


def test_the_console_script_exits_with_mains_code_and_flushes_its_answer(tmp_path: Path) -> None:
    # run() ends the process with os._exit: a block-buffered stdout (no PYTHONUNBUFFERED, as
    # under Terraform) must still be flushed, and errors still exit 1 with one line.
    write(tmp_path / "fn" / "index.js", "x")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    ok = console('{"source_dir": "fn"}', tmp_path, env)
    assert (ok.code, ok.stderr) == (0, "")
    assert ok.json()["file_count"] == "1"
    assert_one_line_error(console('{"source_dir": "missing"}', tmp_path, env), "missing")


@pytest.mark.parametrize("buffered", [True, False])
def test_a_reader_that_went_away_is_one_line_not_an_internal_error(
    tmp_path: Path, buffered: bool
) -> None:
    # Unbuffered, the write itself fails; block-buffered, the flush in run() does.
    write(tmp_path / "fn" / "index.js", "x")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    if not buffered:
        env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen(
        [lambdazip_exe()],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    proc.stdout.close()  # the reader is gone before the answer is written
    _, stderr = proc.communicate('{"source_dir": "fn"}')
    assert_one_line_error(Run(proc.returncode, "", stderr), "cannot write the result to stdout")
    assert "internal error" not in stderr


def test_a_closed_stdout_is_one_line_not_an_internal_error(tmp_path: Path) -> None:
    write(tmp_path / "fn" / "index.js", "x")
    proc = subprocess.run(
        ["sh", "-c", 'exec "$0" >&-', lambdazip_exe()],
        cwd=tmp_path,
        input='{"source_dir": "fn"}',
        capture_output=True,
        text=True,
        check=False,
    )
    run = Run(proc.returncode, "", proc.stderr)
    assert_one_line_error(run, "cannot write the result to stdout: it is closed")
