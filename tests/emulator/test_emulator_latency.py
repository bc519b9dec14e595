"""`assetsync emulator --latency DELAY[:JITTER]`: every request waits at least DELAY, as an internet
round trip would (issue 26); a bad value is one line and exit 2."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from assetsync.cli import main
from assetsync.emulator.state import LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN


def test_every_request_waits_at_least_the_latency(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "assetsync", "emulator", "--port", "0", "--data",
         str(tmp_path / "emu"), "--latency", "300ms:50ms"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split()[-1]
        waits = []
        with httpx.Client(base_url=url, auth=(LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN)) as http:
            for path in ("/v1/Services", "/v1/Services/none"):
                started = time.monotonic()
                status = http.get(path).status_code
                waits.append((status, time.monotonic() - started))
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    # A lower bound only: the sleep guarantees it, however loaded the machine.
    assert [status for status, _ in waits] == [200, 404]
    assert all(wait >= 0.3 for _, wait in waits), waits


@pytest.mark.parametrize("value", ["80", "80ms:", "fast", "80ms:20ms:5ms", "-5ms"])
def test_a_bad_latency_is_one_line_and_exit_2(
    value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["emulator", "--port", "0", "--data", str(tmp_path / "emu"),
                 f"--latency={value}"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "--latency" in err and "80ms:20ms" in err
