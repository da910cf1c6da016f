"""The console script's process tricks: the collector, and what is held to the exit.

docs/design.md, "Fast paths". A process that exits at once is a process of its own here: once
`hold_until_exit` is called, it holds for the rest of the process.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from helpers import external


def _python(code: str, cwd: Path) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_main_leaves_the_garbage_collector_as_it_found_it(tree: Path, run_cli: Any) -> None:
    assert gc.isenabled()
    assert external(run_cli, {"source_dir": str(tree)}).code == 0
    assert gc.isenabled()
    gc.disable()
    try:
        assert external(run_cli, {"source_dir": str(tree)}).code == 0
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_process_that_exits_at_once_leaves_the_collector_off(tree: Path) -> None:
    # run() exits with os._exit: turning the collector back on would only make it scan every
    # object of the run before the exit.
    request = json.dumps({"source_dir": str(tree), "output_dir": str(tree.parent / "out")})
    code = (
        "import gc, io, sys\n"
        "from lambdazip_tf.cli import main, process\n"
        "process.hold_until_exit()\n"
        f"sys.stdin = io.StringIO({request!r})\n"
        "code = main([])\n"
        "print(code, gc.isenabled(), process.held(), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tree.parent, capture_output=True, text=True, check=True
    )
    status, collecting, held = done.stderr.split()
    assert (status, collecting) == ("0", "False")
    assert int(held) >= 2  # the build handed over what it was done with, and the outcome


def test_keep_holds_objects_only_in_a_process_that_exits_at_once(tmp_path: Path) -> None:
    code = (
        "import weakref\n"
        "from lambdazip_tf.cli import process\n"
        "class Thing: pass\n"
        "thing = Thing(); gone = weakref.ref(thing); process.keep(thing); del thing\n"
        "process.hold_until_exit()\n"
        "thing = Thing(); held = weakref.ref(thing); process.keep(thing); del thing\n"
        "print(gone() is None, held() is not None, process.held())\n"
    )
    assert _python(code, tmp_path) == ["True", "True", "1"]
