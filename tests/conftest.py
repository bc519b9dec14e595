"""Shared test fixtures: a clean environment for every test, and the emulator over a socket."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from assetsync.emulator.serve import RunningEmulator, start_in_thread
from assetsync.emulator.state import AdjustableClock, EmulatorLimits, EmulatorState

DEFAULT_BUILD_DELAY_S = 0.05


def pytest_configure(config: pytest.Config) -> None:
    """Give the CLI processes the tests start a default Ctrl-C.

    A shell without job control (a script's `cmd &`, many CI wrappers) starts a background job
    with SIGINT ignored, and an ignored signal stays ignored across fork and exec: every
    `assetsync` a test starts would then ignore the Ctrl-C it is sent, as it should from such a
    shell. A caught signal is reset to the default at exec, so Python's own handler here gives
    each child the disposition a terminal's foreground job has."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees the developer's Twilio credentials or assetsync overrides."""
    for name in list(os.environ):
        if name.startswith(("TWILIO_", "ASSETSYNC_")):
            monkeypatch.delenv(name, raising=False)
    yield


@dataclass
class EmulatorHandle:
    """What a test gets from the `emulator` fixture.

    `url` is both the main and the upload host; `state` is the live `EmulatorState` (fault
    switches in `state.faults`, `state.fail_next_builds(n)`, `state.build_delay_s`,
    `state.limits`, `state.request_log`); `clock.advance(seconds)` moves the emulator's time.
    """

    url: str
    state: EmulatorState
    clock: AdjustableClock

    @property
    def account_sid(self) -> str:
        return self.state.account_sid

    @property
    def auth_token(self) -> str:
        return self.state.auth_token

    def client(self, **kwargs: object) -> httpx.Client:
        """A synchronous httpx client authenticated as the emulator's account."""
        return httpx.Client(base_url=self.url, auth=(self.account_sid, self.auth_token), **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def _emulator_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RunningEmulator, AdjustableClock]]:
    clock = AdjustableClock()
    state = EmulatorState(tmp_path_factory.mktemp("emulator"), clock=clock)
    running = start_in_thread(state)
    yield running, clock
    running.stop()
    state.close()


@pytest.fixture
def emulator(_emulator_server: tuple[RunningEmulator, AdjustableClock]) -> Iterator[EmulatorHandle]:
    """The session's emulator on 127.0.0.1 (port 0), reset to an empty account for this test."""
    running, clock = _emulator_server
    state = running.state
    state.reset()
    clock.reset()
    state.limits = EmulatorLimits()
    state.build_delay_s = DEFAULT_BUILD_DELAY_S
    state.api_keys = {}
    yield EmulatorHandle(running.url, state, clock)
    state.reset()
    clock.reset()


def wait_for_build(client: httpx.Client, build: dict[str, Any]) -> str:
    """Poll a build's status link until it leaves `building`; returns the final status."""
    links = build["links"]
    assert isinstance(links, dict)
    while (status := client.get(links["build_status"]).json()["status"]) == "building":
        time.sleep(0.01)
    return str(status)


def publish(
    client: httpx.Client,
    files: dict[str, tuple[bytes, str]],
    *,
    service: str = "demo",
    suffix: str = "dev",
) -> dict[str, Any]:
    """Run the official deploy sequence (api-contract.md §7.3) for `{path: (content, visibility)}`.

    Returns the service, environment, build and deployment bodies and the versions by path.
    """
    svc = client.post("/v1/Services", data={"UniqueName": service, "FriendlyName": service})
    svc.raise_for_status()
    svc_sid = svc.json()["sid"]
    env = client.post(
        f"/v1/Services/{svc_sid}/Environments",
        data={"UniqueName": f"{suffix}-environment", "DomainSuffix": suffix},
    )
    env.raise_for_status()
    versions: dict[str, dict[str, Any]] = {}
    for path, (content, visibility) in files.items():
        asset = client.post(f"/v1/Services/{svc_sid}/Assets", data={"FriendlyName": path})
        asset.raise_for_status()
        version = client.post(
            asset.json()["links"]["asset_versions"],
            data={"Path": path, "Visibility": visibility},
            files={"Content": (path.rsplit("/", 1)[-1], content, "application/octet-stream")},
        )
        version.raise_for_status()
        versions[path] = version.json()
    build = client.post(
        f"/v1/Services/{svc_sid}/Builds",
        data={"AssetVersions": [v["sid"] for v in versions.values()]},
    )
    build.raise_for_status()
    assert wait_for_build(client, build.json()) == "completed"
    deployment = client.post(
        env.json()["links"]["deployments"], data={"BuildSid": build.json()["sid"]}
    )
    deployment.raise_for_status()
    return {
        "service": svc.json(),
        "environment": env.json(),
        "build": build.json(),
        "deployment": deployment.json(),
        "versions": versions,
    }
