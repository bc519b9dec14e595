"""Issue 7 end to end, at its scale, through the CLI: `assetsync sync` publishes 2,500 public and
120 private files over three services of the emulator (over its socket, default build limits),
one changed file rebuilds exactly one service, `assetsync urls` maps every public file to its
service's domain, and a config whose groups cannot fit fails before any request.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from assetsync.cli import main
from tests.sync_harness import api_get, count, credentials_env, uploads, write_config, writes

PUBLIC, PRIVATE = 2500, 120


def make_site(site: Path, public: int = PUBLIC, private: int = PRIVATE) -> None:
    """Tiny distinct files: `pub/NN/fNNNN.txt` and `keys/kNNN.private.txt`."""
    for i in range(public):
        path = site / "pub" / f"{i % 25:02d}" / f"f{i:04d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"p%d" % i)
    (site / "keys").mkdir(parents=True, exist_ok=True)
    for i in range(private):
        (site / "keys" / f"k{i:03d}.private.txt").write_bytes(b"k%d" % i)


def cli(root: Path, *args: str, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch, emulator: Any) -> tuple[int, str, str]:
    for name, value in credentials_env(emulator).items():
        monkeypatch.setenv(name, value)
    code = main(["-c", str(root / ".assetsync.toml"), *args])
    out, err = capsys.readouterr()
    return code, out, err


def live_paths(emulator: Any, service: dict[str, Any]) -> list[str]:
    build = api_get(emulator, f"/v1/Services/{service['service_sid']}/Builds/{service['build_sid']}")
    return sorted(v["path"] for v in build["asset_versions"])


def test_2500_public_and_120_private_files_over_services_then_one_change(
    tmp_path: Path, emulator: Any, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_config(tmp_path, emulator, extra='urls_file = "urls.json"\n')
    make_site(tmp_path / "site")

    code, out, err = cli(tmp_path, "sync", "--json", capsys=capsys, monkeypatch=monkeypatch,
                         emulator=emulator)

    assert code == 0, err
    result = json.loads(out)
    services = result["services"]
    assert [s["service"] for s in services] == ["site", "site-2", "site-3"]
    assert uploads(emulator) == PUBLIC + PRIVATE
    assert count(emulator, "POST", "/Builds") == 3
    assert count(emulator, "POST", "/Deployments") == 3
    seen: list[str] = []
    for part in services:  # each live build, as the emulator holds it, within the limits
        paths = live_paths(emulator, part)
        private = sum(1 for p in paths if p.startswith("/keys/"))
        assert len(paths) - private <= 1000 and private <= 50
        seen += paths
    assert len(seen) == len(set(seen)) == PUBLIC + PRIVATE
    url_map = json.loads((tmp_path / "urls.json").read_text(encoding="utf-8"))
    domains = {s["service"]: s["domain_name"] for s in services}
    assert len(url_map) == PUBLIC and len(set(domains.values())) == 3
    home = {p: s["service"] for s in services for p in live_paths(emulator, s)}
    for path, url in url_map.items():  # service domain and environment suffix
        assert url == f"https://{domains[home[path]]}{path}"
        assert domains[home[path]].startswith(f"{home[path]}-") and "-dev." in url

    code, out, _ = cli(tmp_path, "urls", "--json", capsys=capsys, monkeypatch=monkeypatch,
                       emulator=emulator)
    assert code == 0 and json.loads(out) == url_map
    code, out, _ = cli(tmp_path, "urls", "--format", "csv", capsys=capsys,
                       monkeypatch=monkeypatch, emulator=emulator)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == PUBLIC
    assert {r["path"]: r["url"] for r in rows} == url_map
    assert {r["path"]: r["service"] for r in rows} == {p: home[p] for p in url_map}

    emulator.state.request_log.clear()
    changed = "/pub/07/f0007.txt"
    (tmp_path / "site" / changed.lstrip("/")).write_bytes(b"changed")

    code, out, err = cli(tmp_path, "sync", "--json", capsys=capsys, monkeypatch=monkeypatch,
                         emulator=emulator)

    assert code == 0, err
    again = json.loads(out)
    assert uploads(emulator) == 1
    assert count(emulator, "POST", "/Builds") == 1
    assert count(emulator, "POST", "/Deployments") == 1
    rebuilt = [s["service"] for s in again["services"] if not s["noop"]]
    assert rebuilt == [home[changed]] and again["uploaded"] == [changed]
    assert {s["service"]: live_paths(emulator, s) for s in again["services"]} == {
        s["service"]: live_paths(emulator, s) for s in services}  # nothing moved

    emulator.state.request_log.clear()
    code, out, _ = cli(tmp_path, "sync", "--json", capsys=capsys, monkeypatch=monkeypatch,
                       emulator=emulator)
    assert code == 0 and json.loads(out)["noop"] and writes(emulator) == []


def test_groups_that_cannot_fit_fail_before_any_request(
    tmp_path: Path, emulator: Any, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_config(tmp_path, emulator, extra='[shard.groups]\nkeys = ["/keys/**"]\n')
    make_site(tmp_path / "site", public=30, private=PRIVATE)

    code, out, err = cli(tmp_path, "sync", capsys=capsys, monkeypatch=monkeypatch,
                         emulator=emulator)

    assert code != 0 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err
    assert "group 'keys'" in lines[0] and "120 private" in lines[0]
    assert "split the group" in lines[0]
    assert emulator.state.request_log == []
