"""Proxies for our HTTP/1.1 client (`assetsync.remote.proxy` under `remote.pool.SocketWire`):
which origins go through the proxy the environment names, the CONNECT tunnel (plain and TLS,
to a plain and a TLS proxy), credentials, and each way a proxy can fail, in one line.

Everything stays on loopback: the test proxy answers CONNECT for any host by tunnelling to a
loopback server, so a request for `api.assetsync.test` never needs a name resolved. The TLS
server's certificate (`certs/`, signed by a test CA, valid for api.assetsync.test, localhost
and 127.0.0.1 until 2126) was made with openssl; see `certs/README.md`.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import ssl
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, Self, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assetsync.config import Credentials
from assetsync.errors import ApiConnectionError
from assetsync.remote.client import ServerlessClient
from assetsync.remote.http import RetryPolicy
from assetsync.remote.pool import SocketWire
from assetsync.remote.proxy import ProxySetupError, bypasses_proxy, proxy_for
from assetsync.remote.wire import Answer, ConnectFailedError, Timeouts

T = TypeVar("T")
CERTS = Path(__file__).parent / "certs"
PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                   "ALL_PROXY", "no_proxy", "NO_PROXY")
API = "api.assetsync.test"  # never resolved: only the test proxy sees it


@pytest.fixture(autouse=True)
def _no_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with no proxy variable of the developer's; it sets what it needs."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def _server_tls() -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(CERTS / "server.pem", CERTS / "server.key")
    return context


def _client_tls() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(CERTS / "ca.pem"))


class _Served:
    """A loopback server (TLS when `tls`) that ends every connection it accepted on exit."""

    def __init__(self, *, tls: bool) -> None:
        self.tls = tls
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def _track(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._handle(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()
            self._tasks.discard(task)

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._track, "127.0.0.1", 0,
                                                  ssl=_server_tls() if self.tls else None)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()


class Origin(_Served):
    """A loopback HTTP server that answers every request with its own head."""

    def __init__(self, *, tls: bool = False) -> None:
        super().__init__(tls=tls)
        self.heads: list[bytes] = []

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            self.heads.append(head)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(head), head))
            await writer.drain()


class ConnectProxy(_Served):
    """A loopback CONNECT proxy that tunnels every request to `upstream` whatever host it
    names, recording each request head; it can demand credentials (407), refuse (403), or
    never answer; `refuse` is an answer to give instead of a tunnel; `tls` makes it an
    https:// proxy."""

    def __init__(self, upstream: int, *, password: str | None = None, refuse: bytes = b"",
                 silent: bool = False, tls: bool = False) -> None:
        super().__init__(tls=tls)
        self.upstream = upstream
        self.password = password
        self.refuse = refuse
        self.silent = silent
        self.requests: list[tuple[str, dict[str, str]]] = []

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def _refusal(self, headers: dict[str, str]) -> bytes | None:
        if self.refuse:
            return self.refuse
        if self.password is not None:
            wanted = "Basic " + base64.b64encode(self.password.encode()).decode()
            if headers.get("proxy-authorization") != wanted:
                return (b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                        b"Proxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n")
        return None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        line, *rest = head.rstrip("\r\n").split("\r\n")
        headers = {name.strip().lower(): value.strip()
                   for name, _, value in (item.partition(":") for item in rest)}
        self.requests.append((line, headers))
        if self.silent:
            await asyncio.Event().wait()  # until the test ends
        refusal = self._refusal(headers)
        if refusal is not None:
            writer.write(refusal)
            await writer.drain()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        sink.close()


def _wire(connect_s: float = 5.0) -> SocketWire:
    return SocketWire(headers={"Authorization": "Basic dHdpbGlvOnNlY3JldA=="},
                      timeouts=Timeouts(connect=connect_s, idle=5.0), max_idle=4,
                      ssl_context=_client_tls)


async def _get(wire: SocketWire, url: str) -> Answer:
    return await wire.send("GET", url, None, None, None)


async def _get_once(url: str, connect_s: float = 5.0) -> Answer:
    """One GET over a new wire, closed after it however the GET ends."""
    wire = _wire(connect_s)
    try:
        return await _get(wire, url)
    finally:
        await wire.aclose()


def _run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


# ------------------------------------------------------------------------------ through the proxy


def test_https_requests_go_through_one_tunnel_with_tls_to_the_target(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> tuple[list[Answer], ConnectProxy, Origin]:
        async with Origin(tls=True) as origin, ConnectProxy(origin.port) as proxy:
            monkeypatch.setenv("HTTPS_PROXY", proxy.url)
            wire = _wire()
            answers = [await _get(wire, f"https://{API}/v1/Services"),
                       await _get(wire, f"https://{API}/v1/Services?PageSize=2")]
            await wire.aclose()
            return answers, proxy, origin

    answers, proxy, origin = _run(scenario())
    assert [answer.status_code for answer in answers] == [200, 200]
    # One CONNECT: the tunnel is a keep-alive connection of the target's origin like any other.
    assert [line for line, _ in proxy.requests] == [f"CONNECT {API}:443 HTTP/1.1"]
    headers = proxy.requests[0][1]
    assert headers["host"] == f"{API}:443"
    # The API's own credentials travel inside the tunnel, never to the proxy.
    assert "authorization" not in headers and "proxy-authorization" not in headers
    assert origin.heads[0].startswith(b"GET /v1/Services HTTP/1.1\r\nHost: api.assetsync.test\r\n")
    assert b"Authorization: Basic dHdpbGlvOnNlY3JldA==" in origin.heads[0]


def test_http_targets_tunnel_too_and_a_bare_host_port_proxy_means_http(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> tuple[Answer, ConnectProxy]:
        async with Origin() as origin, ConnectProxy(origin.port) as proxy:
            monkeypatch.setenv("http_proxy", f"127.0.0.1:{proxy.port}")
            monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # the lower-case one wins
            answer = await _get_once(f"http://{API}:8080/x")
            return answer, proxy

    answer, proxy = _run(scenario())
    assert answer.content.startswith(b"GET /x HTTP/1.1\r\nHost: api.assetsync.test:8080\r\n")
    assert [line for line, _ in proxy.requests] == [f"CONNECT {API}:8080 HTTP/1.1"]


def test_tls_to_an_https_proxy_and_tls_to_the_target_inside_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> tuple[Answer, ConnectProxy]:
        async with Origin(tls=True) as origin, ConnectProxy(origin.port, tls=True) as proxy:
            monkeypatch.setenv("ALL_PROXY", proxy.url)
            answer = await _get_once(f"https://{API}/v1/Services")
            return answer, proxy

    answer, proxy = _run(scenario())
    assert answer.status_code == 200
    assert [line for line, _ in proxy.requests] == [f"CONNECT {API}:443 HTTP/1.1"]


def test_the_target_certificate_is_checked_against_the_target_name(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        async with Origin(tls=True) as origin, ConnectProxy(origin.port) as proxy:
            monkeypatch.setenv("HTTPS_PROXY", proxy.url)
            await _get_once("https://elsewhere.example.test/v1/Services")

    with pytest.raises(ConnectFailedError, match="certificate is not trusted") as caught:
        _run(scenario())
    assert "through proxy http://127.0.0.1:" in str(caught.value)


def test_credentials_go_as_proxy_authorization_decoded_from_the_url(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> tuple[Answer, ConnectProxy]:
        async with Origin(tls=True) as origin, \
                ConnectProxy(origin.port, password="ci@corp:p:ss") as proxy:
            monkeypatch.setenv("https_proxy", f"http://ci%40corp:p%3Ass@127.0.0.1:{proxy.port}")
            answer = await _get_once(f"https://{API}/v1/Services")
            return answer, proxy

    answer, proxy = _run(scenario())
    assert answer.status_code == 200
    expected = "Basic " + base64.b64encode(b"ci@corp:p:ss").decode()
    assert proxy.requests[0][1]["proxy-authorization"] == expected


def test_a_publish_through_the_proxy_to_the_emulator(emulator: Any, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The session as a sync uses it (`ServerlessClient`, pages, a streamed upload, a build),
    every request through the tunnel: the emulator is named by a host only the proxy knows."""
    logo = tmp_path / "logo.png"
    logo.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 400)
    port = int(emulator.url.rsplit(":", 1)[1])
    base = f"http://emulator.assetsync.test:{port}/v1"

    async def scenario() -> tuple[str, int, ConnectProxy]:
        async with ConnectProxy(port) as proxy:
            monkeypatch.setenv("http_proxy", proxy.url)
            credentials = Credentials(account_sid=emulator.account_sid,
                                      username=emulator.account_sid, password=emulator.auth_token)
            async with ServerlessClient(api_base=base, upload_base=base,
                                        credentials=credentials) as client:
                service = await client.create_service("proxied")
                asset = await client.create_asset(service.sid, "/logo.png")
                client.page_size = 1
                await client.create_asset(service.sid, "/other.png")
                listed = await client.list_assets(service.sid)  # two pages
                sent = await client.upload_asset_version(
                    service.sid, asset.sid, path="/logo.png", visibility="public",
                    content_path=logo, content_type="image/png")
                build = await client.create_build(service.sid,
                                                  asset_versions=[sent.version.sid])
                await client.wait_for_build(service.sid, build.sid, poll_interval_s=0.01)
                status = await client.fetch_build_status(service.sid, build.sid)
            return status, len(listed), proxy

    status, listed, proxy = _run(scenario())
    assert (status, listed) == ("completed", 2)
    assert proxy.requests  # keep-alive: a few tunnels carried every request
    assert {line for line, _ in proxy.requests} == {
        f"CONNECT emulator.assetsync.test:{port} HTTP/1.1"}
    assert all("authorization" not in headers for _, headers in proxy.requests)
    assert sum(entry.kind == "upload" for entry in emulator.state.request_log) == 1


# ------------------------------------------------------------------------------ straight there


def test_a_loopback_target_never_goes_through_the_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> tuple[list[int], ConnectProxy]:
        async with Origin() as origin, ConnectProxy(origin.port) as proxy:
            for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
                monkeypatch.setenv(name, proxy.url)
            wire = _wire()
            codes = [(await _get(wire, f"http://{host}:{origin.port}/")).status_code
                     for host in ("127.0.0.1", "localhost")]
            await wire.aclose()
            return codes, proxy

    codes, proxy = _run(scenario())
    assert codes == [200, 200]
    assert proxy.requests == []


@pytest.mark.parametrize(("no_proxy", "host", "port", "direct"), [
    ("*", "api.twilio.com", 443, True),
    ("twilio.com", "api.twilio.com", 443, True),
    (".twilio.com", "twilio.com", 443, True),
    ("twilio.com", "nottwilio.com", 443, False),
    ("twilio.com", "twilio.com.evil.test", 443, False),
    (" example.test , api.twilio.com:443", "api.twilio.com", 443, True),
    ("api.twilio.com:8443", "api.twilio.com", 443, False),
    ("10.0.0.0/8", "10.20.30.40", 443, True),
    ("10.0.0.0/8", "11.0.0.1", 443, False),
    ("2.3", "10.1.2.3", 443, False),
    ("fd00::/8,192.168.1.7", "fd00::1", 443, True),
    ("[fd00::1]:443", "fd00::1", 443, True),
    ("", "api.twilio.com", 443, False),
])
def test_no_proxy_follows_curls_rules(monkeypatch: pytest.MonkeyPatch, no_proxy: str, host: str,
                                      port: int, direct: bool) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp.test:3128")
    monkeypatch.setenv("NO_PROXY", no_proxy)
    assert (proxy_for("https", host, port) is None) is direct


def test_which_variable_applies(monkeypatch: pytest.MonkeyPatch) -> None:
    assert proxy_for("https", "api.twilio.com", 443) is None
    monkeypatch.setenv("ALL_PROXY", "http://fallback.test:1")
    monkeypatch.setenv("HTTP_PROXY", "http://plain.test:2")
    https = proxy_for("https", "api.twilio.com", 443)
    assert https is not None and (https.label, https.variable) == ("http://fallback.test:1",
                                                                   "ALL_PROXY")
    plain = proxy_for("http", "api.twilio.com", 80)
    assert plain is not None and plain.label == "http://plain.test:2"
    monkeypatch.setenv("HTTPS_PROXY", "proxy.test")  # no port: the scheme's own
    https = proxy_for("https", "api.twilio.com", 443)
    assert https is not None and (https.label, https.variable) == ("http://proxy.test:80",
                                                                   "HTTPS_PROXY")
    monkeypatch.setenv("no_proxy", ".twilio.com")
    assert proxy_for("https", "api.twilio.com", 443) is None
    assert proxy_for("https", "localhost", 443) is None
    assert proxy_for("https", "::1", 443) is None


_label = st.from_regex(r"[a-z][a-z0-9-]{0,9}", fullmatch=True)  # a name, never an address


@settings(max_examples=200, deadline=None)
@given(st.lists(_label, min_size=1, max_size=3), st.lists(_label, max_size=2), st.booleans(),
       st.sampled_from(["", ".", "*."]), st.integers(1, 65535))
def test_a_no_proxy_name_matches_its_domain_and_nothing_else(
        domain_labels: list[str], sub_labels: list[str], glued: bool, prefix: str,
        port: int) -> None:
    domain = ".".join(domain_labels)
    host = ".".join([*sub_labels, domain])
    entry = prefix + domain
    assert bypasses_proxy(host, port, entry)
    assert bypasses_proxy(host.upper(), port, f"other.test, {entry}:{port}")
    assert not bypasses_proxy(host, port, f"{entry}:{port % 65535 + 1}")
    if glued:  # the domain as the tail of a longer label is another domain
        assert not bypasses_proxy(f"x{domain}", port, entry)


@settings(max_examples=200, deadline=None)
@given(st.ip_addresses(v=4), st.integers(0, 32))
def test_a_cidr_entry_matches_exactly_its_addresses(address: ipaddress.IPv4Address,
                                                     bits: int) -> None:
    block = ipaddress.ip_network(f"{address}/{bits}", strict=False)
    outside = int(block.broadcast_address) + 1
    assert bypasses_proxy(str(address), 443, str(block))
    if outside <= 0xFFFFFFFF:
        assert not bypasses_proxy(str(ipaddress.IPv4Address(outside)), 443, str(block))


# ------------------------------------------------------------------------------ failures


def test_a_407_is_one_line_naming_the_proxy_and_never_the_credentials(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> str:
        async with Origin(tls=True) as origin, \
                ConnectProxy(origin.port, password="ci:right") as proxy:
            monkeypatch.setenv("HTTPS_PROXY", f"http://ci:wrong-secret@127.0.0.1:{proxy.port}")
            wire = _wire()
            with pytest.raises(ProxySetupError) as caught:  # a setting to fix, not a glitch
                await _get(wire, f"https://{API}/v1/Services")
            await wire.aclose()
            return str(caught.value)

    message = _run(scenario())
    assert message.startswith("proxy http://127.0.0.1:")
    assert message.endswith(f" refused CONNECT {API}:443: 407 Proxy Authentication Required")
    assert "wrong-secret" not in message and "ci:" not in message and "\n" not in message


def _get_through_proxy_answering(answer: bytes, variable: str, url: str) -> None:
    """One GET of `url` with `variable` naming a proxy that answers CONNECT with `answer`
    (raises what the wire raises)."""
    async def scenario() -> None:
        async with Origin() as origin, ConnectProxy(origin.port, refuse=answer) as proxy:
            with pytest.MonkeyPatch.context() as patch:
                patch.setenv(variable, proxy.url)
                await _get_once(url)

    _run(scenario())


@pytest.mark.parametrize(("answer", "status", "setting"), [
    (b"HTTP/1.1 403 Forbidden\r\nContent-Length: 6\r\n\r\nno way", "403 Forbidden", True),
    (b"HTTP/1.1 502 Bad Gateway\r\n\r\n", "502 Bad Gateway", False),
])
def test_a_proxy_refusing_the_tunnel_gives_its_status(answer: bytes, status: str,
                                                      setting: bool) -> None:
    with pytest.raises(ConnectFailedError, match=rf"refused CONNECT {API}:80: {status}$") as caught:
        _get_through_proxy_answering(answer, "HTTP_PROXY", f"http://{API}/x")
    # A 4xx is the setting's to fix; a 5xx (the proxy could not reach the host) may pass.
    assert isinstance(caught.value, ProxySetupError) is setting


@pytest.mark.parametrize(("answer", "what"), [
    (b"HTTP/1.1 200 OK\r\n\r\nHTTP/1.1 200 OK", "sent bytes through the tunnel before any"),
    (b"SSH-2.0-OpenSSH\r\n\r\n", "did not answer in HTTP/1.1"),
    (b"HTTP/1.1 200 Connection est", "closed the connection before answering"),
])
def test_a_proxy_answering_nonsense_is_a_connect_failure(answer: bytes, what: str) -> None:
    with pytest.raises(ConnectFailedError,
                       match=rf"^proxy http://127\.0\.0\.1:\d+ {what}.* \(CONNECT {API}:443\)$"):
        _get_through_proxy_answering(answer, "HTTPS_PROXY", f"https://{API}/v1/Services")


def test_no_proxy_listening_is_a_connect_failure_naming_proxy_and_variable(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        async with Origin() as origin, ConnectProxy(origin.port) as proxy:
            port = proxy.port
        monkeypatch.setenv("HTTPS_PROXY", f"http://ci:hunter22@127.0.0.1:{port}")
        await _get_once(f"https://{API}/v1/Services")

    with pytest.raises(ConnectFailedError) as caught:
        _run(scenario())
    message = str(caught.value)
    assert message.startswith(f"cannot connect to {API}:443 through proxy http://127.0.0.1:")
    assert "(from HTTPS_PROXY): connection refused" in message
    assert "hunter22" not in message and "ci:" not in message


def test_the_connect_timeout_covers_a_proxy_that_never_answers(
        monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        async with Origin() as origin, ConnectProxy(origin.port, silent=True) as proxy:
            monkeypatch.setenv("HTTPS_PROXY", proxy.url)
            await _get_once(f"https://{API}/v1/Services", connect_s=0.2)

    with pytest.raises(ConnectFailedError, match=rf"^no connection to {API}:443 through proxy "
                                                 r"http://127\.0\.0\.1:\d+ \(from HTTPS_PROXY\)"
                                                 r" within 0\.2 s$"):
        _run(scenario())


@pytest.mark.parametrize(("value", "needle"), [
    ("http://ci:s3cret@proxy.test:port", "HTTPS_PROXY has an invalid proxy port"),
    ("socks5://ci:s3cret@proxy.test:1080", "HTTPS_PROXY names a socks5:// proxy"),
    ("http://ci:s3cret@:3128", "HTTPS_PROXY is not a proxy URL"),
])
def test_a_malformed_variable_is_one_line_naming_it(monkeypatch: pytest.MonkeyPatch, value: str,
                                                    needle: str) -> None:
    monkeypatch.setenv("HTTPS_PROXY", value)

    async def scenario() -> None:
        await _get_once(f"https://{API}/v1/Services")

    with pytest.raises(ProxySetupError) as caught:
        _run(scenario())
    message = str(caught.value)
    assert message.startswith(needle)
    assert "s3cret" not in message and "\n" not in message


@pytest.mark.parametrize(("answer", "attempts"), [
    (b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n", 1),
    (b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n", 3),
])
def test_the_client_says_a_refused_tunnel_at_once_and_retries_a_proxy_glitch(
        answer: bytes, attempts: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 407 fails the same way every time: the client says it after one attempt, with a hint
    about the proxy variables; a 502 (the proxy could not reach the host) is retried."""
    waits: list[float] = []

    async def no_sleep(seconds: float) -> None:
        waits.append(seconds)

    async def scenario() -> tuple[str, int]:
        async with Origin() as origin, ConnectProxy(origin.port, refuse=answer) as proxy:
            monkeypatch.setenv("HTTP_PROXY", proxy.url)
            policy = RetryPolicy(max_attempts=3, sleep=no_sleep)
            credentials = Credentials(account_sid="AC" + "0" * 32, username="AC" + "0" * 32,
                                      password="not-a-token")
            async with ServerlessClient(api_base=f"http://{API}/v1",
                                        upload_base=f"http://{API}/v1",
                                        credentials=credentials, retry=policy) as client:
                with pytest.raises(ApiConnectionError) as caught:
                    await client.list_services()
            return str(caught.value), len(proxy.requests)

    message, tunnels = _run(scenario())
    assert tunnels == attempts and len(waits) == attempts - 1
    hint = "check the proxy variables" if attempts == 1 else "check the network and retry"
    assert hint in message and "not-a-token" not in message
