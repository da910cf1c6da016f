"""What the cache remembers: file digests, artifacts and their members, and snapshots.

Stored in the output folder's database (database.py); docs/design.md, "Fast paths":

- **Stat cache**: per function (its real source path), a map path -> (size, mtime_ns,
  ctime_ns, inode, device, sha256, time hashed), stored as one marshal blob rather than a row
  per file, because a build loads and saves it whole. A digest is trusted only when the whole
  stat key matches and the file's mtime and ctime are not racy (facts.is_racy).
- **Member store**: the artifacts themselves. Each artifact's record holds its index
  (core/zipindex.py) at its compression level and timestamp; a rebuild copies runs of
  unchanged records out of a previous artifact and reuses the compressed bytes of content that
  moved, and the change path patches a previous artifact through its index. An index is
  trusted only while the artifact's size, mtime and inode are those it was written with. The
  store is bounded: past the size limit, the least recently used recorded artifacts are
  deleted (never one used in the last `KEEP_RECENT_NS`).
- **Snapshots**: what a build's selection read, for the next run of the same request
  (snapshot.py, replay.py).

A cache entry can only ever save work, never change a result.
"""

from __future__ import annotations

import contextlib
import logging
import marshal
import os
import sqlite3
import time
from array import array
from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple

from ..core.filesystem import StatKey
from ..core.zipindex import COLUMNS, ZipIndex
from .database import KEEP_RECENT_NS, MARSHAL_VERSION, Database
from .facts import is_racy, zip_key

log = logging.getLogger(__name__)

DEFAULT_STORE_LIMIT = 512 * 1024 * 1024  # LAMBDAZIP_CACHE_MAX_MB overrides
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


def _nothing(_: object) -> None:
    pass


class Cache:
    """The cache of one output folder, for the function whose real source path is `root`.

    `hold` is given what the cache is done with, for a process that exits without freeing it
    (the command line's; docs/design.md, "Fast paths").
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        root: str,
        *,
        readonly: bool = False,
        hold: Callable[[object], None] = _nothing,
    ) -> None:
        self.root = root
        self._db = Database(folder, readonly=readonly)
        self._hold = hold
        self._files: dict[str, _FileRow] | None = None
        self._new_files: dict[str, _FileRow] = {}
        self._artifacts: list[tuple[object, ...]] = []  # rows record_artifact has not written

    def save(self) -> None:
        """Write the artifact records and digests not written yet (in the current batch, if
        any: a build's tail commits once)."""
        if self._artifacts or self._new_files:
            with self.batch():
                if self._new_files:
                    self._save_digests()

    def close(self) -> None:
        """Save what is pending and close the database."""
        self.save()
        self._db.close()

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Make the writes inside one transaction (database.Database.batch)."""
        with self._db.batch():
            if self._db.writable:
                self._write_artifacts()
            else:  # given up: what is pending is dropped
                self._artifacts, self._new_files = [], {}
            yield

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
        """Remember a digest; saved when the cache is saved or closed."""
        self._new_files[path] = (*key, sha, hashed_ns)

    def _load_digests(self) -> dict[str, _FileRow]:
        for (data,) in self._db.query("SELECT data FROM digests WHERE root = ?", (self.root,)):
            try:
                loaded = marshal.loads(data)
            except (ValueError, EOFError, TypeError):
                log.warning("stat cache for %s unreadable; hashing again", self.root)
                return {}
            if isinstance(loaded, dict):
                return loaded
        return {}

    def _save_digests(self) -> None:
        if not self._db.writable:
            return
        try:
            with self._db.transaction():
                # Merge with what a concurrent build of the same function may have saved.
                current = self._load_digests()
                current.update(self._new_files)
                self._db.execute(
                    "INSERT OR REPLACE INTO digests VALUES (?, ?)",
                    (self.root, marshal.dumps(current, MARSHAL_VERSION)),
                )
        except sqlite3.Error as exc:
            log.warning("cache write failed (%s); the next run will hash again", exc)
        self._hold(self._new_files)
        self._new_files = {}

    # -- artifacts and their members ------------------------------------------------------

    def artifact(self, path: str) -> ArtifactRecord | None:
        """The record of the artifact at `path`, if the file is still the one recorded."""
        try:
            st = os.stat(path)
        except OSError:
            return None
        for content_hash, size, mtime_ns, ino, sha, md5, used_ns in self._db.query(
            "SELECT content_hash, size, mtime_ns, ino, sha256, md5, used_ns FROM artifacts "
            "WHERE path = ?",
            (path,),
        ):
            if (size, mtime_ns, ino) == zip_key(st):
                if time.time_ns() - used_ns > KEEP_RECENT_NS // 4:
                    self._db.write(
                        "UPDATE artifacts SET used_ns = ? WHERE path = ?",
                        [(time.time_ns(), path)],
                    )
                return ArtifactRecord(content_hash, sha, md5, size)
        return None

    def previous(self, level: int, stamp: str, prefer: str = "") -> Previous | None:
        """The most recently used artifact at this level and timestamp, same name first.

        Its index is trusted only while the file has the size, mtime and inode it was written
        with; the caller checks that again on the descriptor it reads from.
        """
        rows = self._db.query(
            "SELECT path, size, mtime_ns, ino, members FROM artifacts "
            "WHERE level = ? AND stamp = ? ORDER BY used_ns DESC LIMIT 16",
            (level, stamp),
        )
        ordered = sorted(rows, key=lambda row: not os.path.basename(row[0]).startswith(prefer))
        for path, size, mtime_ns, ino, blob in ordered:
            try:
                if zip_key(os.stat(path)) != (size, mtime_ns, ino):
                    continue
                return Previous(path, (size, mtime_ns, ino), decode_index(blob))
            except (OSError, ValueError):
                continue
        return None

    def index(self, path: str, key: tuple[int, int, int]) -> ZipIndex | None:
        """The index of the artifact at `path` if it was recorded with stat key `key`."""
        for size, mtime_ns, ino, blob in self._db.query(
            "SELECT size, mtime_ns, ino, members FROM artifacts WHERE path = ?", (path,)
        ):
            if (size, mtime_ns, ino) == key:
                try:
                    return decode_index(blob)
                except ValueError:
                    return None
        return None

    def record_artifact(
        self, path: str, record: ArtifactRecord, level: int, stamp: str, index: ZipIndex
    ) -> None:
        """Remember a freshly renamed artifact and where its records lie.

        Written at once inside a batch, otherwise with the next batch or at `save`: a build
        records its artifacts with the rest of its tail, in one transaction.
        """
        if not self._db.writable:
            return
        row = (
            path,
            record.content_hash,
            *zip_key(os.stat(path)),
            record.sha256,
            record.md5,
            level,
            stamp,
            time.time_ns(),
            encode_index(index),
        )
        self._artifacts.append(row)
        if self._db.in_batch:
            self._write_artifacts()

    def _write_artifacts(self) -> None:
        rows, self._artifacts = self._artifacts, []
        sql = "INSERT OR REPLACE INTO artifacts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        self._db.write(sql, rows)

    def prune(self, keep: Iterable[str], limit: int | None = None) -> list[str]:
        """Delete least recently used artifacts until the recorded ones fit the size limit."""
        if not self._db.writable:
            return []
        if limit is None:
            env = os.environ.get("LAMBDAZIP_CACHE_MAX_MB", "")
            limit = int(env) * 1024 * 1024 if env.isdigit() else DEFAULT_STORE_LIMIT
        protected = {str(p) for p in keep}
        deleted: list[str] = []
        try:
            with self._db.transaction():
                rows = self._db.execute(
                    "SELECT path, size, used_ns FROM artifacts ORDER BY used_ns, path"
                )
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

    # -- snapshots ------------------------------------------------------------------------

    def save_snapshot(self, key: str, data: bytes | None) -> None:
        """Store a request's snapshot (None: forget it), keeping the most recently used ones."""
        if not self._db.writable:
            return
        try:
            with self._db.transaction():
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
        """Store what the change path changed of a snapshot, beside it.

        A small row beside the large one, which stays as the full build wrote it: a one-file
        change then writes a few kilobytes, not the megabytes of facts.
        """
        if not self._db.writable:
            return
        try:
            with self._db.transaction():
                self._db.execute(
                    "INSERT OR REPLACE INTO snapshot_updates VALUES (?, ?)", (key, update)
                )
                self._db.execute(
                    "UPDATE snapshots SET used_ns = ? WHERE key = ?", (time.time_ns(), key)
                )
        except sqlite3.Error as exc:
            log.warning("cache write failed (%s); the next run takes the full path", exc)


def encode_index(index: ZipIndex) -> bytes:
    """An artifact's index as the member store keeps it."""
    data = {name: getattr(index, name).tobytes() for name in COLUMNS}
    names, held = "\0".join(index.names), "\0".join(index.held)
    return marshal.dumps({"names": names, "held": held, **data}, MARSHAL_VERSION)


def decode_index(blob: bytes) -> ZipIndex:
    """The index saved by `encode_index`; ValueError when it is not one."""
    try:
        data = marshal.loads(blob)
        names = data["names"].split("\0") if data["names"] else []
        held = data["held"].split("\0") if data["held"] else []
        columns = []
        for name in COLUMNS:
            column = array("q")
            column.frombytes(data[name])
            columns.append(column)
    except (EOFError, TypeError, KeyError, AttributeError) as exc:
        raise ValueError(f"not a zip index: {exc}") from None
    index = ZipIndex(names, held, *columns)
    count = len(names)
    if not (
        len(held) == count
        and all(len(c) == count for c in columns[:1] + columns[3:])
        and len(index.starts) == len(index.cdpos) == count + 1
    ):
        raise ValueError("not a zip index: its columns disagree")
    return index
