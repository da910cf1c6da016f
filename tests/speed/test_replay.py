"""The fast paths never change a result: every build is compared with a cache-free one.

docs/design.md, "Fast paths".
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    PROPERTY,
    age,
    both,
    debug_lines,
    external,
    link,
    mutate,
    mutations,
    same_as_cache_free,
    small_function,
    write,
)
from hypothesis import given

from lambdazip_tf.speed import change_path, facts, replay


@pytest.mark.slow
@PROPERTY
@given(
    steps=mutations(
        [
            "edit",
            "same_size",
            "safe_write",
            "rename",
            "chmod",
            "retarget",
            "delete",
            "add",
            "add_dir",
        ],
        1,
        5,
    )
)
def test_cached_builds_equal_cache_free_builds(
    steps: list[tuple[str, int]],
    tmp_path_factory: pytest.TempPathFactory,
    run_cli: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = tmp_path_factory.mktemp("cache")
    src = base / "fn"
    write(src / "index.js", "exports.handler = async () => 1;\n")
    write(src / "lib" / "a.js", "module.exports = 'a';\n")
    write(src / "lib" / "b.js", "module.exports = 'bb';\n")
    link(src / "lib" / "alias.js", "a.js")
    age(src)
    previous = both(run_cli, src, base, monkeypatch)
    for action, n in steps:
        visible = mutate(src, action, n)
        age(src)
        current = both(run_cli, src, base, monkeypatch)
        if visible:
            assert current != previous, f"{action} did not change the zip"
        previous = current
        assert both(run_cli, src, base, monkeypatch) == current  # and the no-op agrees


@pytest.mark.slow
def test_fast_path_change_path_and_member_store_outside_the_racy_window(
    tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "fn"
    for i in range(40):
        write(src / "lib" / f"m{i}.js", f"module.exports = {i};\n" * 50)
    write(src / "index.js", "exports.handler = async () => 1;\n")
    request = {"source_dir": str(src), "output_dir": str(tmp_path / "out")}
    first = external(run_cli, request).json()
    time.sleep(2.1)  # leave the racy window: from now on the cache is trusted
    # The first build's facts were racy (files written just before it): this run checks by
    # hashing, finds the artifact current without compressing, and records trusted facts.
    lines = debug_lines(run_cli, request, monkeypatch)
    assert "layout:" in lines
    assert "rebuild" not in lines
    noop = debug_lines(run_cli, request, monkeypatch)
    assert noop == "lambdazip-tf: DEBUG: fast path: nothing changed\n"  # no selection
    again = external(run_cli, request).json()
    assert again == first
    target = src / "lib" / "m7.js"
    before = target.stat()
    target.write_text(target.read_text().replace("7", "Z", 1))  # same size, new content
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))  # and the same mtime
    lines = debug_lines(run_cli, request, monkeypatch)
    assert "change path: 1 members of" in lines  # no selection, one member patched in
    assert "layout:" not in lines
    changed = external(run_cli, request).json()
    assert changed["content_hash"] != first["content_hash"]
    same_as_cache_free(run_cli, request, changed, tmp_path / "fresh", monkeypatch)
    # A new file changes the selection: the full build compresses it alone, the member store
    # (the change path's artifact) gives the rest.
    write(src / "lib" / "new.js", "module.exports = 'new';\n")
    lines = debug_lines(run_cli, request, monkeypatch)
    assert "rebuild: 1 of 43 entries to compress" in lines
    grown = external(run_cli, request).json()
    same_as_cache_free(run_cli, request, grown, tmp_path / "fresh2", monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("layer", [False, True], ids=["function", "with-layer"])
@PROPERTY
@given(
    steps=mutations(
        ["edit", "same_size", "chmod", "safe_write", "none", "rename", "retarget", "add", "delete"],
        2,
        6,
    )
)
def test_snapshot_replay_and_change_path_never_change_a_result(
    layer: bool,
    steps: list[tuple[str, int]],
    tmp_path_factory: pytest.TempPathFactory,
    run_cli: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fast paths taken for real: with no racy window, snapshots are always stored.

    Each mutation happens after a whole build, so its ctime is later than anything recorded;
    the no-change replay (replay.unchanged_answer) and the change path (change_path.rebuild)
    answer whenever they can, and must agree with cache-free builds. With a layer, the
    mutations reach files of both artifacts.
    """
    monkeypatch.setattr(facts, "RACY_NS", 0)  # the one racy rule (facts.is_racy)
    taken = {"noop": 0, "change": 0}
    real_current, real_rebuild = replay.unchanged_answer, change_path.rebuild

    def spy_current(*args: Any) -> Any:
        answer = real_current(*args)
        taken["noop"] += answer is not None
        return answer

    def spy_rebuild(*args: Any) -> Any:
        answer = real_rebuild(*args)
        taken["change"] += answer is not None
        return answer

    monkeypatch.setattr(replay, "unchanged_answer", spy_current)
    monkeypatch.setattr(change_path, "rebuild", spy_rebuild)
    base = tmp_path_factory.mktemp("replay")
    src = base / "fn"
    write(src / "index.js", "exports.handler = async () => 1;\n")
    for i in range(6):
        write(src / "lib" / f"m{i}.js", f"module.exports = {i};\n")
    link(src / "lib" / "alias.js", "m0.js")
    extra = {}
    if layer:
        write(src / "package.json", json.dumps({"name": "fn", "dependencies": {"dep": "1"}}))
        dep = src / "node_modules" / "dep"
        write(dep / "package.json", json.dumps({"name": "dep", "version": "1.0.0"}))
        write(dep / "index.js", "module.exports = require('./lib');\n")
        write(dep / "lib.js", "module.exports = 'dep';\n")
        extra = {"layer": "true"}
    both(run_cli, src, base, monkeypatch, **extra)
    for action, n in steps:
        if action != "none":
            mutate(src, action, n)
        changed = both(run_cli, src, base, monkeypatch, **extra)
        assert both(run_cli, src, base, monkeypatch, **extra) == changed  # nothing changed
    assert taken["noop"] >= len(steps)  # each second run is answered from the snapshot
    if any(action in ("edit", "same_size", "chmod", "safe_write") for action, _ in steps):
        assert taken["change"] >= 1


def test_ensure_takes_the_fast_paths_of_the_data_source_that_planned(
    tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The module gives `ensure` the data source's query, jsonencode()d: another spelling of
    the same request finds the snapshot, so apply checks with a stat per file."""
    src, request = small_function(tmp_path, monkeypatch)
    planned = external(run_cli, request).json()
    respelled = json.dumps(dict(reversed(request.items())), indent=1)
    monkeypatch.setenv("LAMBDAZIP_DEBUG", "1")

    def ensure(expected: str) -> Any:
        run = run_cli(["ensure", "--request-json", respelled, "--expect-sha256", expected])
        logging.getLogger("lambdazip_tf").setLevel(logging.WARNING)
        return run

    run = ensure(planned["output_base64sha256"])
    assert run.code == 0, run.stderr
    assert "layout:" not in run.stderr  # no selection: the snapshot answered
    assert "was current and matches the plan" in run.stderr
    write(src / "m2.js", "module.exports = 'edited after the plan';\n")
    stale = ensure(planned["output_base64sha256"])
    assert stale.code == 1
    assert "the sources changed between plan and apply" in stale.stderr
    assert "change path: 1 members of" in stale.stderr
    monkeypatch.delenv("LAMBDAZIP_DEBUG")
    replanned = external(run_cli, request).json()  # the plan after the edit
    same_as_cache_free(run_cli, request, replanned, tmp_path / "fresh", monkeypatch)
    monkeypatch.setenv("LAMBDAZIP_DEBUG", "1")
    again = ensure(replanned["output_base64sha256"])
    assert again.code == 0, again.stderr
    assert "layout:" not in again.stderr


def test_the_fast_paths_repeat_the_size_warning(
    tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plan answered from the snapshot, or patched, warns as the full build did."""
    monkeypatch.setattr(facts, "RACY_NS", 0)
    src = tmp_path / "fn"
    write(src / "index.js", "exports.handler = async () => 1;\n")
    with (src / "blob.bin").open("wb") as f:
        f.write(os.urandom(51 * 1024 * 1024))
    request = {
        "source_dir": str(src),
        "output_dir": str(tmp_path / "out"),
        "compression_level": "0",
    }
    warning = "over Lambda's 50 MB limit for direct upload"
    assert warning in external(run_cli, request).stderr
    noop = debug_lines(run_cli, request, monkeypatch)
    assert "layout:" not in noop and "change path" not in noop
    assert warning in noop
    write(src / "index.js", "exports.handler = async () => 2;\n")
    changed = debug_lines(run_cli, request, monkeypatch)
    assert "change path: 1 members of" in changed
    assert warning in changed
