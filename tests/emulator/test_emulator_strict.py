"""The emulator never acts on an incomplete or malformed request (DESIGN.md invariant 7): a cut
short body, a multipart body without its closing boundary, a body that is not a form."""

from __future__ import annotations

import asyncio
import base64
import socket
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from assetsync.emulator import LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN, EmbeddedTransport
from assetsync.emulator.state import EmulatorState
from tests.conftest import EmulatorHandle

BOUNDARY = "b0undary"


def _multipart(content: bytes, *, closed: bool = True) -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="Path"\r\n\r\n/a.txt\r\n',
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="Visibility"\r\n\r\npublic\r\n',
        (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="Content"; filename="a.txt"'
         "\r\nContent-Type: text/plain\r\n\r\n"),
    ]
    body = "".join(parts).encode() + content
    return body + (f"\r\n--{BOUNDARY}--\r\n".encode() if closed else b"")


def _asset(client: httpx.Client) -> dict[str, Any]:
    svc = client.post("/v1/Services", data={"UniqueName": "s", "FriendlyName": "s"}).json()
    asset: dict[str, Any] = client.post(f"{svc['url']}/Assets",
                                        data={"FriendlyName": "/a.txt"}).json()
    return asset


def _stored_versions(state: EmulatorState, asset_sid: str) -> int:
    return len(state.store.children("asset_version", asset_sid))


def test_a_multipart_body_without_its_closing_boundary_is_refused_and_stores_nothing(
    emulator: EmulatorHandle,
) -> None:
    with emulator.client() as client:
        asset = _asset(client)
        url = asset["links"]["asset_versions"]
        headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
        cut = client.post(url, content=_multipart(b"x" * 5000, closed=False), headers=headers)
        assert _stored_versions(emulator.state, asset["sid"]) == 0
        whole = client.post(url, content=_multipart(b"x" * 5000), headers=headers)
    assert cut.status_code == 400 and cut.json()["code"] == 20001
    assert "closing boundary" in cut.json()["message"]
    assert whole.status_code == 201
    assert _stored_versions(emulator.state, asset["sid"]) == 1


def test_a_body_shorter_than_its_content_length_is_refused_in_process(tmp_path: Path) -> None:
    async def scenario() -> tuple[int, str, int, int]:
        transport = EmbeddedTransport(EmulatorState(tmp_path / "emu"))
        async with httpx.AsyncClient(transport=transport, base_url="http://assetsync.local",
                                     auth=(LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN)) as client:
            svc = (await client.post("/v1/Services",
                                     data={"UniqueName": "s", "FriendlyName": "s"})).json()
            body = _multipart(b"y" * 100)
            request = client.build_request(
                "POST", f"{svc['url']}/Assets",
                content=b"FriendlyName=%2Fa.txt",
                headers={"Content-Type": "application/x-www-form-urlencoded",
                         "Content-Length": "40"})
            form = await client.send(request)
            asset = (await client.post(f"{svc['url']}/Assets",
                                       data={"FriendlyName": "/b.txt"})).json()
            request = client.build_request(
                "POST", asset["links"]["asset_versions"], content=body,
                headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                         "Content-Length": str(len(body) + 10)})
            upload = await client.send(request)
            assets = len(transport.state.store.children("asset", svc["sid"]))
            return (form.status_code, upload.json()["message"], upload.status_code,
                    assets + _stored_versions(transport.state, asset["sid"]))

    form, message, upload, stored = asyncio.run(scenario())
    assert form == 400 and upload == 400 and "Content-Length" in message
    assert stored == 1  # only the Asset made whole; no Asset from the cut form, no version


def test_a_connection_closed_mid_upload_stores_nothing(emulator: EmulatorHandle) -> None:
    with emulator.client() as client:
        asset = _asset(client)
    body = _multipart(b"z" * 20_000)
    parts = urlsplit(emulator.url)
    path = urlsplit(asset["links"]["asset_versions"]).path
    auth = base64.b64encode(f"{emulator.account_sid}:{emulator.auth_token}".encode()).decode()
    head = (f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nAuthorization: Basic {auth}\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection((parts.hostname, parts.port)) as sock:
        sock.sendall(head + body[: len(body) // 2])
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(5)
        try:
            sock.recv(1024)
        except OSError:
            pass
    for _ in range(500):  # until the emulator has logged the request (bounded)
        if emulator.state.request_log.matching(kind="upload"):
            break
        time.sleep(0.01)
    assert _stored_versions(emulator.state, asset["sid"]) == 0
    logged = emulator.state.request_log.matching(kind="upload")
    assert len(logged) == 1 and logged[0].status in (0, 400)


@pytest.mark.parametrize(("content_type", "body"), [
    ("application/json", b'{"FriendlyName": "/json"}'),
    ("text/plain", b"FriendlyName=/text"),
    (f"multipart/form-data; boundary={BOUNDARY}",
     f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="FriendlyName"\r\n\r\n/mp\r\n'
     f"--{BOUNDARY}--\r\n".encode()),
])
def test_the_main_host_takes_form_bodies_only(
    emulator: EmulatorHandle, content_type: str, body: bytes
) -> None:
    with emulator.client() as client:
        svc = client.post("/v1/Services", data={"UniqueName": "f", "FriendlyName": "f"}).json()
        answer = client.post(f"{svc['url']}/Assets", content=body,
                             headers={"Content-Type": content_type})
        listed = client.get(f"{svc['url']}/Assets").json()["assets"]
    assert answer.status_code == 400 and "x-www-form-urlencoded" in answer.json()["message"]
    assert listed == []


@pytest.mark.parametrize(("path", "data", "missing"), [
    ("/v1/Services", {"FriendlyName": "x"}, "UniqueName"),
    ("/v1/Services", {"UniqueName": "x"}, "FriendlyName"),
    ("{svc}/Assets", {}, "FriendlyName"),
    ("{svc}/Functions", {"Friendly": "x"}, "FriendlyName"),
    ("{svc}/Environments", {"DomainSuffix": "x"}, "UniqueName"),
])
def test_missing_required_parameters_are_refused(
    emulator: EmulatorHandle, path: str, data: dict[str, str], missing: str
) -> None:
    with emulator.client() as client:
        svc = client.post("/v1/Services", data={"UniqueName": "r", "FriendlyName": "r"}).json()
        answer = client.post(path.format(svc=svc["url"]), data=data)
    assert answer.status_code == 400 and answer.json()["code"] == 20001
    assert answer.json()["message"] == f"Missing required parameter {missing} in the post body"
