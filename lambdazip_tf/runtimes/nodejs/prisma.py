"""Prisma's generated client: code a package needs that no package.json declares
(docs/design.md, "Selection").

`@prisma/client` requires `.prisma/client`, which `prisma generate` (or the client's own install)
writes into node_modules beside it. When `@prisma/client` ships, that folder ships with it,
placed where Node finds it from the client; of its query engines only those the target can
load, when one can.
"""

from __future__ import annotations

from collections.abc import Sequence

from ...core.binaries import Target
from ...core.entries import PackageInfo
from ...core.runtime import Alternatives, Forced
from ...core.selection import Collector, ExcludeRules
from .placement import resolve

PRISMA_CLIENT = "@prisma/client"
PRISMA_REASON = f"generated Prisma client, required by {PRISMA_CLIENT}"
# The binaryTargets entry of Lambda's Node.js runtimes (Amazon Linux 2023, OpenSSL 3).
_PRISMA_TARGETS = {"x86_64": "rhel-openssl-3.0.x", "arm64": "linux-arm64-openssl-3.0.x"}


def add_prisma(
    collector: Collector, packages: Sequence[PackageInfo], rules: ExcludeRules
) -> tuple[list[Forced], list[str]]:
    """The generated `.prisma/client` of each shipped `@prisma/client`, beside it; and a
    warning for a client with none, whose `require("@prisma/client")` fails at cold start.
    A warning, not a refusal: with Prisma's newer generator (`prisma-client`, output
    elsewhere) the function imports its own generated code and only the runtime from
    `@prisma/client`."""
    forced = []
    warnings = []
    for package in packages:
        if package.name != PRISMA_CLIENT or not package.arc.endswith(PRISMA_CLIENT):
            continue
        found = resolve(collector.fs, ".prisma/client", package.path)
        if found is None:
            warnings.append(
                f"{PRISMA_CLIENT}@{package.version} ships without a generated client "
                f"(no .prisma/client beside {package.path}): require('{PRISMA_CLIENT}') "
                "fails at cold start unless the client is generated elsewhere; run `npx "
                "prisma generate` (pnpm caches install scripts' side effects and may skip it)"
            )
            continue
        arc = package.arc.removesuffix(PRISMA_CLIENT) + ".prisma/client"
        if arc in collector.entries:
            continue
        collector.add_tree(found[1], arc, rules, primary=False)
        forced.append(Forced(arc, PRISMA_REASON))
    return forced, warnings


def prisma_alternatives(forced: Sequence[Forced], target: Target) -> dict[str, Alternatives]:
    """Each generated Prisma client's folder, whose query engines are alternatives for several
    platforms (`binaryTargets` lists the developer's machine and Lambda's): only those the
    target can load ship, and with none, the build names Prisma's fix."""
    fix = (
        f'add "{_PRISMA_TARGETS[target.architecture]}" to binaryTargets in schema.prisma and '
        "run `npx prisma generate`"
    )
    return {
        f.arc + "/": Alternatives("the generated Prisma client", "Prisma query engine", fix)
        for f in forced
        if f.reason == PRISMA_REASON
    }
