"""The runtimes: each knows one language's installed dependencies (docs/design.md, "Runtimes").

A runtime is a package of its own that answers the core's questions (core/runtime.Runtime) in
plain values; runtimes never import each other, and the core never imports them. The pipeline
hands `RUNTIMES` to the core, which detects a function's runtime from its folder.
"""

from __future__ import annotations

from ..core.runtime import Runtime
from .nodejs import NODEJS

# In the order detection tries them.
RUNTIMES: tuple[Runtime, ...] = (NODEJS,)

__all__ = ["RUNTIMES"]
