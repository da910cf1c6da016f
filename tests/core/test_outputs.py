"""Outputs: the output folder, artifact names and the result (docs/design.md, "The request"
and "The result")."""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import pytest

from lambdazip_tf._version import __version__
from lambdazip_tf.core.outputs import (
    ArtifactFacts,
    build_options,
    combined_hash,
    naming_for,
    output_folder,
    result_strings,
)

DIGEST = "0123456789abcdef" * 4  # a content hash: 64 hex digits

RESULT_KEYS = {
    "output_path",
    "output_base64sha256",
    "output_sha256",
    "output_md5",
    "output_size",
    "content_hash",
    "files_hash",
    "build_options",
    "file_count",
    "symlink_count",
    "unzipped_size",
}
LAYER_KEYS = {"layer_output_path", "layer_output_base64sha256", "layer_output_size"}


def _facts(
    data: bytes, path: str, content: str, files: str, counts: tuple[int, int, int]
) -> ArtifactFacts:
    file_count, symlink_count, unzipped_size = counts
    return ArtifactFacts(
        path=path,
        content_hash=content,
        files_hash=files,
        sha256=hashlib.sha256(data).digest(),
        md5=hashlib.md5(data).hexdigest(),
        size=len(data),
        file_count=file_count,
        symlink_count=symlink_count,
        unzipped_size=unzipped_size,
    )


def test_the_output_folder_is_beside_output_path_else_output_dir_else_dot_lambdazip(
    tmp_path: Path,
) -> None:
    cwd = str(tmp_path)
    assert output_folder("dist/fn.zip", "ignored", cwd) == os.path.join(cwd, "dist")
    assert output_folder(None, "build/out", cwd) == os.path.join(cwd, "build", "out")
    assert output_folder(None, None, cwd) == os.path.join(cwd, ".lambdazip")
    # Absolute paths are taken as they are, whatever the working folder.
    assert output_folder("/srv/art/fn.zip", None, cwd) == "/srv/art"
    assert output_folder(None, "/srv/art", cwd) == "/srv/art"


def test_an_artifact_named_by_content_hash_takes_its_first_16_hex_digits(tmp_path: Path) -> None:
    naming = naming_for(str(tmp_path / "out"), None, "api", layer=False)
    layer = naming_for(str(tmp_path / "out"), None, "api", layer=True)
    assert naming.path(DIGEST) == str(tmp_path / "out" / "api-0123456789abcdef.zip")
    assert layer.path(DIGEST) == str(tmp_path / "out" / "api-layer-0123456789abcdef.zip")
    assert naming.path(DIGEST) != naming.path("f" * 64)  # another content, another name


def test_a_relative_output_dir_is_made_absolute_in_the_naming(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    naming = naming_for("out", None, "api", layer=False)
    assert naming.folder == str(tmp_path / "out")
    assert os.path.isabs(naming.path(DIGEST))


def test_output_path_names_the_function_zip_whatever_its_content_and_the_layer_goes_beside_it(
    tmp_path: Path,
) -> None:
    folder = str(tmp_path / "dist")
    function = naming_for(folder, "fn.zip", "ignored", layer=False)
    layer = naming_for(folder, "fn.zip", "ignored", layer=True)
    assert function.path(DIGEST) == function.path("f" * 64) == str(tmp_path / "dist" / "fn.zip")
    assert layer.path(DIGEST) == layer.path("f" * 64) == str(tmp_path / "dist" / "fn-layer.zip")
    # A name without a suffix: the layer is still a .zip.
    bare = naming_for(folder, "fn", "ignored", layer=True)
    assert bare.path(DIGEST) == str(tmp_path / "dist" / "fn-layer.zip")


@pytest.mark.parametrize("fixed", [None, "fn.zip"])
@pytest.mark.parametrize("layer", [False, True])
def test_every_version_of_an_artifact_starts_with_its_prefix(
    tmp_path: Path, fixed: str | None, layer: bool
) -> None:
    naming = naming_for(str(tmp_path), fixed, "fn", layer=layer)
    for digest in (DIGEST, "f" * 64):
        assert os.path.basename(naming.path(digest)).startswith(naming.prefix)
    assert naming.prefix


def test_base64sha256_is_what_terraforms_filebase64sha256_computes(tmp_path: Path) -> None:
    data = b"PK\x05\x06" + bytes(18)  # an empty zip
    facts = _facts(data, str(tmp_path / "a.zip"), DIGEST, DIGEST, (0, 0, 0))
    assert facts.base64sha256 == base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert not facts.reused


def test_combined_hash_is_the_functions_alone_without_a_layer_and_depends_on_the_order() -> None:
    function, layer = "a" * 64, "b" * 64
    assert combined_hash(function, None) == function
    both = combined_hash(function, layer)
    assert both == hashlib.sha256(f"{function}:{layer}".encode()).hexdigest()
    assert both != combined_hash(layer, function)


def test_build_options_name_the_tools_version_and_the_byte_options() -> None:
    options = "level 6, libdeflate 1.26, timestamp 1980-01-01 00:00:00 UTC, for x86_64"
    assert build_options(options) == f"lambdazip-tf {__version__}, {options}"


def test_the_result_of_a_function_alone_is_strings_for_every_documented_key() -> None:
    data = b"function zip bytes"
    function = _facts(data, "/out/fn-0123456789abcdef.zip", DIGEST, "c" * 64, (3, 1, 1234))
    result = result_strings(function, None, "OPTIONS")
    assert set(result) == RESULT_KEYS
    assert all(isinstance(value, str) for value in result.values())
    assert result == {
        "output_path": "/out/fn-0123456789abcdef.zip",
        "output_base64sha256": base64.b64encode(hashlib.sha256(data).digest()).decode(),
        "output_sha256": hashlib.sha256(data).hexdigest(),
        "output_md5": hashlib.md5(data).hexdigest(),
        "output_size": str(len(data)),
        "content_hash": DIGEST,
        "files_hash": "c" * 64,
        "build_options": "OPTIONS",
        "file_count": "3",
        "symlink_count": "1",
        "unzipped_size": "1234",
    }


def test_with_a_layer_counts_cover_both_zips_hashes_combine_and_the_layer_has_its_own_keys() -> (
    None
):
    function = _facts(b"function", "/out/fn.zip", "a" * 64, "c" * 64, (3, 1, 100))
    layer = _facts(b"the layer zip", "/out/fn-layer.zip", "b" * 64, "d" * 64, (40, 5, 9000))
    result = result_strings(function, layer, "OPTIONS")
    assert set(result) == RESULT_KEYS | LAYER_KEYS
    assert all(isinstance(value, str) for value in result.values())
    assert (result["file_count"], result["symlink_count"], result["unzipped_size"]) == (
        "43",
        "6",
        "9100",
    )
    assert result["content_hash"] == combined_hash("a" * 64, "b" * 64)
    assert result["files_hash"] == combined_hash("c" * 64, "d" * 64)
    # The output_* keys stay the function's; the layer's are under layer_output_*.
    assert result["output_path"] == "/out/fn.zip"
    assert result["output_sha256"] == hashlib.sha256(b"function").hexdigest()
    assert result["output_size"] == str(len(b"function"))
    assert result["layer_output_path"] == "/out/fn-layer.zip"
    assert result["layer_output_base64sha256"] == layer.base64sha256
    assert result["layer_output_size"] == str(len(b"the layer zip"))
