"""The emulator's memories and fast paths answer exactly as the plain ones did.

Version records are remembered between requests, embedded version JSON is joined from remembered
pieces, escape-free forms skip parse_qsl and a build's SIDs are checked in one regex pass: each
test here would fail if one of them served something stale or different.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.responses import JSONResponse

from assetsync.emulator import LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN
from assetsync.emulator.builds import _all_version_sids
from assetsync.emulator.render import render, render_build_json
from assetsync.emulator.routes import _parse_form
from assetsync.emulator.serve import start_in_thread
from assetsync.emulator.state import SID_PATTERN, AdjustableClock, EmulatorState
from assetsync.emulator.storage import Store
from tests.conftest import EmulatorHandle, publish

AUTH = (LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN)
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[httpx.Client, EmulatorState]]:
    """An emulator on its own data folder (so a second Store can share it), builds instant."""
    state = EmulatorState(tmp_path / "emu", build_delay_s=0)
    running = start_in_thread(state)
    try:
        with httpx.Client(base_url=running.url, auth=AUTH) as client:
            yield client, state
    finally:
        running.stop()
        state.close()


def _build(client: httpx.Client, svc: str, sids: list[str]) -> dict[str, Any]:
    response = client.post(
        f"/v1/Services/{svc}/Builds",
        content="&".join(f"AssetVersions={s}" for s in sids),
        headers=FORM,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    body["status"] = client.get(body["links"]["build_status"]).json()["status"]
    return body


def _version(
    client: httpx.Client, svc: str, family: str, path: str, visibility: str
) -> dict[str, Any]:
    """A new Asset or Function (`family`) with one version at `path`; the version's body."""
    owner = client.post(f"/v1/Services/{svc}/{family}", data={"FriendlyName": path}).json()
    response = client.post(
        f"{owner['url']}/Versions",
        data={"Path": path, "Visibility": visibility},
        files={"Content": ("f.js", b"exports.handler = () => {}", "application/javascript")},
    )
    assert response.status_code == 201, response.text
    version: dict[str, Any] = response.json()
    return version


def test_a_version_another_store_deletes_fails_the_next_build(
    served: tuple[httpx.Client, EmulatorState], tmp_path: Path
) -> None:
    client, _ = served
    done = publish(client, {"/a.txt": (b"a", "public"), "/b.txt": (b"b", "public")})
    svc = done["service"]["sid"]
    a, b = (done["versions"][p]["sid"] for p in ("/a.txt", "/b.txt"))
    assert _build(client, svc, [a, b])["status"] == "completed"  # both remembered now
    other = Store(tmp_path / "emu")  # another process's connection to the same folder
    other.delete([b])
    other.close()
    after = _build(client, svc, [a, b])
    assert after["status"] == "failed"
    assert [v["sid"] for v in after["asset_versions"]] == [a]


def test_a_version_deleted_by_retention_in_the_same_process_fails_the_next_build(
    emulator: EmulatorHandle,
) -> None:
    with emulator.client() as client:
        done = publish(client, {"/kept.txt": (b"k", "public")})
        svc = done["service"]["sid"]
        orphan = _version(client, svc, "Assets", "/o", "public")["sid"]
        emulator.clock.advance(7 * 24 * 3600 + 61)  # the orphan is swept; the deployed one stays
        response = client.post(f"/v1/Services/{svc}/Builds", data={"AssetVersions": [orphan]})
        emulator.clock.advance(1)
        status = client.get(response.json()["links"]["build_status"]).json()["status"]
    assert response.status_code == 201 and status == "failed"
    assert response.json()["asset_versions"] == []


def test_the_store_remembers_only_what_is_committed_and_still_there(tmp_path: Path) -> None:
    store, other = Store(tmp_path), Store(tmp_path)
    data = {"service_sid": "ZS1", "asset_sid": "ZH1", "path": "/p", "visibility": "public"}
    kept = store.insert("ZN1", "asset_version", "ZH1", 1.0, data)
    assert store.get_many(["ZN1"])["ZN1"] is kept  # remembered: the same record, no read
    with pytest.raises(RuntimeError), store.transaction():
        store.insert("ZN2", "asset_version", "ZH1", 1.0, data)
        raise RuntimeError("roll back")
    assert store.get_many(["ZN2"]) == {}
    other.insert("ZN3", "asset_version", "ZH1", 1.0, data)
    other.delete(["ZN1"])
    assert set(store.get_many(["ZN1", "ZN3"])) == {"ZN3"}
    store.delete(["ZN3"])
    assert store.get_many(["ZN3"]) == {} and other.get_many(["ZN3"]) == {}
    store.close()
    other.close()


def test_unreferenced_reads_builds_until_every_version_is_found(tmp_path: Path) -> None:
    store = Store(tmp_path)
    for sid, assets, functions in (
        ("ZB1", ["ZNold", "ZNboth"], ["ZNfn"]),
        ("ZB2", ["ZNboth"], []),
        ("ZB3", ["ZNnew"], []),
    ):
        build = {"asset_versions": assets, "function_versions": functions}
        store.insert(sid, "build", "ZS1", 1.0, build)
    asked = ["ZNold", "ZNboth", "ZNfn", "ZNnew", "ZNnone"]
    assert store.unreferenced(asked) == {"ZNnone"}
    assert store.unreferenced(["ZNnew"]) == set() and store.unreferenced([]) == set()
    store.delete(["ZB1"])
    assert store.unreferenced(asked) == {"ZNold", "ZNfn", "ZNnone"}
    store.close()


def test_a_reused_sid_embeds_the_new_version_not_the_remembered_one(tmp_path: Path) -> None:
    # An injected SID factory restarts after reset(), so one SID can name two versions in turn.
    counter = iter(range(1, 10_000))
    state = EmulatorState(
        tmp_path,
        clock=AdjustableClock(),
        build_delay_s=0,
        sid_factory=lambda prefix: f"{prefix}{next(counter):032x}",
    )
    running = start_in_thread(state)
    try:
        with httpx.Client(base_url=running.url, auth=AUTH) as client:
            first = publish(client, {"/old.txt": (b"1", "public")})
            state.reset()
            counter = iter(range(1, 10_000))
            second = publish(client, {"/new.txt": (b"2", "protected")})
            embedded = client.get(second["build"]["url"]).json()["asset_versions"]
    finally:
        running.stop()
        state.close()
    assert first["build"]["sid"] == second["build"]["sid"]
    assert [(v["path"], v["visibility"]) for v in embedded] == [("/new.txt", "PROTECTED")]


def test_build_bodies_are_the_bytes_jsonresponse_would_send(
    served: tuple[httpx.Client, EmulatorState],
) -> None:
    client, state = served
    paths = ['/a "quoted".txt', "/back\\slash", "/é/ü/日本.txt", "/</script>&=%+.js", "/plain"]
    paths += ["/tab\there\u2028\x7f.txt", "/emoji-\U0001f600.svg"]
    done = publish(client, {p: (p.encode(), "public") for p in paths})
    svc = done["service"]["sid"]
    fv = _version(client, svc, "Functions", "/f", "protected")
    sids = [done["versions"][p]["sid"] for p in paths]
    created = client.post(
        f"/v1/Services/{svc}/Builds",
        data={
            "AssetVersions": sids,
            "FunctionVersions": [fv["sid"]],
            "Dependencies": '[{"name": "é", "version": "1"}]',
        },
    )
    fetched = client.get(created.json()["url"])
    assert created.status_code == 201 and fetched.status_code == 200
    for response in (created, fetched, client.get(done["build"]["url"])):
        assert response.headers["content-type"] == "application/json"
        assert response.content == JSONResponse(response.json()).body
    rec = state.store.get(created.json()["sid"], "build")
    assert rec is not None
    base = str(client.base_url).rstrip("/")
    assert render_build_json(state, rec, base) == JSONResponse(render(state, rec, base)).body
    [embedded_fn] = json.loads(render_build_json(state, rec, base))["function_versions"]
    assert embedded_fn["sid"] == fv["sid"]


FORM_TEXT = st.text(alphabet="ab=&%+;2Fé \x00C3A9", max_size=60)


@given(FORM_TEXT)
def test_form_parse_is_parse_qsl(text: str) -> None:
    assert _parse_form(text) == parse_qsl(text, keep_blank_values=True)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "&&",
        "a",
        "a=",
        "=b",
        "a=b=c&&d",
        "AssetVersions=ZN1&AssetVersions=ZN2",
        "é=ü;x=1",
        "a%20b=c+d",
        "k=%C3%A9&k=%zz",
    ],
)
def test_form_parse_edge_cases_match_parse_qsl(text: str) -> None:
    assert _parse_form(text) == parse_qsl(text, keep_blank_values=True)


SIDS = st.lists(
    st.one_of(
        st.text(alphabet="0123456789abcdefABCDEFZNGx\n", min_size=30, max_size=36).map(
            lambda t: "ZN" + t
        ),
        st.text(alphabet="0123456789abcdef", min_size=32, max_size=32).map(lambda t: "ZN" + t),
    ),
    max_size=6,
)


@given(SIDS)
def test_the_one_pass_sid_check_accepts_only_what_the_per_sid_check_does(sids: list[str]) -> None:
    per_sid = all(SID_PATTERN.match(s) and s.startswith("ZN") for s in sids)
    if _all_version_sids(sids):
        assert per_sid
    if per_sid and all(len(s) == 34 for s in sids):
        assert _all_version_sids(sids)  # the fast path is the one taken for real SIDs


def test_a_function_version_a_build_names_outlives_retention(emulator: EmulatorHandle) -> None:
    with emulator.client() as client:
        done = publish(client, {"/kept.txt": (b"k", "public")})
        svc = done["service"]["sid"]
        fv = _version(client, svc, "Functions", "/f", "public")
        build = client.post(
            f"/v1/Services/{svc}/Builds",
            data={
                "AssetVersions": [done["versions"]["/kept.txt"]["sid"]],
                "FunctionVersions": [fv["sid"]],
            },
        ).json()
        emulator.clock.advance(1)
        client.post(done["environment"]["links"]["deployments"], data={"BuildSid": build["sid"]})
        emulator.clock.advance(7 * 24 * 3600 + 61)
        kept = client.get(fv["url"]).status_code
    assert kept == 200
