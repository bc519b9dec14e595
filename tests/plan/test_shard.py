"""shard(): placing files over services within the per-build limits, by example."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable

import pytest

from assetsync.errors import LimitError
from assetsync.limits import BuildLimits
from assetsync.models import PublishedFile, Visibility
from assetsync.plan.shard import (
    BuildCounts,
    Move,
    MoveReason,
    ShardGroup,
    ShardOptions,
    ShardResult,
    shard,
)

PUBLIC, PROTECTED, PRIVATE = Visibility.PUBLIC, Visibility.PROTECTED, Visibility.PRIVATE


def published(path: str, visibility: Visibility = PUBLIC) -> PublishedFile:
    """A file as classify hands it to shard (only path and visibility matter here)."""
    return PublishedFile(
        path=path,
        visibility=visibility,
        digest="xxh3_128:" + "0" * 32,
        size=1,
        source=path.lstrip("/"),
        content_path="/nonexistent/" + path.lstrip("/"),
        content_type="application/octet-stream",
    )


def many(prefix: str, count: int, visibility: Visibility = PUBLIC) -> list[PublishedFile]:
    return [published(f"{prefix}/{i:05d}.bin", visibility) for i in range(count)]


def per_service(result: ShardResult, paths: Iterable[str]) -> Counter[str]:
    return Counter(result.assignment[p] for p in paths)


def test_fresh_site_past_one_build_uses_the_fewest_services() -> None:
    files = many("/img", 2500) + many("/secret", 120, PRIVATE)
    result = shard(files, {}, ShardOptions(), base_service="media")
    # 2500 / 1000 public and 120 / 50 private both need three builds.
    assert result.services == ("media", "media-2", "media-3")
    assert result.counts == {
        "media": BuildCounts(1000, 50, 0),
        "media-2": BuildCounts(1000, 50, 0),
        "media-3": BuildCounts(500, 20, 0),
    }
    assert result.moves == ()
    assert result.retired == ()
    assert set(result.assignment) == {f.path for f in files}
    assert result.usage_lines()[0] == (
        "media: 1000/1000 public+protected, 50/50 private, 0/50 functions"
    )


def test_small_site_stays_in_the_configured_service() -> None:
    files = [*many("/img", 3), published("/key.pem.txt", PRIVATE)]
    result = shard(files, {}, ShardOptions(), base_service="media")
    assert result.services == ("media",)
    assert set(result.assignment.values()) == {"media"}


def test_empty_site_still_names_the_configured_service() -> None:
    result = shard([], {"/gone.png": "media-2"}, ShardOptions(), base_service="media")
    assert result.services == ("media",)
    assert result.retired == ("media-2",)
    assert dict(result.assignment) == {}


def test_protected_counts_with_public() -> None:
    files = many("/a", 3, PROTECTED) + many("/b", 3, PUBLIC)
    options = ShardOptions(limits=BuildLimits(public_protected=4, private=1))
    result = shard(files, {}, options, base_service="s")
    assert [result.counts[s].public_protected for s in result.services] == [4, 2]


def test_adding_files_moves_nothing_and_fills_existing_room_first() -> None:
    options = ShardOptions(limits=BuildLimits(public_protected=10, private=2))
    first = shard(many("/a", 15), {}, options, base_service="s")
    assert first.services == ("s", "s-2")
    grown = many("/a", 15) + many("/b", 5) + many("/c", 3)
    second = shard(grown, first.assignment, options, base_service="s")
    assert second.moves == ()
    for path, service in first.assignment.items():
        assert second.assignment[path] == service
    # 15 + 8 = 23 files: s-2 had room for 5, so only 3 more open a third service.
    assert second.services == ("s", "s-2", "s-3")
    assert [second.counts[s].public_protected for s in second.services] == [10, 10, 3]


def test_new_file_joins_its_folder_when_there_is_room() -> None:
    options = ShardOptions(limits=BuildLimits(public_protected=10, private=2))
    files = many("/a", 8) + many("/b", 8)
    first = shard(files, {}, options, base_service="s")
    assert per_service(first, [f"/b/{i:05d}.bin" for i in range(8)]) == {"s": 2, "s-2": 6}
    second = shard([*files, published("/b/new.bin")], first.assignment, options, base_service="s")
    # `s` also has room, but most of /b lives in s-2.
    assert second.assignment["/b/new.bin"] == "s-2"


def test_removing_files_moves_nothing_and_reports_emptied_services() -> None:
    options = ShardOptions(limits=BuildLimits(public_protected=10, private=2))
    files = many("/a", 25)
    first = shard(files, {}, options, base_service="s")
    kept = files[:5] + files[12:15]  # all of s-3's files (the last five) are gone
    second = shard(kept, first.assignment, options, base_service="s")
    assert second.moves == ()
    assert second.services == ("s", "s-2")
    assert second.retired == ("s-3",)
    assert all(second.assignment[f.path] == first.assignment[f.path] for f in kept)


def test_overflow_moves_the_fewest_and_prefers_files_that_changed() -> None:
    options = ShardOptions(limits=BuildLimits(public_protected=10, private=2))
    files = many("/pub", 20) + many("/priv", 4, PRIVATE)
    first = shard(files, {}, options, base_service="s")
    assert first.assignment["/pub/00000.bin"] == "s"
    assert first.counts["s"].private == 2
    # One public file in the full `s` becomes private: s would hold 3 private versions.
    flipped = [published(f.path, PRIVATE) if f.path == "/pub/00000.bin" else f for f in files]
    second = shard(flipped, first.assignment, options, base_service="s", changed={"/pub/00000.bin"})
    assert second.moves == (Move("/pub/00000.bin", "s", "s-3", MoveReason.OVERFLOW),)
    assert second.counts["s"] == BuildCounts(9, 2, 0)
    # Asked for only when files may move: the same answer from a callable.
    asked: list[bool] = []
    lazily = shard(flipped, first.assignment, options, base_service="s",
                   changed=lambda: asked.append(True) or {"/pub/00000.bin"})
    assert lazily.moves == second.moves and asked == [True]
    fits = shard(files, {}, ShardOptions(), base_service="s",
                 changed=lambda: asked.append(False) or set())
    assert fits.services == ("s",) and asked == [True]  # the usual site never asks
    # Without knowing what changed, still exactly one file moves.
    third = shard(flipped, first.assignment, options, base_service="s")
    assert len(third.moves) == 1
    assert third.moves[0].from_service == "s"
    assert "overflow" in third.moves[0].describe()


def test_lower_limits_move_exactly_the_excess() -> None:
    files = many("/a", 30)
    wide = shard(files, {}, ShardOptions(limits=BuildLimits(public_protected=30)), base_service="s")
    assert wide.services == ("s",)
    narrow_options = ShardOptions(limits=BuildLimits(public_protected=12))
    narrow = shard(files, wide.assignment, narrow_options, base_service="s")
    assert len(narrow.moves) == 18
    assert {m.reason for m in narrow.moves} == {MoveReason.OVERFLOW}
    assert narrow.services == ("s", "s-2", "s-3")
    assert max(c.public_protected for c in narrow.counts.values()) == 12


def test_groups_stay_together_and_gather_their_scattered_files() -> None:
    options = ShardOptions(limits=BuildLimits(public_protected=10, private=2))
    files = many("/a", 8) + many("/voice", 6)
    before = shard(files, {}, options, base_service="s")
    assert len(set(per_service(before, [f"/voice/{i:05d}.bin" for i in range(6)]))) == 2
    grouped = ShardOptions(limits=options.limits, groups=(ShardGroup("voice", ("/voice/**",)),))
    after = shard(files, before.assignment, grouped, base_service="s")
    voice = [f"/voice/{i:05d}.bin" for i in range(6)]
    # Four of the six were in s-2: the two in `s` join them.
    assert per_service(after, voice) == {"s-2": 6}
    assert {m.path for m in after.moves} == {"/voice/00000.bin", "/voice/00001.bin"}
    assert {m.reason for m in after.moves} == {MoveReason.GROUP}


def test_first_matching_group_wins() -> None:
    groups = (ShardGroup("one", ("/x/**",)), ShardGroup("two", ("**/*.bin",)))
    options = ShardOptions(limits=BuildLimits(public_protected=4), groups=groups)
    files = many("/x", 4) + many("/y", 4)
    result = shard(files, {}, options, base_service="s")
    assert len(set(per_service(result, [f.path for f in files[:4]]))) == 1
    assert len(set(per_service(result, [f.path for f in files[4:]]))) == 1
    assert result.services == ("s", "s-2")


def test_group_bigger_than_a_build_fails_with_a_clear_error() -> None:
    options = ShardOptions(
        limits=BuildLimits(public_protected=1000, private=50),
        groups=(ShardGroup("ivr", ("/ivr/",)),),
    )
    files = many("/ivr", 51, PRIVATE)
    with pytest.raises(LimitError) as info:
        shard(files, {}, options, base_service="media")
    message = str(info.value)
    assert "group 'ivr'" in message and "51 private" in message and "at most 1000 and 50" in message
    assert "split the group" in message
    assert info.value.limit == "private"


def test_groups_that_cannot_pack_fail_before_anything_else() -> None:
    groups = tuple(ShardGroup(g, (f"/{g}/**",)) for g in ("a", "b", "c"))
    options = ShardOptions(limits=BuildLimits(public_protected=10), max_services=2, groups=groups)
    files = many("/a", 6) + many("/b", 6) + many("/c", 6)  # 18 fit 2x10, but not as 6+6+6
    with pytest.raises(LimitError, match=r"cannot be packed into 2 services.*max_services"):
        shard(files, {}, options, base_service="s")


def test_repack_when_a_new_group_fits_only_if_files_move() -> None:
    options = ShardOptions(limits=BuildLimits(public_protected=10), max_services=2)
    before = many("/x", 6) + many("/y", 6)
    first = shard(before, {}, options, base_service="s")
    assert per_service(first, [f.path for f in before]) == {"s": 10, "s-2": 2}
    # Two files of `s` go away: `s` keeps 8, s-2 keeps 2.
    kept = before[2:6] + before[6:10] + before[10:12]
    assert per_service(first, [f.path for f in kept]) == {"s": 8, "s-2": 2}
    grouped = ShardOptions(
        limits=options.limits, max_services=2, groups=(ShardGroup("g", ("/g/",)),)
    )
    # A 9-file group fits neither `s` (2 free) nor s-2 (8 free) while files stay put.
    after = shard(kept + many("/g", 9), first.assignment, grouped, base_service="s")
    group_services = per_service(after, [f"/g/{i:05d}.bin" for i in range(9)])
    assert len(group_services) == 1
    assert {m.reason for m in after.moves} == {MoveReason.REPACK}
    assert sorted(c.public_protected for c in after.counts.values()) == [9, 10]


def test_too_many_files_for_the_account_fails_naming_max_services() -> None:
    files = many("/img", 2001)
    with pytest.raises(LimitError) as info:
        shard(files, {}, ShardOptions(max_services=2), base_service="media")
    message = str(info.value)
    assert "2001 public/protected" in message and "at least 3 services" in message
    assert "[shard] max_services is 2" in message
    assert info.value.limit == "services"


def test_other_services_in_the_account_count_against_the_limit() -> None:
    files = many("/img", 1500)
    options = ShardOptions(max_services=10)
    assert shard(files, {}, options, base_service="m", foreign_services=8).services == ("m", "m-2")
    with pytest.raises(LimitError, match="holds 9 other services"):
        shard(files, {}, options, base_service="m", foreign_services=9)
    with pytest.raises(LimitError, match="no service is left"):
        shard(files, {}, options, base_service="m", foreign_services=10)


def test_reserved_content_takes_room_and_shows_in_counts() -> None:
    options = ShardOptions(limits=BuildLimits(public_protected=10, private=2, functions=5))
    reserved = {"s": BuildCounts(public_protected=7, private=0, functions=3)}
    result = shard(many("/a", 10), {}, options, base_service="s", reserved=reserved)
    assert result.counts["s"] == BuildCounts(10, 0, 3)
    assert result.counts["s-2"] == BuildCounts(7, 0, 0)
    too_many = {"s": BuildCounts(functions=6)}
    with pytest.raises(LimitError, match=r"carries 6 function versions.*functions_per_build"):
        shard(many("/a", 1), {}, options, base_service="s", reserved=too_many)


def test_files_of_a_service_outside_the_scheme_move_into_it() -> None:
    options = ShardOptions(limits=BuildLimits(public_protected=10), max_services=2)
    files = many("/a", 4)
    previous = {"/a/00000.bin": "old-name", "/a/00001.bin": "s-3", "/a/00002.bin": "s"}
    result = shard(files, previous, options, base_service="s")
    assert set(result.assignment.values()) == {"s"}
    assert result.moves == (
        Move("/a/00000.bin", "old-name", "s", MoveReason.SERVICE_DROPPED),
        Move("/a/00001.bin", "s-3", "s", MoveReason.SERVICE_DROPPED),
    )
    assert result.retired == ("old-name", "s-3")


def test_result_is_independent_of_input_order() -> None:
    options = ShardOptions(
        limits=BuildLimits(public_protected=7, private=2), groups=(ShardGroup("g", ("/g/",)),)
    )
    files = many("/a", 12) + many("/g", 5) + many("/p", 5, PRIVATE)
    previous = {files[0].path: "s-2", files[13].path: "s"}
    one = shard(files, previous, options, base_service="s")
    two = shard(
        list(reversed(files)), dict(reversed(list(previous.items()))), options, base_service="s"
    )
    assert one == two


def test_duplicate_paths_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match=r"/a\.png"):
        shard([published("/a.png"), published("/a.png")], {}, ShardOptions(), base_service="s")


def test_long_service_names_stay_within_twilio_limit() -> None:
    base = "a" * 50
    result = shard(many("/x", 2500), {}, ShardOptions(), base_service=base)
    assert result.services == (base, "a" * 48 + "-2", "a" * 48 + "-3")


def test_paths_by_service_lists_every_service() -> None:
    options = ShardOptions(limits=BuildLimits(public_protected=2))
    result = shard(many("/a", 3), {}, options, base_service="s")
    assert result.paths_by_service() == {
        "s": ["/a/00000.bin", "/a/00001.bin"],
        "s-2": ["/a/00002.bin"],
    }


def test_first_service_pins_files_next_to_the_functions() -> None:
    options = ShardOptions(limits=BuildLimits(public_protected=10, private=2))
    files = many("/img", 4) + many("/data", 4, PRIVATE) + many("/fn", 2, PRIVATE)
    first = shard(files, {}, options, base_service="s")
    assert first.assignment["/fn/00000.bin"] == "s-3"  # /data filled `s` and s-2 first
    pinned = ShardOptions(limits=options.limits, first_service=("/fn/**",))
    second = shard(files, first.assignment, pinned, base_service="s")
    assert {second.assignment[f"/fn/{i:05d}.bin"] for i in range(2)} == {"s"}
    assert {m.reason for m in second.moves if m.path.startswith("/fn/")} == {
        MoveReason.FIRST_SERVICE
    }
    # The /data files they displace are the only other moves.
    others = [m for m in second.moves if not m.path.startswith("/fn/")]
    assert [(m.from_service, m.reason) for m in others] == [("s", MoveReason.OVERFLOW)] * 2
    assert "first_service" in second.moves[-1].describe()
    assert second.counts["s"].private == 2


def test_first_service_that_cannot_fit_fails_clearly() -> None:
    options = ShardOptions(
        limits=BuildLimits(public_protected=10, private=2), first_service=("/fn/",)
    )
    reserved = {"s": BuildCounts(private=1)}
    with pytest.raises(LimitError) as info:
        shard(many("/fn", 2, PRIVATE), {}, options, base_service="s", reserved=reserved)
    message = str(info.value)
    assert "2 private files match [shard] first_service" in message
    assert "'s' has room for 10 and 1" in message
    assert info.value.limit == "private"


def test_sync_order_publishes_moved_files_before_dropping_them() -> None:
    options = ShardOptions(limits=BuildLimits(public_protected=10, private=2))
    files = many("/pub", 20) + many("/priv", 4, PRIVATE)
    first = shard(files, {"/gone.bin": "s-4"}, options, base_service="s")
    assert first.sync_order() == ("s", "s-2", "s-4")
    flipped = [published(f.path, PRIVATE) if f.path == "/pub/00000.bin" else f for f in files]
    second = shard(flipped, first.assignment, options, base_service="s")
    assert second.moves[0].to_service == "s-3"
    assert second.sync_order() == ("s-3", "s", "s-2")


def test_to_json_reports_counts_limits_moves_and_retired() -> None:
    options = ShardOptions(limits=BuildLimits(public_protected=10, private=2))
    files = many("/pub", 20) + many("/priv", 4, PRIVATE)
    first = shard(files, {"/old.bin": "s-5"}, options, base_service="s")
    flipped = [published(f.path, PRIVATE) if f.path == "/pub/00000.bin" else f for f in files]
    second = shard(flipped, {**first.assignment, "/old.bin": "s-5"}, options, base_service="s")
    data = json.loads(json.dumps(second.to_json()))
    assert data["limits"] == {"public_protected": 10, "private": 2, "functions": 50}
    assert data["services"][0] == {
        "service": "s",
        "public_protected": 9,
        "private": 2,
        "functions": 0,
    }
    assert [s["service"] for s in data["services"]] == ["s", "s-2", "s-3"]
    assert data["moves"] == [
        {"path": "/pub/00000.bin", "from": "s", "to": "s-3", "reason": "overflow"}
    ]
    assert data["retired"] == ["s-5"]


def test_a_service_already_over_a_limit_takes_no_file() -> None:
    """Its live build carries more private versions than a build may hold (another tool's):
    any build there would be refused, so the file goes elsewhere, or the error says why."""
    options = ShardOptions(limits=BuildLimits(public_protected=1, private=1), max_services=1)
    full = {"s": BuildCounts(public_protected=0, private=2, functions=0)}
    with pytest.raises(LimitError, match="need at least 1 services.*already carries more"):
        shard([published("/a.bin")], {}, options, base_service="s", reserved=full)
    wider = ShardOptions(limits=BuildLimits(public_protected=1, private=1), max_services=2)
    placed = shard([published("/a.bin")], {}, wider, base_service="s", reserved=full)
    assert placed.assignment == {"/a.bin": "s-2"}
