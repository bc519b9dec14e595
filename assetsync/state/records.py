"""The remote records assetsync keeps per target and service, as frozen values (what the
state's `RemoteRecords` methods return and take).
"""

from __future__ import annotations

from assetsync.frozen import frozen

__all__ = [
    "BuildRecord",
    "EnvironmentRecord",
    "PendingOperation",
    "ServiceRecord",
    "UploadIntent",
    "VersionRecord",
]


@frozen
class ServiceRecord:
    """A service assetsync uses, by unique name."""

    unique_name: str
    service_sid: str
    domain_base: str | None


@frozen
class EnvironmentRecord:
    """An environment of a service, and what assetsync last deployed to it."""

    service_sid: str
    unique_name: str
    environment_sid: str
    domain_name: str | None
    build_sid: str | None
    deployment_sid: str | None


@frozen
class VersionRecord:
    """An asset version assetsync uploaded (acknowledged by the API)."""

    service_sid: str
    digest: str
    path: str
    visibility: str
    version_sid: str
    size: int
    created_at: str | None


@frozen
class UploadIntent:
    """An upload about to be sent: journalled first, so that a run killed after the server
    acknowledged it, but before its SID was recorded, can find that version and record it
    instead of uploading the same content again. `created_at` is when it was journalled."""

    path: str
    digest: str
    visibility: str
    size: int
    asset_sid: str
    created_at: str | None = None


@frozen
class BuildRecord:
    """A build assetsync created."""

    service_sid: str
    build_sid: str
    environment_sid: str | None
    status: str
    version_sids: tuple[str, ...]
    created_at: str | None


@frozen
class PendingOperation:
    """A build created for an environment but not yet deployed: a rerun finishes it."""

    service_sid: str
    environment_sid: str
    build_sid: str
    created_at: str | None
