"""`python -m lambdazip_tf` runs the same program as the `lambdazip-tf` console script."""

from __future__ import annotations

from .cli import run

if __name__ == "__main__":
    run()
