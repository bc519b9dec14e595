"""Helpers for the tests of a Serverless Toolkit project (functions, package.json, .env) synced
to the `emulator` fixture: the project, a CLI fixture in it, and what the emulator then holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from assetsync.cli import main
from assetsync.state.remote_manifest import MANIFEST_PATH
from tests.sync_harness import api_get, enter_cli, is_manifest_upload, write_config

SECRETS = ("hello-value-1f9e", "other-value-7c2a")
HELLO = "exports.handler = (context, event, callback) => callback(null, 'hi');\n"


def toolkit_project(root: Path) -> None:
    """The Toolkit layout of issue 16: three functions, assets, package.json and .env."""
    files = {
        "functions/hello.js": HELLO,
        "functions/admin/secret.protected.js": "exports.handler = (c, e, cb) => cb(null, 's');\n",
        "functions/lib/util.private.js": "module.exports = { answer: 42 };\n",
        "site/index.html": "<h1>hello</h1>\n",
        "package.json": json.dumps({"dependencies": {"lodash": "^4.17.21"},
                                    "devDependencies": {"twilio-run": "^4"}}),
        ".env": f"GREETING={SECRETS[0]}\nOTHER={SECRETS[1]}\nACCOUNT_SID=ACnot\nEMPTY=\n",
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def enter_toolkit_project(root: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Toolkit project at `root` as the working folder, its config pointing at the emulator
    and the account's credentials in the environment, as a user runs the CLI."""
    write_config(root, emulator)
    toolkit_project(root)
    return enter_cli(root, emulator, monkeypatch)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`main(argv)` in-process: exit code, stdout, stderr."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def live(emulator: Any, service: str = "site") -> dict[str, Any]:
    """The dev environment's live build, its functions and the environment's variables."""
    svc = api_get(emulator, f"/v1/Services/{service}")
    env = api_get(emulator, f"/v1/Services/{svc['sid']}/Environments")["environments"][0]
    build = api_get(emulator, f"/v1/Services/{svc['sid']}/Builds/{env['build_sid']}")
    variables = api_get(emulator, f"/v1/Services/{svc['sid']}/Environments/{env['sid']}/Variables")
    functions = api_get(emulator, f"/v1/Services/{svc['sid']}/Functions")["functions"]
    return {
        "build": build,
        # Builds embed versions with the visibility in upper case, as the spec's example does.
        # assetsync's own manifest Function (tests/state/test_remote_manifest.py) is left out.
        "functions": sorted((v["path"], v["visibility"].lower())
                            for v in build["function_versions"] if v["path"] != MANIFEST_PATH),
        "function_names": sorted(f["friendly_name"] for f in functions
                                 if f["friendly_name"] != MANIFEST_PATH),
        "assets": sorted(v["path"] for v in build["asset_versions"]),
        "variables": {v["key"]: v["value"] for v in variables["variables"]},
    }


def uploads_to(emulator: Any, family: str) -> int:
    """Acknowledged uploads of Function Versions (`Functions`, assetsync's manifest left out)
    or Asset Versions (`Assets`)."""
    return sum(1 for e in emulator.state.request_log
               if e.kind == "upload" and e.method == "POST" and e.status == 201
               and f"/{family}/" in e.path and not is_manifest_upload(emulator, e.path))


def redeploy_hello_elsewhere(emulator: Any, service_sid: str, env_sid: str,
                             build_sid: str) -> tuple[str, str]:
    """What `twilio-run deploy` of an edited hello.js does to a live build assetsync made: a
    new /hello Function Version in a new build, deployed. Returns (the /hello version the
    build had, the new one)."""
    build = api_get(emulator, f"/v1/Services/{service_sid}/Builds/{build_sid}")
    hello = next(v for v in build["function_versions"] if v["path"] == "/hello")
    with emulator.client() as http:
        version = http.post(
            f"/v1/Services/{service_sid}/Functions/{hello['function_sid']}/Versions",
            data={"Path": "/hello", "Visibility": "public"},
            files={"Content": ("hello.js", b"exports.handler = () => {};",
                               "application/javascript")},
        ).json()
        others = [v["sid"] for v in build["function_versions"] if v["path"] != "/hello"]
        made = http.post(f"/v1/Services/{service_sid}/Builds", data={
            "FunctionVersions": [version["sid"], *others],
            "AssetVersions": [v["sid"] for v in build["asset_versions"]],
            "Dependencies": json.dumps(build["dependencies"])}).json()
        emulator.clock.advance(5)
        http.post(f"/v1/Services/{service_sid}/Environments/{env_sid}/Deployments",
                  data={"BuildSid": made["sid"]}).raise_for_status()
    return hello["sid"], version["sid"]
