"""Stored records -> Twilio's JSON: exactly the spec's fields, absolute `url`/`links`, page `meta`.

Every URL is built from the base URL of the request being answered (scheme + Host), so a client
can follow them back to whichever address reached the emulator.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from json.encoder import encode_basestring
from typing import Any
from urllib.parse import urlencode

from assetsync.emulator.builds import build_status
from assetsync.emulator.state import EmulatorState, iso
from assetsync.emulator.storage import Record

__all__ = [
    "list_body",
    "record_path",
    "render",
    "render_build_json",
    "render_build_status",
    "render_content",
]

_LINKS: dict[str, dict[str, str]] = {
    "service": {
        "environments": "/Environments",
        "functions": "/Functions",
        "assets": "/Assets",
        "builds": "/Builds",
    },
    "environment": {"variables": "/Variables", "deployments": "/Deployments", "logs": "/Logs"},
    "function": {"function_versions": "/Versions"},
    "asset": {"asset_versions": "/Versions"},
    "function_version": {"function_version_content": "/Content"},
    "build": {"build_status": "/Status"},
}

_FIELDS: dict[str, tuple[str, ...]] = {
    "service": (
        "friendly_name",
        "unique_name",
        "include_credentials",
        "ui_editable",
        "domain_base",
        "date_created",
        "date_updated",
    ),
    "environment": (
        "service_sid",
        "build_sid",
        "unique_name",
        "domain_suffix",
        "domain_name",
        "date_created",
        "date_updated",
    ),
    "function": ("service_sid", "friendly_name", "date_created", "date_updated"),
    "asset": ("service_sid", "friendly_name", "date_created", "date_updated"),
    "function_version": ("service_sid", "function_sid", "path", "visibility", "date_created"),
    "asset_version": ("service_sid", "asset_sid", "path", "visibility", "date_created"),
    "deployment": ("service_sid", "environment_sid", "build_sid", "date_created", "date_updated"),
    "variable": ("service_sid", "environment_sid", "key", "value", "date_created", "date_updated"),
}

_SEGMENT = {
    "environment": "Environments",
    "function": "Functions",
    "asset": "Assets",
    "build": "Builds",
    "deployment": "Deployments",
    "variable": "Variables",
}


def record_path(rec: Record) -> str:
    """The API path of a resource (`/v1/Services/ZS…/Assets/ZH…/Versions/ZN…`)."""
    if rec.kind == "service":
        return f"/v1/Services/{rec.sid}"
    svc = f"/v1/Services/{rec.data['service_sid']}"
    if rec.kind == "asset_version":
        return f"{svc}/Assets/{rec.data['asset_sid']}/Versions/{rec.sid}"
    if rec.kind == "function_version":
        return f"{svc}/Functions/{rec.data['function_sid']}/Versions/{rec.sid}"
    if rec.kind in ("deployment", "variable"):
        return f"{svc}/Environments/{rec.data['environment_sid']}/{_SEGMENT[rec.kind]}/{rec.sid}"
    return f"{svc}/{_SEGMENT[rec.kind]}/{rec.sid}"


def render(
    state: EmulatorState, rec: Record, base: str, versions: Mapping[str, Record] | None = None
) -> dict[str, Any]:
    """The JSON body of one resource as the spec defines it.

    `versions`: a build's version records when the caller already holds them (a build names up
    to 1,100; fetching them again costs as much as the rest of the request).
    """
    if rec.kind == "build":
        return _render_build(state, rec, base, versions)
    body: dict[str, Any] = {"sid": rec.sid, "account_sid": state.account_sid}
    body.update((name, rec.data[name]) for name in _FIELDS[rec.kind])
    url = base + record_path(rec)
    body["url"] = url
    if rec.kind in _LINKS:
        body["links"] = {name: url + tail for name, tail in _LINKS[rec.kind].items()}
    return body


def _embedded_fields(owner: str) -> tuple[str, ...]:
    return ("sid", "account_sid", "service_sid", owner, "date_created", "path", "visibility")


def _embedded_values(account_sid: str, v: Record, owner: str) -> tuple[Any, ...]:
    # Builds embed version objects (spec examples; the Node library's `list` reads them), with
    # visibility in upper case as in the spec's build example (api-contract.md §3.7).
    data = v.data
    return (
        v.sid,
        account_sid,
        data["service_sid"],
        data[owner],
        data["date_created"],
        data["path"],
        str(data["visibility"]).upper(),
    )


def _embedded_object(account_sid: str, v: Record, owner: str) -> dict[str, Any]:
    return dict(zip(_embedded_fields(owner), _embedded_values(account_sid, v, owner), strict=True))


def _embedded(
    state: EmulatorState, sids: list[str], owner: str, known: Mapping[str, Record] | None
) -> list[Record]:
    """The records of a build's versions that still exist, in the build's order."""
    found = known if known is not None else state.store.get_many(sids)
    return [v for v in map(found.get, sids) if v is not None]


def _build_parts(
    state: EmulatorState, rec: Record, base: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A build's fields before its embedded versions and after them, in the spec's order."""
    status = build_status(state, rec)
    updated = rec.data["date_created"] if status == "building" else iso(rec.data["ready_at"])
    url = base + record_path(rec)
    head = {
        "sid": rec.sid,
        "account_sid": state.account_sid,
        "service_sid": rec.data["service_sid"],
        "status": status,
    }
    tail = {
        "dependencies": rec.data["dependencies"],
        "runtime": rec.data["runtime"],
        "date_created": rec.data["date_created"],
        "date_updated": updated,
        "url": url,
        "links": {"build_status": url + "/Status"},
    }
    return head, tail


def _render_build(
    state: EmulatorState, rec: Record, base: str, versions: Mapping[str, Record] | None
) -> dict[str, Any]:
    head, tail = _build_parts(state, rec, base)
    embedded = {
        key: [
            _embedded_object(state.account_sid, v, owner)
            for v in _embedded(state, rec.data[key], owner, versions)
        ]
        for key, owner in _EMBEDDED
    }
    return {**head, **embedded, **tail}


def render_build_json(
    state: EmulatorState, rec: Record, base: str, versions: Mapping[str, Record] | None = None
) -> bytes:
    """A build's body as the exact bytes `JSONResponse(render(...))` sends, from pieces.

    Each embedded version's encoded JSON is remembered (see `_FRAGMENTS`), so a build of 1,000
    versions is mostly joined rather than built and encoded again (without it, the emulator's
    part of that request takes ~6 ms instead of ~1.7).
    """
    head, tail = _build_parts(state, rec, base)
    chunks = [_dumps(head)[:-1].encode()]
    account = state.account_sid
    for key, owner in _EMBEDDED:
        memo = _FRAGMENTS.setdefault((account, owner), {})
        fragments = [
            hit[1]
            if (hit := memo.get(v.sid)) is not None and hit[0] is v
            else _fragment(memo, account, owner, v)
            for v in _embedded(state, rec.data[key], owner, versions)
        ]
        chunks.append(b'"%s":[%s]' % (key.encode(), b",".join(fragments)))
    chunks.append(_dumps(tail)[1:].encode())
    return b",".join(chunks)


# A build's embedded lists, in the spec's order, with the field naming each version's owner.
_EMBEDDED = (("asset_versions", "asset_sid"), ("function_versions", "function_sid"))
# (account SID, owner field) -> version SID -> (its record, its embedded JSON as UTF-8). A hit
# needs the very record object: the store hands out one object per version for as long as it is
# sure the version is unchanged and a new object otherwise, so no text outlives its source.
_FRAGMENTS: dict[tuple[str, str], dict[str, tuple[Record, bytes]]] = {}
_FRAGMENTS_MAX = 20_000  # per account and owner field (~7 MB at most)


# An embedded version's JSON with its values left to fill: json.dumps(ensure_ascii=False) writes
# a str as encode_basestring does, so filling in encoded strings gives its exact text, at a third
# of the cost of a json.dumps per version (1,000 of them in a new process's first build).
_TEMPLATES = {
    owner: "{" + ",".join(f'"{name}":%s' for name in _embedded_fields(owner)) + "}"
    for _, owner in _EMBEDDED
}


def _fragment(
    memo: dict[str, tuple[Record, bytes]], account_sid: str, owner: str, v: Record
) -> bytes:
    values = _embedded_values(account_sid, v, owner)
    if all(isinstance(value, str) for value in values):
        data = (_TEMPLATES[owner] % tuple(map(encode_basestring, values))).encode()
    else:  # not seen in practice: whatever json.dumps makes of it
        data = _dumps(_embedded_object(account_sid, v, owner)).encode()
    if len(memo) >= _FRAGMENTS_MAX:
        memo.clear()
    memo[v.sid] = (v, data)
    return data


def _dumps(value: Any) -> str:
    # Exactly starlette's JSONResponse.render, so pieces join into the bytes it would send.
    return json.dumps(
        value, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    )


def render_build_status(state: EmulatorState, rec: Record, base: str) -> dict[str, Any]:
    """The Build Status resource."""
    return {
        "sid": rec.sid,
        "account_sid": state.account_sid,
        "service_sid": rec.data["service_sid"],
        "status": build_status(state, rec),
        "url": base + record_path(rec) + "/Status",
    }


def render_content(state: EmulatorState, rec: Record, base: str) -> dict[str, Any]:
    """The Function Version Content resource: the code as a JSON string."""
    content = state.store.content_path(rec.data["digest"]).read_bytes().decode("utf-8", "replace")
    return {
        "sid": rec.sid,
        "account_sid": state.account_sid,
        "service_sid": rec.data["service_sid"],
        "function_sid": rec.data["function_sid"],
        "content": content,
        "url": base + record_path(rec) + "/Content",
    }


def list_body(
    key: str,
    items: list[dict[str, Any]],
    url: str,
    *,
    page: int,
    page_size: int,
    next_token: str | None,
    prev_token: str | None,
    extra: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A list response: `{key: items, meta: {...}}` with absolute page URLs (None at the ends)."""

    def page_url(number: int, token: str | None) -> str:
        query = {**(extra or {}), "PageSize": str(page_size), "Page": str(number)}
        if token:
            query["PageToken"] = token
        return f"{url}?{urlencode(query)}"

    current = page_url(page, None)
    return {
        key: items,
        "meta": {
            "first_page_url": page_url(0, None),
            "key": key,
            "next_page_url": page_url(page + 1, next_token) if next_token else None,
            "page": page,
            "page_size": page_size,
            "previous_page_url": page_url(page - 1, prev_token)
            if prev_token and page > 0
            else None,
            "url": current,
        },
    }
