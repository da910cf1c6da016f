"""The runtimes: each knows one language's installed dependencies (docs/design.md, "Runtimes").

A runtime is a package of its own that answers the core's questions (core/runtime.Runtime) in
plain values; runtimes never import each other, and the core never imports them. The pipeline
hands `RUNTIMES` to the core, which detects a function's runtime from its folder.
"""

from __future__ import annotations

from ..core.runtime import Runtime
from .nodejs import NODEJS
from .python import PYTHON

# In the order detection tries them: a folder with a package.json is a Node.js function even
# when it holds a requirements.txt too.
RUNTIMES: tuple[Runtime, ...] = (NODEJS, PYTHON)

__all__ = ["RUNTIMES"]
