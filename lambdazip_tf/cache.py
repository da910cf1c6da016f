"""The stat cache, the compressed-member store and artifact records (DESIGN 7).

One SQLite database in the output folder. SQLite (stdlib) rather than files of our own because it
gives what the design asks for without hand-written locking: every write is one transaction (a
killed build leaves the previous state), concurrent builds sharing an output folder serialise on
its lock, and a corrupt or foreign database is detected and rebuilt from nothing.

- **Stat cache**: per function (its real source path), a map path -> (size, mtime_ns, ctime_ns,
  inode, device, sha256, time hashed), stored as one marshal blob: loading 24,000 rows one by one
  cost 0.15 s, the blob 0.02 s. A digest is trusted only when the whole stat key matches and the
  file's mtime and ctime are not within RACY_NS of when it was read (fsview.is_racy).
- **Member store**: the artifacts themselves. Each artifact's record holds its index
  (archive.ZipIndex: each member's content, local record's offset, crc, sizes, method and central
  record's offset) at its compression level and timestamp; a rebuild copies runs of unchanged
  records, headers included, out of a previous artifact with pread, reuses the compressed bytes
  of content that moved, and compresses only the rest; the change path (incremental.py) patches
  a previous artifact through its index. A cold build therefore writes nothing but the zip, and
  memory stays bounded. An index is trusted only while the artifact's size, mtime and inode are
  those it was written with. The store is bounded: past the size limit, the least recently used
  recorded artifacts are deleted (never one used in the last `KEEP_RECENT_NS`).

A cache entry can only ever save work, never change a result.
"""

from __future__ import annotations

import contextlib
import logging
import marshal
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from .archive import ZipIndex
from .compress import DEFLATER
from .entries import StatKey
from .exiting import keep
from .fsview import MARSHAL_VERSION, is_racy, zip_key
from .snapshot import CACHE_NAME, KEEP_RECENT_NS

log = logging.getLogger(__name__)

# Stored members are libdeflate's bytes: another deflater must start a new cache, not mix in.
SCHEMA = f"lambdazip-tf cache 8 ({DEFLATER})"
DEFAULT_STORE_LIMIT = 512 * 1024 * 1024  # LAMBDAZIP_CACHE_MAX_MB overrides

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
SNAPSHOTS_KEPT = 64  # most recently used requests whose fast path is remembered

_FileRow = tuple[int, int, int, int, int, str, int]


class ArtifactRecord(NamedTuple):
    """What a finished artifact was built from, and its digests."""

    content_hash: str
    sha256: str
    md5: str
    size: int


class Previous(NamedTuple):
    """A previous artifact whose records a rebuild may copy, and its index."""

    path: str
    key: tuple[int, int, int]  # size, mtime_ns, inode when it was indexed
    members: ZipIndex


class Cache:
    """Read and write the cache database; every failure degrades to "no cache"."""

    def __init__(self, folder: Path, root: str, *, readonly: bool = False) -> None:
        self.path = folder / CACHE_NAME
        self.root = root
        self.readonly = readonly
        self._db: sqlite3.Connection | None = None
        self._files: dict[str, _FileRow] | None = None
        self._new_files: dict[str, _FileRow] = {}
        self._artifacts: list[tuple[object, ...]] = []  # rows record_artifact has not written
        self._batched = False
        if os.environ.get("LAMBDAZIP_NO_CACHE"):
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

    def _open(self) -> sqlite3.Connection | None:
        if self.readonly:
            if not self.path.exists():
                return None
            db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30)
            db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            return db
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        # A new database gets 64 KiB pages: its rows are multi-megabyte blobs (stat cache,
        # snapshot, member index), and writing the 14 MB of a cold build took 0.15 s with 4 KiB
        # pages against 0.08 s (scratch timing of the same inserts). No effect on an existing one.
        db.execute("PRAGMA page_size=65536")
        # The rollback journal, not WAL: in WAL mode even a reader creates -wal and -shm files,
        # and `plan` must write nothing (DESIGN 2).
        db.execute("PRAGMA journal_mode=DELETE")
        with _transaction(db):
            for statement in _TABLES.split(";"):
                if statement.strip():
                    db.execute(statement)
            row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if row is None:
                db.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA,))
            elif row[0] != SCHEMA:
                raise sqlite3.DatabaseError(f"cache written by another version ({row[0]})")
        return db

    def _discard(self) -> None:
        for suffix in ("", "-journal", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{self.path}{suffix}")

    def save(self) -> None:
        """Write the artifact records and digests not written yet (in the current batch, if
        any: the tail of a build commits once, not three times at about 15 ms each)."""
        if self._artifacts or self._new_files:
            with self.batch():
                if self._new_files:
                    self._save_digests()

    def close(self) -> None:
        """Save what is pending and close the database."""
        self.save()
        if self._db is not None:
            self._db.close()
            self._db = None

    # -- file digests ---------------------------------------------------------------------

    def has_digests(self) -> bool:
        """Whether any digest of this function is cached (none on a cold build)."""
        return bool(self._known_files())

    def digest(self, path: str, key: StatKey) -> str | None:
        """The cached sha256 of `path` when its stat key matches and it is not racy."""
        hit = self._known_files().get(path)
        if hit is None or hit[:5] != key or is_racy(key, hit[6]):
            return None
        return hit[5]

    def _known_files(self) -> dict[str, _FileRow]:
        if self._files is None:
            self._files = self._load_digests()
        return self._files

    def record_digest(self, path: str, key: StatKey, sha: str, hashed_ns: int) -> None:
        """Remember a digest; saved when the cache is closed."""
        self._new_files[path] = (*key, sha, hashed_ns)

    def _load_digests(self) -> dict[str, _FileRow]:
        for (data,) in self._query("SELECT data FROM digests WHERE root = ?", (self.root,)):
            try:
                loaded = marshal.loads(data)
            except (ValueError, EOFError, TypeError):
                log.warning("stat cache for %s unreadable; hashing again", self.root)
                return {}
            if isinstance(loaded, dict):
                return loaded
        return {}

    def _save_digests(self) -> None:
        if self._db is None or self.readonly:
            return
        try:
            with self._transaction():
                # Merge with what a concurrent build of the same function may have saved.
                current = self._load_digests()
                current.update(self._new_files)
                self._db.execute(
                    "INSERT OR REPLACE INTO digests VALUES (?, ?)",
                    (self.root, marshal.dumps(current, MARSHAL_VERSION)),
                )
        except sqlite3.Error as exc:
            log.warning("cache write failed (%s); the next run will hash again", exc)
        keep(self._new_files)
        self._new_files = {}

    # -- artifacts and their members ------------------------------------------------------

    def artifact(self, path: Path) -> ArtifactRecord | None:
        """The record of the artifact at `path`, if the file is still the one recorded."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        for content_hash, size, mtime_ns, ino, sha, md5, used_ns in self._query(
            "SELECT content_hash, size, mtime_ns, ino, sha256, md5, used_ns FROM artifacts "
            "WHERE path = ?",
            (str(path),),
        ):
            if (size, mtime_ns, ino) == zip_key(st):
                if time.time_ns() - used_ns > KEEP_RECENT_NS // 4:
                    self._write(
                        "UPDATE artifacts SET used_ns = ? WHERE path = ?",
                        [(time.time_ns(), str(path))],
                    )
                return ArtifactRecord(content_hash, sha, md5, size)
        return None

    def previous(self, level: int, stamp: str, prefer: str = "") -> Previous | None:
        """The most recently used artifact at this level and timestamp, same name first.

        Its index is trusted only while the file has the size, mtime and inode it was written
        with; the caller checks that again on the descriptor it reads from.
        """
        rows = self._query(
            "SELECT path, size, mtime_ns, ino, members FROM artifacts "
            "WHERE level = ? AND stamp = ? ORDER BY used_ns DESC LIMIT 16",
            (level, stamp),
        )
        ordered = sorted(rows, key=lambda row: not os.path.basename(row[0]).startswith(prefer))
        for path, size, mtime_ns, ino, blob in ordered:
            try:
                if zip_key(os.stat(path)) != (size, mtime_ns, ino):
                    continue
                return Previous(path, (size, mtime_ns, ino), ZipIndex.decode(blob))
            except (OSError, ValueError):
                continue
        return None

    def index(self, path: str, key: tuple[int, int, int]) -> ZipIndex | None:
        """The index of the artifact at `path` if it was recorded with stat key `key`."""
        for size, mtime_ns, ino, blob in self._query(
            "SELECT size, mtime_ns, ino, members FROM artifacts WHERE path = ?", (path,)
        ):
            if (size, mtime_ns, ino) == key:
                try:
                    return ZipIndex.decode(blob)
                except ValueError:
                    return None
        return None

    def record_artifact(
        self,
        path: Path,
        record: ArtifactRecord,
        level: int,
        stamp: str,
        index: ZipIndex,
    ) -> None:
        """Remember a freshly renamed artifact and where its records lie.

        Written at once inside a batch, otherwise with the next batch or at `save`: a build
        records its artifacts with the rest of its tail, in one transaction.
        """
        if self._db is None or self.readonly:
            return
        row = (
            str(path),
            record.content_hash,
            *zip_key(os.stat(path)),
            record.sha256,
            record.md5,
            level,
            stamp,
            time.time_ns(),
            index.encode(),
        )
        self._artifacts.append(row)
        if self._batched:
            self._write_artifacts()

    def _write_artifacts(self) -> None:
        rows, self._artifacts = self._artifacts, []
        sql = "INSERT OR REPLACE INTO artifacts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        self._write(sql, rows)

    def prune(self, keep: Iterable[Path], limit: int | None = None) -> list[str]:
        """Delete least recently used artifacts until the recorded ones fit the size limit."""
        if self._db is None or self.readonly:
            return []
        if limit is None:
            env = os.environ.get("LAMBDAZIP_CACHE_MAX_MB", "")
            limit = int(env) * 1024 * 1024 if env.isdigit() else DEFAULT_STORE_LIMIT
        protected = {str(p) for p in keep}
        deleted: list[str] = []
        try:
            with self._transaction():
                rows = self._db.execute(
                    "SELECT path, size, used_ns FROM artifacts ORDER BY used_ns, path"
                ).fetchall()
                total = sum(size for _, size, _ in rows)
                now = time.time_ns()
                for path, size, used_ns in rows:
                    if total <= limit:
                        break
                    if path in protected or now - used_ns < KEEP_RECENT_NS:
                        continue
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)
                    self._db.execute("DELETE FROM artifacts WHERE path = ?", (path,))
                    deleted.append(path)
                    total -= size
        except (sqlite3.Error, OSError) as exc:
            log.warning("cache prune failed: %s", exc)
        return deleted

    # -- fast-path snapshots (snapshot.py) ------------------------------------------------

    def save_snapshot(self, key: str, data: bytes | None) -> None:
        """Store a request's snapshot (None: forget it), keeping the most recently used ones."""
        if self._db is None or self.readonly:
            return
        try:
            with self._transaction():
                self._db.execute("DELETE FROM snapshot_updates WHERE key = ?", (key,))
                if data is None:
                    self._db.execute("DELETE FROM snapshots WHERE key = ?", (key,))
                    return
                self._db.execute(
                    "INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?)",
                    (key, data, time.time_ns()),
                )
                self._db.execute(
                    "DELETE FROM snapshots WHERE key NOT IN "
                    "(SELECT key FROM snapshots ORDER BY used_ns DESC LIMIT ?)",
                    (SNAPSHOTS_KEPT,),
                )
                self._db.execute(
                    "DELETE FROM snapshot_updates WHERE key NOT IN (SELECT key FROM snapshots)"
                )
        except sqlite3.Error as exc:
            log.warning("cache write failed (%s); the next run takes the full path", exc)

    def update_snapshot(self, key: str, update: bytes) -> None:
        """Store what the change path changed of a snapshot (snapshot.py reads both).

        A small row beside the large one, which stays as the full build wrote it: rewriting
        3 MB of facts for a one-file change cost a tenth of the change path.
        """
        if self._db is None or self.readonly:
            return
        try:
            with self._transaction():
                self._db.execute(
                    "INSERT OR REPLACE INTO snapshot_updates VALUES (?, ?)", (key, update)
                )
                self._db.execute(
                    "UPDATE snapshots SET used_ns = ? WHERE key = ?", (time.time_ns(), key)
                )
        except sqlite3.Error as exc:
            log.warning("cache write failed (%s); the next run takes the full path", exc)

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Make the writes inside one transaction: a commit costs more than a small write.

        A database that cannot even start one (locked past the timeout, read-only file) is
        given up for the rest of the run: the writes inside are dropped, the block still runs.
        """
        if self._db is None or self.readonly or self._batched:
            yield
            return
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            log.warning("cache write failed (%s); the next run will redo the work", exc)
            self._db.close()
            self._db, self._artifacts, self._new_files = None, [], {}
            yield
            return
        self._batched = True
        try:
            self._write_artifacts()
            yield
            self._db.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            if not isinstance(exc, sqlite3.Error):
                raise
            log.warning("cache write failed (%s); the next run will redo the work", exc)
        finally:
            self._batched = False

    def _transaction(self) -> contextlib.AbstractContextManager[None]:
        assert self._db is not None
        return contextlib.nullcontext() if self._batched else _transaction(self._db)

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
            with self._transaction():
                self._db.executemany(sql, rows)
        except sqlite3.Error as exc:
            log.warning("cache write failed (%s); the next run will redo the work", exc)


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
