"""An environment's Variables from a .env: the pure diff against the live ones, and applying it.

Values are secrets. `sync` compares them with the live values the API returns, sends them only
in request bodies, and they appear in no plan, JSON, log line, error or repr: everything here
names keys only. For the offline `plan`, the state keeps one keyed digest per variable
(`variable_digests`: BLAKE2b under a random key of that state's own), never a value.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Mapping, Sequence
from typing import TYPE_CHECKING

from assetsync.errors import LimitError
from assetsync.frozen import frozen
from assetsync.remote.resources import Variable

if TYPE_CHECKING:
    from assetsync.remote.client import ServerlessClient

__all__ = [
    "MAX_VARIABLE_KEY_LENGTH",
    "MAX_VARIABLE_VALUE_BYTES",
    "VARIABLE_DIGEST_PREFIX",
    "VariablePlan",
    "apply_variables",
    "check_variables",
    "plan_recorded_variables",
    "plan_variables",
    "recorded_variables",
    "sync_variables",
    "variable_digests",
]

# Twilio's Variable resource: `Key` at most 128 characters, `Value` at most 450 bytes
# (api-contract.md §3.9, from twilio_serverless_v1.yaml's CreateVariable).
MAX_VARIABLE_KEY_LENGTH = 128
MAX_VARIABLE_VALUE_BYTES = 450

VARIABLE_DIGEST_PREFIX = "blake2b:"
# BLAKE2b's personalization (at most 16 bytes): these digests can equal no other keyed BLAKE2b.
_PERSON = b"assetsync.var.1"


@frozen
class VariablePlan:
    """What a sync does to an environment's Variables, by key (sorted); never a value.

    Attributes:
        create: local keys the environment lacks.
        update: keys whose live value differs from the local one.
        delete: live keys absent locally, deleted because pruning was asked for.
        kept: live keys absent locally, left alone (the default, as `twilio-run deploy` does).
        unchanged: keys whose live value is already the local one.
        sids: (key, Variable SID) of every live key that is updated or deleted.
    """

    create: tuple[str, ...] = ()
    update: tuple[str, ...] = ()
    delete: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    sids: tuple[tuple[str, str], ...] = ()

    @property
    def changed(self) -> bool:
        """Whether applying the plan sends any request."""
        return bool(self.create or self.update or self.delete)

    def to_json(self) -> dict[str, list[str]]:
        """The plan for `--json`: keys only."""
        return {
            "create": list(self.create),
            "update": list(self.update),
            "delete": list(self.delete),
            "kept": list(self.kept),
            "unchanged": list(self.unchanged),
        }


def check_variables(local: Mapping[str, str], *, file: str = ".env") -> None:
    """Refuse, before any request, what Twilio would refuse: one error naming every bad key.

    Raises:
        LimitError: a key empty or over 128 characters, or a value over 450 bytes (UTF-8).
            The message names keys and `file`, never a value or its length.
    """
    too_long = sorted(k for k in local if len(k) > MAX_VARIABLE_KEY_LENGTH)
    too_large = sorted(
        k for k, v in local.items() if len(v.encode("utf-8")) > MAX_VARIABLE_VALUE_BYTES
    )
    problems: list[str] = []
    if "" in local:
        problems.append("an empty key")
    if too_long:
        shown = ", ".join(k[:40] + "..." for k in too_long)
        problems.append(f"keys over Twilio's {MAX_VARIABLE_KEY_LENGTH} characters ({shown})")
    if too_large:
        problems.append(
            f"values over Twilio's {MAX_VARIABLE_VALUE_BYTES} bytes ({', '.join(too_large)})"
        )
    if problems:
        raise LimitError(
            f"{file}: {'; '.join(problems)}: shorten them, or keep large secrets elsewhere "
            "(an asset marked private, or a service they can be fetched from)",
            path=file,
            limit="variables",
        )


def plan_variables(
    local: Mapping[str, str], remote: Sequence[Variable], *, prune: bool, file: str = ".env"
) -> VariablePlan:
    """The diff between the local variables and an environment's live ones (pure).

    Args:
        local: key -> value, as `assetsync.functions.toolkit.deploy_variables` gives them.
        remote: the environment's Variables, as `ServerlessClient.list_variables` gives them.
        prune: delete live keys that are absent locally (`--prune-variables`); otherwise they
            are kept, as `twilio-run deploy` keeps them (`setEnvironmentVariables(...,
            removeRedundantOnes=false)`, api-contract.md §7.3 step 8).
        file: the .env file, for the error message.

    Raises:
        LimitError: from `check_variables`.
    """
    check_variables(local, file=file)
    live: dict[str, Variable] = {}
    for variable in remote:
        live.setdefault(variable.key, variable)
    create: list[str] = []
    update: list[str] = []
    unchanged: list[str] = []
    for key in sorted(local):
        found = live.get(key)
        if found is None:
            create.append(key)
        elif found.value == local[key]:
            unchanged.append(key)
        else:
            update.append(key)
    gone = sorted(key for key in live if key not in local)
    delete, kept = (gone, []) if prune else ([], gone)
    return VariablePlan(
        create=tuple(create),
        update=tuple(update),
        delete=tuple(delete),
        kept=tuple(kept),
        unchanged=tuple(unchanged),
        sids=tuple((key, live[key].sid) for key in sorted([*update, *delete])),
    )


async def apply_variables(
    client: ServerlessClient,
    service_sid: str,
    environment_sid: str,
    local: Mapping[str, str],
    plan: VariablePlan,
) -> None:
    """Send exactly the plan's creates, updates and deletes (concurrently, within the client's
    concurrency limit). Nothing is sent for an unchanged plan.

    Raises:
        ApiError: the first request that failed (the others still ran to completion).
    """
    sids = dict(plan.sids)
    calls: list[Awaitable[object]] = [
        *(client.create_variable(service_sid, environment_sid, k, local[k]) for k in plan.create),
        *(
            client.update_variable(service_sid, environment_sid, sids[k], local[k])
            for k in plan.update
        ),
        *(client.delete_variable(service_sid, environment_sid, sids[k]) for k in plan.delete),
    ]
    if not calls:
        return
    results = await asyncio.gather(*calls, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


async def sync_variables(
    client: ServerlessClient,
    service_sid: str,
    environment_sid: str,
    local: Mapping[str, str],
    *,
    prune: bool,
    file: str = ".env",
) -> VariablePlan:
    """List the environment's Variables, plan against `local`, apply; returns the plan done."""
    check_variables(local, file=file)  # before the first request
    remote = await client.list_variables(service_sid, environment_sid)
    plan = plan_variables(local, remote, prune=prune, file=file)
    await apply_variables(client, service_sid, environment_sid, local, plan)
    return plan


def variable_digests(local: Mapping[str, str], *, key: bytes, scope: str) -> dict[str, str]:
    """Key -> `blake2b:<hex>` of each variable, keyed with `key` (the state's own, 32 bytes).

    The key name and `scope` (the environment's SID) are hashed with the value, so one value
    under two names, or in two environments, gives unrelated digests. Without `key` a digest
    cannot be tested against guessed values: a short secret stays hidden from a reader of the
    digests alone.
    """
    out: dict[str, str] = {}
    for name in sorted(local):
        hasher = hashlib.blake2b(key=key, digest_size=32, person=_PERSON)
        for part in (scope, name, local[name]):
            data = part.encode("utf-8")
            hasher.update(len(data).to_bytes(8, "big"))
            hasher.update(data)
        out[name] = VARIABLE_DIGEST_PREFIX + hasher.hexdigest()
    return out


def recorded_variables(
    local: Mapping[str, str], plan: VariablePlan, *, key: bytes, scope: str,
    previous: Mapping[str, str | None],
) -> dict[str, str | None]:
    """What the environment holds once `plan` is applied, as digests to record: the .env's
    variables, and the keys it kept (with their earlier digest, or None when no .env of this
    state ever gave their value: set in the Console, say). Deleted keys are gone."""
    after: dict[str, str | None] = {k: previous.get(k) for k in plan.kept}
    after.update(variable_digests(local, key=key, scope=scope))
    return after


def plan_recorded_variables(
    local: Mapping[str, str], recorded: Mapping[str, str | None], *, key: bytes | None,
    scope: str, prune: bool, file: str = ".env",
) -> VariablePlan:
    """The diff between the local variables and the digests the last sync recorded (pure): the
    offline counterpart of `plan_variables`, in its shape. A key with no recorded digest is
    created; one whose recorded digest differs, or is unknown (None), is updated. With nothing
    recorded every key is created ("to set"). No SIDs: they come from the API.

    Raises:
        LimitError: from `check_variables`.
    """
    check_variables(local, file=file)
    mine = variable_digests(local, key=key, scope=scope) if key is not None else {}
    create = tuple(k for k in sorted(local) if k not in recorded)
    update = tuple(k for k in sorted(local)
                   if k in recorded and (recorded[k] is None or recorded[k] != mine.get(k)))
    unchanged = tuple(k for k in sorted(local) if k not in create and k not in update)
    gone = tuple(sorted(k for k in recorded if k not in local))
    return VariablePlan(create=create, update=update, delete=gone if prune else (),
                        kept=() if prune else gone, unchanged=unchanged)
