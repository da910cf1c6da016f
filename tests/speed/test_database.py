"""The cache's SQLite file: opened, healed, written in transactions, read by the fast paths
(docs/design.md, "Fast paths").

Every failure degrades to "no cache" with one warning; nothing here may fail a build.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from pathlib import Path

import pytest

from lambdazip_tf.speed.database import (
    CACHE_NAME,
    KEEP_RECENT_NS,
    Database,
    disabled,
    mark_used,
    read_snapshot,
)

SNAPSHOT = "INSERT INTO snapshots VALUES (?, ?, ?)"


@pytest.fixture
def logged(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> pytest.LogCaptureFixture:
    """The library's warnings, also after an in-process CLI run stopped their propagation."""
    monkeypatch.setattr(logging.getLogger("lambdazip_tf"), "propagate", True)
    caplog.set_level(logging.WARNING, logger="lambdazip_tf")
    return caplog


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def _snapshots(folder: Path) -> list[tuple[str, bytes, int]]:
    with contextlib.closing(sqlite3.connect(folder / CACHE_NAME)) as db:
        return db.execute("SELECT key, data, used_ns FROM snapshots ORDER BY key").fetchall()


def test_a_new_database_is_created_written_and_read_again(tmp_path: Path) -> None:
    db = Database(tmp_path)
    assert db.writable
    assert db.path == tmp_path / CACHE_NAME
    db.write(SNAPSHOT, [("k1", b"one", 1), ("k2", b"two", 2)])
    db.close()
    assert not db.writable
    again = Database(tmp_path)
    assert again.query("SELECT key, data FROM snapshots ORDER BY key") == [
        ("k1", b"one"),
        ("k2", b"two"),
    ]
    again.close()


def test_no_cache_opens_nothing_and_drops_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with contextlib.closing(Database(tmp_path)) as db:
        db.write(SNAPSHOT, [("k", b"data", 1)])
    monkeypatch.setenv("LAMBDAZIP_NO_CACHE", "1")
    assert disabled()
    off = Database(tmp_path)
    assert not off.writable
    assert off.query("SELECT key FROM snapshots") == []
    off.write(SNAPSHOT, [("other", b"data", 1)])  # a no-op, not an error
    with off.batch():
        pass
    assert read_snapshot(str(tmp_path), "k") is None
    monkeypatch.delenv("LAMBDAZIP_NO_CACHE")
    assert not disabled()
    assert [key for key, _, _ in _snapshots(tmp_path)] == ["k"]


def test_a_read_only_database_creates_nothing_and_writes_nothing(tmp_path: Path) -> None:
    missing = Database(tmp_path, readonly=True)
    assert not missing.writable
    assert missing.query("SELECT key FROM snapshots") == []
    assert list(tmp_path.iterdir()) == []
    with contextlib.closing(Database(tmp_path)) as db:
        db.write(SNAPSHOT, [("k", b"data", 1)])
    reader = Database(tmp_path, readonly=True)
    assert not reader.writable
    assert reader.query("SELECT key FROM snapshots") == [("k",)]
    reader.write(SNAPSHOT, [("other", b"data", 1)])
    reader.close()
    assert [key for key, _, _ in _snapshots(tmp_path)] == ["k"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [CACHE_NAME]  # no journal left


def test_a_corrupt_database_is_started_anew_with_one_warning(
    tmp_path: Path, logged: pytest.LogCaptureFixture
) -> None:
    corrupt = tmp_path / CACHE_NAME
    corrupt.write_bytes(b"not a database" * 100)
    reader = Database(tmp_path, readonly=True)  # `plan`: gives up and leaves the file alone
    assert reader.query("SELECT key FROM snapshots") == []
    assert corrupt.read_bytes() == b"not a database" * 100
    assert _warnings(logged) == []
    db = Database(tmp_path)
    assert db.writable
    db.write(SNAPSHOT, [("k", b"data", 1)])
    db.close()
    (warning,) = _warnings(logged)
    assert "started a new one" in warning
    assert [key for key, _, _ in _snapshots(tmp_path)] == ["k"]


def test_a_database_of_another_schema_is_not_mixed_in(
    tmp_path: Path, logged: pytest.LogCaptureFixture
) -> None:
    with contextlib.closing(Database(tmp_path)) as db:
        db.write(SNAPSHOT, [("k", b"data", 1)])
    with contextlib.closing(sqlite3.connect(tmp_path / CACHE_NAME)) as raw, raw:
        raw.execute("UPDATE meta SET value = 'lambdazip-tf cache 0' WHERE key = 'schema'")
    db = Database(tmp_path)
    assert db.writable
    assert db.query("SELECT key FROM snapshots") == []
    db.close()
    assert len(_warnings(logged)) == 1


def test_a_batch_commits_its_writes_together_or_not_at_all(
    tmp_path: Path, logged: pytest.LogCaptureFixture
) -> None:
    db = Database(tmp_path)
    with db.batch():
        assert db.in_batch
        db.write(SNAPSHOT, [("a", b"1", 1)])
        db.write(SNAPSHOT, [("b", b"2", 2)])
        with db.transaction():  # joins the batch's
            db.execute(SNAPSHOT, ("c", b"3", 3))
    assert not db.in_batch
    with pytest.raises(RuntimeError), db.batch():
        db.write(SNAPSHOT, [("d", b"4", 4)])
        raise RuntimeError("the build failed")
    with db.batch():  # a cache error is a warning: the block still ends normally
        db.write(SNAPSHOT, [("e", b"5", 5)])
        db.execute(SNAPSHOT, ("a", b"again", 6))  # the key exists
    assert db.writable
    db.close()
    assert [key for key, _, _ in _snapshots(tmp_path)] == ["a", "b", "c"]
    assert len(_warnings(logged)) == 1


def test_failed_reads_and_writes_are_warnings_and_execute_raises(
    tmp_path: Path, logged: pytest.LogCaptureFixture
) -> None:
    db = Database(tmp_path)
    assert db.query("SELECT * FROM no_such_table") == []
    db.write("INSERT INTO no_such_table VALUES (?)", [(1,)])
    assert len(_warnings(logged)) == 2
    with pytest.raises(sqlite3.Error), db.transaction():
        db.execute("INSERT INTO no_such_table VALUES (?)", (1,))
    db.write(SNAPSHOT, [("k", b"data", 1)])  # the failed transaction was rolled back
    db.close()
    assert [key for key, _, _ in _snapshots(tmp_path)] == ["k"]


def test_read_snapshot_gives_the_snapshot_and_its_update(tmp_path: Path) -> None:
    assert read_snapshot(str(tmp_path), "k") is None  # no database
    assert list(tmp_path.iterdir()) == []
    with contextlib.closing(Database(tmp_path)) as db:
        db.write(SNAPSHOT, [("k", b"snapshot", 5), ("plain", b"other", 6)])
        db.write("INSERT INTO snapshot_updates VALUES (?, ?)", [("k", b"update")])
    before = (tmp_path / CACHE_NAME).stat().st_mtime_ns
    assert read_snapshot(str(tmp_path), "k") == (b"snapshot", 5, b"update")
    assert read_snapshot(str(tmp_path), "plain") == (b"other", 6, None)
    assert read_snapshot(str(tmp_path), "unknown") is None
    assert (tmp_path / CACHE_NAME).stat().st_mtime_ns == before


def test_mark_used_touches_what_was_not_touched_recently(tmp_path: Path) -> None:
    artifact = str(tmp_path / "fn-0123456789abcdef.zip")
    with contextlib.closing(Database(tmp_path)) as db:
        db.write(SNAPSHOT, [("k", b"data", 0), ("other", b"data", 0)])
        db.write(
            "INSERT INTO artifacts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(artifact, "c" * 64, 9, 1, 1, "s" * 64, "m" * 32, 6, "0:33", 0, b"")],
        )
    recent = time.time_ns() - KEEP_RECENT_NS // 8
    mark_used(str(tmp_path), "k", [artifact], recent)  # used a moment ago: no write
    assert [used for _, _, used in _snapshots(tmp_path)] == [0, 0]
    start = time.time_ns()
    mark_used(str(tmp_path), "k", [artifact], 0)
    used = {key: used for key, _, used in _snapshots(tmp_path)}
    assert used["k"] >= start
    assert used["other"] == 0
    with contextlib.closing(Database(tmp_path)) as db:
        ((artifact_used,),) = db.query("SELECT used_ns FROM artifacts")
    assert artifact_used >= start
