"""The request and the result (docs/design.md, "The request", "The result").

Terraform's external data source sends every value as a string and lists `jsonencode`d, so the
model accepts those forms next to native JSON (request files written by people). Unknown keys are
an error: a misspelt key must not silently fall back to a default.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import RequestError
from .compress import DEFAULT_LEVEL

_NODE_MAJOR = re.compile(r"^(?:nodejs)?(\d+)(?:\.x)?$")
_PYTHON_VERSION = re.compile(r"^(?:python)?3\.(\d+)$")
# The Python runtimes Lambda offers (python3.9 is deprecated: no new functions).
PYTHON_MINORS = (10, 11, 12, 13, 14)
# Keys that only one runtime reads: given for another, they are a mistake to name.
RUNTIME_KEYS = {"python_version": "python", "site_packages": "python"}
_NOT_A_LIST = "must be a list of strings, jsonencode()d as Terraform sends lists"


class Request(BaseModel):
    """One build request; field descriptions double as `--help` and Terraform variable docs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source_dir: Path = Field(description="The function's folder.")
    package_dir: Path | None = Field(
        default=None,
        description="The folder that declares the dependencies, when it is not source_dir: "
        "for nodejs its package.json and node_modules (a TypeScript project's root, with "
        "source_dir its dist/), which go into the zip's top-level node_modules; for python "
        "its pyproject.toml or requirements file (a src/ layout) (default: source_dir).",
    )
    output_dir: Path | None = Field(
        default=None,
        description="Folder for artifacts (default ./.lambdazip). "
        "Excluded from the zip when it lies inside source_dir; never source_dir itself.",
    )
    output_path: Path | None = Field(
        default=None,
        description="Exact artifact path; overrides output_dir and the content-hash file name. "
        "Not directly in source_dir.",
    )
    name: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$",
        description="Artifact base name (default: the basename of source_dir).",
    )
    runtime: Literal["nodejs", "python", "files"] | None = Field(
        default=None,
        description="nodejs or python (crawl the installed dependencies) or files (the folder "
        "as it is); default nodejs when package.json exists, else python when pyproject.toml, "
        "a requirements*.txt or installed *.dist-info folders do, else files.",
    )
    excludes: tuple[str, ...] = Field(
        default=(),
        description="Extra gitignore-style patterns over archive paths; "
        "a leading ! re-includes a default exclude.",
    )
    includes: tuple[str, ...] = Field(
        default=(),
        description="gitignore-style patterns over archive paths that force files in, matched "
        "after the excludes; a pattern starting node_modules/ reaches files no package "
        "declares (generated code).",
    )
    exclude_packages: tuple[str, ...] | None = Field(
        default=None,
        description="Package name globs to leave out (default: what the runtime provides, "
        "@aws-sdk/* for nodejs; [] ships them).",
    )
    include_dev_dependencies: bool = Field(default=False, description="Also ship devDependencies.")
    layer: bool = Field(
        default=False,
        description="Put dependencies in a separate layer zip under nodejs/node_modules/.",
    )
    node_modules_link: str | None = Field(
        default=None,
        description="Absolute path; adds a link node_modules -> PATH to the function zip "
        "(ESM with dependencies in a layer: /opt/nodejs/node_modules).",
    )
    compression_level: int = Field(
        default=DEFAULT_LEVEL,
        ge=0,
        le=9,
        description="Deflate level (libdeflate), 0 (stored) to 9.",
    )
    symlinks: Literal["preserve", "dereference"] = Field(
        default="preserve",
        description="preserve: store links inside the artifact as links; "
        "dereference: store no links, each link's target content at its path, dependency "
        "links (pnpm, npm's linked installs) included.",
    )
    architecture: Literal["x86_64", "arm64"] = Field(
        default="x86_64",
        description="x86_64 or arm64, as aws_lambda_function.architectures spells it: the "
        "platform whose native code the zip may hold.",
    )
    node_version: str | None = Field(
        default=None,
        description="The Node.js major version the function runs on (20, or the runtime "
        "nodejs20.x): packages whose engines.node exclude it are warned of.",
    )
    python_version: str | None = Field(
        default=None,
        description="The Python version the function runs on (3.12, or the runtime "
        "python3.12): what its installed packages must have been built for (default: the "
        "virtual environment's).",
    )
    site_packages: Path | None = Field(
        default=None,
        description="The folder of installed Python distributions: a pip or uv --target "
        "folder, or a virtual environment's root (default: source_dir when it holds "
        "*.dist-info folders, else .venv in package_dir or source_dir).",
    )
    allowed_roots: tuple[Path, ...] | None = Field(
        default=None,
        description="Folders outside source_dir whose files may be pulled in through links "
        "(default: the nearest workspace or repository root).",
    )

    def version_for(self, runtime: str) -> str | None:
        """The language version the request gives for `runtime`, normalised: "20" for
        nodejs's node_version, "3.12" for python's python_version."""
        if runtime == "nodejs" and self.node_version is not None:
            return str(node_major(self.node_version))
        if runtime == "python" and self.python_version is not None:
            return f"3.{python_minor(self.python_version)}"
        return None

    @property
    def layer_link(self) -> tuple[str, str] | None:
        """The link node_modules_link adds to the function zip: (archive path, target)."""
        return None if self.node_modules_link is None else ("node_modules", self.node_modules_link)

    @field_validator("excludes", "includes", "exclude_packages", "allowed_roots", mode="before")
    @classmethod
    def _decode_list(cls, value: Any) -> Any:
        # Terraform's query is map(string), so lists arrive `jsonencode`d.
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise ValueError(_NOT_A_LIST) from None
            if value is None:
                return None
        if not isinstance(value, list | tuple) or not all(isinstance(i, str) for i in value):
            raise ValueError(_NOT_A_LIST)
        return value

    @field_validator("include_dev_dependencies", "layer", mode="before")
    @classmethod
    def _exact_bool(cls, value: Any) -> Any:
        # Exactly what Terraform's tostring() makes of a bool: pydantic alone would also take
        # "yes", "on", "1" or "t", and a typo would pass as a choice.
        if isinstance(value, bool):
            return value
        if value in ("true", "false"):
            return value == "true"
        raise ValueError("must be true or false (what Terraform's tostring() gives for a bool)")

    @field_validator("source_dir", mode="before")
    @classmethod
    def _source_given(cls, value: Any) -> Any:
        # Path("") would silently mean the current folder.
        if value == "":
            raise ValueError("must not be empty")
        return value

    @field_validator(
        "package_dir",
        "output_dir",
        "output_path",
        "name",
        "runtime",
        "node_modules_link",
        "node_version",
        "python_version",
        "site_packages",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # A Terraform variable left at "" means "not set": the module cannot send null in a map.
        return None if value == "" else value

    @field_validator("node_version")
    @classmethod
    def _node_major(cls, value: str | None) -> str | None:
        if value is not None and node_major(value) is None:
            raise ValueError(
                "must be a Node.js major version such as 20, or a runtime such as nodejs20.x"
            )
        return value

    @field_validator("python_version")
    @classmethod
    def _python_minor(cls, value: str | None) -> str | None:
        if value is not None and python_minor(value) is None:
            low, high = PYTHON_MINORS[0], PYTHON_MINORS[-1]
            raise ValueError(
                f"must be a Python version Lambda runs, 3.{low} to 3.{high}, such as 3.12, or a "
                "runtime such as python3.12"
            )
        return value

    @field_validator("node_modules_link")
    @classmethod
    def _absolute_link(cls, value: str | None) -> str | None:
        if value is not None and (not value.startswith("/") or "\0" in value):
            raise ValueError("must be an absolute path such as /opt/nodejs/node_modules")
        if value is not None and not _encodable(value):
            raise ValueError("must be valid UTF-8 text")
        return value

    @field_validator("source_dir", "output_dir", "output_path", "package_dir", "site_packages")
    @classmethod
    def _valid_path(cls, value: Path | None) -> Path | None:
        if value is not None and "\0" in str(value):
            raise ValueError("must not contain a NUL character")
        if value is not None and not _encodable(str(value)):
            raise ValueError("is not a valid file name on this system")
        return value

    @field_validator("allowed_roots")
    @classmethod
    def _valid_roots(cls, value: tuple[Path, ...] | None) -> tuple[Path, ...] | None:
        for root in value or ():
            if "\0" in str(root) or not _encodable(str(root)):
                raise ValueError(f"{str(root)[:60]!r} is not a valid file name on this system")
        return value


def node_major(value: str) -> int | None:
    """The major version in node_version's "20", "20.x" or "nodejs20.x"; None when it is none
    of these."""
    found = _NODE_MAJOR.match(value.strip())
    return int(found.group(1)) if found else None


def python_minor(value: str) -> int | None:
    """The minor version in python_version's "3.12" or "python3.12", when Lambda runs it; None
    otherwise."""
    found = _PYTHON_VERSION.match(value.strip())
    minor = int(found.group(1)) if found else None
    return minor if minor in PYTHON_MINORS else None


def _encodable(text: str) -> bool:
    # JSON can carry lone surrogates ("\ud800"); the OS cannot take them as a file name.
    try:
        os.fsencode(text)
        text.encode("utf-8", "surrogateescape")
    except UnicodeError:
        return False
    return True


def parse_request(data: Any) -> Request:
    """Validate a decoded JSON request, turning every problem into one RequestError line."""
    if not isinstance(data, dict):
        raise RequestError(f"the request must be a JSON object, got {_json_kind(data)}")
    known = list(Request.model_fields)
    for key in data:
        if key not in Request.model_fields:
            close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(known)}"
            raise RequestError(f"unknown request key {_short(str(key))!r}{hint}", key=str(key))
    try:
        return Request.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = str(first["loc"][0]) if first["loc"] else "request"
        raise RequestError(_in_words(key, first), key=key) from None


# pydantic's words for what is wrong, in the project's (the value errors are already ours).
_WORDS = {
    "compression_level": "must be a whole number from 0 to 9",
    "name": "must be letters, digits, '.', '_' or '-', not starting with '.' or '-', "
    "at most 128 characters",
    "runtime": "must be nodejs, python or files",
    "symlinks": "must be preserve or dereference",
    "architecture": "must be x86_64 or arm64 (as aws_lambda_function.architectures spells them)",
}


def _in_words(key: str, error: Any) -> str:
    if error["type"] == "missing":
        return f"{key} is required"
    if error["type"] == "value_error":
        detail = str(error["msg"]).removeprefix("Value error, ")
    elif key in _WORDS:
        detail = _WORDS[key]
    elif error["type"] in ("string_type", "path_type"):
        detail = "must be a string"
    else:
        detail = str(error["msg"])
    return f"request key {key!r}: {detail}"


def _json_kind(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Result(BaseModel):
    """What a build returns; every value is a string in external mode."""

    model_config = ConfigDict(frozen=True)

    output_path: str
    output_base64sha256: str
    output_sha256: str
    output_md5: str
    output_size: str
    content_hash: str
    files_hash: str
    build_options: str
    file_count: str
    symlink_count: str
    unzipped_size: str
    layer_output_path: str | None = None
    layer_output_base64sha256: str | None = None
    layer_output_size: str | None = None

    def as_strings(self) -> dict[str, str]:
        """The external-program answer: a flat object of strings, absent keys left out."""
        return {key: value for key, value in self.model_dump().items() if value is not None}
