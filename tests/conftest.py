"""Shared test fixtures: a clean environment for every test, and (see below) the emulator."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test sees the developer's Twilio credentials or assetsync overrides."""
    for name in list(os.environ):
        if name.startswith(("TWILIO_", "ASSETSYNC_")):
            monkeypatch.delenv(name, raising=False)
    yield
