"""Two machines syncing one service at once (issue 27, item 2): two copies of the project, two
state folders, two threads, one emulator over a socket. Just before deploying, a sync checks the
live build is still the one it assessed: one deploys, the other stops with the drift message (or,
with `--adopt`, rebases onto the first one's build); nothing is lost and no build is deployed
over one its sync did not see.

The second machine's build is made while the first one's is still building (the emulator's
build delay is raised to widen that window); the second machine then waits, in its
`build_created` progress callback, until the first one's sync has returned, so the order of the
two deploys is fixed and the test never depends on timing.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from assetsync.errors import DriftError
from assetsync.results import SyncEvent, SyncResult
from assetsync.sync.run import sync
from tests.sync_harness import api_get, load, make_tree

FILES = 12


def two_machines(tmp_path: Path, emulator: Any) -> tuple[Any, Any, SyncResult]:
    """Machine A publishes the site; machine B is a second checkout with its own state
    (read from the live build's manifest by its first sync, which uploads nothing)."""
    a = load(tmp_path / "a", emulator)
    make_tree(a.source, FILES)
    first = sync(a)
    shutil.copytree(a.source, tmp_path / "b" / "site")
    shutil.copy(tmp_path / "a" / ".assetsync.toml", tmp_path / "b" / ".assetsync.toml")
    b = load(tmp_path / "b", emulator)
    assert sync(b).noop and b.state_dir != a.state_dir
    return a, b, first


def race(a: Any, b: Any, emulator: Any, **b_flags: Any) -> tuple[SyncResult, Any]:
    """A and B sync at once; B's build is made before A deploys, and B deploys after A's sync
    returned. Returns A's result and B's result (or the error B stopped with)."""
    emulator.state.build_delay_s = 0.4  # both builds are `building` at the same time
    a_done, b_built = threading.Event(), threading.Event()
    out: dict[str, Any] = {}

    def run_a() -> None:
        b_built.wait(60)  # A starts building only once B's build exists
        try:
            out["a"] = sync(a)
        finally:
            a_done.set()

    def on_b(event: SyncEvent) -> None:
        if event.kind == "build_created":
            b_built.set()
            a_done.wait(60)  # B's deploy comes after A's

    def run_b() -> None:
        try:
            out["b"] = sync(b, on_event=on_b, **b_flags)
        except DriftError as exc:
            out["b"] = exc
        finally:
            b_built.set()

    threads = [threading.Thread(target=run_a), threading.Thread(target=run_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert isinstance(out.get("a"), SyncResult), out
    return out["a"], out["b"]


def served(emulator: Any, domain: str, rel: str) -> httpx.Response:
    with httpx.Client(base_url=emulator.url, timeout=30) as http:
        return http.get(f"/_serve/{domain}/{rel}")


def live_sid(emulator: Any, result: SyncResult) -> str:
    env = api_get(emulator, f"/v1/Services/{result.service_sid}/Environments/"
                            f"{result.environment_sid}")
    return str(env["build_sid"])


def deployed_builds(emulator: Any, result: SyncResult) -> list[str]:
    doc = api_get(emulator, f"/v1/Services/{result.service_sid}/Environments/"
                            f"{result.environment_sid}/Deployments")
    return [d["build_sid"] for d in doc["deployments"]]


def test_the_second_machine_stops_with_the_drift_message_and_nothing_is_lost(
    tmp_path: Path, emulator: Any
) -> None:
    a, b, first = two_machines(tmp_path, emulator)
    (a.source / "from-a.txt").write_text("made on machine A")
    (b.source / "from-b.txt").write_text("made on machine B")
    before = deployed_builds(emulator, first)

    done_a, stopped = race(a, b, emulator)

    assert isinstance(stopped, DriftError)
    message = str(stopped)
    assert "stopped before deploying, nothing was deployed" in message
    assert f"the live build {done_a.build_sid} is not {first.build_sid}" in message
    assert "/from-a.txt" in message and "--adopt" in message
    # A's build is live, and B deployed nothing over it.
    assert live_sid(emulator, first) == done_a.build_sid
    assert deployed_builds(emulator, first) == [*before, done_a.build_sid]
    assert served(emulator, done_a.domain_name or "", "from-a.txt").text == "made on machine A"
    # B's upload was recorded: `sync --adopt`, as the message says, builds on A's build
    # (keeping A's file) and sends nothing again.
    emulator.state.build_delay_s = 0.05
    again = sync(b, adopt=True)
    assert again.uploaded == () and again.deployment_sid is not None
    assert again.kept_foreign == ("/from-a.txt",)
    assert served(emulator, again.domain_name or "", "from-b.txt").text == "made on machine B"
    assert served(emulator, again.domain_name or "", "from-a.txt").text == "made on machine A"


def test_with_adopt_the_second_machine_rebases_onto_the_first_ones_build(
    tmp_path: Path, emulator: Any
) -> None:
    a, b, first = two_machines(tmp_path, emulator)
    (a.source / "from-a.txt").write_text("made on machine A")
    (b.source / "from-b.txt").write_text("made on machine B")
    (b.source / "d1" / "f0001.txt").write_text("changed on machine B")
    before = deployed_builds(emulator, first)

    done_a, done_b = race(a, b, emulator, adopt=True)

    assert isinstance(done_b, SyncResult), done_b
    assert any(f"rebased onto live build {done_a.build_sid}" in n for n in done_b.notes)
    # Both deployed, A's first; B's build was made on A's: it holds A's file too.
    assert deployed_builds(emulator, first) == [*before, done_a.build_sid, done_b.build_sid]
    assert live_sid(emulator, first) == done_b.build_sid
    domain = done_b.domain_name or ""
    assert served(emulator, domain, "from-a.txt").text == "made on machine A"
    assert served(emulator, domain, "from-b.txt").text == "made on machine B"
    assert served(emulator, domain, "d1/f0001.txt").text == "changed on machine B"
    for i in range(FILES):
        assert served(emulator, domain, f"d{i % 10}/f{i:04d}.txt").status_code == 200


@pytest.mark.parametrize("adopt", [False, True])
def test_a_build_finished_after_another_deploy_is_never_deployed_over_it(
    tmp_path: Path, emulator: Any, adopt: bool
) -> None:
    """Whatever B does, the build A deployed is in B's final build or stays live."""
    a, b, first = two_machines(tmp_path, emulator)
    (a.source / "from-a.txt").write_text("A")
    (b.source / "from-b.txt").write_text("B")

    done_a, done_b = race(a, b, emulator, adopt=adopt)

    live = api_get(emulator, f"/v1/Services/{first.service_sid}/Builds/"
                             f"{live_sid(emulator, first)}")
    a_build = api_get(emulator, f"/v1/Services/{first.service_sid}/Builds/{done_a.build_sid}")
    a_new = next(v["sid"] for v in a_build["asset_versions"] if v["path"] == "/from-a.txt")
    assert a_new in {v["sid"] for v in live["asset_versions"]}
    assert isinstance(done_b, SyncResult) == adopt
