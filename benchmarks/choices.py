"""`make bench-choices`: the measurements behind three of the design's choices.

On the benchmark tree (benchmarks/app, installed by `make bench`), each printed with what it
decides (docs/performance.md):

- deflate: libdeflate (the `deflate` wheel) against the stdlib's zlib at level 6, CPU seconds
  and bytes over every file;
- levels: the size of the whole zip at compression levels 5, 6 and 7 against `zip -6`'s;
- workers: packing every file in one process, in two worker processes, and on two threads.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import deflate

from lambdazip_tf.core.compress import DEFLATER, pack_file
from lambdazip_tf.core.entries import Entry
from lambdazip_tf.speed.pool import Packer, batches

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "benchmarks" / "app"


def _files(app: Path) -> list[tuple[str, int]]:
    found = []
    for dirpath, _, names in os.walk(app):
        for name in names:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode):
                found.append((path, st.st_size))
    return sorted(found)


def _cpu(work: Callable[[bytes], bytes], contents: list[bytes]) -> tuple[float, int]:
    started = time.process_time()
    size = sum(len(work(data)) for data in contents)
    return time.process_time() - started, size


def measure_deflate(app: Path) -> None:
    """libdeflate against zlib at level 6, in this process, the files already in memory."""
    contents = [Path(path).read_bytes() for path, _ in _files(app)]
    ours, ours_bytes = _cpu(lambda data: bytes(deflate.deflate_compress(data, 6)), contents)
    stdlib, stdlib_bytes = _cpu(lambda data: zlib.compress(data, 6, -15), contents)
    print(f"deflate -6 of {len(contents):,} files, {sum(map(len, contents)) / 1e6:.1f} MB:")
    print(f"  {DEFLATER:16}: {ours:6.2f} s CPU, {ours_bytes / 1e6:7.2f} MB")
    zlib_name = f"zlib {zlib.ZLIB_RUNTIME_VERSION}"
    print(f"  {zlib_name:16}: {stdlib:6.2f} s CPU, {stdlib_bytes / 1e6:7.2f} MB")
    print(
        f"  libdeflate: {ours / stdlib:.2f} of zlib's time, "
        f"{ours_bytes / stdlib_bytes:.4f} of its bytes"
    )


def measure_levels(app: Path) -> None:
    """The whole zip at levels 5, 6 and 7, against zip -6 on the same tree."""
    exe = str(Path(sys.executable).with_name("lambdazip-tf"))
    with tempfile.TemporaryDirectory(prefix="lambdazip-levels-") as tmp:
        reference = Path(tmp, "zip.zip")
        subprocess.run(
            ["zip", "-q", "-r", "-y", "-X", "-6", str(reference), "."], cwd=app, check=True
        )
        zip_size = reference.stat().st_size
        print(f"the whole zip by level; zip -q -r -y -X -6: {zip_size / 1e6:.2f} MB")
        for level in (5, 6, 7):
            request = {"source_dir": str(app), "output_dir": f"{tmp}/l{level}"}
            request["compression_level"] = str(level)
            done = subprocess.run(
                [exe],
                input=json.dumps(request),
                capture_output=True,
                text=True,
                check=True,
                env={**os.environ, "LAMBDAZIP_NO_CACHE": "1"},
            )
            size = int(json.loads(done.stdout)["output_size"])
            print(f"  level {level}: {size / 1e6:.2f} MB, {size / zip_size:.3f} of zip -6")


def measure_workers(app: Path) -> None:
    """Every file packed at level 6: one process, two worker processes, two threads."""
    items = _files(app)
    entries = [Entry(path, "file", 0o644, path, None, size) for path, size in items]

    def alone() -> None:
        for path, size in items:
            pack_file(path, size, 6)

    def processes() -> None:
        with Packer(6, workers=2) as packer:
            for _ in packer.pack(entries):
                pass

    def threads() -> None:
        def pack(batch: list[tuple[str, int]]) -> None:
            for path, size in batch:
                pack_file(path, size, 6)

        with ThreadPoolExecutor(2) as pool:
            list(pool.map(pack, batches(items, 2)))

    print(f"packing {len(items):,} files at level 6 (read, sha256, crc32, deflate):")
    timings = {}
    for name, work in (("one process", alone), ("2 processes", processes), ("2 threads", threads)):
        started = time.perf_counter()
        work()
        timings[name] = time.perf_counter() - started
    base = timings["one process"]
    for name, seconds in timings.items():
        print(f"  {name:12} {seconds:6.2f} s, {base / seconds:.2f}x one process")


def main(argv: list[str] | None = None) -> int:
    """Run the measurements named (all by default)."""
    parser = argparse.ArgumentParser(prog="make bench-choices", description=__doc__)
    parser.add_argument("which", nargs="*", help="deflate, levels or workers (default: all)")
    parser.add_argument("--app", type=Path, default=APP, help="the function folder to measure")
    args = parser.parse_args(argv)
    app = args.app.resolve()
    if not (app / "node_modules").is_dir():
        raise SystemExit(f"{app}/node_modules is missing: run `make bench` once first")
    for which in args.which or ["deflate", "levels", "workers"]:
        {"deflate": measure_deflate, "levels": measure_levels, "workers": measure_workers}[which](
            app
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
