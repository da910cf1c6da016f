"""The zip writer: determinism, SOURCE_DATE_EPOCH, readers' agreement, ZIP64.

docs/design.md, "The zip".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from helpers import (
    external,
    manifest,
    sha256_file,
    write,
)

from lambdazip_tf.core.archive import ZipWriter
from lambdazip_tf.core.compress import pack_file
from lambdazip_tf.core.entries import DIR_MODE, EXEC_MODE, FILE_MODE, LINK_MODE, Entry
from lambdazip_tf.core.zipformat import (
    EMPTY,
    ZIP64_COUNT_LIMIT,
    dos_timestamp,
    link_member,
    packed_member,
)

GOLDEN_SHA256 = "5b267d5fe9491347637338ef5cb9ba13bbb94c509082307b7092432a2f436dc1"


def _make_tree(root: Path, reverse: bool, mtime: float) -> None:
    files = [
        ("index.js", "exports.handler = async () => 1;\n", 0o644),
        ("lib/a.js", "a\n" * 500, 0o600),
        ("lib/b.js", "b\n", 0o640),
        ("bin/tool", "#!/bin/sh\n", 0o700),
        ("data/x.json", "{}", 0o444),
    ]
    for rel, text, mode in reversed(files) if reverse else files:
        write(root / rel, text, mode)
    (root / "empty").mkdir()
    os.symlink("../index.js", root / "lib" / "entry.js")
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.utime(Path(dirpath) / name, (mtime, mtime), follow_symlinks=False)


def _build_subprocess(src: Path, out: Path, env: dict[str, str], umask: int) -> dict[str, str]:
    request = json.dumps({"source_dir": str(src), "output_dir": str(out)})
    code = f"import os, sys; os.umask({umask}); sys.argv=['lambdazip-tf']; "
    code += "from lambdazip_tf.cli import main; sys.exit(main())"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        input=request,
        capture_output=True,
        text=True,
        env={**{k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}, **env},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    return dict(json.loads(proc.stdout))


def test_same_tree_with_other_mtimes_umask_tz_and_order_gives_identical_bytes(
    tmp_path: Path,
) -> None:
    os.umask(0o022)
    _make_tree(tmp_path / "one" / "fn", reverse=False, mtime=1_000_000_000)
    old = os.umask(0o077)
    try:
        _make_tree(tmp_path / "two" / "fn", reverse=True, mtime=time.time() - 5)
    finally:
        os.umask(old)
    first = _build_subprocess(
        tmp_path / "one" / "fn", tmp_path / "out1", {"TZ": "UTC"}, umask=0o022
    )
    second = _build_subprocess(
        tmp_path / "two" / "fn", tmp_path / "out2", {"TZ": "Asia/Kolkata"}, umask=0o077
    )
    assert Path(first["output_path"]).read_bytes() == Path(second["output_path"]).read_bytes()
    assert first["content_hash"] == second["content_hash"]
    assert Path(first["output_path"]).name == Path(second["output_path"]).name
    # And on every machine: these are the bytes, whatever CPU or system zlib runs this test. A
    # different value means the deflater or the format changed, which must change the version.
    assert sha256_file(first["output_path"]) == GOLDEN_SHA256
    # The normalised modes that make this possible: readable by others, 0755 for exec.
    got = manifest(first["output_path"])
    assert got["lib/a.js"][1] == "644"
    assert got["bin/tool"][1] == "755"
    assert got["empty/"] == ("dir", "755", "")
    assert got["lib/entry.js"] == ("link", "777", "../index.js")


def test_source_date_epoch_changes_every_timestamp_and_nothing_else(tmp_path: Path) -> None:
    _make_tree(tmp_path / "fn", reverse=False, mtime=1_500_000_000)
    plain = _build_subprocess(tmp_path / "fn", tmp_path / "a", {}, umask=0o022)
    dated = _build_subprocess(
        tmp_path / "fn", tmp_path / "b", {"SOURCE_DATE_EPOCH": "1700000000"}, umask=0o022
    )
    before = _build_subprocess(
        tmp_path / "fn", tmp_path / "c", {"SOURCE_DATE_EPOCH": "1000"}, umask=0o022
    )
    # Clamped to 1980: identical to the default.
    assert Path(before["output_path"]).read_bytes() == Path(plain["output_path"]).read_bytes()
    assert dated["content_hash"] != plain["content_hash"]  # the timestamp is a byte option
    with (
        zipfile.ZipFile(plain["output_path"]) as za,
        zipfile.ZipFile(dated["output_path"]) as zb,
    ):
        a, b = za.infolist(), zb.infolist()
        assert [i.filename for i in a] == [i.filename for i in b]
        t = time.gmtime(1700000000)
        expected = (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec // 2 * 2)
        for ia, ib in zip(a, b, strict=True):
            assert ia.date_time == (1980, 1, 1, 0, 0, 0)
            assert ib.date_time == expected
            for attr in ("external_attr", "compress_type", "CRC", "compress_size", "file_size"):
                assert getattr(ia, attr) == getattr(ib, attr)
            assert za.read(ia) == zb.read(ib)
    # Only the two timestamp fields of each header differ.
    raw_a = Path(plain["output_path"]).read_bytes()
    raw_b = Path(dated["output_path"]).read_bytes()
    assert len(raw_a) == len(raw_b)
    diff = sum(1 for x, y in zip(raw_a, raw_b, strict=True) if x != y)
    assert 0 < diff <= 4 * 2 * len(a)


def test_dos_timestamp_rejects_garbage() -> None:
    import pytest

    from lambdazip_tf.errors import SourceError

    assert dos_timestamp(None) == (0, (0 << 9) | (1 << 5) | 1)
    with pytest.raises(SourceError, match="SOURCE_DATE_EPOCH"):
        dos_timestamp("yesterday")


def test_members_written_by_hand_read_back_with_zipfile_and_unzip(
    tmp_path: Path, run_cli: object
) -> None:
    src = tmp_path / "fn"
    write(src / "big.txt", "lambda " * 200_000)
    write(src / "ünïcødé.js", "x")
    write(src / "zero", "")
    result = external(run_cli, {"source_dir": str(src), "output_dir": str(tmp_path / "o")})
    assert result.code == 0, result.stderr
    path = result.json()["output_path"]
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
        infos = {i.filename: i for i in zf.infolist()}
        assert infos["big.txt"].compress_type == zipfile.ZIP_DEFLATED
        assert infos["big.txt"].compress_size < infos["big.txt"].file_size // 50
        assert zf.read("ünïcødé.js") == b"x"
        for info in infos.values():
            assert info.create_system == 3
            assert info.extra == b""
    check = subprocess.run(["unzip", "-tq", path], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr


def test_zip64_end_records_when_there_are_more_than_65535_entries(tmp_path: Path) -> None:
    count = ZIP64_COUNT_LIMIT + 10
    entries = [Entry(arc=f"d{i:06d}", kind="dir", mode=DIR_MODE) for i in range(count)]
    entries.append(Entry(arc="link", kind="link", mode=LINK_MODE, target="d000000"))
    path = tmp_path / "many.zip"
    with path.open("wb") as f:
        writer = ZipWriter(f, dos_timestamp(None))
        for e in entries:
            writer.add(e, link_member(e.target) if e.target else EMPTY)
        writer.finish()
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
    assert len(names) == count + 1
    assert names[-1] == "link"
    listing = subprocess.run(["unzip", "-tq", str(path)], capture_output=True, check=False)
    assert listing.returncode == 0, listing.stdout


@pytest.mark.parametrize("level", [0, 6])
def test_add_packed_writes_what_add_writes(tmp_path: Path, level: int) -> None:
    # The cold build's writer (add_packed) and the general one (add with a Member), over
    # ASCII and UTF-8 names, both file modes, empty files and big ones, with folders between.
    src = tmp_path / "src"
    files = [
        write(src / "a.js", "module.exports = 1;\n" * 50),
        write(src / "bin" / "tool", "#!/bin/sh\n", mode=0o755),
        write(src / "empty.txt"),
        write(src / "naïve-π.json", '{"k": "v"}\n' * 30),
    ]
    (src / "big.bin").write_bytes(os.urandom(1 << 20) * 3)  # over _HashingFile's 1 MiB block
    files.append(src / "big.bin")
    entries = []
    for path in files:
        st = path.stat()
        mode = EXEC_MODE if st.st_mode & 0o111 else FILE_MODE
        arc = path.relative_to(src).as_posix()
        folder = Entry(f"d{len(entries)}", "dir", DIR_MODE)
        entries += [folder, Entry(arc, "file", mode, str(path), None, st.st_size)]
    written = {}
    for way in ("add", "add_packed"):
        with (tmp_path / f"{way}.zip").open("wb") as f:
            writer = ZipWriter(f, dos_timestamp("1700000000"))
            for e in entries:
                if e.kind == "dir":
                    writer.add(e, EMPTY)
                    continue
                packed = pack_file(e.source or "", e.size, level)
                if way == "add":
                    writer.add(e, packed_member(packed))
                else:
                    writer.add_packed(e, packed)
            written[way] = writer.finish()
    assert (tmp_path / "add.zip").read_bytes() == (tmp_path / "add_packed.zip").read_bytes()
    assert written["add"].members == written["add_packed"].members
    assert written["add"][:3] == written["add_packed"][:3]
    with zipfile.ZipFile(tmp_path / "add_packed.zip") as zf:
        assert zf.read("naïve-π.json") == (src / "naïve-π.json").read_bytes()
