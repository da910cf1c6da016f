"""What the layout asks of a runtime, and what a runtime answers: plain values both ways.

A runtime (`lambdazip_tf.runtimes`) knows one language's installed dependencies: how a folder
declares them, which installed packages ship and which files each owns, where they go in the
zip and in a layer, what each native file was built for, and the command that fixes a
refusal. The core knows none of that: it walks the function's own files, hands the runtime a
`Query` and the collector, and lays out what comes back (docs/design.md, "Runtimes"). The
protocol is defined here, below both, so that the core never imports a runtime and a runtime
never sees the request model or the layout.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple, Protocol

from .binaries import Binary, Target

if TYPE_CHECKING:
    from ..errors import LambdazipError
    from .entries import Entry, Excluded, PackageInfo
    from .filesystem import ObservedFileSystem
    from .selection import Collector, ExcludeRules


class Forced(NamedTuple):
    """A path in the zip that is there although nothing declares it, and why (for `plan`)."""

    arc: str
    reason: str


class Native(NamedTuple):
    """A shipped platform package or native file, and what it was built for."""

    kind: str  # "package" or "file"
    name: str  # name@version, or the file's archive path
    built_for: str


class Alternatives(NamedTuple):
    """A folder of binaries for several platforms, one of which the target needs (Prisma's
    query engines, as `binaryTargets` lists them): the others are left out."""

    owner: str  # who ships them, for the error: "the generated Prisma client"
    binaries: str  # what they are, for `plan`: "Prisma query engine"
    fix: str  # what makes one the target can load


# The error for a native file the target cannot load (in an alternatives folder with none it
# can load, when given): one line naming who ships it and the fix (core/native.py).
Refusal = Callable[["Entry", Binary, "Alternatives | None"], "LambdazipError"]


class Unshipped(NamedTuple):
    """A package installed for development only: installed beside the function, not shipped."""

    name: str
    version: str
    path: str
    files: int
    size: int


class Query(NamedTuple):
    """What a runtime is asked for, resolved from the request: real, absolute folders."""

    source: str  # the function's folder
    package_dir: str  # the folder that declares the dependencies, when not `source` ("")
    allowed_roots: tuple[str, ...]
    exclude_packages: tuple[str, ...] | None  # None: the runtime's default
    include_dev: bool
    layer: bool  # dependencies go into a layer zip
    dereference: bool  # the zips hold no links
    target: Target
    version: str | None  # the language version the function runs on ("20", "3.12"), if given
    installed_dir: str = ""  # the folder of installed dependencies, when the request names it

    @property
    def packages_from(self) -> str:
        """The folder that declares the dependencies and holds what was installed for it."""
        return self.package_dir or self.source


class Dependencies(NamedTuple):
    """What a runtime added to the collector, and what `plan` and the layout need to know."""

    packages: list[PackageInfo]
    owned: frozenset[str]  # archive paths whose subtrees are the dependencies': the layer's
    forced: list[Forced]
    warnings: list[str]  # the build still succeeds
    alternatives: Mapping[str, Alternatives]  # by archive folder, ending in "/"
    native: list[Native]  # platform packages, with what each was built for
    refusal: Refusal  # for a native file the target cannot load


class Runtime(Protocol):
    """One language's dependencies. Each method takes and returns plain values."""

    @property
    def name(self) -> str:
        """The request's `runtime` value: "nodejs"."""
        ...

    @property
    def manifest(self) -> str:
        """The file that declares a folder's dependencies; `plan` starts each chain with it."""
        ...

    @property
    def installed(self) -> str:
        """The folder, beside the manifest, that holds installed dependencies: never walked
        as the function's own files, and left out by default under runtime files."""
        ...

    @property
    def layer_prefix(self) -> str:
        """Where a layer zip holds the dependencies ("nodejs/"), mounted under /opt."""
        ...

    @property
    def default_excludes(self) -> tuple[tuple[str, str], ...]:
        """Patterns left out of every function's own files, whatever its runtime, with the
        reason `plan` shows: the package managers' settings (which may hold a token) and
        state."""
        ...

    @property
    def own_excludes(self) -> tuple[tuple[str, str], ...]:
        """Patterns left out of the own files of this runtime's functions: what the language's
        tools leave beside the code (caches compiled or written on the host)."""
        ...

    def declares(self, fs: ObservedFileSystem, folder: str) -> bool:
        """Whether `folder` declares this runtime's dependencies (the runtime is detected so)."""
        ...

    def is_workspace_root(self, fs: ObservedFileSystem, folder: str) -> bool:
        """Whether `folder` is a workspace's root (the default allowed_roots stops there)."""
        ...

    def hidden_dependencies(self, fs: ObservedFileSystem, folder: str) -> str | None:
        """The manifest of `folder` when it has installed dependencies that a function below
        it without a manifest of its own would leave out; else None."""
        ...

    def skipped(self, fs: ObservedFileSystem, query: Query) -> frozenset[str]:
        """Real paths inside the function's folder that the walk of its own files leaves to
        the runtime: installed dependencies that `collect` ships, or leaves out, itself (a pip
        --target folder that is the function's folder)."""
        ...

    def collect(
        self,
        collector: Collector,
        query: Query,
        rules: ExcludeRules,
        own_rules: ExcludeRules,
    ) -> Dependencies:
        """Add every production dependency's files to `collector`. `rules` filter what a
        package manager installed; `own_rules` (with the default excludes) filter what
        someone's working folder holds."""
        ...

    def other_platforms(self, entries: Sequence[Entry], target: Target) -> list[Excluded]:
        """Entries that are another platform's copy of a binary whose copy for the target is
        beside them, by this runtime's convention; they are left out."""
        ...

    def unshipped(self, query: Query, shipped: Sequence[str]) -> list[Unshipped]:
        """Packages installed for development only (`shipped`: the shipped packages' real
        folders), largest first, for `plan`."""
        ...

    def notes(self, zips: Sequence[Sequence[Entry]], excluded: Sequence[Excluded]) -> list[str]:
        """What `plan` tells a person of the shipped files in the language's terms (Node.js:
        the source maps, and NODE_OPTIONS); `zips`: each zip's entries, the layer's without
        `layer_prefix`."""
        ...

    def locate(self, query: Query, excluded: Sequence[Excluded]) -> dict[str, str]:
        """Where the packages exclude_packages left out are installed, by their archive
        path, for `plan` to measure."""
        ...
