"""Fixtures shared by every test; the helpers they use are in helpers.py."""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import Run, write

from lambdazip_tf import cli


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


@pytest.fixture
def aged(tmp_path: Path) -> Path:
    """A function folder whose files left the racy window (2 s) a moment ago."""
    src = tmp_path / "fn"
    write(src / "index.js", "exports.handler = async () => require('./lib/a');\n")
    for i in range(60):
        write(src / "lib" / f"m{i}.js", f"module.exports = {i};\n" + "// padding\n" * i)
    write(src / "bin" / "tool", "#!/bin/sh\n", mode=0o755)
    time.sleep(2.1)
    return src
