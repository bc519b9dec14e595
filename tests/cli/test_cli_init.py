"""`assetsync init` in a Serverless Toolkit project: the template it writes finds the functions
folder and the service name as twilio-run would, and `plan` then runs on it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assetsync.cli import main
from assetsync.config import load_config


def _toolkit(root: Path, functions_folder: str = "functions") -> None:
    (root / "assets").mkdir()
    (root / "assets" / "style.css").write_text("body{}")
    (root / functions_folder).mkdir()
    (root / functions_folder / "hello.js").write_text("exports.handler = () => {};\n")
    (root / "package.json").write_text(json.dumps({"name": "my_voice-app", "dependencies": {}}))


def _init(root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> str:
    monkeypatch.chdir(root)
    assert main(["init"]) == 0
    capsys.readouterr()
    return (root / ".assetsync.toml").read_text()


def test_init_in_a_toolkit_project_deploys_its_functions_under_its_package_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    _toolkit(tmp_path)
    text = _init(tmp_path, monkeypatch, capsys)
    config = load_config(tmp_path / ".assetsync.toml", environ={})
    assert config.source == (tmp_path / "assets").resolve()
    assert config.functions == str((tmp_path / "functions").resolve())
    assert config.service == "my-voice-app"  # package.json's name, made a valid unique name
    assert 'functions = "functions"' in text
    assert main(["plan", "--json"]) == 0
    assert [u["path"] for u in json.loads(capsys.readouterr().out)["uploads"]] == ["/style.css"]


def test_init_finds_twilio_runs_src_folder_only_when_it_holds_functions(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    _toolkit(tmp_path, "src")
    text = _init(tmp_path, monkeypatch, capsys)
    assert load_config(tmp_path / ".assetsync.toml", environ={}).functions == str(
        (tmp_path / "src").resolve())
    assert 'functions = "src"' in text

    other = tmp_path / "plain"
    (other / "assets").mkdir(parents=True)
    (other / ".git").mkdir()  # its own repository: the config above is another project's
    (other / "src").mkdir()
    (other / "src" / "main.py").write_text("print()")
    text = _init(other, monkeypatch, capsys)
    assert load_config(other / ".assetsync.toml", environ={}).functions is None
    assert '# functions = "functions"' in text
    assert load_config(other / ".assetsync.toml", environ={}).service == "plain"
