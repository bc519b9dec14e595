"""Local files -> what to publish: scan (through the stat cache), classify, transform, check.

The first half of a sync, with no network: `prepare_files` returns the files that can be
published and, separately, the ones that cannot (each named), so a sync stops before any write.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from assetsync.state.last_outcome import Carried, changed_sources, splice
from assetsync.prepare.classify import Issue, check_published, classify
from assetsync.config import Config
from assetsync.errors import LimitError
from assetsync.models import PublishedFile, ScannedFile
from assetsync.scan.rules import IgnoreRules, Snapshot, rescan_paths, scan_tree
from assetsync.state.db import State
from assetsync.results import EventCallback

__all__ = ["Prepared", "issue_line", "prepare_files"]


@dataclass(frozen=True, slots=True)
class Prepared:
    """The files to publish, after scan, classify, transform and checks."""

    files: tuple[PublishedFile, ...]
    warnings: tuple[Issue, ...]
    errors: tuple[Issue, ...]
    snapshot: Snapshot
    # Sources prepared again when a carried outcome's files stood in for the others (None:
    # every file was prepared).
    changed: int | None = None
    # Every warning is the scan's: the classify, transform and check steps found nothing.
    clean: bool = False
    # The transform step looked at images (a spliced preparation: or the carried outcome held
    # some), so what it published depends on the image encoders' versions too.
    images: bool = False
    # What the transform step made of each audio file (`transform_audio_stage.AudioReport`),
    # for `plan`.
    audio: tuple[object, ...] = ()

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


_NO_SNAPSHOT = Snapshot(files={})

# Watch mode calls sync() after each debounce with the dirty paths: keep the last snapshot per
# (source, state folder) so only those paths are re-examined.
_SNAPSHOTS: dict[tuple[str, str], Snapshot] = {}


def _transform_hook() -> Callable[..., object] | None:
    try:
        module = importlib.import_module("assetsync.media.stage")
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
    carried: Carried | None = None,
) -> Prepared:
    """Scan (through the stat cache), classify, transform and check the source folder.

    `carried`: the environment's last outcome under this config (`assetsync.state.last_outcome`); when the
    scan finds its files with only some contents changed, only those are prepared again.
    """
    rules = IgnoreRules.for_config(config)
    key = (str(config.source), str(config.state_dir))
    previous = _SNAPSHOTS.get(key)

    if paths is not None and previous is not None:
        snapshot = rescan_paths(previous, paths, source=config.source, rules=rules, cache=state,
                                on_event=on_event)
    else:
        snapshot = scan_tree(config.source, rules=rules, cache=state, on_event=on_event)
    _SNAPSHOTS[key] = snapshot
    scan_warnings = tuple(Issue(i.path, i.message, "warning") for i in snapshot.issues)
    changed = changed_sources(snapshot.files, carried) if carried is not None else None
    if carried is not None and changed is not None:
        some = _prepare(config, changed, on_event, some=True)
        spliced = splice(carried, changed, some.files) if some.clean else None
        if spliced is not None:
            return Prepared(files=spliced, warnings=scan_warnings, errors=(), snapshot=snapshot,
                            changed=len(changed), clean=True,
                            images=some.images or bool(carried.encoders))
    every = _prepare(config, snapshot.files.values(), on_event)
    return replace(every, warnings=scan_warnings + every.warnings, snapshot=snapshot)


def _prepare(
    config: Config, scanned: Iterable[ScannedFile], on_event: EventCallback | None,
    *, some: bool = False,
) -> Prepared:
    """Classify, transform and check scanned files (the snapshot is left to the caller);
    `some`: they are a few of the site's (see `transform_files`)."""
    classified = classify(scanned, config.visibility, source=config.source)
    files: tuple[PublishedFile, ...] = classified.files
    issues: list[Issue] = list(classified.issues)
    images = False
    audio: tuple[object, ...] = ()
    # A carried sync whose changes are all outside the source (a function, the .env) has no
    # file to transform: it need not load the transform modules.
    hook = _transform_hook() if files or not some else None
    if hook is not None and config.optimize is not None:
        result = hook(files, config.optimize, source=config.source,
                      cache_dir=config.state_dir / "transform", on_event=on_event, some=some)
        files = tuple(result.files)  # type: ignore[attr-defined]
        images = result.stats.images > 0  # type: ignore[attr-defined]
        audio = tuple(getattr(result, "audio", ()))
        issues.extend(Issue(i.path, i.message, i.severity)
                      for i in result.issues)  # type: ignore[attr-defined]
    issues.extend(check_published(files))
    errors = tuple(i for i in issues if i.severity == "error")
    bad = {i.path for i in errors}
    return Prepared(
        files=tuple(f for f in files if f.path not in bad and f.source not in bad),
        warnings=tuple(i for i in issues if i.severity != "error"),
        errors=errors,
        snapshot=_NO_SNAPSHOT,
        clean=not issues,
        images=images,
        audio=audio,
    )


def issue_line(issue: Issue) -> str:
    """`path: message`, unless the message already names the path."""
    if issue.path in ("", "/") or issue.message.startswith(issue.path):
        return issue.message
    return f"{issue.path}: {issue.message}"
