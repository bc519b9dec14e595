"""Preview environments against the emulator over a socket: `assetsync preview` reuses every
version a sync uploaded and serves the site at `-<name>`, `--delete` and `--prune` remove only
previews, the 25-environment cap is one error before any upload, `promote` ships the previewed
build; name derivation from CI values is pure (property tests)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from assetsync.cli import main
from assetsync.errors import ConfigError
from assetsync.limits import ENVIRONMENTS_PER_SERVICE
from assetsync.sync.preview import (
    EXPIRES_VARIABLE,
    MAX_NAME_LENGTH,
    branch_from_head,
    check_name,
    deploy_preview,
    format_expiry,
    parse_ttl,
    preview_name,
    sanitize_name,
)
from tests.sync_harness import api_get, enter_cli, load, uploads, write_config

VALID = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*\Z")
FILES = {"index.html": b"<h1>preview</h1>", "img/a.txt": b"aaaa", "b.txt": b"bbbb"}


def _project(tmp_path: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A synced site: the config, three files, `assetsync sync` done; CI variables unset."""
    for name in ("GITHUB_REF", "CI_MERGE_REQUEST_IID", "CI_COMMIT_BRANCH"):
        monkeypatch.delenv(name, raising=False)
    write_config(tmp_path, emulator)
    for rel, body in FILES.items():
        (tmp_path / "site" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "site" / rel).write_bytes(body)
    enter_cli(tmp_path, emulator, monkeypatch)
    assert main(["sync", "-q"]) == 0
    return tmp_path


def _service_sid(emulator: Any) -> str:
    return str(api_get(emulator, "/v1/Services/site")["sid"])


def _environments(emulator: Any) -> dict[str, dict[str, Any]]:
    body = api_get(emulator, f"/v1/Services/{_service_sid(emulator)}/Environments")
    return {e["unique_name"]: e for e in body["environments"]}


def _variables(emulator: Any, env: dict[str, Any]) -> dict[str, str]:
    body = api_get(emulator, f"/v1/Services/{env['service_sid']}/Environments/{env['sid']}"
                             "/Variables")
    return {v["key"]: v["value"] for v in body["variables"]}


def _served(emulator: Any, domain: str, path: str) -> httpx.Response:
    return httpx.get(f"{emulator.url}/_serve/{domain}{path}")


def _json_out(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out
    return dict(json.loads(out[0]))


# ------------------------------------------------------------------------------- deploy

def test_preview_after_a_sync_uploads_nothing_and_serves_the_site_at_pr_7(
        tmp_path: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    _project(tmp_path, emulator, monkeypatch)
    before = uploads(emulator)
    capsys.readouterr()
    start = datetime.now(UTC).replace(microsecond=0)
    assert main(["preview", "pr-7", "--json"]) == 0
    end = datetime.now(UTC)
    doc = _json_out(capsys)
    assert uploads(emulator) == before  # every version reused
    assert doc["ok"] is True and doc["uploaded"] == [] and doc["reused"] == len(FILES)
    domain = str(doc["domain_name"])
    assert domain.endswith("-pr-7.twil.io") and doc["preview"]["url"] == f"https://{domain}"
    for rel, body in FILES.items():
        served = _served(emulator, domain, f"/{rel}")
        assert served.status_code == 200 and served.content == body
    env = _environments(emulator)["pr-7"]
    assert env["domain_suffix"] == "pr-7" and env["domain_name"] == domain
    # The expiry is on the environment itself, 7 days (the default --ttl) after the command.
    expires = datetime.fromisoformat(_variables(emulator, env)[EXPIRES_VARIABLE])
    assert start + timedelta(days=7) <= expires <= end + timedelta(days=7)
    assert doc["preview"]["expires"] == _variables(emulator, env)[EXPIRES_VARIABLE]


def test_preview_prints_the_url_alone_and_promote_ships_exactly_the_previewed_build(
        tmp_path: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    root = _project(tmp_path, emulator, monkeypatch)
    (root / "site" / "b.txt").write_bytes(b"changed on the branch")
    capsys.readouterr()
    assert main(["preview", "feature-x", "--ttl", "2d"]) == 0
    out = capsys.readouterr().out
    envs = _environments(emulator)
    assert out == f"https://{envs['feature-x']['domain_name']}\n"
    previewed = envs["feature-x"]["build_sid"]
    assert previewed and previewed != envs["dev"]["build_sid"]  # dev still has the old b.txt
    assert main(["promote", "feature-x", "prod"]) == 0
    prod = _environments(emulator)["prod"]
    assert prod["build_sid"] == previewed
    assert _served(emulator, prod["domain_name"], "/b.txt").content == b"changed on the branch"
    assert EXPIRES_VARIABLE not in _variables(emulator, prod)  # prod never expires


def test_preview_again_refreshes_the_expiry_and_uploads_only_the_change(
        tmp_path: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _project(tmp_path, emulator, monkeypatch)
    config = load(root, emulator)
    first = deploy_preview(config, "pr-3", ttl=timedelta(days=1),
                           now=datetime(2030, 1, 1, tzinfo=UTC))
    assert first.expires == "2030-01-02T00:00:00Z"
    (root / "site" / "b.txt").write_bytes(b"second push")
    before = uploads(emulator)
    second = deploy_preview(config, "pr-3", ttl=timedelta(days=1),
                            now=datetime(2030, 1, 5, tzinfo=UTC))
    assert uploads(emulator) == before + 1 and second.sync.uploaded == ("/b.txt",)
    env = _environments(emulator)["pr-3"]
    assert _variables(emulator, env) == {EXPIRES_VARIABLE: "2030-01-06T00:00:00Z"}


def test_preview_derives_its_name_from_the_ci_or_the_branch(
        tmp_path: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    root = _project(tmp_path, emulator, monkeypatch)
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/Feature/Login_UI\n")
    capsys.readouterr()
    assert main(["preview"]) == 0
    assert capsys.readouterr().out.strip().endswith("-feature-login-ui.twil.io")
    monkeypatch.setenv("GITHUB_REF", "refs/pull/42/merge")
    assert main(["preview"]) == 0
    assert capsys.readouterr().out.strip().endswith("-pr-42.twil.io")
    assert main(["preview", "--delete"]) == 0  # the derived name again
    assert set(_environments(emulator)) == {"dev", "feature-login-ui"}


def test_preview_refuses_an_environment_that_is_no_preview(
        tmp_path: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    _project(tmp_path, emulator, monkeypatch)
    assert main(["sync", "-q", "--env", "stage"]) == 0
    stage = _environments(emulator)["stage"]
    capsys.readouterr()
    assert main(["preview", "stage"]) == 2
    assert "stage of service site exists and is not a preview" in capsys.readouterr().err
    assert main(["preview", "--delete", "stage"]) == 1
    assert "no preview named stage" in capsys.readouterr().err
    assert main(["preview", "dev"]) == 2
    assert main(["preview", "PR_7"]) == 2
    assert "(for example 'pr-7')" in capsys.readouterr().err
    after = _environments(emulator)
    assert after["stage"] == stage and "dev" in after
    assert _variables(emulator, stage) == {}


# ------------------------------------------------------------------------------- delete, prune

def test_delete_removes_the_preview_environment(
        tmp_path: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    _project(tmp_path, emulator, monkeypatch)
    assert main(["preview", "pr-7"]) == 0
    domain = _environments(emulator)["pr-7"]["domain_name"]
    assert _served(emulator, domain, "/b.txt").status_code == 200
    capsys.readouterr()
    assert main(["preview", "--delete", "pr-7"]) == 0
    assert "deleted preview pr-7" in capsys.readouterr().out
    assert set(_environments(emulator)) == {"dev"}
    assert _served(emulator, domain, "/b.txt").status_code == 404
    # Made again later, it is a new environment that still uploads nothing.
    before = uploads(emulator)
    assert main(["preview", "pr-7"]) == 0
    assert uploads(emulator) == before and "pr-7" in _environments(emulator)


def test_an_expired_preview_is_pruned_only_with_yes(
        tmp_path: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    root = _project(tmp_path, emulator, monkeypatch)
    config = load(root, emulator)
    long_ago = datetime.now(UTC) - timedelta(days=30)
    deploy_preview(config, "pr-8", ttl=timedelta(days=7), now=long_ago)  # expired 23 days ago
    assert main(["preview", "pr-9"]) == 0  # expires in 7 days
    capsys.readouterr()
    assert main(["preview", "--list"]) == 0
    listing = capsys.readouterr().out
    assert "pr-8" in listing and "expired" in listing and "pr-9" in listing
    assert main(["preview", "--prune"]) == 0
    out = capsys.readouterr().out
    assert "would delete 1 expired preview(s)" in out and "pr-8" in out and "pr-9" not in out
    assert {"pr-8", "pr-9"} <= set(_environments(emulator))
    assert main(["preview", "--prune", "--yes", "--json"]) == 0
    doc = _json_out(capsys)
    assert [p["name"] for p in doc["expired"]] == ["pr-8"] and doc["dry_run"] is False
    assert [p["name"] for p in doc["kept"]] == ["pr-9"]
    assert set(_environments(emulator)) == {"dev", "pr-9"}


# ------------------------------------------------------------------------------- the cap

def test_at_the_environment_cap_one_error_names_the_oldest_previews_before_any_upload(
        tmp_path: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    root = _project(tmp_path, emulator, monkeypatch)
    svc = _service_sid(emulator)
    with emulator.client() as http:  # previews made elsewhere, older first, up to the cap
        for i in range(ENVIRONMENTS_PER_SERVICE - 1):
            emulator.clock.advance(60)
            env = http.post(f"/v1/Services/{svc}/Environments",
                            data={"UniqueName": f"old-{i}", "DomainSuffix": f"old-{i}"})
            env.raise_for_status()
            if i != 0:  # old-0 is no preview: it must not be named
                http.post(env.json()["links"]["variables"], data={
                    "Key": EXPIRES_VARIABLE, "Value": "2099-01-01T00:00:00Z"}
                ).raise_for_status()
    (root / "site" / "b.txt").write_bytes(b"a change a preview would upload")
    before, envs = uploads(emulator), set(_environments(emulator))
    capsys.readouterr()
    assert main(["preview", "pr-7"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert f"already has {ENVIRONMENTS_PER_SERVICE} environments" in err[0]
    assert "assetsync preview --delete old-1" in err[0]
    assert "old-2" in err[0] and "old-3" in err[0] and "old-0 " not in err[0]
    assert uploads(emulator) == before and set(_environments(emulator)) == envs
    # An existing preview can still be deployed again at the cap.
    assert main(["preview", "old-5"]) == 0
    assert uploads(emulator) == before + 1


# ------------------------------------------------------------------------------- names (pure)

@given(st.integers(min_value=1, max_value=10**12), st.sampled_from(["merge", "head"]))
def test_a_pull_request_ref_gives_pr_n(number: int, kind: str) -> None:
    name = preview_name(github_ref=f"refs/pull/{number}/{kind}", gitlab_mr_iid="99",
                        git_branch="main")
    assert name == f"pr-{number}"


@given(st.integers(min_value=1, max_value=10**12), st.text(max_size=40))
def test_a_merge_request_gives_mr_n_whatever_the_branch(number: int, branch: str) -> None:
    assert preview_name(github_ref="", gitlab_mr_iid=str(number), ci_branch=branch,
                        git_branch=branch) == f"mr-{number}"


@given(st.text(max_size=300))
def test_every_derived_name_is_a_valid_domain_suffix(raw: str) -> None:
    for name in (sanitize_name(raw), preview_name(github_ref=f"refs/heads/{raw}"),
                 preview_name(ci_branch=raw), preview_name(git_branch=raw)):
        if name:
            assert VALID.match(name) and len(name) <= MAX_NAME_LENGTH
            assert check_name(name) == name and sanitize_name(name) == name  # a fixed point


@given(st.from_regex(r"[a-z0-9]{1,8}(-[a-z0-9]{1,3}){0,2}", fullmatch=True))
def test_a_valid_name_is_kept_as_it_is(name: str) -> None:
    assert sanitize_name(name) == name and preview_name(git_branch=name) == name


@given(st.text(alphabet="abc-/_", min_size=1, max_size=40))
def test_the_branch_wins_over_nothing_and_the_ci_branch_over_the_checkout(branch: str) -> None:
    expected = sanitize_name(branch) or None
    assert preview_name(ci_branch=branch, git_branch="zzz") == (expected or "zzz")
    assert preview_name(github_ref=f"refs/heads/{branch}", ci_branch="yyy") == (
        expected or "yyy")


def test_long_branches_sharing_a_prefix_get_distinct_names() -> None:
    a = sanitize_name("feature/checkout-redesign-step-1")
    b = sanitize_name("feature/checkout-redesign-step-2")
    assert a != b and len(a) == len(b) == MAX_NAME_LENGTH
    assert a.startswith("feature-ch") and preview_name() is None
    assert sanitize_name("///") == "" and preview_name(git_branch="///") is None


@given(st.text(alphabet="abcdefgh/-_.0123456789", min_size=1, max_size=60))
def test_git_head_names_its_branch_and_a_detached_head_none(branch: str) -> None:
    assert branch_from_head(f"ref: refs/heads/{branch}\n") == branch
    assert branch_from_head("3f786850e387550fdab836ed7e6dc881de23001b\n") is None


@given(st.integers(min_value=1, max_value=10**6), st.sampled_from("smhdw"))
def test_ttl_parses_every_unit(n: int, unit: str) -> None:
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit]
    assert parse_ttl(f"{n}{unit}") == timedelta(seconds=n * seconds)


@pytest.mark.parametrize("bad", ["", "7", "0d", "-1d", "7x", "d7", "1.5h"])
def test_a_bad_ttl_is_one_clear_error(bad: str) -> None:
    with pytest.raises(ConfigError, match="--ttl .*7d, 12h or 30m"):
        parse_ttl(bad)


def test_the_expiry_is_written_in_utc() -> None:
    from datetime import timezone

    east = timezone(timedelta(hours=5))
    assert format_expiry(datetime(2030, 1, 1, 5, 0, tzinfo=east)) == "2030-01-01T00:00:00Z"


def test_a_sharded_site_previews_prunes_and_deletes_every_service(
        tmp_path: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("GITHUB_REF", "CI_MERGE_REQUEST_IID", "CI_COMMIT_BRANCH"):
        monkeypatch.delenv(name, raising=False)
    write_config(tmp_path, emulator, extra="[shard]\npublic_protected_per_build = 2\n")
    for i in range(3):
        (tmp_path / "site" / f"f{i}.txt").write_bytes(f"file {i}".encode())
    enter_cli(tmp_path, emulator, monkeypatch)
    assert main(["sync", "-q"]) == 0
    before = uploads(emulator)
    assert main(["preview", "pr-7"]) == 0
    assert uploads(emulator) == before
    with emulator.client() as http:
        services = http.get("/v1/Services").json()["services"]
        assert len(services) == 2
        for svc in services:
            envs = http.get(f"/v1/Services/{svc['sid']}/Environments").json()["environments"]
            pr7 = [e for e in envs if e["unique_name"] == "pr-7"]
            assert len(pr7) == 1 and pr7[0]["build_sid"]
            assert EXPIRES_VARIABLE in _variables(emulator, pr7[0])
    capsys.readouterr()
    assert main(["preview", "--list", "--json"]) == 0
    assert sorted(p["service"] for p in _json_out(capsys)["previews"]) == ["site", "site-2"]
    assert main(["preview", "--delete", "pr-7"]) == 0
    with emulator.client() as http:
        for svc in services:
            envs = http.get(f"/v1/Services/{svc['sid']}/Environments").json()["environments"]
            assert [e["unique_name"] for e in envs] == ["dev"]
