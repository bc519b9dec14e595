"""`assetsync init`: write a commented `.assetsync.toml` template (never overwrites)."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

from assetsync.config import CONFIG_FILENAME, find_config
from assetsync.errors import ConfigError

__all__ = ["handler", "register", "render_template"]

# Folders the Serverless Toolkit looks in for assets, then common build outputs.
_SOURCE_CANDIDATES = ("assets", "static", "public", "dist")

TEMPLATE = """\
# assetsync configuration. Every key: docs/foundation.md.
# Values come from, in order: command-line flags, environment variables, this file, defaults.

[project]
source = "{source}"            # the folder to publish (relative to this file)
service = "{service}"          # Twilio Service unique name (1-50 letters, digits, '-')
environment = "dev"            # environment unique name and domain suffix (1-16 characters)
state_dir = ".assetsync"       # local state (SQLite); keep it out of version control
{functions}

[target]
api = "local"                  # "local" = embedded emulator, "twilio" = the real API, or a URL
# api_url = "https://serverless.twilio.com/v1"           # or env ASSETSYNC_API_URL
# upload_url = "https://serverless-upload.twilio.com/v1" # or env ASSETSYNC_UPLOAD_URL
# region = "au1"               # or env TWILIO_REGION
# edge = "sydney"              # or env TWILIO_EDGE
# Credentials are read from the environment only: TWILIO_ACCOUNT_SID + TWILIO_AUTH_TOKEN,
# or TWILIO_API_KEY + TWILIO_API_SECRET with TWILIO_ACCOUNT_SID.

[visibility]
default = "public"             # public | protected | private
# File names win first, as in the Serverless Toolkit: logo.protected.png, key.private.json.
protected = []                 # globs, e.g. ["audio/ivr/**"]: only Twilio can fetch them
private = []                   # globs, e.g. ["data/**"]: for Functions only, never served

[ignore]
# Added to the built-in deny list (.env*, *.pem, *.key, .git/, editor swap files, ...).
patterns = []                  # e.g. ["*.psd", "drafts/"]

# [sync]
# concurrency = 10             # parallel uploads
# build_timeout_s = 300

# More sections, each documented with its feature:
# [optimize]  lossless image optimization and MMS/WhatsApp variants (docs/media.md)
# [watch]     `assetsync watch` debounce and build budget (docs/watch.md)
# [shard]     spreading more files than one service may hold (docs/sharding.md)
"""


# The Serverless Toolkit's side of a project (docs/functions.md): found, it is deployed with
# the assets; not found, the lines stay as comments to say the feature exists.
_FUNCTIONS_FOUND = """\
functions = "{folder}"         # the Toolkit's functions folder, deployed with the assets
# env_file = ".env.{{env}}"      # its Variables (default: the .env beside the functions folder;
#                              # {{env}}: one file per environment, .env.dev, .env.prod)
# runtime = "node22"           # default: the live build's, else Twilio's current default"""
_FUNCTIONS_ABSENT = """\
# functions = "functions"      # a Serverless Toolkit functions folder to deploy with the assets
# env_file = ".env.{env}"      # its Variables (default: the .env beside the functions folder;
#                              # {env}: one file per environment, .env.dev, .env.prod)"""


def _functions_lines(root: Path, source: str) -> str:
    """`[project]`'s functions lines: the folder `sync` would find (the Toolkit's `functions`
    beside the source), else twilio-run's other name `src` when it holds `.js` files."""
    parent = (root / source).parent
    for name in ("functions", "src"):
        folder = parent / name
        if folder.is_dir() and folder != root / source and (
                name == "functions" or any(folder.rglob("*.js"))):
            rel = os.path.relpath(folder, root).replace(os.sep, "/")
            return _FUNCTIONS_FOUND.format(folder=rel)
    return _FUNCTIONS_ABSENT


def _package_name(root: Path) -> str | None:
    """package.json's `name`: twilio-run's default service name for a Toolkit project
    (`getServiceNameFromFlags`, twilio-run `src/config/utils/service-name.ts`)."""
    try:
        name = json.loads((root / "package.json").read_text(encoding="utf-8")).get("name")
    except (OSError, ValueError, AttributeError):
        return None
    return name if isinstance(name, str) else None


def _default_source(root: Path) -> str:
    for name in _SOURCE_CANDIDATES:
        if (root / name).is_dir():
            return name
    return _SOURCE_CANDIDATES[0]


def _default_service(root: Path) -> str:
    raw = _package_name(root) or root.resolve().name
    name = re.sub(r"[^A-Za-z0-9-]+", "-", raw).strip("-")[:50]
    return name or "assets"


def render_template(root: Path, *, source: str | None = None, service: str | None = None) -> str:
    """The template text for a project folder."""
    source = source or _default_source(root)
    return TEMPLATE.format(source=source, service=service or _default_service(root),
                           functions=_functions_lines(root, source))


def handler(args: argparse.Namespace) -> int:
    """Run `assetsync init`."""
    path = Path(args.config) if args.config else Path.cwd() / CONFIG_FILENAME
    above = None if args.config else find_config(Path.cwd())
    if above is not None and above != path:
        # Inside a configured project every command already finds that config (as git finds
        # .git): a second one here would split the project.
        raise ConfigError(f"{above} already exists and covers this folder; edit it, or pass "
                          "-c PATH to create a separate config", file=str(above))
    text = render_template(path.parent, source=args.source, service=args.service)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise ConfigError(
            f"{path} already exists; edit it, or remove it and run `assetsync init` again",
            file=str(path),
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot create: {exc.strerror}", file=str(path)) from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    sys.stdout.write(f"wrote {path}; next: `assetsync plan`\n")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `assetsync init`."""
    parser = subparsers.add_parser(
        "init", help="write a commented .assetsync.toml template (never overwrites)"
    )
    parser.add_argument(
        "--source", help="folder to publish (default: assets, static, public or dist)"
    )
    parser.add_argument("--service", help="service unique name (default: package.json's name, "
                        "else this folder's name)")
    parser.set_defaults(func=handler)
