"""The command line and the external-program protocol: the only place that touches stdin, stdout,
stderr and exit codes (STYLE.md, after pypa/build's __main__).

With no arguments the program speaks hashicorp/external's protocol (DESIGN 2): one JSON object of
strings in on stdin, one JSON object of strings out on stdout, or nothing on stdout, one line on
stderr and exit code 1.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn, TextIO

from .errors import LambdazipError, OutputError, RequestError
from .exiting import hold_until_exit, holding
from .jsonio import decode_json
from .snapshot import fast_answer

PROG = "lambdazip-tf"
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


def _external(stdin: TextIO, stdout: _Answer) -> None:
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
    # The fast paths: answered from the last build's snapshot, before pydantic and the pipeline
    # are imported (a third of the no-op's cost; issue 5). Nothing changed: the recorded
    # result; only zipped files changed: their members patched in (incremental.py).
    fast = fast_answer(text, os.getcwd())
    if fast is not None:
        stdout.write(json.dumps(fast.result, sort_keys=True) + "\n")
        return
    # Only when the fast path declines: a cold build's other cores pack files while this one
    # imports and selects (early.py).
    from .early import started_raw  # noqa: PLC0415

    with started_raw(data, os.getcwd()) as early:
        from .commands import build_external  # noqa: PLC0415

        build_external(data, text, stdout, early)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the program; return the exit code (the console script exits with it)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    stdin, stdout = sys.stdin, _Answer(sys.stdout)
    debug = os.environ.get("LAMBDAZIP_DEBUG") == "1"
    # This process never uses pydantic plugins; looking them up scans every installed
    # distribution's entry points, a cost paid on every Terraform plan.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{PROG}: %(levelname)s: %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.DEBUG if debug else logging.WARNING)
    log.propagate = False
    # One run allocates tens of thousands of small, acyclic objects (entries, index rows) that
    # reference counting frees; the cyclic collector only re-scans them, 0.15 s of a cold build
    # on the benchmark tree (issue 5). Forked pool workers inherit this, and scanning nothing
    # also spares them copy-on-write faults.
    collecting = gc.isenabled()
    gc.disable()
    try:
        if not args_list:
            _external(stdin, stdout)
            return 0
        from .commands import run_command  # noqa: PLC0415 - keeps the fast path's start small

        return run_command(args_list, stdin, stdout)
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
        if collecting and not holding():  # run() exits at once: no collection (exiting.py)
            gc.enable()


def _fail(message: str, debug: bool) -> int:
    if debug:
        import traceback  # noqa: PLC0415 - only on errors

        traceback.print_exc(file=sys.stderr)
    sys.stderr.write(f"{PROG}: error: {' '.join(message.split())}\n")
    return 1


def run() -> NoReturn:
    """Entry point of the console script and of `python -m lambdazip_tf`.

    Exits without tearing the interpreter down: once the answer is written and flushed, freeing
    every object of a 25,000-file build one by one costs about 0.1 s that nobody waits for on
    purpose (issue 5), nor what the build was done with earlier (exiting.py). main() has closed
    the cache and joined its workers and threads by then.
    """
    hold_until_exit()
    code = main()
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except OSError as exc:  # e.g. the reader went away
        code = code or _fail(str(_unwritable(exc)), False)
    if sys.stderr is not None:
        with contextlib.suppress(OSError):
            sys.stderr.flush()
    os._exit(code)
