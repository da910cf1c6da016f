"""The request: what Terraform sends, validated in the project's words.

docs/design.md, "The request".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    assert_one_line_error,
    external,
    write,
)


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
        ("{}", ["source_dir is required"]),
        ('{"output_dir": "out"}', ["source_dir is required"]),
        ('{"source_dir": "fn", "layer": "yes"}', ["'layer': must be true or false", "tostring()"]),
        ('{"source_dir": "fn", "include_dev_dependencies": "1"}', ["must be true or false"]),
        ('{"source_dir": "fn", "compression_level": "six"}', ["whole number from 0 to 9"]),
        ('{"source_dir": "fn", "symlinks": "follow"}', ["'symlinks': must be preserve or"]),
        ('{"source_dir": "fn", "allowed_roots": "{}"}', ["'allowed_roots'", "list of strings"]),
        ('{"source_dir": "fn", "compression_level": "11"}', ["compression_level", "9"]),
        ('{"source_dir": "fn", "excludes": "[1]"}', ["excludes", "list of strings"]),
        ('{"source_dir": "fn", "excludes": "*.md"}', ["excludes", "jsonencode"]),
        ('{"source_dir": "fn", "runtime": "ruby"}', ["runtime", "nodejs, python or files"]),
        ('{"source_dir": "fn", "python_version": "3.9"}', ["python_version", "3.10 to 3.14"]),
        ('{"source_dir": "fn", "node_modules_link": "opt/x"}', ["node_modules_link", "absolute"]),
        ('{"source_dir": "fn", "name": "../evil"}', ["'name'"]),
    ],
)
def test_bad_requests_fail_with_one_line(
    tmp_path: Path, run_cli: Any, stdin: str, needles: list[str]
) -> None:
    write(tmp_path / "fn" / "index.js", "x")
    assert_one_line_error(run_cli([], stdin=stdin, cwd=tmp_path), *needles)


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


@pytest.mark.parametrize(
    "stdin", ['{"source_dir": "fn", "excludes": "*.md"}', '{"source_dir": "fn", "excludes": "[1]"}']
)
def test_a_list_that_is_not_jsonencoded_says_so_in_the_projects_words(
    tmp_path: Path, run_cli: Any, stdin: str
) -> None:
    write(tmp_path / "fn" / "index.js", "x")
    run = run_cli([], stdin=stdin, cwd=tmp_path)
    assert_one_line_error(run, "'excludes': must be a list of strings, jsonencode()d")
    assert "Expecting value" not in run.stderr and "Input should" not in run.stderr


def test_booleans_are_exactly_what_terraforms_tostring_gives(tmp_path: Path, run_cli: Any) -> None:
    write(tmp_path / "fn" / "package.json", "{}")
    for value in ("true", "false"):
        request = {"source_dir": "fn", "layer": value, "output_dir": "out"}
        assert run_cli([], stdin=json.dumps(request), cwd=tmp_path).code == 0
    request_file = write(tmp_path / "request.json", json.dumps({"source_dir": "fn", "layer": True}))
    assert run_cli(["plan", "--request", str(request_file)], cwd=tmp_path).code == 0
    for value in ("yes", "True", "on", "t", "1", ""):
        request = {"source_dir": "fn", "layer": value}
        assert_one_line_error(run_cli([], stdin=json.dumps(request), cwd=tmp_path), "true or false")


def test_a_relative_source_dir_that_does_not_exist_says_where_it_was_looked_for(
    tmp_path: Path, run_cli: Any
) -> None:
    run = run_cli([], stdin='{"source_dir": "src/fn"}', cwd=tmp_path)
    assert_one_line_error(run, f"source_dir src/fn does not exist (relative to {tmp_path})")
