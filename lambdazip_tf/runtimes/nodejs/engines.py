"""The Node.js version a function runs on, against what its packages declare they need.

With `node_version` (20, or the Lambda runtime's name nodejs20.x), each shipped package whose
package.json `engines.node` admits no release of that major version gets a warning: Lambda
runs a recent release of the major version, so a range that admits one of them is taken as
fitting (docs/design.md, "The target platform").
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

from ...core.entries import PackageInfo

_VERSION = re.compile(r"(?<![\d.])(\d+)(?:\.(\d+))?(?:\.(\d+))?")
_MOST = 5  # warnings named one by one; the rest counted


@functools.cache  # a tree repeats a few ranges (">=14", "^18 || >=20") over many packages
def admits(spec: str, major: int) -> bool:
    """Whether the engines.node range `spec` admits a release of Node.js `major`."""
    import nodesemver  # type: ignore[import-untyped]  # noqa: PLC0415 - only with node_version

    releases = [f"{major}.{minor}.{patch}" for minor in range(40) for patch in (0, 99)]
    # Versions the range names itself, so that a pin or a narrow bound (20.5.3, <20.5.4)
    # is met by the release it names even between the samples.
    for named in _VERSION.finditer(spec):
        if int(named.group(1)) == major:
            minor, patch = int(named.group(2) or 0), int(named.group(3) or 0)
            releases += [f"{major}.{minor}.{patch}", f"{major}.{minor}.{patch + 1}"]
    try:
        if nodesemver.valid_range(spec, loose=True) is None:
            return True  # a range npm itself would not read: no grounds for a warning
        return nodesemver.max_satisfying(releases, spec, loose=True) is not None
    except (ValueError, TypeError, AttributeError):  # a range npm itself would not read
        return True


def engine_warnings(packages: Sequence[PackageInfo], major: int) -> list[str]:
    """One line per shipped package whose engines.node excludes Node.js `major`."""
    found = [
        f"{p.name}@{p.version} ({p.requires_version})"
        for p in packages
        if p.requires_version and not admits(p.requires_version, major)
    ]
    if not found:
        return []
    more = f" and {len(found) - _MOST} more" if len(found) > _MOST else ""
    return [
        f"engines.node of {', '.join(found[:_MOST])}{more} excludes Node.js {major} "
        f"(node_version): they may not run on the nodejs{major}.x runtime"
    ]
