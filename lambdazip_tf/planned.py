"""The apply-time check: the artifacts on disk against what the plan recorded
(docs/design.md, "The Terraform module").

`ensure` rebuilds a missing or stale artifact (through the fast paths when the data source's
snapshot is at hand), hashes the bytes on disk, and fails unless they are the planned ones,
naming the likely cause in one line: the sources changed, the same files were written
differently (which option, and what sets it), or the same files and options gave other bytes.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import os
import zipfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import NamedTuple

from . import pipeline
from .core.request import Request
from .errors import OutputError
from .pipeline import Hold, drop
from .speed.replay import fast_answer
from .speed.snapshot import RequestKey
from .speed.speculative import SpeculativePacking

log = logging.getLogger(__name__)


class Planned(NamedTuple):
    """What the plan recorded, for `ensure` to compare with: the zips' base64 sha256 and, to
    name the cause of a difference, the result's content_hash, files_hash and build_options."""

    sha256: str
    layer_sha256: str | None = None
    content_hash: str | None = None
    files_hash: str | None = None
    build_options: str | None = None


class Ensured(NamedTuple):
    """What `ensure` found: the function zip's path and base64 sha256, and how it got there."""

    path: str
    base64sha256: str
    current: bool  # False: (re)built by this run


def ensure(
    request: Request,
    planned: Planned,
    cwd: Path | None = None,
    *,
    key: RequestKey | None = None,
    output_dir: str | None = None,
    speculative: Callable[[], AbstractContextManager[SpeculativePacking | None]] | None = None,
    hold: Hold = drop,
) -> Ensured:
    """The apply-time check: rebuild when missing or stale, then make sure the bytes on disk are
    the ones that were planned.

    With `key` (the request as the data source sent it), the data source's snapshot answers
    first (the fast paths): an unchanged tree is checked with a stat per file, a changed one
    patched. Either way the artifacts' bytes are hashed: a file changed in place, its size and
    mtime kept, is rebuilt, and a rebuild that still differs from what it recorded fails.
    `speculative` starts speculative packing for a full build.
    """
    answer = fast_answer(key) if key is not None else None
    if answer is not None:
        result, current = answer.result, answer.current
    else:
        result, current = _built(request, cwd, output_dir, speculative, hold)
    if not _on_disk(result):
        # The cache's record matched the file's size, mtime and inode, not its bytes: remove it
        # so that the build below cannot take it for current.
        for path in _paths(result):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        log.warning(
            "%s changed on disk since it was built; building it again", result["output_path"]
        )
        result, current = _built(request, cwd, output_dir, speculative, hold)
        if not _on_disk(result):
            raise OutputError(
                f"{result['output_path']} does not hold the bytes its build wrote, even after "
                "building it again; is something else writing to the output folder?",
                result["output_path"],
            )
    check_planned(result, planned)
    return Ensured(result["output_path"], result["output_base64sha256"], current)


def _built(
    request: Request,
    cwd: Path | None,
    output_dir: str | None,
    speculative: Callable[[], AbstractContextManager[SpeculativePacking | None]] | None,
    hold: Hold,
) -> tuple[dict[str, str], bool]:
    with speculative() if speculative is not None else contextlib.nullcontext() as packing:
        outcome = pipeline.build(
            request, cwd, output_dir=output_dir, speculative=packing, hold=hold
        )
    return outcome.strings(), outcome.current


def _paths(result: dict[str, str]) -> list[str]:
    return [result[key] for key in ("output_path", "layer_output_path") if key in result]


def _on_disk(result: dict[str, str]) -> bool:
    """Whether each artifact on disk has the base64 sha256 the result gives it."""
    for path, b64 in zip(
        _paths(result),
        [
            result[key]
            for key in ("output_base64sha256", "layer_output_base64sha256")
            if key in result
        ],
        strict=True,
    ):
        digest = hashlib.sha256()
        try:
            with open(path, "rb") as f:
                while block := f.read(1 << 20):
                    digest.update(block)
        except FileNotFoundError:
            return False
        if base64.b64encode(digest.digest()).decode() != b64:
            return False
    return True


def check_planned(result: dict[str, str], planned: Planned) -> None:
    """Fail unless the result's artifacts are the ones that were planned, naming the likely
    cause in one line."""
    checks = [("artifact", "output_path", "output_base64sha256", planned.sha256)]
    if planned.layer_sha256 is not None:
        if "layer_output_path" not in result:
            raise OutputError("--expect-layer-sha256 was given but the request builds no layer")
        checks.append(
            (
                "layer artifact",
                "layer_output_path",
                "layer_output_base64sha256",
                planned.layer_sha256,
            )
        )
    for label, path_key, sha_key, expected in checks:
        if result[sha_key] != expected:
            path = result[path_key]
            raise OutputError(
                f"{label} {path} has sha256 {result[sha_key]} but the plan expected {expected}: "
                f"{_cause(result, planned)}; run terraform plan again",
                path,
            )


# What makes the same files into other bytes, as build_options words it, and what sets it.
_OPTION_SOURCES = {
    "lambdazip-tf": "another lambdazip-tf version",
    "level": "another compression_level",
    "libdeflate": "another deflate module",
    "timestamp": "SOURCE_DATE_EPOCH set differently",
    "for": "another architecture",
}


def _cause(result: dict[str, str], planned: Planned) -> str:
    if planned.files_hash is None or planned.build_options is None:
        return (
            "the sources changed between plan and apply, or plan and apply ran different "
            "lambdazip-tf versions or inputs"
        )
    if result["files_hash"] != planned.files_hash:
        changed = _changed_files(result, planned)
        return "the sources changed between plan and apply" + (f" ({changed})" if changed else "")
    if result["build_options"] != planned.build_options:
        applied = result["build_options"].split(", ")
        differing = [
            (was, now)
            for was, now in zip(planned.build_options.split(", "), applied, strict=False)
            if was != now
        ]
        words = "; ".join(
            f"planned with {was}, applied with {now} "
            f"({_OPTION_SOURCES.get(now.split(' ')[0], 'another option')})"
            for was, now in differing
        )
        return f"the same files were written differently: {words or result['build_options']}"
    return (
        "the same files and options gave other bytes: plan and apply ran lambdazip-tf with "
        "different zip writers or deflate modules"
    )


def _changed_files(result: dict[str, str], planned: Planned) -> str:
    """Which files differ, where the planned zip is still here (on the machine that planned)."""
    if planned.content_hash is None or "layer_output_path" in result:
        return ""
    new = result["output_path"]
    suffix = f"-{result['content_hash'][:16]}.zip"  # named by content hash, not output_path
    if not new.endswith(suffix):
        return ""
    old = new[: -len(suffix)] + f"-{planned.content_hash[:16]}.zip"
    if old == new or not os.path.isfile(old):
        return ""
    try:
        with zipfile.ZipFile(old) as before, zipfile.ZipFile(new) as after:
            was = {i.filename: (i.CRC, i.external_attr) for i in before.infolist()}
            now = {i.filename: (i.CRC, i.external_attr) for i in after.infolist()}
    except (OSError, zipfile.BadZipFile):
        return ""
    words = [f"{n} added" for n in sorted(now.keys() - was.keys())]
    words += [f"{n} removed" for n in sorted(was.keys() - now.keys())]
    words += [f"{n} changed" for n in sorted(was.keys() & now.keys()) if was[n] != now[n]]
    more = f" and {len(words) - 3} more" if len(words) > 3 else ""
    return ", ".join(words[:3]) + more
