"""Shared test fixtures: a clean environment for every test, and the emulator over a socket."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from assetsync.emulator.serve import RunningEmulator, start_in_thread
from assetsync.emulator.state import AdjustableClock, EmulatorLimits, EmulatorState

DEFAULT_BUILD_DELAY_S = 0.05


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
def _emulator_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningEmulator, AdjustableClock]]:
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
    yield EmulatorHandle(running.url, state, clock)
    state.reset()
    clock.reset()
