"""State survives restarts; two processes on one folder see each other; the CLI serves it."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from assetsync.cli import main
from assetsync.emulator import LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN, embedded_transport
from assetsync.emulator.serve import start_in_thread
from assetsync.emulator.state import EmulatorState
from tests.conftest import publish

AUTH = (LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN)


def test_state_survives_a_restart(tmp_path: Path) -> None:
    first = EmulatorState(tmp_path)
    running = start_in_thread(first)
    try:
        with httpx.Client(base_url=running.url, auth=AUTH) as client:
            done = publish(client, {"/a.txt": (b"persisted", "public")})
    finally:
        running.stop()
        first.close()
    second = EmulatorState(tmp_path)
    running = start_in_thread(second)
    try:
        with httpx.Client(base_url=running.url, auth=AUTH) as client:
            services = client.get("/v1/Services").json()["services"]
            env = client.get(f"/v1/Services/demo/Environments/{done['environment']['sid']}").json()
        served = httpx.get(f"{running.url}/a.txt", headers={"Host": env["domain_name"]})
    finally:
        running.stop()
        second.close()
    assert [s["sid"] for s in services] == [done["service"]["sid"]]
    assert env["build_sid"] == done["build"]["sid"]
    assert served.content == b"persisted"


async def _embedded_service(data: Path, name: str) -> str:
    async with httpx.AsyncClient(
        transport=embedded_transport(data), base_url="http://local", auth=AUTH
    ) as c:
        response = await c.post("/v1/Services", data={"UniqueName": name, "FriendlyName": name})
        response.raise_for_status()
        return str(response.json()["sid"])


async def _embedded_deploy(data: Path, path: str, content: bytes) -> str:
    """The deploy sequence through the embedded transport; returns the environment's domain."""
    async with httpx.AsyncClient(
        transport=embedded_transport(data), base_url="http://local", auth=AUTH
    ) as c:
        svc = (
            await c.post("/v1/Services", data={"UniqueName": "site", "FriendlyName": "site"})
        ).json()
        env = (
            await c.post(
                f"/v1/Services/{svc['sid']}/Environments",
                data={"UniqueName": "dev-environment", "DomainSuffix": "dev"},
            )
        ).json()
        asset = (
            await c.post(f"/v1/Services/{svc['sid']}/Assets", data={"FriendlyName": path})
        ).json()
        version = (
            await c.post(
                asset["links"]["asset_versions"],
                data={"Path": path, "Visibility": "public"},
                files={"Content": (path[1:], content, "text/plain")},
            )
        ).json()
        build = (
            await c.post(
                f"/v1/Services/{svc['sid']}/Builds", data={"AssetVersions": [version["sid"]]}
            )
        ).json()
        while (await c.get(build["links"]["build_status"])).json()["status"] == "building":
            await asyncio.sleep(0.01)
        (
            await c.post(env["links"]["deployments"], data={"BuildSid": build["sid"]})
        ).raise_for_status()
        return str(env["domain_name"])


def test_cli_serves_what_the_embedded_target_published_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    data = tmp_path / "state" / "emulator"
    domain = asyncio.run(_embedded_deploy(data, "/hello.txt", b"published offline"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "assetsync", "emulator", "--port", "0", "--data", str(data)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        assert banner.startswith("assetsync emulator listening on http://127.0.0.1:"), banner
        url = banner.split()[-1]
        served = httpx.get(f"{url}/_serve/{domain}/hello.txt")
        # Written by another process while the server runs: visible on the next request.
        later = asyncio.run(_embedded_service(data, "later"))
        listed = httpx.get(f"{url}/v1/Services", auth=AUTH).json()["services"]
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert served.status_code == 200 and served.content == b"published offline"
    assert [s["unique_name"] for s in listed] == ["site", "later"] and listed[1]["sid"] == later
    assert proc.returncode == 0
    assert "stopped" in err
    assert LOCAL_AUTH_TOKEN not in out + err  # the token's source is printed, never the token


def test_cli_rejects_bad_options_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(tmp_path / "emu")
    cases = [
        ["--account-sid", "AC123"],
        ["--fault", "POST /v1 teapot"],
        ["--limit", "nonsense=3"],
        ["--limit", "builds_per_hour=lots"],
    ]
    for extra in cases:
        assert main(["emulator", "--data", data, *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("assetsync: error: --") and "\n" not in err, err


def test_embedded_transport_survives_its_client_closing(tmp_path: Path) -> None:
    transport = embedded_transport(tmp_path / "emu")

    async def list_names() -> list[str]:
        async with httpx.AsyncClient(transport=transport, base_url="http://local", auth=AUTH) as c:
            return [s["unique_name"] for s in (await c.get("/v1/Services")).json()["services"]]

    async def create(name: str) -> None:
        async with httpx.AsyncClient(transport=transport, base_url="http://local", auth=AUTH) as c:
            (
                await c.post("/v1/Services", data={"UniqueName": name, "FriendlyName": name})
            ).raise_for_status()

    asyncio.run(create("first"))
    asyncio.run(create("second"))
    assert asyncio.run(list_names()) == ["first", "second"]


def test_injected_clock_and_sid_factory_make_responses_deterministic(tmp_path: Path) -> None:
    from assetsync.emulator.app import create_app

    counter = iter(range(1, 1000))
    state = EmulatorState(
        tmp_path,
        clock=lambda: 1_700_000_000.0,
        sid_factory=lambda prefix: f"{prefix}{next(counter):032x}",
    )

    async def scenario() -> tuple[dict[str, object], dict[str, object]]:
        transport = httpx.ASGITransport(app=create_app(state))
        async with httpx.AsyncClient(transport=transport, base_url="http://emu", auth=AUTH) as c:
            svc = (
                await c.post("/v1/Services", data={"UniqueName": "det", "FriendlyName": "d"})
            ).json()
            env = (
                await c.post(
                    f"/v1/Services/{svc['sid']}/Environments",
                    data={"UniqueName": "dev", "DomainSuffix": "dev"},
                )
            ).json()
            return svc, env

    svc, env = asyncio.run(scenario())
    state.close()
    assert svc["sid"] == "ZS" + "0" * 31 + "1" and env["sid"] == "ZE" + "0" * 31 + "2"
    assert svc["date_created"] == "2023-11-14T22:13:20Z"
    assert env["domain_name"] == f"{svc['domain_base']}-dev.twil.io" == "det-1001-dev.twil.io"


def test_cli_names_a_corrupt_data_folder_and_a_bad_port(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "emulator.sqlite3").write_bytes(b"this is not a database" * 100)
    assert main(["emulator", "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not a usable emulator database" in err and "Traceback" not in err
    assert main(["emulator", "--data", str(tmp_path / "other"), "--port", "70000"]) == 2
    assert "--port 70000" in capsys.readouterr().err
