"""Reading, hashing and deflating one file with libdeflate (docs/design.md, "The zip")."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import subprocess
import tempfile
import zlib
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    external,
    lambdazip_exe,
    write,
)

from lambdazip_tf.core import compress
from lambdazip_tf.core.compress import DEFLATED, STORED
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
    compress.check_deflater.cache_clear()
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
    compress.check_deflater.cache_clear()


def test_the_installed_deflater_passes_its_check() -> None:
    compress.check_deflater()


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    # As root every file is readable, so the build runs as nobody, like an unprivileged CI user.
    base = Path(tempfile.mkdtemp(prefix="lambdazip-unreadable-"))
    try:
        base.chmod(0o777)
        src = base / "fn"
        write(src / "index.js", "x")
        secret = write(src / "secret.js", "nobody may read this", mode=0o000)
        for folder in (base, src):
            folder.chmod(0o777)
        request = json.dumps({"source_dir": str(src), "output_dir": str(base / "out")})
        proc = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", lambdazip_exe()],
            input=request,
            capture_output=True,
            text=True,
            check=False,
            env={"PATH": "/usr/bin:/bin", "HOME": str(base)},
        )
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert proc.stdout == ""
        assert proc.stderr.count("\n") == 1
        assert f"cannot read {secret}: permission denied" in proc.stderr
    finally:
        shutil.rmtree(base)
