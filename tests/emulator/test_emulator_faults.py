"""Fault switches (from Python and from the CLI's spec syntax), the request log, pagination."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from assetsync.emulator import (
    LOCAL_ACCOUNT_SID,
    LOCAL_AUTH_TOKEN,
    EmbeddedTransport,
    embedded_transport,
)
from assetsync.emulator.faults import FaultSwitches, parse_fault_spec
from assetsync.emulator.state import EmulatorLimits
from tests.conftest import EmulatorHandle


@pytest.mark.parametrize(
    ("action", "status", "code"), [("429", 429, 20429), ("500", 500, 20500), ("503", 503, 20503)]
)
def test_error_faults_answer_twilio_bodies_then_stop(
    emulator: EmulatorHandle, action: str, status: int, code: int
) -> None:
    emulator.state.faults.add("GET", "/v1/Services", action, count=2)
    with emulator.client() as client:
        answers = [client.get("/v1/Services") for _ in range(3)]
    assert [r.status_code for r in answers] == [status, status, 200]
    assert answers[0].json()["code"] == code
    assert "Retry-After" not in answers[0].headers


def test_429_with_retry_after(emulator: EmulatorHandle) -> None:
    emulator.state.faults.add("POST", "/v1/Services", "429-retry-after", count=1, delay_s=2.5)
    with emulator.client() as client:
        first = client.post("/v1/Services", data={"UniqueName": "x", "FriendlyName": "x"})
        second = client.post("/v1/Services", data={"UniqueName": "x", "FriendlyName": "x"})
    assert first.status_code == 429 and first.headers["Retry-After"] == "3"
    assert second.status_code == 201
    # The 429'd request was never processed: exactly one service exists.
    assert [e.status for e in emulator.state.request_log] == [429, 201]


def test_upload_host_429_has_its_own_shape(emulator: EmulatorHandle) -> None:
    emulator.state.faults.add("POST", "/v1/Services/*/Assets/*/Versions", "429", count=1)
    with emulator.client() as client:
        svc = client.post("/v1/Services", data={"UniqueName": "u", "FriendlyName": "u"}).json()
        asset = client.post(f"{svc['url']}/Assets", data={"FriendlyName": "/a"}).json()
        response = client.post(
            asset["links"]["asset_versions"],
            data={"Path": "/a", "Visibility": "public"},
            files={"Content": ("a", b"x" * 5000, "text/plain")},
        )
    assert response.status_code == 429
    body = response.json()
    assert body["moreInfo"] == "https://www.twilio.com/docs/errors/20429" and "detail" in body
    upload = emulator.state.request_log.matching(kind="upload")
    assert len(upload) == 1 and upload[0].bytes_in > 5000


def test_drop_closes_the_socket_without_a_response(emulator: EmulatorHandle) -> None:
    emulator.state.faults.add("*", "/v1/Services*", "drop", count=1)
    with emulator.client() as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.get("/v1/Services")
        assert client.get("/v1/Services").status_code == 200
    assert [e.status for e in emulator.state.request_log] == [0, 200]


def test_drop_after_processing_loses_only_the_answer(emulator: EmulatorHandle) -> None:
    emulator.state.faults.add("POST", "/v1/Services", "drop-after", count=1)
    with emulator.client() as client:
        with pytest.raises(httpx.TransportError):
            client.post("/v1/Services", data={"UniqueName": "lost", "FriendlyName": "lost"})
        listed = client.get("/v1/Services").json()["services"]
    assert [s["unique_name"] for s in listed] == ["lost"]


def test_delay_then_answers_normally(emulator: EmulatorHandle) -> None:
    emulator.state.faults.add("GET", "/v1/Services", "delay", count=1, delay_s=0.01)
    with emulator.client() as client:
        assert client.get("/v1/Services").status_code == 200
    assert emulator.state.faults.pending == []


def test_rules_match_method_and_glob_and_are_used_up_in_order() -> None:
    faults = FaultSwitches()
    faults.add("post", "/v1/Services/*/Builds", "500", count=1)
    faults.add("*", "/v1/*", "503", count=2)
    taken = [faults.take(m, "/v1/Services/ZS1/Builds") for m in ("GET", "POST", "POST", "POST")]
    assert [rule.action if rule else None for rule in taken] == ["503", "500", "503", None]
    with pytest.raises(ValueError, match="unknown fault action"):
        faults.add("GET", "/", "teapot", count=1)
    with pytest.raises(ValueError, match="at least 1"):
        faults.add("GET", "/", "500", count=0)


def test_fault_spec_syntax() -> None:
    assert parse_fault_spec("POST /v1/Services/*/Builds 429 x3") == (
        "POST", "/v1/Services/*/Builds", "429", 3, 0.0, 1.0, None)
    assert parse_fault_spec("get /v1/* delay x2 1.5s") == ("GET", "/v1/*", "delay", 2, 1.5, 1.0,
                                                            None)
    assert parse_fault_spec("* /v1/* drop") == ("*", "/v1/*", "drop", 1, 0.0, 1.0, None)
    # A rate without a count fires without end; with one, at most that often.
    assert parse_fault_spec("POST /v1/* reset-after rate=0.2 seed=7") == (
        "POST", "/v1/*", "reset-after", None, 0.0, 0.2, 7)
    assert parse_fault_spec("POST /v1/* timeout-after x4 3s rate=.5") == (
        "POST", "/v1/*", "timeout-after", 4, 3.0, 0.5, None)
    for bad in ("POST /v1", "POST /v1 teapot", "POST /v1 429 3", "POST /v1 429 x0",
                "POST /v1 drop-after rate=0", "POST /v1 drop-after rate=1.5",
                "POST /v1 drop-after seed=x"):
        with pytest.raises(ValueError, match="fault"):
            parse_fault_spec(bad)


def test_a_rate_fires_for_that_share_of_requests_replayed_by_its_seed() -> None:
    def decisions(seed: int) -> list[bool]:
        faults = FaultSwitches()
        faults.add("POST", "/v1/*", "drop-after", count=None, rate=0.2, seed=seed)
        return [faults.take("POST", f"/v1/Services/ZS{i}") is not None for i in range(2000)]

    first = decisions(1)
    assert first == decisions(1) and first != decisions(2)
    assert 300 < sum(first) < 500  # 20% of 2,000, give or take
    faults = FaultSwitches()
    faults.add("GET", "/v1/*", "500", count=None, rate=1.0)
    assert all(faults.take("GET", "/v1/x") for _ in range(50))
    assert faults.take("POST", "/v1/x") is None


@pytest.mark.parametrize(("action", "error"), [
    ("drop-after", httpx.RemoteProtocolError),
    ("reset-after", httpx.ReadError),
    ("timeout-after", httpx.ReadTimeout),
])
def test_answer_lost_modes_act_then_end_the_connection_their_way(
    emulator: EmulatorHandle, action: str, error: type[Exception]
) -> None:
    emulator.state.faults.add("POST", "/v1/Services/*/Assets", action, count=1, delay_s=30)
    with emulator.client(timeout=httpx.Timeout(5.0, read=0.5)) as client:
        svc = client.post("/v1/Services", data={"UniqueName": "m", "FriendlyName": "m"}).json()
        with pytest.raises(error):
            client.post(f"{svc['url']}/Assets", data={"FriendlyName": "/made"})
        listed = client.get(f"{svc['url']}/Assets").json()["assets"]
    assert [a["friendly_name"] for a in listed] == ["/made"]  # acted on, answer lost


@pytest.mark.parametrize(("action", "error"), [
    ("drop-after", httpx.RemoteProtocolError),
    ("reset-after", httpx.ReadError),
    ("timeout-after", httpx.ReadTimeout),
])
def test_embedded_transport_raises_what_a_socket_would(
    tmp_path: Path, action: str, error: type[Exception]
) -> None:
    async def scenario() -> list[str]:
        transport = embedded_transport(tmp_path / "emu")
        assert isinstance(transport, EmbeddedTransport)
        async with httpx.AsyncClient(transport=transport, base_url="http://assetsync.local",
                                     auth=(LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN)) as client:
            transport.state.faults.add("POST", "/v1/Services", action, count=1)
            with pytest.raises(error):
                await client.post("/v1/Services", data={"UniqueName": "e", "FriendlyName": "e"})
            listed = (await client.get("/v1/Services")).json()["services"]
            return [s["unique_name"] for s in listed]

    assert asyncio.run(scenario()) == ["e"]


def test_request_log_records_kind_status_and_bytes(emulator: EmulatorHandle) -> None:
    with emulator.client() as client:
        svc = client.post("/v1/Services", data={"UniqueName": "log", "FriendlyName": "log"}).json()
        asset = client.post(f"{svc['url']}/Assets", data={"FriendlyName": "/a"}).json()
        client.post(
            asset["links"]["asset_versions"],
            data={"Path": "/a", "Visibility": "public"},
            files={"Content": ("a", b"y" * 10_000, "text/plain")},
        )
        client.get(svc["url"])
    log = emulator.state.request_log
    assert [(e.method, e.kind, e.status) for e in log] == [
        ("POST", "api", 201),
        ("POST", "api", 201),
        ("POST", "upload", 201),
        ("GET", "api", 200),
    ]
    assert log[2].bytes_in > 10_000 and log[3].bytes_in == 0
    assert len(log.writes) == 3 and len(log.matching(method="GET")) == 1
    log.clear()
    assert emulator.state.request_log == []


def test_pagination_follows_absolute_urls_built_from_the_host(emulator: EmulatorHandle) -> None:
    with emulator.client() as client:
        svc = client.post("/v1/Services", data={"UniqueName": "pages", "FriendlyName": "p"}).json()
        made = [
            client.post(f"{svc['url']}/Assets", data={"FriendlyName": f"a{i}"}).json()["sid"]
            for i in range(5)
        ]
    port = urlsplit(emulator.url).port
    seen: list[str] = []
    pages = []
    url: str | None = f"http://localhost:{port}/v1/Services/{svc['sid']}/Assets?PageSize=2"
    with httpx.Client(auth=(emulator.account_sid, emulator.auth_token)) as client:
        while url:
            body = client.get(url).json()
            pages.append(body["meta"])
            seen += [a["sid"] for a in body[body["meta"]["key"]]]
            url = body["meta"]["next_page_url"]
        back = client.get(pages[-1]["previous_page_url"]).json()
        bad = client.get(f"http://localhost:{port}/v1/Services?PageSize=1001")
    assert seen == made
    assert [m["page"] for m in pages] == [0, 1, 2]
    assert all(m["first_page_url"].startswith(f"http://localhost:{port}/") for m in pages)
    assert pages[0]["previous_page_url"] is None and pages[-1]["next_page_url"] is None
    assert [a["sid"] for a in back["assets"]] == made[2:4]
    assert bad.status_code == 400 and bad.json()["code"] == 20001


def test_embedded_transport_serves_in_process_and_drops_as_a_transport_error(
    tmp_path: Path,
) -> None:
    async def scenario() -> tuple[int, str, type[BaseException] | None]:
        transport = embedded_transport(tmp_path / "emu")
        assert isinstance(transport, EmbeddedTransport)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://assetsync.local",
            auth=(LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN),
        ) as client:
            created = await client.post(
                "/v1/Services", data={"UniqueName": "emb", "FriendlyName": "e"}
            )
            transport.state.faults.add("GET", "/v1/Services", "drop", count=1)
            raised = None
            try:
                await client.get("/v1/Services")
            except httpx.TransportError as exc:
                raised = type(exc)
            return created.status_code, created.json()["url"], raised

    status, url, raised = asyncio.run(scenario())
    assert status == 201 and url.startswith("http://assetsync.local/v1/Services/ZS")
    assert raised is httpx.RemoteProtocolError
    assert (tmp_path / "emu" / "emulator.sqlite3").exists()


def test_concurrent_request_limit_answers_429(emulator: EmulatorHandle) -> None:
    emulator.state.limits = EmulatorLimits(concurrent_requests=1)
    emulator.state.faults.add("GET", "/v1/Services", "delay", count=1, delay_s=1.0)
    results: list[int] = []
    with emulator.client() as client:
        slow = threading.Thread(
            target=lambda: results.append(client.get("/v1/Services").status_code)
        )
        slow.start()
        for _ in range(2000):  # until the slow request is being held (bounded)
            if emulator.state.in_flight:
                break
            time.sleep(0.005)
        second = client.get("/v1/Services/whatever")
        slow.join()
        after = client.get("/v1/Services")
    assert second.status_code == 429 and second.json()["code"] == 20429
    assert results == [200] and after.status_code == 200
