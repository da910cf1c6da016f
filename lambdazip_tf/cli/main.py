"""The one error boundary: every failure becomes one line on stderr and an exit code.

With no arguments the program speaks Terraform's external-program protocol (external.py);
otherwise it runs a subcommand (commands.py, imported only then, so that the protocol's fast
path starts small). Library errors (LambdazipError) are printed in their own words; anything
else is an internal error, with a traceback only under LAMBDAZIP_DEBUG=1 (docs/design.md, "The
program").
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn, TextIO

from .._version import PROG
from ..errors import LambdazipError, OutputError
from . import process
from .external import serve

log = logging.getLogger("lambdazip_tf")


class _Answer:
    """stdout, for the answer: a reader that went away or a stdout closed from the start is
    one clear line on stderr and exit 1, not an internal error."""

    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        if self._stream is None:
            raise OutputError("cannot write the result to stdout: it is closed")
        try:
            return self._stream.write(text)
        except OSError as exc:  # written through at once when stdout is unbuffered
            raise _unwritable(exc) from None


def _unwritable(exc: OSError) -> OutputError:
    return OutputError(f"cannot write the result to stdout: {exc.strerror or exc}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the program; return the exit code (the console script exits with it)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    stdout = _Answer(sys.stdout)
    debug = os.environ.get("LAMBDAZIP_DEBUG") == "1"
    # This process never uses pydantic plugins; looking them up scans every installed
    # distribution's entry points, a cost paid on every Terraform plan.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{PROG}: %(levelname)s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if debug else logging.WARNING)
    log.propagate = False
    try:
        with process.collector_off():
            if not args_list:
                serve(sys.stdin, stdout, sys.stderr)
                return 0
            from .commands import run_command  # noqa: PLC0415 - keeps the fast path's start small

            return run_command(args_list, sys.stdin, stdout, sys.stderr)
    except LambdazipError as exc:
        return _fail(str(exc), debug)
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 130
    except Exception as exc:
        return _fail(
            f"internal error: {type(exc).__name__}: {exc} (set LAMBDAZIP_DEBUG=1 for details)",
            debug,
        )
    finally:
        log.removeHandler(handler)


def _fail(message: str, debug: bool) -> int:
    if debug:
        import traceback  # noqa: PLC0415 - only on errors

        traceback.print_exc(file=sys.stderr)
    sys.stderr.write(f"{PROG}: error: {' '.join(message.split())}\n")
    return 1


def run() -> NoReturn:
    """Entry point of the console script and of `python -m lambdazip_tf`.

    Exits without tearing the interpreter down once the answer is written and flushed
    (process.py); main() has closed the cache and joined its workers and threads by then.
    """
    process.hold_until_exit()
    code = main()
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except OSError as exc:  # e.g. the reader went away
        code = code or _fail(str(_unwritable(exc)), False)
    if sys.stderr is not None:
        with contextlib.suppress(OSError):
            sys.stderr.flush()
    process.exit_now(code)
