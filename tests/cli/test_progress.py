"""Progress on a terminal, and nothing when stderr is not one (docs/design.md, "The program")."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

from helpers import write

# The console script with the display shown at once and redrawn on every file, so that what
# it draws does not depend on how fast the machine is.
DRIVER = (
    "import sys\n"
    "from lambdazip_tf.cli import progress, run\n"
    "progress.DELAY_SECONDS = 0\n"
    "progress.EVERY_SECONDS = 0\n"
    "sys.argv = ['lambdazip-tf', *sys.argv[1:]]\n"
    "run()\n"
)


def _tree(tmp_path: Path) -> tuple[Path, list[str]]:
    src = tmp_path / "fn"
    for i in range(200):
        write(src / f"d{i % 10}" / f"m{i}.js", f"module.exports = {i};\n" * 20)
    return src, ["build", "--source-dir", str(src), "--output-dir", str(tmp_path / "out")]


def test_a_build_on_a_terminal_shows_files_and_bytes_on_stderr(tmp_path: Path) -> None:
    _, args = _tree(tmp_path)
    terminal, side = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-c", DRIVER, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=side,
    )
    os.close(side)
    shown = b""
    while True:
        try:
            chunk = os.read(terminal, 65536)
        except OSError:  # the other end closed: Linux says EIO
            break
        if not chunk:
            break
        shown += chunk
    os.close(terminal)
    stdout = proc.stdout.read() if proc.stdout is not None else b""
    assert proc.wait() == 0
    text = shown.decode(errors="replace")
    assert "lambdazip-tf: packing" in text
    assert "200/200 files" in text
    assert " KB of " in text  # bytes, in human units
    json.loads(stdout)  # stdout is the answer alone


def test_a_build_into_a_pipe_shows_no_progress(tmp_path: Path) -> None:
    _, args = _tree(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, *args], capture_output=True, text=True, check=True
    )
    assert "packing" not in done.stderr
    assert done.stderr.count("\n") == 1  # the one line that says what was built
    json.loads(done.stdout)
