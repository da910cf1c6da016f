"""`lambdazip-tf restore`: a saved plan's artifacts, built and checked before apply
(docs/design.md, "The Terraform module").

Plans here are documents shaped as `terraform show -json` gives them, with results planned by a
build in this process: no Terraform.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from helpers import external, node_function, pkg, write

from lambdazip_tf import pipeline
from lambdazip_tf.cli.external import validated
from lambdazip_tf.cli.restore import data_sources, restore
from lambdazip_tf.pipeline import build
from lambdazip_tf.speed import facts

OURS = {"output_base64sha256": "x" * 44, "content_hash": "c" * 64}  # what marks our result


def _resource(
    address: str,
    query: dict[str, str] | None = None,
    result: dict[str, str] | None = None,
    *,
    mode: str = "data",
    kind: str = "external",
    working_dir: str | None = None,
) -> dict[str, Any]:
    values = {"query": query, "result": result, "working_dir": working_dir}
    return {"address": address, "mode": mode, "type": kind, "values": values}


def _plan(
    resources: list[dict[str, Any]], children: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A `terraform show -json` plan whose prior state holds these resources and modules."""
    root = {"resources": resources, "child_modules": children or []}
    return {"prior_state": {"values": {"root_module": root}}}


def _planned(query: dict[str, str], cwd: Path | None = None) -> dict[str, str]:
    """The result the data source recorded in the plan: a build of the same query."""
    return build(validated(query), cwd).strings()


def _function(tmp_path: Path, name: str = "fn") -> dict[str, str]:
    src = tmp_path / name
    write(src / "index.js", f"exports.handler = async () => {name!r};\n")
    return {"source_dir": str(src), "output_dir": str(tmp_path / "out")}


def _restore(tmp_path: Path, plan: dict[str, Any]) -> list[str]:
    """Restore from a plan file; the lines it wrote."""
    plan_file = write(tmp_path / "plan.json", json.dumps(plan))
    err = io.StringIO()
    assert restore(str(plan_file), io.StringIO(), err) == 0
    return err.getvalue().splitlines()


def test_data_sources_are_the_external_ones_with_our_result_in_every_module() -> None:
    query = {"source_dir": "fn"}
    grandchild = {"resources": [_resource("module.a.module.b.data.external.build", query, OURS)]}
    child = {
        "resources": [_resource("module.a.data.external.build", query, OURS)],
        "child_modules": [grandchild],
    }
    plan = _plan(
        [
            _resource("data.external.build", query, OURS),
            _resource("external.managed", query, OURS, mode="managed"),
            _resource("data.http.build", query, OURS, kind="http"),
            _resource("data.external.other", query, {"output_base64sha256": "x"}),
            _resource("data.external.unknown", query, None),  # read at apply time
            _resource("data.external.no_query", None, OURS),
        ],
        [child],
    )
    found = list(data_sources(plan))
    assert [address for address, _ in found] == [
        "data.external.build",
        "module.a.data.external.build",
        "module.a.module.b.data.external.build",
    ]
    assert found[0][1] is plan["prior_state"]["values"]["root_module"]["resources"][0]["values"]


@pytest.mark.parametrize(
    "plan",
    [
        None,
        [],
        {},
        {"prior_state": None},
        {"prior_state": {"values": {}}},
        {"planned_values": _plan([_resource("data.external.build", {"a": "b"}, OURS)])},
    ],
)
def test_anything_but_a_plans_prior_state_holds_no_data_source(plan: Any) -> None:
    assert list(data_sources(plan)) == []


def test_a_plan_without_our_data_source_is_a_one_line_error(tmp_path: Path) -> None:
    plan = _plan([_resource("aws_lambda_function.fn", {"a": "b"}, OURS, mode="managed")])
    plan_file = write(tmp_path / "plan.json", json.dumps(plan))
    with pytest.raises(Exception, match="holds no lambdazip-tf data source") as raised:
        restore(str(plan_file), io.StringIO(), io.StringIO())
    message = str(raised.value)
    assert str(plan_file) in message
    assert "terraform show -json" in message
    assert "\n" not in message


def test_each_artifact_is_rebuilt_where_missing_and_found_current_where_present(
    tmp_path: Path,
) -> None:
    one, two = _function(tmp_path, "one"), _function(tmp_path, "two")
    planned_one, planned_two = _planned(one), _planned(two)
    Path(planned_one["output_path"]).unlink()  # a clean runner, for one of them
    plan = _plan(
        [_resource("data.external.one", one, planned_one)],
        [{"resources": [_resource("module.two.data.external.build", two, planned_two)]}],
    )
    first, second = _restore(tmp_path, plan)
    assert first == (
        f"lambdazip-tf: data.external.one: {planned_one['output_path']} was rebuilt and matches "
        f"the plan ({planned_one['output_base64sha256']})"
    )
    assert second.startswith("lambdazip-tf: module.two.data.external.build: ")
    assert "was current" in second
    assert Path(planned_one["output_path"]).is_file()
    assert all("was current" in line for line in _restore(tmp_path, plan))


def test_the_plan_can_come_from_stdin(tmp_path: Path) -> None:
    query = _function(tmp_path)
    plan = _plan([_resource("data.external.build", query, _planned(query))])
    err = io.StringIO()
    assert restore("-", io.StringIO(json.dumps(plan)), err) == 0
    assert "data.external.build" in err.getvalue()


def test_relative_paths_are_taken_from_the_data_sources_working_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    infra = tmp_path / "infra"
    write(infra / "fn" / "index.js", "exports.handler = async () => 1;\n")
    query = {"source_dir": "fn", "output_dir": "out"}
    planned = _planned(query, infra)
    Path(planned["output_path"]).unlink()
    monkeypatch.chdir(tmp_path)
    plan = _plan([_resource("data.external.build", query, planned, working_dir="infra")])
    (line,) = _restore(tmp_path, plan)
    assert "was rebuilt and matches the plan" in line
    assert Path(planned["output_path"]).is_file()
    assert Path(planned["output_path"]).parent == infra / "out"


@pytest.mark.parametrize(
    ("planned_differently", "cause"),
    [
        ({}, "the same files and options gave other bytes"),
        ({"files_hash": "0" * 64}, "the sources changed between plan and apply"),
        ({"build_options": "lambdazip-tf 0.0.0, level 1"}, "the same files were written"),
    ],
)
def test_an_artifact_other_than_planned_fails_naming_the_cause(
    tmp_path: Path, planned_differently: dict[str, str], cause: str
) -> None:
    query = _function(tmp_path)
    planned = {**_planned(query), "output_base64sha256": "x" * 44, **planned_differently}
    plan = _plan([_resource("data.external.build", query, planned)])
    plan_file = write(tmp_path / "plan.json", json.dumps(plan))
    with pytest.raises(Exception, match="but the plan expected") as raised:
        restore(str(plan_file), io.StringIO(), io.StringIO())
    assert cause in str(raised.value)


def test_a_planned_layer_is_checked_too(tmp_path: Path) -> None:
    src = node_function(tmp_path / "fn", dependencies={"dep": "1"})
    pkg(src / "node_modules" / "dep", "dep")
    query = {"source_dir": str(src), "output_dir": str(tmp_path / "out"), "layer": "true"}
    planned = _planned(query)
    plan = _plan([_resource("data.external.build", query, planned)])
    assert "was current" in _restore(tmp_path, plan)[0]
    plan = _plan(
        [
            _resource(
                "data.external.build",
                query,
                {**planned, "layer_output_base64sha256": "y" * 44},
            )
        ]
    )
    plan_file = write(tmp_path / "plan.json", json.dumps(plan))
    with pytest.raises(Exception, match=r"layer artifact .* but the plan expected"):
        restore(str(plan_file), io.StringIO(), io.StringIO())


def test_on_the_machine_that_planned_the_data_sources_snapshot_answers(
    tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The data source ran in Terraform's folder with no working_dir: restore there finds its
    snapshot (the folder is part of its key) and checks the sources with a stat per file, no
    build (docs/design.md, "The Terraform module")."""
    monkeypatch.setattr(facts, "RACY_NS", 0)
    monkeypatch.chdir(tmp_path)
    query = _function(tmp_path)
    ran = external(run_cli, query)
    assert ran.code == 0, ran.stderr
    plan = _plan([_resource("data.external.fn", query, ran.json())])

    def no_build(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("restore built instead of checking the snapshot")

    monkeypatch.setattr(pipeline, "build", no_build)
    (line,) = _restore(tmp_path, plan)
    assert "was current and matches the plan" in line
