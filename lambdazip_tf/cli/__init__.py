"""The command line: the only place that touches stdin, stdout, stderr and exit codes.

`main` is the one error boundary; `external` speaks Terraform's external-program protocol and
answers its fast paths; `commands` parses `build`, `plan` and `ensure`; `report` formats
`plan`; `process` keeps the process-level tricks of the console script (docs/design.md, "The
program").
"""

from __future__ import annotations

from .main import main, run

__all__ = ["main", "run"]
