"""Reading, hashing and deflating one file: the unit of work a build repeats for every file.

Deflate comes from libdeflate 1.26, bundled in the `deflate` wheel that pyproject.toml pins
exactly, not from the stdlib's zlib (docs/design.md, "The zip"):

- Reproducibility. The stdlib's zlib is whatever zlib Python was linked against (some
  distributions ship zlib-ng in its place, whose bytes differ), so its output is not the same on
  every machine. libdeflate's output depends only on its version, and its only CPU-specific
  code in compression fills and shifts the matchfinder's tables or computes the crc32: results
  that cannot differ. `check_deflater` refuses a `deflate` module that writes other bytes.
- Speed: it deflates node_modules' many small files in well under half of zlib's time at the
  same level, for a fraction of a percent more bytes (docs/performance.md).

libdeflate compresses a whole buffer at once, so a file to pack is read whole: a worker holds
one file and its deflated bytes at a time, about twice the largest file and never the tree. No
file exceeds Lambda's 250 MB unzipped limit, which every build checks before packing.
`hash_file` streams.
"""

from __future__ import annotations

import functools
import hashlib
import os
import stat
from collections.abc import Iterator
from typing import NamedTuple

import deflate

from ..errors import InstallError, SourceError

STORED = 0  # zip compression methods (APPNOTE 4.4.5)
DEFLATED = 8
CHUNK = 1 << 20  # hash_file reads in pieces: the parent hashes big files without holding them
DEFLATER = "libdeflate 1.26"  # part of the content hash's options and of the cache's schema
DEFAULT_LEVEL = 6  # the request's default: the size of `zip -6` (docs/performance.md)

# What libdeflate 1.26 makes of _SAMPLES at level 6 (sha256 over the outputs). Another version
# writes other bytes for the same content hash (1.14 does for the two short ones, as for 40% of
# the benchmark tree's files), so it is refused rather than used (check_deflater).
_SAMPLES = (
    b'{\n\t"root": true,\n\n\t"extends": "@ljharb",\n\n\t"rules": {\n\t\t"func-name-matching": 0,'
    b'\n\t\t"new-cap": [2, {"capIsNewExceptions": ["GetIntrinsic"]}]\n\t}\n}\n',
    b"'use strict';\n\nvar implementation = require('./implementation');\n\n"
    b"module.exports = Function.prototype.bind || implementation;\n",
    b"".join(
        b'{"name":"pkg-%d","version":"1.%d.%d","main":"lib/index.js","files":["lib"]}\n'
        % (i, i % 7, i % 13)
        for i in range(200)
    ),
)
_SAMPLES_SHA256 = "345c697d79c85efa6a871760764cf80ac1199b36677d7aa860e3cb5d44a43d68"


class Packed(NamedTuple):
    """A file's content digest and its member bytes (deflated, or stored at level 0)."""

    sha256: str
    crc: int
    size: int
    method: int
    data: bytes | bytearray  # libdeflate's bytearray as it is: never copied


# A Packed as a plain tuple, to send between processes: pickling a NamedTuple calls back into
# Python for each one, a cost paid once per file of the tree in both processes.
Fields = tuple[str, int, int, int, bytes | bytearray]


def fields(packed: Packed) -> Fields:
    """`packed` as a plain tuple, to pickle."""
    return (packed.sha256, packed.crc, packed.size, packed.method, packed.data)


def from_fields(sent: Fields) -> Packed:
    """A Packed again, without calling NamedTuple's __new__ in Python."""
    return tuple.__new__(Packed, sent)


@functools.cache  # once per process, and again after a failure
def check_deflater() -> None:
    """Refuse, with an InstallError line, a `deflate` module that does not write 1.26's bytes."""
    digest = hashlib.sha256()
    for sample in _SAMPLES:
        digest.update(deflate.deflate_compress(sample, 6))
    if digest.hexdigest() != _SAMPLES_SHA256:
        raise InstallError(
            f"the installed `deflate` module does not write {DEFLATER}'s bytes (was it built "
            "against another libdeflate?); reinstall it from its wheel: pip install "
            f"--force-reinstall --only-binary :all: deflate=={deflate.__version__}"
        )


def _chunks(path: str, size: int, piece: int) -> Iterator[bytes]:
    """The file's bytes in reads of up to `piece`, checked against its selected size."""
    # O_NOFOLLOW and O_NONBLOCK: if the file was swapped for a link or a FIFO after it was
    # selected, opening it must neither follow the link out of the tree nor hang.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except PermissionError:
        raise SourceError(f"cannot read {path}: permission denied", path) from None
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror}", path) from None
    total = 0
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SourceError(f"{path} stopped being a regular file while it was zipped", path)
        # Up to one byte past the selected size: a file that grew is caught below. The read
        # that returns nothing confirms the end.
        while total <= size:
            data = os.read(fd, min(piece, size + 1 - total))
            if not data:
                break
            total += len(data)
            if total <= size:
                yield data
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror}", path) from None
    finally:
        os.close(fd)
    if total != size:
        raise SourceError(f"{path} changed size while it was being zipped; run again", path)


def pack_file(path: str, size: int, level: int) -> Packed:
    """Read `path` once: sha256, crc32 and the member bytes at `level`; fail if it changed."""
    # Whole, in one read as a rule (libdeflate takes one buffer); joining one piece copies nothing.
    data = b"".join(_chunks(path, size, size + 1))
    sha = hashlib.sha256(data).hexdigest()
    crc = deflate.crc32(data)
    if not level:
        return Packed(sha, crc, size, STORED, data)
    check_deflater()
    return Packed(sha, crc, size, DEFLATED, deflate.deflate_compress(data, level))


def hash_file(path: str, size: int) -> str:
    """sha256 of a file's content (hex), checking that it still has the selected size."""
    digest = hashlib.sha256()
    for data in _chunks(path, size, CHUNK):
        digest.update(data)
    return digest.hexdigest()


def deflated_size(data: bytes, level: int) -> int:
    """How many bytes `data` takes as a member's content at `level` (an estimate's sample)."""
    return len(deflate.deflate_compress(data, level)) if level else len(data)
