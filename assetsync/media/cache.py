"""The transform stage's content cache (in the state folder) and its process pool.

Every encode is keyed by (source digest, recipe digest, encoder versions). The outcome is
written to `<cache_dir>/index/` and the output bytes to `<cache_dir>/objects/` (named by their
own digest), both atomically, so an unchanged image is never encoded twice, a crash never
leaves a half-written file that is trusted, and the published digest is stable. Beside them,
`sniffed.txt` remembers each content digest's type, so unchanged files are never opened just
to find it.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import xxhash

from assetsync.atomic import write_atomic
from assetsync.errors import LimitError, TransformError
from assetsync.frozen import asdict, frozen
from assetsync.media.options import OptimizeOptions, Profile
from assetsync.media.sniff import MediaType, sniff
from assetsync.models import DIGEST_PREFIX

if TYPE_CHECKING:
    from assetsync.media.audio import AudioOutput
    from assetsync.media.codec import Output

# The encoders (Pillow, oxipng, mozjpeg) and the process pool are imported only when something
# is encoded: a no-change plan never pays for them (bench/bench_scan.py, whole-process plan).

__all__ = [
    "Job",
    "SniffCache",
    "audio_encoder_versions",
    "cache_key",
    "encoder_versions",
    "lookup",
    "lossless_recipe",
    "prune_cache",
    "run_jobs",
    "variant_recipe",
]

log = logging.getLogger(__name__)

# Bump when a recipe changes its output for the same input and options.
RECIPE_VERSION = 1


@frozen
class Job:
    """One encode to run: a recipe over one source file, and where its outcome is cached."""

    key: str
    source: str  # the source's relative path, for progress events
    source_path: str
    kind: str
    recipe: str  # canonical JSON; also what the worker decodes its instructions from
    cache_dir: str


def encoder_versions() -> str:
    """The encoders whose output a cached result depends on, as one stable string."""
    from importlib import metadata

    from PIL import __version__ as pillow_version
    from PIL import features

    parts = {
        "recipe": str(RECIPE_VERSION),
        "pillow": pillow_version,
        "libjpeg": str(features.version("jpg")),
        "zlib": str(features.version("zlib")),
        "pyoxipng": metadata.version("pyoxipng"),
        "mozjpeg-lossless": metadata.version("mozjpeg-lossless-optimization"),
    }
    return ";".join(f"{k}={v}" for k, v in sorted(parts.items()))


def audio_encoder_versions(cache_dir: Path | None = None) -> str:
    """The audio encoders (PyAV, FFmpeg's libraries, numpy) as one stable string; only audio
    recipes' keys include it, so image keys do not change when FFmpeg does.

    Reading them imports PyAV and numpy (~60 ms), which a sync whose audio is all cached must
    not pay: the string is kept in `<cache_dir>/audio-encoders.txt` under a stamp of the two
    packages' installed files (path, size, mtime), and read again only when those change.
    """
    stamp = _installed_stamp(("av", "numpy"))
    saved = cache_dir / "audio-encoders.txt" if cache_dir is not None else None
    if saved is not None and stamp:
        try:
            first, _, versions = saved.read_text(encoding="utf-8").partition("\n")
            if first == stamp and versions:
                return versions
        except OSError:
            pass
    from assetsync.media.audio import audio_versions  # imports PyAV and numpy

    versions = audio_versions()
    if saved is not None and stamp:
        try:
            write_atomic(saved, f"{stamp}\n{versions}".encode(), durable=False)
        except OSError as exc:  # a cache: the next run reads the versions again
            log.warning("audio encoder versions not cached in %s: %s", saved, exc)
    return versions


def _installed_stamp(packages: Sequence[str]) -> str:
    """Where and as what the packages are installed (without importing them); "" if unknown."""
    from importlib.util import find_spec

    parts = []
    for name in packages:
        spec = find_spec(name)
        if spec is None or not spec.origin:
            return ""
        try:
            st = os.stat(spec.origin)
        except OSError:
            return ""
        parts.append(f"{spec.origin}:{st.st_size}:{st.st_mtime_ns}")
    return "|".join(parts)


def lossless_recipe(options: OptimizeOptions) -> dict[str, object]:
    """Everything about the lossless pass that changes its output (hashed into the key)."""
    return {"op": "lossless", "keep_metadata": options.keep_metadata, "effort": options.effort,
            "gif_to_png": options.gif_to_png, "max_pixels": options.max_pixels}


def variant_recipe(profile: Profile, options: OptimizeOptions) -> dict[str, object]:
    """Everything about a profile's variant that changes its bytes (hashed into the key)."""
    fields = asdict(profile)
    del fields["globs"], fields["path"]  # they decide where, not what
    del fields["audio"]  # audio has its own recipe (image keys stay as they were)
    # "as_is": variants that keep a source already fitting the channel (issue 25); a new
    # key so that variants cached before that rule are made again.
    return {"op": "variant", "max_pixels": options.max_pixels, "as_is": 1, **fields}


def cache_key(digest: str, recipe: str, encoders: str) -> str:
    """The cache key of (source digest, canonical recipe JSON, encoder versions)."""
    import hashlib  # here: loading OpenSSL costs a plan with no image ~2 ms

    return hashlib.sha256(f"{digest}\n{recipe}\n{encoders}".encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# the cache (files under cache_dir; every write atomic)


def _index_path(cache_dir: Path, key: str) -> Path:
    return cache_dir / "index" / key[:2] / f"{key}.json"


def _object_path(cache_dir: Path, digest: str, ext: str) -> Path:
    hexdigest = digest.removeprefix(DIGEST_PREFIX)
    return cache_dir / "objects" / hexdigest[:2] / f"{hexdigest}.{ext}"


def lookup(cache_dir: Path, key: str) -> dict[str, object] | None:
    """A cached outcome whose content file is still intact, or None."""
    try:
        entry = json.loads(_index_path(cache_dir, key).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(entry, dict):
        return None
    if entry.get("status") == "ok":
        try:
            content = Path(str(entry["content_path"]))
            st = content.stat()
            # Unchanged since it was written (the scan's stat-cache rule): trust it without
            # reading it. Otherwise re-hash: a file that no longer matches its digest is
            # re-encoded, never published.
            if [st.st_size, st.st_mtime_ns] != entry.get("stat"):
                data = content.read_bytes()
                if DIGEST_PREFIX + xxhash.xxh3_128_hexdigest(data) != entry.get("digest"):
                    return None
        except (OSError, KeyError):
            return None
    return entry


def prune_cache(cache_dir: Path, keep: Collection[str]) -> tuple[int, int]:
    """Delete cache entries whose key is not in `keep`, and outputs no kept entry points at.

    Always safe: anything deleted is re-encoded, byte for byte, if it is needed again.
    Temporary files of a concurrent writer are left alone.

    Returns:
        (files deleted, bytes freed).
    """
    kept_objects: set[str] = set()
    deleted = freed = 0
    for index in sorted((cache_dir / "index").glob("*/*.json")):
        if index.stem in keep:
            entry = lookup(cache_dir, index.stem)
            if entry is not None and entry.get("status") == "ok":
                kept_objects.add(Path(str(entry["content_path"])).name)
            continue
        deleted, freed = deleted + 1, freed + _unlink(index)
    for output in sorted((cache_dir / "objects").glob("*/*")):
        # names starting with "." are writes in progress (atomic.write_atomic temporaries)
        if output.name not in kept_objects and not output.name.startswith("."):
            deleted, freed = deleted + 1, freed + _unlink(output)
    return deleted, freed


class SniffCache:
    """Each file's type (`media.sniff` of its first bytes) by content digest, kept in
    `<cache_dir>/sniffed.txt`, so a run over unchanged files opens none of them to find its
    type: a type is a property of the content, which the digest names.

    One `digest kind mime` line per content (`digest ` for no media type). A run appends the
    lines of what it sniffed: writing the whole cache again for one new file cost ~1 ms of
    every incremental sync. The file is rewritten only to drop entries (when it holds more
    than twice what the run used) or to replace a damaged one; a line a crash cut short has no
    newline and is ignored."""

    _FILE = "sniffed.txt"
    _LEGACY = "sniffed.json"  # the whole-file JSON of earlier versions: left unread, removed

    def __init__(self, cache_dir: Path, *, some: bool = False) -> None:
        """`some`: the run looks at a few of the site's files (a sync that prepares only the
        changed ones): their lines are found in the text rather than all parsed, and no entry
        is dropped for being unused."""
        self._path = cache_dir / self._FILE
        self._types: dict[str, str] = {}
        self._rewrite = False
        self._some = some
        self._text = ""
        self._used: set[str] = set()
        self._new: list[str] = []
        # Parsed type lines, per cache: a site has a handful of distinct types.
        self._parsed: dict[str, MediaType | None] = {"": None}
        try:
            text = self._path.read_bytes().decode("utf-8")
        except FileNotFoundError:
            text, self._rewrite = "", True  # first run with this format: drop the legacy file
        except (OSError, ValueError):
            text, self._rewrite = "", True
        if some and not self._rewrite and (not text or text.endswith("\n")):
            self._text = "\n" + text  # each line is then found as "\n<digest> "
            return
        self._some = False  # a first or damaged file: read (and rewrite) it all
        *lines, tail = text.split("\n")
        if tail:
            self._rewrite = True  # a torn last line: appending would extend it
        for line in lines:
            digest, sep, raw = line.partition(" ")
            if not sep or (raw and raw not in self._parsed and not _valid_type(raw)):
                self._rewrite = True
                continue
            self._types[digest] = raw

    def _found(self, digest: str) -> str | None:
        """`digest`'s type from the unparsed text (`some`), if it has a valid line."""
        start = self._text.find(f"\n{digest} ")
        if start < 0:
            return None
        start += len(digest) + 2
        raw = self._text[start : self._text.index("\n", start)]
        return raw if not raw or raw in self._parsed or _valid_type(raw) else None

    def media(self, digest: str, path: str) -> MediaType | None:
        """The type of the file at `path`, whose content digest is `digest`."""
        self._used.add(digest)
        raw = self._types.get(digest)
        if raw is None and self._some:
            raw = self._found(digest)
        if raw is not None:  # the usual case, once per file per run
            return self._parse(raw)
        try:
            with open(path, "rb") as handle:
                found = sniff(handle.read(64))
        except OSError:
            return None  # vanished or unreadable: nothing to remember about the content
        raw = f"{found.kind} {found.mime}" if found is not None else ""
        self._types[digest] = raw
        self._new.append(digest)
        return self._parse(raw)

    def _parse(self, raw: str) -> MediaType | None:
        if raw not in self._parsed:
            kind, _, mime = raw.partition(" ")
            self._parsed[raw] = MediaType(kind, mime) if kind and mime else None
        return self._parsed[raw]

    def save(self) -> None:
        """Append what this run sniffed, or write the used entries afresh (see the class)."""
        if not self._some and len(self._types) > 2 * len(self._used):
            self._types = {d: t for d, t in self._types.items() if d in self._used}
            self._rewrite = True
        try:
            if self._rewrite:
                # Not fsync'd: the loader skips a torn line (it then sniffs again).
                write_atomic(self._path, self._lines(self._types).encode(), durable=False)
                (self._path.parent / self._LEGACY).unlink(missing_ok=True)
            elif self._new:
                with open(self._path, "a", encoding="utf-8") as handle:
                    handle.write(self._lines({d: self._types[d] for d in self._new}))
        except OSError as exc:  # a cache: the next run sniffs again
            log.warning("file types not cached in %s: %s", self._path, exc)
        self._rewrite, self._new = False, []

    @staticmethod
    def _lines(types: dict[str, str]) -> str:
        return "".join(f"{digest} {raw}\n" for digest, raw in types.items())


def _valid_type(raw: str) -> bool:
    kind, sep, mime = raw.partition(" ")
    return bool(sep and kind and "/" in mime)


def _unlink(path: Path) -> int:
    try:
        size = path.stat().st_size
        path.unlink()
    except OSError:
        return 0
    return size


def _execute(job: Job) -> dict[str, object]:
    """Run one recipe and record its outcome in the cache. Runs in a worker process.

    Outcomes that depend only on the input and the recipe are cached (including "cannot fit"
    and "cannot decode"); failures of this machine (unreadable source, full disk, an encoder
    bug) are returned as "volatile" and tried again next time.
    """
    try:
        data = Path(job.source_path).read_bytes()
    except OSError as exc:  # vanished or unreadable: not a property of the image
        return _volatile(f"cannot read: {exc.strerror or exc}")
    started = time.perf_counter()
    entry: dict[str, object]
    try:
        out = _apply_recipe(json.loads(job.recipe), data, job.kind)
        details = getattr(out, "details", None)  # audio: what the file was and became
        if out is None or out.data is None:
            entry = {"status": "same", "note": out.note if out is not None
                     else "no smaller lossless encoding"}
        else:
            digest = DIGEST_PREFIX + xxhash.xxh3_128_hexdigest(out.data)
            target = _object_path(Path(job.cache_dir), digest, out.ext)
            if not _holds(target, out.data):
                write_atomic(target, out.data)
            st = target.stat()
            entry = {"status": "ok", "digest": digest, "size": len(out.data), "kind": out.kind,
                     "content_path": str(target), "note": out.note,
                     "stat": [st.st_size, st.st_mtime_ns]}
        if callable(details):
            entry["audio"] = details()
    except LimitError as exc:
        entry = {"status": "limit", "message": str(exc)}
    except TransformError as exc:
        entry = {"status": "error", "message": str(exc)}
    except OSError as exc:
        return _volatile(f"cannot write the transform cache: {exc.strerror or exc}")
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - encoder bugs (pyo3 panics are BaseException)
        return _volatile(f"encoder failed ({type(exc).__name__}: {exc})")
    entry["seconds"] = round(time.perf_counter() - started, 4)
    try:
        write_atomic(_index_path(Path(job.cache_dir), job.key),
                      json.dumps(entry, sort_keys=True).encode())
    except OSError as exc:
        log.warning("transform cache not written for %s: %s", job.source, exc)
    return entry


def _holds(path: Path, data: bytes) -> bool:
    """Whether `path` already holds exactly `data` (another entry wrote the same output)."""
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        return False


def _apply_recipe(recipe: dict[str, object], data: bytes, kind: str
                  ) -> Output | AudioOutput | None:
    if recipe["op"] == "audio":
        from assetsync.media.audio import apply_audio_recipe

        return apply_audio_recipe(recipe, data, kind)
    from assetsync.media.lossless import optimize_image
    from assetsync.media.variants import make_variant

    max_pixels = int(str(recipe["max_pixels"]))
    if recipe["op"] == "lossless":
        return optimize_image(data, kind, OptimizeOptions(
            keep_metadata=bool(recipe["keep_metadata"]), effort=int(str(recipe["effort"])),
            gif_to_png=bool(recipe["gif_to_png"]), max_pixels=max_pixels))
    fields = {k: v for k, v in recipe.items() if k not in ("op", "max_pixels", "as_is")}
    # The recipe is `variant_recipe`'s: a Profile's own fields (asdict), through JSON.
    return make_variant(data, kind, Profile(**cast("dict[str, Any]", fields)),
                        max_pixels=max_pixels)


def _volatile(message: str) -> dict[str, object]:
    return {"status": "error", "message": message, "seconds": 0.0, "volatile": True}


def _init_worker() -> None:
    # oxipng parallelises with rayon; with one process per core, one thread each avoids
    # oversubscribing the cores (rayon reads this when its pool is first used).
    os.environ["RAYON_NUM_THREADS"] = "1"
    os.environ["OPENBLAS_NUM_THREADS"] = "1"  # numpy (audio), read when it is first imported


def run_jobs(jobs: Sequence[Job], workers: int,
             done: Callable[[Job, dict[str, object]], None]) -> None:
    """Run jobs inline (one worker or one job) or on a process pool; `done` gets each outcome.

    Outcomes arrive in job order. A worker that dies (crash, out of memory) yields an
    uncached "error" outcome for its jobs instead of ending the run.
    """
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            entry = _execute(job)
            log.debug("transform %s: %s", job.source, entry.get("note") or entry.get("message"))
            done(job, entry)
        return
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_all_start_methods, get_context

    # forkserver/spawn: forking a process that runs threads (the in-process emulator, the
    # watcher) can deadlock in the child.
    method = "forkserver" if "forkserver" in get_all_start_methods() else "spawn"
    context = get_context(method)
    if method == "forkserver":
        # Workers fork from a server that has imported this module (and so the package)
        # once, instead of each importing it afresh. No encoder is imported by it: the
        # thread-count variables `_init_worker` sets are read when those load.
        context.set_forkserver_preload([__name__])
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=context,
                             initializer=_init_worker) as pool:
        futures = [(job, pool.submit(_execute, job)) for job in jobs]
        for job, future in futures:
            try:
                entry = future.result()
            except Exception as exc:  # noqa: BLE001 - a crashed worker must not end the run
                entry = _volatile(f"encoder process crashed ({type(exc).__name__})")
            log.debug("transform %s: %s", job.source, entry.get("note") or entry.get("message"))
            done(job, entry)


