"""Lambda's size limits (docs/design.md, "Lambda's limits")."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from helpers import (
    assert_one_line_error,
    external,
    write,
)


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
