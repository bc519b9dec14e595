"""The emulated account: resources and their rules (limits, retention, build status, auth).

Time comes from an injectable clock and SIDs from an injectable factory; storage is the `Store`
in `storage.py`. Nothing here knows about HTTP except the (status, Twilio code) an operation fails
with, carried by `EmulatorError`. Builds and deployments live in `builds.py`.
"""

from __future__ import annotations

import hmac
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from assetsync import limits as documented
from assetsync.emulator.faults import FaultSwitches, RequestLog
from assetsync.emulator.storage import VERSION_KINDS, ContentWriter, Record, Store
from assetsync.frozen import frozen
from assetsync.functions.toolkit import FUNCTION_EXECUTION_LIMIT_S

__all__ = [
    "LOCAL_ACCOUNT_SID",
    "LOCAL_AUTH_TOKEN",
    "AdjustableClock",
    "EmulatorError",
    "EmulatorLimits",
    "EmulatorState",
    "iso",
]

# The embedded target's account: valid-looking ("AC" + 32 hex: "a55e75c" reads "assetsc") but
# obviously not a Twilio credential. Documented in docs/emulator.md.
LOCAL_ACCOUNT_SID = "ACa55e75c0000000000000000000000000"  # a placeholder, not a Twilio account
LOCAL_AUTH_TOKEN = "assetsync-local-emulator-token"

SID_PATTERN = re.compile(r"^[A-Z]{2}[0-9a-fA-F]{32}$")
_SUFFIX = re.compile(r"^[A-Za-z0-9-]+$")
# Sweep retention at most once per this many clock seconds (retention periods are hours/days).
_SWEEP_EVERY_S = 60.0


@frozen
class EmulatorLimits:
    """Every documented Serverless limit the emulator enforces (see `assetsync.limits`)."""

    services_per_account: int = documented.SERVICES_PER_ACCOUNT
    environments_per_service: int = documented.ENVIRONMENTS_PER_SERVICE
    function_versions_per_build: int = documented.FUNCTION_VERSIONS_PER_BUILD
    public_protected_versions_per_build: int = documented.PUBLIC_PROTECTED_ASSET_VERSIONS_PER_BUILD
    private_versions_per_build: int = documented.PRIVATE_ASSET_VERSIONS_PER_BUILD
    builds_per_hour: int = documented.BUILDS_PER_HOUR
    max_public_bytes: int = documented.MAX_PUBLIC_ASSET_BYTES
    max_private_bytes: int = documented.MAX_PRIVATE_ASSET_BYTES
    undeployed_build_retention_s: float = documented.UNDEPLOYED_BUILD_RETENTION_S
    unreferenced_version_retention_s: float = documented.UNREFERENCED_VERSION_RETENTION_S
    # Twilio's 429 is about too many *concurrent* requests per account (api-contract.md §6), at a
    # level it does not document: 0 (the default) means no limit.
    concurrent_requests: int = 0
    # A function invocation is ended after 10 s
    # (assetsync.functions.toolkit.FUNCTION_EXECUTION_LIMIT_S).
    function_execution_s: float = FUNCTION_EXECUTION_LIMIT_S


class AdjustableClock:
    """Wall-clock time plus an offset tests can move forward (`advance`) or `reset`."""

    def __init__(self, base: Callable[[], float] = time.time) -> None:
        self._base = base
        self.offset = 0.0

    def __call__(self) -> float:
        return self._base() + self.offset

    def advance(self, seconds: float) -> None:
        """Move time forward by `seconds`."""
        self.offset += seconds

    def reset(self) -> None:
        """Back to wall-clock time."""
        self.offset = 0.0


class EmulatorError(Exception):
    """An operation failed the way Twilio would: HTTP status, Twilio code, message."""

    def __init__(
        self, status: int, code: int, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def bad_request(message: str) -> EmulatorError:
    """400 with Twilio's 20001 (seen for Serverless validation errors, twilio-cli #215)."""
    return EmulatorError(400, 20001, message)


def conflict(message: str) -> EmulatorError:
    """409; Twilio documents no code for it, so the 20000+status convention (like 20404)."""
    return EmulatorError(409, 20409, message)


def missing(name: str) -> EmulatorError:
    """400/20001 in Twilio's wording for a missing parameter."""
    return bad_request(f"Missing required parameter {name} in the post body")


def iso(ts: float) -> str:
    """Twilio's date format: ISO 8601 UTC, whole seconds, `Z`."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _random_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


@dataclass(eq=False)
class EmulatorState:
    """One emulated Twilio account on a data folder (None: a temporary folder, removed on close).

    Args:
        data_dir: folder for `emulator.sqlite3` and `content/`; created if missing.
        clock: seconds since the epoch; tests pass an `AdjustableClock`.
        sid_factory: prefix -> SID (`"ZS"` -> `"ZS" + 32 hex`).
        account_sid, auth_token: the account's credentials for HTTP Basic auth.
        api_keys: API key SID -> secret, also accepted for Basic auth.
        limits: the limits to enforce.
        build_delay_s: how long a new build stays `building`.
        project_dir: the Toolkit project whose `node_modules` deployed functions load packages
            (`twilio`) from, as twilio-run's local server does; None: looked for upward from
            `data_dir` (the embedded target keeps it inside the project).
    """

    data_dir: Path | None
    _: KW_ONLY
    clock: Callable[[], float] = time.time
    sid_factory: Callable[[str], str] | None = None
    account_sid: str = LOCAL_ACCOUNT_SID
    auth_token: str = field(default=LOCAL_AUTH_TOKEN, repr=False)
    api_keys: Mapping[str, str] = field(default_factory=dict, repr=False)
    limits: EmulatorLimits = field(default_factory=EmulatorLimits)
    build_delay_s: float = 0.05
    project_dir: Path | None = None

    def __post_init__(self) -> None:
        self._tmp: str | None = None
        if self.data_dir is None:
            self._tmp = tempfile.mkdtemp(prefix="assetsync-emulator-")
            root = Path(self._tmp)
        else:
            root = Path(self.data_dir)
        self.store = Store(root)
        self.faults = FaultSwitches()
        self.request_log = RequestLog()
        self.failing_builds = 0
        self.in_flight = 0
        self._next_sweep = 0.0

    # lifecycle -------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the database (and remove the folder if it was temporary)."""
        self.store.close()
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def reset(self) -> None:
        """Forget every resource, fault, failing build and logged request (tests call it)."""
        self.store.clear()
        self.faults.clear()
        self.request_log.clear()
        self.failing_builds = 0
        self._next_sweep = 0.0

    def new_sid(self, prefix: str) -> str:
        """A fresh SID with this two-letter prefix."""
        return (self.sid_factory or _random_sid)(prefix)

    def now(self) -> float:
        """The emulator's current time."""
        return self.clock()

    def authenticate(self, username: str, password: str) -> bool:
        """Whether Basic credentials are the account's or one of its API keys."""
        if hmac.compare_digest(username, self.account_sid):
            return hmac.compare_digest(password, self.auth_token)
        secret = self.api_keys.get(username)
        return secret is not None and hmac.compare_digest(password, secret)

    def fail_next_builds(self, n: int) -> None:
        """The next `n` builds end `failed` instead of `completed`."""
        self.failing_builds += n

    # lookups ---------------------------------------------------------------------------------

    def get(self, kind: str, sid: str, parent_sid: str | None, path: str) -> Record:
        """A resource of `kind` under `parent_sid`, or 404 naming `path`."""
        rec = self.store.get(sid, kind) if SID_PATTERN.match(sid) else None
        if rec is None or (parent_sid is not None and rec.parent_sid != parent_sid):
            raise not_found(path)
        return rec

    def service(self, sid_or_name: str, path: str) -> Record:
        """A service by SID or unique name (Twilio accepts either in the URL)."""
        if sid_or_name.startswith("ZS") and SID_PATTERN.match(sid_or_name):
            return self.get("service", sid_or_name, None, path)
        rec = self.store.find("service", None, "unique_name", sid_or_name)
        if rec is None:
            raise not_found(path)
        return rec

    def environment_by_domain(self, host: str) -> Record | None:
        """The environment whose `domain_name` is this host name (lower case, no port)."""
        return self.store.find("environment", None, "domain_name", host)

    # services, environments ------------------------------------------------------------------

    def create_service(
        self, unique_name: str, friendly_name: str, include_credentials: bool, ui_editable: bool
    ) -> Record:
        """A new service (409 on a duplicate unique name, 400 past the account's limit)."""
        _check_length("UniqueName", unique_name, 50)
        _check_length("FriendlyName", friendly_name, 255)
        with self.store.transaction():
            if self.store.find("service", None, "unique_name", unique_name):
                raise conflict(f"Service with UniqueName {unique_name} already exists")
            if self.store.count("service") >= self.limits.services_per_account:
                raise bad_request(
                    "Service limit reached: an account may have "
                    f"{self.limits.services_per_account} "
                    "services; delete one before creating another"
                )
            sid, now = self.new_sid("ZS"), self.now()
            # Twilio appends a random 4-digit suffix; derive it from the SID so an injected
            # SID factory makes domain names deterministic too.
            digits = 1000 + int(sid[-8:], 16) % 9000
            data = {
                "friendly_name": friendly_name,
                "unique_name": unique_name,
                "include_credentials": include_credentials,
                "ui_editable": ui_editable,
                "domain_base": f"{unique_name.lower()}-{digits}",
                "date_created": iso(now),
                "date_updated": iso(now),
            }
            return self.store.insert(sid, "service", None, now, data)

    def update(self, rec: Record, changes: dict[str, object]) -> Record:
        """Apply field changes to a resource and bump `date_updated`."""
        return self.store.update(rec, {**changes, "date_updated": iso(self.now())})

    def delete_service(self, service: Record) -> None:
        """Delete a service and everything in it."""
        with self.store.transaction():
            owned = [r.sid for r in self.store.by_service(service.sid)]
            self.store.delete([*owned, service.sid])

    def create_environment(
        self, service: Record, unique_name: str, domain_suffix: str | None
    ) -> Record:
        """A new environment of a service, with its `domain_name`."""
        _check_length("UniqueName", unique_name, 100)
        if domain_suffix is not None:
            _check_length("DomainSuffix", domain_suffix, 16)
            if not _SUFFIX.match(domain_suffix):
                raise bad_request(
                    f"Invalid DomainSuffix {domain_suffix!r}: use letters, digits and '-' only"
                )
            domain_suffix = domain_suffix.lower()
        with self.store.transaction():
            if self.store.find("environment", service.sid, "unique_name", unique_name):
                raise conflict(f"Environment with UniqueName {unique_name} already exists")
            envs = self.store.children("environment", service.sid)
            if any(e.data["domain_suffix"] == domain_suffix for e in envs):
                raise conflict(f"An environment with DomainSuffix {domain_suffix} already exists")
            if len(envs) >= self.limits.environments_per_service:
                raise bad_request(
                    f"Environment limit reached: a service may have "
                    f"{self.limits.environments_per_service} environments; delete one first"
                )
            sid, now = self.new_sid("ZE"), self.now()
            base = service.data["domain_base"]
            domain = f"{base}-{domain_suffix}.twil.io" if domain_suffix else f"{base}.twil.io"
            data = {
                "service_sid": service.sid,
                "build_sid": None,
                "unique_name": unique_name,
                "domain_suffix": domain_suffix,
                "domain_name": domain,
                "date_created": iso(now),
                "date_updated": iso(now),
            }
            return self.store.insert(sid, "environment", service.sid, now, data)

    def delete_environment(self, env: Record) -> None:
        """Delete an environment with its deployments, variables and logs."""
        with self.store.transaction():
            owned = [
                r.sid for k in ("deployment", "variable", "log")
                for r in self.store.children(k, env.sid)
            ]
            self.store.delete([*owned, env.sid])

    # functions, assets, versions -------------------------------------------------------------

    def create_named(self, kind: str, service: Record, friendly_name: str) -> Record:
        """A new Function or Asset (both `ZH`)."""
        _check_length("FriendlyName", friendly_name, 255)
        sid, now = self.new_sid("ZH"), self.now()
        data = {
            "service_sid": service.sid,
            "friendly_name": friendly_name,
            "date_created": iso(now),
            "date_updated": iso(now),
        }
        return self.store.insert(sid, kind, service.sid, now, data)

    def version_limit(self, visibility: str) -> int:
        """The largest upload accepted for a visibility (25 MB, or 10 MB for private)."""
        if visibility == "private":
            return self.limits.max_private_bytes
        return self.limits.max_public_bytes

    def create_version(
        self,
        kind: str,
        parent: Record,
        path: str,
        visibility: str,
        content: ContentWriter,
        content_type: str,
    ) -> Record:
        """Store an uploaded Asset or Function Version (`kind` ends in `_version`)."""
        digest = content.close()
        if content.size > self.version_limit(visibility):
            content.discard()
            raise too_large(visibility, self.version_limit(visibility))
        self.store.keep_content(content, digest)
        sid, now = self.new_sid("ZN"), self.now()
        owner = "asset_sid" if kind == "asset_version" else "function_sid"
        data = {
            "service_sid": parent.data["service_sid"],
            owner: parent.sid,
            "path": path,
            "visibility": visibility,
            "date_created": iso(now),
            "digest": digest,
            "size": content.size,
            "content_type": content_type,
        }
        return self.store.insert(sid, kind, parent.sid, now, data)

    # variables -------------------------------------------------------------------------------

    def create_variable(self, env: Record, key: str, value: str) -> Record:
        """A new environment variable (409 if the key exists)."""
        _check_variable(key, value)
        with self.store.transaction():
            if self.store.find("variable", env.sid, "key", key):
                raise conflict(f"Variable with Key {key} already exists")
            sid, now = self.new_sid("ZV"), self.now()
            data = {
                "service_sid": env.data["service_sid"],
                "environment_sid": env.sid,
                "key": key,
                "value": value,
                "date_created": iso(now),
                "date_updated": iso(now),
            }
            return self.store.insert(sid, "variable", env.sid, now, data)

    def update_variable(self, var: Record, key: str | None, value: str | None) -> Record:
        """Change a variable's key and/or value."""
        new_key = var.data["key"] if key is None else key
        new_value = var.data["value"] if value is None else value
        _check_variable(new_key, new_value)
        with self.store.transaction():
            other = self.store.find("variable", var.parent_sid, "key", new_key)
            if other is not None and other.sid != var.sid:
                raise conflict(f"Variable with Key {new_key} already exists")
            return self.update(var, {"key": new_key, "value": new_value})

    # retention -------------------------------------------------------------------------------

    def sweep(self, *, force: bool = False) -> None:
        """Delete what Twilio's retention rules would have deleted by now (cheap when recent)."""
        now = self.now()
        if not force and now < self._next_sweep:
            return
        self._next_sweep = now + _SWEEP_EVERY_S
        lim = self.limits
        with self.store.transaction():
            active = {e.data["build_sid"] for e in self.store.children("environment", None)}
            old_builds = self.store.older_than("build", now - lim.undeployed_build_retention_s)
            self.store.delete([b.sid for b in old_builds if b.sid not in active])
            cutoff = now - lim.unreferenced_version_retention_s
            old = [sid for k in VERSION_KINDS for sid in self.store.sids_older_than(k, cutoff)]
            unreferenced = self.store.unreferenced(old)
            self.store.delete([sid for sid in old if sid in unreferenced])
            # Functions and Assets without versions go after 7 days as well (api-contract.md §4).
            for kind in ("asset", "function"):
                empty = [
                    r.sid
                    for r in self.store.older_than(kind, cutoff)
                    if not self.store.count(f"{kind}_version", r.sid)
                ]
                self.store.delete(empty)


def not_found(path: str) -> EmulatorError:
    """404/20404 naming the path as Twilio does (without the `/v1` prefix)."""
    shown = path[3:] if path.startswith("/v1/") else path
    return EmulatorError(404, 20404, f"The requested resource {shown} was not found")


def too_large(visibility: str, limit: int) -> EmulatorError:
    """413 for an oversize upload (toolkit issue #167); code by the 20000+status convention."""
    return EmulatorError(
        413, 20413, f"Content too large: {visibility} assets may be at most {limit} bytes"
    )


def _check_length(name: str, value: str, most: int) -> None:
    if len(value) > most:
        raise bad_request(f"Invalid {name}: at most {most} characters are allowed")


def _check_variable(key: str, value: str) -> None:
    _check_length("Key", key, 128)
    if len(value.encode()) > 450:
        raise bad_request("Invalid Value: at most 450 bytes are allowed")
