"""Objects whose freeing a process about to exit skips (issue 5).

The console script ends with os._exit (cli.run), so the interpreter never frees what is left.
What a build is done with is freed earlier, though: a cold build's entries, digests, plan and
folder listings go when the functions holding them return, in the tail after the last file is
packed, with the other cores idle (0.07 s on the benchmark tree, measured by holding them).
`keep` holds such objects to the end instead, once `hold_until_exit` has said that the process
will exit without tearing down; anywhere else (the library, the tests) it does nothing.

The same goes for the cyclic garbage collector, which cli.main turns off for the run: turning
it back on makes the next allocation scan every object the run made, 0.09-0.12 s after the
answer is written (measured with strace from the answer's write to exit_group). `holding()` tells
cli.main to leave it off.
"""

from __future__ import annotations

_kept: list[tuple[object, ...]] = []
_holding = False


def hold_until_exit() -> None:
    """From now on `keep` holds what it is given: this process ends with os._exit."""
    global _holding  # noqa: PLW0603 - one flag for the whole process
    _holding = True


def holding() -> bool:
    """Whether `hold_until_exit` was called: the process ends without tearing down."""
    return _holding


def keep(*objects: object) -> None:
    """Hold `objects` until the process exits, if it exits without tearing down."""
    if _holding:
        _kept.append(objects)
