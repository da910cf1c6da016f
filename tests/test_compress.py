"""Reading and deflating one file (compress.py): libdeflate's bytes, and only one version's."""

from __future__ import annotations

import hashlib
import random
import threading
import zlib
from pathlib import Path
from typing import Any

import pytest
from conftest import external, write

from lambdazip_tf import compress, packer
from lambdazip_tf.archive import DEFLATED, STORED
from lambdazip_tf.entries import Entry
from lambdazip_tf.errors import SourceError

_RNG = random.Random(20261122)
CONTENTS = {
    "empty": b"",
    "one byte": b"x",
    "text": b"".join(b"line %d of a module\n" % (i % 97) for i in range(6000)),
    "random": _RNG.randbytes(300_000),
    # Longer than libdeflate's 32 KiB window, so its tables slide (matchfinder_rebase).
    "repeats": (b"abcdefgh" * 5000 + _RNG.randbytes(40_000)) * 3,
    # More than compress.CHUNK: hash_file reads it in pieces.
    "big": _RNG.randbytes(700_000) * 4,
}


@pytest.mark.parametrize("name", sorted(CONTENTS))
@pytest.mark.parametrize("level", [0, 1, 6, 9])
def test_a_packed_file_inflates_to_its_content(tmp_path: Path, name: str, level: int) -> None:
    data = CONTENTS[name]
    path = tmp_path / "f"
    path.write_bytes(data)
    packed = compress.pack_file(str(path), len(data), level)
    assert packed.sha256 == hashlib.sha256(data).hexdigest()
    assert packed.crc == zlib.crc32(data)
    assert packed.size == len(data)
    if level == 0:
        assert (packed.method, packed.data) == (STORED, data)
    else:
        assert packed.method == DEFLATED
        assert zlib.decompress(packed.data, -15) == data
    assert compress.hash_file(str(path), len(data)) == packed.sha256


def test_a_file_that_shrank_or_grew_since_it_was_selected_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "f", "12345")
    with pytest.raises(SourceError, match="changed size"):
        compress.pack_file(str(path), 6, 6)
    with pytest.raises(SourceError, match="changed size"):
        compress.pack_file(str(path), 4, 6)
    for size in (4, 6):
        with pytest.raises(SourceError, match="changed size"):
            compress.hash_file(str(path), size)
    assert compress.pack_file(str(path), 5, 6).size == 5


def test_levels_trade_size_for_time_on_text(tmp_path: Path) -> None:
    data = CONTENTS["text"] + CONTENTS["repeats"]
    path = tmp_path / "f"
    path.write_bytes(data)
    sizes = [len(compress.pack_file(str(path), len(data), level).data) for level in (1, 6, 9)]
    assert sizes[0] > sizes[1] >= sizes[2]


def test_another_libdeflate_is_refused_with_one_line(
    tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Any other deflater stands in for a `deflate` module built against another libdeflate: its
    # bytes differ, so the same content hash would name different zips on different machines.
    compress._check_deflater.cache_clear()
    monkeypatch.setattr(
        compress.deflate, "deflate_compress", lambda data, level: zlib.compress(data, level, -15)
    )
    src = tmp_path / "fn"
    write(src / "index.js", "exports.handler = async () => 1;\n")
    run = external(run_cli, {"source_dir": str(src), "output_dir": str(tmp_path / "out")})
    assert run.code == 1
    assert run.stdout == ""
    assert run.stderr.count("\n") == 1
    assert "does not write libdeflate 1.26's bytes" in run.stderr
    assert "--only-binary :all: deflate==0.9.0" in run.stderr
    assert not list((tmp_path / "out").glob("*.zip"))
    compress._check_deflater.cache_clear()


def test_the_installed_deflater_passes_its_check() -> None:
    compress._check_deflater()


def test_batches_hold_each_file_once_in_order_and_shrink_toward_the_end() -> None:
    # The workers run out of work together: the last batches are small.
    items = [(f"{i:05}.js", 10_000) for i in range(5000)]
    batches = list(packer._batches(items, 2))
    assert [item for batch in batches for item in batch] == items
    sizes = [len(batch) for batch in batches]
    assert sizes[0] == packer.BATCH_FILES
    assert sizes[-1] <= packer.LAST_BATCH_FILES
    assert sizes == sorted(sizes, reverse=True)
    big = [(f"{i:05}.js", 1_000_000) for i in range(40)]
    big_batches = list(packer._batches(big, 2))
    assert sum(size for _, size in big_batches[0]) >= packer.BATCH_BYTES
    assert all(len(batch) == 1 for batch in big_batches[-3:])


@pytest.mark.parametrize("count", [3, packer.POOL_MIN_FILES + 5])
def test_the_packer_gives_each_file_in_order_and_says_when_packing_started(
    tmp_path: Path, count: int
) -> None:
    # A few files are packed in this process, many in the pool; either way in the order given.
    entries = []
    for i in range(count):
        path = tmp_path / f"{i:05}.js"
        path.write_bytes(b"module.exports = %d;\n" % i * (1 + i % 7))
        size = path.stat().st_size
        entries.append(Entry(f"{i:05}.js", "file", 0o644, source=str(path), size=size))
    started = threading.Event()
    with packer.Packer(6, workers=2, started=started) as pool:
        results = pool.pack(entries)
        got = [next(results)[1]]
        assert started.is_set()
        got += [packed for _, packed in results]
    assert got == [compress.pack_file(e.source or "", e.size, 6) for e in entries]
