"""Sharding: which service each published file lives in, so that every build stays within limits.

Pure: values in, values out. `shard()` places files stably over the services of the naming scheme.
Re-exported here: the `[shard]` section, group globs and service names
(`assetsync.plan.shard_options`) and the result types (`assetsync.plan.shard_result`). The URL map
is `assetsync.sync.urlmap`; the limits are `assetsync.limits`.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from operator import attrgetter
from types import MappingProxyType

from assetsync.errors import LimitError
from assetsync.limits import BuildLimits
from assetsync.models import PublishedFile, Visibility
from assetsync.plan.shard_options import (
    MAX_SERVICE_NAME_LENGTH,
    ShardGroup,
    ShardOptions,
    changed_paths,
    compile_glob,
    parse_shard_section,
    previous_placement,
    service_name,
    service_names,
)
from assetsync.plan.shard_result import BuildCounts, Move, MoveReason, ShardResult

__all__ = [
    "MAX_SERVICE_NAME_LENGTH",
    "BuildCounts",
    "Move",
    "MoveReason",
    "ShardGroup",
    "ShardOptions",
    "ShardResult",
    "changed_paths",
    "compile_glob",
    "parse_shard_section",
    "previous_placement",
    "service_name",
    "service_names",
    "shard",
]

logger = logging.getLogger(__name__)


class _Atom:
    """Files placed as one unit: a whole group, or a single file (a working record)."""

    # Plain slotted classes here, not dataclasses: `dataclasses` costs a process ~7 ms to import.
    __slots__ = ("group", "home", "key", "paths", "pinned", "pp", "priv")

    def __init__(self, key: str, group: bool, paths: list[str] | None = None, pp: int = 0,
                 priv: int = 0, home: int | None = None, pinned: bool = False) -> None:
        self.key = key  # the group's name, or the single file's path
        self.group = group
        self.paths: list[str] = [] if paths is None else paths
        self.pp = pp
        self.priv = priv
        self.home = home  # service index it was in (most of it, for a group)
        self.pinned = pinned  # [shard] first_service: always in service 0, never evicted


def shard(
    files: Sequence[PublishedFile],
    previous: Mapping[str, str],
    options: ShardOptions,
    *,
    base_service: str,
    reserved: Mapping[str, BuildCounts] | None = None,
    foreign_services: int = 0,
    changed: Collection[str] | Callable[[], Collection[str]] = (),
) -> ShardResult:
    """Assign each file to a service so that every build stays within `options.limits`.

    Deterministic, and stable: a file stays in its `previous` service unless that service would
    overflow (then the fewest files move) or its group lives elsewhere. New files fill the services
    already in use (next to files of the same folder when there is room) before a new service is
    opened, so the site uses as few services as it can without moving files.

    Args:
        files: the classified files to publish (unique paths).
        previous: published path -> service unique name, from the last sync.
        options: the `[shard]` section.
        base_service: the configured service unique name (the first service).
        reserved: per service, what its build carries that this site does not own (functions and
            assets outside the source folder, kept by invariant 3); it takes room from the limits.
        foreign_services: services in the account that are not this site's; they count against
            `options.max_services`, the account's limit.
        changed: paths whose content or visibility changed since the last sync (or how to find
            them: the usual site, which fits its one service, never asks). They are uploaded
            anyway, so when a service overflows they are the first to move (no extra upload).

    Raises:
        LimitError: a group cannot fit one build, or the files need more services than allowed;
            raised before any request is made.
        ValueError: two files share a published path.
    """
    limits = options.limits
    reserved = reserved or {}
    slots = _free_slots(options, foreign_services, base_service)
    names = _scheme(base_service, slots)
    index = {name: i for i, name in enumerate(names)}
    _check_functions(reserved, index, limits)
    spare = [
        (
            limits.public_protected - reserved.get(n, _NONE).public_protected,
            limits.private - reserved.get(n, _NONE).private,
        )
        for n in names
    ]
    if not options.groups and not options.first_service:
        single = _one_service(files, previous, names[0], spare[0], reserved, limits)
        if single is not None:
            return single
    atoms = _make_atoms(files, options, limits)
    _check_pinned(atoms, spare[0], base_service, limits)
    _check_capacity(atoms, spare, options, foreign_services, limits)
    for atom in atoms:
        atom.home = _home(atom, previous, index)
    where, evicted, repacked = _placement(atoms, spare, changed, slots, limits)
    return _result(atoms, where, evicted, repacked, previous, names, index, reserved, limits)


def _free_slots(options: ShardOptions, foreign_services: int, base_service: str) -> int:
    """How many services the site may use: the account's limit less its other services."""
    slots = options.max_services - foreign_services
    if slots < 1:
        raise LimitError(
            f"the account holds {foreign_services} other services and [shard] max_services is "
            f"{options.max_services}: no service is left for {base_service!r}; delete unused "
            "services or raise [shard] max_services if your account allows more",
            limit="services",
        )
    return slots


def _scheme(base_service: str, slots: int) -> list[str]:
    """The names of the services the site may use, distinct within Twilio's length limit."""
    names = [service_name(base_service, i) for i in range(1, slots + 1)]
    if len(set(names)) != len(names):
        raise LimitError(
            f"service name {base_service!r} is too long to derive {slots} distinct service names "
            f"within {MAX_SERVICE_NAME_LENGTH} characters; choose a shorter service name",
            limit="services",
        )
    return names


def _check_functions(
    reserved: Mapping[str, BuildCounts], index: Mapping[str, int], limits: BuildLimits
) -> None:
    """A live build carrying more function versions than a build may hold can never rebuild."""
    for name, counts in reserved.items():
        if name in index and counts.functions > limits.functions:
            raise LimitError(
                f"service {name!r} carries {counts.functions} function versions, over the "
                f"{limits.functions} per build of [shard] functions_per_build; raise it",
                limit="functions",
            )


def _check_pinned(
    atoms: Sequence[_Atom], room: tuple[int, int], base_service: str, limits: BuildLimits
) -> None:
    """The `[shard] first_service` files must fit the first service's room."""
    if not atoms or not atoms[0].pinned:
        return
    pinned = atoms[0]
    if pinned.pp <= room[0] and pinned.priv <= room[1]:
        return
    raise LimitError(
        f"{pinned.pp} public/protected and {pinned.priv} private files match [shard] "
        f"first_service, but {base_service!r} has room for {max(0, room[0])} and "
        f"{max(0, room[1])} (limits {limits.public_protected} and {limits.private}, less "
        "what its live build carries that assetsync does not own); pin fewer files",
        path=pinned.paths[0],
        limit="private" if pinned.priv > room[1] else "public_protected",
    )


def _placement(
    atoms: list[_Atom],
    spare: list[tuple[int, int]],
    changed: Collection[str] | Callable[[], Collection[str]],
    slots: int,
    limits: BuildLimits,
) -> tuple[list[int], set[int], bool]:
    """Place the atoms keeping files where they are; failing that, pack them afresh (True)."""
    # Only a service that overflows asks which files changed: a first placement never does.
    placed = _place(atoms, spare, stable=True,
                    changed=lambda: frozenset(changed() if callable(changed) else changed))
    if placed is not None:
        return (*placed, False)
    placed = _place(atoms, spare, stable=False, changed=frozenset)
    if placed is None:
        raise LimitError(
            f"the groups in [shard] groups cannot be packed into {slots} services of "
            f"{limits.public_protected} public/protected and {limits.private} private versions "
            "each; make the groups smaller or raise [shard] max_services",
            limit="services",
        )
    logger.debug("shard: groups no longer fit in place; every file was re-packed")
    return (*placed, True)


_NONE = BuildCounts()
_PATH = attrgetter("path")
_VISIBILITY = attrgetter("visibility")


def _one_service(
    files: Sequence[PublishedFile],
    previous: Mapping[str, str],
    base: str,
    room: tuple[int, int],
    reserved: Mapping[str, BuildCounts],
    limits: BuildLimits,
) -> ShardResult | None:
    """The usual site: no groups, nothing placed outside the first service, and everything fits
    it. The general placement would put every file there with no move; this gets there without
    building atoms (a test holds the two equal). None: not that case."""
    # C-level counting and mapping: every sync of the usual site comes through here.
    if not set(previous.values()) <= {base}:
        return None
    private = list(map(_VISIBILITY, files)).count(Visibility.PRIVATE)
    if len(files) - private > room[0] or private > room[1]:
        return None
    assignment = dict.fromkeys(map(_PATH, files), base)
    if len(assignment) != len(files):
        seen: set[str] = set()
        for file in files:
            if file.path in seen:
                raise ValueError(f"two files are published at {file.path!r}")
            seen.add(file.path)
    extra = reserved.get(base, _NONE)
    counts = BuildCounts(
        public_protected=len(files) - private + extra.public_protected,
        private=private + extra.private,
        functions=extra.functions,
    )
    return ShardResult(
        assignment=MappingProxyType(assignment),
        services=(base,),
        moves=(),
        counts=MappingProxyType({base: counts}),
        limits=limits,
    )


def _make_atoms(
    files: Sequence[PublishedFile], options: ShardOptions, limits: BuildLimits
) -> list[_Atom]:
    """Group files into atoms: the pinned set first, then groups (largest first), then singles."""
    pinned = ShardGroup("[shard] first_service", options.first_service)
    matchers = [
        (
            g.name,
            g is pinned,
            re.compile("|".join(f"(?:{compile_glob(x).pattern})" for x in g.globs)),
        )
        for g in ([pinned] if pinned.globs else []) + list(options.groups)
    ]
    if not matchers:
        return _single_atoms(files)
    by_group: dict[tuple[str, bool], _Atom] = {}
    singles: list[_Atom] = []
    seen: set[str] = set()
    for file in sorted(files, key=_PATH):
        if file.path in seen:
            raise ValueError(f"two files are published at {file.path!r}")
        seen.add(file.path)
        hit = next((m[:2] for m in matchers if m[2].match(file.path)), None)
        if hit is None:
            atom = _Atom(key=file.path, group=False)
            singles.append(atom)
        else:
            atom = by_group.setdefault(hit, _Atom(key=hit[0], group=True, pinned=hit[1]))
        atom.paths.append(file.path)
        if file.visibility is Visibility.PRIVATE:
            atom.priv += 1
        else:
            atom.pp += 1
    for atom in by_group.values():
        if atom.pinned:
            continue  # checked against the first service's room by the caller
        if atom.pp > limits.public_protected or atom.priv > limits.private:
            raise LimitError(
                f"group {atom.key!r} in [shard] groups holds {atom.pp} public/protected and "
                f"{atom.priv} private files, but one build holds at most "
                f"{limits.public_protected} and {limits.private}; split the group so each part "
                "fits one service",
                path=atom.paths[0],
                limit="private" if atom.priv > limits.private else "public_protected",
            )
    ordered = sorted(by_group.values(), key=lambda a: (not a.pinned, -(a.pp + a.priv), a.key))
    return ordered + singles


def _single_atoms(files: Sequence[PublishedFile]) -> list[_Atom]:
    """One atom per file, by path: what `_make_atoms` makes with no group (a big sharded site
    with no [shard] groups comes through here: one pass, no per-file glob test)."""
    ordered = sorted(files, key=_PATH)
    paths = list(map(_PATH, ordered))
    if len(set(paths)) != len(paths):
        seen: set[str] = set()
        for path in paths:
            if path in seen:
                raise ValueError(f"two files are published at {path!r}")
            seen.add(path)
    private = Visibility.PRIVATE
    return [_Atom(path, False, [path], 0, 1) if f.visibility is private
            else _Atom(path, False, [path], 1, 0) for path, f in zip(paths, ordered)]


def _check_capacity(
    atoms: list[_Atom],
    spare: list[tuple[int, int]],
    options: ShardOptions,
    foreign_services: int,
    limits: BuildLimits,
) -> None:
    total_pp = sum(a.pp for a in atoms)
    total_priv = sum(a.priv for a in atoms)
    # A service whose live build already carries more than a build may hold of either kind
    # (another tool's files, kept by invariant 3) can take no file at all: its next build
    # would be refused whatever it held.
    usable = [s for s in spare if s[0] >= 0 and s[1] >= 0]
    if total_pp <= sum(s[0] for s in usable) and total_priv <= sum(s[1] for s in usable):
        return
    need = max(
        math.ceil(total_pp / limits.public_protected), math.ceil(total_priv / limits.private)
    )
    others = f" (the account holds {foreign_services} other services)" if foreign_services else ""
    full = len(spare) - len(usable)
    blocked = (f"; {full} of those services already carr{'ies' if full == 1 else 'y'} more "
               "versions than a build may hold, deployed by another tool" if full else "")
    raise LimitError(
        f"{total_pp} public/protected and {total_priv} private files need at least {need} "
        f"services of {limits.public_protected} public/protected and {limits.private} private "
        f"versions each, but [shard] max_services is {options.max_services}{others}{blocked}; "
        "raise it if your account allows more services, or publish fewer files",
        limit="services",
    )


def _home(atom: _Atom, previous: Mapping[str, str], index: Mapping[str, int]) -> int | None:
    if not atom.group:
        name = previous.get(atom.key)
        return None if name is None else index.get(name)
    votes: dict[int, int] = {}
    for path in atom.paths:
        i = index.get(previous.get(path, ""))
        if i is not None:
            votes[i] = votes.get(i, 0) + 1
    return min(votes, key=lambda i: (-votes[i], i)) if votes else None


class _Board:
    """A placement in progress (a working record): the room left in each service, where each
    atom went, each service's atoms, and which services hold anything."""

    __slots__ = ("atoms", "free", "members", "used", "where")

    def __init__(self, atoms: list[_Atom], free: list[list[int]], where: list[int],
                 members: list[list[int]], used: list[bool]) -> None:
        self.atoms = atoms
        self.free = free
        self.where = where
        self.members = members
        self.used = used

    @classmethod
    def empty(cls, atoms: list[_Atom], spare: list[tuple[int, int]]) -> _Board:
        used = [False] * len(spare)
        used[0] = True  # the configured service is always in use
        return cls(atoms, [list(s) for s in spare], [-1] * len(atoms),
                   [[] for _ in spare], used)

    def fits(self, s: int, atom: _Atom) -> bool:
        return self.free[s][0] >= atom.pp and self.free[s][1] >= atom.priv

    def put(self, i: int, s: int) -> None:
        self.where[i] = s
        self.free[s][0] -= self.atoms[i].pp
        self.free[s][1] -= self.atoms[i].priv
        self.members[s].append(i)
        self.used[s] = True


def _place(
    atoms: list[_Atom], spare: list[tuple[int, int]], *, stable: bool,
    changed: Callable[[], frozenset[str]],
) -> tuple[list[int], set[int]] | None:
    """Place every atom: kept ones first (evicting the fewest files from overflowing services),
    then the rest first-fit over services in use, opening the lowest free service only when none
    fits. None when some atom fits nowhere."""
    board = _Board.empty(atoms, spare)
    for i, atom in enumerate(atoms):
        if atom.pinned:
            board.put(i, 0)
        elif stable and atom.home is not None:
            board.put(i, atom.home)
    evicted = (_evict(atoms, board.free, board.members, board.where, changed) if stable
               else set())
    near: dict[str, dict[int, int]] = {}  # folder -> service -> files placed there
    for i, atom in enumerate(atoms):
        if board.where[i] >= 0 and not atom.group:
            _note_folder(near, atom.key, board.where[i])
    for i, atom in enumerate(atoms):
        if board.where[i] < 0 and not _place_new(board, i, near):
            return None
    return board.where, evicted


def _place_new(board: _Board, i: int, near: dict[str, dict[int, int]]) -> bool:
    """Place atom `i`, which has no place yet: next to most of its folder when that service
    has room, else first fit over services in use, else the lowest free service. False when
    it fits nowhere."""
    atom = board.atoms[i]
    counts = None if atom.group else near.setdefault(_folder(atom.key), {})
    target = _next_to_folder(board, atom, counts) if counts else -1
    if target < 0:
        # The lowest service in use with room, else the lowest with room.
        services = range(len(board.free))
        target = next((s for s in services if board.used[s] and board.fits(s, atom)), -1)
        if target < 0:
            target = next((s for s in services if board.fits(s, atom)), -1)
        if target < 0:
            return False
    if counts is not None:
        counts[target] = counts.get(target, 0) + 1
    board.put(i, target)
    return True


def _next_to_folder(board: _Board, atom: _Atom, counts: Mapping[int, int]) -> int:
    """The service holding most of the atom's folder that has room for it (-1: none has)."""
    target = -1
    for s, n in counts.items():
        if board.fits(s, atom) and (target < 0 or (n, -s) > (counts[target], -target)):
            target = s
    return target


def _evict(
    atoms: list[_Atom],
    free: list[list[int]],
    members: list[list[int]],
    where: list[int],
    changed: Callable[[], frozenset[str]],
) -> set[int]:
    """Take the fewest files out of each overflowing service: single files of the overflowing
    class first (changed ones, then last paths first, for determinism), then the smallest groups."""
    evicted: set[int] = set()
    known: frozenset[str] | None = None  # `changed()`, asked once, when a service overflows
    for s, ids in enumerate(members):
        if free[s][0] >= 0 and free[s][1] >= 0:
            continue
        moved = known = changed() if known is None else known
        singles = sorted(
            (i for i in ids if not atoms[i].group),
            key=lambda i: (atoms[i].key in moved, atoms[i].key),
        )
        groups = sorted(
            (i for i in ids if atoms[i].group and not atoms[i].pinned),
            key=lambda i: (atoms[i].pp + atoms[i].priv, i),
        )
        for i in [*reversed(singles), *groups]:
            over_pp, over_priv = free[s][0] < 0, free[s][1] < 0
            if not (over_pp or over_priv):
                break
            if (over_pp and atoms[i].pp) or (over_priv and atoms[i].priv):
                where[i] = -1
                free[s][0] += atoms[i].pp
                free[s][1] += atoms[i].priv
                evicted.add(i)
        members[s] = [i for i in ids if i not in evicted]
    return evicted


def _folder(path: str) -> str:
    return path[: path.rfind("/")]


def _note_folder(near: dict[str, dict[int, int]], path: str, s: int) -> None:
    counts = near.setdefault(_folder(path), {})
    counts[s] = counts.get(s, 0) + 1


def _result(
    atoms: list[_Atom],
    where: list[int],
    evicted: set[int],
    repacked: bool,
    previous: Mapping[str, str],
    names: list[str],
    index: Mapping[str, int],
    reserved: Mapping[str, BuildCounts],
    limits: BuildLimits,
) -> ShardResult:
    assignment: dict[str, str] = {}
    moves: list[Move] = []
    load = [[0, 0] for _ in names]
    for i, atom in enumerate(atoms):
        s = where[i]
        load[s][0] += atom.pp
        load[s][1] += atom.priv
        for path in atom.paths:
            new = assignment[path] = names[s]
            old = previous.get(path)
            if old is None or old == new:
                continue
            if atom.pinned:
                reason = MoveReason.FIRST_SERVICE
            elif repacked:
                reason = MoveReason.REPACK
            elif old not in index:
                reason = MoveReason.SERVICE_DROPPED
            else:
                reason = MoveReason.OVERFLOW if i in evicted else MoveReason.GROUP
            moves.append(Move(path, old, new, reason))
    in_use = [s for s in range(len(names)) if s == 0 or load[s] != [0, 0]]
    services = tuple(names[s] for s in in_use)
    counts = {}
    for s in in_use:
        extra = reserved.get(names[s], _NONE)
        counts[names[s]] = BuildCounts(
            public_protected=load[s][0] + extra.public_protected,
            private=load[s][1] + extra.private,
            functions=extra.functions,
        )
    retired = sorted(
        set(previous.values()) - set(services), key=lambda n: (index.get(n, len(names)), n)
    )
    moves.sort(key=lambda m: m.path)
    logger.debug(
        "shard: %d files over %d services, %d moves", len(assignment), len(services), len(moves)
    )
    return ShardResult(
        assignment=MappingProxyType(assignment),
        services=services,
        moves=tuple(moves),
        counts=MappingProxyType(counts),
        limits=limits,
        retired=tuple(retired),
    )
