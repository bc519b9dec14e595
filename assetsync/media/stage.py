"""The transform stage: optimize images, make audio channel-ready, derive channel variants.

`transform_files` is what the sync engine calls between classify and its checks. The pure recipes
live beside it: `assetsync.media.lossless` (the lossless pass), `assetsync.media.variants` (channel
variants), `assetsync.media.codec` (safe decoding, metadata surgery), `assetsync.media.audio`
(audio; its outcomes are applied by `assetsync.media.audio_stage`); options and profiles in
`assetsync.media.options`, content sniffing and channel checks in `assetsync.media.sniff`; the
content cache and the process pool in `assetsync.media.cache`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from assetsync.frozen import field, frozen, replace
from assetsync.media.audio_stage import (
    AudioReport,
    AudioTally,
    assemble_audio,
    audio_profiles,
    audio_recipe,
    output_of,
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
from assetsync.media.options import OptimizeOptions, Profile, variant_path
from assetsync.media.report import FileReport
from assetsync.media.sniff import DECODABLE, MediaType, channel_warnings
from assetsync.models import PublishedFile
from assetsync.prepare.classify import Issue, Severity
from assetsync.results import SyncEvent

__all__ = [
    "AudioReport",
    "FileReport",
    "TransformResult",
    "TransformStats",
    "transform_files",
]

_LOSSLESS_KINDS = frozenset({"jpeg", "png", "gif"})

# One image's encodes: (the file, its sniffed image kind or None, [(profile or None for the
# lossless pass, cache key)]); one audio file's: (file, kind, mime, [(profile, cache key)]).
_Planned = tuple[PublishedFile, str | None, list[tuple[Profile | None, str]]]
_Heard = tuple[PublishedFile, str, str, list[tuple[Profile, str]]]


@frozen
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


@frozen
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
    # Types by content digest: an unchanged file is not opened again to find its type.
    sniffed = SniffCache(cache_dir, some=some and not prune)
    jobs = _Jobs(options, source, cache_dir, sniffed)
    for file in files:
        jobs.add(file)
    entries, encoded = _run(jobs.jobs, cache_dir, workers or _available_cores(), on_event)
    result = _assemble(jobs.plan, entries, options, jobs.issues, encoded=encoded,
                       heard=jobs.heard)
    # Channel checks (issue 5.3) on what will be published, variants included, so `plan` and
    # `sync` both warn about a type a channel does not take; warnings never fail the run.
    warned = channel_warnings(result.files, options, sniffed=lambda f: sniffed.media(
        f.digest, os.path.join(source, f.content_path)))
    sniffed.save()
    if warned:
        merged = sorted({*result.issues, *warned}, key=lambda i: (i.path, i.message))
        result = replace(result, issues=tuple(merged))
    if prune:
        _deleted, freed = prune_cache(cache_dir, jobs.jobs.keys())
        result = replace(result, stats=replace(result.stats, pruned_bytes=freed))
    return result


class _Jobs:
    """The encodes a run needs, file by file: a cache key per (source, recipe), with the
    images' and audio files' plans that `_assemble` applies the outcomes to."""

    def __init__(self, options: OptimizeOptions, source: Path, cache_dir: Path,
                 sniffed: SniffCache) -> None:
        self.options, self.source, self.cache_dir, self.sniffed = (
            options, source, cache_dir, sniffed)
        self.lossless = json.dumps(lossless_recipe(options), sort_keys=True)
        self.encoders = ""  # computed when the first image needs it (it imports Pillow)
        self.sound = ""  # the audio encoders' versions, when the first audio file needs them
        self.jobs: dict[str, Job] = {}
        self.plan: list[_Planned] = []
        self.heard: list[_Heard] = []
        self.issues: list[Issue] = []
        # Most configs exclude nothing: no glob test per file then.
        self.excluded = options.excluded if options.exclude else None

    def add(self, file: PublishedFile) -> None:
        path = file.content_path
        if not path.startswith("/"):
            path = os.path.join(self.source, path)
        media = None
        if file.variant is None and (self.excluded is None or not self.excluded(file.source)):
            media = self.sniffed.media(file.digest, path)
        if media is not None and media.is_audio:
            self._audio(file, media, path)
        kind = media.kind if media is not None and media.is_image else None
        self.plan.append(self._image(file, kind, path))

    def _too_big(self, file: PublishedFile) -> bool:
        if file.size <= self.options.max_input_bytes:
            return False
        self.issues.append(Issue(file.source, f"not optimized: {file.size:,} bytes is over "
                                 "[optimize] max_input_bytes", "warning"))
        return True

    def _job(self, file: PublishedFile, path: str, kind: str, recipe: str, versions: str) -> str:
        key = cache_key(file.digest, recipe, versions)
        self.jobs.setdefault(key, Job(key, file.source, path, kind, recipe, str(self.cache_dir)))
        return key

    def _audio(self, file: PublishedFile, media: MediaType, path: str) -> None:
        audio = audio_profiles(self.options.profiles_for(file.source))
        if not audio or self._too_big(file):
            return
        self.sound = self.sound or audio_encoder_versions(self.cache_dir)
        keys = [(profile, self._job(file, path, media.kind, json.dumps(
            audio_recipe(profile), sort_keys=True), self.sound)) for profile in audio]
        self.heard.append((file, media.kind, media.mime, keys))

    def _image(self, file: PublishedFile, kind: str | None, path: str) -> _Planned:
        if kind is None:
            return (file, None, [])
        recipes: list[tuple[Profile | None, str]] = []
        if self.options.lossless and kind in _LOSSLESS_KINDS:
            recipes.append((None, self.lossless))
        if kind in DECODABLE:
            recipes.extend((matched, json.dumps(variant_recipe(matched, self.options),
                                                sort_keys=True))
                           for matched in self.options.profiles_for(file.source)
                           if matched.variant)
        if not recipes:
            return (file, kind, [])
        if self._too_big(file):
            return (file, None, [])
        self.encoders = self.encoders or encoder_versions()
        return (file, kind, [(profile, self._job(file, path, kind, recipe, self.encoders))
                             for profile, recipe in recipes])


def _run(jobs: dict[str, Job], cache_dir: Path, workers: int,
         on_event: Callable[[SyncEvent], None] | None) -> tuple[dict[str, dict[str, object]], int]:
    """Each job's outcome (from the cache, else encoded now) and how many were encoded."""
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

    run_jobs(misses, workers, done)
    return entries, total


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _assemble(
    plan: list[_Planned],
    entries: dict[str, dict[str, object]],
    options: OptimizeOptions,
    issues: list[Issue],
    *,
    encoded: int,
    heard: list[_Heard],
) -> TransformResult:
    """The run's outcomes applied: the files to publish by path, the reports and totals."""
    out: dict[str, PublishedFile] = {f.path: f for f, _, _ in plan}
    images = _Images(out, issues, "error" if options.strict else "warning")
    images.stats = TransformStats(encoded=encoded)
    for file, kind, todo in plan:
        images.file(file, kind, todo, entries)
    audio, tally = assemble_audio(heard, entries, out, issues, severity=images.severity,
                                  placed=out.get)
    ordered = tuple(out[path] for path in sorted(out))
    issues.sort(key=lambda issue: (issue.path, issue.message))
    return TransformResult(ordered, tuple(issues), images.stats, tuple(images.reports),
                           tuple(audio), tally)


class _Images:
    """The image outcomes of one run, applied file by file (see `_assemble`)."""

    def __init__(self, out: dict[str, PublishedFile], issues: list[Issue],
                 severity: Severity) -> None:
        self.out, self.issues, self.severity = out, issues, severity
        self.reports: list[FileReport] = []
        self.stats = TransformStats()

    def file(self, file: PublishedFile, kind: str | None,
             todo: list[tuple[Profile | None, str]],
             entries: dict[str, dict[str, object]]) -> None:
        if kind is None:
            return
        s = self.stats
        self.stats = replace(s, images=s.images + 1, bytes_before=s.bytes_before + file.size)
        published = file
        if file.content_type != f"image/{kind}":
            # Twilio checks that the Content-Type matches the media (accepted-mime-types
            # page): a PNG saved as `.jpg` is served as image/png even when left as it is.
            published = file._replace(content_type=f"image/{kind}")
            self.out[file.path] = published
        for profile, key in todo:
            published = self._one(file, profile, entries[key]) or published
        self.stats = replace(self.stats, bytes_after=self.stats.bytes_after + published.size)

    def _one(self, file: PublishedFile, profile: Profile | None,
             entry: dict[str, object]) -> PublishedFile | None:
        """Apply one encode; the optimized file now published in place of `file`, if any."""
        cached, seconds = bool(entry.get("cached")), float(str(entry.get("seconds") or 0))
        s = self.stats
        self.stats = replace(s, cache_hits=s.cache_hits + cached,
                             encode_seconds=s.encode_seconds + (0.0 if cached else seconds))
        variant = profile.name if profile else None
        status, note = entry["status"], str(entry.get("note", ""))
        if status in ("error", "limit"):
            level: Severity = "error" if status == "limit" else self.severity
            label = "" if profile is None else f"variant {variant!r}: "
            tail = "" if profile is not None else "; published as is"
            self.issues.append(Issue(file.source, f"{label}{entry['message']}{tail}", level))
            self._report(file.path, file, variant, file.size, seconds, cached, "failed",
                         str(entry["message"]))
            return None
        if status == "same":
            self._report(file.path, file, None, file.size, seconds, cached, "kept", note)
            return None
        content_type = f"image/{entry['kind']}"
        if profile is None:
            published = output_of(file, entry, path=file.path, content_type=content_type,
                                  variant=None)
            self.out[file.path] = published
            self.stats = replace(self.stats, optimized=self.stats.optimized + 1)
            self._report(file.path, file, None, published.size, seconds, cached, "optimized",
                         note)
            return published
        from assetsync.media.codec import EXTENSIONS  # only once a variant exists

        path = variant_path(profile.path, profile=profile.name, published=file.path,
                            ext=EXTENSIONS[str(entry["kind"])])
        if path in self.out:
            self.issues.append(Issue(file.source, f"variant {variant!r}: {path} is already "
                                     f"published from {self.out[path].source}; change the "
                                     "profile's path template", "error"))
            return None
        made = output_of(file, entry, path=path, content_type=content_type, variant=variant)
        self.out[path] = made
        self.stats = replace(self.stats, variants=self.stats.variants + 1)
        self._report(path, file, variant, made.size, seconds, cached, "variant", note)
        return None

    def _report(self, path: str, file: PublishedFile, variant: str | None, after: int,
                seconds: float, cached: bool, outcome: str, note: str) -> None:
        self.reports.append(FileReport(path, file.source, variant, file.size, after, seconds,
                                       cached, outcome, note))
