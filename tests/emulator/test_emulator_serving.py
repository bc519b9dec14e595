"""What is deployed is served by environment domain: public to anyone, protected only with a
valid X-Twilio-Signature, private never."""

from __future__ import annotations

import base64
import hashlib
import hmac

import httpx
import pytest

from tests.conftest import EmulatorHandle, publish

FILES = {
    "/img/logo.png": (b"\x89PNG public", "public"),
    "/docs/guide.pdf": (b"%PDF protected", "protected"),
    "/keys/secret.json": (b'{"private": true}', "private"),
}


def _sign(token: str, url: str) -> str:
    # Twilio's webhook signature: base64(HMAC-SHA1(auth token, URL)) for a GET (no POST params).
    return base64.b64encode(hmac.new(token.encode(), url.encode(), hashlib.sha1).digest()).decode()


@pytest.fixture
def site(emulator: EmulatorHandle) -> str:
    with emulator.client() as client:
        done = publish(client, FILES)
    return str(done["environment"]["domain_name"])


def _get(emulator: EmulatorHandle, domain: str, path: str, **headers: str) -> httpx.Response:
    return httpx.get(f"{emulator.url}{path}", headers={"Host": domain, **headers})


def test_public_asset_is_served_to_anyone_with_its_content_type(
    emulator: EmulatorHandle, site: str
) -> None:
    response = _get(emulator, site, "/img/logo.png")
    assert response.status_code == 200
    assert response.content == b"\x89PNG public"
    assert response.headers["content-type"] == "image/png"
    head = httpx.head(f"{emulator.url}/img/logo.png", headers={"Host": site})
    assert head.status_code == 200 and head.content == b""


def test_protected_asset_needs_a_valid_signature(emulator: EmulatorHandle, site: str) -> None:
    local_url = f"{emulator.url}/_serve/{site}/docs/guide.pdf"
    public_url = f"https://{site}/docs/guide.pdf"
    unsigned = _get(emulator, site, "/docs/guide.pdf")
    forged = _get(
        emulator, site, "/docs/guide.pdf", **{"X-Twilio-Signature": _sign("wrong", public_url)}
    )
    other_path = _get(
        emulator,
        site,
        "/docs/guide.pdf",
        **{"X-Twilio-Signature": _sign(emulator.auth_token, f"https://{site}/other")},
    )
    signed = _get(
        emulator,
        site,
        "/docs/guide.pdf",
        **{"X-Twilio-Signature": _sign(emulator.auth_token, public_url)},
    )
    signed_local = httpx.get(
        local_url, headers={"X-Twilio-Signature": _sign(emulator.auth_token, local_url)}
    )
    assert [r.status_code for r in (unsigned, forged, other_path)] == [403, 403, 403]
    assert signed.status_code == 200 and signed.content == b"%PDF protected"
    assert signed_local.status_code == 200


def test_private_asset_is_never_served(emulator: EmulatorHandle, site: str) -> None:
    url = f"https://{site}/keys/secret.json"
    plain = _get(emulator, site, "/keys/secret.json")
    signed = _get(
        emulator,
        site,
        "/keys/secret.json",
        **{"X-Twilio-Signature": _sign(emulator.auth_token, url)},
    )
    assert plain.status_code == 404 and signed.status_code == 404
    assert b"private" not in plain.content + signed.content


def test_unknown_path_and_unknown_domain(emulator: EmulatorHandle, site: str) -> None:
    assert _get(emulator, site, "/nope.png").status_code == 404
    # A *.twil.io host that is no environment's domain is still a runtime request: 404.
    assert _get(emulator, "elsewhere-1234.twil.io", "/img/logo.png").status_code == 404


def test_browser_path_prefix_serves_the_same(emulator: EmulatorHandle, site: str) -> None:
    response = httpx.get(f"{emulator.url}/_serve/{site}/img/logo.png")
    assert response.status_code == 200 and response.content == b"\x89PNG public"
    assert httpx.get(f"{emulator.url}/_serve/{site}/keys/secret.json").status_code == 404
    assert httpx.get(f"{emulator.url}/_serve/{site}/docs/guide.pdf").status_code == 403
    assert httpx.get(f"{emulator.url}/_serve/nowhere-1234.twil.io/img/logo.png").status_code == 404


def test_serving_follows_the_deployment_and_is_logged(emulator: EmulatorHandle, site: str) -> None:
    emulator.state.request_log.clear()
    _get(emulator, site, "/img/logo.png")
    [entry] = emulator.state.request_log
    assert (entry.kind, entry.method, entry.path, entry.status) == (
        "serve",
        "GET",
        "/img/logo.png",
        200,
    )


def test_nothing_is_served_before_a_deployment(emulator: EmulatorHandle) -> None:
    with emulator.client() as client:
        svc = client.post("/v1/Services", data={"UniqueName": "empty", "FriendlyName": "e"}).json()
        env = client.post(
            f"{svc['url']}/Environments", data={"UniqueName": "dev", "DomainSuffix": "dev"}
        ).json()
    assert _get(emulator, env["domain_name"], "/index.html").status_code == 404
