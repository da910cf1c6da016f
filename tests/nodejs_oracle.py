"""Node.js as the oracle, and a Lambda-like runner (docs/design.md, "Testing").

`edges_agree` finds every package in an unpacked artifact on its own (not through the tool's crawl),
finds the same name@version in the source tree, and asks Node to resolve each dependency from both
places: `require.resolve` for every package, and `import.meta.resolve` too for ESM packages.

`invoke` runs a handler the way the Lambda Node.js runtime does: the function at /var/task, the
layer at /opt, inside a private mount namespace, as an unprivileged user, with the runtime's
NODE_PATH. The host's /var and /opt are untouched: the namespace dies with the process.
"""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from helpers import as_lambda

NODE_PATH = (
    "/opt/nodejs/node20/node_modules:/opt/nodejs/node_modules:"
    "/var/runtime/node_modules:/var/runtime:/var/task"
)

_RESOLVER = r"""
const { createRequire } = require("node:module");
const fs = require("node:fs");
const path = require("node:path");
const { pathToFileURL } = require("node:url");
const jobs = JSON.parse(fs.readFileSync(0, "utf8"));
function owner(file, name) {
  let dir = path.dirname(fs.realpathSync(file));
  for (;;) {
    const manifest = path.join(dir, "package.json");
    if (fs.existsSync(manifest)) {
      const data = JSON.parse(fs.readFileSync(manifest, "utf8"));
      if (data.name === name) return `${data.name}@${data.version}`;
    }
    const up = path.dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}
(async () => {
  const out = [];
  for (const [i, [from, name, esm]] of jobs.entries()) {
    const req = createRequire(path.join(from, "__oracle__.js"));
    let cjs = null, mjs = null;
    try { cjs = owner(req.resolve(name), name); } catch (e) { cjs = "ERR " + e.code; }
    if (esm) {
      // A new file name each time: import() caches modules by URL.
      const probe = path.join(from, `__oracle_${process.pid}_${i}.mjs`);
      fs.writeFileSync(probe, `export default import.meta.resolve(${JSON.stringify(name)});`);
      try {
        const url = (await import(pathToFileURL(probe).href)).default;
        mjs = owner(new URL(url).pathname, name);
      } catch (e) { mjs = "ERR " + e.code; }
      fs.unlinkSync(probe);
    }
    out.push([cjs, mjs]);
  }
  process.stdout.write(JSON.stringify(out));
})();
"""


def _resolve_all(jobs: list[tuple[str, str, bool]]) -> list[tuple[str | None, str | None]]:
    proc = subprocess.run(
        ["node", "-e", _RESOLVER],
        input=json.dumps(jobs),
        capture_output=True,
        text=True,
        check=True,
    )
    return [tuple(pair) for pair in json.loads(proc.stdout)]  # type: ignore[misc]


def _manifest(folder: Path) -> dict[str, object]:
    try:
        data = json.loads((folder / "package.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _packages(root: Path) -> dict[str, Path]:
    """name@version -> first real folder, for every installed package under root."""
    found: dict[str, Path] = {}
    seen: set[str] = set()
    for dirpath, dirnames, _ in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        parent = Path(dirpath).parent
        if parent.name == "node_modules" or parent.parent.name == "node_modules":
            data = _manifest(Path(dirpath))
            if "name" in data and "version" in data:
                found.setdefault(f"{data['name']}@{data['version']}", Path(real))
        if real in seen:
            dirnames[:] = []
        seen.add(real)
    return found


def _deps(folder: Path) -> list[str]:
    data = _manifest(folder)
    names: list[str] = []
    for key in ("dependencies", "optionalDependencies"):
        table = data.get(key)
        if isinstance(table, dict):
            names += list(table)
    return names


@dataclass
class Edge:
    """One (package, dependency) resolution compared between source and artifact."""

    package: str
    name: str
    source: tuple[str | None, str | None]
    artifact: tuple[str | None, str | None]


def edges_agree(
    source: Path, search_root: Path, unpacked: Path, exclude: tuple[str, ...] = ("@aws-sdk/*",)
) -> list[Edge]:
    """Every edge of the unpacked artifact, resolved by Node in both trees; asserts agreement."""
    in_source = _packages(search_root)
    in_artifact = _packages(unpacked)
    pairs: list[tuple[str, Path, Path]] = [("<function>", source, unpacked)]
    for ident, folder in sorted(in_artifact.items()):
        assert ident in in_source, f"{ident} is in the artifact but not installed in the source"
        pairs.append((ident, in_source[ident], folder))
    jobs: list[tuple[str, str, bool]] = []
    labels: list[tuple[str, str]] = []
    for ident, src_dir, art_dir in pairs:
        esm = _manifest(art_dir).get("type") == "module"
        for name in _deps(art_dir):
            if any(fnmatch.fnmatchcase(name, glob) for glob in exclude):
                continue
            jobs += [(str(src_dir), name, esm), (str(art_dir), name, esm)]
            labels.append((ident, name))
    results = _resolve_all(jobs)
    edges = [
        Edge(ident, name, results[2 * i], results[2 * i + 1])
        for i, (ident, name) in enumerate(labels)
    ]
    for edge in edges:
        if edge.source[0] and edge.source[0].startswith("ERR"):
            continue  # an absent optional dependency: absent in both
        assert edge.artifact == edge.source, edge
    return edges


RUNNER = r"""
import { createRequire } from "node:module";
import { existsSync, readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
const [spec, event] = process.argv.slice(2);
const dot = spec.lastIndexOf(".");
const base = "/var/task/" + spec.slice(0, dot), name = spec.slice(dot + 1);
let type = "commonjs";
try { type = JSON.parse(readFileSync("/var/task/package.json", "utf8")).type || type; } catch {}
let mod;
if (existsSync(base + ".mjs")) mod = await import(pathToFileURL(base + ".mjs").href);
else if (existsSync(base + ".js") && type === "module")
  mod = await import(pathToFileURL(base + ".js").href);
else {
  const file = existsSync(base + ".cjs") ? base + ".cjs" : base + ".js";
  mod = createRequire("/var/task/index.js")(file);
}
const result = await mod[name](JSON.parse(event), {});
process.stdout.write(JSON.stringify(result));
"""


def invoke(
    function_dir: Path,
    layer_dir: Path | None,
    handler: str,
    event: dict[str, object],
    node_options: str = "",
) -> subprocess.CompletedProcess[str]:
    """Run `handler` from function_dir at /var/task (layer_dir at /opt) as Lambda would, with
    the function's NODE_OPTIONS when it sets them."""
    with tempfile.TemporaryDirectory() as runtime:
        Path(runtime, "bootstrap.mjs").write_text(RUNNER)
        os.chmod(runtime, 0o755)
        os.chmod(Path(runtime, "bootstrap.mjs"), 0o644)
        environment = {
            "PATH": "/usr/bin:/bin",
            "NODE_PATH": NODE_PATH,
            "LAMBDA_TASK_ROOT": "/var/task",
            "HOME": "/tmp",
        }
        if node_options:
            environment["NODE_OPTIONS"] = node_options
        command = 'node /var/runtime/bootstrap.mjs "$0" "$1"'
        return as_lambda(
            function_dir,
            layer_dir,
            {"/var/runtime": Path(runtime)},
            environment,
            command,
            handler,
            json.dumps(event),
        )
