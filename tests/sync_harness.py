"""Helpers for the sync engine, CLI and crash tests: a real source tree and a config that points at
the `emulator` fixture's socket, and counters over the emulator's request log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from assetsync.config import Config, load_config
from assetsync.remote.client import RetryPolicy, ServerlessClient
from assetsync.state.remote_manifest import MANIFEST_PATH
from assetsync.sync.run import make_client


def write_config(root: Path, emulator: Any, *, service: str = "site", extra: str = "") -> Path:
    """`.assetsync.toml` under `root` publishing `root/site` to the emulator over its socket."""
    (root / "site").mkdir(parents=True, exist_ok=True)
    path = root / ".assetsync.toml"
    path.write_text(
        "[project]\n"
        'source = "site"\n'
        f'service = "{service}"\n'
        'environment = "dev"\n'
        "[target]\n"
        f'api = "{emulator.url}"\n'
        "[sync]\n"
        "poll_interval_s = 0.05\n" + extra,
        encoding="utf-8",
    )
    return path


def credentials_env(emulator: Any) -> dict[str, str]:
    """The environment variables a real user would set for this account."""
    return {"TWILIO_ACCOUNT_SID": emulator.account_sid, "TWILIO_AUTH_TOKEN": emulator.auth_token}


def enter_cli(root: Path, emulator: Any, monkeypatch: Any) -> Path:
    """Work from `root` with the account's credentials in the environment, as a user runs
    the CLI there (`monkeypatch` undoes both after the test)."""
    for name, value in credentials_env(emulator).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(root)
    return root


def load(root: Path, emulator: Any, **kw: Any) -> Config:
    """Write the config (if missing) and load it with the emulator's credentials."""
    path = root / ".assetsync.toml"
    if not path.exists():
        write_config(root, emulator, **kw)
    return load_config(path, environ=credentials_env(emulator))


def quick_client(config: Config) -> ServerlessClient:
    """A client whose retry waits are milliseconds, so fault tests stay fast."""
    return make_client(config, retry=RetryPolicy(base_delay_s=0.005, max_delay_s=0.02))


def make_tree(site: Path, count: int, *, size: int = 64, prefix: str = "f") -> list[Path]:
    """`count` small distinct text files spread over a few folders."""
    paths = []
    for i in range(count):
        path = site / f"d{i % 10}" / f"{prefix}{i:04d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        body = f"{prefix}{i}:".encode() * (size // 8 + 1)
        path.write_bytes(body[:size])
        paths.append(path)
    return paths


def writes(emulator: Any) -> list[Any]:
    """Every non-GET request the emulator answered."""
    return [e for e in emulator.state.request_log if e.method != "GET"]


def count(emulator: Any, method: str, suffix: str, status: int | None = None) -> int:
    """Requests with this method whose path ends with `suffix` (and this status, if given)."""
    return sum(
        1 for e in emulator.state.request_log
        if e.method == method and e.path.endswith(suffix) and (status is None or e.status == status)
    )


def is_manifest_upload(emulator: Any, path: str) -> bool:
    """Whether an upload-host path is a version of assetsync's own manifest Function (which
    every build carries: tests/state/test_remote_manifest.py counts those)."""
    parts = path.split("/")
    if "Functions" not in parts[:-1]:  # `.../Functions` itself is the list, not a version
        return False
    rec = emulator.state.store.get(parts[parts.index("Functions") + 1], "function")
    return rec is not None and rec.data.get("friendly_name") == MANIFEST_PATH


def uploads(emulator: Any, status: int = 201) -> int:
    """Acknowledged version uploads of the project's files and functions."""
    return sum(1 for e in emulator.state.request_log
               if e.kind == "upload" and e.method == "POST" and e.status == status
               and not is_manifest_upload(emulator, e.path))


def api_get(emulator: Any, path: str) -> Any:
    """GET a main-host path as the account (a short-lived client: no socket left open)."""
    with emulator.client() as http:
        response = http.get(path)
        response.raise_for_status()
        return response.json()


def deploy_function_build(emulator: Any, service_sid: str, env_sid: str,
                           asset_version_sids: list[str]) -> tuple[str, str]:
    """What `twilio-run deploy` does: a function version plus assets in one build, deployed."""
    with emulator.client() as http:
        return deploy_with(http, emulator, service_sid, env_sid, asset_version_sids)


def published_beside_functions(config: Any, emulator: Any, files: int) -> tuple[str, str]:
    """A synced tree of `files` files, then a function build deployed over it by another tool
    (drift) and one new file: returns the function version and that build's SIDs."""
    from assetsync.sync.run import sync

    make_tree(config.source, files)
    first = sync(config)
    assert first.service_sid and first.environment_sid
    found = deploy_function_build(emulator, first.service_sid, first.environment_sid, [])
    (config.source / "new.txt").write_text("new")
    return found


def assert_functions_kept(emulator: Any, result: Any, fn_version: str) -> Any:
    """The result's build holds what `deploy_function_build` deployed besides assets (its
    function version, dependencies and runtime); returns the build's JSON."""
    build = api_get(emulator, f"/v1/Services/{result.service_sid}/Builds/{result.build_sid}")
    assert [v["sid"] for v in build["function_versions"]
            if v["path"] != MANIFEST_PATH] == [fn_version]
    assert build["dependencies"] == [{"name": "twilio", "version": "5.0.0"}]
    assert build["runtime"] == "node20"
    return build


def deploy_with(http: Any, emulator: Any, service_sid: str, env_sid: str,
                asset_version_sids: list[str]) -> tuple[str, str]:
    """The same through an open client."""
    fn = http.post(f"/v1/Services/{service_sid}/Functions", data={"FriendlyName": "/hello"}).json()
    version = http.post(
        f"/v1/Services/{service_sid}/Functions/{fn['sid']}/Versions",
        data={"Path": "/hello", "Visibility": "public"},
        files={"Content": ("hello.js", b"exports.handler = (c, e, cb) => cb(null, 'hi');",
                           "application/javascript")},
    ).json()
    build = http.post(
        f"/v1/Services/{service_sid}/Builds",
        data={"FunctionVersions": [version["sid"]], "AssetVersions": asset_version_sids,
              "Dependencies": '[{"name": "twilio", "version": "5.0.0"}]', "Runtime": "node20"},
    ).json()
    emulator.clock.advance(5)
    http.post(f"/v1/Services/{service_sid}/Environments/{env_sid}/Deployments",
              data={"BuildSid": build["sid"]}).raise_for_status()
    return version["sid"], build["sid"]


def assert_records_are_truthful(config: Any, emulator: Any) -> int:
    """Every version SID the state recorded holds, on the server, exactly the content, path and
    visibility it was recorded for (xxh3 of the stored bytes); returns how many were checked."""
    import xxhash

    from assetsync.config import target_key
    from assetsync.state.db import State

    checked = 0
    key = target_key(config)
    with State.open(config.state_dir) as state:
        services = state.export_json()["tables"]["services"]
        for svc in services:
            if svc["target"] != key:
                continue
            for version in state.versions(key, svc["service_sid"]):
                stored = emulator.state.store.get(version.version_sid, "asset_version")
                assert stored is not None, version
                content = emulator.state.store.content_path(stored.data["digest"]).read_bytes()
                assert "xxh3_128:" + xxhash.xxh3_128(content).hexdigest() == version.digest
                assert (stored.data["path"], stored.data["visibility"]) == (
                    version.path, version.visibility)
                checked += 1
    return checked
