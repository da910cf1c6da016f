"""Installed Python distributions made by hand in tmp_path: a *.dist-info with METADATA,
WHEEL, INSTALLER and a RECORD that lists every file, as pip and uv write them."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from helpers import write


def dist(
    site: Path,
    name: str,
    version: str = "1.0",
    files: Mapping[str, str | bytes] | None = None,
    requires: Iterable[str] = (),
    tags: Iterable[str] = ("py3-none-any",),
    *,
    installer: str = "pip",
    outside: Iterable[str] = (),
    editable_to: Path | None = None,
    requires_python: str = "",
) -> Path:
    """Install `name` into the site-packages folder `site`: `files` by their paths relative
    to it (default: a package named like the distribution), `outside` as RECORD paths that
    leave it (../../bin/x), `editable_to` an editable install of that project folder."""
    module = name.lower().replace("-", "_").replace(".", "_")
    info = f"{module}-{version}.dist-info"
    if files is None:
        files = {} if editable_to else {f"{module}/__init__.py": f"NAME = {name!r}\n"}
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    if requires_python:
        metadata += f"Requires-Python: {requires_python}\n"
    metadata += "".join(f"Requires-Dist: {r}\n" for r in requires)
    wheel = "Wheel-Version: 1.0\nRoot-Is-Purelib: true\n" + "".join(f"Tag: {t}\n" for t in tags)
    written = dict(files)
    written[f"{info}/METADATA"] = metadata
    written[f"{info}/WHEEL"] = wheel
    written[f"{info}/INSTALLER"] = installer + "\n"
    written[f"{info}/REQUESTED"] = ""
    if editable_to is not None:
        written[f"_{module}.pth"] = f"{editable_to}\n"
        url = {"url": editable_to.as_uri(), "dir_info": {"editable": True}}
        written[f"{info}/direct_url.json"] = json.dumps(url)
    rows = []
    for path, content in written.items():
        data = content.encode() if isinstance(content, str) else content
        target = site / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        rows.append(f"{path},sha256={digest},{len(data)}")
    rows += [f"{path},," for path in outside]
    rows.append(f"{info}/RECORD,,")
    write(site / info / "RECORD", "\n".join(rows) + "\n")
    return site / info


def venv(root: Path, minor: int = 12, *, uv: bool = False) -> Path:
    """A virtual environment's bones: pyvenv.cfg and its site-packages folder (returned)."""
    key = "version_info" if uv else "version"
    write(
        root / "pyvenv.cfg",
        f"home = /usr/bin\ninclude-system-site-packages = false\n{key} = 3.{minor}.1\n",
    )
    site = root / "lib" / f"python3.{minor}" / "site-packages"
    site.mkdir(parents=True)
    return site


def pyproject(folder: Path, *dependencies: str, name: str = "app") -> Path:
    """A pyproject.toml declaring `dependencies`."""
    listed = ", ".join(json.dumps(d) for d in dependencies)
    return write(
        folder / "pyproject.toml",
        f'[project]\nname = "{name}"\nversion = "0.1.0"\ndependencies = [{listed}]\n',
    )
