"""Run lambdazip-tf for the Terraform module, installing it first where it is missing.

Started by ./lambdazip-tf with -S, for every plan: on the way to the real program (os.execv)
it reads two small files and stats one, and imports nothing more than it must, so that a
plan pays a few milliseconds for it. On a Python older than 3.11 it exits 3 at once (the
shell script tries the next one).

1. `lambdazip-tf` on PATH whose `--version` is the module's (VERSION beside this file, so that a
   copy of the module alone, vendored into a root module's modules/, knows it): run it. The
   version is asked once per executable (its path, size and mtime) and remembered in the
   cache folder.
2. Otherwise a virtual environment in the cache folder, one per version, with the package
   installed from the module's own source tree (the folder above this module): made once,
   under a lock, so that ten data sources starting at once make it once, and marked complete
   only at the end, so that an interrupted install is made again, never used. A copy of the
   module without the package beside it says what to install instead.

The cache folder is $LAMBDAZIP_HOME, else $XDG_CACHE_HOME/lambdazip-tf, else
~/.cache/lambdazip-tf.
"""

from __future__ import annotations

import os
import sys

if sys.version_info < (3, 11):  # noqa: UP036 - an older python3 may run this file
    sys.exit(3)

PROG = "lambdazip-tf"
SOURCE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def fail(message: str) -> None:
    sys.stderr.write(f"{PROG}: error: {' '.join(message.split())}\n")
    sys.exit(1)


def module_version() -> str:
    """The version of lambdazip-tf this module is for (a test keeps it the package's)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "VERSION")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        fail(f"the module's launcher cannot read {path}; copy the module's launcher/ whole")
        raise AssertionError("unreachable") from None


def cache_home() -> str:
    home = os.environ.get("LAMBDAZIP_HOME")
    if home:
        return home
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, PROG)


def which() -> str | None:
    """lambdazip-tf on PATH (shutil.which, without importing shutil on every plan)."""
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidate = os.path.join(folder or ".", PROG)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def on_path(version: str, folder: str) -> str | None:
    """lambdazip-tf from PATH if its version is `version`; the verdict is remembered by the
    executable's real path, size and mtime, so `--version` runs once per installation."""
    exe = which()
    if exe is None:
        return None
    real = os.path.realpath(exe)
    st = os.stat(real)
    key = f"{real}\t{st.st_size}\t{st.st_mtime_ns}"
    verdicts = os.path.join(folder, "on-path")
    try:
        with open(verdicts, encoding="utf-8") as f:
            known = dict(line.rstrip("\n").rsplit("\t", 1) for line in f if "\t" in line)
    except OSError:
        known = {}
    if key not in known:
        import subprocess  # noqa: PLC0415 - once per installation

        try:
            said = subprocess.run(
                [exe, "--version"], capture_output=True, text=True, timeout=60, check=False
            )
            known[key] = "yes" if said.stdout.strip() == f"{PROG} {version}" else "no"
        except (OSError, subprocess.SubprocessError):
            known[key] = "no"
        write_atomically(verdicts, "".join(f"{k}\t{v}\n" for k, v in known.items()))
    return exe if known[key] == "yes" else None


def write_atomically(path: str, text: str) -> None:
    import tempfile  # noqa: PLC0415 - only when something is written

    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def installed(folder: str) -> str:
    """The virtual environment's lambdazip-tf, made first if it is not there."""
    venv = os.path.join(folder, "venv")
    exe = os.path.join(venv, "bin", PROG)
    done = os.path.join(venv, ".complete")  # written last: an interrupted install lacks it
    if os.path.exists(done):
        return exe
    import fcntl  # noqa: PLC0415 - only to install
    import shutil  # noqa: PLC0415
    import subprocess  # noqa: PLC0415

    if not os.path.isfile(os.path.join(SOURCE, "lambdazip_tf", "_version.py")):
        version = module_version()
        fail(
            f"lambdazip-tf {version} is not on PATH, and this copy of the module has no "
            f"package beside it to install ({SOURCE}); install it (`pipx install "
            f"lambdazip-tf=={version}`, or from the repository) or set the module's program"
        )
    with open(os.path.join(folder, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another data source may be making it: wait for it
        if os.path.exists(done):
            return exe
        sys.stderr.write(f"{PROG}: installing lambdazip-tf from {SOURCE} into {venv} (once)\n")
        # The environment's scripts name its python by path, so it is made where it stays;
        # what an interrupted install left is removed first.
        shutil.rmtree(venv, ignore_errors=True)
        steps = [
            [sys.executable, "-m", "venv", venv],
            [
                os.path.join(venv, "bin", "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                SOURCE,
            ],
        ]
        for step in steps:
            result = subprocess.run(
                step, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False
            )
            if result.returncode != 0:
                last = (result.stderr.strip().splitlines() or ["no output"])[-1]
                fail(
                    f"installing lambdazip-tf into {venv} failed ({last}); run "
                    f"`python3 -m pip install {SOURCE}` and set the module's program"
                )
        with open(done, "w", encoding="utf-8") as f:
            f.write(SOURCE + "\n")
    return exe


def main() -> None:
    version = module_version()
    folder = os.path.join(cache_home(), version)
    os.makedirs(folder, exist_ok=True)
    exe = on_path(version, folder) or installed(folder)
    os.execv(exe, [exe, *sys.argv[1:]])


main()
