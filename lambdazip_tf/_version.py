"""The tool's name, as the console script and every message spell it, and its version: part
of every snapshot key and of `--version`."""

from __future__ import annotations

PROG = "lambdazip-tf"
__version__ = "0.1.0"
