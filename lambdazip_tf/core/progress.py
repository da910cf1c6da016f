"""What a build tells a progress display, if it is given one: how much there is to write, and
how much is written. The command line shows it on a terminal (cli/progress.py)."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Told the totals once, then each stretch of files written, then that it is over."""

    def start(self, files: int, size: int) -> None:
        """The files and bytes the build's zips will hold."""

    def advance(self, files: int, size: int) -> None:
        """That many more files, and of their bytes, are in a zip."""

    def finish(self) -> None:
        """The build is over (also when it failed)."""
