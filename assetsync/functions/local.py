"""The service's Toolkit side, read from disk: the functions folder, package.json and .env.

The edge that reads them (files only, no network); the naming rules are
`assetsync.functions.toolkit`'s and the checks `assetsync.functions.plan`'s. Variable values are
read here and held only in memory: `FunctionProject`'s repr names keys, and nothing of a value
reaches a log or the state.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType

from assetsync.config import Config
from assetsync.errors import ConfigError
from assetsync.frozen import field, frozen
from assetsync.models import PublishedFile
from assetsync.prepare.classify import Issue
from assetsync.scan.rules import IgnoreRules, hash_file

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


@frozen
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
        warnings: what was left out or will not run locally (never blocks a deploy).
    """

    folder: Path
    functions: tuple[PublishedFile, ...] = ()
    dependencies: tuple[tuple[str, str], ...] | None = None
    package_json: str | None = None
    variables: Mapping[str, str] | None = field(default=None, repr=False)
    env_file: str | None = None
    issues: tuple[Issue, ...] = ()
    warnings: tuple[Issue, ...] = ()

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
    except OSError as exc:  # the reason alone: str(exc) repeats the path after "[Errno N]"
        raise ConfigError(f"{path}: cannot read the {what} ({exc.strerror or exc})",
                          file=str(path)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: cannot read the {what}: not UTF-8 text ({exc.reason} at "
                          f"byte {exc.start})", file=str(path)) from None


# The scan's built-in deny list (editor swap and lock files, `.git/`, OS litter), also in the
# functions folder. twilio-run skips only `.DS_Store` there, so an open emacs buffer's lock file
# `.#hello.js` (a dangling symlink) fails its deploy; of the `.js` names, the deny list drops
# only such temp names. `assetsync watch` ignores the same names there.
_DENIED = IgnoreRules()


# twilio-run deploys `functions/node_modules/x/index.js` as the public function
# `/node_modules/x/index` (its `getDirContent` walks every folder); nobody means that, so the
# top-level `node_modules` of the functions folder is skipped unless
# `[project] functions_node_modules = true`.
_NODE_MODULES = "node_modules"


def _walk(folder: Path, *, node_modules: bool = True) -> list[str]:
    """Every file under `folder` but the denied ones (and its `node_modules` folder unless
    `node_modules`), as POSIX paths relative to it, sorted (symlinked folders are not
    followed: a deploy never reaches outside its project)."""
    found: list[str] = []
    for top, dirs, files in os.walk(folder):
        rel = Path(top).relative_to(folder).as_posix()
        prefix = "" if rel == "." else rel + "/"
        dirs[:] = sorted(d for d in dirs if not _DENIED.is_ignored(prefix + d, True)
                         and (node_modules or prefix or d != _NODE_MODULES))
        found.extend(prefix + name for name in files
                     if not _DENIED.is_ignored(prefix + name, False))
    return sorted(found)


# What makes a function need the `twilio` package at run time: the `Twilio` global's package
# side (`Twilio.Response` is the runtime's own), a direct require, or getTwilioClient().
_USES_TWILIO = re.compile(
    rb"\bTwilio\.(?!Response\b)[A-Za-z_$]|require\(\s*['\"]twilio['\"]\s*\)|getTwilioClient")


def _node_modules_note(folder: Path) -> list[Issue]:
    if not (folder / _NODE_MODULES).is_dir():
        return []
    return [Issue(f"{folder.name}/{_NODE_MODULES}", "not deployed (twilio-run would publish "
                  "its .js files as functions): set [project] functions_node_modules = true "
                  "to deploy them", "warning")]


def _has_twilio_package(root: Path) -> bool:
    # Node looks for node_modules in the folder and every folder above it.
    return any((d / _NODE_MODULES / "twilio").is_dir() for d in (root, *root.parents))


def _twilio_warning(root: Path, folder: Path,
                    functions: Iterable[PublishedFile]) -> Issue | None:
    """One warning when functions use the `twilio` package and the project has not installed
    it, so the emulator cannot run them (Twilio's own runtime brings its own copy)."""
    if _has_twilio_package(root):
        return None
    users: list[str] = []
    for fn in functions:
        try:
            if _USES_TWILIO.search(Path(fn.content_path).read_bytes()):
                users.append(f"{folder.name}/{fn.source}")
        except OSError:
            continue  # already reported as an issue, or gone since: not this warning's concern
    if not users:
        return None
    more = f" and {len(users) - 1} more function(s)" if len(users) > 1 else ""
    return Issue(users[0], f"{users[0]}{more} use the twilio package, which is not installed "
                 f"(no node_modules/twilio in {root}): run `npm install twilio` there (or "
                 "`npm install` when package.json lists it) so the emulator can run them",
                 "warning")


def read_variables(path: Path) -> Mapping[str, str]:
    """The Variables a .env gives an environment, as `twilio-run deploy` reads it (keys with
    empty values and its own credentials left out); held in memory only.

    Raises:
        ConfigError: the file cannot be read, or a line twilio-run's dotenv would skip (naming
            the file and line, never the line's content).
    """
    return _read_env(path)[0]


def _read_env(path: Path) -> tuple[Mapping[str, str], list[Issue]]:
    """The Variables, and a warning for each line whose value keeps an inline comment."""
    from assetsync.functions.toolkit import deploy_variables, dotenv_warnings, parse_dotenv

    text = _read_text(path, ".env file")
    variables = MappingProxyType(deploy_variables(parse_dotenv(text, file=str(path))))
    return variables, [Issue(str(path), line, "warning")
                       for line in dotenv_warnings(text, file=str(path))]


def load_functions(config: Config) -> FunctionProject | None:
    """Read the functions folder, package.json and .env; None when no functions are deployed.

    Raises:
        ConfigError: an unreadable or invalid package.json or .env (one line naming it), or a
            `[project] functions` / `env_file` that does not exist.
    """
    folder = functions_folder(config)
    if folder is None:
        if config.env_file is not None and not Path(config.env_file).is_file():
            # Named but missing: with no functions folder it would be ignored in silence.
            raise ConfigError(
                f"{config.config_path}: [project] env_file: {config.env_file} does not exist: "
                "create it or remove the key (or --env-file)", key="project.env_file",
                file=str(config.config_path))
        return None
    # Here, not at the top: a site without functions (most) never loads the Toolkit's rules.
    from assetsync.functions.toolkit import parse_package_dependencies, toolkit_function

    project_root = folder.parent
    functions: list[PublishedFile] = []
    issues: list[Issue] = []
    keep_node_modules = config.functions_node_modules
    warnings = [] if keep_node_modules else _node_modules_note(folder)
    for rel in _walk(folder, node_modules=keep_node_modules):
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
        variables, env_warnings = _read_env(env_path)
        warnings.extend(env_warnings)
    elif config.env_file is not None:
        raise ConfigError(
            f"{config.config_path}: [project] env_file: {env_path} does not exist: create it "
            "or remove the key", key="project.env_file", file=str(config.config_path))
    # Only a local run needs the package here: Twilio's runtime brings its own.
    if config.target.api != "twilio":
        missing = _twilio_warning(project_root, folder, functions)
        if missing is not None:
            warnings.append(missing)
    return FunctionProject(
        folder=folder,
        functions=tuple(sorted(functions, key=lambda f: (f.path, f.source))),
        dependencies=dependencies,
        package_json=str(package) if dependencies is not None else None,
        variables=variables,
        env_file=str(env_path) if variables is not None else None,
        issues=tuple(issues),
        warnings=tuple(warnings),
    )
