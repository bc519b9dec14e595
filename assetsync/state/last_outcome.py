"""Carried outcomes: what an environment's last sync published, so the next one can skip the
per-file work on every file that did not change.

While a single-service sync's build builds, it remembers (`remember`) the scan's rows, the
files it publishes, that build (each version with its path, the functions, dependencies and
runtime) and the recorded versions' generation (`State.versions_generation`). The next sync of
that environment, under the same settings, uses it twice:

- `splice`: when the scan finds the very same files and only some contents changed,
  `prepare_files` classifies, transforms and checks just those and keeps every other published
  file as it was (what it would compute again: those steps depend on the file and the settings
  only);
- `recorded_view`: when the live build is still that build, assetsync recorded deploying it,
  nothing is pending or journalled and no recorded version has changed since, the plan reads
  the service's record from it instead of from the state (1,000 version rows) and the live
  build from it instead of parsing its kept manifest. The plan itself is the same function on
  the same answers: the view holds every version of the published files, and the state is asked
  only about the changed ones.

The live build is the truth and the outcome only a cache of it: it stands in for the exact
live build it was made from and for nothing else. A rollback, a promote to this environment,
another tool's deployment (each changes the live build), a prune or another environment's sync
(each changes the recorded versions), files added or removed, other settings, a crash's
leftovers: any of them sends the next sync down the general path, which remembers again. Tests
hold both paths equal.
"""

from __future__ import annotations

import marshal
import sys
from collections.abc import Callable, Mapping, Sequence
from itertools import compress, count, repeat
from operator import attrgetter, is_not, ne
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from assetsync.config import Config
from assetsync.frozen import frozen
from assetsync.models import PublishedFile, ScannedFile, Visibility
from assetsync.plan.assets import RecordedService
from assetsync.state.db import State
from assetsync.state.service_records import AssetSidsOnFirstUse

if TYPE_CHECKING:  # loaded only to decode an outcome: a plan without one need not load them
    from assetsync.remote.resources import Build

__all__ = ["Carried", "changed_rows", "changed_sources", "load", "recorded_view", "remember",
           "save", "settings_of", "splice", "splice_files"]

_FORMAT = 1
_MARSHAL_VERSION = 4
_VERSION_KEY = attrgetter("digest", "path", "visibility")  # a recorded version's key
_PATH = attrgetter("path")
_SOURCE = attrgetter("source")
# Above this share of changed files the general path costs no more than splicing.
_MOST_CHANGED = 0.25


@frozen
class Carried:
    """An environment's last outcome (see the module docstring)."""

    settings: str  # `settings_of` the config it was made under
    encoders: str  # the image encoders' versions when images were transformed, else ""
    generation: int  # `State.versions_generation()` once its build's versions were recorded
    build: Build  # the build it was deployed as (its `status` "completed", as a kept manifest)
    scanned: tuple[tuple[str, int, str], ...]  # the scan's (rel_path, size, digest), by path
    files: tuple[PublishedFile, ...]  # what was published, in `prepare_files` order
    sids: tuple[str, ...]  # each file's version in `build`


def settings_of(config: Config) -> str:
    """The settings a carried outcome depends on, as text that is the same in every process
    (frozen dataclasses of strings, numbers and tuples: their repr is stable)."""
    return repr((_FORMAT, str(config.source), config.visibility, config.optimize, config.shard))


# Stored by columns, so that loading makes every record with C-level maps (per-record Python
# code here would cost about what the outcome saves); a visibility is stored by its index.
_VISIBILITIES = tuple(Visibility)
_new = tuple.__new__


def _columns(rows: Sequence[tuple[object, ...]], width: int) -> tuple[tuple[object, ...], ...]:
    return tuple(zip(*rows)) if rows else ((),) * width


def _encode(c: Carried) -> bytes:
    b = c.build
    files: list[Any] = list(_columns(c.files, 8))
    files[1] = tuple(map(_VISIBILITIES.index, files[1]))
    # The build's copies of the files' paths as the very same objects: marshal then writes
    # each once (a third less to store, read and make).
    same = {path: path for path in files[0]}
    sids, parents, paths, visibilities = _columns(b.asset_versions, 4)
    assets = (sids, parents, tuple(same.get(p, p) for p in paths),
              tuple(map(sys.intern, visibilities)))  # type: ignore[arg-type]
    build = (b.sid, b.service_sid, assets,
             tuple(map(tuple, b.function_versions)), b.dependencies, b.runtime, b.date_created)
    payload: Any = (_FORMAT, c.settings, c.encoders, c.generation, build,
                    _columns(c.scanned, 3), tuple(files), c.sids)
    return marshal.dumps(payload, _MARSHAL_VERSION)


def _decode(data: bytes) -> Carried | None:
    """The outcome in `data`, or None if it is not one this version wrote (a cache: then the
    general path runs and remembers anew)."""
    from assetsync.remote.resources import Build, VersionRef

    try:
        fmt, settings, encoders, generation, build, scanned, files, sids = marshal.loads(data)
        if fmt != _FORMAT or len(files) != 8 or len(scanned) != 3:
            return None
        sid, service_sid, assets, functions, deps, runtime, created = build
        files = [files[0], map(_VISIBILITIES.__getitem__, files[1]), *files[2:]]
        carried = Carried(
            settings=settings, encoders=encoders, generation=generation,
            build=Build(sid=sid, service_sid=service_sid, status="completed",
                        asset_versions=tuple(map(_new, repeat(VersionRef), zip(*assets))),
                        function_versions=tuple(map(_new, repeat(VersionRef), functions)),
                        dependencies=deps, runtime=runtime, date_created=created),
            scanned=tuple(zip(*scanned)),
            files=tuple(map(_new, repeat(PublishedFile), zip(*files))),
            sids=sids,
        )
    except (EOFError, ValueError, TypeError, IndexError):
        return None
    return carried if len(carried.files) == len(sids) else None


def load(state: State, target: str, service: str, environment: str, settings: str
         ) -> Carried | None:
    """The environment's carried outcome if it was made under these settings (and, when it
    holds transformed images, these image encoders)."""
    data = state.carried_outcome(target, service, environment)
    carried = _decode(data) if data is not None else None
    if carried is None or carried.settings != settings:
        return None
    if carried.encoders:  # only then: reading them imports Pillow
        from assetsync.media.cache import encoder_versions

        if carried.encoders != encoder_versions():
            return None
    return carried


def remember(
    state: State, target: str, service: str, environment: str, *, settings: str,
    encoders: Callable[[], str] | None, scanned: Mapping[str, ScannedFile],
    files: Sequence[PublishedFile], build: Build,
) -> bool:
    """Keep `build` (just created from `files`) as the environment's outcome; False when the
    build does not hold a version of every file (then nothing is kept).

    `encoders`: how to read the image encoders' versions, when images were transformed.
    """
    by_path = {v.path: v.sid for v in build.asset_versions}
    sids = tuple(by_path.get(f.path, "") for f in files)
    if "" in sids:
        return False
    save(state, target, service, environment, Carried(
        settings=settings, encoders=encoders() if encoders is not None else "",
        generation=state.versions_generation(),
        build=build, scanned=tuple(map(tuple, scanned.values())),  # type: ignore[arg-type]
        files=tuple(files), sids=sids,
    ))
    return True


def save(state: State, target: str, service: str, environment: str, carried: Carried) -> None:
    """Keep `carried` as the environment's outcome, replacing the last one."""
    state.save_carried_outcome(target, service, environment, _encode(carried))


def changed_sources(
    scanned: Mapping[str, ScannedFile], carried: Carried
) -> list[ScannedFile] | None:
    """The scanned files whose size or content differs from the carried outcome's, or None
    unless the scan found exactly its files (by path) and few of them changed."""
    return changed_rows(scanned, carried.scanned)


def changed_rows(
    scanned: Mapping[str, ScannedFile], then: Sequence[tuple[str, int, str]]
) -> list[ScannedFile] | None:
    """`changed_sources` against the scan rows `then` ((rel_path, size, digest), by path)."""
    if len(scanned) != len(then):
        return None
    # Both are sorted by path: pairs that differ are changed files, or a different tree.
    # (Compared with C-level maps: a Python loop here costs what a sync would save.)
    now = tuple(scanned.values())
    differs = list(map(ne, now, then))
    changed = list(compress(now, differs))
    if len(changed) > len(now) * _MOST_CHANGED:
        return None
    paths = {row[0] for row in compress(then, differs)}
    if any(file.rel_path not in paths for file in changed):
        return None
    return changed


def splice(
    carried: Carried, changed: Sequence[ScannedFile], outputs: Sequence[PublishedFile]
) -> tuple[PublishedFile, ...] | None:
    """The carried files with the changed sources' `outputs` put in place of theirs, or None
    when an output's published path, visibility, type or variant is not the one it replaces
    (then the files' order or the plan could differ: the general path decides)."""
    return splice_files(carried.files, changed, outputs)


def splice_files(
    published: Sequence[PublishedFile], changed: Sequence[ScannedFile],
    outputs: Sequence[PublishedFile],
) -> tuple[PublishedFile, ...] | None:
    """`splice` into the published files `published` (in `prepare_files` order)."""
    sources = {f.rel_path for f in changed}
    places = list(compress(count(), map(sources.__contains__, map(_SOURCE, published))))
    if len(places) != len(outputs):
        return None
    files = list(published)
    by_key = {(f.path, f.source): f for f in outputs}
    for i in places:
        old = files[i]
        new = by_key.get((old.path, old.source))
        if new is None or (new.visibility, new.content_type, new.variant) != (
                old.visibility, old.content_type, old.variant):
            return None
        files[i] = new
    return tuple(files)


def recorded_view(
    state: State, target: str, service_sid: str, environment: str, carried: Carried,
    files: Sequence[PublishedFile], *, live_build_sid: str | None,
) -> RecordedService | None:
    """The service's record as `State.recorded_service` would read it, as far as a plan of
    `files` asks (see the module docstring), or None when the carried outcome cannot stand in.

    `files`: the spliced files (the carried ones where unchanged: the very same objects).
    `live_build_sid`: the build the environment serves now, as the API just said: the outcome
    stands in for that build only.
    """
    build = carried.build
    if (build.sid != live_build_sid or build.service_sid != service_sid
            or len(files) != len(carried.files)):
        return None
    checks = state.outcome_checks(target, service_sid, environment)
    if checks != (build.sid, False, carried.generation):
        return None  # another build recorded, one pending, an upload journalled, or new versions
    versions: dict[tuple[str, str, str], str] = dict(
        zip(map(_VERSION_KEY, carried.files), carried.sids))
    for new in compress(files, map(is_not, files, carried.files)):
        # A changed file (the others are the carried objects): is its content recorded already?
        sid = state.version_sid(target, service_sid, new.digest, new.path, new.visibility)
        if sid is not None:
            versions[(new.digest, new.path, new.visibility)] = sid
    return RecordedService(
        asset_sids=AssetSidsOnFirstUse(lambda: state.asset_sids(target, service_sid)),
        versions=MappingProxyType(versions),
        owned_paths=frozenset(map(_PATH, carried.files)),
        deployed_version_sids=frozenset(carried.sids),
        last_build_sid=build.sid,
    )
