"""The repository explains itself: every section of docs/design.md that code cites exists, and
every request key is documented."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from helpers import ROOT

from lambdazip_tf.core.request import Request

CITATION = re.compile(r'docs/design\.md, ((?:"[^"]+"(?:,| and|)\s*)+)\)')


def _sections() -> set[str]:
    text = (ROOT / "docs" / "design.md").read_text()
    return {line[3:].strip() for line in text.splitlines() if line.startswith("## ")}


def test_every_cited_section_of_the_design_exists() -> None:
    sections = _sections()
    cited: dict[str, set[str]] = {}
    for folder, pattern in (("lambdazip_tf", "*.py"), ("tests", "*.py"), ("terraform", "*.tf")):
        for path in (ROOT / folder).rglob(pattern):
            text = " ".join(path.read_text().split())  # citations may wrap across lines
            for match in CITATION.finditer(text):
                for name in re.findall(r'"([^"]+)"', match.group(1)):
                    cited.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    assert len(cited) >= 10, cited  # the pattern finds the citations
    missing = {name: where for name, where in cited.items() if name not in sections}
    assert not missing


def test_nothing_cites_a_document_outside_the_repository() -> None:
    outside = re.compile(r"\bDESIGN \d|\bissue \d+\b|STYLE\.md|shared/DESIGN")
    # The repository's own files: what git tracks, not what the examples and benchmarks
    # installed beside them.
    listed = subprocess.run(
        ["git", "ls-files", "lambdazip_tf", "tests", "benchmarks", "docs", "terraform", "examples"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert len(listed) > 50, listed
    for name in listed:
        path = ROOT / name
        if path.suffix in (".py", ".md", ".tf") and path != Path(__file__).resolve():
            found = outside.findall(path.read_text())
            assert not found, (path, found)
    assert not outside.findall((ROOT / "README.md").read_text())


def test_every_request_key_is_in_the_readme_and_the_design() -> None:
    for doc in (ROOT / "README.md", ROOT / "docs" / "design.md"):
        rows = set(re.findall(r"^\| `(\w+)` \|", doc.read_text(), re.MULTILINE))
        assert set(Request.model_fields) <= rows, (doc, set(Request.model_fields) - rows)
