"""The Terraform module with real Terraform (docs/design.md, "The Terraform module")."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from helpers import ROOT, lambdazip_exe, sha256_file, write
from python_dists import dist
from terraform_harness import Terraform, TfRun

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def terraform(tmp_path_factory: pytest.TempPathFactory) -> Terraform:
    """Terraform with the stand-in hashicorp/external provider in a filesystem mirror."""
    return Terraform(tmp_path_factory.mktemp("terraform-home"))


def node_project(folder: Path) -> Path:
    """A small Node.js function with one installed dependency (no npm needed)."""
    write(folder / "package.json", json.dumps({"name": "fn", "dependencies": {"dep": "1"}}))
    write(folder / "index.js", "exports.handler = async () => require('dep');\n")
    write(folder / "README.md", "excluded by the root module's excludes\n")
    dep = folder / "node_modules" / "dep"
    write(dep / "package.json", json.dumps({"name": "dep", "version": "1.0.0"}))
    write(dep / "index.js", "module.exports = 'dep';\n")
    return folder


def root_module(workdir: Path, modules: dict[str, str]) -> Path:
    """A root module calling terraform/ once per (name, extra HCL arguments)."""
    workdir.mkdir(parents=True, exist_ok=True)
    source = os.path.relpath(ROOT / "terraform", workdir)
    blocks = []
    for name, extra in modules.items():
        blocks.append(
            f'module "{name}" {{\n  source  = "{source}"\n'
            f"  program = {json.dumps([lambdazip_exe()])}\n{extra}\n}}\n"
            f'output "{name}" {{\n  value = {{\n'
            f"    path    = module.{name}.output_path\n"
            f"    hash    = module.{name}.output_base64sha256\n"
            f"    tf_hash = filebase64sha256(module.{name}.output_path)\n"
            f"    content = module.{name}.content_hash\n"
            f"    files   = module.{name}.file_count\n  }}\n}}\n"
        )
    (workdir / "main.tf").write_text("\n".join(blocks))
    return workdir


def ok(run: TfRun) -> TfRun:
    """Assert a Terraform command succeeded."""
    assert run.code == 0, f"exit {run.code}\n{run.stdout}\n{run.stderr}"
    return run


def flat(text: str) -> str:
    """Terraform wraps long messages; compare with white space folded."""
    return " ".join(text.split())


def outputs(terraform: Terraform, workdir: Path) -> dict[str, dict[str, object]]:
    """`terraform output -json`, values only."""
    data = json.loads(ok(terraform(workdir, "output", "-json")).stdout)
    return {key: value["value"] for key, value in data.items()}


def test_apply_then_plan_sees_only_real_changes(terraform: Terraform, tmp_path: Path) -> None:
    src = node_project(tmp_path / "fn")
    work = root_module(tmp_path / "root", {"fn": f'  source_dir = "{src}"\n  excludes = ["*.md"]'})
    ok(terraform(work, "init"))
    ok(terraform(work, "apply", "-auto-approve"))
    out = outputs(terraform, work)["fn"]
    # Terraform's own filebase64sha256() agrees with the module's output.
    assert out["tf_hash"] == out["hash"]
    assert Path(str(out["path"])).parent == Path(".lambdazip")  # relative to the root module
    with zipfile.ZipFile(work / str(out["path"])) as zf:
        assert sorted(zf.namelist()) == [
            "index.js",
            "node_modules/",
            "node_modules/dep/",
            "node_modules/dep/index.js",
            "node_modules/dep/package.json",
            "package.json",
        ]
    assert out["files"] == 4
    assert terraform(work, "plan", "-detailed-exitcode").code == 0
    write(src / "README.md", "edited, but excluded\n")
    assert terraform(work, "plan", "-detailed-exitcode").code == 0
    write(src / "index.js", "exports.handler = async () => 'changed';\n")
    changed = terraform(work, "plan", "-detailed-exitcode")
    assert changed.code == 2, changed
    assert "terraform_data.artifact must be replaced" in changed.stdout
    ok(terraform(work, "apply", "-auto-approve"))
    after = outputs(terraform, work)["fn"]
    assert after["hash"] != out["hash"]
    assert after["tf_hash"] == after["hash"]


def test_saved_plan_applies_on_a_clean_machine_and_refuses_changed_sources(
    terraform: Terraform, tmp_path: Path
) -> None:
    src = node_project(tmp_path / "fn")
    work = root_module(tmp_path / "root", {"fn": f'  source_dir = "{src}"'})
    ok(terraform(work, "init"))
    ok(terraform(work, "plan", "-out=saved.tfplan"))
    planned = json.loads(ok(terraform(work, "show", "-json", "saved.tfplan")).stdout)
    planned_out = planned["planned_values"]["outputs"]["fn"]["value"]
    shutil.rmtree(work / ".lambdazip")  # the CI runner that applies never ran the build
    ok(terraform(work, "apply", "saved.tfplan"))
    path = work / str(planned_out["path"])
    assert path.exists()

    digest = base64.b64encode(hashlib.sha256(path.read_bytes()).digest()).decode()
    assert digest == planned_out["hash"]  # byte-identical to what was planned
    # Now a plan whose sources change before it is applied.
    write(src / "index.js", "exports.handler = async () => 'v2';\n")
    ok(terraform(work, "plan", "-out=second.tfplan"))
    write(src / "index.js", "exports.handler = async () => 'v3, after the plan';\n")
    failed = terraform(work, "apply", "second.tfplan")
    assert failed.code != 0
    assert "but the plan expected" in flat(failed.stderr)
    assert "sources changed between plan and apply" in flat(failed.stderr)
    # Terraform shows the provisioner's command: the ensure command line, not the request.
    assert f"Error running command ''{lambdazip_exe()}' 'ensure' '--expect-sha256'" in flat(
        failed.stderr
    )
    assert '"source_dir"' not in failed.stderr


def test_a_build_error_reaches_terraform_as_the_tools_line(
    terraform: Terraform, tmp_path: Path
) -> None:
    src = node_project(tmp_path / "fn")
    shutil.rmtree(src / "node_modules" / "dep")
    work = root_module(tmp_path / "root", {"fn": f'  source_dir = "{src}"'})
    ok(terraform(work, "init"))
    failed = terraform(work, "plan")
    assert failed.code == 1
    assert "lambdazip-tf: error: package 'dep' is required by" in flat(failed.stderr)
    assert "npm install --omit=dev" in flat(failed.stderr)


def test_two_instances_share_one_output_folder(terraform: Terraform, tmp_path: Path) -> None:
    one = node_project(tmp_path / "one")
    two = node_project(tmp_path / "two")
    write(two / "extra.js", "module.exports = 2;\n")
    shared = tmp_path / "shared-out"
    work = root_module(
        tmp_path / "root",
        {
            "one": f'  source_dir = "{one}"\n  output_dir = "{shared}"',
            "two": f'  source_dir = "{two}"\n  output_dir = "{shared}"',
        },
    )
    ok(terraform(work, "init"))
    ok(terraform(work, "apply", "-auto-approve"))
    out = outputs(terraform, work)
    assert out["one"]["path"] != out["two"]["path"]
    for value in out.values():
        assert value["tf_hash"] == value["hash"]
        assert Path(str(value["path"])).parent == shared
    assert sha256_file(str(out["one"]["path"])) != sha256_file(str(out["two"]["path"]))


def test_layer_outputs_and_the_layer_check(terraform: Terraform, tmp_path: Path) -> None:
    src = node_project(tmp_path / "fn")
    work = root_module(
        tmp_path / "root",
        {
            "fn": f'  source_dir = "{src}"\n  layer = true\n'
            '  node_modules_link = "/opt/nodejs/node_modules"'
        },
    )
    (work / "layer.tf").write_text(
        'output "layer" {\n  value = {\n    path = module.fn.layer_output_path\n'
        "    hash = module.fn.layer_output_base64sha256\n"
        "    tf_hash = filebase64sha256(module.fn.layer_output_path)\n  }\n}\n"
    )
    ok(terraform(work, "init"))
    ok(terraform(work, "plan", "-out=p.tfplan"))
    shutil.rmtree(work / ".lambdazip")
    ok(terraform(work, "apply", "p.tfplan"))
    layer = outputs(terraform, work)["layer"]
    assert layer["hash"] == layer["tf_hash"]
    with zipfile.ZipFile(work / str(layer["path"])) as zf:
        assert "nodejs/node_modules/dep/index.js" in zf.namelist()


def test_package_dir_through_the_module_with_paths_relative_to_the_root_module(
    terraform: Terraform, tmp_path: Path
) -> None:
    """A TypeScript layout beside the root module: dist/ with the root's dependencies."""
    work = tmp_path / "root"
    app = node_project(work / "app")
    (app / "dist").mkdir()
    (app / "index.js").rename(app / "dist" / "index.js")  # compiled code in dist/
    root_module(
        work,
        {"fn": '  source_dir = "${path.module}/app/dist"\n  package_dir = "${path.module}/app"'},
    )
    ok(terraform(work, "init"))
    ok(terraform(work, "plan", "-out=p.tfplan"))
    shutil.rmtree(work / ".lambdazip")  # a clean runner: the saved plan's zip is built at apply
    ok(terraform(work, "apply", "p.tfplan"))
    out = outputs(terraform, work)["fn"]
    assert out["tf_hash"] == out["hash"]
    with zipfile.ZipFile(work / str(out["path"])) as zf:
        assert set(zf.namelist()) >= {"index.js", "package.json", "node_modules/dep/index.js"}
        assert not [n for n in zf.namelist() if n.startswith("dist/")]
    assert terraform(work, "plan", "-detailed-exitcode").code == 0


def test_a_function_beside_its_main_tf_ships_no_terraform_files_and_settles(
    terraform: Terraform, tmp_path: Path
) -> None:
    """source_dir = path.module: the configuration, state, lock file and saved plans live in
    the function's folder; each apply changes the state and an edit to main.tf's comments
    changes the configuration, neither of which ships or changes the zip."""
    work = node_project(tmp_path / "root")
    (work / "main.tf").write_text(
        f'module "fn" {{\n  source  = "{os.path.relpath(ROOT / "terraform", work)}"\n'
        f"  program = {json.dumps([lambdazip_exe()])}\n"
        "  source_dir = path.module\n"
        '  excludes = ["*.md"]\n}\n'
        'output "path" {\n  value = module.fn.output_path\n}\n'
    )
    ok(terraform(work, "init"))
    ok(terraform(work, "plan", "-out=first.tfplan"))
    ok(terraform(work, "apply", "first.tfplan"))
    assert (work / "terraform.tfstate").exists()
    path = outputs(terraform, work)["path"]
    with zipfile.ZipFile(work / str(path)) as zf:
        names = set(zf.namelist())
    assert "index.js" in names and "main.tf" not in names
    assert not {n for n in names if "tfstate" in n or n.endswith((".tfplan", ".lock.hcl"))}
    assert not {n for n in names if n.startswith((".terraform/", ".lambdazip/"))}
    for _ in range(2):  # each apply rewrites the state: the plan after it is still empty
        assert terraform(work, "plan", "-detailed-exitcode").code == 0
        ok(terraform(work, "apply", "-auto-approve"))
    with (work / "main.tf").open("a") as f:
        f.write("# a comment: the configuration changed, the function did not\n")
    assert terraform(work, "plan", "-detailed-exitcode").code == 0


def test_a_saved_plan_applied_with_other_options_says_so(
    terraform: Terraform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SOURCE_DATE_EPOCH set on the machine that planned and not on the one that applies: the
    same files, written differently; the error says which option differs."""
    src = node_project(tmp_path / "fn")
    work = root_module(tmp_path / "root", {"fn": f'  source_dir = "{src}"'})
    ok(terraform(work, "init"))
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    ok(terraform(work, "plan", "-out=saved.tfplan"))
    monkeypatch.delenv("SOURCE_DATE_EPOCH")
    shutil.rmtree(work / ".lambdazip")  # a clean runner
    failed = terraform(work, "apply", "saved.tfplan")
    assert failed.code != 0
    message = flat(failed.stderr)
    assert "the same files were written differently" in message
    assert "(SOURCE_DATE_EPOCH set differently)" in message


def _checkout(origin: Path, target: Path) -> Path:
    """A copy of a root module as another checkout would have it: the sources, the state
    (remote state, as a team keeps it) and a saved plan, but no .terraform and no artifacts."""
    shutil.copytree(
        origin, target, symlinks=True, ignore=shutil.ignore_patterns(".terraform", ".lambdazip")
    )
    return target


def test_a_checkout_at_another_path_plans_no_change_and_applies_a_saved_plan(
    terraform: Terraform, tmp_path: Path
) -> None:
    work = tmp_path / "a" / "infra"
    node_project(work / "fn")
    (work / "main.tf").write_text(
        f'module "fn" {{\n  source  = "{ROOT / "terraform"}"\n'
        f"  program = {json.dumps([lambdazip_exe()])}\n"
        '  source_dir = "${path.module}/fn"\n}\n'
        'output "fn" {\n  value = {\n    path = module.fn.output_path\n'
        "    hash = module.fn.output_base64sha256\n"
        "    tf_hash = filebase64sha256(module.fn.output_path)\n  }\n}\n" + _function("api")
    )
    ok(terraform(work, "init"))
    ok(terraform(work, "apply", "-auto-approve"))
    first = outputs(terraform, work)["fn"]
    assert not Path(str(first["path"])).is_absolute()
    # The same commit at another path: the same paths, no change to plan.
    elsewhere = _checkout(work, tmp_path / "b" / "checkout" / "infra")
    ok(terraform(elsewhere, "init"))
    same = terraform(elsewhere, "plan", "-detailed-exitcode")
    assert same.code == 0, same.stdout
    # A saved plan made at one path and applied at another builds there, what was planned.
    write(work / "fn" / "index.js", "exports.handler = async () => 'v2';\n")
    ok(terraform(work, "plan", "-out=saved.tfplan"))
    planned = json.loads(ok(terraform(work, "show", "-json", "saved.tfplan")).stdout)
    want = planned["planned_values"]["outputs"]["fn"]["value"]
    runner = _checkout(work, tmp_path / "runner" / "infra")
    shutil.rmtree(tmp_path / "a")  # the planning machine's checkout is not on the runner
    ok(terraform(runner, "init"))
    ok(terraform(runner, "apply", "saved.tfplan"))
    applied = outputs(terraform, runner)["fn"]
    assert applied["path"] == want["path"]
    assert applied["tf_hash"] == applied["hash"] == want["hash"]
    assert (runner / str(applied["path"])).is_file()
    state = json.loads(ok(terraform(runner, "show", "-json")).stdout)
    (api,) = [r for r in state["values"]["root_module"]["resources"] if r["name"] == "api"]
    assert api["values"]["code_sha256"] == want["hash"]  # deployed what was planned


def test_an_artifact_overwritten_in_place_is_caught_at_apply(
    terraform: Terraform, tmp_path: Path
) -> None:
    src = node_project(tmp_path / "fn")
    work = root_module(tmp_path / "root", {"fn": f'  source_dir = "{src}"'})
    ok(terraform(work, "init"))
    ok(terraform(work, "apply", "-auto-approve"))
    out = outputs(terraform, work)["fn"]
    artifact = work / str(out["path"])
    before = artifact.stat()
    data = artifact.read_bytes()
    with artifact.open("r+b") as f:  # other bytes; the same size, inode and (below) mtime
        f.write(data[:40] + bytes(reversed(data[40:80])) + data[80:])
    os.utime(artifact, ns=(before.st_atime_ns, before.st_mtime_ns))
    ok(terraform(work, "apply", "-auto-approve", "-replace=module.fn.terraform_data.artifact"))
    repaired = base64.b64encode(hashlib.sha256(artifact.read_bytes()).digest()).decode()
    assert repaired == out["hash"]


def _function(name: str) -> str:
    return (
        f'resource "aws_lambda_function" "{name}" {{\n  function_name    = "{name}"\n'
        "  filename         = module.fn.output_path\n"
        "  source_code_hash = module.fn.output_base64sha256\n}\n"
    )


def test_a_saved_plan_that_reads_an_unchanged_zip_applies_on_a_clean_runner_after_restore(
    terraform: Terraform, tmp_path: Path
) -> None:
    """A new function using an artifact whose content did not change: the apply-time check does
    not run (nothing replaces it), so on a clean runner the zip is not there. `restore`, the CI
    recipe's step before `terraform apply PLANFILE`, builds and checks it."""
    work = tmp_path / "infra"
    node_project(work / "fn")
    module = (
        f'module "fn" {{\n  source  = "{ROOT / "terraform"}"\n'
        f"  program = {json.dumps([lambdazip_exe()])}\n"
        '  source_dir = "${path.module}/fn"\n}\n'
    )
    (work / "main.tf").write_text(module + _function("one"))
    ok(terraform(work, "init"))
    ok(terraform(work, "apply", "-auto-approve"))
    (work / "main.tf").write_text(module + _function("one") + _function("two"))
    ok(terraform(work, "plan", "-out=saved.tfplan"))
    (work / "plan.json").write_text(ok(terraform(work, "show", "-json", "saved.tfplan")).stdout)
    # Without restore: the provider cannot read the zip.
    bare = _checkout(work, tmp_path / "bare" / "infra")
    ok(terraform(bare, "init"))
    failed = terraform(bare, "apply", "saved.tfplan")
    assert failed.code != 0
    assert "reading ZIP file" in flat(failed.stderr)
    # With it: built, checked against the plan, then applied.
    runner = _checkout(work, tmp_path / "runner" / "infra")
    ok(terraform(runner, "init"))
    restored = subprocess.run(
        [lambdazip_exe(), "restore", "plan.json"],
        cwd=runner,
        capture_output=True,
        text=True,
        check=False,
    )
    assert restored.returncode == 0, restored.stderr
    assert "module.fn.data.external.build:" in restored.stderr
    assert "was rebuilt and matches the plan" in restored.stderr
    ok(terraform(runner, "apply", "saved.tfplan"))
    state = json.loads(ok(terraform(runner, "show", "-json")).stdout)
    functions = [
        r for r in state["values"]["root_module"]["resources"] if r["type"] == "aws_lambda_function"
    ]
    assert sorted(r["values"]["function_name"] for r in functions) == ["one", "two"]
    assert {r["values"]["code_sha256"] for r in functions} == {
        outputs_of_plan(work / "plan.json")["output_base64sha256"]
    }


def outputs_of_plan(plan_json: Path) -> dict[str, str]:
    """The lambdazip-tf data source's planned result in a `terraform show -json` plan."""
    state = json.loads(plan_json.read_text())["prior_state"]["values"]["root_module"]
    for module in state["child_modules"]:
        for resource in module["resources"]:
            if resource["type"] == "external":
                return dict(resource["values"]["result"])
    raise AssertionError("no data source in the plan")


def test_the_example_without_aws_applies_and_shows_terraforms_own_hash(
    terraform: Terraform, tmp_path: Path
) -> None:
    """examples/no-aws as a newcomer runs it: the repository's module and the CommonJS
    example's function, installed by npm, nothing from AWS."""
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "terraform", repo / "terraform")
    for name in ("no-aws", "commonjs"):
        shutil.copytree(
            ROOT / "examples" / name,
            repo / "examples" / name,
            ignore=shutil.ignore_patterns(
                "node_modules", ".lambdazip", ".terraform*", "*.tfstate*"
            ),
        )
    install = subprocess.run(
        ["npm", "ci", "--omit=dev", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=repo / "examples" / "commonjs" / "src",
        capture_output=True,
        text=True,
        check=False,
    )
    assert install.returncode == 0, install.stderr
    work = repo / "examples" / "no-aws"
    program = f"program={json.dumps([lambdazip_exe()])}"
    ok(terraform(work, "init"))
    ok(terraform(work, "apply", "-auto-approve", "-var", program))
    shown = outputs(terraform, work)["artifact"]
    assert shown["terraform_sha256"] == shown["output_base64sha256"]
    assert shown["files"] > 0 and shown["size"] > 0
    assert (work / str(shown["path"])).is_file()
    assert terraform(work, "plan", "-detailed-exitcode", "-var", program).code == 0


def test_a_python_function_through_the_module_settles_and_its_saved_plan_applies(
    terraform: Terraform, tmp_path: Path
) -> None:
    """site_packages and python_version as module variables, relative to the root module; the
    layer under python/; a saved plan applied where the zips were never built."""
    work = tmp_path / "root"
    src = work / "src"
    write(src / "app.py", "import dep\ndef handler(event, context):\n    return dep.NAME\n")
    write(src / "requirements.txt", "dep\n")
    dist(work / "package", "dep", requires=["inner"])
    dist(work / "package", "inner")
    dist(work / "package", "pytest")  # installed, not required: not shipped
    root_module(
        work,
        {
            "fn": '  source_dir = "src"\n  site_packages = "package"\n'
            '  python_version = "python3.12"\n  layer = true'
        },
    )
    (work / "main.tf").write_text(
        (work / "main.tf").read_text()
        + 'output "layer" {\n  value = module.fn.layer_output_path\n}\n'
    )
    ok(terraform(work, "init"))
    ok(terraform(work, "apply", "-auto-approve"))
    out = outputs(terraform, work)
    with zipfile.ZipFile(work / str(out["fn"]["path"])) as zf:
        assert sorted(zf.namelist()) == ["app.py", "requirements.txt"]
    with zipfile.ZipFile(work / str(out["layer"])) as zf:
        names = set(zf.namelist())
    assert {"python/dep/__init__.py", "python/inner/__init__.py"} <= names
    assert not any("pytest" in n or n.endswith("/RECORD") for n in names)
    assert terraform(work, "plan", "-detailed-exitcode").code == 0
    write(work / "package" / "inner" / "__init__.py", "NAME = 'inner, upgraded'\n")
    ok(terraform(work, "plan", "-out=saved.tfplan"))
    shutil.rmtree(work / ".lambdazip")  # the runner that applies never built
    ok(terraform(work, "apply", "saved.tfplan"))
    assert terraform(work, "plan", "-detailed-exitcode").code == 0
