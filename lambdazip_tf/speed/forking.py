"""The one seam for running work in other processes: whether to fork, and how many processes.

Three things fork: the worker pool that packs files, speculative packing during a cold build's
selection, and the no-op's split stat check. Each asks `fork_allowed()` first and, when it says
no, does the same work in this process: the same bytes, only slower. No fork on Windows, and
none on macOS, where CPython documents fork as unsafe because system libraries may hold locks
or threads that the child does not inherit in a usable state (docs/design.md, "Fast paths").
Kept free of heavy imports: speculative packing asks before the pool's modules are loaded. The
pool forks through multiprocessing; the other two through `fork_child`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

# Whether this platform forks safely; tests set it to False to take the in-process fallback.
FORK_SAFE = hasattr(os, "fork") and sys.platform != "darwin"


def _jobs() -> int | None:
    env = os.environ.get("LAMBDAZIP_JOBS", "")
    return int(env) if env.isdigit() and int(env) > 0 else None


def fork_allowed() -> bool:
    """Whether work may go to forked processes (not on macOS or Windows; not with
    LAMBDAZIP_JOBS=1, which keeps everything in the build's own process)."""
    return FORK_SAFE and _jobs() != 1


def worker_count() -> int:
    """Processes that may pack at once: LAMBDAZIP_JOBS, else the cores this process may use;
    1 where forking is not allowed."""
    if not fork_allowed():
        return 1
    jobs = _jobs()
    if jobs is not None:
        return jobs
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def fork_child(work: Callable[[], object]) -> int:
    """Fork a child that runs `work` and ends: the child's pid, in this process.

    The child ends with os._exit (0 when `work` returned, 1 when it raised), never returning
    into the caller's frames: it must not run the parent's code after the fork, flush the
    parent's buffered output a second time, or let an exception reach the build. OSError when
    no process can be made.
    """
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child, which never returns
        code = 1
        try:
            work()
            code = 0
        except BaseException:  # nothing a child meets may reach the build: it only exits
            pass
        finally:
            os._exit(code)
    return pid
