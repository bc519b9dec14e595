"""What sharding decides: `ShardResult` (assignment, services, moves, counts) and its parts.

Pure values; `assetsync.plan.shard` computes them (and re-exports them).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from assetsync.frozen import frozen
from assetsync.limits import BuildLimits

__all__ = ["BuildCounts", "Move", "MoveReason", "ShardResult"]


class MoveReason(StrEnum):
    """Why a file published in one service moves to another."""

    OVERFLOW = "overflow"  # its service's next build would pass a per-build limit
    GROUP = "group"  # it joins the service holding most of its group
    SERVICE_DROPPED = "service-dropped"  # its service left the scheme (renamed, lower max_services)
    REPACK = "repack"  # no placement that keeps files in place fits; the site was packed afresh
    FIRST_SERVICE = "first-service"  # it matches [shard] first_service


_REASON_TEXT = {
    MoveReason.OVERFLOW: "its service would pass a per-build limit",
    MoveReason.GROUP: "it joins the rest of its group",
    MoveReason.SERVICE_DROPPED: "its service is no longer one of the site's services",
    MoveReason.REPACK: "the groups no longer fit without moving files",
    MoveReason.FIRST_SERVICE: "[shard] first_service pins it next to the Functions",
}


@frozen
class Move:
    """One already-published file that changes service, and why."""

    path: str
    from_service: str
    to_service: str
    reason: MoveReason

    def describe(self) -> str:
        """One line for plan output: `/a.png: media -> media-2 (overflow: ...)`."""
        return (
            f"{self.path}: {self.from_service} -> {self.to_service} "
            f"({self.reason}: {_REASON_TEXT[self.reason]})"
        )


@frozen
class BuildCounts:
    """Versions one service's build holds, per class that a limit counts."""

    public_protected: int = 0
    private: int = 0
    functions: int = 0


@frozen
class ShardResult:
    """Where every file goes.

    Attributes:
        assignment: published path -> service unique name, for every file given.
        services: the services to build, in scheme order; the configured one is always first.
        moves: already-published files that change service, sorted by path.
        counts: per service in `services`, what its build will hold (reserved content included).
        limits: the per-build limits the counts were held to.
        retired: services that held files in `previous` and hold none now; their builds should be
            emptied of this site's assets (or the services deleted) by the engine.
    """

    assignment: Mapping[str, str]
    services: tuple[str, ...]
    moves: tuple[Move, ...]
    counts: Mapping[str, BuildCounts]
    limits: BuildLimits
    retired: tuple[str, ...] = ()

    def paths_by_service(self) -> dict[str, list[str]]:
        """Service -> its sorted published paths (every service in `services`, maybe empty)."""
        grouped: dict[str, list[str]] = {name: [] for name in self.services}
        for path in sorted(self.assignment):
            grouped[self.assignment[path]].append(path)
        return grouped

    def sync_order(self) -> tuple[str, ...]:
        """Every service to sync, `services` then `retired`, those receiving moved files first.

        A moved file is then published in its new service before its old one drops it, so its
        (new) URL never 404s in between.
        """
        receiving = {m.to_service for m in self.moves}
        ordered = [s for s in self.services if s in receiving]
        ordered += [s for s in self.services if s not in receiving]
        return (*ordered, *self.retired)

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict for `assetsync plan --json`: per-service counts against each limit,
        moves with their reasons, retired services (the assignment itself is left out: large)."""
        lim = self.limits
        return {
            "services": [
                {
                    "service": name,
                    "public_protected": self.counts[name].public_protected,
                    "private": self.counts[name].private,
                    "functions": self.counts[name].functions,
                }
                for name in self.services
            ],
            "limits": {
                "public_protected": lim.public_protected,
                "private": lim.private,
                "functions": lim.functions,
            },
            "moves": [
                {
                    "path": m.path,
                    "from": m.from_service,
                    "to": m.to_service,
                    "reason": str(m.reason),
                }
                for m in self.moves
            ],
            "retired": list(self.retired),
        }

    def usage_lines(self) -> tuple[str, ...]:
        """One line per service: its counts against each limit, for plan output."""
        lim = self.limits
        return tuple(
            f"{name}: {c.public_protected}/{lim.public_protected} public+protected, "
            f"{c.private}/{lim.private} private, {c.functions}/{lim.functions} functions"
            for name, c in ((name, self.counts[name]) for name in self.services)
        )
