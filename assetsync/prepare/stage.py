"""Local files -> what to publish: scan (through the stat cache), classify, transform, check.

The first half of every command, with no network: `prepare_files` returns the files that can be
published and, separately, the ones that cannot (each named); `blocking_problems` runs every
check on that publish set (`CHECKS`: collisions and per-file rules found on the way, the
functions' rules, an empty site), so `sync` stops before its first request and `plan` prints the
very same lines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from assetsync.config import Config
from assetsync.errors import LimitError
from assetsync.frozen import frozen, replace
from assetsync.limits import DEFAULT_BUILD_LIMITS, BuildLimits
from assetsync.models import PublishedFile, ScannedFile
from assetsync.prepare.classify import (
    Issue,
    check_published,
    classify,
    duplicate_paths,
    published_name,
)
from assetsync.prepare.secret_check import check_secrets
from assetsync.results import EventCallback, SyncEvent
from assetsync.scan.rules import IgnoreRules, Snapshot, rescan_paths, scan_tree
from assetsync.state.db import State
from assetsync.state.last_outcome import Carried, changed_sources, splice

if TYPE_CHECKING:
    from assetsync.functions.local import FunctionProject
    from assetsync.prepare.memo import PrepareMemo

__all__ = [
    "CHECKS",
    "BlockedError",
    "Check",
    "Prepared",
    "PublishSet",
    "ScanMemory",
    "blocking_problems",
    "issue_line",
    "prepare_files",
    "raise_blocking",
]


@frozen
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
    # Published paths of files that exist but could not be read (or hashed stably) this run:
    # not gone, so their live version stays (a new one waits for the next run).
    held: frozenset[str] = frozenset()

    def raise_errors(self) -> None:
        """`BlockedError` naming the files that cannot be published, if any."""
        raise_blocking(self.errors)


class BlockedError(LimitError):
    """Files or a build that cannot be published, found before any request: `issues` holds
    one error per file (the lines `plan` prints); the message sums them up in one line."""

    def __init__(self, issues: tuple[Issue, ...]) -> None:
        shown = "; ".join(issue_line(i) for i in issues[:5])
        more = f" (and {len(issues) - 5} more)" if len(issues) > 5 else ""
        super().__init__(
            f"{len(issues)} file(s) cannot be published: {shown}{more}. Fix or ignore them "
            "([ignore] patterns in .assetsync.toml); nothing was uploaded",
            path=issues[0].path, limit="build")
        self.issues = issues


def raise_blocking(issues: Iterable[Issue]) -> None:
    """Raise `BlockedError` when any of `issues` is an error."""
    errors = tuple(i for i in issues if i.severity == "error")
    if errors:
        raise BlockedError(errors)


_NO_SNAPSHOT = Snapshot(files={})


class ScanMemory:
    """The last snapshot of one source folder, kept by a caller that prepares it again and
    again (watch mode), so that a `paths` hint re-examines only those paths. A plain holder the
    caller owns: nothing is remembered between callers."""

    __slots__ = ("key", "snapshot")

    def __init__(self) -> None:
        self.key: tuple[str, str] | None = None
        self.snapshot: Snapshot | None = None

    def get(self, key: tuple[str, str]) -> Snapshot | None:
        """The snapshot kept for `key` (source, state folder), if any."""
        return self.snapshot if self.key == key else None

    def keep(self, key: tuple[str, str], snapshot: Snapshot) -> None:
        """Keep `snapshot` as the last one of `key`."""
        self.key, self.snapshot = key, snapshot


def prepare_files(
    config: Config,
    state: State,
    *,
    paths: Iterable[str] | None = None,
    on_event: EventCallback | None = None,
    carried: Carried | None = None,
    memory: ScanMemory | None = None,
    memo: PrepareMemo | None = None,
    snapshot: Snapshot | None = None,
) -> Prepared:
    """Scan (through the stat cache), classify, transform and check the source folder.

    `carried`: the environment's last outcome under this config (`assetsync.state.last_outcome`);
    when the scan finds its files with only some contents changed, only those are prepared
    again. `paths` (watch mode's hint: only these may have changed) is used with `memory`, the
    caller's last snapshot of this folder; without one the whole folder is scanned. `memo`
    (`plan`'s): the state folder's preparation memo, reused when the scan rows and settings
    are those it was kept under, and kept afresh otherwise (the caller saves it). `snapshot`:
    the folder as the caller has just scanned it through this state (`plan`'s, which keys its
    output memo by it), instead of scanning it again.
    """
    rules = IgnoreRules.for_config(config)
    key = (str(config.source), str(config.state_dir))
    previous = memory.get(key) if memory is not None else None
    if snapshot is None and paths is not None and previous is not None:
        snapshot = rescan_paths(previous, paths, source=config.source, rules=rules, cache=state,
                                on_event=on_event)
    elif snapshot is None:
        snapshot = scan_tree(config.source, rules=rules, cache=state, on_event=on_event)
    if memory is not None:
        memory.keep(key, snapshot)
    scan_warnings = tuple(Issue(i.path, i.message, "warning") for i in snapshot.issues)
    # A file the scan saw but could not read is still there: its live version stays.
    held = frozenset(published_name(i.path)[0] for i in snapshot.issues)
    changed = changed_sources(snapshot.files, carried) if carried is not None else None
    if carried is not None and changed is not None:
        some = _prepare(config, changed, on_event, some=True)
        spliced = splice(carried, changed, some.files) if some.clean else None
        if spliced is not None:
            return _refuse_secrets(config, state, on_event, Prepared(
                files=spliced, warnings=scan_warnings, errors=(), snapshot=snapshot,
                changed=len(changed), clean=True,
                images=some.images or bool(carried.encoders), held=held))
    if memo is not None:
        hit = memo.reuse(snapshot.files,
                         lambda some: _prepare(config, some, on_event, some=True))
        if hit is not None:
            if on_event is not None:
                on_event(SyncEvent("prepared", files=len(hit.files), total=len(snapshot.files),
                                   message="from the preparation memo "
                                           "(changed files prepared again)"))
            return _refuse_secrets(config, state, on_event, replace(
                hit, warnings=scan_warnings + hit.warnings, snapshot=snapshot, held=held))
    every = _prepare(config, snapshot.files.values(), on_event)
    if memo is not None:
        memo.keep(snapshot.files, every)
    return _refuse_secrets(config, state, on_event, replace(
        every, warnings=scan_warnings + every.warnings, snapshot=snapshot, held=held))


def _refuse_secrets(config: Config, state: State, on_event: EventCallback | None,
                    prepared: Prepared) -> Prepared:
    """The secret check over the whole publish set, carried files too (its verdicts are
    cached by content digest: unchanged files are not read): a public or protected file
    holding a credential becomes an error, and leaves the set."""
    found = check_secrets(prepared.files, config, save=not state.readonly, on_event=on_event)
    if not found:
        return prepared
    bad = {i.path for i in found}
    return replace(prepared, files=tuple(f for f in prepared.files if f.source not in bad),
                   errors=prepared.errors + found, clean=False)


def _without_collisions(
    files: tuple[PublishedFile, ...],
) -> tuple[tuple[PublishedFile, ...], tuple[Issue, ...]]:
    """Two sources that publish to one path (`a b.txt` and `a-b.txt`, `x.txt` and
    `x.private.txt`), judged before the transform step so that no later stage can hide one:
    an error each, and neither is published."""
    collisions = duplicate_paths((f.path, f.source) for f in files)
    if not collisions:
        return files, ()
    clashing = {published_name(i.path)[0] for i in collisions}
    return tuple(f for f in files if f.path not in clashing), collisions


def _prepare(
    config: Config, scanned: Iterable[ScannedFile], on_event: EventCallback | None,
    *, some: bool = False,
) -> Prepared:
    """Classify, transform and check scanned files (the snapshot is left to the caller);
    `some`: they are a few of the site's (see `transform_files`)."""
    classified = classify(scanned, config.visibility, source=config.source)
    files, collisions = _without_collisions(classified.files)
    issues: list[Issue] = [*classified.issues, *collisions]
    images = False
    audio: tuple[object, ...] = ()
    # A carried sync whose changes are all outside the source (a function, the .env) has no
    # file to transform: it need not load the transform modules.
    if (files or not some) and config.optimize is not None:
        # Imported here: a plan or sync with nothing to transform never loads the encoders.
        from assetsync.media.stage import transform_files

        result = transform_files(files, config.optimize, source=config.source,
                                 cache_dir=config.state_dir / "transform", on_event=on_event,
                                 some=some)
        files = result.files
        images = result.stats.images > 0
        audio = tuple(result.audio)
        issues.extend(Issue(i.path, i.message, i.severity) for i in result.issues)
    issues.extend(i for i in check_published(files) if i not in issues)
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


# ------------------------------------------------------------------------------- the checks

@frozen
class PublishSet:
    """What the checks look at: the prepared files, the project's functions (None: it deploys
    none), the per-build limits and the source folder (for messages)."""

    files: tuple[PublishedFile, ...]
    functions: FunctionProject | None
    limits: BuildLimits
    source: Path


Check = Callable[[PublishSet], Iterable[Issue]]


def _functions_deployable(publish: PublishSet) -> Iterable[Issue]:
    """The functions' own problems and Twilio's rules for them (50 per build, path rules,
    sizes, a path shared with an asset)."""
    project = publish.functions
    if project is None:
        return ()
    from assetsync.functions.plan import check_functions

    paths = frozenset(f.path for f in publish.files)
    return (*project.issues, *check_functions(project.functions, paths, limits=publish.limits))


def _something_to_publish(publish: PublishSet) -> Iterable[Issue]:
    """Twilio refuses a build with no version at all (twilio-cli #215)."""
    if publish.files or (publish.functions is not None and publish.functions.functions):
        return ()
    return (Issue("/", f"nothing left to publish: the source folder {publish.source} has no "
                       "file to publish (empty, or every file ignored) and Twilio refuses an "
                       "empty build; add a file, or check [ignore]"),)


# Every check a command runs before its first request, in order; each returns its errors
# (and warnings) as `Issue`s naming the file.
CHECKS: tuple[Check, ...] = (_functions_deployable, _something_to_publish)


def blocking_problems(
    prepared: Prepared, functions: FunctionProject | None, *, source: Path,
    limits: BuildLimits = DEFAULT_BUILD_LIMITS,
) -> tuple[Issue, ...]:
    """Every problem found in the prepared publish set: the preparation's own errors, then
    each of `CHECKS`; sorted, each once. The errors among them stop a sync."""
    publish = PublishSet(prepared.files, functions, limits, source)
    found: list[Issue] = list(prepared.errors)
    for check in CHECKS:
        found.extend(i for i in check(publish) if i not in found)
    return tuple(sorted(found, key=lambda i: (i.severity != "error", i.path, i.message)))
