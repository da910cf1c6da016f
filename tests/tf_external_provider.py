"""A stand-in for the hashicorp/external Terraform provider, for tests only.

No registry reachable here serves hashicorp/external, so the tests serve this one to real
Terraform through a filesystem mirror. It implements that provider's documented contract for the
`external` data source:

- `program` (list of strings, required): the command; `query` (map of strings, optional);
  `working_dir` (string, optional).
- The program runs with the query as one JSON object on stdin (`{}` when there is none).
- It must exit 0 and print one JSON object whose values are all strings: that object becomes
  `result`. Otherwise the read fails, and the program's stderr is in the error.

The plugin protocol (gRPC, protocol 6, go-plugin's handshake, TLS without a client certificate,
prompt exit on the controller's Shutdown) comes from PyPI's `tf` framework.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

from tf import provider, schema, types
from tf.iface import Config, ReadDataContext, State
from tf.runner import run_provider
from tf.utils import Diagnostics

SUMMARY = "External Program Execution Failed"


class ExternalDataSource(provider.DataSource):
    """data "external": run a program, return its JSON object of strings."""

    def __init__(self, *_args: object) -> None:
        pass

    @classmethod
    def get_name(cls) -> str:
        return ""  # with the provider's prefix "external", the type is "external"

    @classmethod
    def get_schema(cls) -> schema.Schema:
        return schema.Schema(
            attributes=[
                schema.Attribute("program", types.List(types.String()), required=True),
                schema.Attribute("query", types.Map(types.String()), optional=True),
                schema.Attribute("working_dir", types.String(), optional=True),
                schema.Attribute("result", types.Map(types.String()), computed=True),
                schema.Attribute("id", types.String(), computed=True),
            ]
        )

    def read(self, ctx: ReadDataContext, config: Config) -> State | None:
        program: list[str] = list(config.get("program") or [])
        query: dict[str, Any] = dict(config.get("query") or {})
        if not program:
            ctx.diagnostics.add_error(SUMMARY, "program must have at least one element")
            return None
        try:
            proc = subprocess.run(
                program,
                input=json.dumps(query),
                capture_output=True,
                text=True,
                cwd=config.get("working_dir") or None,
                check=False,
            )
        except OSError as exc:
            ctx.diagnostics.add_error(SUMMARY, f"Program: {program[0]}\nError Message: {exc}")
            return None
        if proc.returncode != 0:
            ctx.diagnostics.add_error(
                SUMMARY,
                f"The data source received an unexpected error while attempting to execute "
                f"the program.\n\nProgram: {program[0]}\nError Message: {proc.stderr}\n"
                f"State: exit status {proc.returncode}",
            )
            return None
        try:
            result = json.loads(proc.stdout)
        except ValueError as exc:
            ctx.diagnostics.add_error(
                "Unexpected External Program Results",
                f"The data source received unexpected results after executing the program.\n"
                f"Program output must be a JSON encoded map of string keys and string values.\n"
                f"JSON Error: {exc}\nProgram: {program[0]}\nResult Error: {proc.stdout!r}",
            )
            return None
        if not isinstance(result, dict) or not all(isinstance(v, str) for v in result.values()):
            ctx.diagnostics.add_error(
                "Unexpected External Program Results",
                "Program output must be a JSON encoded map of string keys and string values.",
            )
            return None
        return {
            "program": program,
            "query": config.get("query"),
            "working_dir": config.get("working_dir"),
            "result": result,
            "id": "-",
        }


class ExternalProvider(provider.Provider):
    """The provider: no configuration, one data source."""

    def __init__(self) -> None:
        pass

    def full_name(self) -> str:
        return "hashicorp/external"

    def get_model_prefix(self) -> str:
        return "external"

    def get_provider_schema(self, diags: Diagnostics) -> schema.Schema:
        return schema.Schema(attributes=[])

    def validate_config(self, diags: Diagnostics, config: Config) -> None:
        pass

    def configure_provider(self, diags: Diagnostics, config: Config) -> None:
        pass

    def get_data_sources(self) -> list[type[provider.DataSource]]:
        return [ExternalDataSource]

    def get_resources(self) -> list[type[provider.Resource]]:
        return []


def main() -> None:
    """Serve the provider over go-plugin's protocol (Terraform starts this executable)."""
    run_provider(ExternalProvider())


if __name__ == "__main__":
    main()
