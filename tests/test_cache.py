"""The cache never changes a result (issue 5; DESIGN 7).

Every build here runs twice: through the external-program mode with the cache (fast path,
snapshots, stat cache, member store) and with LAMBDAZIP_NO_CACHE=1 into another folder. The zips
must be byte-identical whatever happened to the tree in between, including edits made to defeat
a stat cache: same size, mtime restored.
"""

from __future__ import annotations

import contextlib
import json
import logging
import marshal
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import build_ok, external, link, write
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lambdazip_tf.artifact import _Source
from lambdazip_tf.cache import CACHE_NAME, Cache
from lambdazip_tf.entries import Entry

OLD = 1_000_000_000  # 2001: far outside the racy window
PROPERTY = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def mutations(actions: list[str], min_size: int, max_size: int) -> st.SearchStrategy[Any]:
    """Sequences of (mutation, number) steps for `_mutate`."""
    return st.lists(
        st.tuples(st.sampled_from(actions), st.integers(min_value=0, max_value=50)),
        min_size=min_size,
        max_size=max_size,
    )


def _age(root: Path) -> None:
    """Set every mtime back: a cache keyed on mtime alone would now miss every change."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.utime(Path(dirpath) / name, (OLD, OLD), follow_symlinks=False)
    os.utime(root, (OLD, OLD))


def _both(
    run_cli: Any, src: Path, base: Path, monkeypatch: pytest.MonkeyPatch, **extra: str
) -> bytes:
    """Build with the cache and without; the zips and the whole results must agree."""
    request = {"source_dir": str(src), "output_dir": str(base / "cached"), **extra}
    cached = external(run_cli, request)
    assert cached.code == 0, cached.stderr
    got = cached.json()
    _same_as_cache_free(run_cli, request, got, base / "fresh", monkeypatch)
    layer = Path(got["layer_output_path"]).read_bytes() if "layer_output_path" in got else b""
    return Path(got["output_path"]).read_bytes() + layer


def _same_as_cache_free(
    run_cli: Any,
    request: dict[str, str],
    got: dict[str, str],
    folder: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A cache-free build of `request` into `folder` gives the same zips and result as `got`."""
    monkeypatch.setenv("LAMBDAZIP_NO_CACHE", "1")
    try:
        fresh = external(run_cli, {**request, "output_dir": str(folder)})
    finally:
        monkeypatch.delenv("LAMBDAZIP_NO_CACHE")
    assert fresh.code == 0, fresh.stderr
    want = fresh.json()
    assert got.keys() == want.keys()
    for key, value in got.items():
        if key.endswith("output_path"):  # the same name, in the other output folder
            assert Path(value).read_bytes() == Path(want[key]).read_bytes()
            assert Path(value).name == Path(want[key]).name
        else:
            assert value == want[key], key


def _mutate(src: Path, action: str, n: int) -> bool:
    """Apply one mutation; True when it must show in the zip (it changed a file, or added one
    that was not there)."""
    files = sorted(
        p
        for p in src.rglob("*")
        if p.is_file() and not p.is_symlink() and p.name != "package.json"  # keep them JSON
    )
    target = files[n % len(files)] if files else None
    visible = target is not None and action in (
        "edit",
        "same_size",
        "rename",
        "chmod",
        "safe_write",
    )
    if action == "edit" and target:
        target.write_text(target.read_text() + f"// edit {n}\n")
    elif action == "safe_write" and target:  # as editors and git do: a new file renamed over
        temporary = target.with_name(f".{target.name}.new")
        temporary.write_text(target.read_text() + f"// saved {n}\n")
        temporary.chmod(target.stat().st_mode)
        temporary.replace(target)
    elif action == "same_size" and target:
        st_ = target.stat()
        data = bytearray(target.read_bytes() or b"x")
        data[0] = (data[0] + 1) % 128 or 65
        target.write_bytes(bytes(data))
        os.utime(target, ns=(st_.st_atime_ns, st_.st_mtime_ns))  # mtime restored
    elif action == "rename" and target:
        target.rename(target.with_name(f"renamed{n}-{target.name}"))
    elif action == "chmod" and target:
        target.chmod(target.stat().st_mode ^ 0o111)
    elif action == "retarget":
        alias = src / "lib" / "alias.js"
        if alias.is_symlink():
            alias.unlink()
        others = [f for f in files if f.parent == src / "lib" and f.name != "alias.js"]
        if others:
            os.symlink(others[n % len(others)].name, alias)
    elif action == "delete" and target and len(files) > 2 and target.name != "index.js":
        target.unlink()
    elif action == "add":
        added = src / "lib" / f"new{n}.js"
        visible = not added.exists()
        write(added, f"module.exports = {n};\n")
    elif action == "add_dir":
        added = src / f"dir{n}" / "inner.js"
        visible = not added.exists()
        write(added, "x\n")
    alias = src / "lib" / "alias.js"
    if alias.is_symlink() and not alias.exists():  # a rename or delete took its target
        alias.unlink()
        remaining = sorted(p.name for p in (src / "lib").iterdir() if not p.is_symlink())
        if remaining:
            os.symlink(remaining[0], alias)
    return visible


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
    _age(src)
    previous = _both(run_cli, src, base, monkeypatch)
    for action, n in steps:
        visible = _mutate(src, action, n)
        _age(src)
        current = _both(run_cli, src, base, monkeypatch)
        if visible:
            assert current != previous, f"{action} did not change the zip"
        previous = current
        assert _both(run_cli, src, base, monkeypatch) == current  # and the no-op agrees


def _debug_lines(run_cli: Any, request: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("LAMBDAZIP_DEBUG", "1")
    try:
        run = external(run_cli, request)
    finally:
        monkeypatch.delenv("LAMBDAZIP_DEBUG")
        logging.getLogger("lambdazip_tf").setLevel(logging.WARNING)
    assert run.code == 0, run.stderr
    return run.stderr


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
    lines = _debug_lines(run_cli, request, monkeypatch)
    assert "layout:" in lines
    assert "rebuild" not in lines
    assert _debug_lines(run_cli, request, monkeypatch) == ""  # the fast path logs nothing
    again = external(run_cli, request).json()
    assert again == first
    target = src / "lib" / "m7.js"
    before = target.stat()
    target.write_text(target.read_text().replace("7", "Z", 1))  # same size, new content
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))  # and the same mtime
    lines = _debug_lines(run_cli, request, monkeypatch)
    assert "change path: 1 members of" in lines  # no selection, one member patched in
    assert "layout:" not in lines
    changed = external(run_cli, request).json()
    assert changed["content_hash"] != first["content_hash"]
    _same_as_cache_free(run_cli, request, changed, tmp_path / "fresh", monkeypatch)
    # A new file changes the selection: the full build compresses it alone, the member store
    # (the change path's artifact) gives the rest.
    write(src / "lib" / "new.js", "module.exports = 'new';\n")
    lines = _debug_lines(run_cli, request, monkeypatch)
    assert "rebuild: 1 of 43 entries to compress" in lines
    grown = external(run_cli, request).json()
    _same_as_cache_free(run_cli, request, grown, tmp_path / "fresh2", monkeypatch)


def test_a_corrupt_or_foreign_cache_heals_itself(tmp_path: Path, run_cli: Any) -> None:
    src = tmp_path / "fn"
    write(src / "index.js", "x")
    request = {"source_dir": str(src), "output_dir": str(tmp_path / "out")}
    first = external(run_cli, request).json()
    database = tmp_path / "out" / CACHE_NAME
    database.write_bytes(b"this is not a database" * 100)
    healed = external(run_cli, request)
    assert healed.code == 0
    assert healed.json() == first
    assert "started a new one" in healed.stderr
    assert healed.stderr.count("\n") == 1
    with sqlite3.connect(database) as db:
        db.execute("UPDATE meta SET value = 'lambdazip-tf cache 0' WHERE key = 'schema'")
    again = external(run_cli, request)
    assert again.code == 0
    assert again.json() == first


def test_new_caches_use_large_pages_and_old_ones_still_work(tmp_path: Path, run_cli: Any) -> None:
    src = tmp_path / "fn"
    write(src / "index.js", "x")
    request = {"source_dir": str(src), "output_dir": str(tmp_path / "out")}
    first = external(run_cli, request).json()
    with contextlib.closing(sqlite3.connect(tmp_path / "out" / CACHE_NAME)) as db:
        assert db.execute("PRAGMA page_size").fetchone() == (65536,)
        db.execute("PRAGMA page_size=4096")
        db.execute("VACUUM")  # as an earlier version wrote it
        assert db.execute("PRAGMA page_size").fetchone() == (4096,)
    write(src / "index.js", "y")
    second = external(run_cli, request)
    assert second.code == 0, second.stderr
    assert second.stderr == ""
    assert second.json()["content_hash"] != first["content_hash"]


def test_the_store_is_pruned_least_recently_used_first(tmp_path: Path, run_cli: Any) -> None:
    src = tmp_path / "fn"
    out = tmp_path / "out"
    paths = []
    for i in range(3):
        write(src / "index.js", f"version {i}\n" * 1000)
        paths.append(external(run_cli, {"source_dir": str(src), "output_dir": str(out)}).json())
    with sqlite3.connect(out / CACHE_NAME) as db:
        # Pretend the first two were last used long ago, the oldest first.
        for age, data in ((3, paths[0]), (2, paths[1])):
            db.execute(
                "UPDATE artifacts SET used_ns = ? WHERE path = ?",
                (time.time_ns() - age * 3_600_000_000_000, data["output_path"]),
            )
    cache = Cache(out, str(src))
    size = Path(paths[2]["output_path"]).stat().st_size
    deleted = cache.prune(keep=[Path(paths[2]["output_path"])], limit=2 * size)
    cache.close()
    assert deleted == [paths[0]["output_path"]]
    assert not Path(paths[0]["output_path"]).exists()
    assert Path(paths[1]["output_path"]).exists()
    assert Path(paths[2]["output_path"]).exists()
    rebuilt = external(run_cli, {"source_dir": str(src), "output_dir": str(out)}).json()
    assert rebuilt == paths[2]


def test_plan_reads_the_cache_but_writes_nothing(tmp_path: Path, run_cli: Any) -> None:
    src = tmp_path / "fn"
    write(src / "index.js", "x")
    out = tmp_path / "out"
    external(run_cli, {"source_dir": str(src), "output_dir": str(out)})
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    report = run_cli(["plan", "--json", "--source-dir", str(src), "--output-dir", str(out)])
    assert json.loads(report.stdout)["current"] is True
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


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
    the no-change replay (snapshot.current_result) and the change path (incremental.rebuild)
    answer whenever they can, and must agree with cache-free builds. With a layer, the
    mutations reach files of both artifacts.
    """
    from lambdazip_tf import fsview, incremental, snapshot

    monkeypatch.setattr(fsview, "RACY_NS", 0)  # the one racy rule (fsview.is_racy)
    taken = {"noop": 0, "change": 0}
    real_current, real_rebuild = snapshot.current_result, incremental.rebuild

    def spy_current(*args: Any) -> Any:
        answer = real_current(*args)
        taken["noop"] += answer is not None
        return answer

    def spy_rebuild(*args: Any) -> Any:
        answer = real_rebuild(*args)
        taken["change"] += answer is not None
        return answer

    monkeypatch.setattr(snapshot, "current_result", spy_current)
    monkeypatch.setattr(incremental, "rebuild", spy_rebuild)
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
    _both(run_cli, src, base, monkeypatch, **extra)
    for action, n in steps:
        if action != "none":
            _mutate(src, action, n)
        changed = _both(run_cli, src, base, monkeypatch, **extra)
        assert _both(run_cli, src, base, monkeypatch, **extra) == changed  # nothing changed
    assert taken["noop"] >= len(steps)  # each second run is answered from the snapshot
    if any(action in ("edit", "same_size", "chmod", "safe_write") for action, _ in steps):
        assert taken["change"] >= 1


@pytest.mark.slow
def test_the_change_path_patches_the_function_and_the_layer(
    tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lambdazip_tf import fsview

    monkeypatch.setattr(fsview, "RACY_NS", 0)
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
    lines = _debug_lines(run_cli, request, monkeypatch)
    assert lines.count("change path: 1 members of") == 2, lines
    changed = external(run_cli, request).json()
    assert changed["layer_output_path"] != first["layer_output_path"]
    assert changed["output_path"] != first["output_path"]  # the mode is in the content hash
    assert int(changed["unzipped_size"]) == int(first["unzipped_size"]) + grown
    _same_as_cache_free(run_cli, request, changed, tmp_path / "fresh", monkeypatch)


def test_the_replay_finds_changes_in_both_of_its_processes(tmp_path: Path) -> None:
    """Past 2,000 files the replay forks: changes on either side of the split are found."""
    from lambdazip_tf.fsview import changed_files, pack_files

    files = [write(tmp_path / f"d{i // 100}" / f"f{i}.js", str(i)) for i in range(2500)]
    keys = []
    for path in files:
        st_ = path.stat()
        keys.append((st_.st_size, st_.st_mtime_ns, st_.st_ctime_ns, st_.st_ino, st_.st_dev))
    paths, packed = pack_files([str(p) for p in files], keys)
    facts = [("folder", str(tmp_path / "d0"), list(keys[0]))] * 10  # never true: no folder key
    assert changed_files([], paths, packed, {}) == []
    assert changed_files(facts, paths, packed, {}) is None
    for number in (3, 1249, 1250, 2499):
        files[number].write_text("changed")
    assert changed_files([], paths, packed, {}) == [3, 1249, 1250, 2499]
    files[2000].unlink()  # a file gone: only a full build can tell what that means
    assert changed_files([], paths, packed, {}) is None
    files[2000].write_text("back")
    files[10].unlink()
    assert changed_files([], paths, packed, {}) is None


def test_a_folder_whose_listing_is_the_same_still_holds(tmp_path: Path) -> None:
    """A safe write renames over a file: its folder's stat key changes, its listing does not.
    The same names with other types (a file become a folder) do not hold."""
    from lambdazip_tf.fsview import Observed, changed_files

    folder = tmp_path / "lib"
    write(folder / "a.js", "a")
    (folder / "sub").mkdir()
    os.utime(folder, (OLD, OLD))
    fs = Observed()
    fs.scandir(str(folder))
    assert changed_files(fs.facts, "", b"", fs.listings) == []
    write(folder / ".a.js.new", "b").replace(folder / "a.js")
    assert changed_files(fs.facts, "", b"", fs.listings) == []
    assert changed_files(fs.facts, "", b"", {}) is None  # without the listing: a changed key
    (folder / "a.js").unlink()
    (folder / "a.js").mkdir()
    assert changed_files(fs.facts, "", b"", fs.listings) is None
    (folder / "a.js").rmdir()
    write(folder / "a.js", "a")
    assert changed_files(fs.facts, "", b"", fs.listings) == []
    write(folder / "new.js", "n")
    assert changed_files(fs.facts, "", b"", fs.listings) is None


def _small_function(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict[str, str]]:
    """Five files and their request, with no racy window: snapshots are always trusted."""
    from lambdazip_tf import fsview

    monkeypatch.setattr(fsview, "RACY_NS", 0)
    src = tmp_path / "fn"
    for i in range(5):
        write(src / f"m{i}.js", f"module.exports = {i};\n")
    return src, {"source_dir": str(src), "output_dir": str(tmp_path / "out")}


@pytest.mark.parametrize("damage", ["index", "artifact", "update"])
def test_the_change_path_declines_when_its_inputs_are_damaged(
    damage: str, tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broken zip index, a broken snapshot update or an artifact that is not the recorded one
    sends the run to a full build, which gives the right zip."""
    src, request = _small_function(tmp_path, monkeypatch)
    first = external(run_cli, request).json()
    if damage == "index":
        with sqlite3.connect(tmp_path / "out" / CACHE_NAME) as db:
            db.execute("UPDATE artifacts SET members = ?", (b"not an index",))
    elif damage == "update":  # a change path's record of new stat keys, pointing past the end
        write(src / "m0.js", "module.exports = 'a first edit';\n")
        assert "change path: 1 members of" in _debug_lines(run_cli, request, monkeypatch)
        with sqlite3.connect(tmp_path / "out" / CACHE_NAME) as db:
            (data,) = db.execute("SELECT data FROM snapshot_updates").fetchone()
            update = marshal.loads(data)
            update["overrides"] = {10_000: (1, 2, 3, 4, 5)}
            db.execute("UPDATE snapshot_updates SET data = ?", (marshal.dumps(update),))
    else:  # same size, other bytes: the stat key no longer matches the recorded one
        artifact = Path(first["output_path"])
        artifact.write_bytes(artifact.read_bytes()[::-1])
    write(src / "m3.js", "module.exports = 'changed';\n")
    lines = _debug_lines(run_cli, request, monkeypatch)
    assert "change path: " not in lines
    assert "layout:" in lines  # the full build ran
    changed = external(run_cli, request).json()
    _same_as_cache_free(run_cli, request, changed, tmp_path / "fresh", monkeypatch)


def test_ensure_takes_the_fast_paths_of_the_data_source_that_planned(
    tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The module gives `ensure` the data source's query, jsonencode()d: another spelling of
    the same request finds the snapshot, so apply checks with a stat per file."""
    src, request = _small_function(tmp_path, monkeypatch)
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
    _same_as_cache_free(run_cli, request, replanned, tmp_path / "fresh", monkeypatch)
    monkeypatch.setenv("LAMBDAZIP_DEBUG", "1")
    again = ensure(replanned["output_base64sha256"])
    assert again.code == 0, again.stderr
    assert "layout:" not in again.stderr


def test_more_changes_than_the_change_path_takes_go_to_the_full_build(
    tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lambdazip_tf import incremental

    src, request = _small_function(tmp_path, monkeypatch)
    external(run_cli, request)
    monkeypatch.setattr(incremental, "MAX_FILES", 1)
    write(src / "m1.js", "one\n")
    write(src / "m2.js", "two\n")
    lines = _debug_lines(run_cli, request, monkeypatch)
    assert "change path: " not in lines
    assert "rebuild: 2 of 5 entries to compress" in lines  # the full build, with its store
    write(src / "m3.js", "three\n")  # one file: the change path again
    assert "change path: 1 members of" in _debug_lines(run_cli, request, monkeypatch)
    _same_as_cache_free(
        run_cli, request, external(run_cli, request).json(), tmp_path / "f", monkeypatch
    )


def test_the_fast_paths_repeat_the_size_warning(
    tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plan answered from the snapshot, or patched, warns as the full build did."""
    from lambdazip_tf import fsview

    monkeypatch.setattr(fsview, "RACY_NS", 0)
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
    noop = _debug_lines(run_cli, request, monkeypatch)
    assert "layout:" not in noop and "change path" not in noop
    assert warning in noop
    write(src / "index.js", "exports.handler = async () => 2;\n")
    changed = _debug_lines(run_cli, request, monkeypatch)
    assert "change path: 1 members of" in changed
    assert warning in changed


def test_a_build_with_nothing_to_copy_plans_what_each_entry_would_decide() -> None:
    entries = [
        Entry("lib", "dir", 0o755),
        Entry("lib/a.js", "file", 0o644, "/src/lib/a.js", size=3, stat_key=(3, 1, 1, 1, 1)),
        Entry("lib/b.js", "link", 0o777, target="a.js"),
        Entry("run.sh", "file", 0o755, "/src/run.sh", size=9, stat_key=(9, 1, 1, 2, 1)),
    ]
    source = _Source(None, None)
    for digests in ({}, {"/src/lib/a.js": "0" * 64}):
        planned = source.plan(entries, digests)
        assert planned == [source.decide(entry, digests) for entry in entries]
        assert [how for how, _ in planned] == ["add", "pack", "add", "pack"]


class _Traced:
    """A cache connection that logs its statements and refuses transactions after `allow`."""

    def __init__(self, db: sqlite3.Connection, log: list[str], allow: list[int]) -> None:
        self._db, self._log, self._allow = db, log, allow

    def execute(self, sql: str, *args: Any) -> Any:
        if sql.startswith("BEGIN") and self._log.count("BEGIN") >= self._allow[0]:
            raise sqlite3.OperationalError("database is locked")
        self._log.append(sql.split(maxsplit=1)[0])
        return self._db.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


def _traced_cache(monkeypatch: pytest.MonkeyPatch, allow: int = 1000) -> list[str]:
    log: list[str] = []
    opened = Cache._open

    def traced(cache: Cache) -> Any:
        db = opened(cache)  # its own tables' transaction is not traced
        return None if db is None else _Traced(db, log, [allow])

    monkeypatch.setattr(Cache, "_open", traced)
    return log


def _rows(folder: Path, table: str) -> int:
    with contextlib.closing(sqlite3.connect(folder / CACHE_NAME)) as db:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_a_builds_tail_writes_the_cache_in_one_transaction(
    tree: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = _traced_cache(monkeypatch)
    build_ok(run_cli, tree)
    # The artifact's record, the snapshot (here racy: its removal) and the digests together.
    assert log.count("COMMIT") == 1
    assert _rows(tree.parent / "out", "artifacts") == _rows(tree.parent / "out", "digests") == 1


def test_a_cache_that_cannot_start_a_transaction_is_given_up(
    tree: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _traced_cache(monkeypatch, allow=0)  # as if another build held the database too long
    run = external(run_cli, {"source_dir": str(tree), "output_dir": str(tree.parent / "out")})
    assert run.code == 0, run.stderr
    assert Path(run.json()["output_path"]).is_file()
    assert run.stderr.count("database is locked") == 1  # one warning, not one per write
    assert _rows(tree.parent / "out", "artifacts") == 0
