"""Deployed functions on an environment's domain: run with Node when there is one (handler,
context, event, callback, Twilio.Response, the 10 s limit), or a 501 naming the function."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from assetsync.emulator.serve import start_in_thread
from assetsync.emulator.serving import twilio_signature
from assetsync.emulator.state import AdjustableClock, EmulatorState
from assetsync.frozen import replace
from tests.conftest import EmulatorHandle, publish, wait_for_build

needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node is not on PATH")

HELLO = """
exports.handler = function (context, event, callback) {
  callback(null, {
    domain: context.DOMAIN_NAME, path: context.PATH, service: context.SERVICE_SID,
    environment: context.ENVIRONMENT_SID, greeting: context.GREETING,
    name: event.Name || null, tags: event.Tag || null,
    agent: event.request.headers['user-agent'] || null,
    client: typeof context.getTwilioClient,
    leaked: process.env.TWILIO_AUTH_TOKEN || null,
  });
};
"""
TEXT = "exports.handler = (context, event, callback) => callback(null, 'plain ' + event.n);"
CUSTOM = """
exports.handler = (context, event, callback) => {
  const response = new Twilio.Response();
  response.setStatusCode(201);
  response.appendHeader('Content-Type', 'application/xml');
  response.appendHeader('X-Extra', 'one');
  response.setCookie('session', 'abc', ['Path=/']);
  response.setBody('<Response/>');
  callback(null, response);
};
"""
FAILS = "exports.handler = (c, e, callback) => callback(new Error('boom'));"
THROWS = "exports.handler = () => { throw new TypeError('thrown'); };"
NO_HANDLER = "exports.other = () => {};"
USES_LIB = """
exports.handler = (context, event, callback) => {
  const util = require(Runtime.getFunctions()['lib/util'].path);
  const secret = Runtime.getAssets()['/keys/secret.txt'].open();
  callback(null, util.shout('hi') + ' ' + secret.trim());
};
"""
UTIL = "exports.shout = (s) => s.toUpperCase();"
HANGS = "exports.handler = () => { setInterval(() => {}, 1000); };"
EXITS = "exports.handler = () => { console.log('bye'); process.exit(3); };"
CREDS = """
exports.handler = (context, event, callback) => {
  let client;
  try { context.getTwilioClient(); client = 'made'; } catch (err) { client = err.message; }
  callback(null, { account: context.ACCOUNT_SID || null, token: context.AUTH_TOKEN || null,
                   client, twiml: typeof Twilio.Response });
};
"""

FUNCTIONS = {
    "/hello": (HELLO, "public"),
    "/text": (TEXT, "public"),
    "/custom": (CUSTOM, "public"),
    "/fails": (FAILS, "public"),
    "/throws": (THROWS, "public"),
    "/no-handler": (NO_HANDLER, "public"),
    "/uses-lib": (USES_LIB, "public"),
    "/lib/util": (UTIL, "private"),
    "/admin/secret": (TEXT, "protected"),
    "/hangs": (HANGS, "public"),
    "/exits": (EXITS, "public"),
    "/creds": (CREDS, "public"),
}


def deploy(emulator: EmulatorHandle, *, include_credentials: bool = True,
           name: str = "fns") -> dict[str, Any]:
    """Functions, one private asset and one variable, deployed through the raw API."""
    with emulator.client() as client:
        svc = client.post("/v1/Services", data={
            "UniqueName": name, "FriendlyName": name,
            "IncludeCredentials": "true" if include_credentials else "false"}).json()
        env = client.post(
            f"{svc['url']}/Environments", data={"UniqueName": "dev", "DomainSuffix": "dev"}
        ).json()
        function_versions = []
        for path, (code, visibility) in FUNCTIONS.items():
            fn = client.post(f"{svc['url']}/Functions", data={"FriendlyName": path}).json()
            version = client.post(
                fn["links"]["function_versions"],
                data={"Path": path, "Visibility": visibility},
                files={"Content": (path.rsplit("/", 1)[-1] + ".js", code.encode(),
                                   "application/javascript")},
            )
            version.raise_for_status()
            function_versions.append(version.json()["sid"])
        asset = client.post(f"{svc['url']}/Assets", data={"FriendlyName": "secret"}).json()
        asset_version = client.post(
            asset["links"]["asset_versions"],
            data={"Path": "/keys/secret.txt", "Visibility": "private"},
            files={"Content": ("secret.txt", b"private words\n", "text/plain")},
        ).json()
        client.post(env["links"]["variables"], data={"Key": "GREETING", "Value": "ahoy"})
        build = client.post(
            f"{svc['url']}/Builds",
            data={"FunctionVersions": function_versions, "AssetVersions": [asset_version["sid"]]},
        ).json()
        assert wait_for_build(client, build) == "completed"
        client.post(env["links"]["deployments"], data={"BuildSid": build["sid"]}).raise_for_status()
    return {"service": svc, "environment": env}


@pytest.fixture
def site(emulator: EmulatorHandle) -> dict[str, Any]:
    return deploy(emulator)


def call(emulator: EmulatorHandle, site: dict[str, Any], path: str, **kw: Any) -> httpx.Response:
    domain = site["environment"]["domain_name"]
    headers = {"Host": domain, **kw.pop("headers", {})}
    return httpx.request(kw.pop("method", "GET"), f"{emulator.url}{path}", headers=headers,
                         timeout=30, **kw)


@needs_node
def test_a_function_gets_context_and_event_and_answers_json(
    emulator: EmulatorHandle, site: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "from-the-emulators-environment")
    got = call(emulator, site, "/hello", params={"Name": "Ada", "Tag": ["a", "b"]},
               headers={"User-Agent": "probe/1"})
    assert got.status_code == 200
    assert got.headers["content-type"].startswith("application/json")
    env = site["environment"]
    assert got.json() == {
        "domain": env["domain_name"], "path": "/hello", "service": site["service"]["sid"],
        "environment": env["sid"], "greeting": "ahoy", "name": "Ada", "tags": ["a", "b"],
        "agent": "probe/1", "client": "function", "leaked": None,
    }
    posted = call(emulator, site, "/hello", method="POST", data={"Name": "Grace"})
    assert posted.status_code == 200 and posted.json()["name"] == "Grace"


@needs_node
def test_replies_as_the_toolkit_runtime_sends_them(
    emulator: EmulatorHandle, site: dict[str, Any]
) -> None:
    text = call(emulator, site, "/text", params={"n": "7"})
    assert (text.status_code, text.text) == (200, "plain 7")
    assert text.headers["content-type"].startswith("text/plain")
    custom = call(emulator, site, "/custom")
    assert (custom.status_code, custom.text) == (201, "<Response/>")
    assert custom.headers["content-type"] == "application/xml"
    assert custom.headers["x-extra"] == "one"
    assert custom.headers["set-cookie"] == "session=abc;Path=/"
    fails = call(emulator, site, "/fails")
    assert fails.status_code == 500 and fails.json()["message"] == "boom"
    throws = call(emulator, site, "/throws")
    assert throws.status_code == 500 and throws.json()["name"] == "TypeError"
    missing = call(emulator, site, "/no-handler")
    assert missing.status_code == 500 and "handler" in missing.json()["message"]
    exits = call(emulator, site, "/exits")
    assert exits.status_code == 500
    assert "/exits ended without replying" in exits.json()["message"]


@needs_node
def test_private_code_and_assets_are_reachable_from_code_only(
    emulator: EmulatorHandle, site: dict[str, Any]
) -> None:
    assert call(emulator, site, "/lib/util").status_code == 404
    used = call(emulator, site, "/uses-lib")
    assert (used.status_code, used.text) == (200, "HI private words")


@needs_node
def test_protected_function_needs_a_signature_over_url_and_post_params(
    emulator: EmulatorHandle, site: dict[str, Any]
) -> None:
    url = f"https://{site['environment']['domain_name']}/admin/secret"
    params = {"n": "9", "From": "+15550100"}
    good = twilio_signature(emulator.auth_token, url, params)
    unsigned = call(emulator, site, "/admin/secret", method="POST", data=params)
    tampered = call(emulator, site, "/admin/secret", method="POST", data={**params, "n": "8"},
                    headers={"X-Twilio-Signature": good})
    signed = call(emulator, site, "/admin/secret", method="POST", data=params,
                  headers={"X-Twilio-Signature": good})
    assert (unsigned.status_code, tampered.status_code) == (403, 403)
    assert (signed.status_code, signed.text) == (200, "plain 9")


@needs_node
def test_a_function_past_the_execution_limit_is_ended(
    emulator: EmulatorHandle, site: dict[str, Any]
) -> None:
    emulator.state.limits = replace(emulator.state.limits, function_execution_s=0.5)
    got = call(emulator, site, "/hangs")
    assert got.status_code == 504
    assert "timed out" in got.text and "/hangs" in got.text


@needs_node
def test_credentials_reach_context_only_when_the_service_includes_them(
    emulator: EmulatorHandle, site: dict[str, Any]
) -> None:
    got = call(emulator, site, "/creds").json()
    assert (got["account"], got["token"]) == (emulator.account_sid, emulator.auth_token)
    # No twilio package in this emulator's data folder: the client cannot be made, and says
    # how to get it; Twilio.Response is the runtime's own and needs no package.
    assert "npm install twilio" in got["client"] and got["twiml"] == "function"
    bare = deploy(emulator, include_credentials=False, name="bare")
    got = call(emulator, bare, "/creds").json()
    assert (got["account"], got["token"]) == (None, None)


def test_without_node_a_function_answers_501_naming_it(
    emulator: EmulatorHandle, site: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSETSYNC_EMULATOR_NODE", "0")
    got = call(emulator, site, "/hello")
    assert got.status_code == 501
    assert "/hello" in got.text and "node" in got.text
    # Visibility still comes first: a private function stays hidden, a protected one signed.
    assert call(emulator, site, "/lib/util").status_code == 404
    assert call(emulator, site, "/admin/secret").status_code == 403


def test_a_missing_node_executable_counts_as_no_node(
    emulator: EmulatorHandle, site: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSETSYNC_EMULATOR_NODE", "/nonexistent/node")
    got = call(emulator, site, "/text")
    assert got.status_code == 501 and "/text" in got.text



def test_the_root_falls_back_to_assets_index_html(emulator: EmulatorHandle) -> None:
    # twilio-run's runtime/server.js: production serves /assets/index.html for "/".
    with emulator.client() as client:
        done = publish(client, {"/assets/index.html": (b"<h1>home</h1>", "public")})
    root = httpx.get(f"{emulator.url}/", headers={"Host": done["environment"]["domain_name"]})
    assert (root.status_code, root.content) == (200, b"<h1>home</h1>")
    assert root.headers["content-type"].startswith("text/html")
    with emulator.client() as client:
        other = publish(client, {"/index.html": (b"x", "public")}, service="plain")
    bare = httpx.get(f"{emulator.url}/", headers={"Host": other["environment"]["domain_name"]})
    assert bare.status_code == 404


@needs_node
def test_functions_run_from_an_emulator_data_folder_named_relatively(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`assetsync emulator --data .assetsync/emulator`: Node gets the code's absolute path."""
    monkeypatch.chdir(tmp_path)
    clock = AdjustableClock()
    state = EmulatorState(Path(".assetsync/emulator"), clock=clock)
    running = start_in_thread(state)
    try:
        handle = EmulatorHandle(running.url, state, clock)
        site = deploy(handle)
        monkeypatch.chdir(tmp_path.parent)  # the server's working folder may change, too
        assert call(handle, site, "/text", params={"n": "1"}).text == "plain 1"
        assert call(handle, site, "/uses-lib").text == "HI private words"
    finally:
        running.stop()
        state.close()
