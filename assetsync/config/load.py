"""Reading a config: find `.assetsync.toml` (upward, like git), layer flag > environment > file >
default, check every key, and build the typed `Config`.

`parse_config` is pure (text, file name and an environment mapping in); `find_config` and
`load_config` are the only functions here that touch the filesystem.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import cast

from assetsync.config.env import env_error, env_layer, read_credentials
from assetsync.config.sections import (
    KEYS,
    REQUIRED,
    Bad,
    CheckOptions,
    Config,
    SyncOptions,
    TargetConfig,
)
from assetsync.errors import ConfigError
from assetsync.frozen import replace
from assetsync.models import Visibility
from assetsync.prepare.classify import VisibilityRules

__all__ = ["CONFIG_FILENAME", "find_config", "load_config", "parse_config", "target_key"]

CONFIG_FILENAME = ".assetsync.toml"

# Sections their own features parse (`parse_config` imports each parser when it runs).
_FEATURE_SECTIONS = ("optimize", "watch", "shard")
# The command-line flag behind each override, so an error names what the user typed.
_FLAGS = {"project.environment": "--env", "project.env_file": "--env-file"}

_Origin = tuple[object, str]  # a raw value and where it came from (key, variable or flag)


def _fail(file: str, key: str, problem: str) -> ConfigError:
    return ConfigError(f"{file}: {key}: {problem}", key=key, file=file)


def _file_layer(data: Mapping[str, object], file: str) -> dict[tuple[str, str], _Origin]:
    """(section, key) -> (value, "[section] key") for every key of the file's own sections."""
    out: dict[tuple[str, str], _Origin] = {}
    for section, table in data.items():
        if section in _FEATURE_SECTIONS:
            continue
        if section not in KEYS:
            known = ", ".join(f"[{s}]" for s in [*KEYS, *_FEATURE_SECTIONS])
            raise _fail(file, f"[{section}]", f"unknown section (known: {known})")
        if not isinstance(table, Mapping):
            raise _fail(file, f"[{section}]", "expected a table")
        for key, value in table.items():
            if key not in KEYS[section]:
                known = ", ".join(KEYS[section])
                raise _fail(file, f"[{section}] {key}", f"unknown key (known: {known})")
            out[(section, key)] = (value, f"[{section}] {key}")
    return out


def _checked(layers: Mapping[tuple[str, str], _Origin], file: str) -> dict[str, dict[str, object]]:
    """Each key's checked value (or default); an error names where the bad value came from."""
    out: dict[str, dict[str, object]] = {}
    for section, keys in KEYS.items():
        out[section] = {}
        for key, (check, default) in keys.items():
            if (section, key) not in layers:
                if default is REQUIRED:
                    raise _fail(file, f"[{section}] {key}", "is required")
                out[section][key] = default
                continue
            value, origin = layers[(section, key)]
            try:
                out[section][key] = check(value)
            except Bad as exc:
                if origin.startswith("["):
                    raise _fail(file, origin, str(exc)) from None
                # A variable or a flag: the file is not to blame.
                raise env_error(origin, str(exc)) from None
    return out


def _layered(data: Mapping[str, object], environ: Mapping[str, str],
             overrides: Mapping[str, object], file: str) -> dict[str, dict[str, object]]:
    """Checked values per section, merged flag > env > file > default."""
    layers: dict[tuple[str, str], _Origin] = dict(_file_layer(data, file))
    layers.update(env_layer(environ))
    for dotted, value in overrides.items():
        section, _, key = dotted.partition(".")
        if key not in KEYS.get(section, {}):
            raise _fail(file, dotted, "unknown setting")
        layers[(section, key)] = (value, _FLAGS.get(dotted, f"--{key.replace('_', '-')}"))
    return _checked(layers, file)


def _sync_options(values: Mapping[str, Mapping[str, object]], root: Path, file: str
                  ) -> SyncOptions:
    raw = values["sync"]
    sync = SyncOptions(
        concurrency=cast(int, raw["concurrency"]),
        build_timeout_s=cast(float, raw["build_timeout_s"]),
        poll_interval_s=cast(float, raw["poll_interval_s"]),
        runtime=cast("str | None", raw["runtime"]),
        urls_file=cast("str | None", raw["urls_file"]),
        repair=cast(bool, raw["repair"]),
        remote_manifest=cast(bool, raw["remote_manifest"]),
    )
    runtime = values["project"]["runtime"]
    if runtime is not None:
        if sync.runtime is not None and sync.runtime != runtime:
            raise _fail(file, "[project] runtime", f"is {runtime!r} but [sync] runtime is "
                        f"{sync.runtime!r}: keep one of them")
        sync = replace(sync, runtime=str(runtime))
    if sync.urls_file is not None:
        sync = replace(sync, urls_file=str(root / sync.urls_file))
    return sync


def _section_table(data: Mapping[str, object], section: str, file: str) -> Mapping[str, object]:
    table = data.get(section, {})
    if not isinstance(table, Mapping):
        raise _fail(file, f"[{section}]", "expected a table")
    return table


def _with_features(config: Config, data: Mapping[str, object], file: str) -> Config:
    """`config` with its `[optimize]`, `[watch]` and `[shard]` sections parsed by their owners.

    Imported here, not at the top: the options modules are small, but a command that never
    reads a config (`--help`) should not load them.
    """
    from assetsync.media.options import parse_optimize_section, profile_warnings
    from assetsync.plan.shard_options import parse_shard_section
    from assetsync.watch.options import parse_watch_section

    optimize = parse_optimize_section(_section_table(data, "optimize", file), file=file)
    return replace(
        config,
        optimize=optimize,
        watch=parse_watch_section(_section_table(data, "watch", file), file=file),
        shard=parse_shard_section(_section_table(data, "shard", file), file=file),
        warnings=profile_warnings(optimize, file=file),
    )


def _folder(root: Path, value: object) -> str | None:
    """A `[project]` folder key: None stays None, "" stays "" (none), else an absolute path."""
    if value is None:
        return None
    if value == "":
        return ""
    return str((root / str(value)).resolve())


def parse_config(
    text: str,
    *,
    file: str,
    environ: Mapping[str, str],
    overrides: Mapping[str, object] | None = None,
) -> Config:
    """Parse and validate config text. Pure: no files, no `os.environ`.

    Args:
        text: the TOML text.
        file: the config file's path; relative paths resolve against its folder.
        environ: environment variables (credentials and the stand-ins in `config.env.ENV_KEYS`).
        overrides: values from command-line flags, keyed "section.key" (e.g. "project.environment").

    Raises:
        ConfigError: naming the file and the key (or the variable, or the flag) for anything
            unknown, missing or mistyped.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}", file=file) from None
    values = _layered(data, environ, overrides or {}, file)
    root = Path(file).parent.absolute()
    project = values["project"]
    source = (root / str(project["source"])).resolve()
    state_dir = (root / str(project["state_dir"])).resolve()
    if state_dir == source:
        raise _fail(file, "[project] state_dir", "must not be the source folder itself")
    tgt = values["target"]
    target = TargetConfig(
        api=str(tgt["api"]),
        api_url=cast("str | None", tgt["api_url"]),
        upload_url=cast("str | None", tgt["upload_url"]),
        region=cast("str | None", tgt["region"]),
        edge=cast("str | None", tgt["edge"]),
    )
    vis = values["visibility"]
    config = Config(
        config_path=Path(file).absolute(),
        root=root,
        source=source,
        service=str(project["service"]),
        environment=str(project["environment"]),
        state_dir=state_dir,
        functions=_folder(root, project["functions"]),
        # `{env}` makes it per environment (`.env.{env}`: `.env.prod` for `--env prod`).
        env_file=_folder(root, None if project["env_file"] is None else
                         str(project["env_file"]).replace("{env}", str(project["environment"]))),
        functions_node_modules=bool(project["functions_node_modules"]),
        target=target,
        # The embedded emulator has its own fixed account: Twilio variables meant for other
        # tools (even half-set ones) must not stop a local run.
        credentials=None if target.api == "local" else read_credentials(environ),
        visibility=VisibilityRules(
            default=cast(Visibility, vis["default"]),
            protected=cast("tuple[str, ...]", vis["protected"]),
            private=cast("tuple[str, ...]", vis["private"]),
        ),
        ignore=cast("tuple[str, ...]", values["ignore"]["patterns"]),
        allow_secrets=cast("tuple[str, ...]", values["publish"]["allow_secrets"]),
        sync=_sync_options(values, root, file),
        check=CheckOptions(strict=bool(values["check"]["strict"])),
    )
    return _with_features(config, data, file)


def find_config(start: Path) -> Path | None:
    """The `.assetsync.toml` in `start` or the nearest folder above it, as git finds `.git`.

    The search stops at the filesystem root, and after the top of a git work tree (a folder
    holding `.git`): a config outside the repository belongs to another project.
    """
    folder = start.absolute()
    while True:
        candidate = folder / CONFIG_FILENAME
        if candidate.is_file():
            return candidate
        if (folder / ".git").exists() or folder.parent == folder:
            return None
        folder = folder.parent


def load_config(
    path: Path | None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> Config:
    """Read and parse the config file: `path`, or (None) the nearest `.assetsync.toml` at or
    above the working folder (`find_config`). The environment is read here, once:
    `os.environ` unless `environ` is given.
    """
    if path is None:
        found = find_config(Path.cwd())
        if found is None:
            here = Path.cwd() / CONFIG_FILENAME
            raise ConfigError(
                f"{here}: no such config file, here or in any folder above; "
                "run `assetsync init` in the project's top folder to create one", file=str(here))
        file = found
    else:
        file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such config file; check the -c path",
                          file=str(file)) from None
    except OSError as exc:  # the reason alone: str(exc) would add "[Errno 21]" and the path
        raise ConfigError(f"{file}: cannot read config ({exc.strerror or exc}); check the -c "
                          "path", file=str(file)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{file}: cannot read config: not UTF-8 text ({exc.reason} at byte "
                          f"{exc.start})", file=str(file)) from None
    # The one place the process environment is read; everything below gets values.
    return parse_config(text, file=str(file), environ=os.environ if environ is None else environ,
                        overrides=overrides)


def target_key(config: Config) -> str:
    """A stable key for "this API endpoint and account", used to file remote state.

    Never contains a secret: the account SID is an identifier, not a credential.
    """
    t = config.target
    if t.api == "local":
        return "local"
    account = config.credentials.account_sid if config.credentials else "-"
    where = "|".join(x or "" for x in (t.api, t.api_url, t.upload_url, t.region, t.edge))
    return f"{where}|{account}"
