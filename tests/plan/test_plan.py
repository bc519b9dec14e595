"""build_plan: uploads vs reuses, drops, foreign versions kept, limits, determinism."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from assetsync.limits import BuildLimits
from assetsync.models import PublishedFile, Visibility
from assetsync.plan.assets import LiveBuild, LiveVersion, RecordedService, build_plan


def _file(path: str, digest: str = "d", vis: Visibility = Visibility.PUBLIC) -> PublishedFile:
    return PublishedFile(
        path=path,
        visibility=vis,
        digest=digest,
        size=len(path),
        source=path.lstrip("/"),
        content_path="/src/" + path.lstrip("/"),
        content_type="image/png",
    )


def _deployed(*entries: tuple[str, str, str], build: str | None = "ZB1") -> RecordedService:
    """What assetsync recorded after deploying `(path, digest, version SID)` entries (public)."""
    return RecordedService(
        asset_sids={path: "ZH" + sid for path, _d, sid in entries},
        versions={(digest, path, "public"): sid for path, digest, sid in entries},
        owned_paths=frozenset(path for path, _d, _s in entries),
        deployed_version_sids=frozenset(sid for _p, _d, sid in entries),
        last_build_sid=build,
    )


def test_nothing_recorded_means_everything_uploads() -> None:
    files = [_file("/b.png"), _file("/a.png", vis=Visibility.PRIVATE)]
    plan = build_plan(files, RecordedService(), None)
    assert [f.path for f in plan.uploads] == ["/a.png", "/b.png"]
    assert plan.create_assets == ("/a.png", "/b.png")
    assert plan.reuses == () and plan.drops == ()
    assert plan.needs_build and not plan.is_noop
    assert (plan.counts.public, plan.counts.private) == (1, 1)


def test_recorded_versions_are_reused_and_changes_upload() -> None:
    recorded = _deployed(
        ("/a.png", "d", "ZNa"), ("/b.png", "old", "ZNb_old"), ("/gone.png", "g", "ZNg")
    )
    plan = build_plan([_file("/a.png"), _file("/b.png", digest="new")], recorded, None)
    assert [(f.path, sid) for f, sid in plan.reuses] == [("/a.png", "ZNa")]
    assert [f.path for f in plan.uploads] == ["/b.png"]
    assert plan.create_assets == ()
    assert plan.drops == ("/gone.png",)
    assert plan.needs_build


class _AskedPaths(dict[str, str]):
    """An Asset SID map that notes every path looked up in it."""

    def __init__(self, entries: dict[str, str]) -> None:
        super().__init__(entries)
        self.asked: set[object] = set()

    def __contains__(self, path: object) -> bool:
        self.asked.add(path)
        return super().__contains__(path)


def test_only_paths_without_a_recorded_version_are_looked_up_for_an_asset() -> None:
    """A path with a recorded version has its Asset; the plan asks the Asset SIDs about the
    others only (the sync reads them from the state on first use)."""
    recorded = _deployed(("/a.png", "d", "ZNa"), ("/b.png", "old", "ZNb"))
    assets = _AskedPaths({**recorded.asset_sids, "/made.png": "ZHmade"})
    recorded = RecordedService(asset_sids=assets, versions=recorded.versions,
                               owned_paths=recorded.owned_paths)
    files = [_file("/a.png"), _file("/b.png", digest="new"), _file("/made.png"),
             _file("/new.png")]
    plan = build_plan(files, recorded, None)
    assert plan.create_assets == ("/new.png",)
    assert assets.asked == {"/made.png", "/new.png"}


def test_visibility_change_is_a_new_version() -> None:
    recorded = _deployed(("/a.png", "d", "ZNa"))
    plan = build_plan([_file("/a.png", vis=Visibility.PROTECTED)], recorded, None)
    assert [f.path for f in plan.uploads] == ["/a.png"] and plan.reuses == ()


def test_no_change_is_a_noop_and_full_reuploads() -> None:
    recorded = _deployed(("/a.png", "d", "ZNa"))
    assert build_plan([_file("/a.png")], recorded, None).is_noop
    full = build_plan([_file("/a.png")], recorded, None, full=True)
    assert [f.path for f in full.uploads] == ["/a.png"] and full.reuses == () and full.needs_build


def test_live_build_foreign_versions_kept_functions_carried() -> None:
    recorded = _deployed(("/a.png", "d", "ZNa"), ("/old.png", "o", "ZNo"))
    live = LiveBuild(
        build_sid="ZB1",
        asset_versions=(
            LiveVersion("ZNa", "ZHa", "/a.png", "public"),
            LiveVersion("ZNo", "ZHo", "/old.png", "public"),
            LiveVersion("ZNx", "ZHx", "/console.mp3", "PROTECTED"),
            LiveVersion("ZNt", "ZHt", "/taken.png", "public"),
        ),
        function_versions=(LiveVersion("ZNf", "ZHf", "/hello", "public"),),
        dependencies=(("twilio", "5.0.0"),),
        runtime="node22",
    )
    plan = build_plan([_file("/a.png"), _file("/taken.png")], recorded, live)
    assert [v.path for v in plan.kept_foreign] == ["/console.mp3"]
    assert plan.drops == ("/old.png",)
    assert [v.sid for v in plan.function_versions] == ["ZNf"]
    assert plan.dependencies == (("twilio", "5.0.0"),) and plan.runtime == "node22"
    assert plan.counts.protected == 1 and plan.counts.public == 2 and plan.counts.functions == 1
    warnings = [i for i in plan.issues if i.severity == "warning"]
    assert [i.path for i in warnings] == ["/taken.png"]
    assert plan.needs_build


def test_live_build_matching_desired_set_needs_no_build() -> None:
    recorded = _deployed(("/a.png", "d", "ZNa"))
    live = LiveBuild(
        "ZB1",
        asset_versions=(
            LiveVersion("ZNa", "ZHa", "/a.png", "public"),
            LiveVersion("ZNx", "ZHx", "/x.png", "public"),
        ),
    )
    plan = build_plan([_file("/a.png")], recorded, live)
    assert plan.is_noop and [v.sid for v in plan.kept_foreign] == ["ZNx"]


def test_over_the_per_build_limit_is_an_error_naming_the_limit() -> None:
    files = [_file(f"/p{i}.png", vis=Visibility.PRIVATE) for i in range(3)]
    plan = build_plan(files, RecordedService(), None, limits=BuildLimits(private=2))
    assert [i.severity for i in plan.errors] == ["error"]
    assert "3 private asset versions, over the limit of 2" in plan.errors[0].message


def test_to_json_is_json_and_complete() -> None:
    plan = build_plan([_file("/a.png")], RecordedService(), None)
    data = json.loads(json.dumps(plan.to_json()))
    assert data["uploads"][0]["path"] == "/a.png"
    assert data["counts"]["limits"]["public_protected"] == 1000
    assert data["noop"] is False


_paths = st.lists(
    st.tuples(
        st.text("abc/", min_size=1, max_size=6).map(lambda s: "/" + s.strip("/") + ".png"),
        st.sampled_from(["d1", "d2"]),
        st.sampled_from(list(Visibility)),
    ),
    unique_by=lambda t: t[0],
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(files=_paths, recorded_keys=_paths, data=st.data())
def test_plan_invariants(
    files: list[tuple[str, str, Visibility]],
    recorded_keys: list[tuple[str, str, Visibility]],
    data: st.DataObject,
) -> None:
    desired = [_file(p, d, v) for p, d, v in files]
    versions = {(d, p, v.value): f"ZN{i}" for i, (p, d, v) in enumerate(recorded_keys)}
    owned = frozenset(p for p, _d, _v in recorded_keys)
    recorded = RecordedService(
        asset_sids={p: "ZH" + p for p in owned},
        versions=versions,
        owned_paths=owned,
        deployed_version_sids=frozenset(versions.values()),
    )
    plan = build_plan(desired, recorded, None)
    shuffled = data.draw(st.permutations(desired))
    assert build_plan(shuffled, recorded, None) == plan  # order of input never matters
    planned = [f.path for f in plan.uploads] + [f.path for f, _ in plan.reuses]
    assert sorted(planned) == sorted(p for p, _d, _v in files)  # each desired file once
    assert not set(plan.drops) & {p for p, _d, _v in files}
    assert set(plan.drops) <= owned
    for f, sid in plan.reuses:
        assert versions[(f.digest, f.path, f.visibility.value)] == sid
    assert list(plan.create_assets) == sorted(set(plan.create_assets))
    assert plan.is_noop == (not plan.uploads and not plan.create_assets and not plan.needs_build)
