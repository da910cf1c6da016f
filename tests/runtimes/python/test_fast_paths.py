"""The fast paths on a Python function answer what a cache-free build answers: every file the
Python crawl reads (pyproject.toml, requirements, pyvenv.cfg, each dist-info's METADATA,
RECORD and WHEEL, the site-packages listing) is one of the facts they check again
(docs/design.md, "Fast paths", "Python")."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import external, same_as_cache_free, write
from python_dists import dist, pyproject, venv

from lambdazip_tf.speed import facts


def _project(src: Path) -> Path:
    write(src / "handler.py", "import lib\n")
    pyproject(src, "lib")
    site = venv(src / ".venv")
    dist(site, "lib", requires=["dep; python_version >= '3.12'"])
    dist(site, "dep", files={"dep/__init__.py": "A = 1\n", "dep/data.txt": "x\n"})
    dist(site, "extra", "2.0")
    return site


def _record(site: Path, name: str) -> Path:
    return next(site.glob(f"{name}-*.dist-info")) / "RECORD"


def _metadata(site: Path, name: str) -> Path:
    return next(site.glob(f"{name}-*.dist-info")) / "METADATA"


def _reinstalled(site: Path) -> None:
    """dep 1.0 uninstalled and dep 2.0 installed, as an upgrade does."""
    old = next(site.glob("dep-*.dist-info"))
    for item in old.iterdir():
        item.unlink()
    old.rmdir()
    dist(site, "dep", "2.0", files={"dep/__init__.py": "A = 3\n"})


EDITS: dict[str, Callable[[Path, Path], None]] = {
    "a shipped file edited": lambda src, site: write(site / "dep" / "__init__.py", "A = 2\n"),
    "a handler edited": lambda src, site: write(src / "handler.py", "import lib, dep\n"),
    "a dependency declared": lambda src, site: pyproject(src, "lib", "extra"),
    "a Requires-Dist added": lambda src, site: _metadata(site, "lib").write_text(
        _metadata(site, "lib").read_text() + "Requires-Dist: extra\n"
    ),
    "a RECORD entry dropped": lambda src, site: _record(site, "dep").write_text(
        "".join(r for r in _record(site, "dep").read_text().splitlines(True) if "data" not in r)
    ),
    "a distribution installed anew": lambda src, site: _reinstalled(site),
    "the environment's Python changed": lambda src, site: write(
        src / ".venv" / "pyvenv.cfg", "home = /usr/bin\nversion = 3.11.9\n"
    ),
    "a requirement missing": lambda src, site: pyproject(src, "lib", "missing"),
    "a wheel for another platform": lambda src, site: (
        next(site.glob("extra-*.dist-info")) / "WHEEL"
    ).write_text("Wheel-Version: 1.0\nTag: cp312-cp312-macosx_11_0_arm64\n"),
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_a_warm_build_after_an_edit_answers_as_a_cache_free_one(
    tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch, edit: str
) -> None:
    monkeypatch.setattr(facts, "RACY_NS", 0)
    src = tmp_path / "fn"
    site = _project(src)
    pyproject(src, "lib", "extra") if edit == "a wheel for another platform" else None
    request = {"source_dir": str(src), "output_dir": str(tmp_path / "out")}
    first = external(run_cli, request)
    assert first.code == 0, first.stderr
    assert external(run_cli, request).json() == first.json()  # the no-op
    EDITS[edit](src, site)
    warm = external(run_cli, request)
    monkeypatch.setenv("LAMBDAZIP_NO_CACHE", "1")
    fresh = external(run_cli, {**request, "output_dir": str(tmp_path / "fresh")})
    monkeypatch.delenv("LAMBDAZIP_NO_CACHE")
    assert (warm.code, warm.stderr) == (fresh.code, fresh.stderr)
    if warm.code == 0:
        assert warm.json() != first.json()
        same_as_cache_free(run_cli, request, warm.json(), tmp_path / "fresh2", monkeypatch)
