"""Environment Variables: the pure plan, and applying it to the emulator over a socket, with
no value ever shown in a log record, an error, a plan's JSON or a repr."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from assetsync.errors import ApiStatusError, LimitError
from assetsync.functions.variables import (
    VariablePlan,
    apply_variables,
    plan_variables,
    sync_variables,
)
from assetsync.remote.client import ServerlessClient
from assetsync.remote.resources import Variable
from tests.remote.test_client import make_client

T = TypeVar("T")
SECRET = "tok-9f8e7d6c5b4a-UNIQUE-SECRET"


def remote(**values: str) -> list[Variable]:
    return [Variable(f"ZV{i:032x}", key, value) for i, (key, value) in enumerate(values.items())]


# the pure plan --------------------------------------------------------------------------------


def test_plan_creates_updates_and_keeps_remote_only_keys_by_default() -> None:
    plan = plan_variables({"A": "1", "B": "two", "D": "4"}, remote(A="1", B="2", C="3"),
                          prune=False)
    assert (plan.create, plan.update, plan.delete, plan.kept, plan.unchanged) == (
        ("D",), ("B",), (), ("C",), ("A",)
    )
    assert dict(plan.sids) == {"B": "ZV" + f"{1:032x}"}
    assert plan.changed


def test_plan_with_prune_deletes_remote_only_keys() -> None:
    plan = plan_variables({"A": "1"}, remote(A="1", C="3", B="x"), prune=True)
    assert plan.delete == ("B", "C") and plan.kept == ()
    assert set(dict(plan.sids)) == {"B", "C"}


def test_plan_of_equal_variables_changes_nothing() -> None:
    plan = plan_variables({"A": "1", "B": ""}, remote(B="", A="1"), prune=True)
    assert not plan.changed
    assert plan.unchanged == ("A", "B")


@pytest.mark.parametrize(
    ("local", "fragment"),
    [
        ({"K" * 129: "v"}, "over Twilio's 128 characters"),
        ({"BIG": SECRET * 20}, "values over Twilio's 450 bytes (BIG)"),
        ({"UTF": "é" * 226}, "(UTF)"),  # 452 bytes in 226 characters
        ({"": "v"}, "an empty key"),
    ],
)
def test_limits_are_checked_before_anything_and_name_the_key(
    local: dict[str, str], fragment: str
) -> None:
    with pytest.raises(LimitError) as err:
        plan_variables(local, [], prune=False, file="proj/.env")
    assert str(err.value).startswith("proj/.env: ")
    assert fragment in str(err.value)
    assert SECRET not in str(err.value)


def test_limits_allow_exactly_the_documented_maximum() -> None:
    plan = plan_variables({"K" * 128: "é" * 225}, [], prune=False)  # 450 bytes
    assert plan.create == ("K" * 128,)


# against the emulator -------------------------------------------------------------------------


def run(emulator: Any, body: Callable[[ServerlessClient, str, str], Awaitable[T]]) -> T:
    async def main() -> T:
        async with make_client(emulator) as client:
            service = await client.create_service("vars-demo")
            env = await client.create_environment(service.sid, "dev-environment", "dev")
            return await body(client, service.sid, env.sid)

    return asyncio.run(main())


def variable_writes(emulator: Any) -> list[tuple[str, bool]]:
    """(method, whether the URL names one variable) for each variable mutation."""
    return [
        (e.method, not e.path.endswith("/Variables"))
        for e in emulator.state.request_log
        if e.method != "GET" and "/Variables" in e.path
    ]


def test_sync_sends_only_what_changed_and_keeps_remote_only_keys(emulator: Any) -> None:
    async def body(
        client: ServerlessClient, svc: str, env: str
    ) -> tuple[VariablePlan, dict[str, str]]:
        for key, value in (("A", "1"), ("B", "2"), ("C", "3")):
            await client.create_variable(svc, env, key, value)
        emulator.state.request_log.clear()
        plan = await sync_variables(client, svc, env, {"A": "1", "B": "two", "D": "4"},
                                    prune=False)
        live = {v.key: v.value for v in await client.list_variables(svc, env)}
        return plan, live

    plan, live = run(emulator, body)
    assert live == {"A": "1", "B": "two", "C": "3", "D": "4"}
    assert sorted(variable_writes(emulator)) == [("POST", False), ("POST", True)]
    assert plan.to_json() == {"create": ["D"], "update": ["B"], "delete": [], "kept": ["C"],
                              "unchanged": ["A"]}


def test_sync_with_prune_deletes_and_a_second_sync_sends_nothing(emulator: Any) -> None:
    async def body(client: ServerlessClient, svc: str, env: str) -> tuple[dict[str, str], int]:
        for key, value in (("A", "1"), ("OLD", "x"), ("OLDER", "y")):
            await client.create_variable(svc, env, key, value)
        emulator.state.request_log.clear()
        await sync_variables(client, svc, env, {"A": "1"}, prune=True)
        deletes = variable_writes(emulator)
        emulator.state.request_log.clear()
        again = await sync_variables(client, svc, env, {"A": "1"}, prune=True)
        assert not again.changed
        live = {v.key: v.value for v in await client.list_variables(svc, env)}
        assert deletes == [("DELETE", True), ("DELETE", True)]
        return live, len(variable_writes(emulator))

    live, writes_after = run(emulator, body)
    assert live == {"A": "1"}
    assert writes_after == 0


def test_apply_reports_a_failed_request(emulator: Any) -> None:
    async def body(client: ServerlessClient, svc: str, env: str) -> None:
        plan = plan_variables({"A": "1"}, [], prune=False)
        emulator.state.faults.add("POST", "*/Variables", "500", count=20)
        await apply_variables(client, svc, env, {"A": "1"}, plan)

    with pytest.raises(ApiStatusError, match="HTTP 500"):
        run(emulator, body)


def test_no_value_appears_in_logs_errors_json_or_reprs(
    emulator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []

    async def body(client: ServerlessClient, svc: str, env: str) -> None:
        await sync_variables(client, svc, env, {"TOKEN": SECRET + "-old", "KEEP": "k"},
                             prune=False)
        plan = await sync_variables(client, svc, env, {"TOKEN": SECRET, "NEW": SECRET},
                                    prune=True)
        live = await client.list_variables(svc, env)
        assert {v.key: v.value for v in live} == {"TOKEN": SECRET, "NEW": SECRET}
        seen.extend([repr(plan), str(plan), json.dumps(plan.to_json()), repr(live),
                     str(live[0]), repr(live[0])])
        # A refused create (the key exists: 409) and a server failure carry no value either.
        with pytest.raises(ApiStatusError) as conflict:
            await client.create_variable(svc, env, "TOKEN", SECRET)
        emulator.state.faults.add("POST", "*/Variables/*", "500", count=20)
        with pytest.raises(ApiStatusError) as failed:
            await client.update_variable(svc, env, live[0].sid, SECRET + "-new")
        for err in (conflict.value, failed.value):
            seen.extend([str(err), repr(err), *map(str, err.args)])
        with pytest.raises(LimitError) as too_big:
            await sync_variables(client, svc, env, {"TOKEN": SECRET * 30}, prune=False)
        seen.extend([str(too_big.value), repr(too_big.value)])

    run(emulator, body)
    assert caplog.records, "the client logs its mutations"
    assert any("/Variables" in r.getMessage() for r in caplog.records)
    for record in caplog.records:
        assert SECRET not in record.getMessage(), record.name
        assert SECRET not in repr(record.args), record.name
    assert SECRET not in caplog.text
    for text in seen:
        assert SECRET not in text, text


def test_a_variables_value_never_shows_in_its_repr_or_str() -> None:
    variable = Variable(sid="ZV" + "0" * 32, key="API_KEY", value="s3cr3t-value")
    for text in (repr(variable), str(variable), repr((variable,))):
        assert "s3cr3t-value" not in text and "API_KEY" in text
    assert variable == Variable(sid="ZV" + "0" * 32, key="API_KEY", value="s3cr3t-value")
