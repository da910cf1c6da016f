"""The change path patches what changed and declines what it cannot be sure of.

docs/design.md, "Fast paths".
"""

from __future__ import annotations

import json
import marshal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    cache_free,
    debug_lines,
    external,
    run_concurrently,
    same_as_cache_free,
    small_function,
    write,
)

from lambdazip_tf.speed import change_path, facts
from lambdazip_tf.speed.database import CACHE_NAME


@pytest.mark.slow
def test_the_change_path_patches_the_function_and_the_layer(
    tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(facts, "RACY_NS", 0)
    src = tmp_path / "fn"
    write(src / "package.json", json.dumps({"name": "fn", "dependencies": {"dep": "1"}}))
    write(src / "index.js", "exports.handler = async () => require('dep');\n")
    dep = src / "node_modules" / "dep"
    write(dep / "package.json", json.dumps({"name": "dep", "version": "1.0.0"}))
    write(dep / "index.js", "module.exports = 'dep';\n")
    request = {"source_dir": str(src), "output_dir": str(tmp_path / "out"), "layer": "true"}
    first = external(run_cli, request).json()
    grown = len("module.exports = 'dep, edited and longer';\n") - (dep / "index.js").stat().st_size
    # Saved as editors and git do, renamed over: the folder's stat key changes, not its listing.
    write(dep / ".index.js.new", "module.exports = 'dep, edited and longer';\n").replace(
        dep / "index.js"
    )
    (src / "index.js").chmod(0o755)
    lines = debug_lines(run_cli, request, monkeypatch)
    assert lines.count("change path: 1 members of") == 2, lines
    changed = external(run_cli, request).json()
    assert changed["layer_output_path"] != first["layer_output_path"]
    assert changed["output_path"] != first["output_path"]  # the mode is in the content hash
    assert int(changed["unzipped_size"]) == int(first["unzipped_size"]) + grown
    same_as_cache_free(run_cli, request, changed, tmp_path / "fresh", monkeypatch)


@pytest.mark.parametrize("damage", ["index", "artifact", "update"])
def test_the_change_path_declines_when_its_inputs_are_damaged(
    damage: str, tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broken zip index, a broken snapshot update or an artifact that is not the recorded one
    sends the run to a full build, which gives the right zip."""
    src, request = small_function(tmp_path, monkeypatch)
    first = external(run_cli, request).json()
    if damage == "index":
        with sqlite3.connect(tmp_path / "out" / CACHE_NAME) as db:
            db.execute("UPDATE artifacts SET members = ?", (b"not an index",))
    elif damage == "update":  # a change path's record of new stat keys, pointing past the end
        write(src / "m0.js", "module.exports = 'a first edit';\n")
        assert "change path: 1 members of" in debug_lines(run_cli, request, monkeypatch)
        with sqlite3.connect(tmp_path / "out" / CACHE_NAME) as db:
            (data,) = db.execute("SELECT data FROM snapshot_updates").fetchone()
            update = marshal.loads(data)
            update["overrides"] = {10_000: (1, 2, 3, 4, 5)}
            db.execute("UPDATE snapshot_updates SET data = ?", (marshal.dumps(update),))
    else:  # same size, other bytes: the stat key no longer matches the recorded one
        artifact = Path(first["output_path"])
        artifact.write_bytes(artifact.read_bytes()[::-1])
    write(src / "m3.js", "module.exports = 'changed';\n")
    lines = debug_lines(run_cli, request, monkeypatch)
    assert "change path: " not in lines
    assert "layout:" in lines  # the full build ran
    changed = external(run_cli, request).json()
    same_as_cache_free(run_cli, request, changed, tmp_path / "fresh", monkeypatch)


def test_more_changes_than_the_change_path_takes_go_to_the_full_build(
    tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    src, request = small_function(tmp_path, monkeypatch)
    external(run_cli, request)
    monkeypatch.setattr(change_path, "MAX_FILES", 1)
    write(src / "m1.js", "one\n")
    write(src / "m2.js", "two\n")
    lines = debug_lines(run_cli, request, monkeypatch)
    assert "change path: " not in lines
    assert "rebuild: 2 of 5 entries to compress" in lines  # the full build, with its store
    write(src / "m3.js", "three\n")  # one file: the change path again
    assert "change path: 1 members of" in debug_lines(run_cli, request, monkeypatch)
    same_as_cache_free(
        run_cli, request, external(run_cli, request).json(), tmp_path / "f", monkeypatch
    )


@pytest.mark.slow
def test_concurrent_change_path_runs_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Eight plans at once after an edit (the snapshot is trusted) race on the same new
    artifact name and the same cache rows: all must answer the zip a cache-free build gives."""
    src = tmp_path / "fn"
    for i in range(300):
        write(src / f"d{i % 10}" / f"m{i}.js", f"module.exports = {i};\n" * 30)
    request = json.dumps({"source_dir": str(src), "output_dir": str(tmp_path / "out")})
    time.sleep(2.1)  # out of the racy window
    assert run_concurrently([request])[0][0] == 0
    write(src / "d3" / "m3.js", "module.exports = 'edited';\n")
    monkeypatch.setenv("LAMBDAZIP_DEBUG", "1")
    results = run_concurrently([request] * 8)
    monkeypatch.delenv("LAMBDAZIP_DEBUG")
    assert [code for code, _, _ in results] == [0] * 8, [err for _, _, err in results]
    # The first run to record its work took the change path: only the change path records an
    # update of the snapshot, and nothing else replaces the artifact the others check. The
    # rest answer as the race goes: the change path (1 member rewritten, or 0 when another run
    # recorded the new zip first), the no-op (another run recorded its update first), or a
    # full build (another run replaced the new zip while this one checked it).
    assert any("change path: 1 members of" in stderr for _, _, stderr in results)
    for _, _, stderr in results:
        assert any(
            sign in stderr for sign in ("change path: ", "fast path: nothing changed", "layout:")
        ), stderr
    answers = {stdout for _, stdout, _ in results}
    assert len(answers) == 1
    data = json.loads(answers.pop())
    fresh = cache_free({"source_dir": str(src), "output_dir": str(tmp_path / "fresh")})
    assert Path(data["output_path"]).read_bytes() == Path(fresh["output_path"]).read_bytes()
    leftovers = [p.name for p in (tmp_path / "out").iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []
    with sqlite3.connect(tmp_path / "out" / CACHE_NAME) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
