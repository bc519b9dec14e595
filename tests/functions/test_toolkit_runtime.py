"""Serverless Toolkit functions written as Twilio's templates write them (`Twilio.twiml`,
`Twilio.Response`, `Runtime.getAssets()`, `Runtime.getFunctions()`, `context`,
`context.getTwilioClient()`), synced to the emulator and called over HTTP, with the project's
own `twilio` package installed by npm (once per machine, into a cache folder)."""

from __future__ import annotations

import fcntl
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest
from PIL import Image

from assetsync.config import load_config
from assetsync.results import SyncResult
from assetsync.sync.run import sync
from tests.conftest import EmulatorHandle
from tests.sync_harness import load

needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node is not on PATH")

VOICE = """
exports.handler = function (context, event, callback) {
  const menu = JSON.parse(Runtime.getAssets()['/menu.json'].open());
  const twiml = new Twilio.twiml.VoiceResponse();
  const gather = twiml.gather({ numDigits: 1, action: '/choose' });
  gather.say(menu.greeting);
  gather.play(`https://${context.DOMAIN_NAME}${menu.prompt}`);
  callback(null, twiml);
};
"""
SMS = """
exports.handler = (context, event, callback) => {
  const twiml = new Twilio.twiml.MessagingResponse();
  const message = twiml.message();
  message.body(`You said: ${event.Body}`);
  message.media(`https://${context.DOMAIN_NAME}/logo.png`);
  callback(null, twiml);
};
"""
HELPER = "module.exports = { greet: (name) => `Hello, ${name}!` };\n"
GREET = """
const { greet } = require(Runtime.getFunctions()['helper'].path);
exports.handler = (context, event, callback) => {
  const response = new Twilio.Response();
  response.setStatusCode(202);
  response.setHeaders({ 'Content-Type': 'application/json' });
  response.appendHeader('X-Greeted', event.name);
  response.setBody({ text: greet(event.name) });
  callback(null, response);
};
"""
SETTINGS = """
exports.handler = (context, event, callback) => {
  callback(null, {
    greeting: context.GREETING, domain: context.DOMAIN_NAME, path: context.PATH,
    service: context.SERVICE_SID, environment: context.ENVIRONMENT_SID,
    secret: Runtime.getAssets()['/secret.txt'].open().trim(),
  });
};
"""
CLIENT = """
exports.handler = async (context, event, callback) => {
  const client = context.getTwilioClient();
  const services = await client.serverless.v1.services.list();
  const variables = await client.serverless.v1.services(context.SERVICE_SID)
    .environments(context.ENVIRONMENT_SID).variables.list();
  let sms;
  try {
    await client.messages.create({ to: '+15550100', from: '+15550101', body: 'hi' });
    sms = 'sent';
  } catch (err) {
    sms = err.message;
  }
  callback(null, {
    services: services.map((s) => s.uniqueName),
    variables: variables.map((v) => v.key),
    sms,
  });
};
"""
FUNCTIONS = {
    "voice.js": VOICE,
    "sms.js": SMS,
    "helper.private.js": HELPER,
    "greet.js": GREET,
    "settings.js": SETTINGS,
    "client.js": CLIENT,
}


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "assetsync-tests" / "twilio5"


def _install_twilio(cache: Path) -> Path:
    """`npm install twilio@5` into `cache` once (a lock keeps parallel workers to one install);
    returns its node_modules."""
    modules = cache / "node_modules"
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (modules / "twilio" / "package.json").is_file():
            return modules
        work = Path(tempfile.mkdtemp(prefix="install-", dir=cache))
        try:
            (work / "package.json").write_text('{"private": true}\n', encoding="utf-8")
            done = subprocess.run(
                ["npm", "install", "--no-audit", "--no-fund", "--no-save", "twilio@5"],
                cwd=work, capture_output=True, text=True, timeout=600, check=False)
            if done.returncode != 0:
                tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
                pytest.fail(f"npm install twilio@5 failed in {work}: {tail}")
            os.replace(work / "node_modules", modules)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return modules


@pytest.fixture(scope="session")
def twilio_node_modules() -> Path:
    """A node_modules holding the `twilio` npm package (v5), installed once into a cache."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed to install the twilio package (not on PATH)")
    return _install_twilio(_cache_root())


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


def _toolkit_project(root: Path) -> None:
    """A Toolkit project: functions, public prompt and logo, private menu and secret."""
    for name, code in FUNCTIONS.items():
        path = root / "functions" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(code, encoding="utf-8")
    site = root / "site"
    site.mkdir(parents=True, exist_ok=True)
    (site / "prompt.mp3").write_bytes(b"ID3\x03\x00\x00\x00\x00\x00\x00" + b"\xff\xfb" * 64)
    (site / "logo.png").write_bytes(_png())
    (site / "menu.private.json").write_text(json.dumps(
        {"greeting": "Press 1 for sales.", "prompt": "/prompt.mp3"}), encoding="utf-8")
    (site / "secret.private.txt").write_text("the private words\n", encoding="utf-8")
    (root / "package.json").write_text(json.dumps({"dependencies": {"twilio": "^5"}}),
                                       encoding="utf-8")
    (root / ".env").write_text("GREETING=ahoy\n", encoding="utf-8")


@pytest.fixture
def project(tmp_path: Path, emulator: EmulatorHandle) -> Iterator[Path]:
    """A Toolkit project the emulator runs functions for (its project folder)."""
    root = tmp_path / "ivr"
    _toolkit_project(root)
    emulator.state.project_dir = root
    yield root
    emulator.state.project_dir = None


def _sync(root: Path, emulator: EmulatorHandle) -> SyncResult:
    return sync(load(root, emulator))


def _call(emulator: EmulatorHandle, result: SyncResult, path: str, **kw: Any) -> httpx.Response:
    domain = result.domain_name
    assert domain
    return httpx.request(kw.pop("method", "GET"), f"{emulator.url}{path}",
                         headers={"Host": domain}, timeout=30, **kw)


def _installed(root: Path, modules: Path) -> None:
    (root / "node_modules").symlink_to(modules, target_is_directory=True)


@needs_node
def test_a_voice_ivr_answers_twiml_with_say_and_play_of_an_asset(
        emulator: EmulatorHandle, project: Path, twilio_node_modules: Path) -> None:
    _installed(project, twilio_node_modules)
    result = _sync(project, emulator)
    assert not [w for w in result.warnings if "twilio" in w]
    got = _call(emulator, result, "/voice", method="POST", data={"From": "+15550100"})
    assert got.status_code == 200, got.text
    assert got.headers["content-type"].startswith("text/xml")
    gather = ElementTree.fromstring(got.text).find("Gather")
    assert gather is not None and gather.get("action") == "/choose"
    assert gather.findtext("Say") == "Press 1 for sales."
    prompt = f"https://{result.domain_name}/prompt.mp3"
    assert gather.findtext("Play") == prompt
    # The URL the TwiML plays is served by the emulator, byte for byte.
    played = httpx.get(f"{emulator.url}/prompt.mp3", headers={"Host": result.domain_name})
    assert played.content == (project / "site" / "prompt.mp3").read_bytes()


@needs_node
def test_a_messaging_reply_carries_body_and_media(
        emulator: EmulatorHandle, project: Path, twilio_node_modules: Path) -> None:
    _installed(project, twilio_node_modules)
    result = _sync(project, emulator)
    got = _call(emulator, result, "/sms", method="POST", data={"Body": "menu"})
    assert got.status_code == 200, got.text
    assert got.headers["content-type"].startswith("text/xml")
    message = ElementTree.fromstring(got.text).find("Message")
    assert message is not None
    assert message.findtext("Body") == "You said: menu"
    assert message.findtext("Media") == f"https://{result.domain_name}/logo.png"
    logo = httpx.get(f"{emulator.url}/logo.png", headers={"Host": result.domain_name})
    assert logo.status_code == 200 and logo.headers["content-type"] == "image/png"


@needs_node
def test_a_private_helper_is_required_through_get_functions(
        emulator: EmulatorHandle, project: Path, twilio_node_modules: Path) -> None:
    _installed(project, twilio_node_modules)
    result = _sync(project, emulator)
    got = _call(emulator, result, "/greet", params={"name": "Ada"})
    assert got.status_code == 202, got.text
    assert got.json() == {"text": "Hello, Ada!"}
    assert got.headers["x-greeted"] == "Ada"
    assert _call(emulator, result, "/helper").status_code == 404  # private: code only


@needs_node
def test_context_variables_and_a_private_asset_read_with_open(
        emulator: EmulatorHandle, project: Path, twilio_node_modules: Path) -> None:
    _installed(project, twilio_node_modules)
    result = _sync(project, emulator)
    got = _call(emulator, result, "/settings")
    assert got.status_code == 200, got.text
    assert got.json() == {
        "greeting": "ahoy", "domain": result.domain_name, "path": "/settings",
        "service": result.service_sid, "environment": result.environment_sid,
        "secret": "the private words",
    }
    assert _call(emulator, result, "/secret.txt").status_code == 404


@needs_node
def test_get_twilio_client_reaches_the_emulator_and_refuses_other_apis(
        emulator: EmulatorHandle, project: Path, twilio_node_modules: Path) -> None:
    _installed(project, twilio_node_modules)
    result = _sync(project, emulator)
    before = len(emulator.state.request_log)
    got = _call(emulator, result, "/client")
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["services"] == ["site"]
    assert body["variables"] == ["GREETING"]
    assert "api.twilio.com/2010-04-01/Accounts" in body["sms"]
    assert "not emulated" in body["sms"]
    # The client's two Serverless reads came to this emulator with the account's credentials.
    reads = [e for e in list(emulator.state.request_log)[before:]
             if e.kind == "api" and e.method == "GET" and e.status == 200]
    assert len(reads) == 2


@needs_node
def test_without_npm_install_a_function_answers_one_line_saying_so(
        emulator: EmulatorHandle, project: Path) -> None:
    result = _sync(project, emulator)
    got = _call(emulator, result, "/voice", method="POST")
    assert got.status_code == 500
    assert got.headers["content-type"].startswith("text/plain")
    line = got.text.strip()
    assert "\n" not in line
    assert "npm install" in line and str(project) in line and "/voice" in line
    # Twilio.Response is the runtime's own: it works without the package.
    assert _call(emulator, result, "/greet", params={"name": "Bo"}).status_code == 202


def test_sync_warns_once_when_functions_need_twilio_and_it_is_not_installed(
        emulator: EmulatorHandle, tmp_path: Path) -> None:
    root = tmp_path / "ivr"
    _toolkit_project(root)
    result = _sync(root, emulator)
    about = [w for w in result.warnings if "twilio package" in w]
    assert len(about) == 1
    assert "npm install" in about[0] and str(root) in about[0]
    assert "functions/client.js and 2 more" in about[0]
    # Installed (any node_modules/twilio the project resolves): no warning.
    (root / "node_modules" / "twilio").mkdir(parents=True)
    (root / "functions" / "voice.js").write_text(VOICE + "\n// edited\n", encoding="utf-8")
    again = _sync(root, emulator)
    assert not [w for w in again.warnings if "twilio package" in w]


def test_functions_without_the_package_do_not_warn(
        emulator: EmulatorHandle, tmp_path: Path) -> None:
    root = tmp_path / "plain"
    (root / "functions").mkdir(parents=True)
    (root / "functions" / "hello.js").write_text(
        "exports.handler = (c, e, cb) => cb(null, new Twilio.Response());\n", encoding="utf-8")
    result = _sync(root, emulator)
    assert not [w for w in result.warnings if "twilio" in w]


def _functions_of(emulator: EmulatorHandle, result: SyncResult) -> list[str]:
    with emulator.client() as http:
        env = http.get(f"/v1/Services/{result.service_sid}/Environments/"
                       f"{result.environment_sid}").json()
        build = http.get(f"/v1/Services/{result.service_sid}/Builds/{env['build_sid']}").json()
    return sorted(v["path"] for v in build["function_versions"]
                  if v["path"] != "/_assetsync/manifest")  # assetsync's own (docs/sync.md)


def test_node_modules_in_the_functions_folder_is_skipped_with_a_note(
        emulator: EmulatorHandle, tmp_path: Path) -> None:
    root = tmp_path / "nm"
    (root / "functions" / "node_modules" / "x").mkdir(parents=True)
    (root / "functions" / "node_modules" / "x" / "index.js").write_text("module.exports = 1;\n")
    (root / "functions" / "hello.js").write_text("exports.handler = (c, e, cb) => cb(null, 'hi');\n")
    result = _sync(root, emulator)
    assert _functions_of(emulator, result) == ["/hello"]
    notes = [w for w in result.warnings if "node_modules" in w]
    assert notes == [("functions/node_modules: not deployed (twilio-run would publish its .js "
                      "files as functions): set [project] functions_node_modules = true to "
                      "deploy them")]
    # Asked for, it is deployed as twilio-run deploys it; a nested node_modules always was.
    config = root / ".assetsync.toml"
    config.write_text(config.read_text().replace(
        "[project]\n", "[project]\nfunctions_node_modules = true\n"))
    again = _sync(root, emulator)
    assert _functions_of(emulator, again) == ["/hello", "/node_modules/x/index"]
    assert not [w for w in again.warnings if "node_modules" in w]


def test_a_trailing_comment_in_the_env_is_kept_with_a_warning_naming_the_key(
        emulator: EmulatorHandle, tmp_path: Path) -> None:
    root = tmp_path / "env"
    (root / "functions").mkdir(parents=True)
    (root / "functions" / "hello.js").write_text("exports.handler = (c, e, cb) => cb(null, 'hi');\n")
    (root / ".env").write_text('A=1\nGREETING="zq-value-41" # zq-note-42\n', encoding="utf-8")
    result = _sync(root, emulator)
    about = [w for w in result.warnings if ".env:2:" in w]
    assert len(about) == 1 and "GREETING" in about[0]
    assert "zq-" not in about[0]
    with emulator.client() as http:
        variables = http.get(f"/v1/Services/{result.service_sid}/Environments/"
                             f"{result.environment_sid}/Variables").json()["variables"]
    assert {v["key"]: v["value"] for v in variables} == {
        "A": "1", "GREETING": 'zq-value-41" # zq-note-42'}


@needs_node
def test_assetsync_emulator_runs_the_projects_voice_function_after_npm_install(
        tmp_path: Path, twilio_node_modules: Path) -> None:
    """The first hour: `assetsync sync` to the embedded target, then `assetsync emulator` in
    the project serves the IVR's TwiML, with `twilio` from the project's node_modules (the
    state folder is outside the project here, so nothing but the project folder can supply
    the package)."""
    root = tmp_path / "ivr"
    _toolkit_project(root)
    _installed(root, twilio_node_modules)
    config = root / ".assetsync.toml"
    config.write_text('[project]\nsource = "site"\nservice = "ivr"\n'
                      'state_dir = "../ivr-state"\n', encoding="utf-8")
    result = sync(load_config(config))
    assert result.domain_name
    proc = subprocess.Popen([sys.executable, "-m", "assetsync", "emulator", "--port", "0"],
                            cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        url = banner.split()[-1]
        got = httpx.post(f"{url}/_serve/{result.domain_name}/voice", timeout=30)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
    assert got.status_code == 200, got.text
    assert got.headers["content-type"].startswith("text/xml")
    gather = ElementTree.fromstring(got.text).find("Gather")
    assert gather is not None and gather.findtext("Say") == "Press 1 for sales."
