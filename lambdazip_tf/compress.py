"""Reading, hashing and deflating one file: the unit of work the pool runs (DESIGN 7).

Raw deflate (wbits -15) from the stdlib's zlib is what `zipfile` and Info-ZIP write too. Other
deflate libraries are faster but their bytes differ, and the zip must be byte-identical on every
machine that runs the same version of this tool (issue 5).
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass

from .archive import DEFLATED, STORED
from .errors import SourceError

_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Packed:
    """A file's content digest and its member bytes (deflated, or stored at level 0)."""

    sha256: str
    crc: int
    size: int
    method: int
    data: bytes


def pack_file(path: str, size: int, level: int) -> Packed:
    """Read `path` once: sha256, crc32 and the member bytes at `level`; fail if it changed."""
    sha = hashlib.sha256()
    crc = 0
    compressor = zlib.compressobj(level, zlib.DEFLATED, -15) if level else None
    out: list[bytes] = []
    total = 0
    try:
        with open(path, "rb") as f:
            while True:
                # Read one byte past the selected size: a file that grew is caught here.
                data = f.read(min(_CHUNK, size + 1 - total))
                if not data:
                    break
                total += len(data)
                if total > size:
                    break
                sha.update(data)
                crc = zlib.crc32(data, crc)
                out.append(compressor.compress(data) if compressor else data)
    except PermissionError:
        raise SourceError(f"cannot read {path}: permission denied", path) from None
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror}", path) from None
    if total != size:
        raise SourceError(f"{path} changed size while it was being zipped; run again", path)
    if compressor:
        out.append(compressor.flush())
    return Packed(sha.hexdigest(), crc, size, DEFLATED if compressor else STORED, b"".join(out))


def hash_file(path: str, size: int) -> str:
    """sha256 of a file's content (hex), checking that it still has the selected size."""
    sha = hashlib.sha256()
    total = 0
    try:
        with open(path, "rb") as f:
            while data := f.read(min(_CHUNK, size + 1 - total)):
                total += len(data)
                if total > size:
                    break
                sha.update(data)
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror}", path) from None
    if total != size:
        raise SourceError(f"{path} changed size while it was being zipped; run again", path)
    return sha.hexdigest()
