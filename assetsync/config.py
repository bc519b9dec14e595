"""The `.assetsync.toml` configuration: every key, its type, its default, and where values come
from (flag > environment > file > default). `parse_config` is pure; `load_config` reads the file.

Sections owned by other modules (`[optimize]`, `[watch]`, `[shard]`) are parsed by those
modules' `parse_<name>_section` functions, imported lazily.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import cast

from assetsync.prepare.classify import VisibilityRules
from assetsync.errors import ConfigError
from assetsync.scan.globs import validate_glob
from assetsync.limits import RUNTIMES
from assetsync.models import Visibility

__all__ = [
    "CONFIG_FILENAME",
    "Config",
    "Credentials",
    "SyncOptions",
    "TargetConfig",
    "load_config",
    "parse_config",
    "target_key",
]

log = logging.getLogger(__name__)

CONFIG_FILENAME = ".assetsync.toml"

# Twilio: Service UniqueName <= 50 characters and part of the domain (api-contract.md §3.1);
# an environment's domain suffix <= 16 URL-friendly characters (§3.2).
_SERVICE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,49}\Z")
_ENVIRONMENT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,15}\Z")
_ACCOUNT_SID_RE = re.compile(r"AC[0-9a-fA-F]{32}\Z")


@dataclass(frozen=True, slots=True)
class Credentials:
    """HTTP Basic credentials for Twilio; `repr` never shows the secret."""

    account_sid: str
    username: str
    password: str

    def __repr__(self) -> str:
        return (
            f"Credentials(account_sid={self.account_sid!r}, username={self.username!r}, "
            "password=<hidden>)"
        )

    __str__ = __repr__


@dataclass(frozen=True, slots=True)
class TargetConfig:
    """Where to publish: `api` is "local" (embedded emulator), "twilio", or an http(s) URL."""

    api: str = "local"
    api_url: str | None = None
    upload_url: str | None = None
    region: str | None = None
    edge: str | None = None


@dataclass(frozen=True, slots=True)
class SyncOptions:
    """`[sync]`: how the engine talks to the API."""

    concurrency: int = 10
    build_timeout_s: float = 300.0
    poll_interval_s: float = 0.5
    runtime: str | None = None
    urls_file: str | None = None


@dataclass(frozen=True, slots=True)
class Config:
    """A validated configuration; paths are absolute."""

    config_path: Path
    root: Path
    source: Path
    service: str
    environment: str
    state_dir: Path
    # The functions folder: None = the `functions` folder beside the source if there is one,
    # "" = none; `env_file`: the .env for the environment's Variables (None: the Toolkit's).
    functions: str | None = None
    env_file: str | None = None
    target: TargetConfig = TargetConfig()
    credentials: Credentials | None = None
    visibility: VisibilityRules = VisibilityRules()
    ignore: tuple[str, ...] = ()
    sync: SyncOptions = SyncOptions()
    optimize: object | None = None
    watch: object | None = None
    shard: object | None = None
    extra_sections: Mapping[str, Mapping[str, object]] = field(
        default_factory=lambda: MappingProxyType({})
    )

    def require_credentials(self) -> Credentials:
        """The credentials, or a ConfigError saying which variables to set."""
        if self.credentials is None:
            raise ConfigError(
                "no Twilio credentials: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN "
                "(or TWILIO_API_KEY and TWILIO_API_SECRET with TWILIO_ACCOUNT_SID)",
                key="credentials",
                file=str(self.config_path),
            )
        return self.credentials


# --- key table -------------------------------------------------------------------------------

_Check = Callable[[object], object]  # returns the converted value or raises _Bad


class _Bad(Exception):
    """A value failed its check; the message says what was expected."""


def _string(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Bad("expected a non-empty string")
    return value.strip()


def _opt_string(value: object) -> str | None:
    return None if value is None else _string(value)


def _opt_folder(value: object) -> str | None:
    """A folder, or "" for none (`functions = ""` deploys no functions)."""
    if value == "":
        return ""
    return _opt_string(value)


def _matching(regex: re.Pattern[str], what: str) -> _Check:
    def check(value: object) -> str:
        text = _string(value)
        if not regex.match(text):
            raise _Bad(f"expected {what}, got {text!r}")
        return text

    return check


def _opt_runtime(value: object) -> str | None:
    runtime = _opt_string(value)
    if runtime is not None and runtime not in RUNTIMES:
        raise _Bad(f"unknown runtime {runtime!r}: use one of {', '.join(RUNTIMES)}")
    return runtime


def _url(value: object) -> str | None:
    if value is None:
        return None
    text = _string(value)
    if not text.startswith(("http://", "https://")):
        raise _Bad(f"expected an http:// or https:// URL, got {text!r}")
    return text.rstrip("/")


def _api(value: object) -> str:
    text = _string(value)
    if text in ("local", "twilio"):
        return text
    if text.startswith(("http://", "https://")):
        return text.rstrip("/")
    raise _Bad(f'expected "local", "twilio" or an http(s):// URL, got {text!r}')


def _globs(value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise _Bad("expected a list of glob strings")
    out = []
    for item in value:
        problem = validate_glob(item)
        if problem is not None:
            raise _Bad(f"invalid glob {item!r}: {problem}")
        out.append(str(item).strip())
    return tuple(out)


def _visibility(value: object) -> Visibility:
    try:
        return Visibility(_string(value).lower())
    except ValueError:
        raise _Bad(f'expected "public", "protected" or "private", got {value!r}') from None


def _int_range(low: int, high: int) -> _Check:
    def check(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise _Bad(f"expected a whole number from {low} to {high}")
        return value

    return check


def _positive_seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise _Bad("expected a positive number of seconds")
    return float(value)


# section -> key -> (check, default). A default of _REQUIRED must come from somewhere.
_REQUIRED = object()
_KEYS: dict[str, dict[str, tuple[_Check, object]]] = {
    "project": {
        "source": (_string, _REQUIRED),
        "service": (_matching(_SERVICE_RE, "1-50 letters, digits or '-'"), _REQUIRED),
        "environment": (_matching(_ENVIRONMENT_RE, "1-16 letters, digits or '-'"), "dev"),
        "state_dir": (_string, ".assetsync"),
        # The Serverless Toolkit's side of a service (docs/functions.md): None finds the
        # `functions` folder beside the source, "" turns functions off.
        "functions": (_opt_folder, None),
        "env_file": (_opt_string, None),
        "runtime": (_opt_runtime, None),
    },
    "target": {
        "api": (_api, "local"),
        "api_url": (_url, None),
        "upload_url": (_url, None),
        "region": (_opt_string, None),
        "edge": (_opt_string, None),
    },
    "visibility": {
        "default": (_visibility, Visibility.PUBLIC),
        "protected": (_globs, ()),
        "private": (_globs, ()),
    },
    "ignore": {"patterns": (_globs, ())},
    "sync": {
        "concurrency": (_int_range(1, 64), 10),
        "build_timeout_s": (_positive_seconds, 300.0),
        "poll_interval_s": (_positive_seconds, 0.5),
        "runtime": (_opt_runtime, None),
        "urls_file": (_opt_string, None),
    },
}

# Environment variables that stand in for file keys (flag > env > file > default).
_ENV_KEYS = {
    "ASSETSYNC_API_URL": "target.api_url",
    "ASSETSYNC_UPLOAD_URL": "target.upload_url",
    "TWILIO_REGION": "target.region",
    "TWILIO_EDGE": "target.edge",
}

# Sections parsed by their owning modules: section -> (candidate modules, function). The
# lightest module that has the parser is tried first (`plan` should not import watchdog).
# Each section's parser lives in its options module, which imports no more than it needs: the
# feature's own module (transform, with Pillow's and PyAV's wrappers; shard) is loaded only by
# the run that uses it.
_DELEGATED = {
    "optimize": (("assetsync.media.options",), "parse_optimize_section"),
    "watch": (("assetsync.watch.options",), "parse_watch_section"),
    "shard": (("assetsync.plan.shard_options",), "parse_shard_section"),
}


def _fail(file: str, key: str, problem: str) -> ConfigError:
    return ConfigError(f"{file}: {key}: {problem}", key=key, file=file)


def _delegated_parser(section: str) -> Callable[..., object] | None:
    module_names, func_name = _DELEGATED[section]
    for module_name in module_names:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        parser = getattr(module, func_name, None)
        if callable(parser):
            return parser  # type: ignore[no-any-return]
    return None


def _credentials(environ: Mapping[str, str], file: str) -> Credentials | None:
    sid = environ.get("TWILIO_ACCOUNT_SID", "").strip()
    token = environ.get("TWILIO_AUTH_TOKEN", "").strip()
    key = environ.get("TWILIO_API_KEY", "").strip()
    secret = environ.get("TWILIO_API_SECRET", "").strip()
    if not (sid or token or key or secret):
        return None
    if sid and not _ACCOUNT_SID_RE.match(sid):
        raise _fail(file, "TWILIO_ACCOUNT_SID", "expected 'AC' followed by 32 hex digits")
    if key or secret:
        missing = [
            n
            for n, v in (
                ("TWILIO_API_KEY", key),
                ("TWILIO_API_SECRET", secret),
                ("TWILIO_ACCOUNT_SID", sid),
            )
            if not v
        ]
        if missing:
            raise _fail(
                file,
                missing[0],
                "is not set; an API key needs TWILIO_API_KEY, "
                "TWILIO_API_SECRET and TWILIO_ACCOUNT_SID",
            )
        return Credentials(account_sid=sid, username=key, password=secret)
    if not (sid and token):
        missing_name = "TWILIO_AUTH_TOKEN" if sid else "TWILIO_ACCOUNT_SID"
        raise _fail(file, missing_name, "is not set; set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
    return Credentials(account_sid=sid, username=sid, password=token)


def _layered(
    data: Mapping[str, object],
    environ: Mapping[str, str],
    overrides: Mapping[str, object],
    file: str,
) -> dict[str, dict[str, object]]:
    """Checked values per section, merged flag > env > file > default."""
    layers: dict[str, dict[str, tuple[object, str]]] = {s: {} for s in _KEYS}
    for section, table in data.items():
        if section in _DELEGATED:
            continue
        if section not in _KEYS:
            known = ", ".join(f"[{s}]" for s in [*_KEYS, *_DELEGATED])
            raise _fail(file, f"[{section}]", f"unknown section (known: {known})")
        if not isinstance(table, Mapping):
            raise _fail(file, f"[{section}]", "expected a table")
        for key, value in table.items():
            if key not in _KEYS[section]:
                known = ", ".join(_KEYS[section])
                raise _fail(file, f"[{section}] {key}", f"unknown key (known: {known})")
            layers[section][key] = (value, f"[{section}] {key}")
    for name, dotted in _ENV_KEYS.items():
        if environ.get(name, "").strip():
            section, key = dotted.split(".")
            layers[section][key] = (environ[name].strip(), name)
    for dotted, value in overrides.items():
        section, _, key = dotted.partition(".")
        if key not in _KEYS.get(section, {}):
            raise _fail(file, dotted, "unknown setting")
        layers[section][key] = (value, f"--{key.replace('_', '-')}")
    out: dict[str, dict[str, object]] = {}
    for section, keys in _KEYS.items():
        out[section] = {}
        for key, (check, default) in keys.items():
            if key not in layers[section]:
                if default is _REQUIRED:
                    raise _fail(file, f"[{section}] {key}", "is required")
                out[section][key] = default
                continue
            value, origin = layers[section][key]
            try:
                out[section][key] = check(value)
            except _Bad as exc:
                raise _fail(file, origin, str(exc)) from None
    return out


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
        environ: environment variables (credentials and the overrides in `_ENV_KEYS`).
        overrides: values from command-line flags, keyed "section.key" (e.g. "project.environment").

    Raises:
        ConfigError: naming the file and the key, for anything unknown, missing or mistyped.
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
    sync = SyncOptions(**values["sync"])  # type: ignore[arg-type]
    runtime = project["runtime"]
    if runtime is not None:
        if sync.runtime is not None and sync.runtime != runtime:
            raise _fail(file, "[project] runtime", f"is {runtime!r} but [sync] runtime is "
                        f"{sync.runtime!r}: keep one of them")
        sync = replace(sync, runtime=str(runtime))
    functions = project["functions"]
    env_file = project["env_file"]
    if sync.urls_file is not None:
        sync = replace(sync, urls_file=str(root / sync.urls_file))

    delegated: dict[str, object | None] = {}
    extra: dict[str, Mapping[str, object]] = {}
    for section in _DELEGATED:
        table = data.get(section, {})
        if not isinstance(table, Mapping):
            raise _fail(file, f"[{section}]", "expected a table")
        parser = _delegated_parser(section)
        if parser is None:
            delegated[section] = None
            if section in data:
                extra[section] = MappingProxyType(dict(table))
        else:
            delegated[section] = parser(table, file=file)
    target = TargetConfig(**values["target"])  # type: ignore[arg-type]
    visibility = VisibilityRules(**values["visibility"])  # type: ignore[arg-type]
    return Config(
        config_path=Path(file).absolute(),
        root=root,
        source=source,
        service=str(project["service"]),
        environment=str(project["environment"]),
        state_dir=state_dir,
        functions=None if functions is None else ("" if functions == "" else
                                                  str((root / str(functions)).resolve())),
        env_file=None if env_file is None else str((root / str(env_file)).resolve()),
        target=target,
        # The embedded emulator has its own fixed account: Twilio variables meant for other
        # tools (even half-set ones) must not stop a local run.
        credentials=None if target.api == "local" else _credentials(environ, file),
        visibility=visibility,
        ignore=tuple(cast("list[str]", values["ignore"]["patterns"])),
        sync=sync,
        optimize=delegated["optimize"],
        watch=delegated["watch"],
        shard=delegated["shard"],
        extra_sections=MappingProxyType(extra),
    )


def load_config(
    path: Path | None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> Config:
    """Read and parse the config file (`./.assetsync.toml` when `path` is None)."""
    file = Path(path) if path is not None else Path.cwd() / CONFIG_FILENAME
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        hint = "run `assetsync init` to create one" if path is None else "check the -c path"
        raise ConfigError(f"{file}: no such config file; {hint}", file=str(file)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read config: {exc}", file=str(file)) from None
    return parse_config(
        text,
        file=str(file),
        environ=os.environ if environ is None else environ,
        overrides=overrides,
    )


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
