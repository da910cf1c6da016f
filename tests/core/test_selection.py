"""The function's own files, the default excludes and the link policy.

docs/design.md, "Selection" and "Links", on trees built in tmp_path.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    assert_one_line_error,
    build_ok,
    external,
    link,
    manifest,
    unzip,
    write,
)


def test_links_inside_the_artifact_are_stored_as_relative_links(tree: Path, run_cli: Any) -> None:
    link(tree / "lib" / "again.js", "util.js")
    link(tree / "alias", "lib")  # a folder
    link(tree / "abs.js", str(tree / "index.js"))  # absolute, but inside: made relative
    got = manifest(build_ok(run_cli, tree)["output_path"])
    assert got["lib/again.js"] == ("link", "777", "util.js")
    assert got["alias"] == ("link", "777", "lib")
    assert got["abs.js"] == ("link", "777", "index.js")


def test_links_into_allowed_roots_are_replaced_by_content(tmp_path: Path, run_cli: Any) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)  # the default allowed root: the repository
    src = repo / "fn"
    write(src / "index.js", "x")
    write(repo / "shared" / "lib.js", "shared code")
    write(repo / "shared" / "sub" / "deep.js", "deep", mode=0o755)
    write(repo / "config.json", "{}")
    link(src / "shared", "../shared")
    link(src / "config.json", "../config.json")
    got = manifest(build_ok(run_cli, src)["output_path"])
    assert got["shared/"][0] == "dir"
    assert got["shared/lib.js"][0] == "file"
    assert got["shared/sub/deep.js"][1] == "755"
    assert got["config.json"][0] == "file"
    assert not any(kind == "link" for kind, _, _ in got.values())


def test_explicit_allowed_roots_replace_the_default(tmp_path: Path, run_cli: Any) -> None:
    write(tmp_path / "lib" / "x.js", "x")
    src = tmp_path / "fn"
    write(src / "index.js", "x")
    link(src / "lib", "../lib")
    refused = external(run_cli, {"source_dir": str(src), "output_dir": str(tmp_path / "o")})
    assert_one_line_error(refused, str(src / "lib"), "outside the function and allowed_roots")
    got = manifest(build_ok(run_cli, src, allowed_roots=[str(tmp_path / "lib")])["output_path"])
    assert got["lib/x.js"][0] == "file"


def test_links_out_of_bounds_dangling_or_cyclic_are_errors(tmp_path: Path, run_cli: Any) -> None:
    src = tmp_path / "fn"
    write(src / "index.js", "x")
    request = {"source_dir": str(src), "output_dir": str(tmp_path / "o")}
    bad = link(src / "passwd", "/etc/passwd")
    assert_one_line_error(external(run_cli, request), str(bad), "/etc/passwd")
    bad.unlink()
    bad = link(src / "gone.js", "missing.js")
    assert_one_line_error(external(run_cli, request), "dangling link", str(bad))
    bad.unlink()
    link(src / "a", "b")
    link(src / "b", "a")
    assert_one_line_error(external(run_cli, request), "link cycle")


def test_a_folder_copied_into_itself_is_a_cycle(tmp_path: Path, run_cli: Any) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    src = repo / "fn"
    write(src / "index.js", "x")
    write(repo / "shared" / "a.js", "a")
    link(repo / "shared" / "loop", "../shared")
    link(src / "shared", "../shared")
    # shared/ is copied in (it lies outside source_dir); its loop stays a link inside the copy.
    got = manifest(build_ok(run_cli, src)["output_path"])
    assert got["shared/loop"] == ("link", "777", ".")
    # Dereferenced, shared/loop would contain shared again, forever: reported, not followed.
    assert_one_line_error(
        external(
            run_cli,
            {"source_dir": str(src), "output_dir": str(tmp_path / "o"), "symlinks": "dereference"},
        ),
        "link cycle",
        "loop",
    )


def test_a_link_to_an_excluded_file_is_refused_not_copied(tree: Path, run_cli: Any) -> None:
    write(tree / ".env", "SECRET=1")
    bad = link(tree / "config", ".env")
    assert_one_line_error(
        external(run_cli, {"source_dir": str(tree), "output_dir": str(tree.parent / "o")}),
        str(bad),
        "excluded",
    )


def test_dereference_stores_content_for_links_inside(tree: Path, run_cli: Any) -> None:
    link(tree / "lib" / "again.js", "util.js")
    got = manifest(build_ok(run_cli, tree, symlinks="dereference")["output_path"])
    assert got["lib/again.js"] == got["lib/util.js"]


def test_unzip_round_trip_restores_files_modes_links_and_empty_folders(
    tree: Path, run_cli: Any, tmp_path: Path
) -> None:
    link(tree / "lib" / "again.js", "util.js")
    data = build_ok(run_cli, tree, node_modules_link="/opt/nodejs/node_modules")
    assert data["symlink_count"] == "2"
    old = os.umask(0o022)
    try:
        out = unzip(data["output_path"], tmp_path / "unzipped")
    finally:
        os.umask(old)
    assert (out / "index.js").read_text() == (tree / "index.js").read_text()
    assert os.readlink(out / "lib" / "again.js") == "util.js"
    assert (out / "lib" / "again.js").read_text() == "module.exports = 1;\n"
    assert os.readlink(out / "node_modules") == "/opt/nodejs/node_modules"
    assert (out / "empty").is_dir()
    assert not any((out / "empty").iterdir())
    assert (out / "bin" / "run.sh").stat().st_mode & 0o777 == 0o755
    for path in out.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert path.stat().st_mode & 0o004, f"{path} is not readable by others"
    assert (out / "private.txt").stat().st_mode & 0o777 == 0o644
    listing = subprocess.run(
        ["zipinfo", data["output_path"]], capture_output=True, text=True, check=True
    ).stdout
    links = [line for line in listing.splitlines() if line.startswith("l")]
    assert len(links) == 2
    assert any(line.endswith("node_modules") for line in links)


def test_special_files_are_skipped_and_listed(tree: Path, run_cli: Any) -> None:
    os.mkfifo(tree / "pipe")
    got = manifest(build_ok(run_cli, tree)["output_path"])
    assert "pipe" not in got
    plan = run_cli(
        ["plan", "--json", "--source-dir", str(tree), "--output-dir", str(tree.parent / "out")]
    )
    excluded = json.loads(plan.stdout)["excluded"]
    assert {"path": "pipe", "reason": "not a regular file, folder or link"} in excluded


def test_negated_pattern_opts_a_default_exclude_back_in(tree: Path, run_cli: Any) -> None:
    write(tree / ".env.production", "PUBLIC=1")
    write(tree / ".env", "SECRET=1")
    run = external(
        run_cli,
        {
            "source_dir": str(tree),
            "output_dir": str(tree.parent / "o"),
            "excludes": json.dumps(["!.env.production"]),
        },
    )
    names = manifest(run.json()["output_path"])
    assert ".env.production" in names
    assert ".env" not in names


@pytest.mark.parametrize("target", ["/etc/passwd", "HOME_CREDENTIALS", "..", "/", "../.."])
def test_links_out_of_the_project_are_refused_and_named(
    tmp_path: Path, run_cli: Any, target: str
) -> None:
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    src = repo / "fn"
    write(src / "index.js", "x")
    if target == "HOME_CREDENTIALS":
        credentials = write(tmp_path / "home" / ".aws" / "credentials", "[default]\nkey=secret")
        target = str(credentials)
    bad = link(src / "sneaky", target)
    run = external(run_cli, {"source_dir": str(src), "output_dir": str(tmp_path / "out")})
    if target == "..":
        # ".." is the repository: allowed, but it contains the function itself.
        assert_one_line_error(run, "link cycle", str(bad))
    else:
        assert_one_line_error(run, str(bad), "outside the function and allowed_roots")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.zip"))


def test_sockets_and_device_nodes_are_skipped_and_listed(tmp_path: Path, run_cli: Any) -> None:
    src = tmp_path / "fn"
    write(src / "index.js", "x")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(src / "app.sock"))
    os.mknod(src / "null", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    os.mkfifo(src / "fifo")
    try:
        data = external(run_cli, {"source_dir": str(src), "output_dir": str(tmp_path / "o")})
        assert set(manifest(data.json()["output_path"])) == {"index.js"}
        plan = run_cli(
            ["plan", "--json", "--source-dir", str(src), "--output-dir", str(tmp_path / "o")]
        )
        reasons = {x["path"]: x["reason"] for x in json.loads(plan.stdout)["excluded"]}
        for name in ("app.sock", "null", "fifo"):
            assert reasons[name] == "not a regular file, folder or link"
    finally:
        server.close()


def test_non_utf8_names_are_refused_and_long_names_work(tmp_path: Path, run_cli: Any) -> None:
    src = tmp_path / "fn"
    write(src / "index.js", "x")
    long_name = "l" * 251 + ".js"
    write(src / long_name, "long")
    deep = src.joinpath(*["d" * 100] * 30) / "deep.js"
    write(deep, "deep")
    request = {"source_dir": str(src), "output_dir": str(tmp_path / "o")}
    names = manifest(external(run_cli, request).json()["output_path"])
    assert long_name in names
    assert str(deep.relative_to(src)) in names
    bad = os.path.join(os.fsencode(src), b"caf\xe9.js")
    with open(bad, "wb") as f:
        f.write(b"latin-1 name")
    assert_one_line_error(external(run_cli, request), "not valid UTF-8", "caf")


TERRAFORM_FILES = [
    "terraform.tfstate",
    "terraform.tfstate.backup",
    ".terraform.tfstate.lock.info",
    ".terraform.lock.hcl",
    "prod.tfplan",
    "terraform.tfvars",
    "secrets.auto.tfvars.json",
    "crash.log",
    "crash.1700000000.log",
    "override.tf",
    "override.tf.json",
    "dev_override.tf",
    "env/dev_override.tf.json",
]


def test_terraforms_own_files_are_never_zipped_and_plan_says_why(
    tree: Path, run_cli: Any, tmp_path: Path
) -> None:
    for name in TERRAFORM_FILES:
        write(tree / name, "{}")
    write(tree / "main.tf", 'module "fn" {}\n')  # the configuration: no code the function runs
    write(tree / "versions.tf.json", "{}")
    write(tree / "tests" / "fn.tftest.hcl", "run {}\n")
    names = set(manifest(build_ok(run_cli, tree)["output_path"]))
    assert not {name for name in TERRAFORM_FILES if name in names}
    assert not names & {"main.tf", "versions.tf.json", "tests/fn.tftest.hcl"}
    report = run_cli(["plan", "--json", "--source-dir", str(tree), "--output-dir", str(tmp_path)])
    reasons = {x["path"]: x["reason"] for x in json.loads(report.stdout)["excluded"]}
    assert reasons["terraform.tfstate"] == (
        "default: Terraform state (may hold secrets) pattern 'terraform.tfstate*'"
    )
    assert reasons["prod.tfplan"].startswith("default: Terraform saved plan")
    assert set(TERRAFORM_FILES) <= set(reasons)
    assert reasons["main.tf"] == "default: Terraform configuration pattern '*.tf'"
    assert reasons["tests/fn.tftest.hcl"].startswith("default: Terraform test")
    again = build_ok(run_cli, tree, excludes=["!terraform.tfvars", "!main.tf"])  # opted back in
    assert {"terraform.tfvars", "main.tf"} <= set(manifest(again["output_path"]))
