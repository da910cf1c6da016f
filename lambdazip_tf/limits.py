"""Lambda's size limits, shared by the full build (pipeline.py) and the change path
(incremental.py), which must warn and refuse alike."""

from __future__ import annotations

import os

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
