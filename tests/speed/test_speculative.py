"""Speculative packing: used only where it read what the build selects.

docs/design.md, "Fast paths".
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    console,
    sha256_file,
    write,
)

from lambdazip_tf.core.compress import pack_file
from lambdazip_tf.core.entries import file_entry
from lambdazip_tf.core.request import Request
from lambdazip_tf.pipeline import build
from lambdazip_tf.speed import pool, speculative
from lambdazip_tf.speed.database import CACHE_NAME
from lambdazip_tf.speed.snapshot import request_key


@pytest.fixture(autouse=True)
def three_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two speculative packing processes (one per core but the build's), whatever the machine
    has."""
    monkeypatch.setenv("LAMBDAZIP_JOBS", "3")


def _build(src: Path, out: Path, handle: speculative.SpeculativePacking | None) -> Path:
    request = Request(source_dir=src, output_dir=out)
    return Path(build(request, speculative=handle).function.path)


def test_speculative_results_make_the_same_zip(aged: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with speculative.started(str(aged), str(out), 6) as handle:
        assert handle is not None
        assert handle.packed_so_far() <= 62
        handle.collect(finish=True)
        assert handle.packed_so_far() == 62  # the count the processes keep for the pool
        zipped = _build(aged, out, handle)
        assert handle.used == 62  # every file the selection took was packed already
    plain = _build(aged, tmp_path / "plain", None)
    assert sha256_file(zipped) == sha256_file(plain)


def test_a_file_changed_after_it_was_packed_is_read_again(aged: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with speculative.started(str(aged), str(out), 6) as handle:
        assert handle is not None
        handle.collect(finish=True)
        edited = aged / "lib" / "m7.js"
        before = edited.stat()
        edited.write_text(edited.read_text().replace("7", "8"))  # same size
        os.utime(edited, ns=(before.st_atime_ns, before.st_mtime_ns))  # same mtime
        zipped = _build(aged, out, handle)
        assert handle.used == 61
    assert sha256_file(zipped) == sha256_file(_build(aged, tmp_path / "plain", None))


def test_racy_files_are_not_packed_speculatively(tmp_path: Path) -> None:
    src = tmp_path / "fn"
    write(src / "index.js", "x")  # just written: inside the racy window
    with speculative.started(str(src), str(tmp_path / "out"), 6) as handle:
        assert handle is not None
        assert handle.collect(finish=True) == {}


def test_another_level_is_not_used(aged: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with speculative.started(str(aged), str(out), 9) as handle:
        assert handle is not None
        handle.collect(finish=True)
        build(Request(source_dir=aged, output_dir=out, compression_level=6), speculative=handle)
        assert handle.used == 0


def test_only_cold_builds_on_several_cores_pack_speculatively(
    aged: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    _build(aged, out, None)
    assert (out / CACHE_NAME).exists()
    with speculative.started(str(aged), str(out), 6) as handle:
        assert handle is None  # a warm cache
    monkeypatch.setenv("LAMBDAZIP_NO_CACHE", "1")
    with speculative.started(str(aged), str(out), 6) as handle:
        assert handle is not None  # ignored: every build is cold
    monkeypatch.delenv("LAMBDAZIP_NO_CACHE")
    with speculative.started(str(aged / "index.js"), str(tmp_path / "new"), 6) as handle:
        assert handle is None  # not a folder
    monkeypatch.setenv("LAMBDAZIP_JOBS", "1")
    with speculative.started(str(aged), str(tmp_path / "new"), 6) as handle:
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
    where = request_key(data, str(tmp_path))
    if where is None:
        return  # not an object of strings: external mode validates it before any packing
    with speculative.started_unvalidated(data, str(tmp_path), where.output_dir) as handle:
        assert handle is None


def test_one_process_per_core_the_build_leaves_free(
    aged: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAMBDAZIP_JOBS", "2")
    with speculative.started(str(aged), str(tmp_path / "o"), 6) as handle:
        assert handle is not None
        assert len(handle.pids) == 1
        handle.collect(finish=True)
        zipped = _build(aged, tmp_path / "o", handle)
        assert handle.used == 62  # one process packs the whole tree
    assert sha256_file(zipped) == sha256_file(_build(aged, tmp_path / "plain", None))


def test_a_failed_build_stops_and_reaps_the_processes(aged: Path, tmp_path: Path) -> None:
    with (
        pytest.raises(RuntimeError),
        speculative.started(str(aged), str(tmp_path / "o"), 6) as handle,
    ):
        assert handle is not None
        pids = handle.pids
        assert len(pids) == 2
        raise RuntimeError("the build failed")
    for pid in pids:
        with pytest.raises(ChildProcessError):  # already waited for: no zombie, no orphan
            os.waitpid(pid, os.WNOHANG)


def test_external_mode_packs_speculatively_and_answers_alone(aged: Path, tmp_path: Path) -> None:
    request = '{"source_dir": "fn", "output_dir": "out"}'
    env = {**os.environ, "LAMBDAZIP_DEBUG": "1", "LAMBDAZIP_JOBS": "3"}
    run = console(request, tmp_path, env)
    assert run.code == 0, run.stderr
    # Started and collected (how many files it packed first depends on the machine's load:
    # test_speculative_results_make_the_same_zip counts them where the timing is fixed).
    packed = [line for line in run.stderr.splitlines() if "speculative packing:" in line]
    assert packed and packed[0].endswith("files packed")
    one = console(
        '{"source_dir": "fn", "output_dir": "one"}', tmp_path, {**os.environ, "LAMBDAZIP_JOBS": "1"}
    )
    assert one.json()["output_sha256"] == run.json()["output_sha256"]


def test_speculative_packing_forks_before_the_pool_is_imported() -> None:
    code = (
        "import sys\n"
        "import lambdazip_tf.cli, lambdazip_tf.speed.speculative\n"
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
    monkeypatch.setattr(speculative, "LARGEST_BYTES", 100)  # the processes fork with it
    with speculative.started(str(src), str(src / ".lambdazip"), 6) as handle:
        assert handle is not None
        packed = handle.collect(finish=True)
        assert sorted(Path(p).name for p in packed) == ["small.js"]


def test_no_shared_memory_means_no_speculative_packing(
    aged: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any) -> None:
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(speculative.mmap, "mmap", refuse)
    with speculative.started(str(aged), str(tmp_path / "out"), 6) as handle:
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
    with speculative.started(str(aged), str(tmp_path / "out"), 6) as handle:
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
    for i in range(speculative.FOLDERS_PER_SHARE * shares + 3):
        package = root / "node_modules" / f"p{i:02}"
        wanted |= {write(package / "index.js", "x"), write(package / "lib" / "deep" / "a.js")}
    wanted.add(write(root / "node_modules" / "@scope" / "q" / "index.js"))
    write(root / ".lambdazip" / "old.zip", "artifact")
    (root / "link.js").symlink_to("index.js")
    (root / "node_modules" / "p00" / "lib" / "up").symlink_to("..")
    found: list[str] = []
    for share in range(shares):
        job = speculative.Share(str(root), str(root / ".lambdazip"), 6, share, shares)
        found += [item.path for item in speculative.files_of_share(job)]
    assert sorted(found) == sorted(str(path) for path in wanted)


def test_the_packages_are_packed_last_first(tmp_path: Path) -> None:
    # The pool starts on the first files in archive order (pool.py): speculative packing starts
    # at the other end, so that the two rarely pack the same file.
    root = tmp_path / "fn"
    for i in range(speculative.FOLDERS_PER_SHARE + 4):
        write(root / "node_modules" / f"p{i:02}" / "index.js", "x")
    job = speculative.Share(str(root), str(root / ".lambdazip"), 6, 0, 1)
    packages = [Path(item.path).parent.name for item in speculative.files_of_share(job)]
    assert packages == sorted(packages, reverse=True)


def test_the_pools_workers_hold_no_speculative_packing_pipe(
    aged: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pool, "POOL_MIN_FILES", 1)  # a pool, even for this small tree
    monkeypatch.setattr(pool, "BATCH_FILES", 2)
    monkeypatch.setattr(pool, "IN_FLIGHT_PER_WORKER", 1)  # a head start of 2 x 2 files
    files = sorted(p for p in aged.rglob("*") if p.is_file())
    entries = [file_entry(str(p.relative_to(aged)), str(p), os.lstat(p)) for p in files]
    with speculative.started(str(aged), str(tmp_path / "out"), 6) as handle:
        assert handle is not None
        pipes = {os.fstat(fd).st_ino for fd in handle.descriptors}
        monkeypatch.setattr(handle, "packed_so_far", lambda: 0)  # the head start, whatever it did
        with pool.Packer(6, workers=2, speculative=handle) as packer:
            packed = [result for _, result in packer.pack(entries)]
            workers = packer.worker_pids
            # Neither end of speculative packing's pipes: its stop must be seen, and a process
            # still writing must see its reader go (speculative.py, stop and close).
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
