"""lambdazip-tf: deterministic, symlink-preserving AWS Lambda zips for Terraform.

The library never prints and never exits; `lambdazip_tf.cli` is the only place that does.
Exports are loaded on first use, so that the command line's no-change fast path (snapshot.py)
starts without importing pydantic and the pipeline.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "LambdazipError": "errors",
    "Outcome": "pipeline",
    "Request": "request",
    "Result": "request",
    "build": "pipeline",
    "build_from": "pipeline",
    "dry_run": "pipeline",
    "ensure": "pipeline",
    "parse_request": "request",
}

if TYPE_CHECKING:
    from .errors import LambdazipError
    from .pipeline import Outcome, build, build_from, dry_run, ensure
    from .request import Request, Result, parse_request


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'lambdazip_tf' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)


__all__ = [
    "LambdazipError",
    "Outcome",
    "Request",
    "Result",
    "__version__",
    "build",
    "build_from",
    "dry_run",
    "ensure",
    "parse_request",
]
