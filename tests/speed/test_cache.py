"""The cache database heals, stays bounded, and writes a build's tail in one transaction.

docs/design.md, "Fast paths".
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    build_ok,
    external,
    write,
)

from lambdazip_tf.speed.cache import Cache
from lambdazip_tf.speed.database import CACHE_NAME


def test_a_corrupt_or_foreign_cache_heals_itself(tmp_path: Path, run_cli: Any) -> None:
    src = tmp_path / "fn"
    write(src / "index.js", "x")
    request = {"source_dir": str(src), "output_dir": str(tmp_path / "out")}
    first = external(run_cli, request).json()
    database = tmp_path / "out" / CACHE_NAME
    database.write_bytes(b"this is not a database" * 100)
    healed = external(run_cli, request)
    assert healed.code == 0
    assert healed.json() == first
    assert "started a new one" in healed.stderr
    assert healed.stderr.count("\n") == 1
    with sqlite3.connect(database) as db:
        db.execute("UPDATE meta SET value = 'lambdazip-tf cache 0' WHERE key = 'schema'")
    again = external(run_cli, request)
    assert again.code == 0
    assert again.json() == first


def test_new_caches_use_large_pages_and_old_ones_still_work(tmp_path: Path, run_cli: Any) -> None:
    src = tmp_path / "fn"
    write(src / "index.js", "x")
    request = {"source_dir": str(src), "output_dir": str(tmp_path / "out")}
    first = external(run_cli, request).json()
    with contextlib.closing(sqlite3.connect(tmp_path / "out" / CACHE_NAME)) as db:
        assert db.execute("PRAGMA page_size").fetchone() == (65536,)
        db.execute("PRAGMA page_size=4096")
        db.execute("VACUUM")  # as an earlier version wrote it
        assert db.execute("PRAGMA page_size").fetchone() == (4096,)
    write(src / "index.js", "y")
    second = external(run_cli, request)
    assert second.code == 0, second.stderr
    assert second.stderr == ""
    assert second.json()["content_hash"] != first["content_hash"]


def test_the_store_is_pruned_least_recently_used_first(tmp_path: Path, run_cli: Any) -> None:
    src = tmp_path / "fn"
    out = tmp_path / "out"
    paths = []
    for i in range(3):
        write(src / "index.js", f"version {i}\n" * 1000)
        paths.append(external(run_cli, {"source_dir": str(src), "output_dir": str(out)}).json())
    with sqlite3.connect(out / CACHE_NAME) as db:
        # Pretend the first two were last used long ago, the oldest first.
        for age, data in ((3, paths[0]), (2, paths[1])):
            db.execute(
                "UPDATE artifacts SET used_ns = ? WHERE path = ?",
                (time.time_ns() - age * 3_600_000_000_000, data["output_path"]),
            )
    cache = Cache(out, str(src))
    size = Path(paths[2]["output_path"]).stat().st_size
    deleted = cache.prune(keep=[Path(paths[2]["output_path"])], limit=2 * size)
    cache.close()
    assert deleted == [paths[0]["output_path"]]
    assert not Path(paths[0]["output_path"]).exists()
    assert Path(paths[1]["output_path"]).exists()
    assert Path(paths[2]["output_path"]).exists()
    rebuilt = external(run_cli, {"source_dir": str(src), "output_dir": str(out)}).json()
    assert rebuilt == paths[2]


def test_plan_reads_the_cache_but_writes_nothing(tmp_path: Path, run_cli: Any) -> None:
    src = tmp_path / "fn"
    write(src / "index.js", "x")
    out = tmp_path / "out"
    external(run_cli, {"source_dir": str(src), "output_dir": str(out)})
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    report = run_cli(["plan", "--json", "--source-dir", str(src), "--output-dir", str(out)])
    assert json.loads(report.stdout)["current"] is True
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


class _Traced:
    """A cache connection that logs its statements and refuses transactions past `allow`."""

    def __init__(self, db: sqlite3.Connection, log: list[str], allow: int) -> None:
        self._db, self._log, self._allow = db, log, allow

    def execute(self, sql: str, *args: Any) -> Any:
        if sql.startswith("BEGIN") and self._log.count("BEGIN") >= self._allow:
            raise sqlite3.OperationalError("database is locked")
        self._log.append(sql.split(maxsplit=1)[0])
        return self._db.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


_REAL_CONNECT = sqlite3.connect


def _traced_cache(monkeypatch: pytest.MonkeyPatch, allow: int = 1000) -> list[str]:
    """Trace the cache's connections (the one that creates the tables included): a statement
    log, and transactions refused once `allow` have begun."""
    log: list[str] = []

    def traced(*args: Any, **kwargs: Any) -> Any:
        return _Traced(_REAL_CONNECT(*args, **kwargs), log, allow)

    monkeypatch.setattr(sqlite3, "connect", traced)
    return log


def _rows(folder: Path, table: str) -> int:
    with contextlib.closing(_REAL_CONNECT(folder / CACHE_NAME)) as db:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_a_builds_tail_writes_the_cache_in_one_transaction(
    tree: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = _traced_cache(monkeypatch)
    build_ok(run_cli, tree)
    # The tables' creation, then the artifact's record, the snapshot (here racy: its removal)
    # and the digests together.
    assert log.count("COMMIT") == 2
    assert log[log.index("COMMIT") + 1 :].count("BEGIN") == 1
    assert _rows(tree.parent / "out", "artifacts") == _rows(tree.parent / "out", "digests") == 1


def test_a_cache_that_cannot_start_a_transaction_is_given_up(
    tree: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The tables are created; then, as if another build held the database too long, no
    # transaction can begin.
    _traced_cache(monkeypatch, allow=1)
    run = external(run_cli, {"source_dir": str(tree), "output_dir": str(tree.parent / "out")})
    assert run.code == 0, run.stderr
    assert Path(run.json()["output_path"]).is_file()
    assert run.stderr.count("database is locked") == 1  # one warning, not one per write
    assert _rows(tree.parent / "out", "artifacts") == 0
