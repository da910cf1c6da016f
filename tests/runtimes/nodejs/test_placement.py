"""Where Node finds each package, on disk and in the zip (docs/design.md, "Dependencies" and
"Layout").

`resolve` on real folders built in tmp_path; `Slots` placing what it finds, as the crawl does,
and checking every (dependent, name) edge afterwards.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import link, pkg

from lambdazip_tf.core.filesystem import ObservedFileSystem
from lambdazip_tf.errors import DependencyError, LinkError
from lambdazip_tf.runtimes.nodejs.placement import Edge, Placed, Slots, resolve


def found(fs: ObservedFileSystem, name: str, start: Path) -> tuple[str, str]:
    """Where Node finds `name` from the real folder `start`, which must exist."""
    hit = resolve(fs, name, str(start))
    assert hit is not None, (name, start)
    return hit


def test_resolve_looks_in_the_folders_own_node_modules_then_each_ancestors(
    tmp_path: Path,
) -> None:
    repo = tmp_path.resolve()
    fn = repo / "fn"
    nested = pkg(fn / "node_modules" / "a" / "node_modules" / "b", "b", "2.0.0")
    pkg(fn / "node_modules" / "a", "a")
    pkg(fn / "node_modules" / "b", "b", "1.0.0")
    hoisted = pkg(repo / "node_modules" / "c", "c")  # a workspace hoists above the function
    real_x = pkg(fn / "node_modules" / ".pnpm" / "x@1.0.0" / "node_modules" / "x", "x")
    link(fn / "node_modules" / "x", ".pnpm/x@1.0.0/node_modules/x")
    fs = ObservedFileSystem()
    # The path where Node found it, and its real folder.
    assert resolve(fs, "x", str(fn)) == (str(fn / "node_modules" / "x"), str(real_x))
    assert ("realpath_strict", str(fn / "node_modules" / "x"), str(real_x)) in fs.facts
    assert resolve(fs, "b", str(fn / "node_modules" / "a")) == (str(nested), str(nested))
    top_b = str(fn / "node_modules" / "b")
    assert resolve(fs, "b", str(fn)) == (top_b, top_b)
    assert resolve(fs, "c", str(fn / "node_modules" / "a")) == (str(hoisted), str(hoisted))
    assert resolve(fs, "missing", str(fn / "node_modules" / "a")) is None


def test_resolve_never_looks_in_node_modules_inside_a_folder_named_node_modules(
    tmp_path: Path,
) -> None:
    fn = tmp_path.resolve() / "fn"
    pkg(fn / "node_modules" / "a", "a")
    pkg(fn / "node_modules" / "node_modules" / "b", "b", "9.9.9")  # Node never looks here
    wanted = pkg(fn / "node_modules" / "b", "b", "1.0.0")
    hit = resolve(ObservedFileSystem(), "b", str(fn / "node_modules" / "a"))
    assert hit == (str(wanted), str(wanted))


def test_a_link_cycle_where_node_looks_is_passed_over_as_node_passes_over_it(
    tmp_path: Path,
) -> None:
    repo = tmp_path.resolve()
    upper = pkg(repo / "node_modules" / "loop", "loop")
    link(repo / "fn" / "node_modules" / "loop", "loop")  # stat fails with ELOOP: not a folder
    assert resolve(ObservedFileSystem(), "loop", str(repo / "fn")) == (str(upper), str(upper))


class ChangedAfterProbe(ObservedFileSystem):
    """A tree that became a link cycle between the probe and the real path."""

    def isdir(self, path: str) -> bool:
        return True


def test_a_link_cycle_behind_a_folder_that_was_there_is_a_link_error_naming_it(
    tmp_path: Path,
) -> None:
    fn = tmp_path.resolve() / "fn"
    loop = link(fn / "node_modules" / "loop", "loop")
    with pytest.raises(LinkError) as error:
        resolve(ChangedAfterProbe(), "loop", str(fn))
    assert error.value.path == str(loop)
    assert str(error.value) == f"link cycle at {loop}"


def test_a_package_inside_keep_keeps_its_installed_path(tmp_path: Path) -> None:
    fn = tmp_path.resolve() / "fn"
    pkg(fn / "node_modules" / "a", "a")
    pkg(fn / "node_modules" / "a" / "node_modules" / "b", "b", "2.0.0")
    fs = ObservedFileSystem()
    slots = Slots(fs, str(fn), str(fn))
    path, real = found(fs, "a", fn)
    assert slots.place("", "a", path, real) == Placed("node_modules/a", "node_modules/a")
    path_b, real_b = found(fs, "b", Path(real))
    want = "node_modules/a/node_modules/b"
    assert slots.place("node_modules/a", "b", path_b, real_b) == Placed(want, want)
    assert slots.lookup("node_modules/a", "b") == want
    assert slots.lookup("", "b") is None  # the nested copy is not Node's from the root
    # The same package reached again from the same place is already there.
    assert slots.place("", "a", path, real) is None


def test_a_pnpm_link_keeps_its_slot_as_a_link_to_the_files_in_the_store(tmp_path: Path) -> None:
    fn = tmp_path.resolve() / "fn"
    store = fn / "node_modules" / ".pnpm"
    pkg(store / "x@1.0.0" / "node_modules" / "x", "x")
    pkg(store / "y@1.0.0" / "node_modules" / "y", "y")
    link(fn / "node_modules" / "x", ".pnpm/x@1.0.0/node_modules/x")
    link(store / "x@1.0.0" / "node_modules" / "y", "../../y@1.0.0/node_modules/y")  # a sibling
    fs = ObservedFileSystem()
    slots = Slots(fs, str(fn), str(fn))
    path_x, real_x = found(fs, "x", fn)
    x = slots.place("", "x", path_x, real_x)
    assert x == Placed("node_modules/x", "node_modules/.pnpm/x@1.0.0/node_modules/x")
    assert x is not None
    path_y, real_y = found(fs, "y", Path(real_x))
    y = slots.place(x.files, "y", path_y, real_y)
    assert y == Placed(
        "node_modules/.pnpm/x@1.0.0/node_modules/y", "node_modules/.pnpm/y@1.0.0/node_modules/y"
    )
    slots.check([Edge("", "x", real_x), Edge(x.files, "y", real_y)])


def test_a_link_inside_keep_to_a_workspace_package_outside_it_is_replaced_by_its_files(
    tmp_path: Path,
) -> None:
    repo = tmp_path.resolve()
    fn = repo / "fn"
    real = pkg(repo / "packages" / "utils", "utils")
    link(fn / "node_modules" / "utils", "../../packages/utils")
    fs = ObservedFileSystem()
    path, found_real = found(fs, "utils", fn)
    assert found_real == str(real)
    placed = Slots(fs, str(fn), str(fn)).place("", "utils", path, found_real)
    assert placed == Placed("node_modules/utils", "node_modules/utils")


def test_a_package_kept_in_place_nests_under_a_dependent_that_a_closer_copy_would_shadow(
    tmp_path: Path,
) -> None:
    # With layer or package_dir only node_modules keeps its paths: a local package linked from
    # it is copied, and so is a workspace package linked from the local one.
    fn = tmp_path.resolve() / "fn"
    keep = fn / "node_modules"
    local = pkg(fn / "packages" / "local", "local")
    pkg(local / "node_modules" / "other", "other", "2.0.0")
    pkg(fn / "packages" / "sub", "sub")
    link(local / "node_modules" / "sub", "../../sub")
    link(keep / "local", "../packages/local")
    pkg(keep / "sub", "sub", "9.0.0")  # holds the top slot: the copy of packages/sub nests
    pkg(keep / "other", "other", "1.0.0")  # what packages/sub finds, walking up
    fs = ObservedFileSystem()
    slots = Slots(fs, str(fn), str(keep))
    path, real_local = found(fs, "local", fn)
    assert slots.place("", "local", path, real_local) == Placed(
        "node_modules/local", "node_modules/local"
    )
    under_local = "node_modules/local/node_modules"
    path, real_other2 = found(fs, "other", local)
    assert slots.place("node_modules/local", "other", path, real_other2) == Placed(
        f"{under_local}/other", f"{under_local}/other"
    )
    path, real_sub = found(fs, "sub", local)
    assert slots.place("node_modules/local", "sub", path, real_sub) == Placed(
        f"{under_local}/sub", f"{under_local}/sub"
    )
    path, real_other1 = found(fs, "other", Path(real_sub))
    assert path == str(keep / "other")
    # Its installed path, node_modules/other, is farther from the copied sub than other@2.
    shadowed = f"{under_local}/sub/node_modules/other"
    assert slots.place(f"{under_local}/sub", "other", path, real_other1) == Placed(
        shadowed, shadowed
    )
    slots.check(
        [
            Edge("", "local", real_local),
            Edge("node_modules/local", "other", real_other2),
            Edge("node_modules/local", "sub", real_sub),
            Edge(f"{under_local}/sub", "other", real_other1),
        ]
    )


def test_a_hoisted_package_goes_to_the_top_or_under_its_dependent_when_the_top_is_taken(
    tmp_path: Path,
) -> None:
    repo = tmp_path.resolve()
    fn = repo / "fn"
    pkg(repo / "node_modules" / "h", "h", "1.0.0")
    pkg(repo / "node_modules" / "w", "w")
    pkg(repo / "node_modules" / "w" / "node_modules" / "h", "h", "2.0.0")
    pkg(repo / "node_modules" / "v", "v")
    fs = ObservedFileSystem()
    slots = Slots(fs, str(fn), str(fn))
    path_h, real_h = found(fs, "h", fn)
    assert slots.place("", "h", path_h, real_h) == Placed("node_modules/h", "node_modules/h")
    path_w, real_w = found(fs, "w", fn)
    assert slots.place("", "w", path_w, real_w) == Placed("node_modules/w", "node_modules/w")
    path_h2, real_h2 = found(fs, "h", Path(real_w))
    nested = "node_modules/w/node_modules/h"
    assert slots.place("node_modules/w", "h", path_h2, real_h2) == Placed(nested, nested)
    # A second dependent that already reaches h@1 from where it is placed adds nothing.
    path_v, real_v = found(fs, "v", fn)
    assert slots.place("", "v", path_v, real_v) == Placed("node_modules/v", "node_modules/v")
    assert slots.place("node_modules/v", "h", *found(fs, "h", Path(real_v))) is None
    assert slots.lookup("node_modules/v", "h") == "node_modules/h"
    assert slots.lookup(nested, "h") == nested
    slots.check(
        [
            Edge("", "h", real_h),
            Edge("", "w", real_w),
            Edge("node_modules/w", "h", real_h2),
            Edge("", "v", real_v),
            Edge("node_modules/v", "h", real_h),
        ]
    )


def test_an_installed_path_inside_keep_that_will_claim_the_top_slot_is_not_taken_first(
    tmp_path: Path,
) -> None:
    repo = tmp_path.resolve()
    fn = repo / "fn"
    pkg(repo / "node_modules" / "w", "w")
    pkg(repo / "node_modules" / "h", "h", "1.0.0")  # what w finds
    pkg(fn / "node_modules" / "h", "h", "2.0.0")  # the function's own, placed later
    fs = ObservedFileSystem()
    slots = Slots(fs, str(fn), str(fn))
    path_w, real_w = found(fs, "w", fn)
    slots.place("", "w", path_w, real_w)
    path_h1, real_h1 = found(fs, "h", Path(real_w))
    nested = "node_modules/w/node_modules/h"
    assert slots.place("node_modules/w", "h", path_h1, real_h1) == Placed(nested, nested)
    path_h2, real_h2 = found(fs, "h", fn)
    assert slots.place("", "h", path_h2, real_h2) == Placed("node_modules/h", "node_modules/h")
    slots.check(
        [Edge("", "w", real_w), Edge("node_modules/w", "h", real_h1), Edge("", "h", real_h2)]
    )
    # Without keep nothing inside the function is kept, so nothing claims the top slot.
    unkept = Slots(ObservedFileSystem(), str(fn), None)
    unkept.place("", "w", path_w, real_w)
    top = Placed("node_modules/h", "node_modules/h")
    assert unkept.place("node_modules/w", "h", path_h1, real_h1) == top


def test_without_keep_every_package_is_copied_where_node_finds_it(tmp_path: Path) -> None:
    fn = tmp_path.resolve() / "fn"
    store = fn / "node_modules" / ".pnpm"
    pkg(store / "x@1.0.0" / "node_modules" / "x", "x")
    pkg(store / "y@1.0.0" / "node_modules" / "y", "y")
    link(fn / "node_modules" / "x", ".pnpm/x@1.0.0/node_modules/x")
    link(store / "x@1.0.0" / "node_modules" / "y", "../../y@1.0.0/node_modules/y")
    fs = ObservedFileSystem()
    slots = Slots(fs, str(fn), None)
    path_x, real_x = found(fs, "x", fn)
    assert slots.place("", "x", path_x, real_x) == Placed("node_modules/x", "node_modules/x")
    path_y, real_y = found(fs, "y", Path(real_x))
    assert slots.place("node_modules/x", "y", path_y, real_y) == Placed(
        "node_modules/y", "node_modules/y"
    )
    assert slots.held == {"node_modules/x": real_x, "node_modules/y": real_y}  # no .pnpm
    slots.check([Edge("", "x", real_x), Edge("node_modules/x", "y", real_y)])


def test_check_refuses_an_edge_that_node_would_not_resolve_to_the_same_package(
    tmp_path: Path,
) -> None:
    fn = tmp_path.resolve() / "fn"
    pkg(fn / "node_modules" / "a", "a")
    fs = ObservedFileSystem()
    slots = Slots(fs, str(fn), str(fn))
    path, real = found(fs, "a", fn)
    slots.place("", "a", path, real)
    slots.check([Edge("", "a", real), Edge("node_modules/a", "a", real)])
    with pytest.raises(DependencyError, match="cannot lay out 'a' for the function") as error:
        slots.check([Edge("", "a", str(tmp_path / "elsewhere" / "a"))])
    assert error.value.package == "a"
    with pytest.raises(DependencyError, match="cannot lay out 'b' for node_modules/a"):
        slots.check([Edge("node_modules/a", "b", real)])
