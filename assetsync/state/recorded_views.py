"""The recorded services as a plan reads them, kept between runs in `<state_dir>/recorded.bin`.

`RemoteRecords.recorded_service` makes a service's view from three things: the versions
recorded for the service, the environment's recorded build, and that build's recorded
version SIDs. Each view kept here is keyed by all three: the versions by their generation
(`State.versions_generation`, which triggers on the table move at every write, so no writer
can forget it: any recorded version added, replaced or forgotten, in any service, changes
every key), the build by its SID and a digest of its stored version list. A plan of a
published 10,000-file site then reads ten short rows instead of 10,000 version rows (~15 ms).

The Asset SIDs are not kept: the view reads them from the state when a new path needs one,
while the state is open. A cache: unreadable, damaged or of another format, it is ignored and
written anew; it is rewritten only when a view was made or one is no longer used, and never by
a read-only state. Tests hold every view equal to the state's own.
"""

from __future__ import annotations

import logging
import marshal
from pathlib import Path
from types import MappingProxyType
from typing import Any

import xxhash

from assetsync.atomic import write_atomic
from assetsync.plan.assets import RecordedService
from assetsync.state.db import State
from assetsync.state.service_records import AssetSidsOnFirstUse

__all__ = ["VIEWS_NAME", "RecordedViews"]

log = logging.getLogger(__name__)

VIEWS_NAME = "recorded.bin"
# Bump when what a view holds, or how `recorded_service` makes one, changes meaning.
_FORMAT = 1
_MARSHAL_VERSION = 4

_Key = tuple[str, str, str, str | None, str | None, int]


def _encode(view: RecordedService) -> tuple[object, ...]:
    """A view by columns (its versions' keys and SIDs in the view's own order)."""
    keys = tuple(view.versions)
    digests, paths, visibilities = tuple(zip(*keys)) if keys else ((), (), ())
    return (digests, paths, visibilities, tuple(view.versions.values()),
            tuple(sorted(view.owned_paths)), tuple(sorted(view.deployed_version_sids)),
            view.last_build_sid)


def _decode(data: Any, asset_sids: AssetSidsOnFirstUse) -> RecordedService:
    digests, paths, visibilities, sids, owned, deployed, last_build_sid = data
    if not len(digests) == len(paths) == len(visibilities) == len(sids):
        raise ValueError("a view's columns differ in length")
    return RecordedService(
        asset_sids=asset_sids,
        versions=MappingProxyType(dict(zip(zip(digests, paths, visibilities), sids))),
        owned_paths=frozenset(owned),
        deployed_version_sids=frozenset(deployed),
        last_build_sid=last_build_sid,
    )


class RecordedViews:
    """The views of one state folder (see the module doc): `recorded_service`, then `save`."""

    def __init__(self, state: State, state_dir: Path) -> None:
        self._state = state
        self._path = state_dir / VIEWS_NAME
        self._generation = state.versions_generation()
        self._kept = self._load()
        self._used: dict[_Key, object] = {}
        self.made = 0  # views made from the state this run (the others came from the cache)

    def _load(self) -> dict[_Key, object]:
        try:
            fmt, views = marshal.loads(self._path.read_bytes())
        except (OSError, EOFError, ValueError, TypeError):
            return {}
        return views if fmt == _FORMAT and isinstance(views, dict) else {}

    def recorded_service(self, target: str, service_sid: str, environment: str
                         ) -> RecordedService:
        """`State.recorded_service(target, service_sid, environment, assets_on_first_use=True)`,
        from the kept view when nothing it is made of changed since it was kept."""
        build = self._state.environment_build(target, service_sid, environment)
        build_sid, sids = build if build is not None else (None, None)
        key: _Key = (target, service_sid, environment, build_sid,
                     None if sids is None else xxhash.xxh3_128_hexdigest(sids.encode()),
                     self._generation)
        kept = self._kept.get(key)
        if kept is not None:
            state = self._state
            try:
                view = _decode(kept, AssetSidsOnFirstUse(
                    lambda: state.asset_sids(target, service_sid)))
            except (ValueError, TypeError) as exc:
                log.debug("recorded view %s ignored: %s", self._path, exc)
            else:
                self._used[key] = kept
                return view
        view = self._state.recorded_service(target, service_sid, environment,
                                            assets_on_first_use=True)
        self._used[key] = _encode(view)
        self.made += 1
        return view

    def save(self) -> None:
        """Keep the views this run used, when one was made or a kept one is no longer used
        (a read-only state keeps nothing; a cache that cannot be written is only logged)."""
        if self._state.readonly or not (self.made or self._used.keys() != self._kept.keys()):
            return
        try:
            data = marshal.dumps((_FORMAT, self._used), _MARSHAL_VERSION)
            write_atomic(self._path, data, durable=False)  # a cache: a torn one is ignored
        except (OSError, ValueError) as exc:
            log.warning("recorded views not saved in %s: %s", self._path, exc)
