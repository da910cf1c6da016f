"""Prisma's generated client, forced in beside `@prisma/client`, and its query engines as
alternatives per architecture (docs/design.md, "Selection" and "The target platform")."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import pkg, write

from lambdazip_tf.core.binaries import Target
from lambdazip_tf.core.entries import PackageInfo
from lambdazip_tf.core.filesystem import ObservedFileSystem
from lambdazip_tf.core.runtime import Alternatives, Forced
from lambdazip_tf.core.selection import Collector, ExcludeRules
from lambdazip_tf.runtimes.nodejs.prisma import PRISMA_REASON, add_prisma, prisma_alternatives

NO_RULES = ExcludeRules.build([])


def client(real: Path, arc: str) -> PackageInfo:
    """A shipped @prisma/client, installed at `real` and placed at `arc`."""
    pkg(real, "@prisma/client", "5.22.0")
    return PackageInfo("@prisma/client", "5.22.0", arc, 2, 100, path=str(real))


def generated(folder: Path) -> None:
    """What `prisma generate` writes: the client's code and its query engines."""
    write(folder / "index.js", "module.exports = require('./runtime');\n")
    write(folder / "schema.prisma", 'generator client { provider = "prisma-client-js" }\n')
    write(folder / "libquery_engine-rhel-openssl-3.0.x.so.node", "ELF")
    write(folder / "libquery_engine-darwin-arm64.dylib.node", "Mach-O")


def collector(root: Path) -> Collector:
    return Collector(ObservedFileSystem(), [str(root)])


def test_the_generated_client_ships_beside_prisma_client(tmp_path: Path) -> None:
    fn = tmp_path.resolve() / "fn"
    package = client(fn / "node_modules" / "@prisma" / "client", "node_modules/@prisma/client")
    generated(fn / "node_modules" / ".prisma" / "client")
    into = collector(fn)
    forced, warnings = add_prisma(into, [package], NO_RULES)
    assert forced == [Forced("node_modules/.prisma/client", PRISMA_REASON)]
    assert warnings == []
    assert {arc for arc in into.entries if arc.startswith("node_modules/.prisma/")} == {
        "node_modules/.prisma/client",
        "node_modules/.prisma/client/index.js",
        "node_modules/.prisma/client/schema.prisma",
        "node_modules/.prisma/client/libquery_engine-rhel-openssl-3.0.x.so.node",
        "node_modules/.prisma/client/libquery_engine-darwin-arm64.dylib.node",
    }
    assert into.entries["node_modules/.prisma/client/index.js"].source == str(
        fn / "node_modules" / ".prisma" / "client" / "index.js"
    )
    assert into.placements == []  # forced in, not a placed package


def test_in_a_pnpm_store_the_client_goes_where_node_finds_it_from_the_placed_client(
    tmp_path: Path,
) -> None:
    fn = tmp_path.resolve() / "fn"
    store = fn / "node_modules" / ".pnpm" / "@prisma+client@5.22.0_prisma@5.22.0" / "node_modules"
    arc = "node_modules/.pnpm/@prisma+client@5.22.0_prisma@5.22.0/node_modules"
    package = client(store / "@prisma" / "client", f"{arc}/@prisma/client")
    generated(store / ".prisma" / "client")
    generated(fn / "node_modules" / ".prisma" / "client")  # farther: not what the client finds
    into = collector(fn)
    forced, _ = add_prisma(into, [package], NO_RULES)
    assert forced == [Forced(f"{arc}/.prisma/client", PRISMA_REASON)]
    assert f"{arc}/.prisma/client/index.js" in into.entries
    assert "node_modules/.prisma/client/index.js" not in into.entries


def test_a_client_without_a_generated_one_ships_with_a_warning(tmp_path: Path) -> None:
    fn = tmp_path.resolve() / "fn"
    real = fn / "node_modules" / "@prisma" / "client"
    package = client(real, "node_modules/@prisma/client")
    into = collector(fn)
    forced, warnings = add_prisma(into, [package], NO_RULES)
    assert forced == []
    assert into.entries == {}
    assert len(warnings) == 1
    assert warnings[0].startswith(
        f"@prisma/client@5.22.0 ships without a generated client (no .prisma/client beside {real})"
    )
    assert "`npx prisma generate`" in warnings[0]


def test_other_packages_and_a_client_already_in_the_zip_add_nothing(tmp_path: Path) -> None:
    fn = tmp_path.resolve() / "fn"
    generated(fn / "node_modules" / ".prisma" / "client")
    other = pkg(fn / "node_modules" / "prisma", "prisma", "5.22.0")
    into = collector(fn)
    forced, warnings = add_prisma(
        into,
        [PackageInfo("prisma", "5.22.0", "node_modules/prisma", 1, 1, path=str(other))],
        NO_RULES,
    )
    assert (forced, warnings, into.entries) == ([], [], {})
    package = client(fn / "node_modules" / "@prisma" / "client", "node_modules/@prisma/client")
    into.add_tree(
        str(fn / "node_modules" / ".prisma" / "client"), "node_modules/.prisma/client", NO_RULES
    )
    before = dict(into.entries)
    assert add_prisma(into, [package], NO_RULES) == ([], [])  # includes put it there already
    assert into.entries == before


@pytest.mark.parametrize(
    ("architecture", "entry"),
    [("x86_64", "rhel-openssl-3.0.x"), ("arm64", "linux-arm64-openssl-3.0.x")],
)
def test_the_generated_clients_engines_are_alternatives_with_the_targets_binary_target(
    architecture: str, entry: str
) -> None:
    forced = [
        Forced("node_modules/.prisma/client", PRISMA_REASON),
        Forced("generated/schema.graphql", "includes pattern 'generated/'"),
    ]
    assert prisma_alternatives(forced, Target(architecture)) == {
        "node_modules/.prisma/client/": Alternatives(
            "the generated Prisma client",
            "Prisma query engine",
            f'add "{entry}" to binaryTargets in schema.prisma and run `npx prisma generate`',
        )
    }
    assert prisma_alternatives([], Target(architecture)) == {}
