"""lambdazip-tf: deterministic, symlink-preserving AWS Lambda zips for Terraform.

The package has three layers whose imports point only downward (docs/design.md, "Code map"):
`cli` (the program), `pipeline` (the one module that joins the other two), `speed` (caches,
fast paths, worker processes) and `core` (request, selection, Node.js crawl, layout, zip
writer), with `errors` and `_version` below them all. import-linter checks the layers in
`make lint`.

The library never prints and never exits; `lambdazip_tf.cli` is the only place that does.
Exports are loaded on first use: the command line's fast path must start without importing
pydantic and the pipeline.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

_EXPORTS = {
    "LambdazipError": "errors",
    "Outcome": "pipeline",
    "Request": "core.request",
    "Result": "core.request",
    "build": "pipeline",
    "build_from": "pipeline",
    "dry_run": "pipeline",
    "ensure": "pipeline",
    "parse_request": "core.request",
}

if TYPE_CHECKING:
    from .core.request import Request, Result, parse_request
    from .errors import LambdazipError
    from .pipeline import Outcome, build, build_from, dry_run, ensure


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
