"""Builds and deployments of the emulated account: validation, limits, lazy status, activation.

A build's status is computed from the clock (`building` until `ready_at`, then its outcome), so
it advances with no background task, in-process and over a socket alike.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence

from assetsync.emulator.state import (
    SID_PATTERN,
    EmulatorError,
    EmulatorState,
    bad_request,
    conflict,
    iso,
)
from assetsync.emulator.storage import Record
from assetsync.limits import DEFAULT_RUNTIME, RUNTIMES

__all__ = [
    "DEFAULT_RUNTIME",
    "RUNTIMES",
    "build_status",
    "create_build",
    "create_deployment",
    "delete_build",
    "parse_dependencies",
]

_HOUR = 3600.0
_VERSION_SIDS = re.compile(r"(?:ZN[0-9a-fA-F]{32})*")


def parse_dependencies(raw: str | None) -> list[dict[str, str]]:
    """The `Dependencies` parameter as a list of {name, version}.

    Accepts the JSON array as is, JSON-encoded as a string, or wrapped in the literal pair of
    double quotes the official Node library adds (api-contract.md §7.3).
    """
    if raw is None or not raw.strip():
        return []
    text = raw.strip()
    value: object
    try:
        value = json.loads(text)
        if isinstance(value, str):
            value = json.loads(value)
    except ValueError:
        try:
            value = json.loads(text[1:-1]) if text[:1] == text[-1:] == '"' else None
        except ValueError:
            value = None
    if not isinstance(value, list) or not all(
        isinstance(d, dict) and isinstance(d.get("name"), str) for d in value
    ):
        raise bad_request(
            'Invalid Dependencies: expected a JSON array of {"name": ..., "version": ...} objects'
        )
    return [{"name": d["name"], "version": str(d.get("version", "*"))} for d in value]


def build_status(state: EmulatorState, build: Record) -> str:
    """`building` until the build's ready time, then `completed` or `failed`."""
    return "building" if state.now() < build.data["ready_at"] else str(build.data["outcome"])


def create_build(
    state: EmulatorState,
    service: Record,
    asset_sids: Sequence[str],
    function_sids: Sequence[str],
    dependencies: str | None,
    runtime: str | None,
    *,
    versions: Mapping[str, Record] | None = None,
) -> Record:
    """A new build of a service; it ends `failed` if it names versions it cannot use.

    `versions`: the named versions' records when the caller already fetched them (the route
    does, to render the answer from the same lookup); fetched here otherwise.
    """
    if not asset_sids and not function_sids:
        # Twilio's own wording for this case (twilio/twilio-cli #215).
        raise bad_request("At least one Function Version or Asset Version is required for Build.")
    asset_sids, function_sids = list(dict.fromkeys(asset_sids)), list(dict.fromkeys(function_sids))
    named = [*asset_sids, *function_sids]
    if not _all_version_sids(named):
        for sid in named:
            if not (SID_PATTERN.match(sid) and sid.startswith("ZN")):
                raise bad_request(
                    f"Invalid version SID {sid!r}: expected ZN followed by 32 hex digits"
                )
    deps = parse_dependencies(dependencies)
    runtime = runtime or DEFAULT_RUNTIME
    if runtime not in RUNTIMES:
        raise bad_request(f"Invalid Runtime {runtime!r}: use one of {', '.join(RUNTIMES)}")
    found = versions if versions is not None else state.store.get_many(named)
    assets = _usable(found, asset_sids, "asset_version", service.sid)
    functions = _usable(found, function_sids, "function_version", service.sid)
    private = sum(1 for a in assets if a is not None and a.data["visibility"] == "private")
    _check_count("function versions", len(function_sids), state.limits.function_versions_per_build)
    _check_count("private asset versions", private, state.limits.private_versions_per_build)
    _check_count(
        "public and protected asset versions",
        len(asset_sids) - private,
        state.limits.public_protected_versions_per_build,
    )
    # Identity tests: `None in assets` would call the Record dataclass's __eq__ 1,000 times.
    valid = all(rec is not None for rec in (*assets, *functions))
    with state.store.transaction():
        now = state.now()
        recent = state.store.build_events_since(now - _HOUR)
        if len(recent) >= state.limits.builds_per_hour:
            wait = max(1, math.ceil(recent[0] + _HOUR - now))
            raise EmulatorError(
                429,
                20429,
                f"Too many builds: an account may create {state.limits.builds_per_hour} builds per "
                f"hour; retry in {wait} s",
                {"Retry-After": str(wait)},
            )
        outcome = "completed" if valid else "failed"
        if state.failing_builds > 0:
            state.failing_builds -= 1
            outcome = "failed"
        sid = state.new_sid("ZB")
        data = {
            "service_sid": service.sid,
            "asset_versions": asset_sids,
            "function_versions": function_sids,
            "dependencies": deps,
            "runtime": runtime,
            "date_created": iso(now),
            "ready_at": now + state.build_delay_s,
            "outcome": outcome,
        }
        build = state.store.insert(sid, "build", service.sid, now, data)
        state.store.record_build_event(now)
    return build


def delete_build(state: EmulatorState, build: Record) -> None:
    """Delete a build unless an environment has it deployed (409)."""
    with state.store.transaction():
        for env in state.store.children("environment", build.parent_sid):
            if env.data["build_sid"] == build.sid:
                raise conflict(
                    f"Build {build.sid} is deployed to environment {env.sid}; "
                    "deploy another build first"
                )
        state.store.delete([build.sid])


def create_deployment(
    state: EmulatorState, service: Record, env: Record, build_sid: str | None
) -> Record:
    """Deploy a completed build to an environment (no build: deploy nothing) and point it there."""
    if build_sid is not None:
        build = state.get(
            "build", build_sid, service.sid, f"/v1/Services/{service.sid}/Builds/{build_sid}"
        )
        status = build_status(state, build)
        if status != "completed":
            raise bad_request(
                f"Build {build_sid} is {status}; only a completed build can be deployed"
            )
    with state.store.transaction():
        current = state.store.get(env.sid, "environment") or env
        if build_sid is not None and current.data["build_sid"] == build_sid:
            # The observed answer to re-activating the active build (serverless-api #27).
            raise conflict("Environment already has requested deployment.")
        sid, now = state.new_sid("ZD"), state.now()
        data = {
            "service_sid": service.sid,
            "environment_sid": env.sid,
            "build_sid": build_sid,
            "date_created": iso(now),
            "date_updated": iso(now),
        }
        deployment = state.store.insert(sid, "deployment", env.sid, now, data)
        state.update(current, {"build_sid": build_sid})
    return deployment


def _all_version_sids(sids: list[str]) -> bool:
    # One regex pass over all of them (a build names up to 1,100): with every SID 34 characters
    # long, the concatenation splits only one way. False sends the caller to the exact per-SID
    # check, which also names the bad one.
    return set(map(len, sids)) <= {34} and bool(_VERSION_SIDS.fullmatch("".join(sids)))


def _usable(
    found: Mapping[str, Record], sids: list[str], kind: str, service_sid: str
) -> list[Record | None]:
    """Each named version's record, or None where it is missing, of another kind or service."""
    return [
        rec
        if rec is not None and rec.kind == kind and rec.data["service_sid"] == service_sid
        else None
        for rec in map(found.get, sids)
    ]


def _check_count(what: str, count: int, limit: int) -> None:
    if count > limit:
        raise bad_request(
            f"Build limit exceeded: {count} {what}, at most {limit} per build are allowed; "
            "split the assets over several services"
        )
