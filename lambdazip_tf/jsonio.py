"""Decoding JSON text into a request's raw object, with one-line errors (shared by both paths)."""

from __future__ import annotations

import json
from typing import Any

from .errors import RequestError


def decode_json(text: str, what: str) -> Any:
    """Parse JSON text; a RequestError line naming `what` when it is empty or invalid."""
    if not text.strip():
        raise RequestError(
            f'{what} is empty; expected one JSON object such as {{"source_dir": "src"}}'
        )
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise RequestError(
            f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise RequestError(f"{what} is nested too deeply to be a request") from None
