"""The service manifest (issue 27, item 1): every build carries its manifest as a private
Function, and a checkout with no `.assetsync/` reads it from the live build through the Content
route and syncs as if it had the state. Real emulator over a socket, real trees in tmp_path."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from assetsync.errors import AssetsyncError
from assetsync.frozen import replace
from assetsync.limits import BuildLimits
from assetsync.plan.assess import assess
from assetsync.plan.assets import LiveBuild, LiveVersion, RecordedService
from assetsync.remote.resources import Build, VersionRef
from assetsync.state.remote_manifest import (
    MANIFEST_PATH,
    SID_TAIL,
    Manifest,
    ManifestEntry,
    Verified,
    decode,
    encode,
    holds_digest,
    verify,
)
from assetsync.sync.offline_plan import plan_offline
from assetsync.sync.operations import published_urls, status
from assetsync.sync.run import sync
from tests.sync_harness import api_get, deploy_function_build, load, make_tree

FILES = 20
OFF = "remote_manifest = false\n"


def asset_uploads(emulator: Any) -> int:
    """Acknowledged Asset Version uploads (the manifest is a Function Version)."""
    return sum(1 for e in emulator.state.request_log
               if e.kind == "upload" and e.method == "POST" and e.status == 201
               and "/Assets/" in e.path)


def upload_bytes(emulator: Any) -> int:
    """Bytes sent to the upload host's version routes (both kinds)."""
    return sum(e.bytes_in for e in emulator.state.request_log
               if e.kind == "upload" and e.method == "POST" and e.status == 201)


def checkout(src_root: Path, dst_root: Path, emulator: Any) -> Any:
    """A second copy of the project (its folder and config), without `.assetsync/`."""
    shutil.copytree(src_root / "site", dst_root / "site")
    shutil.copy(src_root / ".assetsync.toml", dst_root / ".assetsync.toml")
    assert not (dst_root / ".assetsync").exists()
    return load(dst_root, emulator)


def live_build(emulator: Any, result: Any) -> dict[str, Any]:
    env = api_get(emulator, f"/v1/Services/{result.service_sid}/Environments/"
                            f"{result.environment_sid}")
    return api_get(emulator, f"/v1/Services/{result.service_sid}/Builds/{env['build_sid']}")


def served(emulator: Any, domain: str, rel: str) -> httpx.Response:
    with httpx.Client(base_url=emulator.url, timeout=30) as http:
        return http.get(f"/_serve/{domain}/{rel.lstrip('/')}")


def synced_site(tmp_path: Path, emulator: Any, extra: str = "") -> tuple[Any, Any]:
    config = load(tmp_path / "a", emulator, extra=extra)
    make_tree(config.source, FILES)
    (config.source / "key.private.txt").write_text("server side")
    return config, sync(config)


def test_a_second_checkout_that_changes_one_file_uploads_exactly_one(
    tmp_path: Path, emulator: Any
) -> None:
    _config, first = synced_site(tmp_path, emulator)
    build = live_build(emulator, first)
    manifests = [v for v in build["function_versions"] if v["path"] == MANIFEST_PATH]
    assert len(manifests) == 1 and manifests[0]["visibility"].lower() == "private"
    other = checkout(tmp_path / "a", tmp_path / "b", emulator)
    (other.source / "d3" / "f0003.txt").write_text("changed on the second machine")
    emulator.state.request_log.clear()

    second = sync(other)

    assert asset_uploads(emulator) == 1 and second.uploaded == ("/d3/f0003.txt",)
    assert second.reused == FILES  # the 19 others and the private file
    assert not second.dropped and not second.kept_foreign
    assert any("service manifest of live build" in n for n in second.notes)
    assert served(emulator, second.domain_name, "/d3/f0003.txt").text == (
        "changed on the second machine")
    assert served(emulator, second.domain_name, "/d5/f0005.txt").status_code == 200
    # The private manifest Function is never served.
    assert served(emulator, second.domain_name, MANIFEST_PATH).status_code in (403, 404)
    # The new build's manifest lists the new version, so a third checkout needs nothing.
    third = checkout(tmp_path / "b", tmp_path / "c", emulator)
    emulator.state.request_log.clear()
    again = sync(third)
    assert again.noop and asset_uploads(emulator) == 0 and not again.dropped


def test_with_the_manifest_off_a_second_checkout_uploads_everything(
    tmp_path: Path, emulator: Any
) -> None:
    _config, first = synced_site(tmp_path, emulator, OFF)
    assert not [v for v in live_build(emulator, first)["function_versions"]
                if v["path"] == MANIFEST_PATH]
    other = checkout(tmp_path / "a", tmp_path / "b", emulator)
    (other.source / "d3" / "f0003.txt").write_text("changed on the second machine")
    emulator.state.request_log.clear()

    second = sync(other)

    assert asset_uploads(emulator) == FILES + 1
    assert not any("service manifest" in n for n in second.notes)


def test_after_another_tool_deploys_over_it_a_fresh_checkout_falls_back_and_says_so(
    tmp_path: Path, emulator: Any
) -> None:
    _config, first = synced_site(tmp_path, emulator)
    # What twilio-run deploy does: a build of its own function and assets only.
    deploy_function_build(emulator, first.service_sid, first.environment_sid, [])
    other = checkout(tmp_path / "a", tmp_path / "b", emulator)
    emulator.state.request_log.clear()

    second = sync(other)

    assert asset_uploads(emulator) == FILES + 1
    assert any("carries no assetsync manifest" in n and "twilio-run" in n
               for n in second.notes)
    # twilio-run's function is kept (invariant 3), and the new build carries a manifest again.
    paths = sorted(v["path"] for v in live_build(emulator, second)["function_versions"])
    assert paths == [MANIFEST_PATH, "/hello"]


def test_a_build_that_replaced_some_versions_keeps_only_the_entries_it_holds(
    tmp_path: Path, emulator: Any
) -> None:
    """The Console rebuilds carrying every Function over, the manifest too: an entry whose
    version is no longer in the build is left out, so that file is uploaded again."""
    _config, first = synced_site(tmp_path, emulator)
    build = live_build(emulator, first)
    replaced = next(v for v in build["asset_versions"] if v["path"] == "/d1/f0001.txt")
    with emulator.client() as http:
        version = http.post(
            f"/v1/Services/{first.service_sid}/Assets/{replaced['asset_sid']}/Versions",
            data={"Path": "/d1/f0001.txt", "Visibility": "public"},
            files={"Content": ("f.txt", b"edited in the Console", "text/plain")}).json()
        keep = [v["sid"] for v in build["asset_versions"] if v["sid"] != replaced["sid"]]
        made = http.post(f"/v1/Services/{first.service_sid}/Builds", data={
            "AssetVersions": [*keep, version["sid"]],
            "FunctionVersions": [v["sid"] for v in build["function_versions"]]}).json()
        emulator.clock.advance(5)
        http.post(f"/v1/Services/{first.service_sid}/Environments/{first.environment_sid}"
                  "/Deployments", data={"BuildSid": made["sid"]}).raise_for_status()
    other = checkout(tmp_path / "a", tmp_path / "b", emulator)
    emulator.state.request_log.clear()

    second = sync(other)

    assert second.uploaded == ("/d1/f0001.txt",) and asset_uploads(emulator) == 1
    assert any("1 entr(ies) no longer in the build" in n for n in second.notes)
    assert served(emulator, second.domain_name, "/d1/f0001.txt").content == (
        (other.source / "d1" / "f0001.txt").read_bytes())


def test_the_manifest_is_never_the_users_function_nor_dropped_as_foreign(
    tmp_path: Path, emulator: Any
) -> None:
    config, first = synced_site(tmp_path, emulator)
    assert all(MANIFEST_PATH not in u.path for u in first.urls)
    assert all(MANIFEST_PATH not in u.path for u in published_urls(config))
    assert first.function_versions == 0 and not first.kept_foreign
    # `plan` counts it against the 50 function versions of a build, and lists no function.
    planned = plan_offline(config).plan
    assert planned.counts.functions == 1 and planned.function_versions == ()

    again = sync(config)
    assert again.noop  # the manifest is no change, and not someone else's function

    (config.source / "new.txt").write_text("new")
    changed = sync(config)
    functions = live_build(emulator, changed)["function_versions"]
    assert [v["path"] for v in functions] == [MANIFEST_PATH]  # one, the new build's own
    report = status(config)
    assert report.counts["functions"] == 0 and not report.drift and not report.needs_build
    assert report.state_source == "local"


def test_status_of_a_fresh_checkout_says_the_state_came_from_the_service_manifest(
    tmp_path: Path, emulator: Any
) -> None:
    _config, _first = synced_site(tmp_path, emulator)
    other = checkout(tmp_path / "a", tmp_path / "b", emulator)

    report = status(other)

    assert report.state_source == "service manifest"
    assert not report.needs_build and not report.pending_uploads and not report.drift


def test_a_project_file_under_the_reserved_prefix_is_refused(
    tmp_path: Path, emulator: Any
) -> None:
    config = load(tmp_path, emulator)
    (config.source / "_assetsync").mkdir(parents=True)
    (config.source / "_assetsync" / "manifest").write_text("mine")
    with pytest.raises(AssetsyncError, match="/_assetsync/ is reserved"):
        sync(config)
    assert not [e for e in emulator.state.request_log.writes
                if e.kind == "upload" or e.path.endswith(("/Builds", "/Deployments"))]


# --- the format ----------------------------------------------------------------------------

_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)
_entry = st.builds(ManifestEntry, _text, st.sampled_from(["public", "protected", "private"]),
                   _text, _text, st.integers(0, 2**40), _text, _text, st.none() | _text)


@given(st.lists(_entry, max_size=30), st.lists(_entry, max_size=5), st.none() | _text)
def test_encode_then_decode_gives_the_manifest_back(
    assets: list[ManifestEntry], functions: list[ManifestEntry], base: str | None
) -> None:
    code = encode(Manifest(tuple(assets), tuple(functions), base)).decode("utf-8")
    found = decode(code)
    assert found is not None and found.build_base == base

    def tails(entries: list[ManifestEntry]) -> list[ManifestEntry]:
        # Format 2 carries each version SID's tail; `verify` takes it whole from the build.
        return sorted((e._replace(version_sid=e.version_sid[-SID_TAIL:]) for e in entries),
                      key=repr)

    assert sorted(found.assets, key=repr) == tails(assets)
    assert sorted(found.functions, key=repr) == tails(functions)
    # The same manifest in another order encodes to the same bytes (so it is reused).
    assert encode(Manifest(tuple(reversed(assets)), tuple(functions), base)).decode() == code


@given(st.text(max_size=200))
def test_anything_else_decodes_to_nothing(code: str) -> None:
    assert decode(code) is None or 'exports.manifest = "' in code


def test_a_cut_short_manifest_decodes_to_nothing() -> None:
    code = encode(Manifest((ManifestEntry("/a", "public", "d", "ZN1", 1, "t", "a"),))).decode()
    start = code.index('"') + 1
    assert decode(code[: start + 10] + '";') is None


def test_verify_keeps_only_what_the_build_holds() -> None:
    kept = ManifestEntry("/a", "public", "d1", "ZN1", 1, "text/plain", "a")
    gone = ManifestEntry("/b", "public", "d2", "ZN2", 1, "text/plain", "b")
    moved = ManifestEntry("/c", "public", "d3", "ZN3", 1, "text/plain", "c")
    build = Build("ZB1", "ZS1", "completed",
                  (VersionRef("ZN1", "ZH1", "/a", "PUBLIC"), VersionRef("ZN3", "ZH3", "/x", "PUBLIC")),
                  (), (), None, None)
    assert verify(Manifest((kept, gone, moved)), build) == Verified(Manifest((kept,)), 2, False)
    # Exact only when every entry is there and the build holds nothing else it did not hold.
    exact = Manifest((kept,), holds=holds_digest(["ZN1", "ZN3"]))
    assert verify(exact, build).exact
    assert not verify(replace(exact, holds=holds_digest(["ZN1"])), build).exact


def test_a_decoded_manifest_gets_each_sid_whole_from_its_build_and_drops_a_replaced_one() -> None:
    sid_a, sid_b = "ZN" + "a" * 24 + "0badcafe", "ZN" + "b" * 24 + "12345678"
    manifest = Manifest((ManifestEntry("/a.txt", "public", "d1", sid_a, 1, "text/plain", "a.txt"),
                         ManifestEntry("/b.txt", "public", "d2", sid_b, 2, "text/plain", "src/b")))
    code = encode(manifest).decode()
    assert sid_a not in code and sid_b not in code  # tails only: a third of the bytes
    found = decode(code)
    assert found is not None
    replaced = "ZN" + "c" * 24 + "87654321"  # another tool's version at /b.txt
    build = Build("ZB1", "ZS1", "completed",
                  (VersionRef(sid_a, "ZH1", "/a.txt", "PUBLIC"),
                   VersionRef(replaced, "ZH2", "/b.txt", "PUBLIC")), (), (), None, None)
    verified = verify(found, build)
    assert verified.manifest.assets == (manifest.assets[0],) and verified.dropped == 1
    whole = Build("ZB2", "ZS1", "completed",
                  (VersionRef(sid_a, "ZH1", "/a.txt", "PUBLIC"),
                   VersionRef(sid_b, "ZH2", "/b.txt", "PUBLIC")), (), (), None, None)
    assert verify(found, whole).manifest.assets == manifest.assets


def test_a_format_1_manifest_is_still_read() -> None:
    import base64
    import json
    import zlib

    row = ["/a", "public", "d1", "ZN" + "1" * 32, 1, "text/plain", "a", None]
    doc = {"format": 1, "build_base": None, "holds": "", "assets": [row], "functions": []}
    packed = base64.b64encode(zlib.compress(json.dumps(doc).encode())).decode()
    found = decode(f'exports.manifest = "{packed}";')
    assert found is not None and found.assets == (ManifestEntry(*row),)


SHARD = """[shard]
public_protected_per_build = 10
private_per_build = 2
"""


def test_a_sharded_site_reads_each_services_own_manifest(tmp_path: Path, emulator: Any) -> None:
    config = load(tmp_path / "a", emulator, extra=SHARD)
    make_tree(config.source, 25)
    first = sync(config)
    homes = {p: r.service for r in first.services for p in r.uploaded}
    assert len(first.services) == 3
    other = checkout(tmp_path / "a", tmp_path / "b", emulator)
    (other.source / "d7" / "f0017.txt").write_text("changed on the second machine")
    emulator.state.request_log.clear()

    second = sync(other)

    assert asset_uploads(emulator) == 1
    assert [(r.service, r.uploaded) for r in second.services if r.uploaded] == [
        (homes["/d7/f0017.txt"], ("/d7/f0017.txt",))]
    assert not second.dropped
    assert sum(1 for n in second.notes if "service manifest of live build" in n) == 3


def test_the_manifest_takes_one_of_the_builds_function_slots() -> None:
    """With as many functions as a build holds, the manifest does not fit: one error, naming
    the way out; without the manifest the same build fits."""
    live = LiveBuild("ZB1", function_versions=(LiveVersion("ZN1", "ZH1", "/hello", "public"),))
    limits = BuildLimits(functions=1)
    found = assess([], RecordedService(), live, limits=limits, manifest=True)
    assert found.plan.counts.functions == 2
    assert [i.message for i in found.errors if "remote_manifest = false" in i.message]
    assert not assess([], RecordedService(), live, limits=limits, manifest=False).errors
