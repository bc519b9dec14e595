"""Local files -> what to publish: scan (through the stat cache), classify, transform, check.

The first half of a sync, with no network: `prepare_files` returns the files that can be
published and, separately, the ones that cannot (each named), so a sync stops before any write.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from assetsync.classify import Issue, check_published, classify
from assetsync.config import Config
from assetsync.errors import LimitError
from assetsync.models import PublishedFile
from assetsync.scan import IgnoreRules, Snapshot, rescan_paths, scan_tree
from assetsync.state import State
from assetsync.sync_types import EventCallback

__all__ = ["Prepared", "issue_line", "prepare_files"]


@dataclass(frozen=True, slots=True)
class Prepared:
    """The files to publish, after scan, classify, transform and checks."""

    files: tuple[PublishedFile, ...]
    warnings: tuple[Issue, ...]
    errors: tuple[Issue, ...]
    snapshot: Snapshot

    def raise_errors(self) -> None:
        """One clear error naming the files that cannot be published, if any."""
        if not self.errors:
            return
        shown = "; ".join(issue_line(i) for i in self.errors[:5])
        more = f" (and {len(self.errors) - 5} more)" if len(self.errors) > 5 else ""
        raise LimitError(
            f"{len(self.errors)} file(s) cannot be published: {shown}{more}. Fix or ignore them "
            "([ignore] patterns in .assetsync.toml); nothing was uploaded",
            path=self.errors[0].path,
        )


# Watch mode calls sync() after each debounce with the dirty paths: keep the last snapshot per
# (source, state folder) so only those paths are re-examined.
_SNAPSHOTS: dict[tuple[str, str], Snapshot] = {}


def _transform_hook() -> Callable[..., object] | None:
    try:
        module = importlib.import_module("assetsync.transform")
    except ImportError:
        return None
    hook = getattr(module, "transform_files", None)
    return hook if callable(hook) else None


def prepare_files(
    config: Config,
    state: State,
    *,
    paths: Iterable[str] | None = None,
    on_event: EventCallback | None = None,
) -> Prepared:
    """Scan (through the stat cache), classify, transform and check the source folder."""
    rules = IgnoreRules.for_config(config)
    key = (str(config.source), str(config.state_dir))
    previous = _SNAPSHOTS.get(key)

    if paths is not None and previous is not None:
        snapshot = rescan_paths(previous, paths, source=config.source, rules=rules, cache=state,
                                on_event=on_event)
    else:
        snapshot = scan_tree(config.source, rules=rules, cache=state, on_event=on_event)
    _SNAPSHOTS[key] = snapshot
    classified = classify(snapshot.files.values(), config.visibility, source=config.source)
    files: tuple[PublishedFile, ...] = classified.files
    issues: list[Issue] = [Issue(i.path, i.message, "warning") for i in snapshot.issues]
    issues.extend(classified.issues)
    hook = _transform_hook()
    if hook is not None and config.optimize is not None:
        result = hook(files, config.optimize, source=config.source,
                      cache_dir=config.state_dir / "transform", on_event=on_event)
        files = tuple(result.files)  # type: ignore[attr-defined]
        issues.extend(Issue(i.path, i.message, i.severity)
                      for i in result.issues)  # type: ignore[attr-defined]
    issues.extend(check_published(files))
    errors = tuple(i for i in issues if i.severity == "error")
    bad = {i.path for i in errors}
    return Prepared(
        files=tuple(f for f in files if f.path not in bad and f.source not in bad),
        warnings=tuple(i for i in issues if i.severity != "error"),
        errors=errors,
        snapshot=snapshot,
    )


def issue_line(issue: Issue) -> str:
    """`path: message`, unless the message already names the path."""
    if issue.path in ("", "/") or issue.message.startswith(issue.path):
        return issue.message
    return f"{issue.path}: {issue.message}"
