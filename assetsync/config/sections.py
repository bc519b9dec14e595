"""The config's own sections (`[project]`, `[target]`, `[visibility]`, `[ignore]`, `[publish]`,
`[sync]`): their value types, every key's check and default, and the `Config` value that holds
them all.

Pure: values in, values out. The sections owned by their features (`[optimize]`, `[watch]`,
`[shard]`) are typed here but parsed by their own modules (see `assetsync.config.load`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from assetsync.errors import ConfigError
from assetsync.frozen import field, frozen
from assetsync.limits import RUNTIMES
from assetsync.models import Visibility
from assetsync.prepare.classify import VisibilityRules
from assetsync.scan.globs import validate_glob

if TYPE_CHECKING:
    # Types only: each section's module is imported by the parse that needs it, so a command
    # that never reads the config (`--help`) does not pay for it.
    from assetsync.media.options import OptimizeOptions
    from assetsync.plan.shard_options import ShardOptions
    from assetsync.watch.options import WatchOptions

__all__ = [
    "KEYS",
    "REQUIRED",
    "Bad",
    "CheckOptions",
    "Config",
    "Credentials",
    "SyncOptions",
    "TargetConfig",
]

# Twilio: Service UniqueName <= 50 characters and part of the domain (api-contract.md §3.1);
# an environment's domain suffix <= 16 URL-friendly characters (§3.2).
_SERVICE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,49}\Z")
_ENVIRONMENT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,15}\Z")


@frozen
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


@frozen
class TargetConfig:
    """Where to publish: `api` is "local" (embedded emulator), "twilio", or an http(s) URL.

    Every value is final: the environment variables that stand in for these keys
    (`ASSETSYNC_API_URL`, `TWILIO_REGION`, ...) were applied when the config was read.
    """

    api: str = "local"
    api_url: str | None = None
    upload_url: str | None = None
    region: str | None = None
    edge: str | None = None


@frozen
class SyncOptions:
    """`[sync]`: how the engine talks to the API."""

    concurrency: int = 10
    build_timeout_s: float = 300.0
    poll_interval_s: float = 0.5
    runtime: str | None = None
    urls_file: str | None = None
    # Keep one Asset/Function per name, deleting the others (`sync --repair`).
    repair: bool = False
    # Each build carries its manifest as a private Function (assetsync.state.remote_manifest).
    remote_manifest: bool = True


@frozen
class CheckOptions:
    """`[check]`: what `sync` does with the offline reference check's errors
    (`assetsync.check`): print them as warnings, or (`strict`) refuse before any request."""

    strict: bool = False


# Each feature section's defaults, its module imported only when a `Config` is made.
def _default_optimize() -> OptimizeOptions:
    from assetsync.media.options import OptimizeOptions

    return OptimizeOptions()


def _default_watch() -> WatchOptions:
    from assetsync.watch.options import WatchOptions

    return WatchOptions()


def _default_shard() -> ShardOptions:
    from assetsync.plan.shard_options import ShardOptions

    return ShardOptions()


@frozen
class Config:
    """A validated configuration; paths are absolute.

    `optimize`, `watch` and `shard` are the feature sections, parsed by their own modules
    (their defaults when the file has no such section).
    `warnings` are problems that do not stop a run (a profile name that is no channel), one
    line each, for the caller to show.
    """

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
    # Deploy the functions folder's own node_modules/ as functions (as twilio-run does).
    functions_node_modules: bool = False
    target: TargetConfig = TargetConfig()
    credentials: Credentials | None = None
    visibility: VisibilityRules = field(default_factory=VisibilityRules)
    ignore: tuple[str, ...] = ()
    # `[publish] allow_secrets`: globs of files published even though they hold a credential.
    allow_secrets: tuple[str, ...] = ()
    sync: SyncOptions = SyncOptions()
    check: CheckOptions = CheckOptions()
    optimize: OptimizeOptions = field(default_factory=_default_optimize)
    watch: WatchOptions = field(default_factory=_default_watch)
    shard: ShardOptions = field(default_factory=_default_shard)
    warnings: tuple[str, ...] = ()

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

Check = Callable[[object], object]  # returns the converted value or raises Bad


class Bad(Exception):
    """A value failed its check; the message says what was expected."""


def _string(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise Bad("expected a non-empty string")
    return value.strip()


def _opt_string(value: object) -> str | None:
    return None if value is None else _string(value)


def _opt_folder(value: object) -> str | None:
    """A folder, or "" for none (`functions = ""` deploys no functions)."""
    if value == "":
        return ""
    return _opt_string(value)


def _boolean(value: object) -> bool:
    if not isinstance(value, bool):
        raise Bad("expected true or false")
    return value


def _matching(regex: re.Pattern[str], what: str) -> Check:
    def check(value: object) -> str:
        text = _string(value)
        if not regex.match(text):
            raise Bad(f"expected {what}, got {text!r}")
        return text

    return check


def _opt_runtime(value: object) -> str | None:
    runtime = _opt_string(value)
    if runtime is not None and runtime not in RUNTIMES:
        raise Bad(f"unknown runtime {runtime!r}: use one of {', '.join(RUNTIMES)}")
    return runtime


def _url(value: object) -> str | None:
    if value is None:
        return None
    text = _string(value)
    if not text.startswith(("http://", "https://")):
        raise Bad(f"expected an http:// or https:// URL, got {text!r}")
    return text.rstrip("/")


def _api(value: object) -> str:
    text = _string(value)
    if text in ("local", "twilio"):
        return text
    if text.startswith(("http://", "https://")):
        return text.rstrip("/")
    raise Bad(f'expected "local", "twilio" or an http(s):// URL, got {text!r}')


def _globs(value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise Bad("expected a list of glob strings")
    out = []
    for item in value:
        problem = validate_glob(item)
        if problem is not None:
            raise Bad(f"invalid glob {item!r}: {problem}")
        out.append(str(item).strip())
    return tuple(out)


def _visibility(value: object) -> Visibility:
    try:
        return Visibility(_string(value).lower())
    except ValueError:
        raise Bad(f'expected "public", "protected" or "private", got {value!r}') from None


def _int_range(low: int, high: int) -> Check:
    def check(value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise Bad(f"expected a whole number from {low} to {high}")
        return value

    return check


def _positive_seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise Bad("expected a positive number of seconds")
    return float(value)


# section -> key -> (check, default). A default of REQUIRED must come from somewhere.
REQUIRED = object()
KEYS: dict[str, dict[str, tuple[Check, object]]] = {
    "project": {
        "source": (_string, REQUIRED),
        "service": (_matching(_SERVICE_RE, "1-50 letters, digits or '-'"), REQUIRED),
        "environment": (_matching(_ENVIRONMENT_RE, "1-16 letters, digits or '-'"), "dev"),
        "state_dir": (_string, ".assetsync"),
        # The Serverless Toolkit's side of a service (docs/functions.md): None finds the
        # `functions` folder beside the source, "" turns functions off.
        "functions": (_opt_folder, None),
        "env_file": (_opt_string, None),
        "runtime": (_opt_runtime, None),
        # twilio-run deploys functions/node_modules/**.js as functions; assetsync skips it.
        "functions_node_modules": (_boolean, False),
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
    # Files the secret check (assetsync.prepare.secret_check) lets through: the user vouches
    # that what looks like a credential in them is meant to be published.
    "publish": {"allow_secrets": (_globs, ())},
    "sync": {
        "concurrency": (_int_range(1, 64), 10),
        "build_timeout_s": (_positive_seconds, 300.0),
        "poll_interval_s": (_positive_seconds, 0.5),
        "runtime": (_opt_runtime, None),
        "urls_file": (_opt_string, None),
        "repair": (_boolean, False),
        "remote_manifest": (_boolean, True),
    },
    # A broken reference (`assetsync check`) refuses the sync instead of warning.
    "check": {"strict": (_boolean, False)},
}
