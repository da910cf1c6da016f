"""The plan of a rebuild: what is copied from the previous artifact, what is packed.

docs/design.md, "Fast paths". Built on entries and records made here, without a file system:
the plan is a pure function.
"""

from __future__ import annotations

from lambdazip_tf.core.entries import DIR_MODE, EXEC_MODE, FILE_MODE, LINK_MODE, Entry
from lambdazip_tf.speed.reuse import ADD, COPY, MOVED, PACK, plan_members

A, B, C = "a" * 64, "b" * 64, "c" * 64


def _file(arc: str, mode: int = FILE_MODE) -> Entry:
    return Entry(arc, "file", mode, f"/src/{arc}", size=3, stat_key=(3, 1, 1, len(arc), 1))


ENTRIES = [
    Entry("lib", "dir", DIR_MODE),
    _file("lib/a.js"),
    Entry("lib/b.js", "link", LINK_MODE, target="a.js"),
    _file("lib/c.js"),
    _file("run.sh", EXEC_MODE),
]


def _record(held: str, start: int, end: int) -> tuple[str, int, int, int, int, int, int]:
    return (held, start, end, 0, 3, end - start - 40, 8)


def test_a_cold_build_packs_every_file_and_adds_the_rest_in_order() -> None:
    for digests in ({}, {"/src/lib/a.js": A}):
        plan = plan_members(ENTRIES, digests, {})
        assert [step[0] for step in plan.steps] == [ADD, PACK, ADD, PACK, PACK]
        assert [step[1] for step in plan.steps] == ENTRIES
        assert plan.to_pack == [e for e in ENTRIES if e.kind == "file"]
        # No records at all plans what records that match nothing plan.
        unrelated = {"elsewhere.js": _record(C, 0, 50)}
        assert plan_members(ENTRIES, digests, unrelated) == plan


def test_unchanged_members_are_copied_in_runs_moved_content_reused_and_the_rest_packed() -> None:
    digests = {"/src/lib/a.js": A, "/src/lib/c.js": B, "/src/run.sh": C}
    records = {
        "lib": _record("/", 0, 40),
        "lib/a.js": _record(A, 40, 90),
        "lib/b.js": _record(">a.js", 90, 135),
        "old/c.js": _record(B, 135, 190),  # c.js's content, under another name
        "run.sh": _record("d" * 64, 190, 240),  # other content: packed again
    }
    plan = plan_members(ENTRIES, digests, records)
    kinds = [step[0] for step in plan.steps]
    assert kinds == [COPY, MOVED, PACK]
    assert [entry.arc for entry, _ in plan.steps[0][1]] == ["lib", "lib/a.js", "lib/b.js"]
    assert plan.steps[1][1:] == (ENTRIES[3], records["old/c.js"])
    assert plan.to_pack == [ENTRIES[4]]


def test_a_run_ends_where_the_previous_zip_is_not_contiguous() -> None:
    digests = {"/src/lib/a.js": A}
    records = {
        "lib": _record("/", 0, 40),
        "lib/a.js": _record(A, 100, 150),  # something lay between them in the previous zip
        "lib/b.js": _record(">a.js", 150, 190),
    }
    plan = plan_members(ENTRIES[:3], digests, records)
    assert [step[0] for step in plan.steps] == [COPY, COPY]
    assert [[e.arc for e, _ in step[1]] for step in plan.steps] == [
        ["lib"],
        ["lib/a.js", "lib/b.js"],
    ]


def test_a_changed_link_target_or_an_unhashed_file_is_not_copied() -> None:
    digests = {"/src/lib/a.js": A}
    records = {"lib/b.js": _record(">other.js", 0, 45), "lib/a.js": _record(A, 45, 95)}
    plan = plan_members([ENTRIES[2]], digests, records)
    assert [step[0] for step in plan.steps] == [ADD]  # the link's target changed
    unknown = plan_members([ENTRIES[1]], {}, records)  # no digest known: cannot be matched
    assert [step[0] for step in unknown.steps] == [PACK]
