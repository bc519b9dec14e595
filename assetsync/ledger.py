"""The state bound to one target, service and environment: what apply records as it goes.

Every method commits at once (`assetsync.state` runs each `record_*` in its own fsync'd
transaction), so whatever the ledger was told survives a crash the moment the call returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from assetsync.state import State

__all__ = ["StateLedger", "now_iso"]


def now_iso() -> str:
    """The current UTC time with microseconds, for ordering recorded builds."""
    # Microseconds: builds are ordered by this for rollback, and two can start in one second.
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class StateLedger:
    """The state, bound to one target, service and environment (apply's `Ledger`)."""

    def __init__(self, state: State, target: str, service_sid: str, environment_sid: str) -> None:
        self.state = state
        self.target = target
        self.service_sid = service_sid
        self.environment_sid = environment_sid
        self._assets = state.asset_sids(target, service_sid)

    def asset_sid(self, path: str) -> str | None:
        return self._assets.get(path)

    def record_asset(self, path: str, asset_sid: str) -> None:
        self.state.record_asset(self.target, self.service_sid, path, asset_sid)
        self._assets[path] = asset_sid

    def forget_asset(self, path: str) -> None:
        self.state.forget_asset(self.target, self.service_sid, path)
        self._assets.pop(path, None)

    def record_version(
        self, path: str, visibility: str, digest: str, size: int, version_sid: str, asset_sid: str
    ) -> None:
        self.state.record_version(
            self.target, self.service_sid, digest=digest, path=path, visibility=visibility,
            version_sid=version_sid, size=size, created_at=now_iso(),
        )

    def record_pending_build(self, build_sid: str, version_sids: Sequence[str]) -> None:
        self.state.record_build(
            self.target, self.service_sid, build_sid=build_sid,
            environment_sid=self.environment_sid, status="building",
            version_sids=version_sids, created_at=now_iso(),
        )
        self.state.record_pending(self.target, self.service_sid, self.environment_sid, build_sid,
                                  created_at=now_iso())

    def record_build_status(self, build_sid: str, status: str) -> None:
        self.state.set_build_status(self.target, self.service_sid, build_sid, status)
        if status == "failed":
            self.state.clear_pending(self.target, self.service_sid, self.environment_sid)

    def record_deployment(self, build_sid: str, deployment_sid: str) -> None:
        self.state.record_deployment(
            self.target, self.service_sid, self.environment_sid, build_sid, deployment_sid
        )
