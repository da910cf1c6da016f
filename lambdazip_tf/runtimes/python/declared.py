"""What a Python function declares it needs: `[project].dependencies` in pyproject.toml (PEP
621), Poetry's `[tool.poetry.dependencies]`, or a requirements file (docs/design.md, "Python").

Dependency groups and dev dependencies are never read: only production dependencies ship.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename

from ...core.filesystem import ObservedFileSystem
from ...errors import DependencyError

PYPROJECT = "pyproject.toml"
REQUIREMENTS = "requirements.txt"
# Requirements files for something other than production, never taken as the declaration
# (requirements-dev.txt, requirements_test.txt, requirements.docs.txt).
_NOT_PRODUCTION = re.compile(
    r"[-_.](dev|develop|test|tests|testing|lint|docs?|ci|typing|build)([-_.]|$)", re.IGNORECASE
)


class Declaration(NamedTuple):
    """The file that declares the dependencies, and what it declares."""

    path: str  # the pyproject.toml or requirements file
    requirements: list[Requirement]
    project: str  # the project's own name ("" when the file names none)
    # Names that may be missing: Poetry's dependencies for a Python or platform it says in its
    # own words, which only the installer could judge.
    optional: frozenset[str] = frozenset()

    @property
    def label(self) -> str:
        """The file's name, where `plan` starts each chain."""
        return os.path.basename(self.path)


def requirements_files(fs: ObservedFileSystem, folder: str) -> list[str]:
    """The production requirements files in `folder`."""
    try:
        return production_requirements(fs.scandir(folder))
    except OSError:
        return []


def production_requirements(entries: Sequence[os.DirEntry[str]]) -> list[str]:
    """Of a folder's entries, its production requirements files: requirements.txt, or the one
    requirements*.txt that is not for development, tests or docs."""
    names = sorted(e.name for e in entries if e.is_file())
    if REQUIREMENTS in names:
        return [REQUIREMENTS]
    found = [
        n
        for n in names
        if n.startswith("requirements")
        and n.endswith(".txt")
        and not _NOT_PRODUCTION.search(n.removesuffix(".txt"))
    ]
    return found if len(found) == 1 else []


def declaration(fs: ObservedFileSystem, folder: str) -> Declaration | None:
    """The folder's declaration: pyproject.toml's dependencies when it declares some (PEP 621
    or Poetry), else its requirements file (beside a pyproject.toml that only names the
    project), else the pyproject.toml's empty list; None when it has neither."""
    pyproject = os.path.join(folder, PYPROJECT)
    found = _pyproject(fs, pyproject) if fs.isfile(pyproject) else None
    if found is not None and found.requirements:
        return found
    for name in requirements_files(fs, folder):
        path = os.path.join(folder, name)
        listed = list(_requirements(fs, path, ()))
        return Declaration(path, listed, found.project if found is not None else "")
    return found


def read_toml(fs: ObservedFileSystem, path: str) -> dict[str, Any]:
    """A TOML file as a dict; a one-line DependencyError when it is not valid TOML."""
    try:
        return tomllib.loads(fs.read_bytes(path).decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise DependencyError(f"{path} is not valid TOML ({exc})") from None


def _pyproject(fs: ObservedFileSystem, path: str) -> Declaration | None:
    data = read_toml(fs, path)
    project = data.get("project")
    name = ""
    if isinstance(project, dict):
        name = str(project.get("name") or "")
        if "dependencies" in project:
            listed = project["dependencies"]
            if not isinstance(listed, list) or not all(isinstance(r, str) for r in listed):
                raise DependencyError(f"{path}: [project].dependencies must be a list of strings")
            return Declaration(path, [_requirement(r, path) for r in listed], name)
    poetry = data.get("tool", {}).get("poetry", {}) if isinstance(data.get("tool"), dict) else {}
    table = poetry.get("dependencies") if isinstance(poetry, dict) else None
    if isinstance(table, dict):
        return _poetry(table, path, name or str(poetry.get("name") or ""))
    if isinstance(project, dict) and "dependencies" in (project.get("dynamic") or []):
        return None  # declared elsewhere (a requirements file, through the build backend)
    return Declaration(path, [], name) if isinstance(project, dict) else None


def _poetry(table: dict[str, Any], path: str, name: str) -> Declaration:
    """Poetry's own table: "python" is the interpreter, optional ones are extras', a table's
    `extras` and `markers` are kept; one limited to a `python` or `platform` in Poetry's words
    may be missing, since only Poetry's installer judges those."""
    requirements, optional = [], set()
    for dep, spec in table.items():
        if dep == "python":
            continue
        for one in spec if isinstance(spec, list) else [spec]:  # several constraints: any
            if isinstance(one, dict) and one.get("optional"):
                continue
            extras = one.get("extras") if isinstance(one, dict) else None
            markers = one.get("markers") if isinstance(one, dict) else None
            text = dep + (f"[{','.join(extras)}]" if isinstance(extras, list) and extras else "")
            if isinstance(markers, str) and markers:
                text += f"; {markers}"
            requirements.append(_requirement(text, path))
            if isinstance(one, dict) and ("python" in one or "platform" in one):
                optional.add(str(canonicalize_name(dep)))
    return Declaration(path, requirements, name, frozenset(optional))


def _requirement(text: str, where: str) -> Requirement:
    try:
        return Requirement(text)
    except InvalidRequirement as exc:
        raise DependencyError(f"{where}: {text!r} is not a valid requirement ({exc})") from None


# Options a requirements line may carry after its requirement (pip's per-requirement options).
_LINE_OPTIONS = re.compile(r"\s+(--hash|--config-settings|--global-option)[=\s].*$")
_INCLUDE = re.compile(r"^(-r|--requirement)(?:\s+|=)(.+)$")
_EDITABLE = re.compile(r"^(-e|--editable)(?:\s+|=)(.+)$")
_ENV_VAR = re.compile(r"\$\{([A-Z0-9_]+)\}")


def _requirements(
    fs: ObservedFileSystem, path: str, seen: tuple[str, ...]
) -> Iterator[Requirement]:
    """A requirements file's requirements, its -r includes followed.

    By hand rather than with pip's parser: pip's is not a public API, and the part needed here
    is small: continuation lines, comments, `-r` includes, per-line options, environment
    variables; constraints (`-c`) and index options add no requirement."""
    if path in seen:
        raise DependencyError(f"{path} includes itself (through {' -> '.join(seen)})")
    try:
        text = fs.read_bytes(path).decode("utf-8")
    except FileNotFoundError:
        where = f", included by {seen[-1]}" if seen else ""
        raise DependencyError(f"{path} does not exist{where}") from None
    except UnicodeDecodeError:
        raise DependencyError(f"{path} is not UTF-8 text") from None
    folder = os.path.dirname(path)
    for raw in _logical_lines(text):
        line = _ENV_VAR.sub(lambda m: os.environ.get(m.group(1), m.group(0)), raw)
        included = _INCLUDE.match(line)
        if included:
            yield from _requirements(
                fs, os.path.join(folder, included.group(2).strip()), (*seen, path)
            )
            continue
        editable = _EDITABLE.match(line)
        if editable:
            yield _local(fs, editable.group(2).strip(), folder, path)
            continue
        if line.startswith("-"):
            continue  # -c constraints, --index-url, --find-links, --only-binary, ...
        spec = _LINE_OPTIONS.sub("", line)
        if spec.startswith((".", "/")) or "://" in spec.split(" @ ")[0]:
            yield _local(fs, spec, folder, path)
            continue
        yield _requirement(spec, path)


def _logical_lines(text: str) -> Iterator[str]:
    """Lines without comments, continuations joined, blank ones dropped."""
    pending = ""
    for raw in text.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw)
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line:
            yield line
    if pending.strip():
        yield pending.strip()


def _local(fs: ObservedFileSystem, spec: str, folder: str, where: str) -> Requirement:
    """A requirement given as a path or URL: named by its wheel's or sdist's file name, or by
    the project folder's pyproject.toml."""
    target = spec.split("#", 1)[0].strip().strip("'\"").removeprefix("file://")
    extras = re.search(r"\[([^\]]*)\]$", target)
    if extras:  # ../lib[aws]: the project at ../lib, with an extra
        target = target[: extras.start()]
    base = os.path.basename(target.rstrip("/"))
    try:
        if base.endswith(".whl"):
            return Requirement(str(parse_wheel_filename(base)[0]))
        if base.endswith((".tar.gz", ".zip")):
            return Requirement(str(parse_sdist_filename(base)[0]))
    except ValueError:
        pass
    local = os.path.join(folder, target)
    pyproject = os.path.join(local, PYPROJECT)
    if fs.isfile(pyproject):
        project = read_toml(fs, pyproject).get("project")
        if isinstance(project, dict) and project.get("name"):
            named = str(canonicalize_name(str(project["name"])))
            return Requirement(named + (f"[{extras.group(1)}]" if extras else ""))
    raise DependencyError(
        f"{where}: cannot tell which distribution {spec!r} installs; name it "
        "(`name @ URL`) or give its project folder a pyproject.toml with [project].name"
    )
