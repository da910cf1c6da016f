"""One artifact, found current in the cache or written from a plan (docs/design.md, "Fast
paths").

Entries are made here from trees in tmp_path, without the selection; the cache and the packer
are the real ones, in this process.
"""

from __future__ import annotations

import hashlib
import os
import stat
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import link, write

from lambdazip_tf.core.contenthash import ByteOptions, content_hashes
from lambdazip_tf.core.entries import LINK_MODE, Entry, file_entry, with_parents
from lambdazip_tf.core.outputs import ArtifactFacts, Naming, naming_for
from lambdazip_tf.speed import artifact, facts
from lambdazip_tf.speed.cache import Cache
from lambdazip_tf.speed.pool import Packer

OPTIONS = ByteOptions.of(6, None)


def _nothing(_: object) -> None:
    pass


class _Recorded:
    """A progress display that remembers what it was told."""

    def __init__(self) -> None:
        self.advanced: list[tuple[int, int]] = []

    def start(self, files: int, size: int) -> None:
        pass

    def advance(self, files: int, size: int) -> None:
        self.advanced.append((files, size))

    def finish(self) -> None:
        pass

    def totals(self) -> tuple[int, int]:
        return sum(f for f, _ in self.advanced), sum(s for _, s in self.advanced)


def _tree(src: Path) -> Path:
    write(src / "index.js", "exports.handler = async () => require('./lib/a');\n")
    write(src / "lib" / "a.js", "module.exports = 'a';\n" * 50)
    write(src / "lib" / "b.js", "module.exports = 'b';\n" * 20)
    write(src / "bin" / "run.sh", "#!/bin/sh\necho hi\n", mode=0o755)
    link(src / "lib" / "alias.js", "a.js")
    return src


def _entries(src: Path) -> list[Entry]:
    """The tree's entries as the selection gives them: sorted, with their parent folders."""
    found = []
    for path in src.rglob("*"):
        arc = path.relative_to(src).as_posix()
        if path.is_symlink():
            found.append(Entry(arc, "link", LINK_MODE, target=os.readlink(path)))
        elif path.is_file():
            found.append(file_entry(arc, str(path), path.stat()))
    return with_parents(found)


def _naming(out: Path) -> Naming:
    return naming_for(str(out), None, "fn", layer=False)


def _produce(
    entries: list[Entry],
    out: Path,
    naming: Naming | None = None,
    progress: _Recorded | None = None,
    hold: Callable[[object], None] = _nothing,
) -> ArtifactFacts:
    out.mkdir(exist_ok=True)
    cache = Cache(out, "fn-root")
    try:
        with Packer(OPTIONS.level) as packer:
            return artifact.produce(
                entries, naming or _naming(out), OPTIONS, cache, packer, hold, progress
            )
    finally:
        cache.close()


def _digests(entries: list[Entry]) -> dict[str, str]:
    return {
        e.source: hashlib.sha256(Path(e.source).read_bytes()).hexdigest()
        for e in entries
        if e.kind == "file" and e.source is not None
    }


def test_a_cold_build_writes_the_entries_under_the_name_their_content_hash_gives(
    tmp_path: Path,
) -> None:
    entries = _entries(_tree(tmp_path / "fn"))
    out = tmp_path / "out"
    made = _produce(entries, out)
    assert not made.reused
    hashes = content_hashes(entries, _digests(entries), OPTIONS)
    assert (made.content_hash, made.files_hash) == hashes
    assert made.path == _naming(out).path(hashes.content)
    data = Path(made.path).read_bytes()
    assert made.sha256 == hashlib.sha256(data).digest()
    assert made.md5 == hashlib.md5(data).hexdigest()
    assert made.size == len(data)
    files = [e for e in entries if e.kind == "file"]
    assert (made.file_count, made.symlink_count) == (len(files), 1)
    assert made.unzipped_size == sum(e.size for e in files)
    with zipfile.ZipFile(made.path) as zf:
        assert [i.filename for i in zf.infolist()] == [e.zip_name for e in entries]
        alias = zf.getinfo("lib/alias.js")
        assert stat.S_ISLNK(alias.external_attr >> 16)
        assert zf.read(alias) == b"a.js"
        assert stat.S_IMODE(zf.getinfo("bin/run.sh").external_attr >> 16) == 0o755
        assert zf.read("lib/a.js") == (tmp_path / "fn" / "lib" / "a.js").read_bytes()


def test_unchanged_entries_are_found_current_and_nothing_is_written(tmp_path: Path) -> None:
    entries = _entries(_tree(tmp_path / "fn"))
    out = tmp_path / "out"
    held: list[object] = []
    first = _produce(entries, out, hold=held.append)
    assert held  # a written artifact hands over what it is done with
    before = os.stat(first.path)
    held.clear()
    progress = _Recorded()
    again = _produce(entries, out, progress=progress, hold=held.append)
    assert again.reused
    assert again._replace(reused=False) == first
    after = os.stat(first.path)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert held == []
    assert progress.advanced == []


def test_a_rebuild_from_the_previous_artifact_equals_a_cold_build(tmp_path: Path) -> None:
    src = _tree(tmp_path / "fn")
    out = tmp_path / "out"
    first = _produce(_entries(src), out)
    write(src / "lib" / "b.js", "module.exports = 'b, edited';\n")
    (src / "index.js").rename(src / "main.js")  # the same content under another name
    write(src / "lib" / "new.js", "module.exports = 'new';\n")
    (src / "bin" / "run.sh").chmod(0o644)
    entries = _entries(src)
    warm = _produce(entries, out)
    cold = _produce(entries, tmp_path / "cold")
    assert not warm.reused and not cold.reused
    assert warm.path != first.path
    assert Path(first.path).is_file()  # the previous artifact is left for the store to prune
    assert Path(warm.path).read_bytes() == Path(cold.path).read_bytes()
    assert Path(warm.path).name == Path(cold.path).name
    assert warm._replace(path="") == cold._replace(path="")


def test_progress_is_told_of_every_file_whether_packed_or_copied(tmp_path: Path) -> None:
    src = _tree(tmp_path / "fn")
    out = tmp_path / "out"
    entries = _entries(src)
    files = [e for e in entries if e.kind == "file"]
    cold = _Recorded()
    _produce(entries, out, progress=cold)
    assert cold.totals() == (len(files), sum(e.size for e in files))
    write(src / "lib" / "b.js", "module.exports = 'b, edited';\n")
    entries = _entries(src)
    files = [e for e in entries if e.kind == "file"]
    warm = _Recorded()
    _produce(entries, out, progress=warm)  # mostly copied out of the previous artifact
    assert warm.totals() == (len(files), sum(e.size for e in files))


def test_inspect_decides_what_produce_would_without_writing(tmp_path: Path) -> None:
    entries = _entries(_tree(tmp_path / "fn"))
    out = tmp_path / "out"
    out.mkdir()
    cache = Cache(out, "fn-root", readonly=True)
    planned = artifact.inspect(entries, _naming(out), OPTIONS, cache)
    cache.close()
    assert list(out.iterdir()) == []  # not even a cache database
    assert not planned.reused
    assert (planned.sha256, planned.md5, planned.size) == (b"", "", 0)
    made = _produce(entries, out)
    assert planned.path == made.path
    assert (planned.content_hash, planned.files_hash) == (made.content_hash, made.files_hash)
    assert (planned.file_count, planned.symlink_count, planned.unzipped_size) == (
        made.file_count,
        made.symlink_count,
        made.unzipped_size,
    )
    listing = sorted(p.name for p in out.iterdir())
    cache = Cache(out, "fn-root", readonly=True)
    current = artifact.inspect(entries, _naming(out), OPTIONS, cache)
    cache.close()
    assert current == made._replace(reused=True)
    assert sorted(p.name for p in out.iterdir()) == listing


def test_known_digests_are_the_cached_ones_whose_stat_key_still_matches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(facts, "RACY_NS", 0)  # no racy window: every recorded digest counts
    src = _tree(tmp_path / "fn")
    out = tmp_path / "out"
    out.mkdir()
    entries = _entries(src)
    cache = Cache(out, "fn-root")
    assert artifact.known_digests(entries, cache) == {}  # a cold build
    cache.close()
    _produce(entries, out)
    cache = Cache(out, "fn-root")
    assert artifact.known_digests(entries, cache) == _digests(entries)  # files only
    cache.close()
    edited = write(src / "lib" / "b.js", "module.exports = 'b, edited';\n")
    entries = _entries(src)
    cache = Cache(out, "fn-root")
    known = artifact.known_digests(entries, cache)
    cache.close()
    assert str(edited) not in known
    assert known == {k: v for k, v in _digests(entries).items() if k != str(edited)}


def test_a_fixed_name_is_written_again_in_place_when_the_content_changes(tmp_path: Path) -> None:
    src = _tree(tmp_path / "fn")
    out = tmp_path / "out"
    naming = naming_for(str(out), "function.zip", "fn", layer=False)
    first = _produce(_entries(src), out, naming)
    assert first.path == str(out / "function.zip")
    write(src / "lib" / "a.js", "module.exports = 'a, edited';\n")
    entries = _entries(src)
    second = _produce(entries, out, naming)
    assert second.path == first.path
    assert not second.reused
    assert second.content_hash != first.content_hash
    with zipfile.ZipFile(second.path) as zf:
        assert zf.read("lib/a.js") == b"module.exports = 'a, edited';\n"
    assert _produce(entries, out, naming) == second._replace(reused=True)
