"""The external-program protocol and the command line (DESIGN 2, 3, 4; issue 2)."""

from __future__ import annotations

import base64
import gc
import hashlib
import json
import os
import subprocess
import weakref
from pathlib import Path
from typing import Any

import pytest
from conftest import Run, console, external, lambdazip_exe, write

from lambdazip_tf import __version__, cli, commands, exiting
from lambdazip_tf.request import Request


def assert_one_line_error(run: Run, *needles: str) -> None:
    """The protocol's failure shape: exit 1, nothing on stdout, one line on stderr."""
    assert run.code == 1
    assert run.stdout == ""
    assert run.stderr.endswith("\n")
    assert run.stderr.count("\n") == 1, run.stderr
    assert "Traceback" not in run.stderr
    for needle in needles:
        assert needle in run.stderr, run.stderr


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


@pytest.mark.parametrize(
    ("stdin", "needles"),
    [
        ("", ["stdin is empty"]),
        ("   \n", ["stdin is empty"]),
        ("{not json", ["not valid JSON", "line 1"]),
        ('["source_dir", "fn"]', ["must be a JSON object", "an array"]),
        ('"fn"', ["must be a JSON object", "a string"]),
        ('{"source_dir": 7}', ["'source_dir' must be a string", "only strings"]),
        ('{"source_dir": "fn", "layer": true}', ["'layer' must be a string"]),
        ('{"source_dri": "fn"}', ["unknown request key 'source_dri'", "did you mean 'source_dir'"]),
        ('{"source_dir": "fn", "zzz": "1"}', ["unknown request key 'zzz'", "valid keys:"]),
        ("{}", ["'source_dir'", "Field required"]),
        ('{"source_dir": "fn", "compression_level": "11"}', ["compression_level", "9"]),
        ('{"source_dir": "fn", "excludes": "[1]"}', ["excludes", "list of strings"]),
        ('{"source_dir": "fn", "excludes": "*.md"}', ["excludes", "jsonencode"]),
        ('{"source_dir": "fn", "runtime": "python"}', ["runtime", "nodejs"]),
        ('{"source_dir": "fn", "node_modules_link": "opt/x"}', ["node_modules_link", "absolute"]),
        ('{"source_dir": "fn", "name": "../evil"}', ["'name'"]),
    ],
)
def test_bad_requests_fail_with_one_line(
    tmp_path: Path, run_cli: Any, stdin: str, needles: list[str]
) -> None:
    write(tmp_path / "fn" / "index.js", "x")
    assert_one_line_error(run_cli([], stdin=stdin, cwd=tmp_path), *needles)


def test_missing_and_non_folder_source_dir_are_named(tmp_path: Path, run_cli: Any) -> None:
    missing = tmp_path / "nope"
    assert_one_line_error(
        external(run_cli, {"source_dir": str(missing)}), str(missing), "does not exist"
    )
    afile = write(tmp_path / "file.js", "x")
    assert_one_line_error(
        external(run_cli, {"source_dir": str(afile)}), str(afile), "is not a folder"
    )


def test_unwritable_output_folder_is_named(tmp_path: Path, run_cli: Any) -> None:
    # We run as root, so permissions do not stop us; a regular file in the way does.
    write(tmp_path / "fn" / "index.js", "x")
    blocker = write(tmp_path / "blocker", "I am a file")
    run = external(run_cli, {"source_dir": str(tmp_path / "fn"), "output_dir": str(blocker / "o")})
    assert_one_line_error(run, "cannot create output folder", str(blocker / "o"))


def test_unexpected_errors_are_one_line_unless_debugging(
    tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "fn" / "index.js", "x")

    def boom(*_args: object, **_kw: object) -> None:
        raise RuntimeError("surprise\nsecond line")

    monkeypatch.setattr(commands, "build", boom)
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


def test_a_process_that_exits_at_once_leaves_the_collector_off(
    tree: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # run() exits with os._exit: turning the collector back on would only make it scan every
    # object of the run before the exit (exiting.py).
    monkeypatch.setattr(exiting, "_holding", True)
    monkeypatch.setattr(exiting, "_kept", [])
    try:
        assert external(run_cli, {"source_dir": str(tree)}).code == 0
        assert not gc.isenabled()
        assert exiting._kept  # the build handed over what it was done with
    finally:
        gc.enable()


def test_keep_holds_objects_only_in_a_process_that_exits_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Thing:
        pass

    monkeypatch.setattr(exiting, "_kept", [])
    thing = Thing()
    gone = weakref.ref(thing)
    exiting.keep(thing)
    del thing
    assert gone() is None
    monkeypatch.setattr(exiting, "_holding", True)
    thing = Thing()
    held = weakref.ref(thing)
    exiting.keep(thing)
    del thing
    assert held() is not None


def test_terraform_style_strings_are_decoded(tree: Path, run_cli: Any) -> None:
    request = {
        "source_dir": str(tree),
        "output_dir": str(tree.parent / "out"),
        "excludes": json.dumps(["lib/"]),
        "exclude_packages": json.dumps([]),
        "layer": "false",
        "compression_level": "9",
        "name": "",
        "symlinks": "preserve",
    }
    data = external(run_cli, request).json()
    assert data["file_count"] == "3"  # lib/util.js excluded
    assert Path(data["output_path"]).name.startswith("fn-")


def test_build_and_request_file(tree: Path, run_cli: Any, tmp_path: Path) -> None:
    request_file = write(
        tmp_path / "req.json",
        json.dumps({"source_dir": str(tree), "output_dir": str(tmp_path / "out"), "layer": False}),
    )
    run = run_cli(["build", "--request", str(request_file), "--name", "renamed"])
    assert run.code == 0, run.stderr
    data = json.loads(run.stdout)
    assert Path(data["output_path"]).name.startswith("renamed-")
    again = run_cli(["build", "--request", str(request_file)])
    assert json.loads(again.stdout)["content_hash"] == data["content_hash"]


def test_build_flags_need_a_source(run_cli: Any) -> None:
    assert_one_line_error(run_cli(["build"]), "--source-dir")


def test_plan_writes_nothing_and_reports_exclusions(
    tree: Path, run_cli: Any, tmp_path: Path
) -> None:
    write(tree / ".env", "SECRET=1")
    write(tree / "notes.md", "# notes")
    out = tmp_path / "out"
    run = run_cli(
        ["plan", "--source-dir", str(tree), "--output-dir", str(out), "--exclude", "*.md"]
    )
    assert run.code == 0, run.stderr
    assert not out.exists()
    assert "would be built" in run.stdout
    assert ".env  (default: likely secret (environment file) pattern '.env*')" in run.stdout
    assert "notes.md  (excludes pattern '*.md')" in run.stdout
    assert "f 0644" in run.stdout
    assert "lib/util.js" in run.stdout
    built = run_cli(
        ["build", "--source-dir", str(tree), "--output-dir", str(out), "--exclude", "*.md"]
    )
    data = json.loads(built.stdout)
    listing = sorted(p.name for p in out.iterdir())
    report = run_cli(
        ["plan", "--json", "--source-dir", str(tree), "--output-dir", str(out), "--exclude", "*.md"]
    )
    plan = json.loads(report.stdout)
    assert plan["current"] is True
    assert plan["content_hash"] == data["content_hash"]
    assert plan["function"]["path"] == data["output_path"]
    assert {"path": "notes.md", "reason": "excludes pattern '*.md'"} in plan["excluded"]
    assert sorted(p.name for p in out.iterdir()) == listing  # plan wrote nothing
    changed = write(tree / "index.js", "changed")
    assert changed.exists()
    stale = json.loads(
        run_cli(
            [
                "plan",
                "--json",
                "--source-dir",
                str(tree),
                "--output-dir",
                str(out),
                "--exclude",
                "*.md",
            ]
        ).stdout
    )
    assert stale["current"] is False
    assert stale["content_hash"] != data["content_hash"]


def test_negated_pattern_opts_a_default_exclude_back_in(tree: Path, run_cli: Any) -> None:
    write(tree / ".env.production", "PUBLIC=1")
    write(tree / ".env", "SECRET=1")
    run = external(
        run_cli,
        {
            "source_dir": str(tree),
            "output_dir": str(tree.parent / "o"),
            "excludes": json.dumps(["!.env.production"]),
        },
    )
    from conftest import manifest

    names = manifest(run.json()["output_path"])
    assert ".env.production" in names
    assert ".env" not in names


def test_help_text_lists_keys(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    top = capsys.readouterr().out
    for key in Request.model_fields:
        assert key in top
    with pytest.raises(SystemExit):
        cli.main(["build", "--help"])
    sub = capsys.readouterr().out
    for key in Request.model_fields:
        assert (
            "--"
            + {
                "excludes": "exclude",
                "exclude_packages": "exclude-package",
                "allowed_roots": "allowed-root",
            }.get(key, key.replace("_", "-"))
            in sub
        )
    with pytest.raises(SystemExit):
        cli.main(["--version"])
    assert capsys.readouterr().out.strip() == f"lambdazip-tf {__version__}"
