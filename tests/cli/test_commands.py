"""The subcommands build, plan and ensure, and --help (docs/design.md, "The program")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    assert_one_line_error,
    node_function,
    pkg,
    write,
)

from lambdazip_tf import __version__, cli
from lambdazip_tf.cli.report import human
from lambdazip_tf.core.request import Request


def test_build_and_request_file(tree: Path, run_cli: Any, tmp_path: Path) -> None:
    request_file = write(
        tmp_path / "req.json",
        json.dumps({"source_dir": str(tree), "output_dir": str(tmp_path / "out"), "layer": False}),
    )
    run = run_cli(["build", "--request", str(request_file), "--name", "renamed"])
    assert run.code == 0, run.stderr
    data = json.loads(run.stdout)
    # In words on stderr for a person; the JSON alone on stdout.
    assert run.stderr == (
        f"lambdazip-tf: function zip {data['output_path']} built: "
        f"{human(int(data['output_size']))}, 4 files, 0 links, "
        f"source_code_hash {data['output_base64sha256']}\n"
    )
    assert Path(data["output_path"]).name.startswith("renamed-")
    again = run_cli(["build", "--request", str(request_file)])
    assert json.loads(again.stdout)["content_hash"] == data["content_hash"]


def test_build_flags_need_a_source(run_cli: Any) -> None:
    assert_one_line_error(run_cli(["build"]), "--source-dir")


def test_plan_writes_nothing_and_reports_exclusions(
    tree: Path, run_cli: Any, tmp_path: Path
) -> None:
    write(tree / ".env", "SECRET=1")
    write(tree / "notes.md", "# notes")
    out = tmp_path / "out"
    flags = ["--source-dir", str(tree), "--output-dir", str(out), "--exclude", "*.md"]
    run = run_cli(["plan", *flags])
    assert run.code == 0, run.stderr
    assert not out.exists()
    assert "would be built" in run.stdout
    # The summary groups what was left out; the files are listed only with --files.
    assert "1 files  excludes pattern '*.md' (1 path)" in run.stdout
    assert "1 files  default: likely secret (environment file) pattern '.env*' (1 path)" in (
        run.stdout
    )
    assert "lib/util.js" not in run.stdout
    assert "lambdazip-tf plan --files" in run.stdout
    listed = run_cli(["plan", "--files", *flags])
    assert ".env  (default: likely secret (environment file) pattern '.env*')" in listed.stdout
    assert "notes.md  (excludes pattern '*.md')" in listed.stdout
    assert "f 0644" in listed.stdout
    assert "lib/util.js" in listed.stdout
    built = run_cli(["build", *flags])
    data = json.loads(built.stdout)
    listing = sorted(p.name for p in out.iterdir())
    report = run_cli(["plan", "--json", *flags])
    plan = json.loads(report.stdout)
    assert plan["current"] is True
    assert plan["content_hash"] == data["content_hash"]
    assert plan["function"]["path"] == data["output_path"]
    assert {"path": "notes.md", "reason": "excludes pattern '*.md'"} in plan["excluded"]
    assert sorted(p.name for p in out.iterdir()) == listing  # plan wrote nothing
    changed = write(tree / "index.js", "changed")
    assert changed.exists()
    stale = json.loads(run_cli(["plan", "--json", *flags]).stdout)
    assert stale["current"] is False
    assert stale["content_hash"] != data["content_hash"]


def test_help_text_lists_keys(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    top = capsys.readouterr().out
    for key in Request.model_fields:
        assert key in top
    with pytest.raises(SystemExit):
        cli.main(["build", "--help"])
    sub = capsys.readouterr().out
    for key in Request.model_fields:
        assert (
            "--"
            + {
                "excludes": "exclude",
                "includes": "include",
                "exclude_packages": "exclude-package",
                "allowed_roots": "allowed-root",
            }.get(key, key.replace("_", "-"))
            in sub
        )
    with pytest.raises(SystemExit):
        cli.main(["--version"])
    assert capsys.readouterr().out.strip() == f"lambdazip-tf {__version__}"


def test_the_request_can_come_from_the_environment(
    tree: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = {"source_dir": str(tree), "output_dir": str(tree.parent / "out")}
    monkeypatch.setenv("LAMBDAZIP_REQUEST", json.dumps(request))
    built = run_cli(["build", "--request-env", "LAMBDAZIP_REQUEST"])
    assert built.code == 0, built.stderr
    planned = json.loads(built.stdout)
    ensured = run_cli(
        [
            "ensure",
            "--request-env",
            "LAMBDAZIP_REQUEST",
            "--expect-sha256",
            planned["output_base64sha256"],
        ]
    )
    assert ensured.code == 0, ensured.stderr
    assert "matches the plan" in ensured.stderr
    missing = run_cli(["build", "--request-env", "NO_SUCH_VARIABLE_HERE"])
    assert_one_line_error(missing, "--request-env NO_SUCH_VARIABLE_HERE", "no variable")
    monkeypatch.setenv("LAMBDAZIP_REQUEST", "{not json")
    assert_one_line_error(
        run_cli(["build", "--request-env", "LAMBDAZIP_REQUEST"]), "not valid JSON"
    )


def test_restore_explains_a_plan_it_cannot_use(tmp_path: Path, run_cli: Any) -> None:
    missing = run_cli(["restore", str(tmp_path / "nope.json")])
    assert_one_line_error(missing, "cannot read", "nope.json")
    garbage = write(tmp_path / "garbage.json", "{not json")
    assert_one_line_error(run_cli(["restore", str(garbage)]), "not valid JSON")
    empty = write(tmp_path / "empty.json", json.dumps({"prior_state": {"values": {}}}))
    assert_one_line_error(
        run_cli(["restore", str(empty)]),
        "holds no lambdazip-tf data source",
        "terraform show -json",
    )


def test_restore_ensures_each_data_source_of_the_plan(tree: Path, run_cli: Any) -> None:
    """The plan's data sources as `terraform show -json` gives them, one in a child module."""
    request = {"source_dir": str(tree), "output_dir": str(tree.parent / "out")}
    planned = json.loads(run_cli(["build", "--request-json", json.dumps(request)]).stdout)
    Path(planned["output_path"]).unlink()  # a clean runner
    resource = {
        "address": "module.fn.data.external.build",
        "mode": "data",
        "type": "external",
        "values": {"query": request, "result": planned, "working_dir": None},
    }
    plan = {
        "prior_state": {"values": {"root_module": {"child_modules": [{"resources": [resource]}]}}}
    }
    restored = run_cli(["restore", "-"], stdin=json.dumps(plan))
    assert restored.code == 0, restored.stderr
    assert restored.stderr.startswith("lambdazip-tf: module.fn.data.external.build: ")
    assert "was rebuilt and matches the plan" in restored.stderr
    assert Path(planned["output_path"]).is_file()
    resource["values"]["result"] = {**planned, "output_base64sha256": "x" * 44}
    assert_one_line_error(
        run_cli(["restore", "-"], stdin=json.dumps(plan)), "but the plan expected"
    )


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (
            ["build", "--sourc-dir", "fn"],
            ["`lambdazip-tf build` has no flag --sourc-dir", "--source-dir?"],
        ),
        (["plan", "--jsn"], ["`lambdazip-tf plan` has no flag --jsn; did you mean --json?"]),
        (
            ["ensure", "--expect-sha", "x"],
            ["`lambdazip-tf ensure` has no flag", "--expect-sha256?"],
        ),
        (["build", "--zzzz"], ["has no flag --zzzz; see `lambdazip-tf build --help`"]),
        (["bild"], ["invalid choice: 'bild'"]),
        (
            ["ensure", "--source-dir", "fn"],
            ["required: --expect-sha256", "lambdazip-tf ensure --help"],
        ),
    ],
)
def test_usage_errors_are_one_line_naming_the_closest_flag_of_that_subcommand(
    run_cli: Any, args: list[str], needles: list[str]
) -> None:
    assert_one_line_error(run_cli(args), *needles)


def test_plan_for_a_person_sizes_chains_dev_only_and_what_was_left_out(
    tmp_path: Path, run_cli: Any
) -> None:
    src = node_function(
        tmp_path / "fn",
        dependencies={"a": "1", "@aws-sdk/client-s3": "3"},
        devDependencies={"dev-tool": "1"},
    )
    a = pkg(src / "node_modules" / "a", "a", dependencies={"b": "1"})
    write(a / "big.js", "x" * 3000)
    pkg(src / "node_modules" / "b", "b", version="2.0.0")
    pkg(src / "node_modules" / "@aws-sdk" / "client-s3", "@aws-sdk/client-s3")
    tool = pkg(src / "node_modules" / "dev-tool", "dev-tool", dependencies={"b": "2", "c": "1"})
    write(tool / "cli.js", "y" * 5000)
    pkg(src / "node_modules" / "c", "c", version="3.1.0")  # reached only through dev-tool
    run = run_cli(["plan", "--source-dir", str(src), "--output-dir", str(tmp_path / "out")])
    assert run.code == 0, run.stderr
    text = run.stdout
    assert "about " in text and "KB zipped" in text  # an estimate: not built yet
    assert "packages (2, " in text
    lines = text.splitlines()
    a_line = next(line for line in lines if "a@1.0.0" in line)
    b_line = next(line for line in lines if "b@2.0.0" in line)
    assert a_line.endswith("package.json > a") and b_line.endswith("package.json > a > b")
    assert lines.index(a_line) < lines.index(b_line)  # largest first
    dev = next(line for line in lines if "dev-only packages" in line)
    assert "2 dev-only packages, installed but not shipped: dev-tool@1.0.0, c@3.1.0" in dev
    assert "KB" in dev  # b is shipped, so it is not dev-only
    assert "exclude_packages '@aws-sdk/*' (1 path)" in text
    plan = json.loads(
        run_cli(
            ["plan", "--json", "--source-dir", str(src), "--output-dir", str(tmp_path / "o")]
        ).stdout
    )
    assert [p["name"] for p in plan["dev_only"]] == ["dev-tool", "c"]
    assert plan["packages"][0]["why"] == ["package.json", "a"]
    assert plan["function"]["estimated_size"] > 0 and plan["function"]["size"] is None
    (group,) = [g for g in plan["left_out"] if g["reason"].startswith("exclude_packages")]
    assert group["files"] == 2 and group["size"] > 0
    built = run_cli(["build", "--source-dir", str(src), "--output-dir", str(tmp_path / "o")])
    size = json.loads(built.stdout)["output_size"]
    again = json.loads(
        run_cli(
            ["plan", "--json", "--source-dir", str(src), "--output-dir", str(tmp_path / "o")]
        ).stdout
    )
    assert again["function"]["size"] == int(size)  # current: the actual size
    assert abs(plan["function"]["estimated_size"] - int(size)) < int(size) * 0.25


def test_human_sizes() -> None:
    assert [human(n) for n in (0, 1023, 1024, 1536, 10 * 1024 * 1024, 5 * 1024**3)] == [
        "0 B",
        "1023 B",
        "1.0 KB",
        "1.5 KB",
        "10.0 MB",
        "5120.0 MB",
    ]
