"""The transform stage as the pipeline runs it: content cache in the state folder, process pool.

Every encode is keyed by (source digest, recipe digest, encoder versions). The outcome is
written to `<cache_dir>/index/` and the output bytes to `<cache_dir>/objects/` (named by their
own digest), both atomically, so an unchanged image is never encoded twice, a crash never
leaves a half-written file that is trusted, and the published digest is stable.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from importlib import metadata
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path

import xxhash
from PIL import __version__ as pillow_version
from PIL import features

from assetsync.errors import LimitError, TransformError
from assetsync.media import Issue, OptimizeOptions, Profile, sniff, variant_path
from assetsync.models import DIGEST_PREFIX, PublishedFile
from assetsync.sync_types import SyncEvent
from assetsync.transform import DECODE_FORMATS, Output, optimize_image
from assetsync.transform_variants import make_variant

__all__ = ["FileReport", "TransformResult", "TransformStats", "encoder_versions", "transform_files"]

log = logging.getLogger(__name__)

# Bump when a recipe changes its output for the same input and options.
RECIPE_VERSION = 1
_LOSSLESS_KINDS = frozenset({"jpeg", "png", "gif"})
_VARIANT_KINDS = frozenset(k.lower() for k in DECODE_FORMATS)


@dataclass(frozen=True, slots=True)
class FileReport:
    """One encode, for `assetsync optimize --report`: sizes before and after, time, outcome.

    `outcome` is "optimized" (smaller output published), "kept" (original published),
    "variant" (derived copy), "failed" (see the issues).
    """

    path: str
    source: str
    variant: str | None
    before: int
    after: int
    seconds: float
    cached: bool
    outcome: str
    note: str


@dataclass(frozen=True, slots=True)
class TransformStats:
    """Totals over one run; bytes cover the images only (variants excluded)."""

    images: int = 0
    optimized: int = 0
    variants: int = 0
    encoded: int = 0
    cache_hits: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    encode_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class TransformResult:
    """What `transform_files` returns: the files to publish (sorted by path), issues, stats."""

    files: tuple[PublishedFile, ...]
    issues: tuple[Issue, ...]
    stats: TransformStats
    reports: tuple[FileReport, ...] = ()


@dataclass(frozen=True, slots=True)
class _Job:
    key: str
    source: str  # the source's relative path, for progress events
    source_path: str
    kind: str
    recipe: str  # canonical JSON; also what the worker decodes its instructions from
    cache_dir: str


def encoder_versions() -> str:
    """The encoders whose output a cached result depends on, as one stable string."""
    parts = {
        "recipe": str(RECIPE_VERSION),
        "pillow": pillow_version,
        "libjpeg": str(features.version("jpg")),
        "zlib": str(features.version("zlib")),
        "pyoxipng": metadata.version("pyoxipng"),
        "mozjpeg-lossless": metadata.version("mozjpeg-lossless-optimization"),
    }
    return ";".join(f"{k}={v}" for k, v in sorted(parts.items()))


def _lossless_recipe(options: OptimizeOptions) -> dict[str, object]:
    return {"op": "lossless", "keep_metadata": options.keep_metadata, "effort": options.effort,
            "gif_to_png": options.gif_to_png, "max_pixels": options.max_pixels}


def _variant_recipe(profile: Profile, options: OptimizeOptions) -> dict[str, object]:
    fields = asdict(profile)
    del fields["globs"], fields["path"]  # they decide where, not what
    return {"op": "variant", "max_pixels": options.max_pixels, **fields}


def _key(digest: str, recipe: str, encoders: str) -> str:
    return hashlib.sha256(f"{digest}\n{recipe}\n{encoders}".encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# the cache (files under cache_dir; every write atomic)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _index_path(cache_dir: Path, key: str) -> Path:
    return cache_dir / "index" / key[:2] / f"{key}.json"


def _object_path(cache_dir: Path, digest: str, ext: str) -> Path:
    hexdigest = digest.removeprefix(DIGEST_PREFIX)
    return cache_dir / "objects" / hexdigest[:2] / f"{hexdigest}.{ext}"


def _lookup(cache_dir: Path, key: str) -> dict[str, object] | None:
    """A cached outcome whose content file is still intact, or None."""
    try:
        entry = json.loads(_index_path(cache_dir, key).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(entry, dict):
        return None
    if entry.get("status") == "ok":
        try:
            data = Path(str(entry["content_path"])).read_bytes()
        except (OSError, KeyError):
            return None
        # A content file that no longer matches its name is re-encoded, never published.
        if DIGEST_PREFIX + xxhash.xxh3_128_hexdigest(data) != entry.get("digest"):
            return None
    return entry


def _execute(job: _Job) -> dict[str, object]:
    """Run one recipe and record its outcome in the cache. Runs in a worker process."""
    recipe = json.loads(job.recipe)
    cache_dir = Path(job.cache_dir)
    started = time.perf_counter()
    entry: dict[str, object]
    try:
        data = Path(job.source_path).read_bytes()
        out: Output | None
        if recipe["op"] == "lossless":
            out = optimize_image(data, job.kind, OptimizeOptions(
                keep_metadata=recipe["keep_metadata"], effort=recipe["effort"],
                gif_to_png=recipe["gif_to_png"], max_pixels=recipe["max_pixels"]))
        else:
            fields = {k: v for k, v in recipe.items() if k not in ("op", "max_pixels")}
            out = make_variant(data, job.kind, Profile(**fields), max_pixels=recipe["max_pixels"])
        if out is None:
            entry = {"status": "same", "note": "no smaller lossless encoding"}
        else:
            digest = DIGEST_PREFIX + xxhash.xxh3_128_hexdigest(out.data)
            target = _object_path(cache_dir, digest, out.ext)
            if not target.exists() or target.stat().st_size != len(out.data):
                _write_atomic(target, out.data)
            entry = {"status": "ok", "digest": digest, "size": len(out.data), "kind": out.kind,
                     "content_path": str(target), "note": out.note}
    except LimitError as exc:
        entry = {"status": "limit", "message": str(exc)}
    except TransformError as exc:
        entry = {"status": "error", "message": str(exc)}
    except OSError as exc:  # the source vanished or is unreadable: not a property of the image
        return {"status": "error", "message": f"cannot read: {exc.strerror or exc}",
                "seconds": 0.0, "volatile": True}
    entry["seconds"] = round(time.perf_counter() - started, 4)
    _write_atomic(_index_path(cache_dir, job.key), json.dumps(entry, sort_keys=True).encode())
    return entry


def _init_worker() -> None:
    # oxipng parallelises with rayon; with one process per core, one thread each avoids
    # oversubscribing the cores (rayon reads this when its pool is first used).
    os.environ["RAYON_NUM_THREADS"] = "1"


def _run_jobs(jobs: Sequence[_Job], workers: int,
              done: Callable[[_Job, dict[str, object]], None]) -> None:
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            done(job, _execute(job))
        return
    # forkserver/spawn: forking a process that runs threads (the in-process emulator, the
    # watcher) can deadlock in the child.
    method = "forkserver" if "forkserver" in get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=get_context(method),
                             initializer=_init_worker) as pool:
        futures = [(job, pool.submit(_execute, job)) for job in jobs]
        for job, future in futures:
            try:
                entry = future.result()
            except Exception as exc:  # noqa: BLE001 - a crashed worker must not end the run
                entry = {"status": "error", "message": f"encoder crashed ({type(exc).__name__})",
                         "seconds": 0.0, "volatile": True}
            done(job, entry)


# ---------------------------------------------------------------------------------------------
# the stage


def transform_files(
    files: Sequence[PublishedFile],
    options: OptimizeOptions,
    *,
    source: Path,
    cache_dir: Path,
    workers: int | None = None,
    on_event: Callable[[SyncEvent], None] | None = None,
) -> TransformResult:
    """Optimize images and derive channel variants; the sync engine's transform stage.

    Each image's content is replaced by its lossless optimized output when that is smaller
    (`content_path` then points into the cache); each active profile matching its source adds
    a variant `PublishedFile` (same visibility, `variant` = profile name). A file that cannot
    be decoded is published unchanged with a warning (an error under `strict`); a variant
    that cannot fit its budget is an error naming the best size reached.

    Args:
        files: the classified files (`variant` None); others pass through unchanged.
        options: the `[optimize]` options.
        source: the source folder (relative `content_path`s are resolved against it).
        cache_dir: the transform cache folder inside the state folder.
        workers: processes to encode with; default one per available core.
        on_event: progress callback: `SyncEvent("transform_started", total=n)`, then
            `SyncEvent("transformed", path, files=done, total=n, bytes=output size)` per encode.
    """
    encoders = encoder_versions()
    lossless_recipe = json.dumps(_lossless_recipe(options), sort_keys=True)
    jobs: dict[str, _Job] = {}
    plan: list[tuple[PublishedFile, str | None, list[tuple[Profile | None, str]]]] = []
    issues: list[Issue] = []
    for file in files:
        path = file.content_path if file.content_path.is_absolute() else source / file.content_path
        kind = None if file.variant is not None or options.excluded(file.source) else _kind(path)
        todo: list[tuple[Profile | None, str]] = []
        if kind is not None and file.size > options.max_input_bytes:
            issues.append(Issue(file.source, f"not optimized: {file.size:,} bytes is over "
                                "[optimize] max_input_bytes", "warning"))
            kind = None
        if kind is not None:
            recipes: list[tuple[Profile | None, str]] = []
            if options.lossless and kind in _LOSSLESS_KINDS:
                recipes.append((None, lossless_recipe))
            for profile in options.profiles_for(file.source):
                if profile.variant and kind in _VARIANT_KINDS:
                    recipes.append((profile, json.dumps(_variant_recipe(profile, options),
                                                        sort_keys=True)))
            for profile, recipe in recipes:
                key = _key(file.digest, recipe, encoders)
                jobs.setdefault(key, _Job(key, file.source, str(path), kind, recipe,
                                             str(cache_dir)))
                todo.append((profile, key))
        plan.append((file, kind, todo))

    entries: dict[str, dict[str, object]] = {}
    misses = []
    for key, job in jobs.items():
        hit = _lookup(cache_dir, key)
        if hit is None:
            misses.append(job)
        else:
            entries[key] = {**hit, "cached": True}
    total, progress = len(misses), [0]
    if on_event is not None and total:
        on_event(SyncEvent("transform_started", total=total))

    def done(job: _Job, entry: dict[str, object]) -> None:
        entries[job.key] = {**entry, "cached": False}
        progress[0] += 1
        if on_event is not None:
            on_event(SyncEvent("transformed", path=job.source, files=progress[0],
                               total=total, bytes=int(entry.get("size", 0) or 0),  # type: ignore[call-overload]
                               message=str(entry.get("note") or entry.get("message") or "")))

    _run_jobs(misses, workers or _available_cores(), done)
    return _assemble(plan, entries, options, issues, encoded=len(misses))


def _kind(path: Path) -> str | None:
    try:
        with open(path, "rb") as handle:
            media = sniff(handle.read(64))
    except OSError:
        return None
    return media.kind if media is not None and media.is_image else None


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _assemble(
    plan: list[tuple[PublishedFile, str | None, list[tuple[Profile | None, str]]]],
    entries: dict[str, dict[str, object]],
    options: OptimizeOptions,
    issues: list[Issue],
    *,
    encoded: int,
) -> TransformResult:
    out: dict[str, PublishedFile] = {f.path: f for f, _, _ in plan}
    reports: list[FileReport] = []
    stats = TransformStats(encoded=encoded)
    severity = "error" if options.strict else "warning"
    for file, kind, todo in plan:
        if kind is not None:
            stats = replace(stats, images=stats.images + 1,
                            bytes_before=stats.bytes_before + file.size)
        published = file
        for profile, key in todo:
            entry = entries[key]
            cached, seconds = bool(entry.get("cached")), float(entry.get("seconds", 0.0))  # type: ignore[arg-type]
            stats = replace(stats, cache_hits=stats.cache_hits + cached,
                            encode_seconds=stats.encode_seconds + (0.0 if cached else seconds))
            status = entry["status"]
            label = "" if profile is None else f"variant {profile.name!r}: "
            if status in ("error", "limit"):
                level = "error" if status == "limit" else severity
                tail = "" if profile is not None else "; published as is"
                issues.append(Issue(file.source, f"{label}{entry['message']}{tail}", level))
                reports.append(FileReport(file.path, file.source, profile and profile.name,
                                          file.size, file.size, seconds, cached, "failed",
                                          str(entry["message"])))
                continue
            note = str(entry.get("note", ""))
            if status == "same":
                reports.append(FileReport(file.path, file.source, None, file.size, file.size,
                                          seconds, cached, "kept", note))
                continue
            result_kind = str(entry["kind"])
            changes = dict(digest=str(entry["digest"]), size=int(entry["size"]),  # type: ignore[call-overload]
                           content_path=Path(str(entry["content_path"])),
                           content_type=f"image/{result_kind}")
            if profile is None:
                published = replace(file, **changes)  # type: ignore[arg-type]
                out[file.path] = published
                stats = replace(stats, optimized=stats.optimized + 1)
                reports.append(FileReport(file.path, file.source, None, file.size,
                                          published.size, seconds, cached, "optimized", note))
                continue
            ext = {"jpeg": "jpg"}.get(result_kind, result_kind)
            path = variant_path(profile.path, profile=profile.name, published=file.path, ext=ext)
            if path in out:
                issues.append(Issue(file.source, f"{label}{path} is already published from "
                                    f"{out[path].source}; change the profile's path template",
                                    "error"))
                continue
            out[path] = replace(file, path=path, variant=profile.name, **changes)  # type: ignore[arg-type]
            stats = replace(stats, variants=stats.variants + 1)
            reports.append(FileReport(path, file.source, profile.name, file.size,
                                      int(entry["size"]), seconds, cached, "variant", note))  # type: ignore[call-overload]
        if kind is not None:
            stats = replace(stats, bytes_after=stats.bytes_after + published.size)
    ordered = tuple(out[path] for path in sorted(out))
    issues.sort(key=lambda issue: (issue.path, issue.message))
    return TransformResult(ordered, tuple(issues), stats, tuple(reports))
