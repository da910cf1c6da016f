"""External-program mode: the protocol of Terraform's external data source.

One JSON object of strings in on stdin; one JSON object of strings out on stdout, or nothing on
stdout, one line on stderr and exit code 1 (main.py turns errors into that). The request is
decoded once. Its key (speed/snapshot.py) first tries the fast paths, answered from the last
build's snapshot before pydantic and the pipeline are imported; only when they decline is the
request validated and built in full, with speculative packing on the idle cores meanwhile
(docs/design.md, "The program", "Fast paths").
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from .._version import PROG
from ..errors import RequestError
from ..speed.replay import fast_answer
from ..speed.snapshot import request_key
from . import process

if TYPE_CHECKING:
    from ..core.request import Request


class Out(Protocol):
    """Where answers go: main.py's stdout, which turns a failed write into an OutputError."""

    def write(self, text: str, /) -> object: ...


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


def read_json(name: str, stdin: TextIO, what: str) -> Any:
    """The JSON in file `name` ('-' for stdin), decoded; a RequestError line naming `what`."""
    try:
        text = stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
    except OSError as exc:
        raise RequestError(f"cannot read {what}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise RequestError(f"{what} is not UTF-8 text") from None
    return decode_json(text, what)


def answer(result: dict[str, str]) -> str:
    """The protocol's answer: one object of strings, one line, nothing else."""
    return json.dumps(result, sort_keys=True) + "\n"


def serve(stdin: TextIO, stdout: Out, stderr: TextIO | None) -> None:
    """Read one request on stdin, build (or answer from the fast paths), print the result."""
    if stdin.isatty():
        raise RequestError(
            "no arguments: expecting a JSON request on stdin (Terraform's external data source); "
            f"see `{PROG} --help`"
        )
    try:
        text = stdin.read()
    except UnicodeDecodeError:
        raise RequestError("stdin is not UTF-8 text") from None
    data = decode_json(text, "stdin")
    cwd = os.getcwd()
    key = request_key(data, cwd)
    if key is None:  # not an object of strings: validation says what is wrong
        validated(data)
        raise RequestError("the request must be a JSON object of strings")
    fast = fast_answer(key)
    if fast is not None:
        stdout.write(answer(fast.result))
        return
    from ..speed.speculative import started_unvalidated  # noqa: PLC0415 - only for a build

    with started_unvalidated(data, cwd, key.output_dir) as speculative:
        from ..pipeline import build  # noqa: PLC0415 - the fast paths start without it

        request = validated(data)
        from .progress import on_terminal  # noqa: PLC0415 - after the fast paths

        outcome = build(
            request,
            output_dir=key.output_dir,
            snapshot_key=key.digest,
            speculative=speculative,
            hold=process.keep,
            progress=on_terminal(stderr),
        )
        stdout.write(answer(outcome.strings()))
        process.keep(outcome)


def validated(data: Any) -> Request:
    """The request Terraform sent, validated: every value a string, as the protocol has it."""
    from ..core.request import Request, parse_request  # noqa: PLC0415 - imports pydantic

    if isinstance(data, dict):
        for key, value in data.items():
            if not isinstance(value, str) and key in Request.model_fields:
                raise RequestError(
                    f"request key {key!r} must be a string (Terraform's external data source "
                    "sends only strings; pass lists with jsonencode())",
                    key,
                )
    return parse_request(data)
