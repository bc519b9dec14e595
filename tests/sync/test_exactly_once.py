"""Exactly once: a Toolkit project synced while 20% of every POST loses its answer (the server
acted; the connection was then closed, reset, or silent until the client's timeout) ends with no
two Assets or Functions of one name, no content uploaded twice, the folder served byte for byte,
and a rerun that writes nothing (DESIGN.md invariant 7)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import xxhash

from assetsync.cli import main
from assetsync.config import Credentials
from assetsync.remote.client import RetryPolicy, ServerlessClient
from assetsync.state.db import State
from assetsync.state.ledger import StateLedger, UploadIntent, now_iso
from assetsync.sync.run import sync
from assetsync.sync.uploads import FUNCTIONS, recover_uploads
from tests.conftest import EmulatorHandle
from tests.lost_answer_harness import (
    LOST_MODES,
    SERVICE,
    SINGLE_CREATES,
    holdings,
    load,
    lossy_client,
    served_mismatches,
    write_project,
)
from tests.sync_harness import api_get, enter_cli


def _arm(emulator: EmulatorHandle, mode: str, seed: int) -> None:
    action = LOST_MODES[mode]
    for path in SINGLE_CREATES:
        emulator.state.faults.add("POST", path, action, count=1, delay_s=30)
    emulator.state.faults.add("POST", "/v1/*", action, count=None, delay_s=30, rate=0.2,
                              seed=seed)


def _check_published(emulator: EmulatorHandle, root: Path) -> None:
    held = holdings(emulator.state)
    assert (held.duplicate_assets, held.duplicate_functions) == (0, 0), held
    assert (held.duplicate_versions, held.duplicate_bytes) == (0, 0), held
    files = sum(1 for p in (root / "site").rglob("*") if p.is_file())
    # One Asset and one version per file, one Function and one version per function, and
    # the service manifest's Function and version (docs/sync.md), made once too.
    assert (held.assets, held.functions) == (files, 4 + 1), held
    assert held.versions == files + 4 + 1, held
    svc = api_get(emulator, f"/v1/Services/{SERVICE}")
    env = api_get(emulator, f"/v1/Services/{svc['sid']}/Environments")["environments"]
    assert len(env) == 1 and env[0]["build_sid"]
    assert served_mismatches(emulator.url, env[0]["domain_name"], root / "site") == []
    build = api_get(emulator, f"/v1/Services/{svc['sid']}/Builds/{env[0]['build_sid']}")
    for version in build["function_versions"]:
        if version["path"] == "/_assetsync/manifest":  # assetsync's own (docs/sync.md)
            continue
        code = api_get(emulator, f"/v1/Services/{svc['sid']}/Functions/"
                                 f"{version['function_sid']}/Versions/{version['sid']}/Content")
        assert code["content"] == (root / "functions" / f"{version['path'][1:]}.js").read_text()
    variables = api_get(emulator, f"/v1/Services/{svc['sid']}/Environments/{env[0]['sid']}/"
                                  "Variables")["variables"]
    assert sorted((v["key"], v["value"]) for v in variables) == [
        ("GREETING", "hello"), ("OTHER", "there"), ("THIRD", "3")]
    assert len(api_get(emulator, f"/v1/Services/{svc['sid']}/Environments/{env[0]['sid']}/"
                                 "Deployments")["deployments"]) == 1


def _lost(emulator: EmulatorHandle) -> set[str]:
    """The kinds of POST whose answer was lost (status 0 in the log), by their last segment."""
    return {e.path.rstrip("/").rsplit("/", 1)[-1] for e in emulator.state.request_log
            if e.method == "POST" and e.status == 0}


@pytest.mark.parametrize("mode", ["fin", "rst"])
def test_a_sync_losing_a_fifth_of_its_answers_publishes_everything_once(
    tmp_path: Path, emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], mode: str,
) -> None:
    root = tmp_path / "project"
    write_project(root, emulator.url, files=100, images=8, functions=4)
    enter_cli(root, emulator, monkeypatch)
    _arm(emulator, mode, seed=3)
    code = main(["sync"])
    _out, err = capsys.readouterr()
    assert code == 0, err
    assert {"Services", "Environments", "Assets", "Functions", "Versions", "Builds",
            "Deployments", "Variables"} <= _lost(emulator)
    _check_published(emulator, root)

    emulator.state.faults.clear()
    emulator.state.request_log.clear()
    assert main(["sync", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["uploaded"] == [] and emulator.state.request_log.writes == []


def test_a_sync_whose_answers_time_out_publishes_everything_once(
    tmp_path: Path, emulator: EmulatorHandle,
) -> None:
    root = tmp_path / "project"
    config = load(write_project(root, emulator.url, files=60, images=6, functions=4),
                  emulator.state)
    _arm(emulator, "timeout", seed=5)
    # A hung answer costs the client's whole timeout: long enough that no request the fault
    # spares looks lost on a loaded machine, short enough for six creates lost in a row.
    sync(config, client=lossy_client(config, timeout_s=1.5))  # raises on any failure
    assert {"Assets", "Versions", "Builds", "Deployments", "Variables"} <= _lost(emulator)
    _check_published(emulator, root)

    emulator.state.faults.clear()
    emulator.state.request_log.clear()
    again: Any = sync(config, client=lossy_client(config))
    assert again.noop and emulator.state.request_log.writes == []


def test_status_names_duplicates_another_tool_made_and_sync_repair_keeps_the_live_ones(
    tmp_path: Path, emulator: EmulatorHandle, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = tmp_path / "project"
    write_project(root, emulator.url, files=4, images=1, functions=2)
    enter_cli(root, emulator, monkeypatch)
    assert main(["sync"]) == 0
    svc = api_get(emulator, f"/v1/Services/{SERVICE}")
    before = {a["friendly_name"]: a["sid"]
              for a in api_get(emulator, f"/v1/Services/{svc['sid']}/Assets")["assets"]}
    with emulator.client() as http:  # what another deploy tool may do
        for family, name in (("Assets", "/index.html"), ("Assets", "/index.html"),
                             ("Functions", "/fn1")):
            made = http.post(f"/v1/Services/{svc['sid']}/{family}", data={"FriendlyName": name})
            made.raise_for_status()
        http.post(made.json()["links"]["function_versions"],
                  data={"Path": "/fn1", "Visibility": "public"},
                  files={"Content": ("fn1.js", b"exports.handler = () => {};", "text/plain")},
                  ).raise_for_status()
    capsys.readouterr()
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert (f"duplicates in {SERVICE}: 1 name(s) carried by several Assets: /index.html (3); "
            "1 name(s) carried by several Functions: /fn1 (2); run `assetsync sync --repair`"
            ) in out
    assert main(["status", "--json"]) == 0
    assert "/index.html (3)" in json.loads(capsys.readouterr().out)["duplicates"]

    assert main(["sync", "--repair"]) == 0
    assert "repaired: deleted 3 Asset(s)/Function(s)" in capsys.readouterr().err
    held = holdings(emulator.state)
    assert (held.duplicate_assets, held.duplicate_functions) == (0, 0)
    after = {a["friendly_name"]: a["sid"]
             for a in api_get(emulator, f"/v1/Services/{svc['sid']}/Assets")["assets"]}
    assert after == before  # the ones the live build uses were kept
    env = api_get(emulator, f"/v1/Services/{svc['sid']}/Environments")["environments"][0]
    assert served_mismatches(emulator.url, env["domain_name"], root / "site") == []
    assert main(["status"]) == 0
    assert "duplicates" not in capsys.readouterr().out


@pytest.mark.parametrize("whole", [True, False])
def test_crash_recovery_adopts_a_function_version_only_when_it_holds_the_intended_code(
    tmp_path: Path, emulator: EmulatorHandle, whole: bool,
) -> None:
    """A run killed after its upload was sent left an intent; the version the server then holds
    is adopted only if its code (the API gives a function's back) is the intended one."""
    code = b"exports.handler = (c, e, cb) => cb(null, 'complete');\n"
    with emulator.client() as http:
        svc = http.post("/v1/Services", data={"UniqueName": "rec", "FriendlyName": "r"}).json()
        env = http.post(f"{svc['url']}/Environments", data={"UniqueName": "dev"}).json()
        fn = http.post(f"{svc['url']}/Functions", data={"FriendlyName": "/fn"}).json()
    with State.open(tmp_path / "state") as state:
        ledger = StateLedger(state, "t", svc["sid"], env["sid"], kind="function")
        ledger.record_asset("/fn", fn["sid"])
        digest = "xxh3_128:" + xxhash.xxh3_128(code).hexdigest()
        ledger.record_intents([UploadIntent("/fn", digest, "public", len(code), fn["sid"],
                                            now_iso())])
        with emulator.client() as http:  # what reached the server: all of it, or not
            http.post(fn["links"]["function_versions"],
                      data={"Path": "/fn", "Visibility": "public"},
                      files={"Content": ("fn.js", code if whole else code[:20],
                                         "application/javascript")}).raise_for_status()

        async def recover() -> int:
            async with _client(emulator) as client:
                return await recover_uploads(client, ledger, FUNCTIONS)

        adopted = asyncio.run(recover())
        recorded = [v.digest for v in ledger.versions()]
    assert (adopted, recorded) == ((1, [digest]) if whole else (0, []))


def _client(emulator: EmulatorHandle) -> ServerlessClient:
    return ServerlessClient(
        api_base=f"{emulator.url}/v1", upload_base=f"{emulator.url}/v1",
        credentials=Credentials(emulator.account_sid, emulator.account_sid, emulator.auth_token),
        retry=RetryPolicy(base_delay_s=0.001, max_delay_s=0.005))


def test_only_an_answer_that_may_have_been_acted_on_is_looked_for(
    emulator: EmulatorHandle,
) -> None:
    """A 429 was never processed and a refused connection never sent: resent without a lookup.
    A lost answer is looked for once, and what it made adopted."""
    async def scenario() -> tuple[str, str]:
        async with _client(emulator) as client:
            svc = await client.create_service("look")
            emulator.state.request_log.clear()
            emulator.state.faults.add("POST", "/v1/Services/*/Assets", "429", count=2)
            first = await client.create_asset(svc.sid, "/a")
            emulator.state.faults.add("POST", "/v1/Services/*/Assets", "reset-after", count=1)
            second = await client.create_asset(svc.sid, "/b")
            return first.friendly_name, second.friendly_name

    assert asyncio.run(scenario()) == ("/a", "/b")
    log = [(e.method, e.path.rsplit("/", 2)[-2:], e.status) for e in emulator.state.request_log]
    assert [(m, s) for m, _p, s in log] == [("POST", 429), ("POST", 429), ("POST", 201),
                                             ("POST", 0), ("GET", 200), ("GET", 200)]
    assert [a["friendly_name"] for a in api_get(
        emulator, "/v1/Services/look/Assets")["assets"]] == ["/a", "/b"]


def test_a_delete_whose_answer_was_lost_is_done(emulator: EmulatorHandle) -> None:
    async def scenario() -> None:
        async with _client(emulator) as client:
            svc = await client.create_service("del")
            asset = await client.create_asset(svc.sid, "/gone")
            emulator.state.faults.add("DELETE", "/v1/Services/*/Assets/*", "drop-after", count=1)
            await client.delete_asset(svc.sid, asset.sid)  # the resend finds it gone: done

    asyncio.run(scenario())
    assert api_get(emulator, "/v1/Services/del/Assets")["assets"] == []
    assert [e.status for e in emulator.state.request_log if e.method == "DELETE"] == [0, 404]
