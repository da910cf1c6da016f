"""Reading, hashing and deflating one file: the unit of work the pool runs (DESIGN 7).

Raw deflate (wbits -15) from the stdlib's zlib is what `zipfile` and Info-ZIP write too. Other
deflate libraries are faster but their bytes differ, and the zip must be byte-identical on every
machine that runs the same version of this tool (issue 5).

Measured on the 24,500-file benchmark tree (make bench), per-file costs matter as much as bytes:
`os.open`/`os.read` read it in 0.27 s where `open().read()` took 0.81 s, and one-shot
`zlib.compress(data, level, -15)` deflated it in 5.8 s where a compressobj per file took 6.8 s.
Files up to SMALL are read whole; larger ones stream in CHUNK pieces so memory stays bounded.
"""

from __future__ import annotations

import hashlib
import os
import stat
import zlib
from collections.abc import Iterator
from typing import NamedTuple

from .archive import DEFLATED, STORED
from .errors import SourceError

CHUNK = 1 << 20
SMALL = 8 << 20


class Packed(NamedTuple):
    """A file's content digest and its member bytes (deflated, or stored at level 0)."""

    sha256: str
    crc: int
    size: int
    method: int
    data: bytes


def _chunks(path: str, size: int) -> Iterator[bytes]:
    """The file's bytes, checked against the size it had when it was selected."""
    # O_NOFOLLOW and O_NONBLOCK: if the file was swapped for a link or a FIFO after it was
    # selected, opening it must neither follow the link out of the tree nor hang (issue 6).
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except PermissionError:
        raise SourceError(f"cannot read {path}: permission denied", path) from None
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror}", path) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SourceError(f"{path} stopped being a regular file while it was zipped", path)
        total = 0
        while True:
            # Ask for one byte past the selected size: a file that grew is caught here.
            data = os.read(fd, min(SMALL if size <= SMALL else CHUNK, size + 1 - total))
            if not data:
                break
            total += len(data)
            if total > size:
                break
            yield data
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror}", path) from None
    finally:
        os.close(fd)
    if total != size:
        raise SourceError(f"{path} changed size while it was being zipped; run again", path)


def pack_file(path: str, size: int, level: int) -> Packed:
    """Read `path` once: sha256, crc32 and the member bytes at `level`; fail if it changed."""
    if size <= SMALL:
        data = b"".join(_chunks(path, size))
        sha = hashlib.sha256(data).hexdigest()
        crc = zlib.crc32(data)
        if level:
            return Packed(sha, crc, size, DEFLATED, zlib.compress(data, level, -15))
        return Packed(sha, crc, size, STORED, data)
    digest = hashlib.sha256()
    crc = 0
    compressor = zlib.compressobj(level, zlib.DEFLATED, -15) if level else None
    out: list[bytes] = []
    for data in _chunks(path, size):
        digest.update(data)
        crc = zlib.crc32(data, crc)
        out.append(compressor.compress(data) if compressor else data)
    if compressor:
        out.append(compressor.flush())
    return Packed(digest.hexdigest(), crc, size, DEFLATED if level else STORED, b"".join(out))


def hash_file(path: str, size: int) -> str:
    """sha256 of a file's content (hex), checking that it still has the selected size."""
    digest = hashlib.sha256()
    for data in _chunks(path, size):
        digest.update(data)
    return digest.hexdigest()
