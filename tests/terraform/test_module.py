"""The Terraform module's files agree with the request model, its README and the examples.

Parsed with python-hcl2; `module_doc_tables()` renders the README's inputs and outputs tables, so
`python -c "import tests.terraform.test_module as t; print(t.module_doc_tables())"`
regenerates them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import hcl2
import pytest
from helpers import EXAMPLES, ROOT

from lambdazip_tf.core.request import Request, Result

MODULE = ROOT / "terraform"


def _blocks(path: Path, kind: str) -> dict[str, dict[str, Any]]:
    with path.open() as f:
        data = hcl2.load(f)
    out: dict[str, dict[str, Any]] = {}
    for block in data.get(kind, []):
        for name, body in block.items():
            out[name.strip('"')] = body
    return out


def _text(value: Any) -> str:
    return str(value).strip('"') if value is not None else ""


def variables() -> dict[str, dict[str, Any]]:
    """The module's variables, by name."""
    return _blocks(MODULE / "variables.tf", "variable")


def outputs() -> dict[str, dict[str, Any]]:
    """The module's outputs, by name."""
    return _blocks(MODULE / "outputs.tf", "output")


def _default(body: dict[str, Any]) -> str:
    if "default" not in body:
        return "required"
    value = body["default"]
    if isinstance(value, list):
        value = [_text(item) for item in value]
    elif isinstance(value, str):
        value = _text(value)
    return f"`{json.dumps(value)}`"


def module_doc_tables() -> str:
    """The inputs and outputs tables of terraform/README.md."""
    lines = ["| Name | Type | Default | Description |", "|---|---|---|---|"]
    for name, body in variables().items():
        kind = str(body["type"]).removeprefix("${").removesuffix("}")
        description = _text(body["description"]).replace('\\"', '"')
        lines.append(f"| `{name}` | `{kind}` | {_default(body)} | {description} |")
    lines += ["", "| Name | Description |", "|---|---|"]
    for name, body in outputs().items():
        lines.append(f"| `{name}` | {_text(body['description'])} |")
    return "\n".join(lines) + "\n"


def test_every_variable_is_typed_described_and_matches_a_request_key() -> None:
    found = variables()
    for name, body in found.items():
        assert body.get("type"), f"variable {name} has no type"
        assert _text(body.get("description")), f"variable {name} has no description"
        assert name == name.lower() and " " not in name
    assert set(found) - {"program"} == set(Request.model_fields)


def test_the_query_sends_exactly_the_request_keys() -> None:
    with (MODULE / "main.tf").open() as f:
        locals_ = hcl2.load(f)["locals"][0]
    keys = set(re.findall(r"(?:\{|, )(\w+) = ", locals_["request"]))
    assert keys == set(Request.model_fields)


def test_every_output_is_described_waits_for_the_check_and_matches_the_result() -> None:
    found = outputs()
    for name, body in found.items():
        assert _text(body.get("description")), f"output {name} has no description"
        assert body.get("depends_on") == ["${terraform_data.artifact}"], name
    assert set(found) == set(Result.model_fields)


def test_module_readme_tables_are_current() -> None:
    readme = (MODULE / "README.md").read_text()
    inputs, outputs_table = module_doc_tables().split("\n\n")
    for table in (inputs, outputs_table):
        assert table in readme, "regenerate the tables: see tests/terraform/test_module.py"


@pytest.mark.parametrize(
    "example",
    ["commonjs", "esm-layer", "pnpm", "monorepo", "typescript", "python", "pip-target", "no-aws"],
)
def test_examples_parse_and_use_only_declared_variables(example: str) -> None:
    path = EXAMPLES / example / "main.tf"
    modules = _blocks(path, "module")
    assert modules, f"{path} calls no module"
    declared = set(variables())
    for name, body in modules.items():
        assert _text(body["source"]) == "../../terraform"
        used = {key for key in body if not key.startswith("__") and key != "source"}
        assert used <= declared, f"{path}: module {name} sets unknown {used - declared}"
        assert "source_dir" in used
    assert (EXAMPLES / example / "README.md").exists()
    if example == "no-aws":
        return
    functions = _blocks(path, "resource")
    text = path.read_text()
    assert "aws_lambda_function" in text
    assert re.search(r"filename\s*=\s*module\.\w+\.output_path", text)
    assert re.search(r"source_code_hash\s*=\s*module\.\w+\.output_base64sha256", text)
    assert functions
    assert (EXAMPLES / example / "README.md").exists()
