"""A stand-in for the hashicorp/aws provider's `aws_lambda_function`, for tests only.

It does what matters here of the real resource and nothing else (no AWS): on create, and on
update when `filename` or `source_code_hash` changes, it reads the zip at `filename` (relative
paths from Terraform's working folder, as the real provider resolves them) and fails unless its
base64 sha256 is `source_code_hash`, as an upload followed by Lambda's own check would. Served
to real Terraform through the same filesystem mirror as the stand-in external provider.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from tf import provider, schema, types
from tf.iface import (
    Config,
    CreateContext,
    DeleteContext,
    PlanContext,
    ReadContext,
    State,
    UpdateContext,
)
from tf.runner import run_provider
from tf.types import Unknown
from tf.utils import Diagnostics

CODE = ("filename", "source_code_hash")  # what, changed, uploads the code again


def _upload(diags: Diagnostics, planned: State) -> bool:
    """Read the zip as the real provider would upload it; False (with an error) if it cannot."""
    path = str(planned["filename"])
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        diags.add_error("reading ZIP file", f"unable to load {path!r}: open {path}: {exc.strerror}")
        return False
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
    wanted = planned.get("source_code_hash")
    if wanted is not None and digest != wanted:
        diags.add_error(
            "updating Lambda Function code",
            f"{path} has sha256 {digest}, not the source_code_hash {wanted}",
        )
        return False
    planned["code_sha256"] = digest
    return True


class LambdaFunction(provider.Resource):
    """resource "aws_lambda_function": the code must be readable and match its hash."""

    def __init__(self, *_args: object) -> None:
        pass

    @classmethod
    def get_name(cls) -> str:
        return "lambda_function"

    @classmethod
    def get_schema(cls) -> schema.Schema:
        return schema.Schema(
            attributes=[
                schema.Attribute(
                    "function_name", types.String(), required=True, requires_replace=True
                ),
                schema.Attribute("filename", types.String(), required=True),
                schema.Attribute("source_code_hash", types.String(), optional=True),
                schema.Attribute("code_sha256", types.String(), computed=True),
                schema.Attribute("id", types.String(), computed=True),
            ]
        )

    def plan(self, ctx: PlanContext, current: State | None, planned: State) -> State | None:
        # The code's hash is known only once the zip is read: at apply, when the code changes.
        if current is None or any(current.get(k) != planned.get(k) for k in CODE):
            planned["code_sha256"] = Unknown
        return planned

    def create(self, ctx: CreateContext, planned: State) -> State | None:
        if not _upload(ctx.diagnostics, planned):
            return None
        planned["id"] = planned["function_name"]
        return planned

    def read(self, ctx: ReadContext, current: State) -> State | None:
        return current

    def update(self, ctx: UpdateContext, current: State, planned: State) -> State | None:
        if any(current.get(key) != planned.get(key) for key in CODE):
            if not _upload(ctx.diagnostics, planned):
                return None
        else:
            planned["code_sha256"] = current.get("code_sha256")
        planned["id"] = current["id"]
        return planned

    def delete(self, ctx: DeleteContext, current: State) -> None:
        return None


class AwsProvider(provider.Provider):
    """The provider: any configuration accepted, one resource."""

    def __init__(self) -> None:
        pass

    def full_name(self) -> str:
        return "hashicorp/aws"

    def get_model_prefix(self) -> str:
        return "aws_"

    def get_provider_schema(self, diags: Diagnostics) -> schema.Schema:
        return schema.Schema(attributes=[schema.Attribute("region", types.String(), optional=True)])

    def validate_config(self, diags: Diagnostics, config: Config) -> None:
        pass

    def configure_provider(self, diags: Diagnostics, config: Config) -> None:
        pass

    def get_data_sources(self) -> list[type[provider.DataSource]]:
        return []

    def get_resources(self) -> list[type[provider.Resource]]:
        return [LambdaFunction]


def main(*_: Any) -> None:
    """Serve the provider over go-plugin's protocol (Terraform starts this executable)."""
    run_provider(AwsProvider())


if __name__ == "__main__":
    main()
