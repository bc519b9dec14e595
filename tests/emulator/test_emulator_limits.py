"""Every documented limit, made small through `state.limits`, answers with Twilio's error shape."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from assetsync import limits as documented
from assetsync.emulator.state import EmulatorLimits
from assetsync.frozen import replace
from tests.conftest import EmulatorHandle, publish, wait_for_build


def _limit(emulator: EmulatorHandle, **changes: Any) -> None:
    emulator.state.limits = replace(EmulatorLimits(), **changes)


def _error(response: httpx.Response, status: int, code: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code and body["status"] == status
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    return str(body["message"])


def _svc(client: httpx.Client, name: str = "demo") -> str:
    return str(
        client.post("/v1/Services", data={"UniqueName": name, "FriendlyName": name}).json()["sid"]
    )


def _versions(client: httpx.Client, svc: str, n: int, visibility: str = "public") -> list[str]:
    sids = []
    for i in range(n):
        asset = client.post(
            f"/v1/Services/{svc}/Assets", data={"FriendlyName": f"/{visibility}{i}"}
        ).json()
        version = client.post(
            asset["links"]["asset_versions"],
            data={"Path": f"/{visibility}{i}", "Visibility": visibility},
            files={"Content": ("f", b"x", "text/plain")},
        )
        sids.append(version.json()["sid"])
    return sids


def test_defaults_are_the_documented_limits() -> None:
    limits = EmulatorLimits()
    assert limits.services_per_account == documented.SERVICES_PER_ACCOUNT == 10
    assert limits.environments_per_service == 25
    assert (
        limits.function_versions_per_build,
        limits.public_protected_versions_per_build,
        limits.private_versions_per_build,
    ) == (50, 1000, 50)
    assert limits.builds_per_hour == 100
    assert (limits.max_public_bytes, limits.max_private_bytes) == (25_000_000, 10_000_000)
    assert limits.undeployed_build_retention_s == 24 * 3600
    assert limits.unreferenced_version_retention_s == 7 * 24 * 3600


def test_services_per_account(emulator: EmulatorHandle) -> None:
    _limit(emulator, services_per_account=2)
    with emulator.client() as client:
        _svc(client, "a"), _svc(client, "b")
        third = client.post("/v1/Services", data={"UniqueName": "c", "FriendlyName": "c"})
    assert "2 services" in _error(third, 400, 20001)


def test_environments_per_service(emulator: EmulatorHandle) -> None:
    _limit(emulator, environments_per_service=2)
    with emulator.client() as client:
        svc = _svc(client)
        for name in ("one", "two"):
            created = client.post(
                f"/v1/Services/{svc}/Environments", data={"UniqueName": name, "DomainSuffix": name}
            )
            assert created.status_code == 201
        dup = client.post(f"/v1/Services/{svc}/Environments", data={"UniqueName": "one"})
        same_domain = client.post(
            f"/v1/Services/{svc}/Environments", data={"UniqueName": "uno", "DomainSuffix": "one"}
        )
        third = client.post(
            f"/v1/Services/{svc}/Environments",
            data={"UniqueName": "three", "DomainSuffix": "three"},
        )
    assert "2 environments" in _error(third, 400, 20001)
    _error(dup, 409, 20409)
    _error(same_domain, 409, 20409)


@pytest.mark.parametrize(
    ("field", "visibility", "family"),
    [
        ("public_protected_versions_per_build", "public", "AssetVersions"),
        ("public_protected_versions_per_build", "protected", "AssetVersions"),
        ("private_versions_per_build", "private", "AssetVersions"),
        ("function_versions_per_build", "public", "FunctionVersions"),
    ],
)
def test_versions_per_build(
    emulator: EmulatorHandle, field: str, visibility: str, family: str
) -> None:
    _limit(emulator, **{field: 2})
    with emulator.client() as client:
        svc = _svc(client)
        if family == "AssetVersions":
            sids = _versions(client, svc, 3, visibility)
        else:
            sids = []
            for i in range(3):
                fn = client.post(
                    f"/v1/Services/{svc}/Functions", data={"FriendlyName": f"f{i}"}
                ).json()
                sids.append(
                    client.post(
                        fn["links"]["function_versions"],
                        data={"Path": f"/f{i}", "Visibility": "public"},
                        files={"Content": ("f.js", b"1", "application/javascript")},
                    ).json()["sid"]
                )
        at_limit = client.post(f"/v1/Services/{svc}/Builds", data={family: sids[:2]})
        over = client.post(f"/v1/Services/{svc}/Builds", data={family: sids})
    assert at_limit.status_code == 201
    assert "at most 2 per build" in _error(over, 400, 20001)


def test_private_and_public_limits_are_counted_apart(emulator: EmulatorHandle) -> None:
    _limit(emulator, public_protected_versions_per_build=2, private_versions_per_build=1)
    with emulator.client() as client:
        svc = _svc(client)
        sids = _versions(client, svc, 2, "public") + _versions(client, svc, 1, "private")
        build = client.post(f"/v1/Services/{svc}/Builds", data={"AssetVersions": sids})
    assert build.status_code == 201


def test_builds_per_rolling_hour(emulator: EmulatorHandle) -> None:
    _limit(emulator, builds_per_hour=2)
    with emulator.client() as client:
        svc = _svc(client)
        [sid] = _versions(client, svc, 1)
        made = [
            client.post(f"/v1/Services/{svc}/Builds", data={"AssetVersions": [sid]})
            for _ in range(2)
        ]
        third = client.post(f"/v1/Services/{svc}/Builds", data={"AssetVersions": [sid]})
        emulator.clock.advance(3601)
        later = client.post(f"/v1/Services/{svc}/Builds", data={"AssetVersions": [sid]})
    assert [r.status_code for r in made] == [201, 201]
    _error(third, 429, 20429)
    assert 1 <= int(third.headers["Retry-After"]) <= 3600
    assert later.status_code == 201


@pytest.mark.parametrize(
    ("visibility", "field"),
    [
        ("public", "max_public_bytes"),
        ("protected", "max_public_bytes"),
        ("private", "max_private_bytes"),
    ],
)
def test_upload_size_limits_answer_413(
    emulator: EmulatorHandle, visibility: str, field: str
) -> None:
    _limit(emulator, **{field: 1000})
    with emulator.client() as client:
        svc = _svc(client)
        asset = client.post(f"/v1/Services/{svc}/Assets", data={"FriendlyName": "/big"}).json()
        url = asset["links"]["asset_versions"]
        fits = client.post(
            url,
            data={"Path": "/big", "Visibility": visibility},
            files={"Content": ("big", b"x" * 1000, "application/octet-stream")},
        )
        over = client.post(
            url,
            data={"Path": "/big", "Visibility": visibility},
            files={"Content": ("big", b"x" * 1001, "application/octet-stream")},
        )
        listed = client.get(url).json()["asset_versions"]
    assert fits.status_code == 201
    assert "1000 bytes" in _error(over, 413, 20413)
    assert len(listed) == 1


def test_private_limit_is_stricter_than_public(emulator: EmulatorHandle) -> None:
    _limit(emulator, max_public_bytes=2000, max_private_bytes=1000)
    with emulator.client() as client:
        svc = _svc(client)
        asset = client.post(f"/v1/Services/{svc}/Assets", data={"FriendlyName": "/p"}).json()
        codes = [
            client.post(
                asset["links"]["asset_versions"],
                data={"Path": "/p", "Visibility": vis},
                files={"Content": ("p", b"x" * 1500, "application/octet-stream")},
            ).status_code
            for vis in ("public", "private")
        ]
    assert codes == [201, 413]


def test_undeployed_builds_are_deleted_after_24_hours(emulator: EmulatorHandle) -> None:
    with emulator.client() as client:
        done = publish(client, {"/a.txt": (b"a", "public")})
        svc = done["service"]["sid"]
        version = done["versions"]["/a.txt"]["sid"]
        spare = client.post(f"/v1/Services/{svc}/Builds", data={"AssetVersions": [version]}).json()
        wait_for_build(client, spare)
        emulator.clock.advance(23 * 3600)
        kept = client.get(spare["url"]).status_code
        emulator.clock.advance(3600 + 61)
        gone = client.get(spare["url"]).status_code
        live = client.get(done["build"]["url"]).status_code
    assert (kept, gone, live) == (200, 404, 200)


def test_versions_no_build_references_are_deleted_after_7_days(emulator: EmulatorHandle) -> None:
    with emulator.client() as client:
        done = publish(client, {"/kept.txt": (b"k", "public")})
        svc = done["service"]["sid"]
        [orphan] = _versions(client, svc, 1)
        orphan_url = client.get(f"/v1/Services/{svc}/Assets").json()["assets"][-1]["links"][
            "asset_versions"
        ]
        empty = client.post(f"/v1/Services/{svc}/Assets", data={"FriendlyName": "/never"}).json()
        emulator.clock.advance(6 * 24 * 3600)
        before = [v["sid"] for v in client.get(orphan_url).json()["asset_versions"]]
        emulator.clock.advance(24 * 3600 + 61)
        after = client.get(orphan_url)
        kept = client.get(done["versions"]["/kept.txt"]["url"]).status_code
        empty_after = client.get(empty["url"]).status_code
    assert before == [orphan]
    # The orphan's Asset had only that version, so the Asset went with it.
    assert after.status_code == 404
    assert kept == 200
    assert empty_after == 404
