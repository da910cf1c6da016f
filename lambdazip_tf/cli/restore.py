"""`lambdazip-tf restore`: every artifact a saved plan refers to, built and checked before apply.

The module's apply-time check runs only when an artifact's content hash changes. A saved plan
applied on a clean CI runner may still need a zip whose content did not change: a new function
that uses an existing artifact, a replaced function or layer version, `-replace`. `restore`
reads `terraform show -json PLANFILE`, finds the module's data sources (their request and
planned result are in the plan's `prior_state`), and ensures each artifact: built where
missing, and byte for byte the planned one (docs/design.md, "The Terraform module").
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from .._version import PROG
from ..errors import RequestError
from ..planned import Ensured, Planned, ensure
from ..speed.snapshot import request_key
from . import process
from .external import read_json, validated


def data_sources(plan: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """(address, values) of each lambdazip-tf data source in a plan's JSON: the `external`
    data sources whose result is one of ours."""
    state = plan.get("prior_state") if isinstance(plan, dict) else None
    modules = [state.get("values", {}).get("root_module", {})] if isinstance(state, dict) else []
    while modules:
        module = modules.pop(0)
        for resource in module.get("resources", []):
            values = resource.get("values") or {}
            result = values.get("result") or {}
            if (
                resource.get("mode") == "data"
                and resource.get("type") == "external"
                and isinstance(values.get("query"), dict)
                and "output_base64sha256" in result
                and "content_hash" in result
            ):
                yield str(resource.get("address")), values
        modules += module.get("child_modules", [])


def restore(plan_file: str, stdin: TextIO, stderr: TextIO) -> int:
    """Ensure every artifact of the plan; one line per artifact on stderr."""
    found = list(data_sources(read_json(plan_file, stdin, plan_file)))
    if not found:
        raise RequestError(
            f"{plan_file} holds no lambdazip-tf data source; give it the output of "
            "`terraform show -json PLANFILE` for a plan that uses the lambdazip-tf module"
        )
    for address, values in found:
        ensured = _restored(values)
        state = "was current" if ensured.current else "was rebuilt"
        stderr.write(
            f"{PROG}: {address}: {ensured.path} {state} and matches the plan "
            f"({ensured.base64sha256})\n"
        )
    return 0


def _restored(values: dict[str, Any]) -> Ensured:
    query: dict[str, Any] = values["query"]
    result: dict[str, str] = values["result"]
    # The data source ran in its working_dir, by default Terraform's: where this runs.
    # Normalised as os.getcwd() gives it (no trailing "/" when working_dir is unset or "."):
    # the folder is part of the key of the data source's snapshot.
    cwd = os.path.normpath(os.path.join(os.getcwd(), values.get("working_dir") or ""))
    key = request_key(query, cwd)
    planned = Planned(
        result["output_base64sha256"],
        result.get("layer_output_base64sha256"),
        result.get("content_hash"),
        result.get("files_hash"),
        result.get("build_options"),
    )
    return ensure(
        validated(query),
        planned,
        Path(cwd),
        key=key,
        output_dir=key.output_dir if key is not None else None,
        hold=process.keep,
    )
