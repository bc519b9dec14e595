"""A sharded site's services over their life, through the CLI on the emulator over its socket:
a service left with no file stops serving (its environments, or itself, deleted), a site needing
more services than the account holds fails before anything is published, and prune names the
service of each Asset. Builds hold at most five public/protected files here (`[shard]`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from assetsync.cli import main
from assetsync.emulator.state import EmulatorLimits
from tests.sync_harness import (
    api_get,
    count,
    credentials_env,
    make_tree,
    uploads,
    write_config,
    writes,
)

SMALL = "[shard]\npublic_protected_per_build = 5\nprivate_per_build = 2\n"


@pytest.fixture
def site(tmp_path: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Eight files: five in `site`, three in `site-2`; the URL map in `urls.json`."""
    for name, value in credentials_env(emulator).items():
        monkeypatch.setenv(name, value)
    write_config(tmp_path, emulator, extra='urls_file = "urls.json"\n' + SMALL)
    make_tree(tmp_path / "site", 8)
    return tmp_path


def run(root: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any, str]:
    code = main(["-c", str(root / ".assetsync.toml"), *args])
    out, err = capsys.readouterr()
    return code, json.loads(out) if "--json" in args and out else out, err


def served(emulator: Any, domain: str, path: str) -> int:
    return httpx.get(f"{emulator.url}/_serve/{domain}{path}").status_code


def homes(result: dict[str, Any]) -> dict[str, str]:
    return {p: s["service"] for s in result["services"] for p in s["uploaded"]}


def synced_and_promoted(site: Path, emulator: Any,
                        capsys: pytest.CaptureFixture[str]) -> tuple[list[str], list[str]]:
    """Sync, promote dev to prod; returns site-2's paths and its two environment domains."""
    code, first, err = run(site, capsys, "sync", "--json")
    assert code == 0, err
    code, promoted, err = run(site, capsys, "promote", "dev", "prod", "--json")
    assert code == 0, err
    second = sorted(p for p, s in homes(first).items() if s == "site-2")
    domains = [next(s["domain_name"] for s in result["services"] if s["service"] == "site-2")
               for result in (first, promoted)]
    assert len(second) == 3 and all(served(emulator, d, second[0]) == 200 for d in domains)
    return second, domains


def test_an_emptied_service_is_deleted_on_every_environment_and_forgotten(
    site: Path, emulator: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    second, domains = synced_and_promoted(site, emulator, capsys)
    assert set(second) < set(json.loads((site / "urls.json").read_text(encoding="utf-8")))
    for path in second:
        (site / "site" / path.lstrip("/")).unlink()
    code, before, _ = run(site, capsys, "status", "--json")
    assert code == 0 and sorted(before["pending_drops"]) == second
    text = run(site, capsys, "status")[1]
    assert "site-2: live ZB" in text and "(no file left: sync drops its files" in text
    code, plan, _ = run(site, capsys, "plan", "--json")
    assert code == 0 and plan["drops"] == second and plan["shard"]["retired"] == ["site-2"]
    emulator.state.request_log.clear()

    code, dry, _ = run(site, capsys, "sync", "--dry-run", "--json")

    assert code == 0 and writes(emulator) == [] and sorted(dry["dropped"]) == second
    assert any(n.startswith("site-2: ") and "would delete the service" in n
               for n in dry["notes"])

    code, out, err = run(site, capsys, "sync")

    assert code == 0, err
    assert "site-2: no file left here" in err and "deleted the service" in err
    assert "Up to date" not in out and "dropped 3" in out
    assert "site-2/dev: retired, 3 dropped" in out and "None" not in out + err
    assert count(emulator, "DELETE", "") == 1  # the service, with both its environments
    with emulator.client() as http:
        assert http.get("/v1/Services/site-2").status_code == 404
    assert all(served(emulator, d, p) == 404 for d in domains for p in second)
    code, after, _ = run(site, capsys, "status", "--json")
    assert code == 0 and after["pending_drops"] == [] and not after["needs_build"]
    url_map = json.loads((site / "urls.json").read_text(encoding="utf-8"))
    assert len(url_map) == 5 and not set(url_map) & set(second)
    for env in ("dev", "prod"):
        code, urls, _ = run(site, capsys, "urls", "--env", env, "--json")
        assert code == 0 and len(urls) == 5 and not set(urls) & set(second)
    emulator.state.request_log.clear()
    code, again, _ = run(site, capsys, "sync", "--json")
    assert code == 0 and again["noop"] and writes(emulator) == []


def test_a_service_holding_content_of_others_loses_only_the_site_environments(
    site: Path, emulator: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    second, domains = synced_and_promoted(site, emulator, capsys)
    with emulator.client() as http:  # someone else's environment in the same service
        http.post("/v1/Services/site-2/Environments",
                  data={"UniqueName": "staging", "DomainSuffix": "staging"}).raise_for_status()
    for path in second:
        (site / "site" / path.lstrip("/")).unlink()

    code, result, err = run(site, capsys, "sync", "--json")

    assert code == 0, err
    note = next(n for n in result["notes"] if n.startswith("site-2: "))
    assert "deleted its environments dev, prod" in note and "staging" in note
    envs = api_get(emulator, "/v1/Services/site-2/Environments")["environments"]
    assert [e["unique_name"] for e in envs] == ["staging"]
    assert all(served(emulator, d, p) == 404 for d in domains for p in second)
    code, again, _ = run(site, capsys, "sync", "--json")
    assert code == 0 and again["noop"]
    code, status, _ = run(site, capsys, "status", "--json")
    assert code == 0 and status["in_sync"] and not status.get("services")
    code, promoted, err = run(site, capsys, "promote", "dev", "prod", "--json")
    assert code == 0 and promoted["service"] == "site" and not promoted.get("services"), err


def test_a_retirement_interrupted_after_its_delete_converges(
    site: Path, emulator: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    second, _domains = synced_and_promoted(site, emulator, capsys)
    for path in second:
        (site / "site" / path.lstrip("/")).unlink()
    with emulator.client() as http:  # as if a retiring sync was killed right after its DELETE
        assert http.delete("/v1/Services/site-2").status_code == 204
    emulator.state.request_log.clear()

    code, result, err = run(site, capsys, "sync", "--json")

    assert code == 0, err
    assert any("site-2: " in n and "gone already" in n for n in result["notes"])
    assert sorted(result["dropped"]) == second and writes(emulator) == []
    code, again, _ = run(site, capsys, "sync", "--json")
    assert code == 0 and again["noop"] and writes(emulator) == []


def test_a_site_the_account_cannot_hold_fails_before_anything_is_published(
    tmp_path: Path, emulator: Any, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in credentials_env(emulator).items():
        monkeypatch.setenv(name, value)
    write_config(tmp_path, emulator, extra=SMALL)
    make_tree(tmp_path / "site", 17)  # four services of at most five files
    emulator.state.limits = EmulatorLimits(services_per_account=3)
    code, plan, _ = run(tmp_path, capsys, "plan")
    assert code == 0 and "4 services" in plan
    assert "sync creates site, site-2, site-3, site-4 before uploading anything" in plan

    for _attempt in range(2):
        code, out, err = run(tmp_path, capsys, "sync")

        assert code == 1 and out == "" and err.count("\n") == 1
        assert "site-4: the account refused to create it" in err
        assert "needs 4 services (site, site-2, site-3, site-4)" in err
        assert "nothing was uploaded or built" in err
        assert uploads(emulator) == 0 and count(emulator, "POST", "/Builds") == 0
        assert api_get(emulator, "/v1/Services")["services"] == []  # created ones deleted


def test_prune_names_the_service_of_each_candidate(
    site: Path, emulator: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    make_tree(site / "site", 12)
    code, first, _ = run(site, capsys, "sync", "--json")
    assert code == 0
    home = homes(first)
    gone = [next(p for p, s in sorted(home.items()) if s == name) for name in ("site-2", "site-3")]
    for path in gone:
        (site / "site" / path.lstrip("/")).unlink()
    assert run(site, capsys, "sync")[0] == 0
    sids = {s["service"]: s["service_sid"] for s in first["services"]}

    code, done, _ = run(site, capsys, "prune", "--yes", "--json")

    assert code == 0 and len(done["deleted"]) == 2
    assert sorted((c["path"], c["service"], c["service_sid"]) for c in done["candidates"]) == [
        (p, home[p], sids[home[p]]) for p in gone]
