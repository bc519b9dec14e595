"""The service manifest: the state a build carries with it, as one private Function.

Every build assetsync makes (unless `[sync] remote_manifest = false`) holds a private Function
at `MANIFEST_PATH` whose code is this module's `encode`: per published path the content digest,
the Asset or Function Version SID, size, content type and the source file and recipe (optimize
profile) it came from. Twilio never serves a private Function, but the API gives any Function
Version's code back (`GET .../Functions/{sid}/Versions/{sid}/Content`), so a machine with no
local state (a fresh CI runner, a teammate's checkout) reads the live build's manifest and
syncs as if it had the state: one changed file, one upload.

Format: a small CommonJS module, so the build stays a valid Functions build:

    // assetsync service manifest (format 2): private, never served; see docs/sync.md
    exports.manifest = "<base64 of zlib(JSON)>";
    exports.handler = (context, event, callback) => callback(null, {});

zlib + base64 rather than plain JSON: a manifest of 1,000 files is ~190 KB of JSON, mostly
random hex (SIDs, digests), which deflate brings to roughly half, and base64 keeps it text
(the Content route returns the code as a JSON string). The JSON is
`{"format": 2, "build_base": SID | null, "holds": hex, "assets": [row...], "functions":
[row...]}` with each row `[path, visibility, digest, sid_tail, size, content_type, source,
recipe]`; `holds` is `holds_digest` of every version SID the build holds besides the manifest,
so a build another tool made by carrying the manifest over (the Console does) is told apart
from the build the manifest was written for.

Format 2 keeps only the last `SID_TAIL` characters of each version SID, and a null `source`
where it is the path without its `/`: the build that carries the manifest lists every version's
full SID by path, so `verify` takes the SID from there and the tail only confirms that the
version at that path is still the one the manifest describes (a version another tool put there
has another SID; its tail matches by chance once in 16**8). Every build carries the manifest, so
its size is paid on every sync: for 1,000 files 67 KB in format 1, 41 KB in format 2 (a
one-file sync sent 119 KB, now ~93 KB; issue 26). Format 1 (full SIDs) is still read.

This module is pure (bytes and values) plus `import_manifest`, which writes a verified manifest
into the local state; fetching and uploading it is `assetsync.sync.remote_manifest`'s.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, NamedTuple

from assetsync.frozen import frozen
from assetsync.limits import MAX_PRIVATE_ASSET_BYTES

if TYPE_CHECKING:  # the plan imports the prefix; it need not load SQLite, the client, the
    # records or the codecs (each imported where it is used)
    from assetsync.remote.resources import Build, VersionRef
    from assetsync.state.db import State
    from assetsync.state.records import VersionRecord

__all__ = [
    "MANIFEST_FORMAT",
    "MANIFEST_LIMIT",
    "MANIFEST_PATH",
    "RESERVED_PREFIX",
    "Manifest",
    "ManifestEntry",
    "Verified",
    "decode",
    "encode",
    "holds_digest",
    "import_manifest",
    "is_reserved",
    "verify",
]

# Paths under this prefix are assetsync's own: a file or function the project publishes there
# is refused (assetsync.plan.assess), and nothing under it is listed as the user's.
RESERVED_PREFIX = "/_assetsync/"
MANIFEST_PATH = RESERVED_PREFIX + "manifest"
MANIFEST_FORMAT = 2
_READABLE_FORMATS = (1, 2)
SID_TAIL = 8  # hex characters of a version SID kept per row (format 2)
# A private Function Version goes to the upload host, which takes at most 10 MB for a private
# version (api-contract.md §4; `assetsync.functions.toolkit.function_size_limit`). A build holds
# at most 1,100 versions, whose rows stay far below it; past it the build goes out without a
# manifest and the sync says so (the next fresh machine then uploads everything, as before).
MANIFEST_LIMIT = MAX_PRIVATE_ASSET_BYTES

_HEADER = ("// assetsync service manifest (format 2): private, never served; see docs/sync.md\n")
_PAYLOAD = re.compile(r'exports\.manifest\s*=\s*"([A-Za-z0-9+/=]*)"')


def is_reserved(path: str) -> bool:
    """Whether a published path is assetsync's own (the manifest's prefix)."""
    return path.startswith(RESERVED_PREFIX)


class ManifestEntry(NamedTuple):
    """One published version a build holds, as the manifest lists it."""

    path: str
    visibility: str
    digest: str
    version_sid: str  # decoded from format 2: the SID's tail, until `verify` gives it whole
    size: int
    content_type: str
    source: str
    recipe: str | None = None  # the optimize profile (variant) that made it, if any


@frozen
class Manifest:
    """A build's manifest: its assets and functions, and the build it was assessed against."""

    assets: tuple[ManifestEntry, ...] = ()
    functions: tuple[ManifestEntry, ...] = ()
    build_base: str | None = None
    holds: str = ""  # `holds_digest` of the build's other versions


def holds_digest(version_sids: Iterable[str]) -> str:
    """A digest of a build's version SIDs (assets and functions, the manifest's left out)."""
    import hashlib

    return hashlib.sha256("\n".join(sorted(set(version_sids))).encode("ascii")).hexdigest()


def _order(entry: ManifestEntry) -> tuple[object, ...]:
    """Rows in a stable order (the same manifest encodes to the same bytes, and is reused)."""
    return (*entry[:7], entry.recipe is not None, entry.recipe or "")


def encode(manifest: Manifest) -> bytes:
    """The manifest as the private Function's code (see the module docstring)."""
    import base64
    import json
    import zlib

    doc = {
        "format": MANIFEST_FORMAT,
        "build_base": manifest.build_base,
        "holds": manifest.holds,
        "assets": [_row(e) for e in sorted(manifest.assets, key=_order)],
        "functions": [_row(e) for e in sorted(manifest.functions, key=_order)],
    }
    raw = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    packed = base64.b64encode(zlib.compress(raw, 9)).decode("ascii")
    return (_HEADER + f'exports.manifest = "{packed}";\n'
            "exports.handler = (context, event, callback) => callback(null, {});\n"
            ).encode("utf-8")


def _row(entry: ManifestEntry) -> list[object]:
    """A format-2 row: the SID's tail, and null for a source that is the path without its
    `/`."""
    source = None if entry.source == entry.path[1:] else entry.source
    return [entry.path, entry.visibility, entry.digest, entry.version_sid[-SID_TAIL:],
            entry.size, entry.content_type, source, entry.recipe]


def _entries(rows: object, form: int) -> tuple[ManifestEntry, ...]:
    if not isinstance(rows, list):
        raise TypeError("rows are not a list")
    out = []
    for row in rows:
        if form >= 2 and isinstance(row, list) and len(row) == 8 and row[6] is None:
            row[6] = row[0][1:] if isinstance(row[0], str) else None
        if not (isinstance(row, list) and len(row) == 8 and isinstance(row[4], int)
                and all(isinstance(x, str) for x in row[:4] + row[5:7])
                and (row[7] is None or isinstance(row[7], str))):
            raise ValueError("a row is not [path, visibility, digest, sid, size, type, source, "
                             "recipe]")
        out.append(ManifestEntry(*row))
    return tuple(out)


def decode(code: str) -> Manifest | None:
    """The manifest in a Function's code, or None when it is not one assetsync can read (not
    a manifest, cut short, or of a format this version does not know)."""
    import base64
    import binascii
    import json
    import zlib

    found = _PAYLOAD.search(code)
    if found is None:
        return None
    try:
        doc = json.loads(zlib.decompress(base64.b64decode(found.group(1), validate=True)))
        form = doc.get("format") if isinstance(doc, dict) else None
        if form not in _READABLE_FORMATS:
            return None
        base, holds = doc.get("build_base"), doc.get("holds")
        return Manifest(_entries(doc.get("assets"), form), _entries(doc.get("functions"), form),
                        base if isinstance(base, str) else None,
                        holds if isinstance(holds, str) else "")
    except (ValueError, zlib.error, binascii.Error, TypeError):
        return None


def _kept(
    entries: Iterable[ManifestEntry], refs: Sequence[VersionRef]
) -> tuple[ManifestEntry, ...]:
    """The entries whose version the build still holds at their path, each with its SID whole
    (a format-1 entry names it whole, a format-2 one by its tail)."""
    sid_at = {(r.path, r.visibility.lower()): r.sid for r in refs}
    kept = []
    for entry in entries:
        sid = sid_at.get((entry.path, entry.visibility.lower()))
        if sid is not None and entry.version_sid and sid.endswith(entry.version_sid):
            kept.append(entry._replace(version_sid=sid))
    return tuple(kept)


@frozen
class Verified:
    """A manifest checked against the build that carries it: `manifest` keeps only the entries
    the build really holds; `dropped` counts the others; `exact` says the build holds exactly
    the versions the manifest was written for (it is the build assetsync made)."""

    manifest: Manifest
    dropped: int
    exact: bool


def verify(manifest: Manifest, build: Build) -> Verified:
    """Check a manifest against its build: a build another tool made from this one (the
    Console carries the private Function over) may have replaced some versions."""
    assets = _kept(manifest.assets, build.asset_versions)
    functions = _kept(manifest.functions, build.function_versions)
    dropped = len(manifest.assets) + len(manifest.functions) - len(assets) - len(functions)
    others = [r.sid for r in (*build.asset_versions, *build.function_versions)
              if not is_reserved(r.path)]
    exact = dropped == 0 and bool(manifest.holds) and holds_digest(others) == manifest.holds
    return Verified(Manifest(assets, functions, manifest.build_base, manifest.holds), dropped,
                    exact)


def _records(service_sid: str, entries: Iterable[ManifestEntry]) -> list[VersionRecord]:
    from assetsync.state.records import VersionRecord

    return [VersionRecord(service_sid, e.digest, e.path, e.visibility.lower(), e.version_sid,
                          e.size, None) for e in entries]


def import_manifest(
    state: State, target: str, service_sid: str, environment_sid: str, build: Build,
    manifest: Manifest,
) -> None:
    """Record a verified manifest as if this state had made `build`: the Asset and Function
    SIDs (from the build's own versions), the versions, and the build as the one deployed."""
    # Imported here, not at the top: the ledger imports this module's prefix.
    from assetsync.state.ledger import record_adopted_build

    for kind, entries, refs in (("asset", manifest.assets, build.asset_versions),
                                ("function", manifest.functions, build.function_versions)):
        parents = {r.sid: r.parent_sid for r in refs}
        state.record_assets(target, service_sid,
                            {e.path: parents[e.version_sid] for e in entries}, kind=kind)
        state.record_versions(target, service_sid, _records(service_sid, entries), kind=kind)
    record_adopted_build(state, target, service_sid, environment_sid, build)
    state.record_deployment(target, service_sid, environment_sid, build.sid, "")
