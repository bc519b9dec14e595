"""The package's public surface stays explicit and complete: one sorted `__all__` naming the
library's entry points, their result and event types and every error, and nothing else."""

from __future__ import annotations
import __future__

import ast
import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import assetsync
from assetsync import errors, results

ENTRY_POINTS = ("load_config", "plan", "promote", "prune", "rollback", "status", "sync", "watch")


def test_all_is_sorted_and_importable() -> None:
    assert list(assetsync.__all__) == sorted(assetsync.__all__)
    assert len(set(assetsync.__all__)) == len(assetsync.__all__)
    for name in assetsync.__all__:
        assert hasattr(assetsync, name), name


def test_all_is_complete() -> None:
    # Every public name the package binds is in __all__ (the submodules it imports aside).
    public = {name for name, value in vars(assetsync).items()
              if not name.startswith("_") and not inspect.ismodule(value)
              and not isinstance(value, __future__._Feature)}
    helpers = {"Callable", "TYPE_CHECKING", "LAZY_ENTRY_POINTS"}
    assert public - helpers == set(assetsync.__all__) - {"__version__"}
    assert set(ENTRY_POINTS) <= set(assetsync.__all__)


def test_each_lazy_entry_point_is_a_stage_function() -> None:
    for name, where in assetsync.LAZY_ENTRY_POINTS.items():
        module, _, function = where.partition(":")
        target = getattr(importlib.import_module(module), function)
        assert callable(target) and inspect.getdoc(target), where
        wrapper = getattr(assetsync, name)
        assert wrapper.__name__ == name and f"{module}.{function}" in (wrapper.__doc__ or "")


def test_the_entry_points_keep_the_names_their_stage_packages_share() -> None:
    # `assetsync/sync/` and `assetsync/watch/` are packages too: loading their modules must not
    # rebind `assetsync.sync` / `assetsync.watch` to the packages.
    importlib.import_module("assetsync.sync.run")
    importlib.import_module("assetsync.watch.run")
    assert callable(assetsync.sync) and assetsync.sync.__name__ == "sync"
    assert callable(assetsync.watch) and assetsync.watch.__name__ == "watch"


def test_an_entry_point_forwards_to_its_stage(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "a.txt").write_text("a\n")
    config_file = tmp_path / ".assetsync.toml"
    config_file.write_text('[project]\nsource = "site"\nservice = "demo"\n')
    config = assetsync.load_config(config_file, environ={})
    result = assetsync.status(config)
    assert isinstance(result, assetsync.StatusResult) and not result.in_sync
    planned = assetsync.plan(config)  # offline: what a sync would upload
    assert [upload.path for upload in planned.plan.uploads] == ["/a.txt"]


def test_importing_the_package_loads_no_network_emulator_or_watcher() -> None:
    # Every submodule's import runs the package's __init__ (encoder workers, `plan`): the
    # entry points that need httpx, the emulator or watchdog load them on their first call.
    code = ("import sys, assetsync\n"
            "heavy = ('httpx', 'watchdog', 'PIL', 'assetsync.emulator', 'assetsync.sync.run',"
            " 'assetsync.sync.operations', 'assetsync.sync.offline_plan', 'assetsync.watch.run')\n"
            "print(sorted(m for m in heavy if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "[]", done.stderr


def test_every_error_is_exported_and_rooted() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.AssetsyncError)
        assert name in assetsync.__all__, f"{name} missing from assetsync.__all__"


def test_every_result_and_event_type_is_exported() -> None:
    for name in results.__all__:
        assert name in assetsync.__all__, f"{name} missing from assetsync.__all__"
    assert "Config" in assetsync.__all__


def test_no_module_getattr_in_the_package() -> None:
    # Re-exports are plain imports: a module __getattr__ would hide import cycles (issue 23).
    root = Path(assetsync.__file__).parent
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        assert "__getattr__" not in names, path.relative_to(root)
