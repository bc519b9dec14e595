"""Drift, rollback and prune on a sharded site (three services of at most five files), through the
CLI, on the emulator over its socket: each works on the service it concerns."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from assetsync.cli import main
from assetsync.sync.budget import BuildBudget
from tests.sync_harness import (
    api_get,
    count,
    credentials_env,
    deploy_function_build,
    make_tree,
    write_config,
    writes,
)

SMALL = "[shard]\npublic_protected_per_build = 5\nprivate_per_build = 2\n"


@pytest.fixture
def site(tmp_path: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, value in credentials_env(emulator).items():
        monkeypatch.setenv(name, value)
    write_config(tmp_path, emulator, extra=SMALL)
    make_tree(tmp_path / "site", 12)
    return tmp_path


def run(root: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any, str]:
    code = main(["-c", str(root / ".assetsync.toml"), *args])
    out, err = capsys.readouterr()
    return code, json.loads(out) if "--json" in args and out else out, err


def by_service(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["service"]: s for s in result["services"]}


def live_build(emulator: Any, part: dict[str, Any]) -> dict[str, Any]:
    env = api_get(emulator, f"/v1/Services/{part['service_sid']}/Environments/"
                            f"{part['environment_sid']}")
    return api_get(emulator, f"/v1/Services/{part['service_sid']}/Builds/{env['build_sid']}")


def test_drift_in_one_service_names_it_and_adopt_keeps_what_was_deployed(
    site: Path, emulator: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code, first, _ = run(site, capsys, "sync", "--json")
    assert code == 0
    second = by_service(first)["site-2"]
    live = live_build(emulator, second)
    # Someone deploys a Function into site-2 with its files (what `twilio-run deploy` does).
    deploy_function_build(emulator, second["service_sid"], second["environment_sid"],
                          [v["sid"] for v in live["asset_versions"]])
    emulator.state.request_log.clear()

    code, out, err = run(site, capsys, "sync")

    assert code != 0 and out == ""
    assert err.count("\n") == 1 and "site-2/dev:" in err and "someone deployed" in err
    assert count(emulator, "POST", "/Builds") == 0

    code, adopted, err = run(site, capsys, "sync", "--adopt", "--json")

    assert code == 0, err
    assert by_service(adopted)["site-2"]["function_versions"] == 1
    assert any("adopted live build" in n for n in adopted["notes"])
    assert count(emulator, "POST", "/Builds") == 0  # same files: the live build is adopted as is
    emulator.state.request_log.clear()
    code, again, _ = run(site, capsys, "sync", "--json")
    assert code == 0 and again["noop"] and writes(emulator) == []


def test_rollback_of_the_service_a_change_went_to(
    site: Path, emulator: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code, first, _ = run(site, capsys, "sync", "--json")
    homes = {p: s["service"] for s in first["services"] for p in s["uploaded"]}
    changed = next(p for p, s in homes.items() if s == "site-3")
    (site / "site" / changed.lstrip("/")).write_text("edited")
    code, second, _ = run(site, capsys, "sync", "--json")
    assert code == 0 and [s["service"] for s in second["services"] if not s["noop"]] == ["site-3"]
    code, _, err = run(site, capsys, "rollback")  # the configured service has nothing earlier
    assert code != 0 and "no earlier build of site/dev" in err

    code, rolled, err = run(site, capsys, "rollback", "--service", "site-3", "--json")

    assert code == 0, err
    before = by_service(first)["site-3"]
    assert rolled["service"] == "site-3" and rolled["build_sid"] == before["build_sid"]
    assert live_build(emulator, before)["sid"] == before["build_sid"]
    code, _, err = run(site, capsys, "rollback", "--service", "other")
    assert code != 0 and "--service other: not a service of this site" in err
    emulator.state.request_log.clear()
    code, again, _ = run(site, capsys, "sync", "--json")  # no drift: the rollback was recorded
    assert code == 0 and [s["service"] for s in again["services"] if not s["noop"]] == ["site-3"]
    assert count(emulator, "POST", "/Builds") == 1


def test_prune_covers_every_service_of_the_site(
    site: Path, emulator: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code, first, _ = run(site, capsys, "sync", "--json")
    homes = {p: s["service"] for s in first["services"] for p in s["uploaded"]}
    gone = sorted(p for p, s in homes.items() if s != "site")[:2]
    for path in gone:
        (site / "site" / path.lstrip("/")).unlink()
    code, _, _ = run(site, capsys, "sync", "--json")
    assert code == 0
    emulator.state.request_log.clear()

    code, dry, _ = run(site, capsys, "prune", "--json")

    assert code == 0 and writes(emulator) == []
    assert sorted(c["path"] for c in dry["candidates"]) == gone
    code, one, _ = run(site, capsys, "prune", "--service", homes[gone[0]], "--json")
    assert [c["path"] for c in one["candidates"]] == [
        p for p in gone if homes[p] == homes[gone[0]]]

    code, done, _ = run(site, capsys, "prune", "--yes", "--json")

    assert code == 0 and len(done["deleted"]) == 2
    assert count(emulator, "DELETE", "") == 2
    code, after, _ = run(site, capsys, "prune", "--json")
    assert after["candidates"] == []
    code, last, _ = run(site, capsys, "sync", "--json")
    assert code == 0 and last["noop"]


def twilio_site(root: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch) -> BuildBudget:
    """A "twilio" target whose URL is overridden to the emulator (as a proxy would be), so the
    account's shared build budget applies; returns that budget (in a tmp ledger folder)."""
    from assetsync.config import load_config
    from assetsync.sync.budget import budget_for_config

    make_tree(root / "site", 12)
    (root / ".assetsync.toml").write_text(
        '[project]\nsource = "site"\nservice = "site"\n'
        f'[target]\napi = "twilio"\napi_url = "{emulator.url}"\n'
        "[sync]\npoll_interval_s = 0.05\n" + SMALL)
    env = {**credentials_env(emulator), "ASSETSYNC_BUDGET_DIR": str(root / "budget")}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return budget_for_config(load_config(root / ".assetsync.toml", environ=env), environ=env)


def test_a_first_sync_takes_a_budget_slot_per_service_before_any_write(
    tmp_path: Path, emulator: Any, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    budget = twilio_site(tmp_path, emulator, monkeypatch)
    budget.record(98)  # other syncs of the account: 2 builds left this hour, 3 services needed

    code, out, err = run(tmp_path, capsys, "sync")

    assert code != 0 and out == "" and err.count("\n") == 1
    assert "build budget spent" in err and "may build 3 service(s)" in err and "2 of" in err
    assert writes(emulator) == [] and budget.used() == 98


def test_a_sync_takes_one_budget_slot_per_service_before_any_request(
    tmp_path: Path, emulator: Any, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    budget = twilio_site(tmp_path, emulator, monkeypatch)

    assert run(tmp_path, capsys, "sync")[0] == 0
    assert budget.used() == 3  # three services built
    assert run(tmp_path, capsys, "sync")[0] == 0
    assert budget.used() == 3  # a no-op sync gives its reservation back
    (tmp_path / "site" / "d0" / "f0000.txt").write_text("edited")
    budget.record(95)  # other syncs of the account: 2 builds left this hour
    emulator.state.request_log.clear()

    code, out, err = run(tmp_path, capsys, "sync")

    assert code != 0 and out == "" and err.count("\n") == 1
    assert "build budget spent" in err and "may build 3 service(s)" in err and "2 of" in err
    assert emulator.state.request_log == [] and budget.used() == 98


def test_promote_deploys_every_service_and_urls_follow_the_environment(
    site: Path, emulator: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code, first, _ = run(site, capsys, "sync", "--json")
    assert code == 0
    emulator.state.request_log.clear()

    code, promoted, err = run(site, capsys, "promote", "dev", "prod", "--json")

    assert code == 0, err
    assert [p["service"] for p in promoted["services"]] == ["site", "site-2", "site-3"]
    dev = by_service(first)
    for part in promoted["services"]:
        assert part["environment"] == "prod" and part["domain_name"].endswith("-prod.twil.io")
        assert live_build(emulator, part)["sid"] == dev[part["service"]]["build_sid"]
    assert count(emulator, "POST", "/Builds") == 0 and count(emulator, "POST", "/Deployments") == 3
    code, urls, _ = run(site, capsys, "urls", "--env", "prod", "--json")
    domains = {p["service"]: p["domain_name"] for p in promoted["services"]}
    homes = {p: s["service"] for s in first["services"] for p in s["uploaded"]}
    assert urls == {p: f"https://{domains[homes[p]]}{p}" for p in homes}
