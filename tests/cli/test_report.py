"""The dry run's report, `lambdazip-tf plan` (docs/design.md, "The program").

Outcomes come from `pipeline.dry_run` of small trees made here; the text is checked for what a
person reads (which zip, which packages and why, what was left out), not for its columns.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from helpers import link, node_function, pkg, write

from lambdazip_tf.cli.report import TOP_PACKAGES, human, plan_json, plan_text, why
from lambdazip_tf.core.request import Request
from lambdazip_tf.pipeline import Outcome, build, dry_run


def _project(tmp_path: Path) -> Path:
    """A function shipping a (3 KB) which needs b, with an SDK package, a dev-only tool, two
    notes and a link."""
    src = node_function(
        tmp_path / "fn",
        dependencies={"a": "1", "@aws-sdk/client-s3": "3"},
        devDependencies={"dev-tool": "1"},
    )
    a = pkg(src / "node_modules" / "a", "a", dependencies={"b": "2"}, engines={"node": ">=22"})
    write(a / "big.js", "x" * 3000)
    pkg(src / "node_modules" / "b", "b", version="2.0.0")
    pkg(src / "node_modules" / "@aws-sdk" / "client-s3", "@aws-sdk/client-s3")
    pkg(src / "node_modules" / "dev-tool", "dev-tool")
    write(src / "notes.md", "# notes\n")
    write(src / "docs" / "more.md", "# more\n")
    link(src / "alias.js", "handler.js")
    return src


def _plan(src: Path, **fields: Any) -> Outcome:
    return dry_run(
        Request(
            source_dir=src,
            output_dir=src.parent / "out",
            excludes=("*.md",),
            node_version="20",  # a needs 22: one warning
            **fields,
        )
    )


def _line(text: str, needle: str) -> str:
    (found,) = [line for line in text.splitlines() if needle in line]
    return found


def _section(text: str, heading: str) -> str:
    """The block of the report that starts with `heading` (blocks are apart by a blank line)."""
    (found,) = [block for block in text.split("\n\n") if block.startswith(heading)]
    return found


def test_human_sizes_count_in_powers_of_1024_up_to_megabytes() -> None:
    assert human(0) == "0 B"
    assert human(1023) == "1023 B"
    assert human(1024) == "1.0 KB"
    assert human(1536.0) == "1.5 KB"
    assert human(3.5 * 1024**2) == "3.5 MB"
    assert human(2 * 1024**3) == "2048.0 MB"  # no larger unit: Lambda's limits are in MB


def test_why_is_the_chain_of_names_from_package_json(tmp_path: Path) -> None:
    outcome = _plan(_project(tmp_path))
    chains = {p.name: why(p) for p in outcome.layout.packages}
    assert chains == {"a": "package.json > a", "b": "package.json > a > b"}
    # The JSON carries the same chain, name by name.
    assert [" > ".join(p["why"]) for p in plan_json(outcome)["packages"]] == [
        chains["a"],
        chains["b"],
    ]


def test_plan_json_carries_packages_their_chains_and_what_was_left_out(tmp_path: Path) -> None:
    outcome = _plan(_project(tmp_path))
    data = json.loads(json.dumps(plan_json(outcome)))  # plain JSON types only
    assert data["runtime"] == "nodejs"
    assert data["current"] is False
    assert data["content_hash"] == outcome.function.content_hash
    packages = data["packages"]
    assert [(p["name"], p["why"]) for p in packages] == [
        ("a", ["package.json", "a"]),
        ("b", ["package.json", "a", "b"]),
    ]
    assert packages[0]["bytes"] > 3000 > packages[1]["bytes"]  # largest first
    assert [p["name"] for p in data["dev_only"]] == ["dev-tool"]
    assert {"path": "notes.md", "reason": "excludes pattern '*.md'"} in data["excluded"]
    groups = {g["reason"]: g for g in data["left_out"]}
    assert groups["excludes pattern '*.md'"]["paths"] == 2
    sdk = groups["exclude_packages '@aws-sdk/*'"]
    assert (sdk["paths"], sdk["files"]) == (1, 2)
    assert sdk["size"] > 0
    assert any("engines.node" in w for w in data["warnings"])
    function = data["function"]
    assert function["path"] == outcome.function.path
    assert function["size"] is None  # not built: only an estimate
    assert function["estimated_size"] > 0
    assert "layer" not in data


def test_plan_json_lists_every_entry_and_each_links_target(tmp_path: Path) -> None:
    outcome = _plan(_project(tmp_path))
    entries = {e["path"]: e for e in plan_json(outcome)["function"]["entries"]}
    assert list(entries) == [e.zip_name for e in outcome.layout.function]
    assert entries["alias.js"] == {
        "path": "alias.js",
        "kind": "link",
        "mode": "0777",
        "size": 0,
        "target": "handler.js",
    }
    assert entries["node_modules/a/"]["kind"] == "dir"
    handler = entries["handler.js"]
    assert "target" not in handler
    assert (handler["kind"], handler["mode"]) == ("file", "0644")
    assert handler["size"] == (tmp_path / "fn" / "handler.js").stat().st_size
    assert "notes.md" not in entries


def test_plan_text_summarises_packages_why_they_ship_and_what_was_left_out(
    tmp_path: Path,
) -> None:
    outcome = _plan(_project(tmp_path))
    text = plan_text(outcome)
    assert outcome.function.path in _line(text, "function zip:")
    assert "would be built" in text
    assert "packages (2, " in text
    packages = _section(text, "packages (2, ")
    a_line, b_line = _line(packages, "a@1.0.0"), _line(packages, "b@2.0.0")
    assert a_line.endswith("package.json > a")
    assert b_line.endswith("package.json > a > b")
    assert packages.index(a_line) < packages.index(b_line)  # largest first
    left_out = _section(text, "left out:")
    assert "dev-tool@1.0.0" in _line(left_out, "dev-only")
    assert _line(left_out, "excludes pattern '*.md'").endswith("(2 paths)")
    assert _line(left_out, "exclude_packages '@aws-sdk/*'").endswith("(1 path)")
    assert left_out.index("@aws-sdk") < left_out.index("'*.md'")  # the larger group first
    assert "engines.node" in _section(text, "warnings:")
    # Every file only with --files.
    assert "node_modules/a/big.js" not in text
    assert "notes.md" not in text
    assert "lambdazip-tf plan --files" in text


def test_plan_text_with_files_lists_every_entry_and_every_left_out_path(tmp_path: Path) -> None:
    outcome = _plan(_project(tmp_path))
    text = plan_text(outcome, files=True)
    entries = _section(text, "function zip entries (").splitlines()[1:]
    rows = {row[3]: row for row in (line.split() for line in entries)}
    assert list(rows) == [e.zip_name for e in outcome.layout.function]
    assert rows["alias.js"] == ["l", "0777", "-", "alias.js", "->", "handler.js"]
    size = (tmp_path / "fn" / "handler.js").stat().st_size
    assert rows["handler.js"] == ["f", "0644", str(size), "handler.js"]
    assert rows["node_modules/b/"] == ["d", "0755", "-", "node_modules/b/"]
    left_out = _section(text, "left out (3):").splitlines()
    assert "  notes.md  (excludes pattern '*.md')" in left_out
    assert "  docs/more.md  (excludes pattern '*.md')" in left_out
    assert "  node_modules/@aws-sdk/client-s3  (exclude_packages '@aws-sdk/*')" in left_out
    assert "lambdazip-tf plan --files" not in text


def test_a_plain_folder_with_nothing_left_out_says_so(tmp_path: Path) -> None:
    src = tmp_path / "fn"
    write(src / "index.js", "exports.handler = async () => 1;\n")
    outcome = dry_run(Request(source_dir=src, output_dir=tmp_path / "out"))
    text = plan_text(outcome, files=True)
    assert "(runtime files)" in text
    assert "\nleft out:\n  nothing\n" in text
    assert "\nleft out (0):\n  nothing\n" in text
    assert "packages (" not in text
    assert "warnings:" not in text
    data = plan_json(outcome)
    assert (data["packages"], data["left_out"], data["dev_only"]) == ([], [], [])


def test_a_current_zip_shows_its_actual_size(tmp_path: Path) -> None:
    src = _project(tmp_path)
    request = Request(source_dir=src, output_dir=tmp_path / "out", excludes=("*.md",))
    built = build(request)
    outcome = dry_run(request)
    assert outcome.current
    size = Path(built.function.path).stat().st_size
    data = plan_json(outcome)
    assert data["current"] is True
    assert (data["function"]["size"], data["function"]["estimated_size"]) == (size, None)
    summary = _line(plan_text(outcome), "function zip:")
    assert "current, nothing to do" in summary
    assert f"{human(size)} zipped" in plan_text(outcome)


def test_a_layer_is_reported_beside_the_function(tmp_path: Path) -> None:
    outcome = _plan(_project(tmp_path), layer=True)
    assert outcome.layer is not None
    data = plan_json(outcome)
    layer_paths = [e["path"] for e in data["layer"]["entries"]]
    assert "nodejs/node_modules/a/big.js" in layer_paths
    function_paths = [e["path"] for e in data["function"]["entries"]]
    assert not any(p.startswith("node_modules/") for p in function_paths)
    assert data["content_hash"] == outcome.content_hash != outcome.function.content_hash
    text = plan_text(outcome, files=True)
    assert outcome.layer.path in _line(text, "layer zip:")
    assert "\nlayer zip entries (" in text


def test_only_the_largest_packages_are_named(tmp_path: Path) -> None:
    count = TOP_PACKAGES + 2
    names = [f"p{i:02}" for i in range(count)]
    src = node_function(tmp_path / "fn", dependencies=dict.fromkeys(names, "1"))
    for i, name in enumerate(names):
        write(pkg(src / "node_modules" / name, name) / "data.js", "x" * (100 * (i + 1)))
    outcome = dry_run(Request(source_dir=src, output_dir=tmp_path / "out"))
    text = plan_text(outcome)
    assert f"packages ({count}, " in text
    assert "p00@1.0.0" not in text and "p01@1.0.0" not in text  # the two smallest
    assert f"p{count - 1:02}@1.0.0" in text
    assert "and 2 smaller packages" in _line(text, "smaller packages")
    assert len(plan_json(outcome)["packages"]) == count
