"""Writing an artifact so that nobody ever sees half of it (docs/design.md, "The zip").

A zip is written to a temporary file in the output folder, flushed to disk, and renamed into
place only when complete: a reader never sees half a zip, a failed build leaves the previous
artifact intact, and parallel builds sharing a folder never corrupt each other.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from ..errors import OutputError

STALE_TEMP_NS = 3600 * 1_000_000_000  # a temporary zip this old was left by a killed build


class Stage:
    """A temporary file beside an artifact, published under its final name only when complete."""

    def __init__(self, raw: BinaryIO, tmp: str) -> None:
        self.raw = raw
        self.tmp = tmp
        self.published = False
        self._sync: threading.Thread | None = None
        self._sync_error: OSError | None = None

    def write(self, data: bytes | bytearray) -> None:
        """Append to the file (the zip writers write through this)."""
        try:
            self.raw.write(data)
        except OSError as exc:  # a full disk, a quota, a failing device
            raise self._unwritable(exc) from None

    def sync(self) -> None:
        """Start flushing the complete file to disk, on a thread, so that the caller can work
        out the artifact's final name meanwhile."""
        try:
            self.raw.flush()
        except OSError as exc:
            raise self._unwritable(exc) from None
        self._sync = threading.Thread(target=self._fsync, args=(self.raw.fileno(),))
        self._sync.start()

    def _fsync(self, fd: int) -> None:
        try:
            os.fsync(fd)
        except OSError as exc:
            self._sync_error = exc

    def wait(self) -> None:
        """Wait for `sync`; raise what it met."""
        if self._sync is not None:
            self._sync.join()
            self._sync = None
        if self._sync_error is not None:
            raise self._sync_error

    def publish(self, path: Path | str) -> None:
        """Flush to disk, then rename into place."""
        if self._sync is None:
            self.sync()
        # Durable before it is visible: after a crash the artifact's name never points at a
        # file whose blocks were not written.
        try:
            self.wait()
            self.raw.close()
            os.replace(self.tmp, path)
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror}", path) from None
        self.published = True

    def _unwritable(self, exc: OSError) -> OutputError:
        folder = os.path.dirname(self.tmp)
        return OutputError(f"cannot write in {folder}: {exc.strerror or exc}", folder)


@contextlib.contextmanager
def staged(folder: Path | str, final_name: str) -> Iterator[Stage]:
    """A Stage in `folder`; whatever was not published is deleted, also on errors."""
    fd, tmp = _temp_in(folder, final_name)
    stage = Stage(os.fdopen(fd, "wb"), tmp)
    try:
        yield stage
    finally:
        if not stage.published:
            with contextlib.suppress(OSError):
                stage.wait()  # the descriptor is not closed under a running fsync
            stage.raw.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def _temp_in(folder: Path | str, final_name: str) -> tuple[int, str]:
    """A temporary file beside the artifact, so that the final rename is atomic."""
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{final_name}.", suffix=".tmp")
    except OSError as exc:
        raise OutputError(f"cannot write in {folder}: {exc.strerror}", folder) from None
    os.fchmod(fd, 0o644)
    return fd, tmp


def remove_stale_temps(folder: Path | str) -> None:
    """Delete temporary zips that a killed build left (never a running build's: too young)."""
    now = time.time_ns()
    try:
        with os.scandir(folder) as it:
            for item in it:
                if (
                    item.name.startswith(".")
                    and item.name.endswith(".tmp")
                    and ".zip." in item.name
                ):
                    with contextlib.suppress(OSError):
                        if now - item.stat(follow_symlinks=False).st_mtime_ns > STALE_TEMP_NS:
                            os.unlink(item.path)
    except OSError:
        pass
