"""node_version against the shipped packages' engines.node: a warning, never a refusal.

docs/design.md, "The target platform".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import debug_lines, external, node_function, pkg, write

from lambdazip_tf.core.request import node_major
from lambdazip_tf.runtimes.nodejs.engines import admits
from lambdazip_tf.speed import facts


@pytest.mark.parametrize(
    ("value", "major"),
    [("20", 20), ("nodejs20.x", 20), ("22.x", 22), (" 18 ", 18), ("node20", None), ("", None)],
)
def test_node_major_reads_a_major_version_or_a_runtime_name(value: str, major: int | None) -> None:
    assert node_major(value) == major


def _function(tmp_path: Path) -> Path:
    """A function whose dependencies declare engines that Node.js 18 does not meet."""
    src = node_function(
        tmp_path / "fn",
        dependencies={"modern": "1.0.0", "old-range": "1.0.0", "plain": "1.0.0", "odd": "1.0.0"},
    )
    pkg(src / "node_modules" / "modern", "modern", engines={"node": ">=20"})
    pkg(src / "node_modules" / "old-range", "old-range", engines={"node": "^16 || ^18.17"})
    pkg(src / "node_modules" / "plain", "plain")  # no engines: nothing to say
    pkg(src / "node_modules" / "odd", "odd", engines={"node": "latest"})  # npm cannot read it
    return src


@pytest.mark.parametrize("node_version", ["18", "nodejs18.x"])
def test_a_package_whose_engines_exclude_the_version_is_warned_of_and_the_build_succeeds(
    tmp_path: Path, run_cli: Any, node_version: str
) -> None:
    src = _function(tmp_path)
    request = {"source_dir": str(src), "output_dir": str(tmp_path / "out")}
    run = external(run_cli, {**request, "node_version": node_version})
    assert run.code == 0, run.stderr
    assert json.loads(run.stdout) == run.json()  # one object of strings, nothing else
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert "modern@1.0.0 (>=20)" in lines[0]
    assert "excludes Node.js 18" in lines[0]
    assert "old-range" not in lines[0] and "plain" not in lines[0] and "odd" not in lines[0]
    # The zip does not depend on node_version: the same artifact as without it.
    plain = external(run_cli, request)
    assert plain.stderr == ""
    assert plain.json()["output_base64sha256"] == run.json()["output_base64sha256"]


def test_a_range_is_judged_for_the_version_asked_for(tmp_path: Path, run_cli: Any) -> None:
    src = _function(tmp_path)
    newer = external(run_cli, {"source_dir": str(src), "node_version": "nodejs22.x"})
    assert newer.code == 0, newer.stderr
    assert "old-range@1.0.0 (^16 || ^18.17) excludes Node.js 22" in newer.stderr
    assert "modern" not in newer.stderr
    fitting = external(run_cli, {"source_dir": str(src), "node_version": "nodejs18.x"})
    assert "old-range" not in fitting.stderr  # 18.17 and later fit


def test_the_fast_paths_repeat_the_engines_warning(
    tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(facts, "RACY_NS", 0)
    src = _function(tmp_path)
    request = {
        "source_dir": str(src),
        "output_dir": str(tmp_path / "out"),
        "node_version": "16",
    }
    first = external(run_cli, request)
    assert "modern@1.0.0 (>=20)" in first.stderr
    noop = debug_lines(run_cli, request, monkeypatch)
    assert "layout:" not in noop and "change path" not in noop
    assert "modern@1.0.0 (>=20)" in noop
    write(src / "handler.js", "exports.handler = async () => 'edited';\n")
    changed = debug_lines(run_cli, request, monkeypatch)
    assert "change path: 1 members of" in changed
    assert "modern@1.0.0 (>=20)" in changed


@pytest.mark.parametrize(
    ("spec", "fits"),
    [
        ("20.5.3", True),  # a pin: met by the release it names
        (">=20.5.3 <20.5.4", True),
        ("~20.11.1", True),
        ("^18.17 || >=20.9", True),
        (">=22", False),
        ("<20", False),
        ("18.x", False),
        ("latest", True),  # npm cannot read it: not judged
    ],
)
def test_ranges_are_read_as_npm_reads_them(spec: str, fits: bool) -> None:
    assert admits(spec, 20) is fits


def test_many_packages_are_counted_after_the_first_five(tmp_path: Path, run_cli: Any) -> None:
    names = [f"p{i}" for i in range(8)]
    src = node_function(tmp_path / "fn", dependencies=dict.fromkeys(names, "1.0.0"))
    for name in names:
        pkg(src / "node_modules" / name, name, engines={"node": ">=22"})
    run = external(run_cli, {"source_dir": str(src), "node_version": "20"})
    assert run.code == 0, run.stderr
    assert "p0@1.0.0 (>=22)" in run.stderr
    assert "and 3 more" in run.stderr


@pytest.mark.parametrize("value", ["twenty", "nodejs", "20.1.0", "node20"])
def test_a_node_version_that_is_not_a_major_version_is_one_line(
    tmp_path: Path, run_cli: Any, value: str
) -> None:
    write(tmp_path / "fn" / "index.js", "x")
    run = external(run_cli, {"source_dir": str(tmp_path / "fn"), "node_version": value})
    assert run.code == 1
    assert run.stdout == ""
    assert len(run.stderr.splitlines()) == 1
    assert "node_version" in run.stderr
    assert "nodejs20.x" in run.stderr
