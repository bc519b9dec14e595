"""The emulator's Log resources: what deployed functions wrote, kept and served as Twilio does.

`record_logs` stores one `NO…` Log per line a function invocation logged (console output and
thrown errors, from `functions_runtime`), with the fields of Twilio's Log resource
(twilio_serverless_v1.yaml `serverless.v1.service.environment.log`). `list_logs` and `fetch_log`
answer `GET …/Environments/{sid}/Logs[/{sid}]`: `StartDate` (default one day ago), `EndDate`
(default now) and `FunctionSid` filter the list, paged like every other list.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from assetsync.emulator.render import list_body
from assetsync.emulator.state import EmulatorState, bad_request, iso, not_found
from assetsync.emulator.storage import Record

__all__ = ["LOG_FIELDS", "fetch_log", "list_logs", "record_logs", "render_log"]

LOG_FIELDS = ("service_sid", "environment_sid", "build_sid", "deployment_sid", "function_sid",
              "request_sid", "level", "message", "date_created")
_DAY_S = 86_400.0  # StartDate's default: "1 day prior to current date/time" (the spec)
_TOKEN = re.compile(r"^PT(\d+)$")


def record_logs(state: EmulatorState, env: Record, build: Record, function: Record,
                lines: Sequence[tuple[str, str]]) -> list[Record]:
    """Store what one invocation of `function` (a function version) logged on `env`."""
    if not lines:
        return []
    deployments = state.store.children("deployment", env.sid)
    deployment = next((d.sid for d in reversed(deployments)
                       if d.data.get("build_sid") == build.sid), None)
    request_sid = state.new_sid("RQ")
    now = state.now()
    stored = []
    with state.store.transaction():
        for level, message in lines:
            data = {
                "service_sid": env.data["service_sid"], "environment_sid": env.sid,
                "build_sid": build.sid, "deployment_sid": deployment,
                "function_sid": function.data["function_sid"], "request_sid": request_sid,
                "level": level, "message": message, "date_created": iso(now),
            }
            stored.append(state.store.insert(state.new_sid("NO"), "log", env.sid, now, data))
    return stored


def render_log(state: EmulatorState, rec: Record, base: str) -> dict[str, Any]:
    """A Log resource's JSON, exactly the spec's fields."""
    body: dict[str, Any] = {"sid": rec.sid, "account_sid": state.account_sid}
    body.update((name, rec.data.get(name)) for name in LOG_FIELDS)
    body["url"] = (f"{base}/v1/Services/{rec.data['service_sid']}/Environments/"
                   f"{rec.data['environment_sid']}/Logs/{rec.sid}")
    return body


def _date(query: Any, name: str, default: float) -> float:
    text = query.get(name)
    if text is None:
        return default
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise bad_request(f"Invalid {name} {text!r}: expected an ISO 8601 date-time such as "
                          "2018-11-10T20:00:00Z") from None
    # The spec's dates are GMT: one without an offset is read as such, not as local time.
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def _page_size(query: Any) -> tuple[int, int]:
    try:
        size, page = int(query.get("PageSize", "50")), int(query.get("Page", "0"))
    except ValueError:
        raise bad_request("Invalid PageSize or Page: expected integers") from None
    if not 1 <= size <= 1000 or page < 0:
        raise bad_request("Invalid PageSize or Page: PageSize must be 1..1000 and Page at least 0")
    return size, page


async def list_logs(state: EmulatorState, env: Record, request: Request, base: str) -> Response:
    """`GET …/Logs`: the environment's logs in the date range (and of one function), oldest
    first, a page at a time (`PageToken` carries the last sequence number seen)."""
    query = request.query_params
    size, page = _page_size(query)
    now = state.now()
    start, end = _date(query, "StartDate", now - _DAY_S), _date(query, "EndDate", now)
    function_sid = query.get("FunctionSid")
    token = query.get("PageToken")
    match = _TOKEN.match(token) if token else None
    if token and not match:
        raise bad_request(f"Invalid PageToken {token!r}: use the URLs in meta to page")
    after = int(match[1]) if match else None
    # Dates are whole seconds, as `date_created` shows them: a log at 20:00:00.4 is in a range
    # that starts at 20:00:00Z.
    rows = [r for r in state.store.children("log", env.sid)
            if start <= int(r.created) <= end
            and (function_sid is None or r.data.get("function_sid") == function_sid)
            and (after is None or r.seq > after)]
    if after is None:
        rows = rows[page * size:]
    shown, more = rows[:size], len(rows) > size
    extra = {k: query[k] for k in ("StartDate", "EndDate", "FunctionSid") if k in query}
    body = list_body("logs", [render_log(state, r, base) for r in shown],
                     base + request.url.path, page=page, page_size=size,
                     next_token=f"PT{shown[-1].seq}" if more and shown else None,
                     prev_token=None, extra=extra)
    return JSONResponse(body)


def fetch_log(state: EmulatorState, env: Record, request: Request, base: str) -> Response:
    """`GET …/Logs/{sid}`: one Log of the environment (404 for any other)."""
    rec = state.store.get(request.path_params["sid"], "log")
    if rec is None or rec.parent_sid != env.sid:
        raise not_found(request.url.path)
    return JSONResponse(render_log(state, rec, base))
