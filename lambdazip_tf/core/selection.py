"""File selection: walk folders into entries, apply excludes, and enforce the link policy.

docs/design.md, "Selection" (what is excluded) and "Links". Folders are placed into the
artifact at an archive path; links are resolved only after every placed folder is known, so "the
target ends up inside the artifact" has one answer whatever order the folders were walked in.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pathspec

from ..errors import LinkError, SourceError
from .entries import DIR_MODE, LINK_MODE, Entry, Excluded, file_entry
from .filesystem import ObservedFileSystem
from .paths import arc_join, arc_relpath, is_within, os_relpath

# Left out of the function's own files by default, each with the reason `plan` shows; each
# runtime adds its package managers' settings and state (core/context.Context.own_defaults). A
# request's `excludes` come after these, so "!.env.production" opts a file back in.
DEFAULT_EXCLUDES: tuple[tuple[str, str], ...] = (
    (".git", "version control data"),
    (".terraform", "Terraform working data"),
    (".env*", "likely secret (environment file)"),
    ("*.pem", "likely secret (key or certificate)"),
    ("id_rsa*", "likely secret (SSH key)"),
    # Terraform's own files, for a function kept next to its main.tf (source_dir = path.module):
    # state, saved plans and variables hold secrets, and state changes on every apply, so a zip
    # that held it would never settle; the configuration is no code the function runs, and a
    # zip that held it would redeploy the function for an edit to a comment in main.tf.
    ("*.tf", "Terraform configuration"),
    ("*.tf.json", "Terraform configuration"),
    ("*.tftest.hcl", "Terraform test"),
    ("*.tftest.json", "Terraform test"),
    ("*.tfquery.hcl", "Terraform query"),
    (".terraformrc", "Terraform CLI settings (may hold a token)"),
    ("terraform.rc", "Terraform CLI settings (may hold a token)"),
    ("terraform.tfstate*", "Terraform state (may hold secrets)"),
    (".terraform.tfstate.lock.info", "Terraform state lock"),
    (".terraform.lock.hcl", "Terraform dependency lock file"),
    ("*.tfplan", "Terraform saved plan (may hold secrets)"),
    ("*.tfvars", "Terraform variables (may hold secrets)"),
    ("*.tfvars.json", "Terraform variables (may hold secrets)"),
    ("crash.log", "Terraform crash log"),
    ("crash.*.log", "Terraform crash log"),
    ("override.tf", "Terraform override file"),
    ("override.tf.json", "Terraform override file"),
    ("*_override.tf", "Terraform override file"),
    ("*_override.tf.json", "Terraform override file"),
)


class ExcludeRules:
    """gitignore-style patterns (pathspec) over archive paths, remembering which pattern matched."""

    def __init__(self, labelled: Sequence[tuple[str, str]]) -> None:
        self._labels = [label for _, label in labelled]
        self._patterns = [pattern for pattern, _ in labelled]
        self._spec = pathspec.GitIgnoreSpec.from_lines(self._patterns)

    @classmethod
    def build(cls, user: Iterable[str], defaults: Sequence[tuple[str, str]] = ()) -> ExcludeRules:
        """`defaults` (pattern, why), for someone's own files, followed by the request's
        patterns, which may re-include what a default left out."""
        labelled = [(p, f"default: {why}") for p, why in defaults]
        labelled += [(p, "excludes") for p in user]
        return cls(labelled)

    def __bool__(self) -> bool:
        return bool(self._patterns)

    def reason(self, arc: str, is_dir: bool) -> str | None:
        """Why `arc` is excluded, or None when it is kept."""
        if not self._patterns:
            return None
        result = self._spec.check_file(arc + "/" if is_dir else arc)
        if not result.include or result.index is None:
            return None
        return f"{self._labels[result.index]} pattern {self._patterns[result.index]!r}"


@dataclass(frozen=True)
class Placement:
    """A real folder whose walked content lands at `arc` in the artifact."""

    real: str
    arc: str


@dataclass(frozen=True)
class _PendingLink:
    arc: str
    path: str
    placement: Placement
    rules: ExcludeRules
    # Real folders being copied in place of links above this one: a target among them is a cycle.
    copying: tuple[str, ...] = ()


@dataclass
class Collector:
    """Accumulates entries from placed folders, then resolves their links."""

    fs: ObservedFileSystem
    allowed_roots: Sequence[str]
    dereference: bool = False
    entries: dict[str, Entry] = field(default_factory=dict)
    excluded: list[Excluded] = field(default_factory=list)
    placements: list[Placement] = field(default_factory=list)
    _pending: list[_PendingLink] = field(default_factory=list)

    def add_tree(
        self,
        real: str,
        arc: str,
        rules: ExcludeRules,
        *,
        skip_dirs: frozenset[str] = frozenset(),
        skip_quietly: frozenset[str] = frozenset(),
        skip_names: frozenset[str] = frozenset(),
        skip_root_names: frozenset[str] = frozenset(),
        primary: bool = True,
        copying: tuple[str, ...] = (),
    ) -> None:
        """Walk the real folder `real` into the artifact at `arc`.

        `skip_dirs` are real paths never descended (the output folder). `skip_quietly` are
        real paths of anything never walked nor listed as left out (what a runtime ships, or
        leaves out, itself). Folders named one of
        `skip_names` are skipped at any depth (installed dependencies among the function's own
        files, which the runtime crawls), those named one of `skip_root_names` only right
        under `real` (a package's own installed dependencies, crawled on their own).
        """
        placement = Placement(real, arc)
        if primary:
            self.placements.append(placement)
        if arc:
            self._add(Entry(arc, "dir", DIR_MODE))
        stack = [(real, arc)]
        check = rules.reason if rules else None
        entries = self.entries
        while stack:
            folder, folder_arc = stack.pop()
            for item in _scan(self.fs, folder):
                name = item.name
                if skip_quietly and item.path in skip_quietly:
                    continue
                item_arc = f"{folder_arc}/{name}" if folder_arc else name
                # DirEntry answers is_symlink/is_dir from the directory listing (d_type), so only
                # regular files cost a stat.
                if item.is_symlink():
                    why = check(item_arc, is_dir=False) if check else None
                    if why is None or self._dir_link_kept(rules, item_arc, item.path):
                        self._pending.append(
                            _PendingLink(item_arc, item.path, placement, rules, copying)
                        )
                    else:
                        self._exclude(item_arc, why, item.path)
                elif item.is_dir(follow_symlinks=False):
                    if name in skip_names or (name in skip_root_names and folder == real):
                        continue  # dependencies are crawled on their own
                    if item.path in skip_dirs:
                        self._exclude(item_arc, "the output folder", item.path)
                        continue
                    why = check(item_arc, is_dir=True) if check else None
                    if why:
                        self._exclude(item_arc, why, item.path)
                        continue
                    self._add(Entry(item_arc, "dir", DIR_MODE))
                    stack.append((item.path, item_arc))
                else:
                    st = _entry_stat(item)
                    if not stat.S_ISREG(st.st_mode):
                        # FIFOs, sockets and devices have no content a function could ship;
                        # opening a FIFO would hang the build. Listed by `plan`.
                        self._exclude(item_arc, "not a regular file, folder or link", item.path)
                        continue
                    why = check(item_arc, is_dir=False) if check else None
                    if why:
                        self._exclude(item_arc, why, item.path)
                    elif item_arc in entries:
                        self._add(file_entry(item_arc, item.path, st))
                    else:
                        entries[item_arc] = file_entry(item_arc, item.path, st)

    def add_found_link(self, arc: str, path: str, root: str, rules: ExcludeRules) -> None:
        """A link at `path`, found outside `add_tree` under the real folder `root` (placed at
        the artifact's root), resolved with the others by the same policy (`includes`)."""
        self._pending.append(_PendingLink(arc, path, Placement(root, ""), rules))

    def add_link(self, arc: str, target: str) -> None:
        """Store a link as it is (a package manager's links to packages)."""
        self._add(Entry(arc=arc, kind="link", mode=LINK_MODE, target=target))

    def add_file(self, arc: str, path: str, st: os.stat_result) -> None:
        """Store one file found outside `add_tree` (forced in, or a declared file), with the
        stat its finder took."""
        self._add(file_entry(arc, path, st))

    def exclude(self, item: Excluded) -> None:
        """Record something left out, for `plan`."""
        self.excluded.append(item)

    def include(self, arcs: Iterable[str]) -> None:
        """Forget that these paths were left out: something forced them in."""
        shipped = set(arcs)
        self.excluded = [x for x in self.excluded if x.arc not in shipped]

    def resolve_links(self) -> None:
        """Store each pending link as a link, replace it by its target's content, or fail."""
        while self._pending:
            pending = sorted(self._pending, key=lambda p: p.arc)
            self._pending = []
            for link in pending:
                self._resolve(link)

    def _dir_link_kept(self, rules: ExcludeRules, arc: str, path: str) -> bool:
        # A link to a folder is matched as a folder too, like git matches "dir/" patterns.
        return self.fs.isdir(path) and rules.reason(arc, is_dir=True) is None

    def _resolve(self, link: _PendingLink) -> None:
        raw = _readlink(self.fs, link.path)
        real = _realpath(self.fs, link.path, link.arc, raw)
        target_arc = self._arc_of(real, link.placement)
        if target_arc is None and any(is_within(real, p.real) for p in self.placements):
            # Copying it in would ship what an exclude (or the crawl) deliberately left out.
            raise LinkError(
                f"link {link.path} points to {real}, which is excluded from the artifact; "
                "remove the link or stop excluding its target",
                link.path,
                raw,
            )
        if target_arc is not None and not self.dereference:
            self._add(
                Entry(
                    arc=link.arc,
                    kind="link",
                    mode=LINK_MODE,
                    target=arc_relpath(target_arc, link.arc),
                )
            )
            return
        if target_arc is None and not any(is_within(real, root) for root in self.allowed_roots):
            raise LinkError(
                f"link {link.path} points to {real}, outside the function and allowed_roots; "
                "remove the link, or add the folder that holds its target to allowed_roots",
                link.path,
                raw,
            )
        if self.fs.isdir(real):
            parent_real = self.fs.realpath(os.path.dirname(link.path))
            if real in link.copying or is_within(parent_real, real):
                raise LinkError(
                    f"link cycle: {link.path} -> {raw} leads back into a folder that contains it",
                    link.path,
                    raw,
                )
            self.add_tree(real, link.arc, link.rules, primary=False, copying=(*link.copying, real))
        else:
            self._add(file_entry(link.arc, real, _stat(self.fs, real)))

    def _arc_of(self, real: str, context: Placement) -> str | None:
        """Where `real` lies in the artifact, if a placed folder holds it as an entry."""
        candidates = [context, *sorted(self.placements, key=lambda p: (-len(p.real), p.arc))]
        for placement in candidates:
            if is_within(real, placement.real):
                rel = os_relpath(real, placement.real)
                arc = placement.arc if rel == "." else arc_join(placement.arc, rel)
                if arc in self.entries or arc == placement.arc:
                    return arc
        return None

    def _add(self, entry: Entry) -> None:
        old = self.entries.get(entry.arc)
        if old is not None and old != entry:
            if old.kind == entry.kind == "dir":
                return
            raise SourceError(
                f"two different things would be stored at {entry.arc!r} "
                f"({old.source or old.target or old.kind} and "
                f"{entry.source or entry.target or entry.kind})",
                entry.arc,
            )
        self.entries[entry.arc] = entry

    def _exclude(self, arc: str, reason: str | None, path: str) -> None:
        self.excluded.append(Excluded(arc, reason or "excluded", path))


def _scan(fs: ObservedFileSystem, folder: str) -> list[os.DirEntry[str]]:
    try:
        return fs.scandir(folder)
    except PermissionError:
        raise SourceError(f"cannot read folder {folder}: permission denied", folder) from None
    except OSError as exc:
        raise SourceError(f"cannot read folder {folder}: {exc.strerror}", folder) from None


def _entry_stat(item: os.DirEntry[str]) -> os.stat_result:
    try:
        return item.stat(follow_symlinks=False)
    except OSError as exc:
        raise SourceError(f"cannot stat {item.path}: {exc.strerror}", item.path) from None


def _stat(fs: ObservedFileSystem, path: str) -> os.stat_result:
    try:
        st = fs.stat(path)
    except OSError as exc:
        raise SourceError(f"cannot stat {path}: {exc.strerror}", path) from None
    if not stat.S_ISREG(st.st_mode):
        raise SourceError(f"{path} is not a regular file, folder or link", path)
    return st


def _readlink(fs: ObservedFileSystem, path: str) -> str:
    try:
        return fs.readlink(path)
    except OSError as exc:
        raise LinkError(f"cannot read link {path}: {exc.strerror}", path) from None


def _realpath(fs: ObservedFileSystem, path: str, arc: str, raw: str) -> str:
    try:
        return fs.realpath(path, strict=True)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise LinkError(
                f"link cycle: {path} -> {raw} never reaches a file", path, raw
            ) from None
        raise LinkError(
            f"dangling link {path} -> {raw} (in the archive: {arc}); "
            "remove it or create its target",
            path,
            raw,
        ) from None
