"""The stat cache, the compressed-member store and artifact records (DESIGN 7).

One SQLite database in the output folder. SQLite (stdlib) rather than files of our own because it
gives what the design asks for without hand-written locking: every write is one transaction (a
killed build leaves the previous state), concurrent builds sharing an output folder serialise on
its lock, and a corrupt or foreign database is detected and rebuilt from nothing.

A cache entry can only ever save work, never change a result: file digests are trusted only when
(size, mtime_ns, ctime_ns, inode, device) all match and the file was not modified in the same
timestamp tick as it was hashed (git's racy-timestamp rule); members are keyed by content sha256
and level; an artifact record is trusted only while the file's size, mtime and inode are those it
was written with.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .entries import StatKey

log = logging.getLogger(__name__)

CACHE_NAME = ".lambdazip-cache.sqlite3"
SCHEMA = "lambdazip-tf cache 1"
# A file modified less than this before it was hashed may change again within the same timestamp
# tick without its mtime moving; such digests are not reused (coarse filesystems tick in 1-2 s).
RACY_NS = 2_000_000_000
DEFAULT_STORE_LIMIT = 512 * 1024 * 1024  # LAMBDAZIP_CACHE_MAX_MB overrides

_TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, ctime_ns INTEGER,
    ino INTEGER, dev INTEGER, sha256 TEXT NOT NULL, hashed_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS members (
    sha256 TEXT NOT NULL, level INTEGER NOT NULL, crc INTEGER NOT NULL, size INTEGER NOT NULL,
    method INTEGER NOT NULL, data BLOB NOT NULL, used_ns INTEGER NOT NULL,
    PRIMARY KEY (sha256, level));
CREATE TABLE IF NOT EXISTS artifacts (
    path TEXT PRIMARY KEY, content_hash TEXT NOT NULL, size INTEGER, mtime_ns INTEGER,
    ino INTEGER, sha256 TEXT NOT NULL, md5 TEXT NOT NULL, facts TEXT NOT NULL);
"""


@dataclass(frozen=True)
class StoredMember:
    """Compressed bytes of one content at one level, ready to copy into a zip."""

    crc: int
    size: int
    method: int
    data: bytes


@dataclass(frozen=True)
class ArtifactRecord:
    """What a finished artifact was built from, and its digests."""

    content_hash: str
    sha256: str
    md5: str
    size: int
    facts: str


class Cache:
    """Read and write the cache database; every failure degrades to "no cache"."""

    def __init__(self, folder: Path, *, readonly: bool = False) -> None:
        self.path = folder / CACHE_NAME
        self.readonly = readonly
        self._db: sqlite3.Connection | None = None
        self._files: dict[str, tuple[int, int, int, int, int, str, int]] | None = None
        if os.environ.get("LAMBDAZIP_NO_CACHE"):
            return
        try:
            self._db = self._open()
        except sqlite3.Error as exc:
            if readonly:
                return
            log.warning("cache %s unusable (%s); starting a new one", self.path, exc)
            self._discard()
            try:
                self._db = self._open()
            except sqlite3.Error as again:
                log.warning("running without a cache: %s", again)

    def _open(self) -> sqlite3.Connection | None:
        if self.readonly:
            if not self.path.exists():
                return None
            db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
            db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            return db
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        # The rollback journal, not WAL: in WAL mode even a reader creates -wal and -shm files,
        # and `plan` must write nothing (DESIGN 2).
        db.execute("PRAGMA journal_mode=DELETE")
        with _transaction(db):
            _create(db)
            row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if row is None:
                db.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA,))
            elif row[0] != SCHEMA:
                raise sqlite3.DatabaseError(f"cache written by another version ({row[0]})")
        return db

    def _discard(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{self.path}{suffix}")

    def close(self) -> None:
        """Close the database."""
        if self._db is not None:
            self._db.close()
            self._db = None

    # -- file digests ---------------------------------------------------------------------

    def digest(self, path: str, key: StatKey) -> str | None:
        """The cached sha256 of `path` when its stat key matches and it is not racy."""
        if self._files is None:
            self._files = {}
            rows = self._query(
                "SELECT path, size, mtime_ns, ctime_ns, ino, dev, sha256, hashed_ns FROM files"
            )
            for row in rows:
                self._files[row[0]] = row[1:]
        hit = self._files.get(path)
        if hit is None or hit[:5] != key:
            return None
        if key[1] + RACY_NS >= hit[6]:
            return None
        return hit[5]

    def record_digests(self, rows: Iterable[tuple[str, StatKey, str, int]]) -> None:
        """Remember (path, stat key, sha256, time it was hashed) for the next run."""
        self._write(
            "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(p, *k, sha, hashed) for p, k, sha, hashed in rows],
        )

    # -- members --------------------------------------------------------------------------

    def members(self, digests: Iterable[str], level: int) -> dict[str, StoredMember]:
        """The stored compressed members among `digests` at `level`."""
        wanted = sorted(set(digests))
        found: dict[str, StoredMember] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for sha, crc, size, method, data in self._query(
                f"SELECT sha256, crc, size, method, data FROM members "
                f"WHERE level = ? AND sha256 IN ({marks})",
                (level, *chunk),
            ):
                found[sha] = StoredMember(crc, size, method, data)
        return found

    def store_members(self, rows: Iterable[tuple[str, int, StoredMember]]) -> None:
        """Add members (sha256, level, member) and prune the store, oldest first."""
        now = time.time_ns()
        self._write(
            "INSERT OR REPLACE INTO members VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(sha, lvl, m.crc, m.size, m.method, m.data, now) for sha, lvl, m in rows],
        )

    def touch_members(self, digests: Iterable[str], level: int) -> None:
        """Mark members as used now, so pruning removes the ones unused the longest."""
        now = time.time_ns()
        self._write(
            "UPDATE members SET used_ns = ? WHERE sha256 = ? AND level = ?",
            [(now, sha, level) for sha in digests],
        )

    def prune(self, limit: int | None = None) -> None:
        """Delete the least recently used members until the store is under its size limit."""
        if self._db is None or self.readonly:
            return
        if limit is None:
            env = os.environ.get("LAMBDAZIP_CACHE_MAX_MB", "")
            limit = int(env) * 1024 * 1024 if env.isdigit() else DEFAULT_STORE_LIMIT
        try:
            with _transaction(self._db):
                total = self._db.execute("SELECT COALESCE(SUM(length(data)), 0) FROM members")
                excess = total.fetchone()[0] - limit
                if excess <= 0:
                    return
                doomed: list[tuple[str, int]] = []
                for sha, lvl, size in self._db.execute(
                    "SELECT sha256, level, length(data) FROM members ORDER BY used_ns, sha256"
                ):
                    if excess <= 0:
                        break
                    doomed.append((sha, lvl))
                    excess -= size
                self._db.executemany("DELETE FROM members WHERE sha256 = ? AND level = ?", doomed)
        except sqlite3.Error as exc:
            log.warning("cache prune failed: %s", exc)

    # -- artifacts ------------------------------------------------------------------------

    def artifact(self, path: Path) -> ArtifactRecord | None:
        """The record of the artifact at `path`, if the file is still the one recorded."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        for content_hash, size, mtime_ns, ino, sha, md5, facts in self._query(
            "SELECT content_hash, size, mtime_ns, ino, sha256, md5, facts FROM artifacts "
            "WHERE path = ?",
            (str(path),),
        ):
            if (size, mtime_ns, ino) == (st.st_size, st.st_mtime_ns, st.st_ino):
                return ArtifactRecord(content_hash, sha, md5, size, facts)
        return None

    def record_artifact(self, path: Path, record: ArtifactRecord) -> None:
        """Remember a freshly renamed artifact."""
        st = os.stat(path)
        self._write(
            "INSERT OR REPLACE INTO artifacts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    str(path),
                    record.content_hash,
                    st.st_size,
                    st.st_mtime_ns,
                    st.st_ino,
                    record.sha256,
                    record.md5,
                    record.facts,
                )
            ],
        )

    # -- plumbing -------------------------------------------------------------------------

    def _query(self, sql: str, args: tuple[object, ...] = ()) -> Iterator[Any]:
        if self._db is None:
            return iter(())
        try:
            return iter(self._db.execute(sql, args).fetchall())
        except sqlite3.Error as exc:
            log.warning("cache read failed (%s); continuing without it", exc)
            return iter(())

    def _write(self, sql: str, rows: list[tuple[object, ...]]) -> None:
        if self._db is None or self.readonly or not rows:
            return
        try:
            with _transaction(self._db):
                self._db.executemany(sql, rows)
        except sqlite3.Error as exc:
            log.warning("cache write failed (%s); the next run will redo the work", exc)


def _create(db: sqlite3.Connection) -> None:
    for statement in _TABLES.split(";"):
        if statement.strip():
            db.execute(statement)


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
