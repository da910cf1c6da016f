"""The distributions installed in a site-packages folder, read from their `*.dist-info`
(docs/design.md, "Python").

`METADATA` says what a distribution needs (Requires-Dist, with markers and extras), `RECORD`
which files it installed, `WHEEL` which platforms its wheel was built for, `direct_url.json`
whether it is an editable install. Folder names are not normalised (`jaraco.classes-3.4.0`):
distributions are found by their canonical name.
"""

from __future__ import annotations

import csv
import json
import os
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

from packaging.metadata import parse_email
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name

from ...core.filesystem import ObservedFileSystem
from ...errors import DependencyError

# Written per installer and machine, never the same twice: left out of the zip. RECORD lists
# the files with their hashes as installed (bytecode and scripts included), INSTALLER and
# REQUESTED say who installed it and why, direct_url.json holds an absolute path, and uv keeps
# its cache's keys (times, commits) in uv_cache.json and uv_build.json.
VOLATILE = frozenset(
    {
        "RECORD",
        "RECORD.jws",
        "RECORD.p7s",
        "INSTALLER",
        "REQUESTED",
        "direct_url.json",
        "uv_cache.json",
        "uv_build.json",
    }
)


@dataclass
class Distribution:
    """One installed distribution, its files read when first asked for."""

    fs: ObservedFileSystem
    site: str
    folder: str  # the *.dist-info folder's name
    name: NormalizedName
    version: str

    @property
    def path(self) -> str:
        """The *.dist-info folder's path."""
        return os.path.join(self.site, self.folder)

    def read(self, name: str) -> str | None:
        """A file of its dist-info (METADATA, top_level.txt), or None when there is none."""
        return self.read_installed(f"{self.folder}/{name}")

    def read_installed(self, path: str) -> str | None:
        """A file it installed, by its RECORD path, or None when there is none."""
        try:
            data = self.fs.read_bytes(os.path.join(self.site, path))
        except FileNotFoundError:
            return None
        return data.decode("utf-8", "replace")

    @cached_property
    def metadata(self) -> Mapping[str, object]:
        """METADATA's fields as packaging reads them (names lower-case, lists for repeats)."""
        text = self.read("METADATA")
        if text is None:
            raise DependencyError(
                f"{self.path} has no METADATA: the installation of {self.name} is damaged; "
                "install it again"
            )
        raw, _ = parse_email(text)
        return dict(raw)

    @cached_property
    def display_name(self) -> str:
        """The name as the distribution spells it."""
        return str(self.metadata.get("name") or self.name)

    @cached_property
    def requires(self) -> list[Requirement]:
        """Requires-Dist, each with its marker."""
        found = []
        for text in self.metadata.get("requires_dist") or []:  # type: ignore[attr-defined]
            try:
                found.append(Requirement(str(text)))
            except InvalidRequirement as exc:
                raise DependencyError(
                    f"{self.path}/METADATA: Requires-Dist {text!r} is invalid ({exc})"
                ) from None
        return found

    @cached_property
    def requires_python(self) -> str:
        """Requires-Python, or ""."""
        return str(self.metadata.get("requires_python") or "")

    @cached_property
    def record(self) -> list[tuple[str, int]]:
        """RECORD's paths (relative to site-packages, normalised) with their sizes."""
        text = self.read("RECORD")
        if text is None:
            raise DependencyError(
                f"{self.path} has no RECORD, which says which files {self.name} installed; "
                "install it again with pip or uv"
            )
        rows = []
        for row in csv.reader(text.splitlines()):
            if row and row[0]:
                size = int(row[2]) if len(row) > 2 and row[2].isdigit() else 0
                rows.append((posixpath.normpath(row[0].replace("\\", "/")), size))
        return rows

    @cached_property
    def tags(self) -> list[str]:
        """WHEEL's `Tag:` lines (cp312-cp312-manylinux_2_17_x86_64); none when not a wheel."""
        text = self.read("WHEEL") or ""
        return [
            line.partition(":")[2].strip()
            for line in text.splitlines()
            if line.lower().startswith("tag:")
        ]

    @cached_property
    def installer(self) -> str:
        """INSTALLER: "pip", "uv", ..., or ""."""
        return (self.read("INSTALLER") or "").strip()

    @cached_property
    def editable(self) -> str | None:
        """The project folder of an editable install (direct_url.json), else None."""
        text = self.read("direct_url.json")
        if text is None:
            return None
        try:
            data = json.loads(text)
        except ValueError:
            return None
        dir_info = data.get("dir_info") if isinstance(data, dict) else None
        url = data.get("url", "") if isinstance(data, dict) else ""
        if isinstance(dir_info, dict) and dir_info.get("editable") and url.startswith("file://"):
            return str(url.removeprefix("file://"))
        return None

    def size(self) -> tuple[int, int]:
        """(files, bytes) inside site-packages, from RECORD (for `plan`)."""
        inside = [s for p, s in self.record if not p.startswith("../")]
        return len(inside), sum(inside)


def installed(fs: ObservedFileSystem, site: str) -> dict[NormalizedName, Distribution]:
    """Every distribution in `site`, by canonical name."""
    found: dict[NormalizedName, Distribution] = {}
    for entry in sorted(fs.scandir(site), key=lambda e: e.name):
        if not entry.name.endswith(".dist-info") or not entry.is_dir():
            continue
        stem = entry.name.removesuffix(".dist-info")
        raw_name, _, version = stem.rpartition("-")
        if not raw_name:
            continue
        name = canonicalize_name(raw_name)
        if name in found:
            raise DependencyError(
                f"{site} holds two installs of {name} ({found[name].folder} and {entry.name}): "
                "install into a fresh folder"
            )
        found[name] = Distribution(fs, site, entry.name, name, version)
    return found
