"""`make bench`: cold build, no-op and one-file-change times, as ratios to `zip -q -r -y -X -6`.

Two trees. benchmarks/app: a realistic Node.js production dependency set installed with
`npm ci --omit=dev` from its committed lockfile (about 24,000 files). benchmarks/python-app: a
Python function with pandas, numpy, pydantic, requests and boto3 installed into a virtual
environment beside it (about 6,000 files); zip is given the same files, the handler and the
environment's site-packages. Every figure is the median of several rounds, and zip is timed
on the same tree in the same rounds, because the machine is noisy; only ratios are compared
with the targets (docs/performance.md). The tool runs as Terraform runs it: the console
script in external-program mode, a new process each time. Nothing is written into the
repository except the trees' installed dependencies.

Each round also times the floor of a cold build (benchmarks/floor.py): starting Python, walking the
tree and the per-file work the design requires (read, sha256, crc32, deflate) on all
cores, with nothing written. No cold build can be faster than that on the same machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "benchmarks" / "app"
PYTHON_APP = ROOT / "benchmarks" / "python-app"
TARGETS = {"cold": 0.60, "noop": 0.05, "change": 0.12}
SIZE_TARGET = 1.01
RSS_TARGET_MB = 250


class Tree(NamedTuple):
    """A function folder to benchmark: its handler (the file the change round edits), and the
    paths zip is given (the files the tool ships)."""

    name: str
    folder: Path
    handler: str
    zipped: tuple[str, ...]
    comment: bytes  # how the handler's language starts a comment line


def _node_tree(app: Path) -> Tree:
    if not (app / "node_modules").is_dir():
        print(f"installing {app.name}'s node_modules (npm ci --omit=dev) ...", file=sys.stderr)
        subprocess.run(
            ["npm", "ci", "--omit=dev", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=app,
            check=True,
        )
    return Tree("nodejs", app, "index.js", (".",), b"//")


def _python_tree(app: Path) -> Tree:
    venv = app / ".venv"
    base = Path(sys.base_prefix) / "bin" / f"python3.{sys.version_info[1]}"
    if not (venv / "pyvenv.cfg").is_file():
        print(
            f"installing {app.name}'s .venv (pip install -r requirements.txt) ...", file=sys.stderr
        )
        subprocess.run([str(base), "-m", "venv", "--without-pip", str(venv)], check=True)
        # This Python's pip installs into the new environment; no machine configuration read,
        # no bytecode compiled (the tool leaves it out, and zip would take it).
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "--isolated",
                "--python",
                str(venv / "bin" / "python"),
                "install",
                "-q",
                "--no-compile",
                "--disable-pip-version-check",
                "-r",
                str(app / "requirements.txt"),
            ],
            check=True,
            env={**os.environ, "PIP_CONFIG_FILE": "/dev/null"},
        )
    site = next((venv / "lib").glob("python3.*/site-packages"))
    return Tree(
        "python",
        app,
        "lambda_function.py",
        ("lambda_function.py", "requirements.txt", str(site.relative_to(app))),
        b"#",
    )


class Timed(NamedTuple):
    """One run: wall seconds, CPU seconds of its whole process tree, peak RSS, stdout."""

    seconds: float
    cpu: float
    rss: int  # MB, the largest single process of the run (the tool, its workers)
    stdout: str


def _timed(cmd: list[str], cwd: Path, stdin: str | None = None) -> Timed:
    """Run `cmd` and measure it."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    with ThreadPoolExecutor(2) as readers:
        out = readers.submit(proc.stdout.read)
        err = readers.submit(proc.stderr.read)
        proc.stdin.write((stdin or "").encode())
        proc.stdin.close()
        # wait4 rather than the children's rusage of this process: it is this run's alone
        # (the tool and the workers it waited for), not the largest of everything run so far,
        # npm's install included.
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        stdout, stderr = out.result().decode(), err.result().decode()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {stderr.strip()}")
    cpu = usage.ru_utime + usage.ru_stime
    return Timed(elapsed, cpu, usage.ru_maxrss // 1024, stdout)


def _tree_stats(app: Path, paths: tuple[str, ...]) -> tuple[int, int]:
    files = size = 0
    for path in paths:
        top = app / path
        if top.is_file():
            files, size = files + 1, size + top.stat().st_size
            continue
        for dirpath, _, filenames in os.walk(top):
            for name in filenames:
                st = os.lstat(os.path.join(dirpath, name))
                files += 1
                size += st.st_size
    return files, size


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark on each tree and print its table."""
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="rounds (medians are reported)")
    parser.add_argument(
        "--tree", choices=("nodejs", "python", "all"), default="all", help="the trees to zip"
    )
    parser.add_argument("--app", type=Path, default=APP, help="the Node.js function folder")
    args = parser.parse_args(argv)
    trees = []
    if args.tree in ("nodejs", "all"):
        trees.append(_node_tree(args.app.resolve()))
    if args.tree in ("python", "all"):
        trees.append(_python_tree(PYTHON_APP))
    for tree in trees:
        _bench(tree, args.rounds)
    return 0


def _bench(tree: Tree, rounds: int) -> None:
    app = tree.folder
    exe = str(Path(sys.executable).with_name("lambdazip-tf"))
    files, size = _tree_stats(app, tree.zipped)
    handler = app / tree.handler
    original = handler.read_bytes()
    times: dict[str, list[float]] = {
        "zip": [],
        "floor": [],
        "cold": [],
        "noop": [],
        "change": [],
    }
    cpu: dict[str, list[float]] = {key: [] for key in times}
    sizes: dict[str, int] = {}
    rss_cold = 0

    def record(key: str, run: Timed) -> Timed:
        times[key].append(run.seconds)
        cpu[key].append(run.cpu)
        return run

    with tempfile.TemporaryDirectory(prefix="lambdazip-bench-") as tmp:
        work = Path(tmp)
        for round_ in range(rounds):
            zip_path = work / f"zip-{round_}.zip"
            zipping = ["zip", "-q", "-r", "-y", "-X", "-6", str(zip_path), *tree.zipped]
            record("zip", _timed(zipping, app))
            sizes["zip"] = zip_path.stat().st_size
            zip_path.unlink()
            floor = [sys.executable, "-m", "benchmarks.floor", *(str(app / p) for p in tree.zipped)]
            record("floor", _timed(floor, ROOT))
            out = work / f"out-{round_}"
            request = json.dumps({"source_dir": str(app), "output_dir": str(out)})
            cold = record("cold", _timed([exe], work, stdin=request))
            rss_cold = max(rss_cold, cold.rss)
            sizes["ours"] = int(json.loads(cold.stdout)["output_size"])
            noop = record("noop", _timed([exe], work, stdin=request))
            assert json.loads(noop.stdout) == json.loads(cold.stdout), "a no-op changed the result"
            try:
                handler.write_bytes(original + tree.comment + f" bench round {round_}\n".encode())
                change = record("change", _timed([exe], work, stdin=request))
                assert (
                    json.loads(change.stdout)["content_hash"]
                    != json.loads(cold.stdout)["content_hash"]
                )
            finally:
                handler.write_bytes(original)
            shutil.rmtree(out)
    zip_median = statistics.median(times["zip"])
    print(
        f"\n{tree.name} tree: {app} ({files:,} files, {size / 1e6:.1f} MB); "
        f"{rounds} rounds, medians; {os.cpu_count()} cores"
    )
    print(f"{'':28}{'seconds':>9}{'ratio to zip':>14}{'target':>10}")
    print(f"{'zip -q -r -y -X -6':28}{zip_median:9.2f}{1:14.3f}")
    floor = statistics.median(times["floor"])
    print(f"{'floor: pack files only':28}{floor:9.2f}{floor / zip_median:14.3f}   (see below)")
    labels = {
        "cold": "cold build",
        "noop": "no-op (artifact current)",
        "change": "one file changed",
    }
    for key, label in labels.items():
        median = statistics.median(times[key])
        ratio = median / zip_median
        ok = ratio <= TARGETS[key]
        print(
            f"{label:28}{median:9.2f}{ratio:14.3f}{'<= ' + str(TARGETS[key]):>10} "
            f"{'ok' if ok else 'MISSED'}"
        )
    size_ratio = sizes["ours"] / sizes["zip"]
    print(
        f"{'zip size (MB)':28}{sizes['ours'] / 1e6:9.2f}{size_ratio:14.3f}"
        f"{'<= ' + str(SIZE_TARGET):>10} {'ok' if size_ratio <= SIZE_TARGET else 'MISSED'}"
        f"   (zip: {sizes['zip'] / 1e6:.2f} MB)"
    )
    print(
        f"{'peak RSS, cold build (MB)':28}{rss_cold:9d}{'':14}{'<= ' + str(RSS_TARGET_MB):>10} "
        f"{'ok' if rss_cold <= RSS_TARGET_MB else 'MISSED'}   (largest single process)"
    )
    print(
        "floor: start Python, walk, and read, sha256, crc32 and deflate -6 every file on all"
        " cores, writing nothing (benchmarks/floor.py); a cold build does all this and more"
    )
    print(
        "CPU seconds (user + sys of the whole process tree), medians: "
        + ", ".join(f"{k} {statistics.median(v):.2f}" for k, v in cpu.items())
    )

    # Each round runs zip, the floor and the cold build back to back, so a round's own ratio
    # drifts with the machine less than the medians do; printed to judge the noise, not scored.
    def per_round(key: str) -> str:
        pairs = zip(times[key], times["zip"], strict=True)
        return ", ".join(f"{seconds / zip_seconds:.3f}" for seconds, zip_seconds in pairs)

    cold_rounds, floor_rounds = per_round("cold"), per_round("floor")
    print(f"per-round ratios to that round's zip: cold {cold_rounds}; floor {floor_rounds}")
    print(
        "all rounds (s): "
        + "; ".join(f"{k} " + ", ".join(f"{t:.2f}" for t in v) for k, v in times.items())
    )


if __name__ == "__main__":
    sys.exit(main())
