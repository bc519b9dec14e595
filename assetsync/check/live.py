"""`check --live`: probe every URL the live environment should serve, as Twilio would fetch it.

What should be served is what assetsync last deployed (the state: each environment's recorded
build and the versions in it, with their sizes); the Content-Type each should have is the one the
sync uploaded it with (the publish set's, for content that has not changed since, else the
classification's type for its path). Each file is asked for with HEAD, then with a one-byte
ranged GET when HEAD does not tell its size; protected files with an `X-Twilio-Signature` as
Twilio signs its own fetches; private ones must be refused even so. Functions are not probed:
asking for one runs it.

The embedded target (`api = "local"`) is probed in-process, through the emulator's serving
route `/_serve/<domain>/<path>`; an emulator URL target through the same route over HTTP; the
real service at `https://<domain>/<path>`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import httpx

from assetsync.config import Config, target_key
from assetsync.errors import AssetsyncError, LockHeldError
from assetsync.frozen import frozen
from assetsync.plan.shard import service_names
from assetsync.prepare.classify import content_type_for
from assetsync.remote.client import USER_AGENT, resolve_endpoints
from assetsync.state.db import State
from assetsync.sync.urlmap import asset_url

__all__ = ["LiveReport", "Probe", "ProbeResult", "check_live", "expected_probes", "sign_url",
           "summary"]

_CONTENT_RANGE = re.compile(r"bytes\s+\d+-\d+/(\d+)")
_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


@frozen
class Probe:
    """One file the environment should serve (or, private, refuse)."""

    path: str
    url: str  # its public URL: what is reported, and what a signature covers
    domain: str
    visibility: str
    content_type: str
    size: int


@frozen
class ProbeResult:
    """What one probe found; `problem` is None when the file is served as it should be."""

    probe: Probe
    status: int | None
    content_type: str | None
    size: int | None
    problem: str | None

    def line_text(self) -> str:
        """The one line `check --live` prints for a problem."""
        return f"{self.probe.path}: {self.problem} ({self.probe.url})"


@frozen
class LiveReport:
    """Every probe's result, in path order, and what was left out and why."""

    results: tuple[ProbeResult, ...]
    notes: tuple[str, ...] = ()

    @property
    def problems(self) -> tuple[ProbeResult, ...]:
        """The results that are wrong."""
        return tuple(r for r in self.results if r.problem is not None)


def sign_url(auth_token: str, url: str) -> str:
    """`X-Twilio-Signature` of a GET/HEAD of `url`: base64 HMAC-SHA1 of the URL, keyed by the
    account's auth token (twilio.com/docs/usage/security; no POST parameters to append)."""
    digest = hmac.new(auth_token.encode(), url.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _media_type(value: str | None) -> str:
    return (value or "").split(";")[0].strip().lower()


def expected_probes(config: Config, *, environment: str | None = None) -> tuple[Probe, ...]:
    """What the environment should serve, from the state (what assetsync last deployed there).

    A sharded site's services are all included; files in path order.
    """
    env_name = environment or config.environment
    target = target_key(config)
    uploaded = _uploaded_types(config)
    probes: list[Probe] = []
    with _open_state(config) as state:
        for name in service_names(config.service, config.shard):
            svc = state.get_service(target, name)
            env = state.get_environment(target, svc.service_sid, env_name) if svc else None
            if svc is None or env is None or not env.build_sid or not env.domain_name:
                continue
            build = state.get_build(target, svc.service_sid, env.build_sid)
            in_build = set(build.version_sids) if build else set()
            for v in state.versions(target, svc.service_sid):
                if v.version_sid not in in_build:
                    continue
                kind = uploaded.get((v.path, v.digest)) or content_type_for(v.path)
                probes.append(Probe(v.path, asset_url(env.domain_name, v.path),
                                    env.domain_name, v.visibility, kind, v.size))
    return tuple(sorted(probes, key=lambda p: p.path))


def _open_state(config: Config) -> State:
    try:
        return State.open(config.state_dir)
    except LockHeldError:  # `watch` holds it: reading is enough
        return State.open(config.state_dir, readonly=True)


def _uploaded_types(config: Config) -> dict[tuple[str, str], str]:
    """(path, digest) -> the Content-Type the sync uploads that content with (variants and
    converted audio keep a path whose extension says otherwise)."""
    from assetsync.prepare.stage import prepare_files  # the sync's own preparation

    try:
        with _open_state(config) as state:
            prepared = prepare_files(config, state)
    except AssetsyncError:
        # The folder cannot be prepared now (moved, unreadable): what was deployed is still
        # checked, with each path's own type.
        return {}
    return {(f.path, f.digest): f.content_type for f in prepared.files}


@frozen
class _Endpoint:
    """How probes reach the serving host: a transport (or the network), where a public URL is
    fetched from, and the token that signs."""

    transport: httpx.AsyncBaseTransport | None
    serve_origin: str | None  # None: fetch the public URL itself
    auth_token: str | None

    def fetch_url(self, probe: Probe) -> str:
        if self.serve_origin is None:
            return probe.url
        return f"{self.serve_origin}/_serve/{probe.domain}{urlsplit(probe.url).path}"


def _endpoint(config: Config) -> tuple[_Endpoint, tuple[str, ...]]:
    if config.target.api == "local":
        from assetsync.emulator import LOCAL_AUTH_TOKEN, embedded_transport

        transport = embedded_transport(config.state_dir / "emulator")
        return _Endpoint(transport, "http://assetsync.local", LOCAL_AUTH_TOKEN), ()
    credentials = config.require_credentials()
    # An API key cannot sign: Twilio signs its fetches with the account's auth token.
    token = credentials.password if credentials.username == credentials.account_sid else None
    notes = () if token else (("protected files not probed: signing needs the account's auth "
                               "token (TWILIO_AUTH_TOKEN), not an API key"),)
    api_base, _ = resolve_endpoints(config.target)
    parts = urlsplit(api_base)
    if (parts.hostname or "").endswith("twilio.com"):
        return _Endpoint(None, None, token), notes
    # Any other API URL is an emulator: it serves environments under its own origin.
    return _Endpoint(None, f"{parts.scheme}://{parts.netloc}", token), notes


async def _probe(http: httpx.AsyncClient, endpoint: _Endpoint, probe: Probe) -> ProbeResult:
    headers = {}
    if endpoint.auth_token is not None and probe.visibility != "public":
        headers["X-Twilio-Signature"] = sign_url(endpoint.auth_token, probe.url)
    url = endpoint.fetch_url(probe)
    try:
        head = await http.head(url, headers=headers)
        status, kind = head.status_code, head.headers.get("content-type")
        size = _int(head.headers.get("content-length")) if status == 200 else None
        if status == 405 or (status == 200 and size is None):
            status, kind, size = await _ranged_get(http, url, headers)
    except httpx.HTTPError as exc:
        return ProbeResult(probe, None, None, None, f"no answer: {type(exc).__name__}")
    return ProbeResult(probe, status, kind, size, _problem(probe, status, kind, size))


async def _ranged_get(http: httpx.AsyncClient, url: str, headers: dict[str, str]
                      ) -> tuple[int, str | None, int | None]:
    """HEAD did not say the size (or is not allowed): ask for the first byte; the size is in
    Content-Range (206), else the whole answer is counted as it streams by (200)."""
    async with http.stream("GET", url, headers={**headers, "Range": "bytes=0-0"}) as got:
        kind = got.headers.get("content-type")
        if got.status_code == 206:
            match = _CONTENT_RANGE.match(got.headers.get("content-range", ""))
            return 200, kind, int(match[1]) if match else None
        if got.status_code != 200:
            return got.status_code, kind, None
        size = 0
        async for chunk in got.aiter_raw():
            size += len(chunk)
        return 200, kind, size


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


def _problem(probe: Probe, status: int, kind: str | None, size: int | None) -> str | None:
    if probe.visibility == "private":
        if 200 <= status < 300:
            return f"private, but served ({status}): anyone can fetch it"
        return None
    if status != 200:
        signed = " with a valid X-Twilio-Signature" if probe.visibility == "protected" else ""
        return f"answered {status}{signed}, expected 200"
    if _media_type(kind) != _media_type(probe.content_type):
        return f"served as {_media_type(kind) or 'no Content-Type'}, expected {probe.content_type}"
    if size is not None and size != probe.size:
        return f"served {size:,} bytes, expected {probe.size:,} (the deployed version's size)"
    return None


def check_live(config: Config, *, environment: str | None = None,
               on_result: Callable[[ProbeResult, int, int], None] | None = None,
               transport: httpx.AsyncBaseTransport | None = None) -> LiveReport:
    """Probe what the environment should serve; `on_result(result, done, total)` after each.

    `transport` replaces the one the target would use (the embedded emulator's, or the network).

    Raises:
        ConfigError: a real target without credentials.
    """
    probes = expected_probes(config, environment=environment)
    if not probes:  # nothing deployed by assetsync: nothing to ask, nowhere to ask it
        return LiveReport(())
    endpoint, notes = _endpoint(config)
    if transport is not None:
        endpoint = _Endpoint(transport, endpoint.serve_origin, endpoint.auth_token)
    if endpoint.auth_token is None:
        probes = tuple(p for p in probes if p.visibility == "public")
    limit = max(1, config.sync.concurrency)

    async def work() -> tuple[ProbeResult, ...]:
        slots = asyncio.Semaphore(limit)
        done = 0
        plain = (endpoint.serve_origin or "").startswith("http://")
        async with httpx.AsyncClient(transport=endpoint.transport, timeout=_TIMEOUT,
                                     headers={"User-Agent": USER_AGENT}, verify=not plain,
                                     limits=httpx.Limits(max_connections=limit)) as http:
            async def one(probe: Probe) -> ProbeResult:
                nonlocal done
                async with slots:
                    result = await _probe(http, endpoint, probe)
                done += 1
                if on_result is not None:
                    on_result(result, done, len(probes))
                return result

            # Leaving the client closes its transport (the embedded emulator's database too).
            return tuple(await asyncio.gather(*(one(p) for p in probes)))

    return LiveReport(asyncio.run(work()), notes)


def summary(report: LiveReport) -> Iterator[str]:
    """Counts by visibility, for the summary line."""
    for visibility in ("public", "protected", "private"):
        count = sum(1 for r in report.results if r.probe.visibility == visibility)
        if count:
            yield f"{count} {visibility}"
