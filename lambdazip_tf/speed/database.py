"""The cache's SQLite database: opening it, its schema, and transactions.

One SQLite file in the output folder. SQLite (stdlib) rather than files of our own because it
gives what the cache needs without hand-written locking: every write is one transaction (a
killed build leaves the previous state), concurrent builds sharing an output folder serialise
on its lock, and a corrupt or foreign database is detected and rebuilt from nothing. Every
failure degrades to "no cache", with one warning line. The fast paths read and touch a
snapshot here directly (`read_snapshot`, `mark_used`), without the cache's other machinery.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CACHE_NAME = ".lambdazip-cache.sqlite3"
KEEP_RECENT_NS = 3600 * 1_000_000_000  # never prune an artifact used in the last hour
# marshal's version 2 for every blob the cache stores: later versions track shared objects,
# which makes dumping a blob whose strings the build still references much slower, and loading
# too. marshal reads any version.
MARSHAL_VERSION = 2

_TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS digests (root TEXT PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS artifacts (
    path TEXT PRIMARY KEY, content_hash TEXT NOT NULL, size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL, ino INTEGER NOT NULL, sha256 TEXT NOT NULL, md5 TEXT NOT NULL,
    level INTEGER NOT NULL, stamp TEXT NOT NULL, used_ns INTEGER NOT NULL,
    members BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS snapshots (
    key TEXT PRIMARY KEY, data BLOB NOT NULL, used_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS snapshot_updates (key TEXT PRIMARY KEY, data BLOB NOT NULL)
"""


def _schema() -> str:
    """The cache's schema: stored members are libdeflate's bytes, so another deflater must
    start a new cache, not mix in."""
    # Imported here: the fast paths read snapshots through this module without the deflater.
    from ..core.compress import DEFLATER  # noqa: PLC0415

    return f"lambdazip-tf cache 8 ({DEFLATER})"


def disabled() -> bool:
    """Whether LAMBDAZIP_NO_CACHE turns the cache off."""
    return bool(os.environ.get("LAMBDAZIP_NO_CACHE"))


class Database:
    """One connection to the cache database of an output folder, or none when it is unusable."""

    def __init__(self, folder: str | os.PathLike[str], *, readonly: bool = False) -> None:
        self.path = Path(folder) / CACHE_NAME
        self.readonly = readonly
        self.in_batch = False
        self._db: sqlite3.Connection | None = None
        if disabled():
            return
        try:
            self._db = self._open()
        except (sqlite3.Error, OSError) as exc:
            if readonly:
                return
            self._discard()
            try:
                self._db = self._open()
            except (sqlite3.Error, OSError) as again:  # one line: a failing build adds its own
                log.warning("cache %s unusable (%s); running without a cache", self.path, again)
            else:
                log.warning("cache %s unusable (%s); started a new one", self.path, exc)

    @property
    def writable(self) -> bool:
        """Whether writes can be made (open, and not read-only)."""
        return self._db is not None and not self.readonly

    def _open(self) -> sqlite3.Connection | None:
        if self.readonly:
            if not self.path.exists():
                return None
            db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
            db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            return db
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        # A new database gets 64 KiB pages: its rows are multi-megabyte blobs (stat cache,
        # snapshot, member index), which small pages split into many. No effect on an
        # existing database.
        db.execute("PRAGMA page_size=65536")
        # The rollback journal, not WAL: in WAL mode even a reader creates -wal and -shm files,
        # and `plan` must write nothing.
        db.execute("PRAGMA journal_mode=DELETE")
        schema = _schema()
        with _transaction(db):
            for statement in _TABLES.split(";"):
                if statement.strip():
                    db.execute(statement)
            row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if row is None:
                db.execute("INSERT INTO meta VALUES ('schema', ?)", (schema,))
            elif row[0] != schema:
                raise sqlite3.DatabaseError(f"cache written by another version ({row[0]})")
        return db

    def _discard(self) -> None:
        for suffix in ("", "-journal", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{self.path}{suffix}")

    def close(self) -> None:
        """Close the connection."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def query(self, sql: str, args: tuple[object, ...] = ()) -> list[Any]:
        """Rows of a query; none when the database is unusable or the read fails."""
        if self._db is None:
            return []
        try:
            return self._db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            log.warning("cache read failed (%s); continuing without it", exc)
            return []

    def execute(self, sql: str, args: tuple[object, ...] = ()) -> list[Any]:
        """Run one statement inside `transaction`; sqlite3.Error propagates."""
        assert self._db is not None
        return self._db.execute(sql, args).fetchall()

    def write(self, sql: str, rows: list[tuple[object, ...]]) -> None:
        """Run a statement for each row in one transaction; a failure is a warning."""
        if not self.writable or not rows:
            return
        try:
            with self.transaction():
                assert self._db is not None
                self._db.executemany(sql, rows)
        except sqlite3.Error as exc:
            log.warning("cache write failed (%s); the next run will redo the work", exc)

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """A transaction of its own, or none inside a batch (whose transaction it joins)."""
        assert self._db is not None
        return contextlib.nullcontext() if self.in_batch else _transaction(self._db)

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Make the writes inside one transaction: a commit costs more than a small write.

        A database that cannot even start one (locked past the timeout, read-only file) is
        given up for the rest of the run: the writes inside are dropped, the block still runs.
        """
        if not self.writable or self.in_batch:
            yield
            return
        assert self._db is not None
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            log.warning("cache write failed (%s); the next run will redo the work", exc)
            self.close()
            yield
            return
        self.in_batch = True
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            if not isinstance(exc, sqlite3.Error):
                raise
            log.warning("cache write failed (%s); the next run will redo the work", exc)
        finally:
            self.in_batch = False


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def read_snapshot(folder: str, key: str) -> tuple[Any, int, Any] | None:
    """(data, used_ns, update) of a request's snapshot, read without writing anything (None:
    no cache or no snapshot). sqlite3.Error propagates: the fast path then declines."""
    database = os.path.join(folder, CACHE_NAME)
    if disabled() or not os.path.isfile(database):
        return None
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    try:
        row = db.execute(
            "SELECT s.data, s.used_ns, u.data FROM snapshots s "
            "LEFT JOIN snapshot_updates u ON u.key = s.key WHERE s.key = ?",
            (key,),
        ).fetchone()
    finally:
        db.close()
    return None if row is None else (row[0], row[1], row[2])


def mark_used(folder: str, key: str, artifacts: list[str], used_ns: int) -> None:
    """Keep what a fast path answered from being pruned: at most one write in 15 minutes."""
    if time.time_ns() - used_ns <= KEEP_RECENT_NS // 4:
        return
    try:
        db = sqlite3.connect(os.path.join(folder, CACHE_NAME), timeout=5, isolation_level=None)
        try:
            now = time.time_ns()
            db.execute("BEGIN IMMEDIATE")
            db.executemany(
                "UPDATE artifacts SET used_ns = ? WHERE path = ?",
                [(now, path) for path in artifacts],
            )
            db.execute("UPDATE snapshots SET used_ns = ? WHERE key = ?", (now, key))
            db.execute("COMMIT")
        finally:
            db.close()
    except sqlite3.Error as exc:
        log.debug("could not mark artifacts as used: %s", exc)
