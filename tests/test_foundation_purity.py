"""The foundation's pure modules stay pure: no clock, randomness, environment, files or network."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import assetsync

PACKAGE = Path(assetsync.__file__).parent
IMPURE = {"os", "time", "random", "subprocess", "socket", "sqlite3", "shutil", "tempfile", "io"}
IMPURE_CALLS = {"open", "print", "input"}


@pytest.mark.parametrize("module", ["plan/assets.py", "prepare/classify.py",
                                    "scan/globs.py", "scan/stat_table.py",
                                    "media/audio_level.py", "media/audio_options.py",
                                    "media/audio_stage.py", "config/sections.py",
                                    "config/env.py"])
def test_pure_module_imports_and_calls(module: str) -> None:
    tree = ast.parse((PACKAGE / module).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & IMPURE, f"{module} imports {sorted(imported & IMPURE)}"
    calls = {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert not calls & IMPURE_CALLS, f"{module} calls {sorted(calls & IMPURE_CALLS)}"


def test_parse_config_reads_no_environment() -> None:
    """parse_config takes `environ` as an argument; only load_config touches os.environ."""
    for path in sorted((PACKAGE / "config").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name != "load_config":
                names = {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}
                assert "environ" not in names, f"{path.name}: {node.name} reads os.environ"


def test_the_client_reads_no_environment() -> None:
    """The endpoint variables (TWILIO_REGION, ASSETSYNC_API_URL, ...) are read once, by the
    config; the client resolves its hosts from the target values alone."""
    tree = ast.parse((PACKAGE / "remote" / "client.py").read_text(encoding="utf-8"))
    names = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    names |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert not names & {"environ", "getenv"}
