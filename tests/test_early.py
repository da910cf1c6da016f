"""Early packing (early.py; issue 5): used only when it read what the build selects."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import console, sha256_file, write

from lambdazip_tf import early, packer
from lambdazip_tf.compress import pack_file
from lambdazip_tf.entries import file_entry
from lambdazip_tf.pipeline import build
from lambdazip_tf.request import Request
from lambdazip_tf.snapshot import CACHE_NAME


@pytest.fixture(autouse=True)
def three_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two early packing processes (one per core but the build's), whatever the machine has."""
    monkeypatch.setenv("LAMBDAZIP_JOBS", "3")


@pytest.fixture
def aged(tmp_path: Path) -> Path:
    """A function folder whose files left the racy window (2 s) a moment ago."""
    src = tmp_path / "fn"
    write(src / "index.js", "exports.handler = async () => require('./lib/a');\n")
    for i in range(60):
        write(src / "lib" / f"m{i}.js", f"module.exports = {i};\n" + "// padding\n" * i)
    write(src / "bin" / "tool", "#!/bin/sh\n", mode=0o755)
    time.sleep(2.1)
    return src


def _build(src: Path, out: Path, handle: early.EarlyPacking | None) -> Path:
    request = Request(source_dir=src, output_dir=out)
    return build(request, early=handle).function.path


def test_early_results_make_the_same_zip(aged: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with early.started(str(aged), str(out), 6) as handle:
        assert handle is not None
        assert handle.packed_so_far() <= 62
        handle.collect(finish=True)
        assert handle.packed_so_far() == 62  # the count the processes keep for the pool
        zipped = _build(aged, out, handle)
        assert handle.used == 62  # every file the selection took was packed early
    plain = _build(aged, tmp_path / "plain", None)
    assert sha256_file(zipped) == sha256_file(plain)


def test_a_file_changed_after_it_was_packed_early_is_read_again(aged: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with early.started(str(aged), str(out), 6) as handle:
        assert handle is not None
        handle.collect(finish=True)
        edited = aged / "lib" / "m7.js"
        before = edited.stat()
        edited.write_text(edited.read_text().replace("7", "8"))  # same size
        os.utime(edited, ns=(before.st_atime_ns, before.st_mtime_ns))  # same mtime
        zipped = _build(aged, out, handle)
        assert handle.used == 61
    assert sha256_file(zipped) == sha256_file(_build(aged, tmp_path / "plain", None))


def test_racy_files_are_not_packed_early(tmp_path: Path) -> None:
    src = tmp_path / "fn"
    write(src / "index.js", "x")  # just written: inside the racy window
    with early.started(str(src), str(tmp_path / "out"), 6) as handle:
        assert handle is not None
        assert handle.collect(finish=True) == {}


def test_another_level_is_not_used(aged: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with early.started(str(aged), str(out), 9) as handle:
        assert handle is not None
        handle.collect(finish=True)
        build(Request(source_dir=aged, output_dir=out, compression_level=6), early=handle)
        assert handle.used == 0


def test_only_cold_builds_on_several_cores_pack_early(
    aged: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    _build(aged, out, None)
    assert (out / CACHE_NAME).exists()
    with early.started(str(aged), str(out), 6) as handle:
        assert handle is None  # a warm cache
    monkeypatch.setenv("LAMBDAZIP_NO_CACHE", "1")
    with early.started(str(aged), str(out), 6) as handle:
        assert handle is not None  # ignored: every build is cold
    monkeypatch.delenv("LAMBDAZIP_NO_CACHE")
    with early.started(str(aged / "index.js"), str(tmp_path / "new"), 6) as handle:
        assert handle is None  # not a folder
    monkeypatch.setenv("LAMBDAZIP_JOBS", "1")
    with early.started(str(aged), str(tmp_path / "new"), 6) as handle:
        assert handle is None


@pytest.mark.parametrize(
    "data",
    [
        [],
        {"output_dir": "out"},
        {"source_dir": 3},
        {"source_dir": "fn", "compression_level": "10"},
        {"source_dir": "fn", "compression_level": 6},
        {"source_dir": "fn", "output_dir": ["out"]},
        {"source_dir": "fn\ud800"},  # found by the protocol fuzzer (test_hostile.py)
        {"source_dir": "fn\x00"},
        {"source_dir": "fn", "output_dir": "out\ud800"},
    ],
)
def test_requests_that_will_not_validate_start_nothing(data: Any, tmp_path: Path) -> None:
    write(tmp_path / "fn" / "index.js", "x")
    with early.started_raw(data, str(tmp_path)) as handle:
        assert handle is None


def test_one_process_per_core_the_build_leaves_free(
    aged: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAMBDAZIP_JOBS", "2")
    with early.started(str(aged), str(tmp_path / "o"), 6) as handle:
        assert handle is not None
        assert len(handle.pids) == 1
        handle.collect(finish=True)
        zipped = _build(aged, tmp_path / "o", handle)
        assert handle.used == 62  # one process packs the whole tree
    assert sha256_file(zipped) == sha256_file(_build(aged, tmp_path / "plain", None))


def test_a_failed_build_stops_and_reaps_the_processes(aged: Path, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), early.started(str(aged), str(tmp_path / "o"), 6) as handle:
        assert handle is not None
        pids = handle.pids
        assert len(pids) == 2
        raise RuntimeError("the build failed")
    for pid in pids:
        with pytest.raises(ChildProcessError):  # already waited for: no zombie, no orphan
            os.waitpid(pid, os.WNOHANG)


def test_external_mode_packs_early_and_answers_alone(aged: Path, tmp_path: Path) -> None:
    request = '{"source_dir": "fn", "output_dir": "out"}'
    env = {**os.environ, "LAMBDAZIP_DEBUG": "1", "LAMBDAZIP_JOBS": "3"}
    run = console(request, tmp_path, env)
    assert run.code == 0, run.stderr
    # Started and collected (how many files it packed first depends on the machine's load:
    # test_early_results_make_the_same_zip counts them where the timing is fixed).
    packed = [line for line in run.stderr.splitlines() if "early packing:" in line]
    assert packed and packed[0].endswith("files packed")
    one = console(
        '{"source_dir": "fn", "output_dir": "one"}', tmp_path, {**os.environ, "LAMBDAZIP_JOBS": "1"}
    )
    assert one.json()["output_sha256"] == run.json()["output_sha256"]


def test_the_fast_path_imports_neither_pydantic_nor_early_packing(
    aged: Path, tmp_path: Path
) -> None:
    request = '{"source_dir": "fn", "output_dir": "out"}'
    assert console(request, tmp_path).code == 0
    code = (
        "import io, sys\n"
        "from lambdazip_tf import cli\n"
        f"sys.stdin = io.StringIO({request!r})\n"
        "assert cli.main([]) == 0\n"
        "print(sorted(m for m in ('pydantic', 'lambdazip_tf.early') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines()[-1] == "[]", done.stdout


def test_early_packing_forks_before_the_pool_is_imported() -> None:
    code = (
        "import sys\n"
        "import lambdazip_tf.cli, lambdazip_tf.early\n"
        "print(sorted(m for m in ('multiprocessing', 'concurrent.futures', 'pydantic')"
        " if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "[]", done.stdout


def test_the_output_folder_and_large_files_are_left_to_the_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "fn"
    write(src / "small.js", "x" * 50)
    write(src / "large.js", "y" * 500)
    write(src / ".lambdazip" / "old.zip", "z" * 50)  # an artifact folder inside the source
    time.sleep(2.1)
    monkeypatch.setattr(early, "LARGEST_BYTES", 100)  # the processes fork with it
    with early.started(str(src), str(src / ".lambdazip"), 6) as handle:
        assert handle is not None
        packed = handle.collect(finish=True)
        assert sorted(Path(p).name for p in packed) == ["small.js"]


def test_no_shared_memory_means_no_early_packing(
    aged: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any) -> None:
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(early.mmap, "mmap", refuse)
    with early.started(str(aged), str(tmp_path / "out"), 6) as handle:
        assert handle is None
    monkeypatch.undo()
    assert _build(aged, tmp_path / "out", None).exists()


def test_a_failed_fork_leaves_the_build_to_pack_alone(
    aged: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fork = os.fork
    forked: list[int] = []

    def fork_once() -> int:
        if forked:
            raise OSError(11, "Resource temporarily unavailable")
        pid = real_fork()
        if pid:
            forked.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", fork_once)
    with early.started(str(aged), str(tmp_path / "out"), 6) as handle:
        assert handle is None
    assert len(forked) == 1
    with pytest.raises(ChildProcessError):  # the one that started was stopped and reaped
        os.waitpid(forked[0], os.WNOHANG)
    monkeypatch.undo()
    assert _build(aged, tmp_path / "out", None).exists()


@pytest.mark.parametrize("shares", [1, 2, 3])
def test_the_shares_hold_each_regular_file_once(tmp_path: Path, shares: int) -> None:
    # Files on every level, more top folders than the processes deal out, the output folder
    # inside the tree and links: each regular file outside the output folder in one share.
    root = tmp_path / "fn"
    wanted = {write(root / "index.js", "x"), write(root / "node_modules" / ".package-lock.json")}
    for i in range(early.FOLDERS_PER_SHARE * shares + 3):
        package = root / "node_modules" / f"p{i:02}"
        wanted |= {write(package / "index.js", "x"), write(package / "lib" / "deep" / "a.js")}
    wanted.add(write(root / "node_modules" / "@scope" / "q" / "index.js"))
    write(root / ".lambdazip" / "old.zip", "artifact")
    (root / "link.js").symlink_to("index.js")
    (root / "node_modules" / "p00" / "lib" / "up").symlink_to("..")
    found: list[str] = []
    for share in range(shares):
        job = early._Share(str(root), str(root / ".lambdazip"), 6, share, shares)
        found += [item.path for item in early._files_of_share(job)]
    assert sorted(found) == sorted(str(path) for path in wanted)


def test_the_packages_are_packed_last_first(tmp_path: Path) -> None:
    # The pool starts on the first files in archive order (packer.py): early packing starts
    # at the other end, so that the two rarely pack the same file.
    root = tmp_path / "fn"
    for i in range(early.FOLDERS_PER_SHARE + 4):
        write(root / "node_modules" / f"p{i:02}" / "index.js", "x")
    job = early._Share(str(root), str(root / ".lambdazip"), 6, 0, 1)
    packages = [Path(item.path).parent.name for item in early._files_of_share(job)]
    assert packages == sorted(packages, reverse=True)


def test_the_pools_workers_hold_no_early_packing_pipe(
    aged: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(packer, "POOL_MIN_FILES", 1)  # a pool, even for this small tree
    monkeypatch.setattr(packer, "BATCH_FILES", 2)
    monkeypatch.setattr(packer, "IN_FLIGHT_PER_WORKER", 1)  # a head start of 2 x 2 files
    files = sorted(p for p in aged.rglob("*") if p.is_file())
    entries = [file_entry(str(p.relative_to(aged)), str(p), os.lstat(p)) for p in files]
    with early.started(str(aged), str(tmp_path / "out"), 6) as handle:
        assert handle is not None
        pipes = {os.fstat(fd).st_ino for fd in [handle._stop, *handle.pipes] if fd is not None}
        monkeypatch.setattr(handle, "packed_so_far", lambda: 0)  # the head start, whatever it did
        with packer.Packer(6, workers=2, early=handle) as pool:
            packed = [result for _, result in pool.pack(entries)]
            workers = list(pool._pool._processes) if pool._pool is not None else []
            # Neither end of early packing's pipes: its stop must be seen, and a process still
            # writing must see its reader go (early.py, stop and close).
            for pid in workers:
                assert not _open_inodes(pid) & pipes
        assert len(workers) == 2
        assert handle.used <= len(files) - 4  # the first files came from the pool
    assert packed == [pack_file(str(p), p.stat().st_size, 6) for p in files]


def _open_inodes(pid: int) -> set[int]:
    """The inodes of what a process has open (a descriptor closed meanwhile is skipped)."""
    found = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(FileNotFoundError):
            found.add(os.stat(f"/proc/{pid}/fd/{fd}").st_ino)
    return found


class _Progress:
    """An EarlyPacking as `Packer._head` sees it: collected or not, and a count so far."""

    def __init__(self, so_far: int, collected: bool = False) -> None:
        self.level, self.collected, self._so_far = 6, collected, so_far

    def packed_so_far(self) -> int:
        return self._so_far


def test_the_pool_gets_a_head_start_only_where_early_packing_has_not_been() -> None:
    items = [(f"/src/f{i:05}.js", 100) for i in range(10_000)]
    limit = 2 * packer.IN_FLIGHT_PER_WORKER

    def head(progress: Any) -> int:
        pool = packer.Packer(6, workers=2, early=progress)
        return sum(len(batch) for batch in pool._head(items, limit))

    full = head(_Progress(0))
    assert full == limit * packer.BATCH_FILES  # the first files, a full window of batches
    assert head(_Progress(len(items) - 2 * full)) == full
    assert head(_Progress(len(items) - 2 * full + 1)) == 0  # it may have reached them
    assert head(_Progress(0, collected=True)) == 0
    assert head(None) == 0
