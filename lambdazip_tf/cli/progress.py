"""Progress on a terminal: files and bytes written of the total, on stderr, for builds that
take longer than a second; nothing at all when stderr is not a terminal.

tqdm draws it: imported only when a build starts on a terminal, never on the fast paths
(docs/performance.md has its import cost).
"""

from __future__ import annotations

import os
import time
from typing import Any, TextIO

from ..core.progress import Progress
from .report import human

DELAY_SECONDS = 1.0  # builds quicker than this show nothing
EVERY_SECONDS = 0.1  # how often the display is redrawn, at most: a build writes a file at a time


def on_terminal(stream: TextIO | None) -> Progress | None:
    """A progress display on `stream` if it is a terminal, else None (nothing to show)."""
    try:
        if stream is None or not stream.isatty():
            return None
    except ValueError:  # closed
        return None
    return _Bar(stream)


def _screen(stream: TextIO) -> tuple[int, int]:
    """The terminal's (columns, rows); 80 x 24 where it reports none (a new pseudo-terminal
    says 0 x 0, and tqdm draws nothing on a screen with no rows)."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (OSError, ValueError):
        return 80, 24
    return (size.columns or 80), (size.lines or 24)


class _Bar:
    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._bar: Any = None
        self._files = self._total_files = 0
        self._size = self._total_size = 0
        self._pending = 0
        self._told = 0.0

    def start(self, files: int, size: int) -> None:
        from tqdm import tqdm  # noqa: PLC0415 - only for a build on a terminal

        self._total_files, self._total_size = files, size
        columns, rows = _screen(self._stream)
        self._bar = tqdm(
            total=size,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            delay=DELAY_SECONDS,
            mininterval=EVERY_SECONDS,
            file=self._stream,
            leave=False,
            ncols=columns,
            nrows=rows,
            miniters=1,
            # What was written goes in as the description: tqdm puts ", " before a postfix.
            bar_format="lambdazip-tf: packing {percentage:3.0f}% |{bar}| {desc}",
        )

    def advance(self, files: int, size: int) -> None:
        self._files += files
        self._size += size
        self._pending += size
        now = time.monotonic()
        if now - self._told >= EVERY_SECONDS:
            self._told = now
            self._draw()

    def _draw(self) -> None:
        if self._bar is not None:
            self._bar.set_description_str(
                f"{human(self._size)} of {human(self._total_size)}, "
                f"{self._files:,}/{self._total_files:,} files",
                refresh=False,
            )
            self._bar.update(self._pending)
            self._pending = 0

    def finish(self) -> None:
        if self._bar is not None:
            self._draw()
            self._bar.close()
            self._bar = None
