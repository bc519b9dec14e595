"""Property tests of shard()'s invariants: limits, groups, stability, fewest moves, determinism."""

from __future__ import annotations

import math
import random
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assetsync.errors import LimitError
from assetsync.limits import BuildLimits
from assetsync.models import PublishedFile, Visibility
from assetsync.plan.assets import RecordedService
from assetsync.plan.shard import (
    BuildCounts,
    ShardGroup,
    ShardOptions,
    ShardResult,
    changed_paths,
    service_name,
    shard,
)
from tests.plan.test_shard import published

BASE = "site"
FOLDERS = ("a", "b", "c", "d")
VISIBILITIES = (Visibility.PUBLIC, Visibility.PROTECTED, Visibility.PRIVATE)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

paths = st.builds(
    lambda folder, n: f"/{folder}/{n:03d}.bin", st.sampled_from(FOLDERS), st.integers(0, 60)
)
file_sets = st.dictionaries(paths, st.sampled_from(VISIBILITIES), max_size=60)
limits = st.builds(BuildLimits, st.integers(1, 9), st.integers(1, 4), st.integers(0, 3))


def to_files(spec: dict[str, Visibility]) -> list[PublishedFile]:
    return [published(path, visibility) for path, visibility in spec.items()]


def is_private(visibility: Visibility) -> bool:
    return visibility is Visibility.PRIVATE


def check_invariants(
    result: ShardResult,
    spec: dict[str, Visibility],
    previous: dict[str, str],
    options: ShardOptions,
    reserved: dict[str, BuildCounts],
    slots: int,
) -> None:
    lim = options.limits
    scheme = [service_name(BASE, i) for i in range(1, slots + 1)]
    assert set(result.assignment) == set(spec)
    assert result.services[0] == BASE
    assert list(result.services) == [s for s in scheme if s in result.services]
    assert set(result.assignment.values()) <= set(result.services)
    pp = Counter(s for p, s in result.assignment.items() if not is_private(spec[p]))
    priv = Counter(s for p, s in result.assignment.items() if is_private(spec[p]))
    for service in result.services:
        extra = reserved.get(service, BuildCounts())
        counts = result.counts[service]
        assert counts == BuildCounts(
            pp[service] + extra.public_protected, priv[service] + extra.private, extra.functions
        )
        # Reserved content alone may already fill a service; this site's files never add to that.
        if pp[service]:
            assert counts.public_protected <= lim.public_protected
        if priv[service]:
            assert counts.private <= lim.private
    for group in options.groups:
        folder = group.globs[0]
        members = {result.assignment[p] for p in spec if p.startswith(folder)}
        assert len(members) <= 1, group
    for folder in options.first_service:
        assert {result.assignment[p] for p in spec if p.startswith(folder)} <= {BASE}
    moved = {m.path for m in result.moves}
    assert moved == {p for p in spec if p in previous and previous[p] != result.assignment[p]}
    for move in result.moves:
        assert (move.from_service, move.to_service) == (
            previous[move.path],
            result.assignment[move.path],
        )
    assert set(result.retired) == set(previous.values()) - set(result.services)


@SETTINGS
@given(
    spec=file_sets,
    options_limits=limits,
    grouped=st.sets(st.sampled_from(FOLDERS), max_size=2),
    max_services=st.integers(1, 12),
    foreign=st.integers(0, 2),
    pin=st.sampled_from([None, *FOLDERS]),
    data=st.data(),
)
def test_limits_groups_and_bookkeeping_hold(
    spec: dict[str, Visibility],
    options_limits: BuildLimits,
    grouped: set[str],
    max_services: int,
    foreign: int,
    pin: str | None,
    data: st.DataObject,
) -> None:
    groups = tuple(ShardGroup(f"g-{f}", (f"/{f}/",)) for f in sorted(grouped - {pin}))
    options = ShardOptions(
        limits=options_limits,
        max_services=max_services,
        groups=groups,
        first_service=(f"/{pin}/",) if pin else (),
    )
    names = [service_name(BASE, i) for i in range(1, 14)] + ["renamed"]
    previous = data.draw(
        st.dictionaries(st.sampled_from(sorted(spec) or ["/z"]), st.sampled_from(names))
    )
    previous = {p: s for p, s in previous.items() if p in spec}
    reserved = data.draw(
        st.dictionaries(
            st.sampled_from(names[:4]),
            st.builds(BuildCounts, st.integers(0, 3), st.integers(0, 2), st.integers(0, 3)),
            max_size=2,
        )
    )
    files = to_files(spec)
    try:
        result = shard(
            files, previous, options, base_service=BASE, reserved=reserved, foreign_services=foreign
        )
    except LimitError as exc:
        message = str(exc)
        # Only for a reason that really holds.
        slots = max_services - foreign
        if "other services" in message and "no service is left" in message:
            assert slots < 1
        elif "match [shard] first_service" in message:
            base_room = (
                options_limits.public_protected
                - reserved.get(BASE, BuildCounts()).public_protected,
                options_limits.private - reserved.get(BASE, BuildCounts()).private,
            )
            pinned = [v for p, v in spec.items() if p.startswith(f"/{pin}/")]
            pinned_priv = sum(1 for v in pinned if is_private(v))
            assert len(pinned) - pinned_priv > base_room[0] or pinned_priv > base_room[1]
        elif "function versions" in message:
            assert any(c.functions > options_limits.functions for c in reserved.values())
        elif message.startswith("group "):
            assert any(
                sum(1 for p, v in spec.items() if p.startswith(g.globs[0]) and not is_private(v))
                > options_limits.public_protected
                or sum(1 for p, v in spec.items() if p.startswith(g.globs[0]) and is_private(v))
                > options_limits.private
                for g in groups
            )
        elif "cannot be packed" in message:
            assert groups
        else:
            assert "need at least" in message
            total_pp = sum(1 for v in spec.values() if not is_private(v))
            total_priv = len(spec) - total_pp
            room = [
                (
                    options_limits.public_protected
                    - reserved.get(n, BuildCounts()).public_protected,
                    options_limits.private - reserved.get(n, BuildCounts()).private,
                )
                for n in names[:slots]
            ]
            # A service already over a limit with what it carries can take nothing.
            room = [r if min(r) >= 0 else (0, 0) for r in room]
            assert total_pp > sum(r[0] for r in room) or total_priv > sum(r[1] for r in room)
        return
    check_invariants(result, spec, previous, options, reserved, max_services - foreign)
    # Deterministic, whatever order the inputs come in.
    shuffled = files[:]
    random.Random(len(files)).shuffle(shuffled)
    again = shard(
        shuffled,
        dict(reversed(list(previous.items()))),
        options,
        base_service=BASE,
        reserved=dict(reversed(list(reserved.items()))),
        foreign_services=foreign,
    )
    assert again == result


ops = st.one_of(
    st.tuples(st.just("add"), file_sets),
    st.tuples(st.just("remove"), st.sets(paths, max_size=20)),
    st.tuples(
        st.just("modify"), st.dictionaries(paths, st.sampled_from(VISIBILITIES), max_size=15)
    ),
    st.tuples(st.just("limits"), limits),
)


@SETTINGS
@given(start=file_sets, start_limits=limits, steps=st.lists(ops, min_size=1, max_size=8))
def test_random_changes_move_only_the_overflow_and_open_services_only_when_needed(
    start: dict[str, Visibility],
    start_limits: BuildLimits,
    steps: list[tuple[str, object]],
) -> None:
    options = ShardOptions(limits=start_limits, max_services=1000)
    spec = dict(start)
    result = shard(to_files(spec), {}, options, base_service=BASE)
    for op, arg in steps:
        previous = dict(result.assignment)
        changed: set[str] = set()
        if op == "add":
            assert isinstance(arg, dict)
            changed = {p for p in arg if spec.get(p) != arg[p]}
            spec.update(arg)
        elif op == "remove":
            assert isinstance(arg, set)
            for path in arg:
                spec.pop(path, None)
        elif op == "modify":
            assert isinstance(arg, dict)
            changed = {p for p in arg if p in spec and spec[p] != arg[p]}
            spec.update({p: v for p, v in arg.items() if p in spec})
        else:
            assert isinstance(arg, BuildLimits)
            options = ShardOptions(limits=arg, max_services=1000)
        result = shard(to_files(spec), previous, options, base_service=BASE, changed=changed)
        check_invariants(result, spec, previous, options, {}, 1000)

        lim = options.limits
        kept = [p for p in spec if p in previous]
        stay_pp = Counter(previous[p] for p in kept if not is_private(spec[p]))
        stay_priv = Counter(previous[p] for p in kept if is_private(spec[p]))
        excess = sum(max(0, n - lim.public_protected) for n in stay_pp.values()) + sum(
            max(0, n - lim.private) for n in stay_priv.values()
        )
        # The fewest moves: exactly the excess of each overflowing service, nothing else.
        assert len(result.moves) == excess
        for move in result.moves:
            cls = stay_priv if is_private(spec[move.path]) else stay_pp
            cap = lim.private if is_private(spec[move.path]) else lim.public_protected
            assert cls[move.from_service] > cap
        # Files that changed leave an overflowing service before files that did not: if an
        # unchanged file left service S, every changed file of its class in S left too.
        for move in result.moves:
            if move.path in changed:
                continue
            for path in changed:
                if (
                    path in spec
                    and previous.get(path) == move.from_service
                    and is_private(spec[path]) == is_private(spec[move.path])
                ):
                    assert result.assignment[path] != move.from_service, (path, move)
        # As few services as possible without moving files that may stay.
        in_place = {BASE} | {previous[p] for p in kept}
        total_pp = sum(1 for v in spec.values() if not is_private(v))
        total_priv = len(spec) - total_pp
        assert len(result.services) == max(
            len(in_place),
            math.ceil(total_pp / lim.public_protected),
            math.ceil(total_priv / lim.private),
        )


@SETTINGS
@given(
    spec=file_sets,
    lim=limits,
    placed=st.floats(0, 1),
    extra=st.builds(BuildCounts, st.integers(0, 3), st.integers(0, 2), st.integers(0, 2)),
)
def test_the_one_service_shortcut_places_as_the_general_placement_does(
    spec: dict[str, Visibility], lim: BuildLimits, placed: float, extra: BuildCounts
) -> None:
    """A site with no groups, published in its first service only, is placed without the general
    machinery; a group that matches nothing forces that machinery, which must agree."""
    files = to_files(spec)
    previous = {p: BASE for p in sorted(spec)[: int(len(spec) * placed)]}
    options = ShardOptions(max_services=4, limits=lim)
    general = ShardOptions(max_services=4, limits=lim,
                           groups=(ShardGroup("never", ("/no-such-folder/**",)),))
    reserved = {BASE: extra}

    def outcome(opts: ShardOptions) -> object:
        try:
            return shard(files, previous, opts, base_service=BASE, reserved=reserved)
        except LimitError as exc:
            return str(exc)

    assert outcome(options) == outcome(general)


# --- changed_paths: the C-level lookup against its plain definition -----------------------

_DIGESTS = st.sampled_from(["xxh3_128:" + c * 32 for c in "abc"])
_SERVICES = st.sampled_from(["site", "site-2", "site-3"])


@given(
    files=st.dictionaries(st.sampled_from([f"/f{i}" for i in range(8)]),
                          st.tuples(_DIGESTS, st.sampled_from(list(Visibility))), max_size=8),
    recorded=st.dictionaries(_SERVICES, st.lists(st.tuples(
        _DIGESTS, st.sampled_from([f"/f{i}" for i in range(8)]),
        st.sampled_from([v.value for v in Visibility])), max_size=8), max_size=3),
    previous=st.dictionaries(st.sampled_from([f"/f{i}" for i in range(8)]), _SERVICES),
)
def test_changed_paths_is_every_file_whose_version_its_service_does_not_hold(
        files: dict[str, tuple[str, Visibility]], recorded: dict[str, list[tuple[str, str, str]]],
        previous: dict[str, str]) -> None:
    """Whatever the services hold, a key in two of them included (a file that moved): the
    files, in order, whose (digest, path, visibility) the service the last sync placed them in
    did not record."""
    published_files = [published(path, vis)._replace(digest=digest)
                       for path, (digest, vis) in files.items()]
    services = {name: RecordedService(versions={key: f"ZN{i}" for i, key in enumerate(keys)})
                for name, keys in recorded.items()}
    expected = [f.path for f in published_files
                if f.path not in previous or previous[f.path] not in services
                or (f.digest, f.path, f.visibility.value)
                not in services[previous[f.path]].versions]
    assert changed_paths(published_files, services, previous) == expected
