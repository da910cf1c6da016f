"""The console script's process-level tricks, and nothing else does them.

The console script ends with os._exit once its answer is written and flushed (`exit_now`), so
the interpreter never frees what is left: freeing every object of a 25,000-file build one by one
costs time that nobody waits for on purpose. What a build is done with is freed earlier,
though, when the functions holding them return, in the tail after the last file is packed with
the other cores idle. The library takes a callback for that (`keep`), which holds such objects
to the end once `hold_until_exit` has said that the process will exit without tearing down;
anywhere else (the library's own callers, the tests) it holds nothing.

The same goes for the cyclic garbage collector, which the command line turns off for the run
(`collector_off`): one run allocates tens of thousands of small, acyclic objects that reference
counting frees, and the collector would only scan them again; turning it back on before an
os._exit would make the next allocation scan every object of the run. Forked workers inherit it
off, which also spares them copy-on-write faults (docs/performance.md).
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator
from typing import NoReturn

_kept: list[object] = []
_holding = False


def hold_until_exit() -> None:
    """From now on `keep` holds what it is given: this process ends with `exit_now`."""
    global _holding  # noqa: PLW0603 - one flag for the whole process
    _holding = True


def holding() -> bool:
    """Whether `hold_until_exit` was called: the process ends without tearing down."""
    return _holding


def keep(thing: object) -> None:
    """Hold `thing` until the process exits, if it exits without tearing down."""
    if _holding:
        _kept.append(thing)


def held() -> int:
    """How many things `keep` holds (none unless the process exits at once)."""
    return len(_kept)


@contextlib.contextmanager
def collector_off() -> Iterator[None]:
    """The cyclic garbage collector off for the block; on again after it, unless it was off
    already or the process will exit at once."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting and not _holding:
            gc.enable()


def exit_now(code: int) -> NoReturn:
    """End the process without tearing the interpreter down (streams flushed by the caller)."""
    os._exit(code)
