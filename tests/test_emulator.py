"""The emulator over a real socket: the official deploy sequence, auth, serving, faults."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.conftest import EmulatorHandle


def _deploy_one(emu: EmulatorHandle, client: httpx.Client, path: str = "/logo.png",
                visibility: str = "public", body: bytes = b"\x89PNG-bytes") -> dict[str, str]:
    svc = client.post("/v1/Services", data={"UniqueName": "demo", "FriendlyName": "Demo"}).json()
    env = client.post(
        f"/v1/Services/{svc['sid']}/Environments",
        data={"UniqueName": "dev-environment", "DomainSuffix": "dev"},
    ).json()
    asset = client.post(f"/v1/Services/{svc['sid']}/Assets", data={"FriendlyName": path}).json()
    version = client.post(
        asset["links"]["asset_versions"],
        data={"Path": path, "Visibility": visibility},
        files={"Content": (path.rsplit("/", 1)[-1], body, "application/octet-stream")},
    ).json()
    build = client.post(f"/v1/Services/{svc['sid']}/Builds", data={"AssetVersions": [version["sid"]]}).json()
    while client.get(build["links"]["build_status"]).json()["status"] == "building":
        time.sleep(0.02)
    client.post(env["links"]["deployments"], data={"BuildSid": build["sid"]}).raise_for_status()
    return {"service": svc["sid"], "domain": env["domain_name"], "build": build["sid"],
            "version": version["sid"], "env": env["sid"]}


def test_deploy_sequence_serves_the_published_asset(emulator: EmulatorHandle) -> None:
    with emulator.client() as client:
        ids = _deploy_one(emulator, client)
        env = client.get(f"/v1/Services/{ids['service']}/Environments/{ids['env']}").json()
    assert env["build_sid"] == ids["build"]
    served = httpx.get(f"{emulator.url}/logo.png", headers={"Host": ids["domain"]})
    assert served.status_code == 200
    assert served.content == b"\x89PNG-bytes"
    assert served.headers["content-type"] == "image/png"


def test_wrong_credentials_get_401_with_code_20003(emulator: EmulatorHandle) -> None:
    response = httpx.get(f"{emulator.url}/v1/Services", auth=(emulator.account_sid, "wrong"))
    assert response.status_code == 401
    assert response.json()["code"] == 20003


def test_drop_fault_closes_the_connection_without_a_response(emulator: EmulatorHandle) -> None:
    emulator.state.faults.add("GET", "/v1/Services", "drop", 1)
    with emulator.client() as client:
        with pytest.raises(httpx.TransportError):
            client.get("/v1/Services")
        assert client.get("/v1/Services").status_code == 200
    assert [e.status for e in emulator.state.request_log] == [0, 200]
