"""A Toolkit project synced while answers get lost, and what the emulator then holds: duplicate
names, identical content uploaded twice, and whether the served files equal the folder.

Shared by tests/sync/test_exactly_once.py and bench/bench_lost_answers.py.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx

from assetsync.config import Config, load_config
from assetsync.emulator.state import EmulatorState
from assetsync.remote.client import RetryPolicy, ServerlessClient, resolve_endpoints
from assetsync.remote.wire import Timeouts

# One spec per fault mode: 20% of every POST (main and upload host) loses its answer.
LOST_MODES = {"fin": "drop-after", "rst": "reset-after", "timeout": "timeout-after"}
SERVICE = "lost"
# Creates a first sync makes only one of: tests and the benchmark make the first of each lose
# its answer, since a 20% rule may spare them.
SINGLE_CREATES = ("/v1/Services", "/v1/Services/*/Environments", "/v1/Services/*/Builds",
                  "/v1/Services/*/Environments/*/Deployments",
                  "/v1/Services/*/Environments/*/Variables", "/v1/Services/*/Functions")
# Short enough that a hung request costs little; a request slow for another reason on a loaded
# machine is then just one more lost answer.
TIMEOUT_S = 1.0


def _png(index: int) -> bytes:
    from PIL import Image

    image = Image.new("RGB", (8 + index % 5, 8), (index * 37 % 256, index * 91 % 256, 80))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def write_project(root: Path, url: str, *, files: int = 240, images: int = 12,
                  functions: int = 6) -> Path:
    """A Toolkit project under `root` publishing to `url`: `files` small text files and
    `images` PNGs in `site/`, `functions` functions, a package.json and a .env. Returns the
    config's path."""
    site = root / "site"
    for i in range(files):
        path = site / f"d{i % 8}" / f"f{i:04d}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"file {i}\n" * (1 + i % 7), encoding="utf-8")
    for i in range(images):
        (site / "img").mkdir(parents=True, exist_ok=True)
        (site / "img" / f"i{i:02d}.png").write_bytes(_png(i))
    (site / "index.html").write_text("<h1>lost answers</h1>\n", encoding="utf-8")
    fn = root / "functions"
    fn.mkdir(parents=True, exist_ok=True)
    for i in range(functions):
        (fn / f"fn{i}.js").write_text(
            f"exports.handler = (c, e, cb) => cb(null, {i});\n", encoding="utf-8")
    (root / "package.json").write_text(json.dumps({"dependencies": {"lodash": "^4.17.21"}}),
                                       encoding="utf-8")
    (root / ".env").write_text("GREETING=hello\nOTHER=there\nTHIRD=3\n", encoding="utf-8")
    config = root / ".assetsync.toml"
    config.write_text(
        "[project]\n"
        'source = "site"\n'
        f'service = "{SERVICE}"\n'
        'environment = "dev"\n'
        "[target]\n"
        f'api = "{url}"\n'
        "[sync]\n"
        "poll_interval_s = 0.05\n"
        "[optimize]\n"
        "lossless = false\n",  # publish the images as they are, to compare what is served
        encoding="utf-8",
    )
    return config


def load(config_path: Path, state: EmulatorState) -> Config:
    """The project's config with the emulator's credentials."""
    return load_config(config_path, environ={"TWILIO_ACCOUNT_SID": state.account_sid,
                                             "TWILIO_AUTH_TOKEN": state.auth_token})


def lossy_client(config: Config, timeout_s: float = TIMEOUT_S) -> ServerlessClient:
    """A client whose timeouts are `timeout_s` and whose retry waits are milliseconds."""
    api_base, upload_base = resolve_endpoints(config.target)
    return ServerlessClient(
        api_base=api_base, upload_base=upload_base, credentials=config.require_credentials(),
        timeout=Timeouts(connect=timeout_s, idle=timeout_s),
        retry=RetryPolicy(base_delay_s=0.01, max_delay_s=0.05, max_attempts=12),
        max_concurrency=config.sync.concurrency)


@dataclass(frozen=True, slots=True)
class Holdings:
    """What the service holds after the syncs."""

    assets: int
    functions: int
    duplicate_assets: int  # Assets beyond the first of their name
    duplicate_functions: int
    versions: int
    duplicate_versions: int  # versions of one Asset/Function with content another one has
    duplicate_bytes: int
    builds: int
    variables: int

    def as_json(self) -> dict[str, int]:
        """The figures as a JSON object."""
        return {name: getattr(self, name) for name in self.__slots__}


def holdings(state: EmulatorState, service: str = SERVICE) -> Holdings:
    """Count what `service` holds in the emulator's store."""
    store = state.store
    svc = store.find("service", None, "unique_name", service)
    assert svc is not None, f"no service {service}"
    figures: dict[str, int] = Counter()
    for kind in ("asset", "function"):
        owners = store.children(kind, svc.sid)
        names = Counter(o.data["friendly_name"] for o in owners)
        figures[f"{kind}s"] = len(owners)
        figures[f"duplicate_{kind}s"] = sum(n - 1 for n in names.values())
        for owner in owners:
            versions = store.children(f"{kind}_version", owner.sid)
            figures["versions"] += len(versions)
            seen: set[str] = set()
            for v in versions:
                if v.data["digest"] in seen:
                    figures["duplicate_versions"] += 1
                    figures["duplicate_bytes"] += int(v.data["size"])
                seen.add(v.data["digest"])
    figures["builds"] = len(store.children("build", svc.sid))
    figures["variables"] = sum(len(store.children("variable", env.sid))
                               for env in store.children("environment", svc.sid))
    return Holdings(**{name: figures[name] for name in Holdings.__slots__})


def served_mismatches(url: str, domain: str, site: Path) -> list[str]:
    """The folder's files that the environment does not serve byte for byte."""
    wrong = []
    with httpx.Client(base_url=url, timeout=30) as http:
        for path in sorted(p for p in site.rglob("*") if p.is_file()):
            rel = path.relative_to(site).as_posix()
            got = http.get(f"/_serve/{domain}/{rel}")
            if got.status_code != 200 or got.content != path.read_bytes():
                wrong.append(rel)
    return wrong
