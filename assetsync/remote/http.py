"""The HTTP layer under `ServerlessClient`: one logical request with retries, pagination, errors.

`ApiSession._send` retries 429 (honouring `Retry-After`), 5xx and transport failures with
full-jitter exponential backoff inside a total time budget, and turns any other error status into
the `ApiStatusError` subclass carrying Twilio's `code` and `message`. Errors name the method and
URL, never a credential. `ApiSession._list` returns every page of a list or raises: unlike the
official Node library (api-contract.md §7.2, §5), which retries only 429 and silently returns a
partial list when a later page fails.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import ipaddress
import logging
import os
import random
import re
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, Self
from urllib.parse import quote_plus, urlencode, urlsplit, urlunsplit

from assetsync import __version__
from assetsync.errors import (
    ApiConnectionError,
    ApiError,
    ApiStatusError,
    AuthenticationError,
    BuildFailedError,
    NotFoundError,
    RateLimitError,
)
from assetsync.frozen import frozen
from assetsync.remote.limiter import AdaptiveLimit
from assetsync.remote.pool import SocketWire
from assetsync.remote.upload import BodyChangedError, MultipartFile
from assetsync.remote.wire import (
    Answer,
    ConnectFailedError,
    ProxySetupError,
    SendFailedError,
    Timeouts,
    Wire,
    WireError,
)

if TYPE_CHECKING:
    import httpx

    from assetsync.config import Credentials

__all__ = [
    "USER_AGENT",
    "ApiSession",
    "BuildTimeoutError",
    "ClientEvent",
    "ClientStats",
    "RetryPolicy",
    "is_loopback_host",
]

logger = logging.getLogger("assetsync.remote.client")

USER_AGENT = f"assetsync/{__version__} (python)"
PAGE_SIZE = 1000  # the API's maximum (api-contract.md §3)
# Per-operation timeouts (a read or write stalling this long): a hung upload fails and is retried
# instead of hanging a CI job for hours (workers-sdk #14964, peers.md §5).
DEFAULT_TIMEOUT = Timeouts(connect=10.0, idle=60.0)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """A verifying TLS context with certifi's CA bundle (what httpx uses), or the bundle that
    `SSL_CERT_FILE` / `SSL_CERT_DIR` name (which httpx honours too)."""
    # Loading the CA bundle costs ~40 ms; watch mode and benchmarks open a client per sync.
    cafile, capath = os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")
    if not cafile and not capath:
        import certifi

        cafile = certifi.where()
    context = ssl.create_default_context(cafile=cafile, capath=capath)
    context.set_alpn_protocols(["http/1.1"])
    return context


class BuildTimeoutError(BuildFailedError):
    """A build was still `building` when the wait timed out; it may yet complete."""


@frozen
class ClientEvent:
    """Something the client did: a `retry` (attempt = the failed attempt's number, delay_s the
    wait before the next) or a `page` of a list (attempt = the page's number, from 1)."""

    kind: str
    method: str
    url: str
    status: int | None = None
    attempt: int = 0
    delay_s: float = 0.0
    reason: str = ""


class _Sleep(Protocol):
    def __call__(self, seconds: float, /) -> Awaitable[None]: ...


@frozen
class RetryPolicy:
    """How hard to retry a retryable failure (429, 5xx, transport errors).

    Delays are full-jitter exponential (`random() * min(max_delay_s, base_delay_s * 2**n)`);
    a `Retry-After` above `max_retry_after_s` fails at once and reports the wait. `random`,
    `sleep` and `clock` are seams for tests.
    """

    max_attempts: int = 8
    base_delay_s: float = 0.5
    max_delay_s: float = 20.0
    budget_s: float = 300.0
    max_retry_after_s: float = 60.0
    random: Callable[[], float] = random.random
    sleep: _Sleep = asyncio.sleep
    clock: Callable[[], float] = time.monotonic

    def backoff(self, attempt: int) -> float:
        """Delay before retry number `attempt` (1-based) when the server gave no Retry-After."""
        cap = min(self.max_delay_s, self.base_delay_s * (2 ** (attempt - 1)))
        return float(self.random() * cap)


_COUNTERS = ("requests", "write_requests", "retries", "uploads", "bytes_sent",
             "lowest_concurrency")


class ClientStats:
    """Counters for a client's lifetime: every HTTP attempt, writes, retries, bytes sent."""

    # A plain slotted class with a mutable dataclass's `__init__`, eq, repr and no hash: the
    # `dataclasses` import costs every process ~7 ms (issue 26).
    __slots__ = _COUNTERS
    __match_args__ = ("requests", "write_requests", "retries", "uploads", "bytes_sent",
                      "lowest_concurrency")
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, requests: int = 0, write_requests: int = 0, retries: int = 0,
                 uploads: int = 0, bytes_sent: int = 0,
                 lowest_concurrency: int = 1_000_000) -> None:
        self.requests = requests
        self.write_requests = write_requests
        self.retries = retries
        self.uploads = uploads
        self.bytes_sent = bytes_sent
        self.lowest_concurrency = lowest_concurrency  # the adaptive limit's low point (429s)

    def _values(self) -> tuple[int, ...]:
        return (self.requests, self.write_requests, self.retries, self.uploads,
                self.bytes_sent, self.lowest_concurrency)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is self.__class__:
            return self._values() == other._values()
        return NotImplemented

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={value!r}" for name, value in zip(_COUNTERS, self._values(),
                                                                       strict=True))
        return f"{type(self).__qualname__}({shown})"

    def snapshot(self) -> ClientStats:
        """A copy, so callers can diff before and after."""
        return ClientStats(*self._values())


_Body = Mapping[str, str | Sequence[str]] | None
_RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
# Failures after which the server cannot have acted: the request never reached it whole (a
# server acts only on a complete body; the emulator too, docs/emulator.md).
_NOT_SENT = (ConnectFailedError, SendFailedError, BodyChangedError)
# What quote_plus leaves as is: SIDs and most parameters need no quoting call.
_PLAIN_FORM_RE = re.compile(r"[A-Za-z0-9_.~-]*")
_FORM_TYPE = "application/x-www-form-urlencoded"


def _form_value(text: str) -> str:
    return text if _PLAIN_FORM_RE.fullmatch(text) else quote_plus(text)


def is_loopback_host(host: str) -> bool:
    """`localhost` or a loopback address (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def form_body(data: Mapping[str, str | Sequence[str]]) -> bytes:
    """`application/x-www-form-urlencoded` with arrays as repeated keys: the bytes httpx's
    `data=` would send, at a fiftieth of the cost for a build naming 1,000 version SIDs."""
    fields = []
    for key, value in data.items():
        items = (value,) if isinstance(value, str) else value
        name = _form_value(key)
        if _PLAIN_FORM_RE.fullmatch("".join(items)):
            # Every item is plain (SIDs are): one match for the lot, then a join.
            if items:
                fields.append(f"{name}=" + f"&{name}=".join(items))
        else:
            fields.extend(f"{name}={_form_value(item)}" for item in items)
    return "&".join(fields).encode()


def _retry_after(value: str | None, now: float) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    import email.utils  # only for a Retry-After given as an HTTP date: rare, and ~3 ms to load

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def error_body(response: Answer) -> Mapping[str, object]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


_HINTS = {
    401: "check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (or TWILIO_API_KEY/TWILIO_API_SECRET)",
    403: "the credentials lack permission for this resource",
    404: "the resource is gone; `assetsync status` shows what assetsync recorded",
    413: "the file is over Twilio's size limit (25 MB public/protected, 10 MB private)",
    429: "Twilio is rate limiting this account; lower [sync] concurrency or retry later",
}


def _status_error(method: str, url: str, response: Answer) -> ApiStatusError:
    body = error_body(response)
    status = response.status_code
    code = body.get("code")
    more_info = body.get("more_info") or body.get("moreInfo")
    message = body.get("message") or response.reason_phrase or "error"
    detail = body.get("detail")
    text = f"{method} {url} failed: HTTP {status}"
    if isinstance(code, int):
        text += f" (Twilio error {code})"
    text += f": {message}"
    if isinstance(detail, str) and detail and detail != message:
        text += f" ({detail})"
    hint = _HINTS.get(status) or ("the server failed; retry later" if status >= 500 else "")
    if hint:
        text += f"; {hint}"
    kw = {
        "method": method,
        "url": url,
        "status_code": status,
        "code": code if isinstance(code, int) else None,
        "more_info": more_info if isinstance(more_info, str) else None,
    }
    if status in (401, 403):
        return AuthenticationError(text, **kw)  # type: ignore[arg-type]
    if status == 404:
        return NotFoundError(text, **kw)  # type: ignore[arg-type]
    if status == 429:
        after = _retry_after(response.header("Retry-After"), time.time())
        return RateLimitError(text, retry_after=after, **kw)
    return ApiStatusError(text, **kw)  # type: ignore[arg-type]


def _clean_url(url: str) -> str:
    # Credentials travel in the Authorization header only; strip userinfo defensively anyway.
    if "@" not in url:  # no userinfo to strip: parsing it twice per request cost ~5% CPU
        return url
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _with_query(url: str, params: Mapping[str, str | int] | None) -> str:
    if not params:
        return url
    return f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"


class ApiSession:
    """Credentials, connection pool, retries and pagination; `ServerlessClient` adds endpoints."""

    def __init__(
        self,
        *,
        api_base: str,
        upload_base: str,
        credentials: Credentials,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: Timeouts = DEFAULT_TIMEOUT,
        retry: RetryPolicy = RetryPolicy(),
        on_event: Callable[[ClientEvent], None] | None = None,
        max_concurrency: int = 10,
    ) -> None:
        self.api_base = api_base.rstrip("/")
        self.upload_base = upload_base.rstrip("/")
        self.account_sid = credentials.account_sid
        # HTTP Basic as a fixed header, not an httpx auth flow: the flow is a generator driven
        # around every request, and redirects (where it would matter) are never followed.
        pair = f"{credentials.username}:{credentials.password}".encode()
        self._authorization = "Basic " + base64.b64encode(pair).decode("ascii")
        self._transport = transport
        self._timeout = timeout
        self.retry = retry
        self.on_event = on_event
        self._max_concurrency = max(1, max_concurrency)
        self._http: Wire | None = None
        self._slots: AdaptiveLimit | None = None
        self.stats = ClientStats()
        # The retry clock when a request's last successful answer began to arrive (its status
        # line, before its body was read): a build's poll schedule counts from its create
        # request's answer, and the build was building before that answer was sent.
        self.answered_at: float | None = None
        # GET requests whose bytes have all been handed to the network (httpcore's `trace`
        # extension): the engine works on while its first lookup is being answered.
        self.gets_sent = 0
        self.page_size = PAGE_SIZE

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(api_base={self.api_base!r}, account_sid={self.account_sid!r})"

    @property
    def is_open(self) -> bool:
        """Whether the client is inside its `async with` block."""
        return self._http is not None

    @property
    def on_this_machine(self) -> bool:
        """Both endpoints are loopback addresses reached over a socket (a local emulator)."""
        if self._transport is not None:
            return False
        return all(is_loopback_host(urlsplit(base).hostname or "")
                   for base in (self.api_base, self.upload_base))

    def _get_sent(self) -> None:
        self.gets_sent += 1

    async def __aenter__(self) -> Self:
        if self._http is not None:
            raise RuntimeError("the client is already open")
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json",
                   "Authorization": self._authorization}
        if self._transport is not None:
            from assetsync.remote.httpx_wire import TransportWire

            self._http = TransportWire(self._transport, headers=headers, timeouts=self._timeout)
        else:
            # Our own HTTP/1.1 client (`assetsync.remote.pool`): through httpx a cold publish's
            # 2,000 requests cost ~1.2 ms of CPU each. The TLS context (20-40 ms to load the CA
            # bundle) is made only when an https origin is first reached: never for the
            # emulator. Redirects are not followed, so a plain-http client never reaches https.
            self._http = SocketWire(headers=headers, timeouts=self._timeout,
                                    max_idle=self._max_concurrency + 2,
                                    ssl_context=_ssl_context)
        self._slots = AdaptiveLimit(self._max_concurrency)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        http, self._http, self._slots = self._http, None, None
        if http is not None:
            await http.aclose()

    # ---------------------------------------------------------------- transport and retries

    def _emit(self, event: ClientEvent) -> None:
        if self.on_event is not None:
            self.on_event(event)

    async def _send(
        self,
        method: str,
        url: str,
        *,
        data: _Body = None,
        params: Mapping[str, str | int] | None = None,
        upload: Callable[[], MultipartFile] | None = None,
        recover: Callable[[], Awaitable[Answer | None]] | None = None,
    ) -> Answer:
        """Send one logical request, retrying what is safe to retry; returns a 2xx response.

        `recover`: for a create, called before sending it again after a failure the server may
        have acted on (its answer was lost); it looks for what the request made and returns
        that resource's answer (a GET), which ends the request, or None to send it again.
        """
        if self._http is None or self._slots is None:
            raise RuntimeError("use the client inside `async with`")
        policy = self.retry
        started = policy.clock()
        url = _with_query(url, params)
        shown = _clean_url(url)
        attempt = 0
        maybe_acted = False
        while True:
            attempt += 1
            if maybe_acted and recover is not None:
                found = await recover()
                if found is not None:
                    logger.info("%s %s: adopted what the lost answer made", method, shown)
                    return found
            body = upload() if upload is not None else None
            try:
                async with self._slots.admit() as admission:
                    response, answered_at, sent = await self._attempt(method, url, data, body)
                if response.status_code < 400:
                    self.answered_at = answered_at
                    self._slots.succeeded(admission)
                    if body is not None:
                        self.stats.uploads += 1
                    self._after_success(method, shown, response, sent)
                    return response
                if response.status_code == 429:
                    self._slots.throttled()
                    self.stats.lowest_concurrency = min(self.stats.lowest_concurrency,
                                                        self._slots.limit)
                error: ApiError = _status_error(method, shown, response)
                retryable = response.status_code in _RETRYABLE_STATUS
                # Sticky: a server may act late, so every later resend looks first too.
                maybe_acted = maybe_acted or response.status_code >= 500  # a gateway timeout
            except (WireError, BodyChangedError) as exc:
                reason = str(exc) or type(exc).__name__
                # A malformed proxy variable or a proxy refusing the tunnel (407, 403) fails
                # the same way every time: said at once, not after minutes of backoff.
                setup = isinstance(exc, ProxySetupError)
                hint = "check the proxy variables" if setup else "check the network and retry"
                error = ApiConnectionError(
                    f"{method} {shown} failed: {reason}; {hint}", method=method, url=shown)
                retryable = not setup
                maybe_acted = maybe_acted or not isinstance(exc, _NOT_SENT)
            finally:
                if body is not None:
                    body.close()
            if not retryable:
                raise error
            await self._wait_to_retry(error, attempt, started, method, shown)

    async def _wait_to_retry(
        self, error: ApiError, attempt: int, started: float, method: str, shown: str
    ) -> None:
        """Wait before attempt `attempt + 1`, or raise `error` when the policy gives up."""
        policy = self.retry
        delay = self._delay(error, attempt)
        elapsed = policy.clock() - started
        if delay is None or attempt >= policy.max_attempts or elapsed + delay > policy.budget_s:
            if attempt > 1:
                error.args = (f"{error} (gave up after {attempt} attempts)",)
            raise error
        self.stats.retries += 1
        logger.debug("retrying %s %s in %.2fs after: %s", method, shown, delay, error)
        status = error.status_code if isinstance(error, ApiStatusError) else None
        self._emit(ClientEvent("retry", method, shown, status, attempt, delay, str(error)))
        await policy.sleep(delay)

    def _delay(self, error: ApiError, attempt: int) -> float | None:
        if isinstance(error, RateLimitError) and error.retry_after is not None:
            if error.retry_after > self.retry.max_retry_after_s:
                return None  # fail now; the message carries the server's wait
            return error.retry_after
        return self.retry.backoff(attempt)

    async def _attempt(
        self, method: str, url: str, data: _Body, body: MultipartFile | None
    ) -> tuple[Answer, float, int]:
        """One attempt: the whole answer, the retry clock when it arrived, the bytes sent."""
        assert self._http is not None
        self.stats.requests += 1
        if method != "GET":
            self.stats.write_requests += 1
        on_sent = self._get_sent if method == "GET" else None
        if body is not None:
            response = await self._http.send(method, url, body, body.content_type, on_sent)
            return response, self.retry.clock(), body.length
        content = form_body(data) if data else None
        response = await self._http.send(method, url, content,
                                         _FORM_TYPE if content is not None else None, on_sent)
        return response, self.retry.clock(), len(content or b"")

    def _after_success(self, method: str, shown: str, response: Answer, sent: int) -> None:
        if method != "GET":
            self.stats.bytes_sent += sent
        if method != "GET" and logger.isEnabledFor(logging.INFO):
            # Only when the line is wanted: the body is parsed again for its SID, and a build's
            # answer embeds every version (~300 KB for 1,000 files: ~2 ms of JSON each time).
            sid = error_body(response).get("sid", "")
            logger.info("%s %s -> %s %s", method, shown, response.status_code, sid)

    async def _json(
        self, method: str, url: str, *, data: _Body = None,
        recover: Callable[[], Awaitable[Answer | None]] | None = None,
    ) -> Mapping[str, object]:
        response = await self._send(method, url, data=data, recover=recover)
        body = error_body(response)
        if not body:
            shown = _clean_url(url)
            raise ApiError(f"{method} {shown} answered with no JSON object", method=method,
                           url=shown)
        return body

    async def _list(self, path: str, key: str,
                    query: Mapping[str, str] | None = None) -> list[Mapping[str, object]]:
        """Every item of a list endpoint, following absolute `next_page_url` to the end
        (`query`: filters for the first page; the next page URLs carry them on)."""
        items: list[Mapping[str, object]] = []
        url: str | None = f"{self.api_base}{path}"
        params: Mapping[str, str | int] | None = {**(query or {}), "PageSize": self.page_size}
        origin = urlsplit(self.api_base)
        pages = 0
        while url:
            response = await self._send("GET", url, params=params)
            body = error_body(response)
            page = body.get(key)
            meta = body.get("meta")
            if not isinstance(page, list) or not isinstance(meta, dict):
                raise ApiError(
                    f"GET {_clean_url(url)} answered without a {key!r} list; not trusting a "
                    "partial listing", method="GET", url=_clean_url(url),
                )
            items.extend(item for item in page if isinstance(item, dict))
            pages += 1
            self._emit(ClientEvent("page", "GET", _clean_url(url), response.status_code, pages))
            next_url = meta.get("next_page_url")
            if next_url and isinstance(next_url, str):
                target = urlsplit(next_url)
                # Never send credentials to a host other than the one we were given.
                if (target.hostname, target.port, target.scheme.lower()) != (
                        origin.hostname, origin.port, origin.scheme.lower()):
                    raise ApiError(
                        f"GET {_clean_url(url)} pointed its next page at another host "
                        f"({target.hostname}); refusing to follow", method="GET",
                        url=_clean_url(url),
                    )
                url, params = next_url, None
            else:
                url = None
        return items
