"""The production distributions: from what the function declares, down `Requires-Dist`, each
marker evaluated for Lambda (docs/design.md, "Python").

Breadth first, so that the first way to reach a distribution, the one `plan` shows, is the
shortest. A distribution asked for with extras brings what those extras require; asked for
again with new extras, it is visited again for them.
"""

from __future__ import annotations

import fnmatch
import os
from collections import deque
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

from ...core.binaries import Target
from ...errors import DependencyError
from .distributions import Distribution

_MACHINE = {"x86_64": "x86_64", "arm64": "aarch64"}  # platform.machine() on Lambda


def lambda_environment(minor: int, target: Target) -> dict[str, str]:
    """Every marker variable as Lambda's CPython 3.<minor> answers it. All of them: packaging
    merges what it is given over the host's own environment."""
    return {
        "implementation_name": "cpython",
        "implementation_version": f"3.{minor}.0",
        "os_name": "posix",
        "platform_machine": _MACHINE[target.architecture],
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_system": "Linux",
        "platform_version": "",
        "python_full_version": f"3.{minor}.0",
        "python_version": f"3.{minor}",
        "sys_platform": "linux",
    }


def applies(marker: Marker | None, environment: Mapping[str, str], extras: set[str]) -> bool:
    """Whether a requirement with `marker` holds on Lambda, for a dependent asked for with
    `extras`."""
    if marker is None:
        return True
    return any(marker.evaluate({**environment, "extra": e}) for e in ({""} | extras))


class Reached(NamedTuple):
    """A distribution that ships, and why: the declaring file, then the names down to it."""

    distribution: Distribution
    chain: tuple[str, ...]


class LeftOut(NamedTuple):
    """A distribution exclude_packages left out, with the first one that required it."""

    name: str
    glob: str
    dependent: str  # "" for the declaration itself


class Crawled(NamedTuple):
    """What the crawl found."""

    reached: list[Reached]
    left_out: list[LeftOut]


def crawl(
    declared: Sequence[Requirement],
    origin: str,
    installed: Mapping[NormalizedName, Distribution],
    environment: Mapping[str, str],
    exclude: Sequence[str],
    missing: str,
    optional: frozenset[str] = frozenset(),
) -> Crawled:
    """Every distribution the declared requirements need on Lambda. `origin` is the declaring
    file (or folder); `missing` is what installs a missing one; a declared name in `optional`
    may be missing."""
    label = os.path.basename(origin.rstrip("/")) or origin
    queue: deque[tuple[Requirement, tuple[str, ...], set[str], str]] = deque(
        (req, (label,), set(), "") for req in declared
    )
    extras_of: dict[NormalizedName, set[str]] = {}
    reached: list[Reached] = []
    left_out: dict[str, LeftOut] = {}
    while queue:
        req, chain, dependent_extras, dependent = queue.popleft()
        if not applies(req.marker, environment, dependent_extras):
            continue
        name = canonicalize_name(req.name)
        glob = excluded_by(exclude, req.name)
        if glob is not None:
            left_out.setdefault(name, LeftOut(name, glob, dependent))
            continue
        found = installed.get(name)
        if found is None and not dependent and name in optional:
            continue
        if found is None:
            by = f"{dependent} ({' > '.join(chain)})" if dependent else origin
            raise DependencyError(
                f"package {req.name!r} is required by {by} but is not installed; {missing}",
                package=req.name,
            )
        extras = {canonicalize_name(e) for e in req.extras}
        seen = extras_of.get(name)
        if seen is not None and extras <= seen:
            continue
        if seen is None:
            reached.append(Reached(found, (*chain, found.display_name)))
        extras_of[name] = (seen or set()) | extras
        here = (*chain, found.display_name)
        who = f"{found.display_name} {found.version}"
        for needed in found.requires:
            queue.append((needed, here, extras_of[name], who))
    return Crawled(reached, list(left_out.values()))


def excluded_by(globs: Sequence[str], name: str) -> str | None:
    """The exclude_packages glob that matches a distribution, by its name as written or its
    canonical name; None when none does."""
    canonical = canonicalize_name(name)
    return next(
        (g for g in globs if fnmatch.fnmatchcase(name, g) or fnmatch.fnmatchcase(canonical, g)),
        None,
    )
