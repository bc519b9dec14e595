"""ServerlessClient against the emulator over a real socket; faults from its switches."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from assetsync.config import Credentials
from assetsync.errors import (
    ApiConnectionError,
    ApiStatusError,
    AuthenticationError,
    BuildFailedError,
    NotFoundError,
    RateLimitError,
)
from assetsync.remote.client import ClientEvent, RetryPolicy, ServerlessClient

T = TypeVar("T")


class Sleeps:
    """An injected sleep that records delays and returns at once (no timed tests)."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def make_client(emulator: Any, **kw: Any) -> ServerlessClient:
    creds = kw.pop(
        "credentials",
        Credentials(account_sid=emulator.account_sid, username=emulator.account_sid,
                    password=emulator.auth_token),
    )
    kw.setdefault("retry", RetryPolicy(sleep=Sleeps(), random=lambda: 0.5))
    return ServerlessClient(
        api_base=f"{emulator.url}/v1", upload_base=f"{emulator.url}/v1", credentials=creds, **kw
    )


def run(emulator: Any, body: Callable[[ServerlessClient], Awaitable[T]], **kw: Any) -> T:
    async def main() -> T:
        async with make_client(emulator, **kw) as client:
            return await body(client)

    return asyncio.run(main())


def writes(emulator: Any) -> list[tuple[str, str, int]]:
    return [(e.method, e.path, e.status) for e in emulator.state.request_log if e.method != "GET"]


def test_full_publish_round_trip(emulator: Any, tmp_path: Path) -> None:
    logo = tmp_path / "logo.png"
    logo.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 400)

    async def body(c: ServerlessClient) -> tuple[Any, ...]:
        svc = await c.create_service("site")
        env = await c.create_environment(svc.sid, "dev", "dev")
        asset = await c.create_asset(svc.sid, "/logo.png")
        sent = await c.upload_asset_version(
            svc.sid, asset.sid, path="/logo.png", visibility="protected",
            content_path=logo, content_type="image/png",
        )
        build = await c.create_build(svc.sid, asset_versions=[sent.version.sid], runtime="node22")
        await c.wait_for_build(svc.sid, build.sid, poll_interval_s=0.01)
        done = await c.fetch_build(svc.sid, build.sid)
        dep = await c.create_deployment(svc.sid, env.sid, build.sid)
        live = await c.fetch_environment(svc.sid, env.sid)
        return svc, env, sent, done, dep, live

    svc, env, sent, done, dep, live = run(emulator, body)
    assert svc.unique_name == "site" and svc.sid.startswith("ZS")
    assert env.domain_name.endswith("-dev.twil.io")
    assert sent.version.path == "/logo.png" and sent.version.visibility == "protected"
    assert sent.size == logo.stat().st_size
    import xxhash

    assert sent.digest == "xxh3_128:" + xxhash.xxh3_128(logo.read_bytes()).hexdigest()
    assert done.status == "completed"
    assert [v.sid for v in done.asset_versions] == [sent.version.sid]
    assert done.asset_versions[0].parent_sid == sent.version.asset_sid
    assert done.runtime == "node22"
    assert dep.build_sid == done.sid and live.build_sid == done.sid
    upload = [e for e in emulator.state.request_log if e.kind == "upload"]
    assert len(upload) == 1 and upload[0].bytes_in > logo.stat().st_size
    stored = emulator.state.store.get(sent.version.sid, "asset_version")
    assert stored.data["content_type"] == "image/png"  # the Content part's MIME type
    assert stored.data["size"] == logo.stat().st_size


def test_lists_follow_every_page(emulator: Any) -> None:
    async def body(c: ServerlessClient) -> tuple[int, int]:
        svc = await c.create_service("paged")
        for i in range(7):
            await c.create_asset(svc.sid, f"/a{i}")
        c.page_size = 3
        return len(await c.list_assets(svc.sid)), len({a.sid for a in await c.list_assets(svc.sid)})

    count, unique = run(emulator, body)
    assert (count, unique) == (7, 7)
    pages = [e for e in emulator.state.request_log
             if e.method == "GET" and e.path.endswith("/Assets")]
    assert len(pages) == 6  # 3 pages per listing, twice


def test_a_failing_later_page_fails_the_whole_list(emulator: Any) -> None:
    """The official library returns a partial list here (api-contract.md §5); we must not."""

    def on_event(event: ClientEvent) -> None:
        if event.kind == "page" and event.attempt == 1:
            emulator.state.faults.add("GET", "/v1/Services/*/Assets", "500", count=50)

    async def body(c: ServerlessClient) -> object:
        svc = await c.create_service("paged")
        for i in range(5):
            await c.create_asset(svc.sid, f"/a{i}")
        c.page_size = 2
        return await c.list_assets(svc.sid)

    with pytest.raises(ApiStatusError) as info:
        run(emulator, body, on_event=on_event,
            retry=RetryPolicy(max_attempts=3, sleep=Sleeps(), random=lambda: 0.0))
    assert info.value.status_code == 500
    assert "gave up after 3 attempts" in str(info.value)


def test_429_with_retry_after_is_honoured(emulator: Any) -> None:
    emulator.state.faults.add("POST", "/v1/Services", "429-retry-after", count=2, delay_s=3)
    sleeps = Sleeps()
    events: list[ClientEvent] = []
    svc = run(emulator, lambda c: c.create_service("rl"),
              retry=RetryPolicy(sleep=sleeps, random=lambda: 0.5), on_event=events.append)
    assert svc.unique_name == "rl"
    assert sleeps.delays == [3.0, 3.0]
    assert [e.status for e in events if e.kind == "retry"] == [429, 429]
    posts = [s for m, p, s in writes(emulator) if p == "/v1/Services"]
    assert posts == [429, 429, 201]


def test_retry_after_beyond_the_cap_fails_fast_with_the_wait(emulator: Any) -> None:
    emulator.state.faults.add("POST", "/v1/Services", "429-retry-after", count=1, delay_s=600)
    with pytest.raises(RateLimitError) as info:
        run(emulator, lambda c: c.create_service("rl"))
    assert info.value.retry_after == 600
    assert info.value.code == 20429
    assert len(writes(emulator)) == 1


def test_5xx_and_dropped_connections_back_off_with_jitter(emulator: Any) -> None:
    emulator.state.faults.add("POST", "/v1/Services", "503", count=2)
    emulator.state.faults.add("POST", "/v1/Services", "drop", count=1)
    sleeps = Sleeps()
    svc = run(emulator, lambda c: c.create_service("flaky"),
              retry=RetryPolicy(sleep=sleeps, random=lambda: 0.5, base_delay_s=1.0))
    assert svc.unique_name == "flaky"
    # full jitter: random() * base * 2**(n-1) with random() = 0.5
    assert sleeps.delays == [0.5, 1.0, 2.0]


def test_upload_is_resent_whole_after_a_dropped_connection(emulator: Any, tmp_path: Path) -> None:
    big = tmp_path / "clip.mp3"
    big.write_bytes(b"ID3" + b"\x01\x02\x03\x04" * 300_000)

    async def body(c: ServerlessClient) -> Any:
        svc = await c.create_service("up")
        asset = await c.create_asset(svc.sid, "/clip.mp3")
        emulator.state.faults.add("POST", "/v1/Services/*/Assets/*/Versions", "drop", count=1)
        return await c.upload_asset_version(
            svc.sid, asset.sid, path="/clip.mp3", visibility="public",
            content_path=big, content_type="audio/mpeg",
        )

    sent = run(emulator, body)
    assert sent.size == big.stat().st_size
    ok = [e for e in emulator.state.request_log if e.kind == "upload" and e.status == 201]
    assert len(ok) == 1 and ok[0].bytes_in > big.stat().st_size


def test_bad_credentials_fail_at_once_with_a_clear_error(emulator: Any) -> None:
    secret = "not-the-token-0123456789"
    creds = Credentials(account_sid=emulator.account_sid, username=emulator.account_sid,
                        password=secret)
    with pytest.raises(AuthenticationError) as info:
        run(emulator, lambda c: c.list_services(), credentials=creds)
    err = info.value
    assert err.status_code == 401 and err.code == 20003
    assert err.method == "GET" and "/v1/Services" in err.url
    assert "TWILIO_AUTH_TOKEN" in str(err)
    assert secret not in str(err) and secret not in err.url
    assert len(emulator.state.request_log) == 1


def test_other_4xx_are_not_retried(emulator: Any) -> None:
    async def body(c: ServerlessClient) -> object:
        svc = await c.create_service("x")
        return await c.create_asset(svc.sid, "")  # FriendlyName is required: 400

    with pytest.raises(ApiStatusError) as info:
        run(emulator, body)
    assert info.value.status_code == 400 and info.value.code == 20001
    assert "POST" in str(info.value) and "/Assets" in str(info.value)
    assert [s for _, p, s in writes(emulator) if p.endswith("/Assets")] == [400]


def test_missing_resource_is_not_found(emulator: Any) -> None:
    with pytest.raises(NotFoundError) as info:
        run(emulator, lambda c: c.fetch_service("nope"))
    assert info.value.code == 20404


def test_retries_stop_at_the_time_budget(emulator: Any) -> None:
    emulator.state.faults.add("GET", "/v1/Services", "503", count=100)
    now = [0.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    policy = RetryPolicy(max_attempts=100, base_delay_s=4.0, max_delay_s=4.0, budget_s=10.0,
                         random=lambda: 1.0, sleep=sleep, clock=lambda: now[0])
    with pytest.raises(ApiStatusError) as info:
        run(emulator, lambda c: c.list_services(), retry=policy)
    assert info.value.status_code == 503
    assert now[0] == 8.0  # two 4 s waits fit in 10 s, a third would not
    assert len(emulator.state.request_log) == 3


def test_a_failed_build_names_the_build(emulator: Any, tmp_path: Path) -> None:
    f = tmp_path / "a.txt"
    f.write_text("hello")
    emulator.state.fail_next_builds(1)

    async def body(c: ServerlessClient) -> object:
        svc = await c.create_service("fails")
        asset = await c.create_asset(svc.sid, "/a.txt")
        sent = await c.upload_asset_version(svc.sid, asset.sid, path="/a.txt", visibility="public",
                                            content_path=f, content_type="text/plain")
        build = await c.create_build(svc.sid, asset_versions=[sent.version.sid])
        try:
            await c.wait_for_build(svc.sid, build.sid, poll_interval_s=0.01)
        except BuildFailedError as exc:
            return exc.build_sid, build.sid, str(exc)
        return None

    got = run(emulator, body)
    assert got is not None
    failed_sid, build, message = got
    assert failed_sid == build and build in message


def test_connection_refused_is_a_connection_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    creds = Credentials(account_sid="AC" + "0" * 32, username="AC" + "0" * 32, password="pw")
    client = ServerlessClient(
        api_base=f"http://127.0.0.1:{port}/v1", upload_base=f"http://127.0.0.1:{port}/v1",
        credentials=creds, retry=RetryPolicy(max_attempts=2, sleep=Sleeps()),
    )

    async def main() -> None:
        async with client:
            await client.list_services()

    with pytest.raises(ApiConnectionError) as info:
        asyncio.run(main())
    assert f"127.0.0.1:{port}" in str(info.value)
    assert client.stats.requests == 2


@pytest.mark.parametrize(
    ("target", "environ", "expected"),
    [
        ({"api": "twilio"}, {},
         ("https://serverless.twilio.com/v1", "https://serverless-upload.twilio.com/v1")),
        ({"api": "twilio", "region": "au1"}, {},
         ("https://serverless.sydney.au1.twilio.com/v1",
          "https://serverless-upload.sydney.au1.twilio.com/v1")),
        ({"api": "twilio", "region": "dev", "edge": None}, {},
         ("https://serverless.dev.twilio.com/v1", "https://serverless-upload.dev.twilio.com/v1")),
        ({"api": "twilio"}, {"TWILIO_REGION": "ie1", "TWILIO_EDGE": "frankfurt"},
         ("https://serverless.frankfurt.ie1.twilio.com/v1",
          "https://serverless-upload.frankfurt.ie1.twilio.com/v1")),
        ({"api": "http://127.0.0.1:8765"}, {},
         ("http://127.0.0.1:8765/v1", "http://127.0.0.1:8765/v1")),
        ({"api": "twilio", "api_url": "http://10.0.0.1:9/v1/"}, {},
         ("http://10.0.0.1:9/v1", "http://10.0.0.1:9/v1")),
        ({"api": "twilio"}, {"ASSETSYNC_API_URL": "http://a:1", "ASSETSYNC_UPLOAD_URL": "http://b:2"},
         ("http://a:1/v1", "http://b:2/v1")),
    ],
)
def test_resolve_endpoints(target: dict[str, Any], environ: dict[str, str],
                           expected: tuple[str, str]) -> None:
    from assetsync.config import parse_config
    from assetsync.remote.client import resolve_endpoints

    # The environment's stand-ins (TWILIO_REGION, ASSETSYNC_API_URL, ...) are applied once,
    # by the config; the client only ever sees the final target.
    keys = "".join(f"{k} = {v!r}\n" for k, v in target.items() if v is not None)
    config = parse_config(f"[project]\nsource = 's'\nservice = 'x'\n[target]\n{keys}",
                          file="/p/.assetsync.toml", environ=environ)
    assert resolve_endpoints(config.target) == expected



def test_429s_lower_the_number_of_requests_in_flight(emulator: Any) -> None:
    """Twilio's 429 means too many concurrent requests: send fewer at once, not just later."""
    in_flight: list[int] = []

    async def body(c: ServerlessClient) -> None:
        svc = await c.create_service("aimd")
        emulator.state.faults.add("POST", "/v1/Services/*/Assets", "429", count=3)
        await asyncio.gather(*(c.create_asset(svc.sid, f"/a{i}") for i in range(20)))
        in_flight.append(c.stats.lowest_concurrency)

    run(emulator, body, max_concurrency=8)
    assert in_flight == [1]  # 8 -> 4 -> 2 -> 1 after three 429s
    assert len(emulator.state.request_log) == 1 + 20 + 3


def test_adaptive_limit_creeps_back_up() -> None:
    from assetsync.remote.limiter import AdaptiveLimit

    limit = AdaptiveLimit(4)
    limit.throttled()
    limit.throttled()
    assert (limit.limit, limit.lowest) == (1, 1)
    limit.succeeded()
    assert limit.limit == 2
    for _ in range(2):
        limit.succeeded()
    assert limit.limit == 3
    for _ in range(3 + 4):
        limit.succeeded()
    assert limit.limit == 4  # never past the maximum


def test_api_key_credentials_work(emulator: Any) -> None:
    key, secret = "SK" + "ab" * 16, "api-key-secret-value"
    emulator.state.api_keys = {key: secret}
    creds = Credentials(account_sid=emulator.account_sid, username=key, password=secret)
    svc = run(emulator, lambda c: c.create_service("keyed"), credentials=creds)
    assert svc.unique_name == "keyed"


async def _one_version(c: ServerlessClient, tmp_path: Path, service: str) -> tuple[str, str]:
    """A new service with one uploaded version: (service SID, version SID)."""
    f = tmp_path / "a.txt"
    f.write_text("hello")
    svc = await c.create_service(service)
    asset = await c.create_asset(svc.sid, "/a.txt")
    sent = await c.upload_asset_version(svc.sid, asset.sid, path="/a.txt", visibility="public",
                                        content_path=f, content_type="text/plain")
    return svc.sid, sent.version.sid


class _FakeTime:
    """A retry policy's clock and sleep, faked: each sleep is recorded and moves the clock, and
    the emulator's builds complete once `complete_after` sleeps have passed."""

    def __init__(self, emulator: Any, complete_after: int) -> None:
        self.emulator = emulator
        self.complete_after = complete_after
        self.now = 0.0
        self.delays: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.delays.append(seconds)
        self.now += seconds
        if len(self.delays) == self.complete_after:
            self.emulator.clock.advance(1000.0)

    def policy(self) -> RetryPolicy:
        return RetryPolicy(sleep=self.sleep, random=lambda: 0.5, clock=lambda: self.now)


def test_build_polls_run_at_a_fixed_rate_from_the_build_s_creation(emulator: Any,
                                                                   tmp_path: Path) -> None:
    # Each wait counts from the previous poll's start (a poll "takes" 20 ms here), and with
    # `created_at` the first one counts from when the create request was answered.
    emulator.state.build_delay_s = 100.0
    fake = _FakeTime(emulator, complete_after=3)  # the build completes before the fourth poll

    def polled(status: str) -> None:
        fake.now += 0.02

    async def body(c: ServerlessClient) -> list[list[float]]:
        svc_sid, version_sid = await _one_version(c, tmp_path, "rate")
        seen = []
        for created_at in (None, -0.01):
            emulator.clock.reset()
            fake.delays.clear()
            fake.now = 0.0
            build = await c.create_build(svc_sid, asset_versions=[version_sid])
            await c.wait_for_build(svc_sid, build.sid, poll_interval_s=0.5, on_status=polled,
                                   created_at=created_at)
            seen.append(list(fake.delays))
        return seen

    plain, anchored = run(emulator, body, retry=fake.policy())
    assert plain == pytest.approx([0.03, 0.08, 0.18])  # 50, 100, 200 ms less each poll's 20 ms
    assert anchored == pytest.approx([0.02, 0.08, 0.18])  # the first also less the 10 ms before


def test_form_bodies_are_encoded_as_httpx_encodes_data() -> None:
    import httpx

    from assetsync.remote.http import form_body

    for data in (
        {"AssetVersions": ["ZN" + "0" * 32, "ZN" + "1" * 32], "Runtime": "node22"},
        {"Dependencies": '[{"name": "a b", "version": "^1.0+x"}]', "FriendlyName": "é/ü & =?~"},
        {"Path": "/a b/c~d.-_%", "Empty": "", "None": ()},
        {"Mixed": ["ZN" + "2" * 32, "a b", "", "c&d"], "Plain": ["x", "", "y"]},
    ):
        assert form_body(data) == httpx.Request("POST", "http://x/", data=data).content


def test_a_build_s_create_answer_stands_in_for_the_first_poll(emulator: Any,
                                                             tmp_path: Path) -> None:
    """`building` in the create answer: the first status GET waits a whole interval; a
    `completed` or `failed` answer ends the wait with no GET at all."""
    emulator.state.build_delay_s = 100.0
    fake = _FakeTime(emulator, complete_after=1)  # complete by the first poll

    async def body(c: ServerlessClient) -> tuple[list[str], list[float], int]:
        svc_sid, version_sid = await _one_version(c, tmp_path, "answered")
        build = await c.create_build(svc_sid, asset_versions=[version_sid])
        seen: list[str] = []
        await c.wait_for_build(svc_sid, build.sid, created_at=0.0, status=build.status,
                               on_status=seen.append)
        before = len(emulator.state.request_log)
        await c.wait_for_build(svc_sid, build.sid, status="completed")
        with pytest.raises(BuildFailedError):
            await c.wait_for_build(svc_sid, build.sid, status="failed")
        return seen, list(fake.delays), len(emulator.state.request_log) - before

    seen, waits, later_requests = run(emulator, body, retry=fake.policy())
    assert seen == ["building", "completed"]  # the answer's status, then one real poll
    assert waits == [pytest.approx(0.05)]  # no immediate poll: straight to the first interval
    assert len(emulator.state.request_log.matching("GET", path_glob="*/Status")) == 1
    assert later_requests == 0


def test_a_loopback_target_counts_the_gets_it_has_sent(emulator: Any) -> None:
    """The engine prepares files while its first lookup is answered, on a target on this
    machine: the client says which targets those are, and when a GET has left."""
    import httpx

    from assetsync.remote.http import is_loopback_host

    creds = Credentials(account_sid="AC" + "0" * 32, username="u", password="p")
    remote = ServerlessClient(api_base="https://serverless.twilio.com/v1",
                              upload_base="https://serverless-upload.twilio.com/v1",
                              credentials=creds)
    in_process = ServerlessClient(api_base="http://127.0.0.1:1/v1",
                                  upload_base="http://127.0.0.1:1/v1", credentials=creds,
                                  transport=httpx.AsyncHTTPTransport())  # as embedded
    assert not remote.on_this_machine and not in_process.on_this_machine
    assert make_client(emulator).on_this_machine
    assert [is_loopback_host(h) for h in ("localhost", "::1", "127.8.0.1", "10.0.0.1", "a.b")] \
        == [True, True, True, False, False]

    async def two_gets_one_post(client: ServerlessClient) -> list[int]:
        counts = [client.gets_sent]
        await client.list_services()
        counts.append(client.gets_sent)
        await client.create_service("counted", friendly_name="counted")
        counts.append(client.gets_sent)
        await client.list_services()
        return [*counts, client.gets_sent]

    assert run(emulator, two_gets_one_post) == [0, 1, 1, 2]
