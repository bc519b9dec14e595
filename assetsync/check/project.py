"""`check` over a project: read its functions, published pages and Studio flows (offline).

The edge of the check stage: it prepares the publish set exactly as `sync` does
(`prepare_files`, `load_functions`), reads the text files that may name published paths and
hands both to the pure `references` and `verify` modules.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from assetsync.check.references import (
    Reference,
    html_references,
    js_references,
    studio_references,
    twiml_references,
)
from assetsync.check.verify import Finding, Target, verify
from assetsync.config import Config
from assetsync.errors import LockHeldError
from assetsync.frozen import frozen
from assetsync.functions.local import FunctionProject, load_functions
from assetsync.models import PublishedFile
from assetsync.prepare.classify import Issue, Severity
from assetsync.state.db import State

__all__ = ["CheckReport", "check_project", "check_publish_set", "reference_issues", "studio_files",
           "targets_of"]

_TWIML = (".xml", ".twiml")
_HTML = (".html", ".htm")
# Text files larger than this are not read for references: TwiML, pages and code are small, and
# a large file is data, not something that names a published path.
_MAX_TEXT = 2 * 1024 * 1024
_SKIP_DIRS = frozenset({"node_modules", ".git", ".assetsync", ".twiliodeployinfo", "dist"})


@frozen
class CheckReport:
    """What `check` found: each finding, and how much it looked at."""

    findings: tuple[Finding, ...]
    references: int
    files_read: int

    @property
    def errors(self) -> tuple[Finding, ...]:
        """The findings that fail the check."""
        return tuple(f for f in self.findings if f.severity == "error")


def targets_of(files: tuple[PublishedFile, ...],
               project: FunctionProject | None) -> dict[str, Target]:
    """What a sync publishes, by path, as the check needs it."""
    targets = {f.path: Target(f.visibility.value, f.content_type, f.size) for f in files}
    for fn in project.functions if project is not None else ():
        targets[fn.path] = Target(fn.visibility.value, None, fn.size)
    return targets


def check_project(config: Config) -> CheckReport:
    """Find every reference to a published path in the project and check it (offline).

    Raises:
        ConfigError: a bad package.json or .env (as `sync` would).
    """
    from assetsync.prepare.stage import prepare_files  # the sync's own preparation

    project = load_functions(config)
    try:
        state = State.open(config.state_dir)
    except LockHeldError:  # `watch` holds it: a read-only view is enough to prepare
        state = State.open(config.state_dir, readonly=True)
    with state:
        prepared = prepare_files(config, state)
    return check_publish_set(config, prepared.files, project)


def check_publish_set(config: Config, files: tuple[PublishedFile, ...],
                      project: FunctionProject | None) -> CheckReport:
    """Check every reference in the project against a publish set already prepared (`sync`
    passes its own, so nothing is prepared twice): reads the TwiML and HTML files among
    `files`, the functions and the Studio flows."""
    targets = targets_of(files, project)
    references: list[Reference] = []
    read = 0
    for label, text, published in _texts(config, files, project):
        read += 1
        references.extend(_references(label, text, published))
    return CheckReport(tuple(verify(references, targets)), len(references), read)


def reference_issues(config: Config, files: tuple[PublishedFile, ...],
                     project: FunctionProject | None) -> tuple[Issue, ...]:
    """The check's errors as the preparation's issues, for `sync`, `plan` and `status`: errors
    that stop a sync with `[check] strict = true`, else warnings (one line each, naming the
    file and line, the path and what is wrong)."""
    severity: Severity = "error" if config.check.strict else "warning"
    return tuple(Issue(f"{f.file}:{f.line}", f"{f.path}: {f.message}", severity)
                 for f in check_publish_set(config, files, project).errors)


def _references(label: str, text: str, published: str | None) -> list[Reference]:
    lower = label.lower()
    if lower.endswith(".js"):
        return js_references(label, text)
    if published is not None and lower.endswith(_TWIML):
        return twiml_references(label, text, published)
    if published is not None and lower.endswith(_HTML):
        return html_references(label, text, published)
    if lower.endswith(".json"):
        return studio_references(label, text)
    return []


def _texts(config: Config, files: tuple[PublishedFile, ...],
           project: FunctionProject | None) -> Iterator[tuple[str, str, str | None]]:
    """(label for messages, text, published path or None) of every file worth reading."""
    root = config.root
    for f in files:
        if f.variant is None and f.source.lower().endswith(_TWIML + _HTML):
            text = _read(config.source / f.source)
            if text is not None:
                yield _label(config.source / f.source, root), text, f.path
    if project is not None:
        for fn in project.functions:
            text = _read(Path(fn.content_path))
            if text is not None:
                yield _label(Path(fn.content_path), root), text, None
    for flow in studio_files(root, config):
        text = _read(flow)
        if text is not None and '"states"' in text:
            yield _label(flow, root), text, None


def studio_files(root: Path, config: Config) -> Iterator[Path]:
    """JSON files in the project folder and its first level of subfolders (not the source):
    the Studio flow exports the check reads (`plan`'s output memo keys on them too)."""
    skip = {config.source.resolve(), config.state_dir.resolve()}
    for path in sorted(root.glob("*.json")) + sorted(root.glob("*/*.json")):
        if path.parent.resolve() in skip or path.parent.name in _SKIP_DIRS:
            continue
        if path.name in ("package.json", "package-lock.json", "tsconfig.json"):
            continue
        yield path


def _read(path: Path) -> str | None:
    try:
        if path.stat().st_size > _MAX_TEXT:
            return None
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _label(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)
