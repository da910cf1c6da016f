"""External-program mode: one JSON object of strings, or nothing and one line on stderr.

docs/design.md, "The program".
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    console,
    external,
    lambdazip_exe,
    write,
)
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from lambdazip_tf.core.request import Request


def test_success_returns_strings_and_the_filebase64sha256_of_the_zip(
    tree: Path, run_cli: Any
) -> None:
    run = external(run_cli, {"source_dir": str(tree), "output_dir": str(tree.parent / "out")})
    assert run.code == 0
    assert run.stderr == ""
    data = run.json()
    raw = Path(data["output_path"]).read_bytes()
    # What Terraform's filebase64sha256() computes: base64 of the raw digest.
    assert data["output_base64sha256"] == base64.b64encode(hashlib.sha256(raw).digest()).decode()
    assert data["output_sha256"] == hashlib.sha256(raw).hexdigest()
    assert data["output_md5"] == hashlib.md5(raw).hexdigest()
    assert data["output_size"] == str(len(raw))
    assert data["file_count"] == "4"
    assert data["symlink_count"] == "0"
    assert Path(data["output_path"]).name == f"fn-{data['content_hash'][:16]}.zip"


def test_console_script_external_mode_prints_one_json_object(tmp_path: Path) -> None:
    write(tmp_path / "fn" / "index.js", "x")
    request = json.dumps({"source_dir": "fn"})
    proc = console(request, tmp_path)
    assert proc.code == 0
    assert proc.stderr == ""
    assert proc.stdout.count("\n") == 1
    data = proc.json()
    expected = {
        "output_path",
        "output_base64sha256",
        "output_sha256",
        "output_md5",
        "output_size",
        "content_hash",
        "files_hash",
        "build_options",
        "file_count",
        "symlink_count",
        "unzipped_size",
    }
    assert set(data) == expected
    module = console(request, tmp_path, module=True)
    assert module.code == 0, module.stderr
    assert module.json() == data


KEYS = list(Request.model_fields)


odd_text = st.text(
    alphabet=st.characters(codec="utf-8") | st.sampled_from(["\ud800", "\x00", "\n", ".", "/"]),
    max_size=40,
) | st.sampled_from(["..", "/", "", "[]", "[1]", '{"a": 1}', "\ud800/x", "x" * 5000])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | odd_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(odd_text, inner, max_size=4),
    max_leaves=12,
)


def _check_protocol(run: Any) -> None:
    assert "Traceback" not in run.stderr
    assert "internal error" not in run.stderr, run.stderr
    if run.code == 0:
        run.json()
        assert run.stderr == ""
    else:
        assert run.code == 1
        assert run.stdout == ""
        assert run.stderr.count("\n") == 1, run.stderr


def _safe(tmp: Path, data: Any) -> bool:
    """Keep the fuzzer from zipping or writing real folders of this machine."""
    if not isinstance(data, dict):
        return True
    for key in ("source_dir", "allowed_roots"):
        value = data.get(key)
        if isinstance(value, str) and value not in (".", "fn") and "\0" not in value:
            try:
                # Resolved: "fn/.." or ".." would otherwise zip this worker's other tests.
                inside = (tmp / value).resolve().is_relative_to(tmp.resolve())
                if os.path.lexists(tmp / value) and not inside:
                    return False
                if os.path.isabs(value) and os.path.lexists(value):
                    return False
            except (ValueError, UnicodeError):
                pass
    for key in ("output_dir", "output_path"):
        value = data.get(key)
        if isinstance(value, str) and (os.path.isabs(value) or ".." in value):
            return False
    return True


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=st.one_of(
        json_values,
        st.dictionaries(st.sampled_from([*KEYS, "sourcedir", "unknown"]), odd_text, max_size=6),
        st.dictionaries(st.sampled_from(KEYS), json_values, max_size=5),
        st.fixed_dictionaries(
            {"source_dir": st.sampled_from(["fn", ".", "missing", "fn/index.js"])},
            optional={
                key: odd_text | st.sampled_from(["[]", '["*.md"]', "true", "9"])
                for key in KEYS
                if key != "source_dir"
            },
        ),
    )
)
def test_fuzzed_requests_keep_the_protocol(
    data: Any, tmp_path_factory: pytest.TempPathFactory, run_cli: Any
) -> None:
    tmp = tmp_path_factory.mktemp("fuzz")
    write(tmp / "fn" / "index.js", "exports.handler = async () => 1;\n")
    assume(_safe(tmp, data))
    _check_protocol(run_cli([], stdin=json.dumps(data), cwd=tmp))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(max_size=200))
def test_fuzzed_stdin_text_keeps_the_protocol(
    text: str, tmp_path_factory: pytest.TempPathFactory, run_cli: Any
) -> None:
    tmp = tmp_path_factory.mktemp("fuzz-text")
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    assume(_safe(tmp, data))
    _check_protocol(run_cli([], stdin=text, cwd=tmp))


def test_huge_and_invalid_bytes_through_the_real_program(tmp_path: Path) -> None:
    write(tmp_path / "fn" / "index.js", "x")
    cases = [
        b"\xff\xfe not utf-8",
        json.dumps({"source_dir": "fn", "name": "n" * 1_000_000}).encode(),
        json.dumps({"source_dir": "fn", "excludes": json.dumps(["*.md"] * 50_000)}).encode(),
        b"[" * 100_000,
        json.dumps({"source_dir": "\ud800"}).encode(),
    ]
    for stdin in cases:
        proc = subprocess.run(
            [lambdazip_exe()], input=stdin, capture_output=True, cwd=tmp_path, check=False
        )
        assert b"Traceback" not in proc.stderr
        if proc.returncode == 0:
            assert json.loads(proc.stdout)
        else:
            assert proc.returncode == 1, proc.stderr
            assert proc.stdout == b""
            assert proc.stderr.count(b"\n") == 1, proc.stderr


def test_the_fast_path_imports_neither_pydantic_nor_the_pipeline(
    aged: Path, tmp_path: Path
) -> None:
    request = '{"source_dir": "fn", "output_dir": "out"}'
    assert console(request, tmp_path).code == 0
    code = (
        "import io, sys\n"
        "from lambdazip_tf import cli\n"
        f"sys.stdin = io.StringIO({request!r})\n"
        "assert cli.main([]) == 0\n"
        "heavy = ('pydantic', 'lambdazip_tf.pipeline', 'lambdazip_tf.speed.speculative', 'tqdm')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines()[-1] == "[]", done.stdout
