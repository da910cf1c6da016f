"""lambdazip-tf: deterministic, symlink-preserving AWS Lambda zips for Terraform.

The library never prints and never exits; `lambdazip_tf.cli` is the only place that does.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import LambdazipError
from .pipeline import Outcome, build, build_from, dry_run, ensure
from .request import Request, Result, parse_request

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
