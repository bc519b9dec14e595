"""Benchmark the emulator so it is never what limits a sync benchmark; prints JSON.

    .venv/bin/python bench/bench_emulator.py [--count 1000] [--size 102400] [--concurrency 10]

Measures, in one run and side by side:
- upload throughput of COUNT x SIZE asset versions at CONCURRENCY over a socket, against a
  baseline: the same uvicorn server with an endpoint that only drains the body (the ceiling set
  by HTTP + multipart on this machine), reported as a ratio;
- the same uploads through the in-process embedded transport (what `api = "local"` uses);
- p50/p99 latency of a metadata GET (an Asset Version), against the baseline's trivial GET;
- peak RSS of an emulator process (`assetsync emulator`) while it receives a 25 MB upload,
  against the same process idle;
- the requests of an incremental sync against an emulator process:
  p50/p90 of creating a build of 1,000 versions, of a build status GET and of a deployment
  POST, next to the same figures from an emulator process running the code of `--baseline-rev`.

`--only requests` runs the last section alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psutil  # type: ignore[import-untyped]

from assetsync.emulator import LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN, embedded_transport
from assetsync.emulator.serve import start_in_thread
from assetsync.emulator.state import EmulatorState

AUTH = (LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN)


async def _sink_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Baseline: drain the request, answer a small JSON body (what any server must at least do)."""
    if scope["type"] != "http":
        return
    while True:
        message = await receive()
        if not message.get("more_body"):
            break
    body = b'{"sid": "ZN00000000000000000000000000000000"}'
    status = 201 if scope["method"] == "POST" else 200
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _start_sink() -> tuple[str, Any]:
    import uvicorn

    config = uvicorn.Config(
        _sink_app,
        host="127.0.0.1",
        port=0,
        lifespan="off",
        log_config=None,
        log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    return f"http://127.0.0.1:{port}", server


async def _setup(client: httpx.AsyncClient, count: int) -> list[str]:
    svc = (
        await client.post("/v1/Services", data={"UniqueName": "bench", "FriendlyName": "b"})
    ).json()
    assets = []
    for i in range(count):
        r = await client.post(
            f"/v1/Services/{svc['sid']}/Assets", data={"FriendlyName": f"/f{i}.bin"}
        )
        assets.append(r.json()["links"]["asset_versions"])
    return assets


async def _uploads(
    client: httpx.AsyncClient, urls: list[str], payload: bytes, concurrency: int
) -> float:
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int, url: str) -> None:
        async with gate:
            r = await client.post(
                url,
                data={"Path": f"/f{i}.bin", "Visibility": "public"},
                files={"Content": (f"f{i}.bin", payload, "application/octet-stream")},
            )
            if r.status_code != 201:
                raise RuntimeError(f"upload failed: {r.status_code} {r.text[:200]}")

    started = time.perf_counter()
    await asyncio.gather(*(one(i, u) for i, u in enumerate(urls)))
    return time.perf_counter() - started


async def _latencies(client: httpx.AsyncClient, url: str, n: int) -> dict[str, float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        r = await client.get(url)
        samples.append((time.perf_counter() - started) * 1000)
        if r.status_code != 200:
            raise RuntimeError(f"GET failed: {r.status_code}")
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples), 3),
        "p99_ms": round(samples[min(len(samples) - 1, int(len(samples) * 0.99))], 3),
    }


async def _throughput(
    base: str | None, transport: Any, count: int, size: int, conc: int, sink: bool = False
) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=conc, max_keepalive_connections=conc)
    async with httpx.AsyncClient(
        base_url=base or "http://local", transport=transport, auth=AUTH, limits=limits, timeout=120
    ) as client:
        if sink:
            urls = [f"/v1/Services/ZS0/Assets/ZH{i}/Versions" for i in range(count)]
            meta_url = "/v1/Services/ZS0/Assets/ZH0/Versions/ZN0"
        else:
            urls = await _setup(client, count)
        payload = os.urandom(size)
        seconds = await _uploads(client, urls, payload, conc)
        if not sink:
            listed = (await client.get(urls[0])).json()["asset_versions"]
            meta_url = urlsplit(listed[0]["url"]).path
        latency = await _latencies(client, meta_url, 500)
    return {
        "seconds": round(seconds, 3),
        "uploads_per_s": round(count / seconds, 1),
        "mb_per_s": round(count * size / seconds / 1e6, 2),
        "metadata_get": latency,
    }


def _rss_during_big_upload(size: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "emu"
        big = Path(tmp) / "big.bin"
        with big.open("wb") as f:
            for _ in range(size // (1 << 20) + 1):
                f.write(os.urandom(1 << 20))
        with big.open("r+b") as g:
            g.truncate(size)
        proc = subprocess.Popen(
            [sys.executable, "-m", "assetsync", "emulator", "--port", "0", "--data", str(data)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().split()[-1]
            server = psutil.Process(proc.pid)
            with httpx.Client(base_url=url, auth=AUTH, timeout=120) as client:
                svc = client.post(
                    "/v1/Services", data={"UniqueName": "big", "FriendlyName": "b"}
                ).json()
                asset = client.post(
                    f"{svc['url']}/Assets", data={"FriendlyName": "/big.bin"}
                ).json()
                idle = server.memory_info().rss
                peak = [idle]
                done = threading.Event()

                def sample() -> None:
                    while not done.is_set():
                        peak[0] = max(peak[0], server.memory_info().rss)
                        time.sleep(0.005)

                sampler = threading.Thread(target=sample, daemon=True)
                sampler.start()
                with big.open("rb") as body:
                    r = client.post(
                        asset["links"]["asset_versions"],
                        data={"Path": "/big.bin", "Visibility": "public"},
                        files={"Content": ("big.bin", body, "application/octet-stream")},
                    )
                done.set()
                sampler.join()
                if r.status_code != 201:
                    raise RuntimeError(f"25 MB upload failed: {r.status_code} {r.text[:200]}")
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return {
        "upload_bytes": size,
        "idle_rss_mb": round(idle / 1e6, 1),
        "peak_rss_mb": round(peak[0] / 1e6, 1),
        "growth_mb": round((peak[0] - idle) / 1e6, 1),
        "under_100_mb": peak[0] < 100e6,
    }


# the requests of an incremental sync ---------------------------------------------------------

# The last commit before the build-request speed work: its emulator is the default baseline.
BASELINE_REV = "949c61e"


def _emulator_process(code_root: Path | None, data: Path) -> tuple[subprocess.Popen[str], str]:
    """`assetsync emulator` in its own process (as bench_sync.py runs it), from `code_root`'s
    package when given (a checkout of another revision), else from this tree's."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # `python -m` puts the working folder first on sys.path: the checkout's package wins there.
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "assetsync",
            "emulator",
            "--port",
            str(port),
            "--data",
            str(data),
            "--build-delay",
            "0",
            "--limit",
            "builds_per_hour=1000000",
        ],
        cwd=code_root or data.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, url
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("the emulator process did not start")


def _publish_versions(client: httpx.Client, count: int) -> tuple[str, str, list[str], str]:
    """A service, an environment, `count` assets with one small version each; returns the
    service and environment URLs, the version SIDs and the first asset's versions URL."""
    svc = client.post("/v1/Services", data={"UniqueName": "reqs", "FriendlyName": "r"}).json()
    env = client.post(f"{svc['url']}/Environments", data={"UniqueName": "dev"}).json()
    sids, first = [], ""
    for i in range(count):
        asset = client.post(f"{svc['url']}/Assets", data={"FriendlyName": f"/a{i}"}).json()
        first = first or asset["links"]["asset_versions"]
        sids.append(_upload(client, asset["links"]["asset_versions"], i).json()["sid"])
    return svc["url"], env["url"], sids, first


def _upload(client: httpx.Client, versions_url: str, i: int) -> httpx.Response:
    return client.post(
        versions_url,
        data={"Path": f"/dir{i % 20}/a{i}.bin", "Visibility": "public"},
        files={"Content": (f"a{i}.bin", f"asset {i}".encode(), "application/octet-stream")},
    )


def _timed_rounds(
    url: str, count: int, rounds: int
) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """What an incremental sync of one changed file asks, `rounds` times: upload its new
    version, create the build naming it and the other versions, poll its status, deploy it,
    read the environment back. Also returns the last build's request, for `_first_builds`."""
    samples: dict[str, list[float]] = {}
    with httpx.Client(base_url=url, auth=AUTH, timeout=60) as client:
        svc, env, sids, first_versions = _publish_versions(client, count)
        headers = {"Content-Type": "application/x-www-form-urlencoded"}

        def timed(name: str, call: Any, *args: Any, **kwargs: Any) -> httpx.Response:
            started = time.perf_counter()
            response: httpx.Response = call(*args, **kwargs)
            samples.setdefault(name, []).append((time.perf_counter() - started) * 1000)
            if response.status_code not in (200, 201):
                raise RuntimeError(f"{name} failed: {response.status_code} {response.text[:200]}")
            return response

        for _ in range(rounds + 2):  # two warm-up rounds, dropped below
            sids[0] = timed("version_upload", _upload, client, first_versions, 0).json()["sid"]
            # What the sync client sends: one form body, AssetVersions repeated.
            body = "&".join(f"AssetVersions={sid}" for sid in sids).encode()
            build = timed(
                "build_create", client.post, f"{svc}/Builds", content=body, headers=headers
            )
            answer = build.json()  # decoding the answer is the client's time: not counted
            status = timed("build_status", client.get, answer["links"]["build_status"])
            if status.json()["status"] != "completed":
                raise RuntimeError(f"build {answer['sid']} ended {status.json()['status']}")
            deploy = {"BuildSid": answer["sid"]}
            timed("deployment", client.post, f"{env}/Deployments", data=deploy)
            timed("environment_get", client.get, env)
    last = {"builds": urlsplit(f"{svc}/Builds").path, "sids": sids}
    return {name: values[2:] for name, values in samples.items()}, last


# Run with a code root's package: times a build through a new embedded transport each time (what
# every `assetsync sync` with `api = "local"` is: a new process, nothing remembered yet).
_FIRST_BUILD_SCRIPT = """
import asyncio, json, sys, time
import httpx
from assetsync.emulator import LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN, EmbeddedTransport
from assetsync.emulator.state import EmulatorLimits, EmulatorState

job = json.load(sys.stdin)
body = "&".join("AssetVersions=" + sid for sid in job["sids"]).encode()
form = {"Content-Type": "application/x-www-form-urlencoded"}

async def first_build():
    state = EmulatorState(job["data"], limits=EmulatorLimits(builds_per_hour=10**9))
    async with httpx.AsyncClient(transport=EmbeddedTransport(state), base_url="http://local",
                                 auth=(LOCAL_ACCOUNT_SID, LOCAL_AUTH_TOKEN)) as client:
        started = time.perf_counter()
        response = await client.post(job["builds"], content=body, headers=form)
        elapsed = time.perf_counter() - started
    if response.status_code != 201:
        raise SystemExit(response.text[:200])
    return elapsed * 1000

print(json.dumps([asyncio.run(first_build()) for _ in range(job["n"])]))
"""


def _first_builds(code_root: Path | None, data: Path, last: dict[str, Any], n: int) -> list[float]:
    job = json.dumps({**last, "data": str(data), "n": n})
    done = subprocess.run(
        [sys.executable, "-c", _FIRST_BUILD_SCRIPT],
        cwd=code_root or data.parent,  # '' (the working folder) leads sys.path under -c
        input=job,
        capture_output=True,
        text=True,
        check=True,
    )
    samples: list[float] = json.loads(done.stdout)
    return samples


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 3),
        "p90_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))], 3),
    }


def _request_latencies(
    count: int, rounds: int, repeat: int, baseline_rev: str | None
) -> dict[str, Any]:
    """p50/p90 of an incremental sync's emulator requests, this tree against `baseline_rev`;
    the contenders alternate `repeat` times on fresh data folders and their samples are pooled."""
    pooled: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-requests-") as tmp:
        roots: dict[str, Path | None] = {"current": None}
        if baseline_rev:
            checkout = Path(tmp) / "baseline"
            checkout.mkdir()
            archive = subprocess.run(
                [
                    "git",
                    "-C",
                    str(Path(__file__).resolve().parents[1]),
                    "archive",
                    baseline_rev,
                    "assetsync",
                ],
                check=True,
                capture_output=True,
            ).stdout
            subprocess.run(["tar", "-x", "-C", str(checkout)], input=archive, check=True)
            roots = {"baseline": checkout, **roots}
        for round_ in range(repeat):
            for name, code_root in roots.items():
                data = Path(tmp) / f"{name}{round_}" / "emulator"
                data.parent.mkdir()
                proc, url = _emulator_process(code_root, data)
                try:
                    samples, last = _timed_rounds(url, count, rounds)
                finally:
                    proc.terminate()
                    proc.wait(timeout=30)
                samples["embedded_first_build"] = _first_builds(code_root, data, last, rounds)
                for key, values in samples.items():
                    pooled.setdefault(name, {}).setdefault(key, []).extend(values)
    out: dict[str, Any] = {
        "versions_per_build": count,
        "samples_per_request": rounds * repeat,
        "baseline_rev": baseline_rev,
    }
    for name, by_request in pooled.items():
        out[name] = {key: _percentiles(values) for key, values in by_request.items()}
    if "baseline" in out:
        out["ratio_baseline_over_current_p50"] = {
            key: round(out["baseline"][key]["p50_ms"] / out["current"][key]["p50_ms"], 2)
            for key in out["current"]
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--size", type=int, default=100 * 1024)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=2, help="alternating rounds; best of each")
    parser.add_argument("--big", type=int, default=25_000_000, help="bytes of the RSS upload")
    parser.add_argument("--only", choices=["requests"], help="run one section alone")
    parser.add_argument("--versions", type=int, default=1000, help="versions per timed build")
    parser.add_argument("--rounds", type=int, default=40, help="timed builds per emulator")
    parser.add_argument(
        "--baseline-rev",
        default=BASELINE_REV,
        help="git revision whose emulator is the baseline of the request timings ('none': skip)",
    )
    args = parser.parse_args()
    baseline_rev = None if args.baseline_rev == "none" else args.baseline_rev
    requests = _request_latencies(args.versions, args.rounds, args.repeat, baseline_rev)
    if args.only == "requests":
        print(json.dumps({"benchmark": "emulator", "requests": requests}, indent=2))
        return

    def best(runs: list[dict[str, Any]]) -> dict[str, Any]:
        # The machine is shared: keep each contender's best run, measured alternately.
        return max(runs, key=lambda r: r["uploads_per_s"])

    sink_url, sink_server = _start_sink()
    baselines, sockets, embeddeds = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.repeat):
            baselines.append(
                asyncio.run(
                    _throughput(sink_url, None, args.count, args.size, args.concurrency, sink=True)
                )
            )
            state = EmulatorState(Path(tmp) / f"socket{round_}")
            running = start_in_thread(state)
            try:
                sockets.append(
                    asyncio.run(
                        _throughput(running.url, None, args.count, args.size, args.concurrency)
                    )
                )
            finally:
                running.stop()
                state.close()
            transport = embedded_transport(Path(tmp) / f"embedded{round_}")
            embeddeds.append(
                asyncio.run(_throughput(None, transport, args.count, args.size, args.concurrency))
            )
    sink_server.should_exit = True
    baseline, socket, embedded = best(baselines), best(sockets), best(embeddeds)

    result = {
        "benchmark": "emulator",
        "params": {
            "count": args.count,
            "size": args.size,
            "concurrency": args.concurrency,
            "repeat": args.repeat,
        },
        "cpus": os.cpu_count(),
        "baseline_drain_only_server": baseline,
        "emulator_socket": socket,
        "emulator_embedded": embedded,
        "ratio_socket_vs_baseline_throughput": round(
            socket["uploads_per_s"] / baseline["uploads_per_s"], 3
        ),
        "ratio_socket_vs_baseline_get_p50": round(
            socket["metadata_get"]["p50_ms"] / baseline["metadata_get"]["p50_ms"], 2
        ),
        "big_upload_rss": _rss_during_big_upload(args.big),
        "requests": requests,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
