"""Helpers for the model-based agreement test (tests/sync/test_model_agreement.py): a project driven
through the CLI in-process, what the emulator really serves for an environment (over HTTP), the
folder's expected publish set worked out independently of assetsync, and another tool deploying
over assetsync through the emulator's API."""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import xxhash
from PIL import Image

from assetsync.cli import main
from assetsync.emulator.serving import twilio_signature
from tests.conftest import wait_for_build
from tests.sync_harness import credentials_env

SERVICE = "site"
FOREIGN_PATH = "/zz-foreign.txt"  # a path assetsync never publishes: only "another tool" does
IMAGE_PROFILE = "mms/"  # sources under it get an MMS variant (the config below)


def digest(data: bytes) -> str:
    """assetsync's digest of some bytes (`xxh3_128:<hex>`)."""
    return "xxh3_128:" + xxhash.xxh3_128(data).hexdigest()


def png_bytes(seed: int, size: int = 24) -> bytes:
    """A small noisy RGB PNG, the same for the same seed (Pillow's plain encoder, so the
    lossless pass has something to save)."""
    rng = random.Random(seed)
    image = Image.new("RGB", (size, size))
    image.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256))
                   for _ in range(size * size)])
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=1)
    return out.getvalue()


def same_pixels(source: bytes, served: bytes) -> bool:
    """The served bytes decode to the source image's size and RGBA pixels (what the lossless
    pass promises)."""
    try:
        with Image.open(io.BytesIO(served)) as image:
            got = image.size, image.convert("RGBA").tobytes()
    except OSError:  # Pillow's UnidentifiedImageError: not an image at all
        return False
    with Image.open(io.BytesIO(source)) as image:
        return got == (image.size, image.convert("RGBA").tobytes())


@dataclass(frozen=True)
class Outcome:
    """One CLI command: exit code, stdout, stderr and stdout's JSON document (if it is one)."""

    argv: tuple[str, ...]
    code: int
    out: str
    err: str

    @property
    def doc(self) -> Any:
        text = self.out.strip()
        return json.loads(text) if text.startswith("{") else None

    def one_line_error(self) -> bool:
        """A failure is explained without a traceback."""
        return "Traceback" not in self.err and "Traceback" not in self.out


class Project:
    """A project folder (`site/` + `.assetsync.toml`) publishing to the emulator: text files,
    a protected and a private file by the Toolkit's name markers, PNGs (an MMS variant under
    `mms/`)."""

    def __init__(self, root: Path, emulator: Any) -> None:
        self.root = root
        self.emulator = emulator
        self.site = root / "site"
        self.site.mkdir(parents=True)
        self.config = root / ".assetsync.toml"
        self.config.write_text(
            "[project]\n"
            'source = "site"\n'
            f'service = "{SERVICE}"\n'
            'environment = "dev"\n'
            "[target]\n"
            f'api = "{emulator.url}"\n'
            "[sync]\n"
            "poll_interval_s = 0.05\n"
            "[optimize.profiles.mms]\n"
            f'globs = ["{IMAGE_PROFILE}**"]\n',
            encoding="utf-8",
        )

    def cli(self, *argv: str) -> Outcome:
        """`assetsync -c CONFIG ARGV...` in-process, its output captured."""
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["-c", str(self.config), *argv])
        return Outcome(tuple(argv), code, out.getvalue(), err.getvalue())

    def files(self) -> dict[str, bytes]:
        """Every file of the source folder by its relative path."""
        return {p.relative_to(self.site).as_posix(): p.read_bytes()
                for p in sorted(self.site.rglob("*")) if p.is_file()}

    def write(self, rel: str, data: bytes) -> None:
        path = self.site / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def delete(self, rel: str) -> None:
        (self.site / rel).unlink()

    def rename(self, rel: str, to: str) -> None:
        target = self.site / to
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.site / rel, target)

    def interrupted_sync(self, fault: tuple[str, str], wait_for: str) -> tuple[int, str]:
        """`assetsync sync --full` as a real process, with `fault` (method, path glob) delaying
        its requests, and Ctrl-C (SIGINT) once its progress shows `wait_for`: exit code and
        stderr."""
        method, path = fault
        self.emulator.state.faults.add(method, path, "delay", count=1000, delay_s=0.4)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "ASSETSYNC_"))}
        env.update(credentials_env(self.emulator))
        try:
            with subprocess.Popen(
                [sys.executable, "-m", "assetsync", "-c", str(self.config), "-v", "sync",
                 "--full"],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            ) as proc:
                assert proc.stderr is not None
                seen = []
                for line in proc.stderr:
                    seen.append(line)
                    if line.startswith(wait_for):
                        proc.send_signal(signal.SIGINT)
                        break
                rest = proc.stderr.read()
                return proc.wait(timeout=60), "".join(seen) + rest
        finally:
            self.emulator.state.faults.clear()


# --- what the emulator serves -------------------------------------------------------------------


@dataclass(frozen=True)
class ServedFile:
    visibility: str
    data: bytes


@dataclass(frozen=True)
class Served:
    """What an environment serves: its live build's assets by path (public ones fetched over
    HTTP, protected ones with a valid signature, private ones from the emulator's store after
    checking they are not served), its function paths, and the SIDs."""

    environment_sid: str | None = None
    build_sid: str | None = None
    files: dict[str, ServedFile] = field(default_factory=dict)
    functions: frozenset[str] = frozenset()
    asset_versions: tuple[str, ...] = ()
    function_versions: tuple[str, ...] = ()


def _get(http: httpx.Client, path: str) -> Any:
    response = http.get(path)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return response.json()


def environment(http: httpx.Client, suffix: str) -> tuple[str, dict[str, Any]] | None:
    """(service SID, environment body) of the site's environment with this domain suffix."""
    service = _get(http, f"/v1/Services/{SERVICE}")
    if service is None:
        return None
    envs = _get(http, f"/v1/Services/{service['sid']}/Environments?PageSize=100")
    for env in envs["environments"]:
        if env["domain_suffix"] == suffix:
            return str(service["sid"]), env
    return None


def served(emulator: Any, http: httpx.Client, suffix: str,
           probe: set[str] | frozenset[str] = frozenset()) -> Served:
    """What the `suffix` environment serves, asked through `http` (the emulator's account);
    every path in `probe` the live build does not hold must answer 404."""
    found = environment(http, suffix)
    if found is None or not found[1]["build_sid"]:
        return Served(environment_sid=found[1]["sid"] if found else None)
    service_sid, env = found
    build = _get(http, f"/v1/Services/{service_sid}/Builds/{env['build_sid']}")
    assert build is not None and build["status"] == "completed", build
    domain = env["domain_name"]
    files: dict[str, ServedFile] = {}
    for version in build["asset_versions"]:
        path, visibility = version["path"], version["visibility"].lower()
        assert path not in files, f"the live build holds {path} twice: {build['sid']}"
        files[path] = ServedFile(visibility, _fetch(emulator, http, domain, path, visibility,
                                                    version["sid"]))
    for path in set(probe) - set(files):
        answer = http.get(f"/_serve/{domain}{path}")
        assert answer.status_code == 404, f"{path} is not in the live build, yet answers " \
            f"{answer.status_code}"
    return Served(
        environment_sid=env["sid"], build_sid=build["sid"], files=files,
        functions=frozenset(v["path"] for v in build["function_versions"]),
        asset_versions=tuple(sorted(v["sid"] for v in build["asset_versions"])),
        function_versions=tuple(sorted(v["sid"] for v in build["function_versions"])),
    )


def _fetch(emulator: Any, http: httpx.Client, domain: str, path: str, visibility: str,
           version_sid: str) -> bytes:
    url = f"/_serve/{domain}{path}"
    # The account's Basic credentials go along (the client is shared); serving ignores them.
    if visibility == "private":
        assert http.get(url).status_code == 404, f"private {path} is served"
        stored = emulator.state.store.get(version_sid, "asset_version")
        return bytes(emulator.state.store.content_path(stored.data["digest"]).read_bytes())
    if visibility == "protected":
        assert http.get(url).status_code == 403, f"protected {path} is served unsigned"
        signature = twilio_signature(emulator.auth_token, f"https://{domain}{path}")
        answer = http.get(url, headers={"X-Twilio-Signature": signature})
    else:
        answer = http.get(url)
    assert answer.status_code == 200, f"{visibility} {path}: {answer.status_code}"
    return answer.content


# --- the folder's publish set -------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """A file the folder publishes: its visibility and bytes (for an image output, the digest
    the tool reports and, for the optimized original, the source's pixels)."""

    visibility: str
    source: str
    data: bytes | None = None
    digest: str | None = None
    pixels_of: bytes | None = None


def published_name(rel: str) -> tuple[str, str]:
    """The Serverless Toolkit's rule (docs/foundation.md): `.protected`/`.private` before the
    extension sets the visibility and leaves the path; whitespace becomes `-`."""
    folder, _, name = rel.rpartition("/")
    stem, dot, ext = name.rpartition(".")
    visibility = "public"
    for marker in ("protected", "private"):
        if dot and stem.endswith("." + marker):
            stem, visibility = stem[: -len(marker) - 1], marker
    name = f"{stem}.{ext}" if dot else name
    path = "/" + (f"{folder}/{name}" if folder else name)
    return "".join("-" if c.isspace() else c for c in path), visibility


def collisions(files: dict[str, bytes]) -> list[tuple[str, ...]]:
    """Groups of source files that publish to one path."""
    by_path: dict[str, list[str]] = {}
    for rel in files:
        by_path.setdefault(published_name(rel)[0], []).append(rel)
    return [tuple(group) for group in by_path.values() if len(group) > 1]


def publish_set(files: dict[str, bytes], plan_doc: Any) -> dict[str, Expected]:
    """What the folder publishes, path by path. Text files are their bytes; an image's outputs
    (the optimized original, an MMS variant under `mms/`) are checked against the digests the
    plan reports, and the original against the source's pixels."""
    images = {rel for rel in files if rel.endswith(".png")}
    expected: dict[str, Expected] = {}
    for rel, data in files.items():
        path, visibility = published_name(rel)
        if rel not in images:
            expected[path] = Expected(visibility, rel, data=data)
    outputs = [*plan_doc["uploads"], *plan_doc["reuses"]] if plan_doc else []
    for rel in sorted(images):
        mine = {o["variant"]: o for o in outputs if o["source"] == rel}
        path, visibility = published_name(rel)
        original = mine.get(None)
        assert original is not None and original["path"] == path, (rel, mine)
        expected[path] = Expected(visibility, rel, digest=original["digest"],
                                  pixels_of=files[rel])
        want_variant = rel.startswith(IMAGE_PROFILE)
        assert set(mine) == ({None, "mms"} if want_variant else {None}), (rel, sorted(mine, key=str))
        if want_variant:
            variant = mine["mms"]
            assert variant["path"].startswith("/mms/"), variant
            expected[variant["path"]] = Expected(visibility, rel, digest=variant["digest"])
    return expected


def differences(expected: dict[str, Expected], now: Served) -> list[str]:
    """How what is served differs from the publish set (foreign files and functions, which
    assetsync keeps by design, aside); empty when they agree byte for byte."""
    problems = []
    served_files = {p: f for p, f in now.files.items() if p != FOREIGN_PATH}
    for path in sorted(set(expected) | set(served_files)):
        want, got = expected.get(path), served_files.get(path)
        if want is None or got is None:
            problems.append(f"{path}: {'served, not in the folder' if want is None else 'not served'}")
            continue
        if want.visibility != got.visibility:
            problems.append(f"{path}: served {got.visibility}, folder says {want.visibility}")
        if want.data is not None and want.data != got.data:
            problems.append(f"{path}: served {got.data[:40]!r}, folder has {want.data[:40]!r}")
        if want.digest is not None and want.digest != digest(got.data):
            problems.append(f"{path}: served {digest(got.data)}, the tool reports {want.digest}")
        if want.pixels_of is not None and not same_pixels(want.pixels_of, got.data):
            problems.append(f"{path}: served image's pixels differ from the source's")
    return problems


# --- another tool deploying over assetsync ------------------------------------------------------


def deploy_over(http: httpx.Client, *, foreign: bytes | None, function: bool, drop: bool,
                replace: bytes | None) -> str:
    """What `twilio-run deploy` or the Console does to the dev environment: a new build from
    its live one, plus a foreign file at FOREIGN_PATH, a `/hello` function, without one of
    assetsync's files (`drop`) or with another version of one (`replace`); deployed. Returns
    the build's SID."""
    found = environment(http, "dev")
    assert found is not None and found[1]["build_sid"]
    service_sid, env = found
    base = f"/v1/Services/{service_sid}"
    live = _get(http, f"{base}/Builds/{env['build_sid']}")
    assets = _their_assets(http, base, live["asset_versions"], foreign=foreign, drop=drop,
                           replace=replace)
    functions = [v["sid"] for v in live["function_versions"]]
    if function:
        functions = [_version(http, base, "Functions", "/hello",
                              b"exports.handler = (c, e, cb) => cb(null, 'hi');", "public")]
    data: dict[str, Any] = {"AssetVersions": assets, "FunctionVersions": functions,
                            "Dependencies": json.dumps(live["dependencies"] or [])}
    if live.get("runtime"):
        data["Runtime"] = live["runtime"]
    build = http.post(f"{base}/Builds", data=data)
    build.raise_for_status()
    assert wait_for_build(http, build.json()) == "completed"
    http.post(f"{base}/Environments/{env['sid']}/Deployments",
              data={"BuildSid": build.json()["sid"]}).raise_for_status()
    return str(build.json()["sid"])


def _their_assets(http: httpx.Client, base: str, live: list[dict[str, Any]], *,
                  foreign: bytes | None, drop: bool, replace: bytes | None) -> list[str]:
    """The other tool's build's asset version SIDs, made from the live build's."""
    ours = sorted((v for v in live if v["path"] != FOREIGN_PATH), key=lambda v: v["path"])
    keep = [v["sid"] for v in live]
    if drop and ours:
        keep.remove(ours.pop(0)["sid"])
    if replace is not None and ours:
        keep.remove(ours[-1]["sid"])
        keep.append(_version(http, base, "Assets", ours[-1]["path"], replace,
                             ours[-1]["visibility"].lower()))
    if not keep and foreign is None:  # Twilio refuses an empty build
        foreign = b"theirs"
    if foreign is not None:
        keep = [sid for sid in keep
                if sid not in {v["sid"] for v in live if v["path"] == FOREIGN_PATH}]
        keep.append(_version(http, base, "Assets", FOREIGN_PATH, foreign, "public"))
    return keep


def _version(http: httpx.Client, base: str, family: str, path: str, content: bytes,
             visibility: str) -> str:
    """A new Asset or Function Version at `path` (its resource found by name, or created)."""
    listing = http.get(f"{base}/{family}?PageSize=1000")
    listing.raise_for_status()
    key = family.lower()
    existing = [r for r in listing.json()[key] if r["friendly_name"] == path]
    if existing:
        sid = existing[0]["sid"]
    else:
        made = http.post(f"{base}/{family}", data={"FriendlyName": path})
        made.raise_for_status()
        sid = made.json()["sid"]
    version = http.post(f"{base}/{family}/{sid}/Versions",
                        data={"Path": path, "Visibility": visibility},
                        files={"Content": (path.rsplit("/", 1)[-1], content,
                                           "application/octet-stream")})
    version.raise_for_status()
    return str(version.json()["sid"])
