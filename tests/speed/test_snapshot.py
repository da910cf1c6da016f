"""What a build records for the next run of the same request (docs/design.md, "Fast paths").

The request's key, and a snapshot encoded, updated and decoded, without a build: the facts and
artifacts are made here.
"""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path
from typing import Any

import pytest
from helpers import OLD, write

from lambdazip_tf.core.contenthash import ByteOptions
from lambdazip_tf.core.outputs import ArtifactFacts, Naming
from lambdazip_tf.speed.snapshot import (
    artifact_rows,
    artifacts_of,
    decode,
    encode,
    encode_selection,
    encode_update,
    request_key,
)

NOW = 2_000_000_000_000_000_000  # the moment of recording, far past every key below
OPTIONS = ByteOptions.of(6, None)
NEVER = (-1, -1, -1, -1, -1)


def _key(ns: int, ino: int = 7) -> tuple[int, int, int, int, int]:
    """A stat key whose mtime and ctime are `ns`."""
    return (10, ns, ns, ino, 1)


def _artifact(
    tmp_path: Path, name: str = "fn-0123456789abcdef.zip"
) -> tuple[ArtifactFacts, Naming]:
    path = write(tmp_path / "out" / name, "zip bytes")
    sha = hashlib.sha256(b"zip bytes").digest()
    made = ArtifactFacts(str(path), "c" * 64, "f" * 64, sha, "m" * 32, 9, 2, 1, 40)
    return made, Naming(None, str(path.parent), "fn")


def _recorded(tmp_path: Path) -> tuple[bytes, tuple[ArtifactFacts, Naming]]:
    """A stored snapshot of two zipped files (the second racy) and one artifact."""
    facts = [
        ("folder", "/src", _key(OLD)),
        ("file", "/src/package.json", _key(OLD)),
        ("isdir", "/src/node_modules", False),
    ]
    selection = encode_selection(
        facts,
        {"/src": "fa.js\0fpackage.json"},
        ["/src/a.js", "/src/b.js"],
        [_key(OLD, 1), _key(NOW - 1, 2)],
        NOW,
    )
    made = _artifact(tmp_path)
    data = encode(selection, [made], ["a warning"], "/src", b"where", OPTIONS, ["layout"])
    assert data is not None
    return data, made


def _file_key(snap: dict[str, Any], number: int) -> tuple[int, ...]:
    return struct.unpack_from("=5q", snap["keys"], 40 * number)


def test_a_request_counts_by_its_content_not_its_spelling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    cwd = str(tmp_path)
    query = {"source_dir": "src", "layer": "true"}
    key = request_key(query, cwd)
    assert key is not None
    assert request_key({"layer": "true", "source_dir": "src"}, cwd) == key
    others = [
        request_key({"source_dir": "src", "layer": "false"}, cwd),
        request_key(query, str(tmp_path / "elsewhere")),
    ]
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    others.append(request_key(query, cwd))  # another timestamp: other bytes
    assert all(other is not None and other.digest != key.digest for other in others)
    assert len({other.digest for other in others if other is not None}) == len(others)


def test_the_key_names_the_output_folder_the_build_writes_to(tmp_path: Path) -> None:
    cwd = str(tmp_path)
    folders = {
        "default": request_key({"source_dir": "src"}, cwd),
        "output_dir": request_key({"source_dir": "src", "output_dir": "build"}, cwd),
        "output_path": request_key({"source_dir": "src", "output_path": "dist/fn.zip"}, cwd),
        "absolute": request_key({"source_dir": "src", "output_dir": "/abs/out"}, cwd),
    }
    assert {name: key.output_dir if key else None for name, key in folders.items()} == {
        "default": os.path.join(cwd, ".lambdazip"),
        "output_dir": os.path.join(cwd, "build"),
        "output_path": os.path.join(cwd, "dist"),
        "absolute": "/abs/out",
    }


@pytest.mark.parametrize(
    "data",
    [None, "src", ["source_dir", "src"], {"source_dir": ["src"]}, {"layer": True}],
)
def test_only_an_object_of_strings_has_a_key(data: Any, tmp_path: Path) -> None:
    assert request_key(data, str(tmp_path)) is None


def test_a_selection_whose_folder_or_file_changed_near_the_recording_is_not_kept() -> None:
    old = [("folder", "/src", _key(OLD)), ("file", "/src/package.json", _key(OLD))]
    assert encode_selection(old, {}, [], [], NOW) is not None
    for op in ("folder", "file"):
        racy = [*old, (op, "/src/lib", _key(NOW - 1))]
        assert encode_selection(racy, {}, [], [], NOW) is None
    probes = [*old, ("realpath", "/src/lib", "/src/lib"), ("exists", "/src/x", True)]
    assert encode_selection(probes, {}, [], [], NOW) is not None  # probes carry no time
    assert encode(None, [], [], "/src", b"", OPTIONS, []) is None


def test_a_snapshot_decodes_to_what_was_recorded(tmp_path: Path) -> None:
    data, (made, naming) = _recorded(tmp_path)
    snap = decode(data, None)
    assert snap["facts"][0] == ("folder", "/src", _key(OLD))
    assert snap["facts"][2] == ("isdir", "/src/node_modules", False)
    assert snap["listings"] == {"/src": "fa.js\0fpackage.json"}
    assert snap["paths"] == "/src/a.js\0/src/b.js"
    assert _file_key(snap, 0) == _key(OLD, 1)
    assert _file_key(snap, 1) == NEVER  # racy when recorded: always counts as changed
    assert snap["warnings"] == ["a warning"]
    assert OPTIONS.described() in snap["build_options"]
    rebuild = snap["rebuild"]
    assert (rebuild["root"], rebuild["members"], rebuild["layout_warnings"]) == (
        "/src",
        b"where",
        ["layout"],
    )
    assert ByteOptions(*rebuild["options"]) == OPTIONS
    st = os.stat(made.path)
    assert artifacts_of(snap) == [(made, (st.st_size, st.st_mtime_ns, st.st_ino), naming)]


def test_artifact_rows_need_the_artifact_on_disk(tmp_path: Path) -> None:
    made, naming = _artifact(tmp_path)
    ((row_facts, key, row_naming),) = artifact_rows([(made, naming)])
    assert ArtifactFacts(*row_facts) == made
    assert Naming(*row_naming) == naming
    st = os.stat(made.path)
    assert key == (st.st_size, st.st_mtime_ns, st.st_ino)
    os.unlink(made.path)
    with pytest.raises(OSError):
        artifact_rows([(made, naming)])


def test_an_update_changes_keys_artifacts_and_warnings_and_keeps_the_rest(
    tmp_path: Path,
) -> None:
    data, _ = _recorded(tmp_path)
    snap = decode(data, None)
    patched = _artifact(tmp_path, "fn-fedcba9876543210.zip")
    first = encode_update(snap, {1: _key(OLD, 22)}, NOW, [patched], ["new warning"])
    updated = decode(data, first)
    assert _file_key(updated, 0) == _key(OLD, 1)
    assert _file_key(updated, 1) == _key(OLD, 22)
    assert [facts.path for facts, _, _ in artifacts_of(updated)] == [patched[0].path]
    assert updated["warnings"] == ["new warning"]
    assert updated["facts"] == snap["facts"]
    assert updated["rebuild"] == snap["rebuild"]
    # A second change path builds on the first update: its overrides are kept, and a key too
    # close to the recording is stored as one that never matches.
    second = encode_update(updated, {0: _key(NOW - 1, 11)}, NOW, [patched], [])
    again = decode(data, second)
    assert _file_key(again, 0) == NEVER
    assert _file_key(again, 1) == _key(OLD, 22)
    assert again["warnings"] == []
