"""The CI recipes in examples/ (docs/ci.md): each workflow parses, has the jobs, cache and
secrets the guide promises, and the assetsync commands each job runs work against the emulator
over a socket, in the order a project meets them (main published, a pull request previewed,
expired previews pruned, the preview deleted when the pull request closes)."""

from __future__ import annotations

import re
import shlex
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from assetsync.cli import main
from assetsync.sync.preview import deploy_preview
from tests.sync_harness import api_get, enter_cli, load, write_config

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
GITHUB = EXAMPLES / "github" / "assetsync.yml"
GITLAB = EXAMPLES / "gitlab" / ".gitlab-ci.yml"
# `assetsync ARGS` in a script line, up to the end of the command (not `pip install assetsync`).
COMMAND = re.compile(r"(?:^|[\s($])assetsync[ \t]+([^\n)\"';|&>]+)")
CI_VARIABLES = ("GITHUB_REF", "CI_MERGE_REQUEST_IID", "CI_COMMIT_BRANCH")

# job -> (the CI's variables while it runs, the assetsync commands it must run)
GITHUB_JOBS = {
    "publish": ({"GITHUB_REF": "refs/heads/main"}, [["sync", "--log-file", "assetsync.log"]]),
    "preview": ({"GITHUB_REF": "refs/pull/7/merge"}, [["preview", "--ttl", "7d"]]),
    "prune-previews": ({"GITHUB_REF": "refs/heads/main"}, [["preview", "--prune", "--yes"]]),
    "preview-delete": ({"GITHUB_REF": "refs/pull/7/merge"}, [["preview", "--delete"]]),
}
GITLAB_JOBS = {
    "publish": ({"CI_COMMIT_BRANCH": "main"}, [["sync", "--log-file", "assetsync.log"]]),
    "preview": ({"CI_MERGE_REQUEST_IID": "7"}, [["preview", "--ttl", "7d"]]),
    "prune-previews": ({"CI_COMMIT_BRANCH": "main"}, [["preview", "--prune", "--yes"]]),
    "preview-delete": ({"CI_MERGE_REQUEST_IID": "7"}, [["preview", "--delete"]]),
}


def _commands(script: str) -> list[list[str]]:
    return [shlex.split(m.group(1).strip()) for m in COMMAND.finditer(script)]


def _github_jobs() -> dict[str, list[list[str]]]:
    doc = yaml.safe_load(GITHUB.read_text(encoding="utf-8"))
    return {name: [c for step in job["steps"] for c in _commands(str(step.get("run", "")))]
            for name, job in doc["jobs"].items()}


def _gitlab_jobs() -> dict[str, list[list[str]]]:
    doc = yaml.safe_load(GITLAB.read_text(encoding="utf-8"))
    return {name: [c for line in job["script"] for c in _commands(str(line))]
            for name, job in doc.items() if isinstance(job, dict) and "script" in job}


# ------------------------------------------------------------------------------- the files

def test_the_github_workflow_has_the_triggers_cache_and_secrets_the_guide_describes() -> None:
    doc = yaml.safe_load(GITHUB.read_text(encoding="utf-8"))
    triggers = doc.get("on", doc.get(True))  # YAML 1.1 reads a bare `on` as true
    assert {"pull_request", "push", "schedule"} <= set(triggers)
    assert triggers["push"]["branches"] == ["main"] and triggers["schedule"][0]["cron"]
    assert "closed" in triggers["pull_request"]["types"]
    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_API_KEY", "TWILIO_API_SECRET"):
        assert doc["env"][name] == f"${{{{ secrets.{name} }}}}"
    jobs = doc["jobs"]
    for name in ("preview", "publish"):  # the state folder is cached where files are synced
        steps = jobs[name]["steps"]
        uses = [str(s.get("uses", "")).split("@")[0] for s in steps]
        restore = steps[uses.index("actions/cache/restore")]
        save = steps[uses.index("actions/cache/save")]
        assert restore["with"]["path"] == save["with"]["path"] == ".assetsync"
        assert restore["with"]["key"] == save["with"]["key"] and save["if"] == "always()"
        assert uses.index("actions/cache/restore") < uses.index("actions/cache/save")
    steps = jobs["preview"]["steps"]
    comment = [s for s in steps if str(s.get("uses", "")).startswith("actions/github-script@")]
    assert comment and comment[0]["env"]["PREVIEW_URL"] == "${{ steps.preview.outputs.url }}"
    assert "createComment" in comment[0]["with"]["script"]
    assert jobs["preview"]["permissions"]["pull-requests"] == "write"
    assert {n: c for n, c in _github_jobs().items() if c} == {
        n: cmds for n, (_env, cmds) in GITHUB_JOBS.items()}


def test_the_gitlab_pipeline_has_the_jobs_cache_and_review_environment() -> None:
    doc = yaml.safe_load(GITLAB.read_text(encoding="utf-8"))
    assert doc["default"]["cache"]["paths"] == [".assetsync/"]
    preview = doc["preview"]
    assert preview["environment"]["on_stop"] == "preview-delete"
    assert preview["environment"]["url"] == "$PREVIEW_URL"
    assert preview["artifacts"]["reports"]["dotenv"] == "preview.env"
    assert doc["preview-delete"]["environment"]["action"] == "stop"
    assert "schedule" in doc["prune-previews"]["rules"][0]["if"]
    assert {n: c for n, c in _gitlab_jobs().items() if c} == {
        n: cmds for n, (_env, cmds) in GITLAB_JOBS.items()}


def test_the_state_folder_cached_is_the_one_assetsync_uses(tmp_path: Path, emulator: Any) -> None:
    config = load(tmp_path, emulator)
    assert config.state_dir == tmp_path / ".assetsync"


# ------------------------------------------------------------------------------- the commands

def _run_job(monkeypatch: pytest.MonkeyPatch, variables: dict[str, str],
             commands: list[list[str]], capsys: pytest.CaptureFixture[str]) -> str:
    """Run a job's assetsync commands with its CI variables set; their stdout."""
    for name in CI_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    for argv in commands:
        assert main(argv) == 0, argv
    return capsys.readouterr().out


def _environment_names(emulator: Any) -> set[str]:
    sid = api_get(emulator, "/v1/Services/site")["sid"]
    return {e["unique_name"] for e in
            api_get(emulator, f"/v1/Services/{sid}/Environments")["environments"]}


@pytest.mark.parametrize(("jobs", "name"), [(GITHUB_JOBS, "pr-7"), (GITLAB_JOBS, "mr-7")],
                         ids=["github", "gitlab"])
def test_each_jobs_commands_work_against_the_emulator(
        jobs: dict[str, tuple[dict[str, str], list[list[str]]]], name: str, tmp_path: Path,
        emulator: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    write_config(tmp_path, emulator)
    (tmp_path / "site" / "index.html").write_text("<h1>site</h1>", encoding="utf-8")
    enter_cli(tmp_path, emulator, monkeypatch)
    _run_job(monkeypatch, *jobs["publish"], capsys)
    assert (tmp_path / "assetsync.log").is_file() and _environment_names(emulator) == {"dev"}
    url = _run_job(monkeypatch, *jobs["preview"], capsys)
    assert re.fullmatch(rf"https://site-\d+-{name}\.twil\.io\n", url), url
    # A preview made earlier whose time is up: the nightly job deletes it, and only it.
    deploy_preview(load(tmp_path, emulator), "old", ttl=timedelta(days=7),
                   now=datetime.now(UTC) - timedelta(days=8))
    _run_job(monkeypatch, *jobs["prune-previews"], capsys)
    assert _environment_names(emulator) == {"dev", name}
    _run_job(monkeypatch, *jobs["preview-delete"], capsys)
    assert _environment_names(emulator) == {"dev"}
