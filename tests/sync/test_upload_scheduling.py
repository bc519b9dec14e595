"""How a sync keeps the request slots busy: an upload's record runs after its slot is given up,
one failure stops work going on side by side, functions, the manifest's Function and the
Variables go out beside the assets, and a service this run made is never listed."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from assetsync.state.remote_manifest import MANIFEST_PATH
from assetsync.sync.uploads import run_all
from tests.toolkit_harness import SECRETS, enter_toolkit_project, live, run

# Only a deadlock guard: each test below finishes at once when the code is right.
_HANG = 30.0


def test_a_jobs_tail_runs_after_its_place_is_given_to_the_next_job() -> None:
    """With one place, job 1's tail waits for job 2 to start: it must not hold the place."""

    async def main() -> list[str]:
        steps: list[str] = []
        second_started = asyncio.Event()

        async def tail() -> None:
            await second_started.wait()
            steps.append("tail 1")

        async def first() -> Any:
            steps.append("job 1")
            return tail()

        async def second() -> None:
            steps.append("job 2")
            second_started.set()

        await asyncio.wait_for(run_all([first, second], limit=1), _HANG)
        return steps

    assert asyncio.run(main()) == ["job 1", "job 2", "tail 1"]


def test_one_failure_stops_jobs_of_another_run_all_sharing_its_failures() -> None:
    async def main() -> tuple[list[str], list[str]]:
        failures: list[Exception] = []
        ran: list[str] = []
        failed, in_flight = asyncio.Event(), asyncio.Event()

        async def boom() -> None:
            await in_flight.wait()
            failed.set()
            raise ValueError("the first failure")

        async def wait_then(name: str) -> None:
            in_flight.set()
            await failed.wait()  # in flight when the other fails: left to finish
            ran.append(name)

        async def later(name: str) -> None:
            ran.append(name)  # starts only after the failure: must not run

        other = [lambda: wait_then("b1"), *(lambda n=n: later(f"b{n}") for n in range(2, 6))]
        outcomes = await asyncio.wait_for(asyncio.gather(
            run_all([boom], limit=1, failures=failures),
            run_all(other, limit=1, failures=failures),
            return_exceptions=True), _HANG)
        return ran, [str(o) for o in outcomes]

    ran, outcomes = asyncio.run(main())
    assert ran == ["b1"]
    assert outcomes == ["the first failure", "the first failure"]  # both raise it


@pytest.fixture
def project(tmp_path: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Path:
    return enter_toolkit_project(tmp_path, emulator, monkeypatch)


def _requests(emulator: Any) -> list[tuple[str, str]]:
    """(method, path with SIDs as {sid}) of every request, in the order they arrived."""
    log = sorted(emulator.state.request_log, key=lambda e: e.started)
    return [(e.method, re.sub(r"Z[A-Z][0-9a-f]{32}", "{sid}", e.path)) for e in log]


def test_a_cold_sync_lists_nothing_on_the_service_it_made_and_sends_functions_beside_assets(
        project: Path, emulator: Any, capsys: pytest.CaptureFixture[str]) -> None:
    for i in range(30):  # enough asset creates that the functions could wait for them
        (project / "site" / f"file{i:02d}.txt").write_text(f"file {i}\n")
    # Slow Variables: the uploads must not wait for them (only the deployment does).
    emulator.state.faults.add("POST", "*/Variables", "delay", count=None, delay_s=0.5)
    emulator.state.request_log.clear()
    code, _, err = run(capsys, "sync")
    assert code == 0, err
    log = emulator.state.request_log
    variables_answered = max(e.time for e in log if e.path.endswith("/Variables"))
    first_upload = min(e.started for e in log if e.kind == "upload")
    deployed = [e for e in log if e.path.endswith("/Deployments")]
    assert first_upload < variables_answered <= deployed[0].started
    sent = _requests(emulator)
    lists = [path for method, path in sent if method == "GET"
             and path.endswith(("/Assets", "/Functions", "/Variables", "/Environments"))]
    assert lists == []  # the service is new: nothing on it to adopt or diff against
    assert [p for m, p in sent if m == "GET" and p.count("/") == 3] == ["/v1/Services/site"]
    asset_creates = [i for i, (m, p) in enumerate(sent)
                     if m == "POST" and p == "/v1/Services/{sid}/Assets"]
    function_creates = [i for i, (m, p) in enumerate(sent)
                        if m == "POST" and p == "/v1/Services/{sid}/Functions"]
    # The project's three Functions and the manifest's, made among the asset creates rather
    # than before or after them all.
    assert len(function_creates) == 4 and len(asset_creates) == 31
    assert max(function_creates) < max(asset_creates)
    now = live(emulator)
    assert now["variables"] == {"GREETING": SECRETS[0], "OTHER": SECRETS[1]}
    assert len(now["assets"]) == 31
    assert MANIFEST_PATH in [v["path"] for v in now["build"]["function_versions"]]
