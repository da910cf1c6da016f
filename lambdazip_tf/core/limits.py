"""Lambda's size limits, which every build path warns and refuses alike (docs/design.md,
"Lambda's limits")."""

from __future__ import annotations

import os
from collections.abc import Sequence

from ..errors import LimitError
from .entries import Entry, PackageInfo

MB = 1024 * 1024
DIRECT_UPLOAD_LIMIT = 50 * MB  # Lambda's limit for a zip uploaded with the function
UNZIPPED_LIMIT = 250 * MB  # function plus all its layers, unzipped


def size_warning(path: str | os.PathLike[str], size: int) -> str | None:
    """The warning for an artifact too large to upload directly, if it is."""
    if size <= DIRECT_UPLOAD_LIMIT:
        return None
    return (
        f"{path} is {size / MB:.1f} MB, over Lambda's 50 MB limit for direct "
        "upload; upload it through S3 (aws_lambda_function.s3_bucket) or move dependencies "
        "into a layer"
    )


def check_unzipped(zips: Sequence[Sequence[Entry]], packages: Sequence[PackageInfo]) -> None:
    """Refuse, naming the largest packages, when the zips' files exceed the unzipped limit."""
    total = sum(e.size for entries in zips for e in entries if e.kind == "file")
    if total <= UNZIPPED_LIMIT:
        return
    biggest = sorted(packages, key=lambda p: -p.size)[:3]
    named = ", ".join(f"{p.name} {p.size / MB:.1f} MB" for p in biggest)
    raise LimitError(
        f"unzipped size {total / MB:.1f} MB is over Lambda's 250 MB limit for a function and "
        f"its layers"
        + (f"; largest packages: {named}" if named else "")
        + "; exclude packages or files you do not need at run time"
    )
