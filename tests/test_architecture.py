"""The architecture beyond what import-linter checks (docs/design.md, "Runtimes", "Code map").

import-linter (`make lint`) keeps the imports pointing downward and the runtimes apart; it
cannot see a language's knowledge written into the runtime-neutral code as a string.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from helpers import ROOT

PACKAGE = ROOT / "lambdazip_tf"
# The runtime-neutral code. core/request.py is the request's schema: its field descriptions,
# which `--help` and the Terraform variables show, document every runtime's keys.
NEUTRAL = [
    *sorted((PACKAGE / "core").glob("*.py")),
    *sorted((PACKAGE / "speed").glob("*.py")),
    PACKAGE / "pipeline.py",
]
NEUTRAL.remove(PACKAGE / "core" / "request.py")
# What only Node.js means: its folder of installed packages and its manifest (a request key
# such as node_modules_link names a key, not the folder).
NODEJS_LITERALS = re.compile(r"\bnode_modules\b|\bpackage\.json\b")


def _literals(path: Path) -> list[tuple[int, str]]:
    """Every string constant in the module's code, docstrings left out (they explain)."""
    tree = ast.parse(path.read_text())
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


@pytest.mark.parametrize("path", NEUTRAL, ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_the_runtime_neutral_code_holds_no_nodejs_literal(path: Path) -> None:
    found = [(line, text) for line, text in _literals(path) if NODEJS_LITERALS.search(text)]
    assert not found, f"{path}: Node.js knowledge belongs in runtimes/nodejs/: {found}"


def test_the_check_finds_a_literal_in_code_and_not_in_a_docstring(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        '"""Mentions node_modules, as a docstring may."""\n'
        'X = f"{1}/node_modules"\n'
        'KEY = "node_modules_link"\n'
        "def f() -> str:\n"
        '    """package.json is fine here."""\n'
        '    return "package.json"\n'
    )
    found = [text for _, text in _literals(module) if NODEJS_LITERALS.search(text)]
    assert found == ["/node_modules", "package.json"]
