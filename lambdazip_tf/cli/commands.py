"""The subcommands `build`, `plan`, `ensure` and `restore`, and their flags (imported only when
needed).

Each subcommand takes its request from `--request FILE`, `--request-json JSON`,
`--request-env NAME` or flags, flags
winning, decodes and validates it once, and works out its output folder once
(docs/design.md, "The program").
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
from contextlib import AbstractContextManager
from typing import Any, NoReturn, TextIO

from .._version import PROG, __version__
from ..core.outputs import output_folder
from ..core.request import Request, parse_request
from ..errors import RequestError
from ..pipeline import Outcome, build, dry_run
from ..planned import Planned, ensure
from ..speed.snapshot import request_key
from ..speed.speculative import SpeculativePacking, started
from . import process
from .external import Out, decode_json, read_json
from .progress import on_terminal
from .report import human, plan_json, plan_text
from .restore import restore

# Request list keys and the repeatable flag that fills each (`--exclude A --exclude B`).
_LIST_FLAGS = {
    "excludes": "exclude",
    "includes": "include",
    "exclude_packages": "exclude-package",
    "allowed_roots": "allowed-root",
}
_BOOL_KEYS = ("include_dev_dependencies", "layer")

_DESCRIPTION = """\
Build a deterministic, symlink-preserving AWS Lambda zip of a Node.js or Python function with
exactly its production dependencies (what npm, pnpm, Yarn, pip, uv or Poetry installed), and
report its path and base64 sha256 (source_code_hash).

With no arguments, read one JSON request object on stdin and print one JSON object of strings on
stdout: the protocol of Terraform's external data source."""

_EPILOG = """\
Request keys (JSON on stdin or in --request FILE; lists may be jsonencode()d strings):
  {keys}

Environment: SOURCE_DATE_EPOCH sets every entry's timestamp (clamped to 1980);
LAMBDAZIP_DEBUG=1 shows tracebacks; LAMBDAZIP_JOBS=N caps worker processes (1: none);
LAMBDAZIP_NO_CACHE=1 disables the cache; LAMBDAZIP_CACHE_MAX_MB bounds the artifacts
kept in the output folder for reuse (default 512; least recently used deleted first)."""


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors as one line in the project's words instead of usage and exit 2
    (main.py prints them like any other error)."""

    commands: dict[str, argparse.ArgumentParser]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # No abbreviations: a mistyped flag that happens to be a prefix must not pass as another.
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise RequestError(f"{message} (see `{self.prog} --help`)")


def _flags(parser: _Parser, command: str) -> list[str]:
    # argparse lists a parser's options only in its actions (no public accessor).
    return [opt for action in parser.commands[command]._actions for opt in action.option_strings]


def _unknown_flags(parser: _Parser, command: str, extras: list[str]) -> NoReturn:
    """One line for flags the subcommand does not know, with the closest of its own."""
    unknown = next((extra for extra in extras if extra.startswith("-")), extras[0])
    close = difflib.get_close_matches(unknown.split("=")[0], _flags(parser, command), n=1)
    hint = f"; did you mean {close[0]}?" if close else f"; see `{PROG} {command} --help`"
    raise RequestError(f"`{PROG} {command}` has no flag {unknown}{hint}")


def _parse(parser: _Parser, args_list: list[str]) -> argparse.Namespace:
    """The arguments; an unknown flag is named first, before what else is wrong."""
    command = args_list[0] if args_list and args_list[0] in parser.commands else None
    if command is not None:
        known = _flags(parser, command)
        unknown = [
            a for a in args_list[1:] if a[:1] == "-" and a != "-" and a.split("=")[0] not in known
        ]
        if unknown:
            _unknown_flags(parser, command, unknown)
    args, extras = parser.parse_known_args(args_list)
    if extras and args.command is not None:
        _unknown_flags(parser, args.command, extras)
    if extras:
        parser.error(f"unrecognized arguments: {' '.join(extras)}")
    return args


def _parser() -> _Parser:
    keys = "\n  ".join(
        f"{name:<25} {field.description}" for name, field in Request.model_fields.items()
    )
    parser = _Parser(
        prog=PROG,
        description=_DESCRIPTION,
        epilog=_EPILOG.format(keys=keys),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    build_p = sub.add_parser("build", help="build the artifacts and print the result as JSON")
    plan_p = sub.add_parser(
        "plan", help="dry run: show what would be zipped and whether the artifact is current"
    )
    ensure_p = sub.add_parser(
        "ensure",
        help="apply-time helper: rebuild if missing or stale, then verify the planned sha256",
    )
    restore_p = sub.add_parser(
        "restore",
        help="before applying a saved plan: build and check every artifact the plan refers to",
    )
    restore_p.add_argument(
        "plan_json",
        metavar="PLAN_JSON",
        help="the output of `terraform show -json PLANFILE` ('-' for stdin)",
    )
    parser.commands = {"build": build_p, "plan": plan_p, "ensure": ensure_p, "restore": restore_p}
    for p in (build_p, plan_p, ensure_p):
        _add_request_flags(p)
    plan_p.add_argument("--json", action="store_true", help="print the dry run as JSON")
    plan_p.add_argument(
        "--files", action="store_true", help="also list every entry and every left-out path"
    )
    ensure_p.add_argument(
        "--expect-sha256",
        required=True,
        metavar="B64",
        help="the planned output_base64sha256; exit 1 when the artifact differs",
    )
    ensure_p.add_argument(
        "--expect-layer-sha256",
        metavar="B64",
        help="the planned layer_output_base64sha256 (with --layer)",
    )
    for key, meta in (("content-hash", "HEX"), ("files-hash", "HEX"), ("build-options", "TEXT")):
        ensure_p.add_argument(
            f"--expect-{key}",
            metavar=meta,
            help=f"the planned {key.replace('-', '_')}, to name the cause of a difference",
        )
    return parser


def _add_request_flags(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--request",
        metavar="FILE",
        help="JSON request file ('-' for stdin); flags below override its keys",
    )
    source.add_argument(
        "--request-json",
        metavar="JSON",
        help="the JSON request itself",
    )
    source.add_argument(
        "--request-env",
        metavar="NAME",
        help="the JSON request in environment variable NAME (what the Terraform module's "
        "provisioner passes, so that Terraform shows a readable command line)",
    )
    for name, field in Request.model_fields.items():
        help_text = field.description or ""
        if name in _LIST_FLAGS:
            flag = _LIST_FLAGS[name]
            parser.add_argument(
                f"--{flag}",
                dest=name,
                action="append",
                metavar="VALUE",
                help=f"{help_text} Repeat for several; given flags replace the default; "
                "one empty value means an empty list.",
            )
        elif name in _BOOL_KEYS:
            parser.add_argument(
                f"--{name.replace('_', '-')}",
                dest=name,
                action="store_true",
                default=None,
                help=help_text,
            )
        else:
            parser.add_argument(
                f"--{name.replace('_', '-')}", dest=name, metavar=name.upper(), help=help_text
            )


class _Given:
    """A request as the command line gave it: decoded, validated, and where it came from."""

    def __init__(self, args: argparse.Namespace, stdin: TextIO) -> None:
        data: dict[str, Any] = {}
        if args.request:
            data = _load_request_file(args.request, stdin)
        elif args.request_json is not None:
            data = _as_object(decode_json(args.request_json, "--request-json"))
        elif args.request_env is not None:
            data = _as_object(decode_json(_from_env(args.request_env), args.request_env))
        # Given whole as JSON, as the module's provisioner does: the request the data source sent.
        whole = args.request_json is not None or args.request_env is not None
        self.whole_json = dict(data) if whole else None
        for name in Request.model_fields:
            value = getattr(args, name, None)
            if value is None:
                continue
            if name in _LIST_FLAGS:
                value = [v for v in value if v != ""]
            data[name] = value
            self.whole_json = None
        if "source_dir" not in data:
            raise RequestError(
                "give --source-dir or a --request file with source_dir", "source_dir"
            )
        self.request = parse_request(data)
        self.cwd = os.getcwd()
        self.output_dir = output_folder(self.request.output_path, self.request.output_dir, self.cwd)

    def packing(self) -> AbstractContextManager[SpeculativePacking | None]:
        """Speculative packing for this request's build."""
        source = os.path.join(self.cwd, self.request.source_dir)
        return started(source, self.output_dir, self.request.compression_level)


def _from_env(name: str) -> str:
    value = os.environ.get(name)
    if value is None:
        raise RequestError(f"--request-env {name}: the environment has no variable {name}")
    return value


def _load_request_file(name: str, stdin: TextIO) -> dict[str, Any]:
    return _as_object(read_json(name, stdin, f"request file {name}"))


def _as_object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        parse_request(data)  # raises the "must be a JSON object" error
    return dict(data)


def _print_plan(outcome: Outcome, args: argparse.Namespace, out: Out) -> None:
    if args.json:
        out.write(json.dumps(plan_json(outcome), indent=2, sort_keys=True) + "\n")
    else:
        out.write(plan_text(outcome, files=args.files))


def run_command(args_list: list[str], stdin: TextIO, stdout: Out, stderr: TextIO) -> int:
    """Run `build`, `plan`, `ensure` or `restore`; argparse handles --help, --version and usage
    errors."""
    parser = _parser()
    args = _parse(parser, args_list)
    if args.command is None:
        parser.print_help(stderr)
        return 1
    if args.command == "restore":
        return restore(args.plan_json, stdin, stderr)
    given = _Given(args, stdin)
    if args.command == "build":
        with given.packing() as packing:
            outcome = build(
                given.request,
                output_dir=given.output_dir,
                speculative=packing,
                hold=process.keep,
                progress=on_terminal(stderr),
            )
        stdout.write(json.dumps(outcome.strings(), indent=2, sort_keys=True) + "\n")
        # The same in words, for a person (the JSON is for tools and stays alone on stdout).
        for label, facts in (("function", outcome.function), ("layer", outcome.layer)):
            if facts is not None:
                state = "was current" if facts.reused else "built"
                stderr.write(
                    f"{PROG}: {label} zip {facts.path} {state}: {human(facts.size)}, "
                    f"{facts.file_count} files, {facts.symlink_count} links, "
                    f"source_code_hash {facts.base64sha256}\n"
                )
    elif args.command == "plan":
        _print_plan(dry_run(given.request), args, stdout)
    else:
        # Given whole as JSON, as the module's provisioner does, the request is the one the data
        # source sent: its snapshot answers first.
        key = request_key(given.whole_json, given.cwd) if given.whole_json is not None else None
        ensured = ensure(
            given.request,
            Planned(
                args.expect_sha256,
                args.expect_layer_sha256,
                args.expect_content_hash,
                args.expect_files_hash,
                args.expect_build_options,
            ),
            key=key,
            output_dir=given.output_dir,
            speculative=given.packing,
            hold=process.keep,
        )
        state = "was current" if ensured.current else "was rebuilt"
        stderr.write(
            f"{PROG}: {ensured.path} {state} and matches the plan ({ensured.base64sha256})\n"
        )
    return 0
