"""The preparation memo: the last prepared publish set and shard placement of a state folder,
kept in `<state_dir>/prepared.bin` and keyed by everything each depends on, so that `plan` on
an unchanged tree neither prepares (classify, transform, per-file checks) nor places its files
again.

A prepared set depends on the scan's rows (path, size, content digest of every file), the settings
that classify and transform read (source and state folders, `[visibility]`, `[optimize]`),
assetsync's version and format, Python's version (the built-in MIME table) and, when images were
encoded, the image encoders' versions; it is reused when all of them are equal. A set with audio
reports, or with images no encoder took, is not kept. When the scan finds the same files with a few
contents changed, only those are prepared and spliced in, exactly as a carried outcome splices
(`assetsync.state.last_outcome`). A placement depends on the `[shard]` section, the configured
service, every file's published path and visibility (in order), the last sync's placement and which
files changed since it (`assetsync.plan.shard.shard`'s inputs); it is reused when all of them are
equal.

The secret check still runs over the reused set (its own verdict cache spares the reads), as do
the project checks and the plan. A memo is a cache: unreadable, damaged or of another format, it
is ignored and written anew; it is rewritten only when something in it changed, never by a
read-only state. Tests hold a memoized plan equal to one without it.
"""

from __future__ import annotations

import gc
import logging
import marshal
import sys
from collections.abc import Callable, Mapping, Sequence
from itertools import repeat
from operator import add, attrgetter, ne
from types import MappingProxyType
from typing import Any

import xxhash

from assetsync.atomic import write_atomic
from assetsync.config import Config
from assetsync.frozen import replace
from assetsync.models import PublishedFile, ScannedFile, Visibility
from assetsync.plan.shard_options import ShardOptions
from assetsync.plan.shard_result import BuildCounts, Move, MoveReason, ShardResult
from assetsync.prepare.classify import Issue
from assetsync.prepare.stage import Prepared
from assetsync.scan.rules import Snapshot
from assetsync.state.last_outcome import changed_rows, splice_files

__all__ = ["MEMO_NAME", "PlacementKey", "PrepareMemo", "kept_encoders", "placement_key"]

log = logging.getLogger(__name__)

MEMO_NAME = "prepared.bin"
# Bump when what a memo holds, or how preparing or placing computes it, changes meaning.
_FORMAT = 1
_MARSHAL_VERSION = 4
_VISIBILITIES = tuple(Visibility)
_VIS_INDEX = {v: i for i, v in enumerate(_VISIBILITIES)}
_PATH = attrgetter("path")
_VISIBILITY = attrgetter("visibility")
_new = tuple.__new__

# A placement's inputs: the [shard] section's repr, the configured service, the files'
# published paths and visibility indexes (in order), each one's service in the last sync's
# placement (None: none), the placement's other paths with their services (sorted), and the
# changed paths (None: no file was placed before, so every file is new: the changed set
# follows from the files).
PlacementKey = tuple[str, str, tuple[str, ...], bytes, tuple[str | None, ...],
                     tuple[tuple[str, str], ...], tuple[str, ...] | None]


def _settings(config: Config) -> str:
    """What a prepared set depends on besides the scan rows, as text equal in every process
    (frozen dataclasses of strings, numbers and tuples: their repr is stable)."""
    from assetsync import __version__

    return repr((_FORMAT, __version__, sys.version_info[:2], str(config.source),
                 str(config.state_dir), config.visibility, config.optimize))


def kept_encoders(*, images: bool, audio: bool) -> str | None:
    """The encoders' versions a kept result of the transform step depends on ("": none), or
    None when it is not to be kept (prepared, or planned, again next time): one with audio
    (its encoder's version is not read without loading it), or one whose images no encoder
    took (say, only types none takes): Pillow is then not loaded, and reading its version
    would load it for nothing. Shared by this memo and `plan`'s output memo."""
    if audio:
        return None
    if not images:
        return ""
    if "PIL" not in sys.modules:
        return None
    from assetsync.media.cache import encoder_versions

    return encoder_versions()


def placement_key(options: ShardOptions, base_service: str, files: Sequence[PublishedFile],
                  previous: Mapping[str, str], changed: Callable[[], Sequence[str]]
                  ) -> PlacementKey:
    """The inputs `shard(files, previous, options, base_service=..., changed=...)` decides by,
    in an order that is the same in every process. `changed` is asked only when some file was
    placed before (else every file is new)."""
    paths = tuple(map(_PATH, files))
    vis = bytes(map(_VIS_INDEX.__getitem__, map(_VISIBILITY, files)))
    if not previous:
        return (repr(options), base_service, paths, vis, (), (), None)
    others = sorted((p, previous[p]) for p in previous.keys() - set(paths))
    return (repr(options), base_service, paths, vis, tuple(map(previous.get, paths)),
            tuple(others), tuple(changed()))


def _columns(rows: Sequence[tuple[object, ...]], width: int) -> tuple[tuple[object, ...], ...]:
    return tuple(zip(*rows)) if rows else ((),) * width


def _indexes(values: Sequence[str]) -> tuple[tuple[str, ...], bytes | tuple[int, ...]]:
    """Few distinct values (content types) as their sorted set and each one's index."""
    names = tuple(sorted(set(values)))
    where = {name: i for i, name in enumerate(names)}
    index = tuple(map(where.__getitem__, values))
    return names, bytes(index) if len(names) < 256 else index


class _Entry:
    """One prepared set and the scan rows it was prepared from, stored by columns: loading
    makes every record with C-level maps (per-record Python code here would cost about what
    the memo saves). The usual set (one output per source, not transformed, published at
    `/` + its path) stores no column the scan rows already hold."""

    __slots__ = ("clean", "encoders", "errors", "files", "images", "rows", "warnings")

    def __init__(self, encoders: str, rows: tuple[tuple[Any, ...], ...],
                 files: tuple[PublishedFile, ...], warnings: tuple[Issue, ...],
                 errors: tuple[Issue, ...], clean: bool, images: bool) -> None:
        self.encoders = encoders  # the image encoders' versions when images were transformed
        self.rows = rows  # the scan's columns: rel_path, size, digest (by path)
        self.files, self.warnings, self.errors = files, warnings, errors
        self.clean, self.images = clean, images

    @property
    def scanned(self) -> tuple[tuple[str, int, str], ...]:
        """The scan's rows (rel_path, size, digest)."""
        return tuple(zip(*self.rows))

    def encode(self, source: str) -> tuple[object, ...]:
        rels, sizes, digests = self.rows
        columns: list[Any] = list(_columns(self.files, 8))
        vis = bytes(map(_VIS_INDEX.__getitem__, columns[1]))
        types = _indexes(columns[6])
        if (columns[4] == rels and columns[2] == digests and columns[3] == sizes
                and not any(columns[7])
                and columns[5] == tuple(map(add, repeat(source + "/"), rels))):
            prefixed = tuple(map(add, repeat("/"), rels))
            files: tuple[object, ...] = ("same", None if columns[0] == prefixed else columns[0],
                                         vis, types)
        else:
            files = ("full", columns[0], vis, *columns[2:6], types, columns[7])
        return (self.encoders, self.rows, files,
                tuple((i.path, i.message, i.severity) for i in self.warnings),
                tuple((i.path, i.message, i.severity) for i in self.errors),
                self.clean, self.images)

    @classmethod
    def decode(cls, data: Sequence[Any], source: str) -> _Entry:
        encoders, rows, files, warnings, errors, clean, images = data
        rels, sizes, digests = rows
        vis = map(_VISIBILITIES.__getitem__, files[2])
        if files[0] == "same":  # content_path: the source file itself
            paths = files[1] if files[1] is not None else map(add, repeat("/"), rels)
            names, index = files[3]
            columns: Any = (paths, vis, digests, sizes, rels, map(add, repeat(source + "/"), rels),
                            map(names.__getitem__, index), repeat(None))
        elif files[0] == "full":
            names, index = files[7]
            columns = (files[1], vis, *files[3:7], map(names.__getitem__, index), files[8])
        else:
            raise ValueError("not a prepared set")
        made = tuple(map(_new, repeat(PublishedFile), zip(*columns)))
        if files[0] == "same" and len(made) != len(rels):
            raise ValueError("a prepared set cut short")
        return cls(encoders, (rels, sizes, digests), made,
                   tuple(Issue(*i) for i in warnings), tuple(Issue(*i) for i in errors),
                   clean, images)


def _placement_digest(key: PlacementKey) -> str:
    """The placement's inputs as one digest (a memo keeps no second copy of every path)."""
    return xxhash.xxh3_128_hexdigest(marshal.dumps(key, _MARSHAL_VERSION))


def _encode_placement(digest: str, result: ShardResult, paths: Sequence[str]
                      ) -> tuple[object, ...]:
    """The placement by columns: each file's service (by index, in `paths`' order: the files'
    order, which the digest covers), the moves, the counts, the retired services."""
    index = {name: i for i, name in enumerate(result.services)}
    where = tuple(map(index.__getitem__, map(result.assignment.__getitem__, paths)))
    counts = tuple((c.public_protected, c.private, c.functions)
                   for c in map(result.counts.__getitem__, result.services))
    return (digest, result.services, bytes(where) if len(index) < 256 else where,
            tuple((m.path, m.from_service, m.to_service, str(m.reason)) for m in result.moves),
            counts, result.retired)


def _decode_placement(data: Sequence[Any], paths: Sequence[str], options: ShardOptions
                      ) -> ShardResult:
    _digest, services, where, moves, counts, retired = data
    return ShardResult(
        assignment=MappingProxyType(dict(zip(paths, map(services.__getitem__, where),
                                             strict=True))),
        services=services,
        moves=tuple(Move(p, a, b, MoveReason(r)) for p, a, b, r in moves),
        counts=MappingProxyType({name: BuildCounts(*c)
                                 for name, c in zip(services, counts, strict=True)}),
        limits=options.limits, retired=retired)


class PrepareMemo:
    """The memo of one state folder under one config (see the module doc): `reuse` and `keep`
    the prepared set, `placement` and `keep_placement` the shard placement, then `save`."""

    def __init__(self, config: Config, *, readonly: bool = False) -> None:
        self._path = config.state_dir / MEMO_NAME
        self._settings = _settings(config)
        self._source = str(config.source)
        self._options = config.shard if isinstance(config.shard, ShardOptions) else ShardOptions()
        self._readonly = readonly
        self._entry: _Entry | None = None
        self._placement: tuple[object, ...] | None = None  # as `_encode_placement` makes it
        self._dirty = False
        self._load()

    def _load(self) -> None:
        try:
            data = self._path.read_bytes()
        except OSError:
            return
        # Loading makes some 50,000 objects that all live on: the cyclic collector, set off
        # every 700 of them, would only walk them again and again (a third of the load's
        # time). It is switched back on however the load ends.
        collecting = gc.isenabled()
        gc.disable()
        try:
            self._decode(data)
        finally:
            if collecting:
                gc.enable()

    def _decode(self, data: bytes) -> None:
        try:
            fmt, settings, entry, placement = marshal.loads(data)
            if fmt != _FORMAT or settings != self._settings:
                return
            found = _Entry.decode(entry, self._source) if entry is not None else None
            if found is not None and found.encoders:
                from assetsync.media.cache import encoder_versions  # imports Pillow

                if found.encoders != encoder_versions():
                    found = None
            self._entry, self._placement = found, placement
        except (EOFError, ValueError, TypeError, IndexError, KeyError) as exc:
            log.debug("prepare memo %s ignored: %s", self._path, exc)
            self._entry = self._placement = None

    def reuse(self, scanned: Mapping[str, ScannedFile],
              prepare_some: Callable[[list[ScannedFile]], Prepared]) -> Prepared | None:
        """The prepared set of exactly these scan rows, or None. When a few contents changed
        and the kept set was clean, `prepare_some(changed)` prepares just those and they are
        spliced in (and kept); otherwise None (prepare every file, then `keep` it)."""
        entry = self._entry
        if entry is None:
            return None
        # Row by row with C-level maps; the kept rows are made on the way and let go at once.
        if (len(scanned) == len(entry.rows[0])
                and not any(map(ne, scanned.values(), zip(*entry.rows)))):
            return Prepared(files=entry.files, warnings=entry.warnings, errors=entry.errors,
                            snapshot=Snapshot(files={}), clean=entry.clean, images=entry.images)
        changed = changed_rows(scanned, entry.scanned) if entry.clean else None
        if not changed:
            return None
        some = prepare_some(changed)
        spliced = splice_files(entry.files, changed, some.files) if some.clean else None
        if spliced is None:
            return None
        prepared = replace(some, files=spliced, images=some.images or entry.images)
        self.keep(scanned, prepared)
        return prepared

    def keep(self, scanned: Mapping[str, ScannedFile], prepared: Prepared) -> None:
        """Keep `prepared` (everything `prepare_files` found before the secret check) as the
        set of these scan rows; a set with audio reports is not kept (it is prepared again)."""
        self._dirty = True
        encoders = kept_encoders(images=prepared.images, audio=bool(prepared.audio))
        if encoders is None:
            self._entry = None
            return
        self._entry = _Entry(encoders, _columns(tuple(scanned.values()), 3), prepared.files,
                             prepared.warnings, prepared.errors, prepared.clean, prepared.images)

    def placement(self, key: PlacementKey) -> ShardResult | None:
        """The placement kept for exactly these inputs, or None."""
        kept = self._placement
        if kept is None or kept[0] != _placement_digest(key):
            return None
        try:
            return _decode_placement(kept, key[2], self._options)
        except (ValueError, TypeError, IndexError, KeyError) as exc:
            log.debug("prepare memo %s: placement ignored: %s", self._path, exc)
            return None

    def keep_placement(self, key: PlacementKey, result: ShardResult) -> None:
        """Keep `result` as the placement of these inputs."""
        self._placement = _encode_placement(_placement_digest(key), result, key[2])
        self._dirty = True

    def save(self) -> None:
        """Write the memo when something in it changed (never for a read-only state; a memo
        that cannot be written is only logged: the next plan prepares again)."""
        if not self._dirty or self._readonly:
            return
        entry = self._entry.encode(self._source) if self._entry is not None else None
        payload: Any = (_FORMAT, self._settings, entry, self._placement)
        try:
            data = marshal.dumps(payload, _MARSHAL_VERSION)
            # Not fsync'd: a cache, whose torn or empty file is ignored.
            write_atomic(self._path, data, durable=False)
        except (OSError, ValueError) as exc:
            log.warning("prepare memo not saved in %s: %s", self._path, exc)
        self._dirty = False
