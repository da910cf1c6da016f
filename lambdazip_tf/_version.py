"""The tool's version: part of every snapshot key and of `--version`."""

from __future__ import annotations

__version__ = "0.1.0"
