"""What a build produces and where: the output folder, artifact names, and the result.

No pydantic and nothing heavy here: the speed layer's fast paths answer from a snapshot with
these same functions before the request is validated (docs/design.md, "The result").
"""

from __future__ import annotations

import binascii
import hashlib
import os
from pathlib import PurePath
from typing import NamedTuple

from .._version import __version__

DEFAULT_OUTPUT_DIR = ".lambdazip"
LAYER_SUFFIX = "-layer"


def output_folder(
    output_path: str | os.PathLike[str] | None,
    output_dir: str | os.PathLike[str] | None,
    cwd: str | os.PathLike[str],
) -> str:
    """Where artifacts and the cache go: beside output_path, or output_dir, or ./.lambdazip."""
    if output_path:
        return os.path.dirname(os.path.join(cwd, output_path))
    return os.path.join(cwd, output_dir or DEFAULT_OUTPUT_DIR)


class Naming(NamedTuple):
    """Where an artifact goes: `fixed` (output_path), or folder/stem-<content hash>.zip.

    Plain strings, so that the change path can name a new artifact from a snapshot alone.
    """

    fixed: str | None
    folder: str
    stem: str

    def path(self, digest: str) -> str:
        """The artifact's path for a content hash."""
        if self.fixed is not None:
            return self.fixed
        return os.path.join(self.folder, f"{self.stem}-{digest[:16]}.zip")

    @property
    def prefix(self) -> str:
        """What the names of this artifact's earlier versions start with."""
        return os.path.basename(self.path(""))[:-4]


def naming_for(output_dir: str, fixed_name: str | None, name: str, layer: bool) -> Naming:
    """The naming of the function's or the layer's artifact.

    `fixed_name` is output_path's file name: the function's zip takes it, and the layer's goes
    beside it as NAME-layer.zip. Otherwise both are named by content hash after `name`.
    """
    folder = os.path.abspath(output_dir)
    if fixed_name is not None:
        path = PurePath(folder, fixed_name)
        if layer:
            path = path.with_name(f"{path.stem}{LAYER_SUFFIX}{path.suffix or '.zip'}")
        return Naming(str(path), folder, path.stem)
    return Naming(None, folder, f"{name}{LAYER_SUFFIX}" if layer else name)


class ArtifactFacts(NamedTuple):
    """One artifact as built or found current."""

    path: str
    content_hash: str
    files_hash: str  # the manifest without the options (contenthash.Hashes)
    sha256: bytes
    md5: str
    size: int
    file_count: int
    symlink_count: int
    unzipped_size: int
    reused: bool = False

    @property
    def base64sha256(self) -> str:
        """The format of Terraform's filebase64sha256() and Lambda's source_code_hash."""
        # binascii rather than base64: the same bytes, without importing base64 on the no-op.
        return binascii.b2a_base64(self.sha256, newline=False).decode()


def combined_hash(function: str, layer: str | None) -> str:
    """The content hash of a request: the function's, combined with the layer's if any."""
    if layer is None:
        return function
    return hashlib.sha256(f"{function}:{layer}".encode()).hexdigest()


def build_options(options: str) -> str:
    """The result's `build_options`: the byte options in words (contenthash.ByteOptions.
    described) and the tool's version, all that makes the same files into other bytes."""
    return f"lambdazip-tf {__version__}, {options}"


def result_strings(
    function: ArtifactFacts, layer: ArtifactFacts | None, options: str
) -> dict[str, str]:
    """The result (docs/design.md, "The result"): a flat object of strings. Counts and the
    unzipped size cover both zips; the layer has no hex sha256 or md5 of its own. `options`
    is build_options' text."""
    parts = [function] if layer is None else [function, layer]
    result = {
        "output_path": function.path,
        "output_base64sha256": function.base64sha256,
        "output_sha256": function.sha256.hex(),
        "output_md5": function.md5,
        "output_size": str(function.size),
        "content_hash": combined_hash(
            function.content_hash, layer.content_hash if layer is not None else None
        ),
        "files_hash": combined_hash(
            function.files_hash, layer.files_hash if layer is not None else None
        ),
        "build_options": options,
        "file_count": str(sum(p.file_count for p in parts)),
        "symlink_count": str(sum(p.symlink_count for p in parts)),
        "unzipped_size": str(sum(p.unzipped_size for p in parts)),
    }
    if layer is not None:
        result["layer_output_path"] = layer.path
        result["layer_output_base64sha256"] = layer.base64sha256
        result["layer_output_size"] = str(layer.size)
    return result
