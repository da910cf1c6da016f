"""The apply-time check: the bytes on disk against the plan, and the cause of a mismatch named
(docs/design.md, "The Terraform module")."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    assert_one_line_error,
    external,
    small_function,
    write,
)


@pytest.mark.parametrize("given", ["request-json", "flags"])
def test_ensure_reads_the_bytes_and_rebuilds_an_artifact_changed_in_place(
    given: str, tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Overwritten in place with its size, mtime and inode kept, an artifact looks current to
    every stat: `ensure` hashes it, builds it again, and only then says it matches."""
    _, request = small_function(tmp_path, monkeypatch)
    planned = external(run_cli, request).json()
    artifact = Path(planned["output_path"])
    before = artifact.stat()
    data = artifact.read_bytes()
    with artifact.open("r+b") as f:  # the same inode, the same size
        f.write(data[:100] + bytes(reversed(data[100:200])) + data[200:])
    os.utime(artifact, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (artifact.stat().st_size, artifact.stat().st_mtime_ns) == (
        before.st_size,
        before.st_mtime_ns,
    )
    source = (
        ["--request-json", json.dumps(request)]
        if given == "request-json"
        else ["--source-dir", request["source_dir"], "--output-dir", request["output_dir"]]
    )
    run = run_cli(["ensure", *source, "--expect-sha256", planned["output_base64sha256"]])
    assert run.code == 0, run.stderr
    assert "changed on disk since it was built; building it again" in run.stderr
    assert "was rebuilt and matches the plan" in run.stderr
    digest = base64.b64encode(hashlib.sha256(artifact.read_bytes()).digest()).decode()
    assert digest == planned["output_base64sha256"]
    again = run_cli(["ensure", *source, "--expect-sha256", planned["output_base64sha256"]])
    assert again.code == 0, again.stderr
    assert "was current and matches the plan" in again.stderr


def _ensure_args(planned: dict[str, str], **forged: str) -> list[str]:
    """ensure's flags as the module passes them, from a planned result (some forged)."""
    values = {**planned, **forged}
    return [
        "--expect-sha256",
        values["output_base64sha256"],
        "--expect-content-hash",
        values["content_hash"],
        "--expect-files-hash",
        values["files_hash"],
        "--expect-build-options",
        values["build_options"],
    ]


def test_a_mismatch_names_its_cause(
    tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    src, request = small_function(tmp_path, monkeypatch)
    flags = ["--source-dir", request["source_dir"], "--output-dir", request["output_dir"]]
    planned = external(run_cli, request).json()

    def ensure(*args: str) -> Any:
        return run_cli(["ensure", *flags, *args])

    # The same files, another timestamp: SOURCE_DATE_EPOCH set only where the plan is applied.
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert_one_line_error(
        ensure(*_ensure_args(planned)),
        "the same files were written differently",
        "planned with timestamp 1980-01-01 00:00:00 UTC, "
        "applied with timestamp 2023-11-14 22:13:20 UTC (SOURCE_DATE_EPOCH set differently)",
    )
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    # Another tool version or deflater on the planning machine.
    other = planned["build_options"].replace("lambdazip-tf 0.1.0", "lambdazip-tf 0.0.9")
    assert_one_line_error(
        ensure(*_ensure_args(planned, output_base64sha256="x" * 44, build_options=other)),
        "planned with lambdazip-tf 0.0.9, applied with lambdazip-tf",
        "(another lambdazip-tf version)",
    )
    # Everything the same but the bytes.
    assert_one_line_error(
        ensure(*_ensure_args(planned, output_base64sha256="x" * 44)),
        "the same files and options gave other bytes",
    )
    # The files changed: named where the planned zip is still here.
    write(src / "m2.js", "module.exports = 'edited after the plan';\n")
    write(src / "new.js", "module.exports = 'added';\n")
    assert_one_line_error(
        ensure(*_ensure_args(planned)),
        "the sources changed between plan and apply (new.js added, m2.js changed)",
    )
    # Without what the plan recorded besides the sha256 (an older module): the general words.
    assert_one_line_error(
        ensure("--expect-sha256", planned["output_base64sha256"]),
        "the sources changed between plan and apply, or plan and apply ran different",
    )
