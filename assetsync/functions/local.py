"""The service's Toolkit side, read from disk: the functions folder, package.json and .env.

The edge that reads them (files only, no network); the naming rules are `assetsync.functions.toolkit`'s
and the checks `assetsync.functions.plan`'s. Variable values are read here and held only in
memory: `FunctionProject`'s repr names keys, and nothing of a value reaches a log or the state.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from assetsync.prepare.classify import Issue
from assetsync.config import Config
from assetsync.errors import ConfigError
from assetsync.models import PublishedFile
from assetsync.scan.rules import IgnoreRules, hash_file
from assetsync.functions.toolkit import (
    deploy_variables,
    parse_dotenv,
    parse_package_dependencies,
    toolkit_function,
)

__all__ = [
    "FUNCTION_CONTENT_TYPE",
    "FunctionProject",
    "functions_folder",
    "load_functions",
    "read_variables",
]

# What the official library sends a function as (`mime-types` lookup of `.js`, api-contract.md
# §4: "functions: lookup with fallback application/javascript").
FUNCTION_CONTENT_TYPE = "application/javascript"

# The Toolkit's functions folder, looked for beside the assets source when `[project] functions`
# is not set (twilio-run also tries `src`, too common a name to take unasked).
_DEFAULT_FOLDER = "functions"


@dataclass(frozen=True, slots=True)
class FunctionProject:
    """The functions to deploy with their build's Dependencies and the environment's Variables.

    Attributes:
        folder: the functions folder.
        functions: one `PublishedFile` per function (path without `.js`), sorted by path.
        dependencies: package.json's, or None without a package.json (the live build's stay).
        package_json: that file, for messages.
        variables: key -> value from the .env (twilio-run's filter applied), or None without
            one; never printed.
        env_file: that file, for messages.
        issues: files that cannot be deployed (an error each, naming the file).
    """

    folder: Path
    functions: tuple[PublishedFile, ...] = ()
    dependencies: tuple[tuple[str, str], ...] | None = None
    package_json: str | None = None
    variables: Mapping[str, str] | None = field(default=None, repr=False)
    env_file: str | None = None
    issues: tuple[Issue, ...] = ()

    def __repr__(self) -> str:
        keys = sorted(self.variables) if self.variables is not None else None
        return (f"FunctionProject(folder={str(self.folder)!r}, functions="
                f"{[f.path for f in self.functions]}, dependencies={self.dependencies}, "
                f"variable_keys={keys})")


def functions_folder(config: Config) -> Path | None:
    """The functions folder `config` names, or the Toolkit's beside the source, or None."""
    if config.functions == "":
        return None
    if config.functions is not None:
        folder = Path(config.functions)
        if not folder.is_dir():
            raise ConfigError(
                f"{config.config_path}: [project] functions: {folder} is not a folder: create "
                "it, fix the path, or set functions = \"\" to deploy no functions",
                key="project.functions", file=str(config.config_path))
        return folder
    folder = config.source.parent / _DEFAULT_FOLDER
    if folder.is_dir() and folder != config.source and config.source not in folder.parents:
        return folder
    return None


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the {what}: {exc}", file=str(path)) from None


# The scan's built-in deny list (editor swap and lock files, `.git/`, OS litter), also in the
# functions folder. twilio-run skips only `.DS_Store` there, so an open emacs buffer's lock file
# `.#hello.js` (a dangling symlink) fails its deploy; of the `.js` names, the deny list drops
# only such temp names. `assetsync watch` ignores the same names there.
_DENIED = IgnoreRules()


def _walk(folder: Path) -> list[str]:
    """Every file under `folder` but the denied ones, as POSIX paths relative to it, sorted
    (symlinked folders are not followed: a deploy never reaches outside its project)."""
    found: list[str] = []
    for top, dirs, files in os.walk(folder):
        rel = Path(top).relative_to(folder).as_posix()
        prefix = "" if rel == "." else rel + "/"
        dirs[:] = sorted(d for d in dirs if not _DENIED.is_ignored(prefix + d, True))
        found.extend(prefix + name for name in files
                     if not _DENIED.is_ignored(prefix + name, False))
    return sorted(found)


def read_variables(path: Path) -> Mapping[str, str]:
    """The Variables a .env gives an environment, as `twilio-run deploy` reads it (keys with
    empty values and its own credentials left out); held in memory only.

    Raises:
        ConfigError: the file cannot be read, or a line twilio-run's dotenv would skip (naming
            the file and line, never the line's content).
    """
    return MappingProxyType(deploy_variables(parse_dotenv(_read_text(path, ".env file"),
                                                          file=str(path))))


def load_functions(config: Config) -> FunctionProject | None:
    """Read the functions folder, package.json and .env; None when no functions are deployed.

    Raises:
        ConfigError: an unreadable or invalid package.json or .env (one line naming it), or a
            `[project] functions` / `env_file` that does not exist.
    """
    folder = functions_folder(config)
    if folder is None:
        return None
    project_root = folder.parent
    functions: list[PublishedFile] = []
    issues: list[Issue] = []
    for rel in _walk(folder):
        fn = toolkit_function(rel)
        if fn is None:
            continue
        full = folder / rel
        try:
            digest, size = hash_file(full), full.stat().st_size
        except OSError as exc:
            issues.append(Issue(fn.path, f"{full}: cannot read the function: {exc}"))
            continue
        functions.append(PublishedFile(fn.path, fn.visibility, digest, size, rel, str(full),
                                       FUNCTION_CONTENT_TYPE))
    package = project_root / "package.json"
    dependencies = (parse_package_dependencies(_read_text(package, "package.json"),
                                               file=str(package))
                    if package.is_file() else None)
    env_path = Path(config.env_file) if config.env_file is not None else project_root / ".env"
    variables: Mapping[str, str] | None = None
    if env_path.is_file():
        variables = read_variables(env_path)
    elif config.env_file is not None:
        raise ConfigError(
            f"{config.config_path}: [project] env_file: {env_path} does not exist: create it "
            "or remove the key", key="project.env_file", file=str(config.config_path))
    return FunctionProject(
        folder=folder,
        functions=tuple(sorted(functions, key=lambda f: (f.path, f.source))),
        dependencies=dependencies,
        package_json=str(package) if dependencies is not None else None,
        variables=variables,
        env_file=str(env_path) if variables is not None else None,
        issues=tuple(issues),
    )
