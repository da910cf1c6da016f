"""lambdazip-tf: deterministic, symlink-preserving AWS Lambda zips for Terraform.

The package's layers import only downward (docs/design.md, "Code map"): `cli` (the program),
`planned` (the apply-time check), `pipeline` (the one module that joins the rest), `speed`
(caches, fast paths, worker processes) beside `runtimes` (each language's dependencies), and
`core` (request, selection, layout, zip writer), with `errors` and `_version` below them all.
import-linter checks the layers in `make lint`.

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
    "ensure": "planned",
    "parse_request": "core.request",
}

if TYPE_CHECKING:
    from .core.request import Request, Result, parse_request
    from .errors import LambdazipError
    from .pipeline import Outcome, build, build_from, dry_run
    from .planned import ensure


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
