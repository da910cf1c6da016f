"""Lambda's Python runtime as the oracle (docs/design.md, "Testing").

`invoke` loads a handler the way Lambda's Python runtime does: the unpacked function at
/var/task and layer at /opt, CPython 3.X at /var/lang (from pyenv, as the runtime's own
interpreter lives there) and awslambdaric at /var/runtime, inside a private mount namespace, as
an unprivileged user. The runtime's bootstrap puts /var/task, then the layer's
python/lib/python3.X/site-packages and python/ on sys.path and runs site.addsitedir on each
(so .pth files in a zip work), then awslambdaric's `_get_handler` imports the handler. The
interpreter starts with -I -S: nothing from the host's site-packages can be imported, only what
the zips hold and the standard library.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from helpers import ROOT, as_lambda

PYENV = Path.home() / ".pyenv" / "versions"
LOADERS = ROOT / ".tools" / "lambda-runtime"  # awslambdaric per CPython: `make tools`
# What Lambda's Python runtimes set: the interpreter's own library first (a shared-library
# build of CPython, as pyenv's may be), then the zips' lib folders.
LD_LIBRARY_PATH = (
    "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib"
)

_BOOTSTRAP = r"""
import json, site, sys
minor = sys.version_info[1]
paths = ["/var/task", f"/opt/python/lib/python3.{minor}/site-packages", "/opt/python"]
sys.path[:0] = [*paths, "/var/runtime"]
for path in paths:
    site.addsitedir(path)
from awslambdaric.bootstrap import _get_handler
from awslambdaric.lambda_runtime_exception import FaultException
try:
    handler = _get_handler(sys.argv[1])
except FaultException as e:
    print(json.dumps({"errorType": e.exception_type, "errorMessage": e.msg}))
    sys.exit(3)
print(json.dumps(handler(json.loads(sys.argv[2]), None)))
"""


def interpreter(minor: int) -> Path:
    """pyenv's CPython 3.<minor> installation (its prefix)."""
    found = sorted(PYENV.glob(f"3.{minor}.*"), key=lambda p: [int(x) for x in p.name.split(".")])
    found = [p for p in found if (p / "bin" / f"python3.{minor}").exists()]
    assert found, f"CPython 3.{minor} is not under {PYENV}: the machine's pyenv versions"
    return found[-1]


def loader(minor: int) -> Path:
    """The folder awslambdaric is installed in for CPython 3.<minor> (`make tools`)."""
    folder = LOADERS / f"python3.{minor}"
    assert (folder / "awslambdaric").is_dir(), f"run `make tools`: {folder} has no awslambdaric"
    return folder


def invoke(
    function_dir: Path,
    layer_dir: Path | None,
    handler: str,
    event: dict[str, object],
    minor: int,
) -> subprocess.CompletedProcess[str]:
    """Run `handler` from function_dir at /var/task (layer_dir at /opt) as python3.<minor> on
    Lambda would: its answer as JSON on stdout; a load failure as {"errorType", ...} and exit 3."""
    environment = {
        "PATH": "/var/lang/bin:/usr/bin:/bin",
        "LD_LIBRARY_PATH": LD_LIBRARY_PATH,
        "LAMBDA_TASK_ROOT": "/var/task",
        "HOME": "/tmp",
    }
    binds = {"/var/runtime": loader(minor), "/var/lang": interpreter(minor)}
    command = f'/var/lang/bin/python3.{minor} -I -S -c "$2" "$0" "$1"'
    return as_lambda(
        function_dir, layer_dir, binds, environment, command, handler, json.dumps(event), _BOOTSTRAP
    )
