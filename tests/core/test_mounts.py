"""Links where Lambda mounts the zips (docs/design.md, "Links" and "Layout")."""

from __future__ import annotations

import re

import pytest

from lambdazip_tf.core.entries import DIR_MODE, FILE_MODE, LINK_MODE, Entry
from lambdazip_tf.core.mounts import check_links, check_nothing_below_links
from lambdazip_tf.errors import LinkError


def file(arc: str) -> Entry:
    return Entry(arc, "file", FILE_MODE, f"/src/{arc}")


def folder(arc: str) -> Entry:
    return Entry(arc, "dir", DIR_MODE)


def link(arc: str, target: str) -> Entry:
    return Entry(arc, "link", LINK_MODE, target=target)


LAYER = [
    folder("nodejs"),
    folder("nodejs/node_modules"),
    folder("nodejs/node_modules/dep"),
    file("nodejs/node_modules/dep/index.js"),
]


def test_links_to_entries_of_the_same_zip_pass() -> None:
    check_links(
        [
            folder("lib"),
            file("lib/util.js"),
            link("lib/again.js", "util.js"),
            link("alias", "lib"),
            link("through.js", "alias/again.js"),  # through two links
            link("lib/up", ".."),  # the mount's root itself
            link("abs.js", "/var/task/lib/util.js"),
        ],
        None,
    )
    check_links([file("x.js")], [*LAYER, link("nodejs/node_modules/d", "dep/index.js")])


def test_a_function_link_into_the_layer_at_opt_passes() -> None:
    check_links(
        [
            link("dep.js", "/opt/nodejs/node_modules/dep/index.js"),
            folder("a"),
            folder("a/b"),
            link("a/b/mods", "../../../../opt/nodejs/node_modules"),  # climbs out of /var/task
        ],
        LAYER,
    )


def test_a_function_link_into_a_missing_layer_fails() -> None:
    with pytest.raises(
        LinkError, match=re.escape("leads to /opt/nodejs/node_modules/dep/index.js")
    ):
        check_links([link("dep.js", "/opt/nodejs/node_modules/dep/index.js")], None)


def test_a_link_left_dangling_at_var_task_by_the_split_names_itself_and_dereference() -> None:
    function = [file("handler.js"), link("dep-entry.js", "node_modules/dep/index.js")]
    with pytest.raises(LinkError) as caught:
        check_links(function, LAYER)
    message = str(caught.value)
    assert message.startswith(
        "link dep-entry.js -> node_modules/dep/index.js in the function zip leads to "
        "/var/task/node_modules/dep/index.js, where Lambda finds nothing"
    )
    assert "/var/task" in message
    assert "/opt" in message
    assert 'set symlinks = "dereference"' in message
    assert caught.value.path == "dep-entry.js"
    assert caught.value.target == "node_modules/dep/index.js"


def test_a_dangling_link_in_the_layer_is_named_as_the_layers() -> None:
    layer = [*LAYER, link("nodejs/node_modules/gone", "missing")]
    with pytest.raises(LinkError, match=r"^link nodejs/node_modules/gone -> missing in the layer"):
        check_links([file("x.js")], layer)


def test_a_link_climbing_out_of_the_mounts_fails() -> None:
    with pytest.raises(LinkError, match="leads to /var, "):
        check_links([folder("lib"), link("lib/root", "../..")], None)


@pytest.mark.parametrize(
    "function",
    [
        [link("a", "b"), link("b", "a")],
        [link("self", "self")],
        [folder("d"), link("d/loop", "../d/loop/x")],
        [link("x", "/opt/y")],
    ],
)
def test_link_cycles_fail(function: list[Entry]) -> None:
    layer = [link("y", "/var/task/x")]
    with pytest.raises(LinkError, match="leads to a link cycle"):
        check_links(function, layer)


def test_only_the_trusted_function_link_is_taken_on_trust() -> None:
    node_modules = link("node_modules", "/opt/nodejs/node_modules")
    check_links([file("index.mjs"), node_modules], None, trusted="node_modules")
    with pytest.raises(LinkError, match="link node_modules -> /opt/nodejs/node_modules"):
        check_links([file("index.mjs"), node_modules], None)
    with pytest.raises(LinkError, match="link other"):
        check_links([node_modules, link("other", "/opt/x")], None, trusted="node_modules")
    # A layer's link of that name is checked like any other.
    with pytest.raises(LinkError, match="in the layer zip"):
        check_links([file("x.js")], [node_modules], trusted="node_modules")


def test_a_path_through_links_in_both_zips_is_followed_to_its_end() -> None:
    layer = [*LAYER, link("nodejs/node_modules/alias", "dep")]
    function = [link("mods", "/opt/nodejs/node_modules"), link("x.js", "mods/alias/index.js")]
    check_links(function, layer)
    function = [link("mods", "/opt/nodejs/node_modules"), link("x.js", "mods/alias/main.js")]
    with pytest.raises(LinkError, match=re.escape("leads to /opt/nodejs/node_modules/dep/main.js")):
        check_links(function, layer)


def test_a_link_that_is_also_a_folder_holding_entries_is_refused() -> None:
    """Lambda rejects a zip whose link path holds entries below it: refused before writing."""
    entries = [
        Entry("lib", "link", 0o777, target="vendor/lib"),
        Entry("lib/extra.js", "file", 0o644),
        Entry("vendor/lib/index.js", "file", 0o644),
    ]
    with pytest.raises(
        LinkError,
        match=r"the layer zip would hold lib/extra.js below lib, which is a link \(-> vendor/lib\)",
    ):
        check_nothing_below_links(entries, "layer")
    check_nothing_below_links([e for e in entries if e.arc != "lib/extra.js"], "layer")
