"""`make bench`: cold build, no-op and one-file-change times, as ratios to `zip -q -r -y -X -6`.

The tree is benchmarks/app: a realistic production dependency set installed with `npm ci --omit=dev`
from its committed lockfile (about 24,000 files). Every figure is the median of several rounds, and
zip is timed on the same tree in the same rounds, because the machine is noisy; only ratios are
compared with the targets (docs/performance.md). The tool runs as Terraform runs it: the console
script in external-program mode, a new process each time. Nothing is written into the repository
except the app's node_modules.

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
TARGETS = {"cold": 0.60, "noop": 0.05, "change": 0.12}
SIZE_TARGET = 1.01
RSS_TARGET_MB = 250


def _install(app: Path) -> None:
    if not (app / "node_modules").is_dir():
        print(f"installing {app.name}'s node_modules (npm ci --omit=dev) ...", file=sys.stderr)
        subprocess.run(
            ["npm", "ci", "--omit=dev", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=app,
            check=True,
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


def _tree_stats(app: Path) -> tuple[int, int]:
    files = size = 0
    for dirpath, _, filenames in os.walk(app):
        for name in filenames:
            st = os.lstat(os.path.join(dirpath, name))
            files += 1
            size += st.st_size
    return files, size


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="rounds (medians are reported)")
    parser.add_argument("--app", type=Path, default=APP, help="the function folder to zip")
    args = parser.parse_args(argv)
    app: Path = args.app.resolve()
    _install(app)
    exe = str(Path(sys.executable).with_name("lambdazip-tf"))
    files, size = _tree_stats(app)
    handler = app / "index.js"
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
        for round_ in range(args.rounds):
            zip_path = work / f"zip-{round_}.zip"
            record("zip", _timed(["zip", "-q", "-r", "-y", "-X", "-6", str(zip_path), "."], app))
            sizes["zip"] = zip_path.stat().st_size
            zip_path.unlink()
            record("floor", _timed([sys.executable, "-m", "benchmarks.floor", str(app)], ROOT))
            out = work / f"out-{round_}"
            request = json.dumps({"source_dir": str(app), "output_dir": str(out)})
            cold = record("cold", _timed([exe], work, stdin=request))
            rss_cold = max(rss_cold, cold.rss)
            sizes["ours"] = int(json.loads(cold.stdout)["output_size"])
            noop = record("noop", _timed([exe], work, stdin=request))
            assert json.loads(noop.stdout) == json.loads(cold.stdout), "a no-op changed the result"
            try:
                handler.write_bytes(original + f"\n// bench round {round_}\n".encode())
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
        f"\ntree: {app} ({files:,} files, {size / 1e6:.1f} MB); "
        f"{args.rounds} rounds, medians; {os.cpu_count()} cores"
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
