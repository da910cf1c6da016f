"""How many processes pack files at once (the pool, packer.py; early packing, early.py).

A module of its own so that early packing, which forks before the rest is imported, does not
import the pool's modules (concurrent.futures, multiprocessing): importing early.py took
0.041-0.048 s with them and 0.021-0.026 s without (python -X importtime), time in which the
other cores are idle.
"""

from __future__ import annotations

import os


def worker_count() -> int:
    """Cores this process may use (LAMBDAZIP_JOBS overrides, 1 disables the pool)."""
    env = os.environ.get("LAMBDAZIP_JOBS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1
