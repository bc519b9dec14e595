"""The transform stage: optimize images, make audio channel-ready, derive channel variants.

`transform_files` is what the sync engine calls between classify and its checks. The pure
recipes live beside it: `assetsync.media.lossless` (the lossless pass),
`assetsync.media.variants` (channel variants), `assetsync.media.codec` (safe decoding,
metadata surgery), `assetsync.media.audio` (audio; its outcomes are applied by
`assetsync.media.audio_stage`); options and profiles in `assetsync.media.options`, content sniffing and
channel checks in `assetsync.media.sniff`; the content cache and the process pool in
`assetsync.media.cache`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from assetsync.prepare.classify import Issue, Severity
from assetsync.media.sniff import DECODABLE, channel_warnings
from assetsync.media.options import OptimizeOptions, Profile, parse_optimize_section, variant_path
from assetsync.models import PublishedFile
from assetsync.results import SyncEvent
from assetsync.media.audio_stage import (
    AudioReport,
    AudioTally,
    assemble_audio,
    audio_profiles,
    audio_recipe,
)
from assetsync.media.cache import (
    Job,
    SniffCache,
    audio_encoder_versions,
    cache_key,
    encoder_versions,
    lookup,
    lossless_recipe,
    prune_cache,
    run_jobs,
    variant_recipe,
)
from assetsync.media.report import FileReport

if TYPE_CHECKING:
    from assetsync.media.codec import Output, open_image
    from assetsync.media.lossless import optimize_image
    from assetsync.media.variants import make_variant

__all__ = [
    "AudioReport",
    "FileReport",
    "Issue",
    "OptimizeOptions",
    "Output",
    "Profile",
    "TransformResult",
    "TransformStats",
    "channel_warnings",
    "make_variant",
    "open_image",
    "optimize_image",
    "parse_optimize_section",
    "transform_files",
]

_LOSSLESS_KINDS = frozenset({"jpeg", "png", "gif"})

# Re-exported encoders, imported on first use: Pillow, oxipng and mozjpeg cost ~40 ms to import,
# which a plan or sync with nothing to encode (and the config loader, which imports this module
# for `parse_optimize_section`) must not pay.
_LAZY = {
    "Output": "assetsync.media.codec",
    "open_image": "assetsync.media.codec",
    "optimize_image": "assetsync.media.lossless",
    "make_variant": "assetsync.media.variants",
}


def __getattr__(name: str) -> object:
    """The lazily imported re-exports (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


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
    pruned_bytes: int = 0


@dataclass(frozen=True, slots=True)
class TransformResult:
    """What `transform_files` returns: the files to publish (sorted by path), issues, stats;
    `audio` and `audio_stats` cover the audio files (`reports` and `stats` the images)."""

    files: tuple[PublishedFile, ...]
    issues: tuple[Issue, ...]
    stats: TransformStats
    reports: tuple[FileReport, ...] = ()
    audio: tuple[AudioReport, ...] = ()
    audio_stats: AudioTally = field(default_factory=AudioTally)


def transform_files(
    files: Sequence[PublishedFile],
    options: OptimizeOptions,
    *,
    source: Path,
    cache_dir: Path,
    workers: int | None = None,
    on_event: Callable[[SyncEvent], None] | None = None,
    prune: bool = False,
    some: bool = False,
) -> TransformResult:
    """Optimize images and derive channel variants; the sync engine's transform stage.

    Each image's content is replaced by its lossless optimized output when that is smaller
    (`content_path` then points into the cache); each active profile matching its source adds
    a variant `PublishedFile` (same visibility, `variant` = profile name). A file that cannot
    be decoded is published unchanged with a warning (an error under `strict`); a variant
    that cannot fit its budget is an error naming the best size reached. Files a channel
    profile covers whose type that channel does not take get a warning (`channel_warnings`).
    Audio under a voice profile is replaced at its path by a telephony-ready prompt; under
    whatsapp and mms profiles it gets variants (`result.audio` says what each became).

    Args:
        files: the classified files (`variant` None); others pass through unchanged.
        options: the `[optimize]` options.
        source: the source folder (relative `content_path`s are resolved against it).
        cache_dir: the transform cache folder inside the state folder.
        workers: processes to encode with; default one per available core.
        on_event: progress callback: `SyncEvent("transform_started", total=n)`, then
            `SyncEvent("transformed", path, files=done, total=n, bytes=output size)` per encode.
        prune: afterwards, delete every cache entry this run did not use (pass it only with
            the whole source folder's files); `stats.pruned_bytes` says what was freed.
        some: `files` are a few of the site's (the changed ones): the file-type cache keeps
            the entries of the others and is searched rather than read whole.
    """
    encoders = ""  # computed when the first image needs it (it imports Pillow)
    sound = ""  # the audio encoders' versions, when the first audio file needs them
    lossless = json.dumps(lossless_recipe(options), sort_keys=True)
    jobs: dict[str, Job] = {}
    plan: list[tuple[PublishedFile, str | None, list[tuple[Profile | None, str]]]] = []
    heard: list[tuple[PublishedFile, str, str, list[tuple[Profile, str]]]] = []
    issues: list[Issue] = []
    # Types by content digest: an unchanged file is not opened again to find its type.
    sniffed = SniffCache(cache_dir, some=some and not prune)
    excluded = options.excluded if options.exclude else None  # most configs exclude nothing
    for file in files:
        path = file.content_path
        if not path.startswith("/"):
            path = os.path.join(source, path)
        kind = media = None
        if file.variant is None and (excluded is None or not excluded(file.source)):
            media = sniffed.media(file.digest, path)
            kind = media.kind if media is not None and media.is_image else None
        if media is not None and media.is_audio:
            audio = audio_profiles(options.profiles_for(file.source))
            if audio and file.size > options.max_input_bytes:
                issues.append(Issue(file.source, f"not optimized: {file.size:,} bytes is over "
                                    "[optimize] max_input_bytes", "warning"))
            elif audio:
                sound = sound or audio_encoder_versions(cache_dir)
                keys = []
                for audio_profile in audio:
                    recipe = json.dumps(audio_recipe(audio_profile), sort_keys=True)
                    key = cache_key(file.digest, recipe, sound)
                    jobs.setdefault(key, Job(key, file.source, str(path), media.kind, recipe,
                                             str(cache_dir)))
                    keys.append((audio_profile, key))
                heard.append((file, media.kind, media.mime, keys))
        todo: list[tuple[Profile | None, str]] = []
        recipes: list[tuple[Profile | None, str]] = []
        if kind is not None:
            if options.lossless and kind in _LOSSLESS_KINDS:
                recipes.append((None, lossless))
            for matched in options.profiles_for(file.source):
                if matched.variant and kind in DECODABLE:
                    recipes.append((matched, json.dumps(variant_recipe(matched, options),
                                                        sort_keys=True)))
        if recipes and file.size > options.max_input_bytes:
            issues.append(Issue(file.source, f"not optimized: {file.size:,} bytes is over "
                                "[optimize] max_input_bytes", "warning"))
            recipes, kind = [], None
        if kind is not None:
            if recipes and not encoders:
                encoders = encoder_versions()
            for profile, recipe in recipes:
                key = cache_key(file.digest, recipe, encoders)
                jobs.setdefault(key, Job(key, file.source, str(path), kind, recipe,
                                         str(cache_dir)))
                todo.append((profile, key))
        plan.append((file, kind, todo))

    entries: dict[str, dict[str, object]] = {}
    misses = []
    for key, job in jobs.items():
        hit = lookup(cache_dir, key)
        if hit is None:
            misses.append(job)
        else:
            entries[key] = {**hit, "cached": True}
    total, progress = len(misses), [0]
    if on_event is not None and total:
        on_event(SyncEvent("transform_started", total=total))

    def done(job: Job, entry: dict[str, object]) -> None:
        entries[job.key] = {**entry, "cached": False}
        progress[0] += 1
        if on_event is not None:
            on_event(SyncEvent("transformed", path=job.source, files=progress[0],
                               total=total, bytes=int(str(entry.get("size") or 0)),
                               message=str(entry.get("note") or entry.get("message") or "")))

    run_jobs(misses, workers or _available_cores(), done)
    result = _assemble(plan, entries, options, issues, encoded=len(misses), heard=heard)
    # Channel checks (issue 5.3) on what will be published, variants included, so `plan` and
    # `sync` both warn about a type a channel does not take; warnings never fail the run.
    warned = channel_warnings(result.files, options, sniffed=lambda f: sniffed.media(
        f.digest, os.path.join(source, f.content_path)))
    sniffed.save()
    if warned:
        merged = sorted({*result.issues, *warned}, key=lambda i: (i.path, i.message))
        result = replace(result, issues=tuple(merged))
    if prune:
        _deleted, freed = prune_cache(cache_dir, jobs.keys())
        result = replace(result, stats=replace(result.stats, pruned_bytes=freed))
    return result


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
    heard: list[tuple[PublishedFile, str, str, list[tuple[Profile, str]]]],
) -> TransformResult:
    out: dict[str, PublishedFile] = {f.path: f for f, _, _ in plan}
    reports: list[FileReport] = []
    stats = TransformStats(encoded=encoded)
    severity: Severity = "error" if options.strict else "warning"
    for file, kind, todo in plan:
        if kind is not None:
            stats = replace(stats, images=stats.images + 1,
                            bytes_before=stats.bytes_before + file.size)
        published = file
        if kind is not None and file.content_type != f"image/{kind}":
            # Twilio checks that the Content-Type matches the media (accepted-mime-types
            # page): a PNG saved as `.jpg` is served as image/png even when left as it is.
            published = file._replace(content_type=f"image/{kind}")
            out[file.path] = published
        for profile, key in todo:
            entry = entries[key]
            cached, seconds = bool(entry.get("cached")), float(str(entry.get("seconds") or 0))
            stats = replace(stats, cache_hits=stats.cache_hits + cached,
                            encode_seconds=stats.encode_seconds + (0.0 if cached else seconds))
            status = entry["status"]
            label = "" if profile is None else f"variant {profile.name!r}: "
            if status in ("error", "limit"):
                level: Severity = "error" if status == "limit" else severity
                tail = "" if profile is not None else "; published as is"
                issues.append(Issue(file.source, f"{label}{entry['message']}{tail}", level))
                reports.append(FileReport(file.path, file.source,
                                          profile.name if profile else None,
                                          file.size, file.size, seconds, cached, "failed",
                                          str(entry["message"])))
                continue
            note = str(entry.get("note", ""))
            if status == "same":
                reports.append(FileReport(file.path, file.source, None, file.size, file.size,
                                          seconds, cached, "kept", note))
                continue
            result_kind = str(entry["kind"])
            changes: dict[str, object] = {
                "digest": str(entry["digest"]), "size": int(str(entry["size"])),
                "content_path": str(entry["content_path"]),
                "content_type": f"image/{result_kind}",
            }
            if profile is None:
                published = file._replace(**changes)  # type: ignore[arg-type]
                out[file.path] = published
                stats = replace(stats, optimized=stats.optimized + 1)
                reports.append(FileReport(file.path, file.source, None, file.size,
                                          published.size, seconds, cached, "optimized", note))
                continue
            from assetsync.media.codec import EXTENSIONS  # only once a variant exists

            path = variant_path(profile.path, profile=profile.name, published=file.path,
                                ext=EXTENSIONS[result_kind])
            if path in out:
                issues.append(Issue(file.source, f"{label}{path} is already published from "
                                    f"{out[path].source}; change the profile's path template",
                                    "error"))
                continue
            out[path] = file._replace(path=path, variant=profile.name, **changes)  # type: ignore[arg-type]
            stats = replace(stats, variants=stats.variants + 1)
            reports.append(FileReport(path, file.source, profile.name, file.size,
                                      int(str(entry["size"])), seconds, cached, "variant", note))
        if kind is not None:
            stats = replace(stats, bytes_after=stats.bytes_after + published.size)
    audio, tally = assemble_audio(heard, entries, out, issues, severity=severity,
                                  placed=out.get)
    ordered = tuple(out[path] for path in sorted(out))
    issues.sort(key=lambda issue: (issue.path, issue.message))
    return TransformResult(ordered, tuple(issues), stats, tuple(reports), tuple(audio), tally)
