"""The request with every default and path resolved (docs/design.md, "The request").

Checks the source folder, detects the runtime from the folder that declares the dependencies,
and works out the default allowed_roots. The runtimes are handed in (`Runtime`), so that the
core never imports one.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import OutputError, RequestError, SourceError
from .binaries import Target
from .contenthash import ByteOptions
from .filesystem import ObservedFileSystem
from .outputs import Naming, naming_for, output_folder
from .paths import ancestors, is_within
from .request import RUNTIME_KEYS, Request
from .runtime import Query, Runtime
from .selection import DEFAULT_EXCLUDES

FILES = "files"  # the runtime that zips the folder as it is


@dataclass(frozen=True)
class Context:
    """The request with every default and path resolved."""

    request: Request
    source: str
    output_dir: Path
    name: str
    runtime: str  # a runtime's name, or "files"
    allowed_roots: tuple[str, ...]
    options: ByteOptions
    package_dir: str = ""  # the real folder that declares the dependencies, when not source
    runtimes: tuple[Runtime, ...] = ()  # every runtime there is
    installed_dir: str = ""  # the real folder of installed dependencies, when the request names it

    @property
    def packages_from(self) -> str:
        """The folder that declares the dependencies and holds what was installed for them."""
        return self.package_dir or self.source

    @property
    def chosen_runtime(self) -> Runtime | None:
        """The runtime whose dependencies ship; None for runtime files."""
        return next((r for r in self.runtimes if r.name == self.runtime), None)

    @property
    def target(self) -> Target:
        """The platform the zips are for."""
        return Target(self.options.architecture)

    def naming(self, *, layer: bool) -> Naming:
        """Where the function's (or the layer's) artifact goes."""
        fixed = self.request.output_path
        return naming_for(
            str(self.output_dir), fixed.name if fixed is not None else None, self.name, layer
        )

    def own_defaults(self) -> list[tuple[str, str]]:
        """The default excludes of the function's own files, each with its reason: under
        runtime files, every runtime's installed dependencies too."""
        defaults = []
        if self.chosen_runtime is None:
            defaults += [
                (r.installed, f"dependencies come from runtime {r.name}, not from files")
                for r in self.runtimes
            ]
        defaults += DEFAULT_EXCLUDES
        for runtime in self.runtimes:
            defaults += runtime.default_excludes
        if self.chosen_runtime is not None:
            defaults += self.chosen_runtime.own_excludes
        return defaults

    def query(self) -> Query:
        """What the runtime is asked, in plain values."""
        request = self.request
        return Query(
            self.source,
            self.package_dir,
            self.allowed_roots,
            request.exclude_packages,
            request.include_dev_dependencies,
            request.layer,
            request.symlinks == "dereference",
            self.target,
            request.version_for(self.runtime),
            self.installed_dir,
        )


def resolve_context(
    request: Request,
    fs: ObservedFileSystem,
    runtimes: Sequence[Runtime],
    cwd: Path | None = None,
    output_dir: str | None = None,
) -> Context:
    """Check the source folder and fill the request's defaults.

    `output_dir` is the request's output folder when the caller has worked it out already
    (outputs.output_folder, before validation); otherwise it is worked out here.
    """
    base = cwd or Path.cwd()
    source_path = str(base / request.source_dir)
    if not fs.exists(source_path):
        # A relative path is taken from the folder the tool runs in: under Terraform, the root
        # module's, which a newcomer may not expect.
        relative = "" if request.source_dir.is_absolute() else f" (relative to {base})"
        raise SourceError(f"source_dir {request.source_dir} does not exist{relative}", source_path)
    if not fs.isdir(source_path):
        raise SourceError(f"source_dir {source_path} is not a folder", source_path)
    source = fs.realpath(source_path)
    folder = output_dir or output_folder(request.output_path, request.output_dir, base)
    if fs.realpath(folder) == source:
        # Only a folder inside source_dir can be left out of the zip: here every build would
        # zip the previous builds' artifacts and the cache.
        key = "output_path" if request.output_path is not None else "output_dir"
        raise RequestError(
            f"request key {key!r}: the artifacts would go in source_dir {source} itself, and "
            "each build would zip the last one's; use a folder inside it (such as .lambdazip) "
            "or outside it",
            key=key,
        )
    name = request.name or os.path.basename(source) or "function"
    if request.name is None and not _safe_name(name):
        name = "".join(c if c.isalnum() or c in "._-" else "_" for c in name).lstrip(".") or "fn"
    named = [r for r in runtimes if r.name == request.runtime]
    candidates = named or list(runtimes)
    package_dir = _package_dir(request, fs, base, source, candidates)
    packages_from = package_dir or source
    detected = next((r for r in candidates if r.declares(fs, packages_from)), None)
    if detected is None and request.runtime is None:
        # A key only one runtime reads (site_packages) says which one the request means.
        keyed = {o for k, o in RUNTIME_KEYS.items() if getattr(request, k) is not None}
        detected = next((r for r in runtimes if r.name in keyed), None)
    runtime = request.runtime or (detected.name if detected is not None else FILES)
    if named and detected is None:
        raise RequestError(
            f"runtime {runtime} needs {source}/{named[0].manifest}; add one, set package_dir "
            'to the folder that has it, or set runtime = "files"',
            key="runtime",
        )
    if package_dir and runtime == FILES:
        raise RequestError(
            'package_dir supplies dependencies, which runtime = "files" does not ship; '
            "remove one of the two",
            key="package_dir",
        )
    if request.allowed_roots is None:
        roots: tuple[str, ...] = (source, *_default_root(fs, source, runtimes))
    else:
        roots = (source, *(fs.realpath(str(base / r)) for r in request.allowed_roots))
    if package_dir and not any(is_within(package_dir, root) for root in roots):
        roots = (*roots, package_dir)
    if request.runtime is None and not package_dir and detected is None:
        _refuse_hidden_dependencies(fs, source, roots, runtimes)
    for key, owner in RUNTIME_KEYS.items():
        if getattr(request, key) is not None and runtime != owner:
            raise RequestError(
                f"request key {key!r} is for runtime {owner}, and this function's runtime is "
                f'{runtime}; remove it, or set runtime = "{owner}"',
                key=key,
            )
    installed_dir = _installed_dir(request, fs, base)
    if request.layer and runtime == FILES:
        names = " or ".join(r.name for r in runtimes)
        manifests = " or ".join(f"a {r.manifest}" for r in runtimes)
        raise RequestError(f"layer = true needs runtime {names} ({manifests})", key="layer")
    options = ByteOptions.of(
        request.compression_level, os.environ.get("SOURCE_DATE_EPOCH"), request.architecture
    )
    return Context(
        request,
        source,
        Path(folder),
        name,
        runtime,
        roots,
        options,
        package_dir,
        tuple(runtimes),
        installed_dir,
    )


def _installed_dir(request: Request, fs: ObservedFileSystem, base: Path) -> str:
    """The real site_packages folder, checked; "" when the request does not name it."""
    if request.site_packages is None:
        return ""
    return _real_folder(fs, base, request.site_packages, "site_packages")


def _real_folder(fs: ObservedFileSystem, base: Path, given: Path, key: str) -> str:
    """The real path of the folder a request key names, relative to `base`; a one-line error
    naming the key when it is not a folder."""
    path = str(base / given)
    if not fs.isdir(path):
        relative = "" if given.is_absolute() else f" (relative to {base})"
        raise RequestError(f"{key} {given} is not a folder{relative}", key=key)
    return fs.realpath(path)


def _package_dir(
    request: Request,
    fs: ObservedFileSystem,
    base: Path,
    source: str,
    candidates: Sequence[Runtime],
) -> str:
    """The real package_dir, checked; "" when it is not set or is source_dir itself."""
    if request.package_dir is None:
        return ""
    real = _real_folder(fs, base, request.package_dir, "package_dir")
    if not any(r.declares(fs, real) for r in candidates):
        manifests = " or ".join(r.manifest for r in candidates)
        installed = " or ".join(f"{r.manifest} and {r.installed}" for r in candidates)
        raise RequestError(
            f"package_dir {real} has no {manifests}; name the folder that holds the "
            f"function's {installed}",
            key="package_dir",
        )
    return "" if real == source else real


def _refuse_hidden_dependencies(
    fs: ObservedFileSystem, source: str, roots: tuple[str, ...], runtimes: Sequence[Runtime]
) -> None:
    """A source_dir without a manifest below a package with installed dependencies (a
    TypeScript project's dist/) would zip without them, and fail at its first cold start:
    the request must say which it means. Every folder up to the allowed roots is looked at,
    and beyond them (a checkout without .git: a tarball, a CI stage's artifact) up to the
    nearest project, the first folder with a manifest: reading one is not zipping it, and
    probes of a folder are facts that stay put, where a listing of /tmp would not."""
    for folder in ancestors(os.path.dirname(source)):
        beyond = not any(is_within(folder, root) for root in roots[1:])
        for runtime in runtimes:
            manifest_path = runtime.hidden_dependencies(fs, folder)
            if manifest_path is not None:
                raise RequestError(
                    f"source_dir {source} has no {runtime.manifest}, but {manifest_path} above "
                    "it has installed dependencies, which this zip would leave out; set "
                    f'package_dir = "{folder}" to ship them, or runtime = "files" to zip '
                    "the folder as it is",
                    key="package_dir",
                )
        if beyond and _a_project(fs, folder, runtimes):
            return


def _a_project(fs: ObservedFileSystem, folder: str, runtimes: Sequence[Runtime]) -> bool:
    """Whether `folder` holds a runtime's manifest (probes only)."""
    return any(fs.isfile(os.path.join(folder, r.manifest)) for r in runtimes)


def _safe_name(name: str) -> bool:
    return bool(name) and name[0] != "." and all(c.isalnum() or c in "._-" for c in name)


def _default_root(
    fs: ObservedFileSystem, source: str, runtimes: Sequence[Runtime]
) -> tuple[str, ...]:
    """The nearest enclosing workspace or repository root (the default allowed_roots)."""
    for folder in ancestors(source):
        if fs.exists(os.path.join(folder, ".git")) or any(
            r.is_workspace_root(fs, folder) for r in runtimes
        ):
            return () if folder == source else (folder,)
    return ()


def check_output_dir(output_dir: Path) -> None:
    """Create the output folder, failing with one clear line when that is impossible."""
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"cannot create output folder {output_dir}: {exc.strerror}", output_dir
        ) from None
    if not os.access(output_dir, os.W_OK | os.X_OK):
        raise OutputError(f"output folder {output_dir} is not writable", output_dir)
