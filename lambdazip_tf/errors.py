"""Every exception the library raises.

One base class, so that the command line has one place that turns failures into a message and
an exit code (lambdazip_tf.cli.main). Each message is one line that names the offending thing
and says what to do; the offending path or package is kept as an attribute for tests and
callers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


class LambdazipError(Exception):
    """Base of every error the tool reports to the user as one line."""

    def __init__(self, message: str) -> None:
        # Messages must stay one line: Terraform shows stderr verbatim and the protocol promises
        # exactly one line (docs/design.md, "The program").
        super().__init__(" ".join(message.split()))


class RequestError(LambdazipError):
    """The request (stdin JSON, request file or flags) is malformed or inconsistent."""

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class SourceError(LambdazipError):
    """A file or folder of the function cannot be read or is of a kind that cannot be zipped."""

    def __init__(self, message: str, path: Path | str | None = None) -> None:
        super().__init__(message)
        self.path = path


class LinkError(SourceError):
    """A symbolic link points outside what may be zipped, dangles, or forms a cycle."""

    def __init__(self, message: str, path: Path | str, target: str | None = None) -> None:
        super().__init__(message, path)
        self.target = target


class DependencyError(LambdazipError):
    """A required npm package is missing or its package.json is unusable."""

    def __init__(
        self, message: str, package: str | None = None, required_by: Path | None = None
    ) -> None:
        super().__init__(message)
        self.package = package
        self.required_by = required_by


class OutputError(LambdazipError):
    """The artifact cannot be written, or is not what was planned."""

    def __init__(self, message: str, path: Path | str | None = None) -> None:
        super().__init__(message)
        self.path = path


class LimitError(LambdazipError):
    """The artifact breaks an AWS Lambda size limit that deployment would reject."""


class InstallError(LambdazipError):
    """The tool's own installation cannot write the bytes it promises (a mismatched library)."""


class PlatformError(LambdazipError):
    """A package or native file is built for another platform than the one Lambda runs."""

    def __init__(self, message: str, package: str | None = None) -> None:
        super().__init__(message)
        self.package = package
