"""The transform stage's audio side: which recipes an audio file gets, and how their cached
outcomes become published files (a voice prompt in place, WhatsApp and MMS variants).

No decoding here (that is `assetsync.media.audio`, run by the cache's workers), so a sync
whose audio is all cached never imports PyAV.
"""

from __future__ import annotations

from collections.abc import Callable

from assetsync.frozen import asdict, frozen, replace
from assetsync.media.options import Profile, variant_path
from assetsync.media.report import FileReport
from assetsync.media.sniff import AUDIO_EXTENSIONS, AUDIO_MIMES, AudioInfo
from assetsync.models import PublishedFile
from assetsync.prepare.classify import Issue, Severity

__all__ = ["AUDIO_RECIPE_VERSION", "AudioReport", "AudioTally", "assemble_audio",
           "audio_profiles", "audio_recipe", "output_of"]

# Bump when an audio recipe changes its output for the same input and settings.
AUDIO_RECIPE_VERSION = 1


@frozen
class AudioReport(FileReport):
    """What one audio recipe made of a file: a `FileReport` ("optimized" is a prompt replaced
    in place) with the source's and output's audio facts, the gain applied, the profile."""

    audio_from: AudioInfo | None = None
    audio_to: AudioInfo | None = None
    gain_db: float | None = None
    profile: str = ""

    def describe(self) -> str:
        """One line for `plan` and `optimize --report`, e.g. "voice: /voice/a.wav: WAV 16-bit
        PCM 44.1 kHz stereo 20.0 s -> WAV µ-law 8 kHz mono 18.6 s, 3,528,044 -> 148,858 B,
        +7.3 dB"."""
        head = f"{self.profile}: {self.path}: "
        if self.outcome == "failed":
            return f"{head}{self.note}"
        if self.outcome == "kept" or self.audio_to is None or self.audio_from is None:
            return f"{head}kept as is, {self.before:,} B ({self.note})"
        gain = "" if self.gain_db is None else f", {self.gain_db:+.1f} dB"
        return (f"{head}{self.audio_from.describe()} -> {self.audio_to.describe()}, "
                f"{self.before:,} -> {self.after:,} B{gain}")

    def to_json(self) -> dict[str, object]:
        """Machine-readable form (`plan --json`, `optimize --json`)."""
        return {"path": self.path, "source": self.source, "profile": self.profile,
                "variant": self.variant, "outcome": self.outcome, "before": self.before,
                "after": self.after, "gain_db": self.gain_db, "cached": self.cached,
                "seconds": self.seconds, "note": self.note,
                "from": asdict(self.audio_from) if self.audio_from else None,
                "to": asdict(self.audio_to) if self.audio_to else None}


@frozen
class AudioTally:
    """Totals over the audio files (in-place outputs; variants counted apart)."""

    files: int = 0
    converted: int = 0
    variants: int = 0
    cache_hits: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    encode_seconds: float = 0.0


def audio_profiles(profiles: tuple[Profile, ...]) -> list[Profile]:
    """The profiles among `profiles` that make something of audio."""
    return [p for p in profiles if p.variant and (
        p.channel in ("voice", "mms") or (p.channel == "whatsapp" and p.audio.voice_note))]


def audio_recipe(profile: Profile) -> dict[str, object]:
    """Everything about a profile's audio output that changes its bytes (hashed into the key)."""
    return {"op": "audio", "audio_recipe": AUDIO_RECIPE_VERSION, "channel": profile.channel,
            "max_bytes": profile.max_bytes if profile.channel == "mms" else None,
            **asdict(profile.audio)}


def _info(raw: object) -> AudioInfo | None:
    if not isinstance(raw, dict):
        return None
    try:
        return AudioInfo(**raw)
    except TypeError:
        return None


def assemble_audio(
    planned: list[tuple[PublishedFile, str, str, list[tuple[Profile, str]]]],
    entries: dict[str, dict[str, object]],
    out: dict[str, PublishedFile],
    issues: list[Issue],
    *,
    severity: Severity,
    placed: Callable[[str], PublishedFile | None],
) -> tuple[list[AudioReport], AudioTally]:
    """Apply the audio outcomes to `out` (published files by path) and `issues`.

    Args:
        planned: (file, sniffed kind, sniffed mime, [(profile, cache key)]) per audio file.
        entries: the cache outcomes by key.
        out: the published files by path; changed in place.
        issues: the run's issues; extended.
        severity: of an undecodable file ("error" under `strict`).
        placed: the file already published at a path, if any (collision checks).
    """
    run = _AudioRun(entries, out, issues, severity, placed)
    for file, kind, mime, todo in planned:
        run.file(file, kind, mime, todo)
    return run.reports, run.tally


def output_of(file: PublishedFile, entry: dict[str, object], *, path: str, content_type: str,
              variant: str | None) -> PublishedFile:
    """`file` as a cache entry's output published at `path` (the same visibility)."""
    return file._replace(path=path, variant=variant, digest=str(entry["digest"]),
                         size=int(str(entry["size"])), content_path=str(entry["content_path"]),
                         content_type=content_type)


class _Outcome:
    """One cache entry's facts, as a report needs them."""

    # A plain slotted class, not a dataclass: `dataclasses` costs every process ~7 ms to import.
    __slots__ = ("cached", "gain_db", "info_from", "info_to", "note", "seconds")

    def __init__(self, cached: bool, seconds: float, note: str, info_from: AudioInfo | None,
                 info_to: AudioInfo | None, gain_db: float | None) -> None:
        self.cached = cached
        self.seconds = seconds
        self.note = note
        self.info_from = info_from
        self.info_to = info_to
        self.gain_db = gain_db

    @classmethod
    def of(cls, entry: dict[str, object]) -> _Outcome:
        details = entry.get("audio")
        facts = details if isinstance(details, dict) else {}
        gain = facts.get("gain_db")
        return cls(bool(entry.get("cached")), float(str(entry.get("seconds") or 0)),
                   str(entry.get("note") or entry.get("message") or ""),
                   _info(facts.get("before")), _info(facts.get("after")),
                   float(gain) if isinstance(gain, (int, float)) else None)


class _AudioRun:
    """The audio outcomes of one transform run, applied file by file (see `assemble_audio`)."""

    def __init__(self, entries: dict[str, dict[str, object]], out: dict[str, PublishedFile],
                 issues: list[Issue], severity: Severity,
                 placed: Callable[[str], PublishedFile | None]) -> None:
        self.entries, self.out, self.issues = entries, out, issues
        self.severity, self.placed = severity, placed
        self.reports: list[AudioReport] = []
        self.tally = AudioTally()

    def file(self, file: PublishedFile, kind: str, mime: str,
             todo: list[tuple[Profile, str]]) -> None:
        published = file
        if file.content_type != mime and kind in ("wav", "mp3", "aiff"):
            # Twilio checks that the Content-Type matches the media (error 13420 for <Play>)
            published = file._replace(content_type=mime)
            self.out[file.path] = published
        for profile, key in todo:
            published = self._one(file, mime, profile, self.entries[key]) or published
        t = self.tally
        self.tally = replace(t, files=t.files + 1, bytes_before=t.bytes_before + file.size,
                             bytes_after=t.bytes_after + published.size)

    def _one(self, file: PublishedFile, mime: str, profile: Profile,
             entry: dict[str, object]) -> PublishedFile | None:
        """Apply one profile's outcome; the file now published in place of `file`, if any."""
        facts = _Outcome.of(entry)
        t = self.tally
        self.tally = replace(t, cache_hits=t.cache_hits + facts.cached, encode_seconds=(
            t.encode_seconds + (0.0 if facts.cached else facts.seconds)))
        in_place = profile.channel == "voice"
        status = entry["status"]
        if status in ("error", "limit"):
            level: Severity = "error" if status == "limit" else self.severity
            label = "" if in_place else f"variant {profile.name!r}: "
            tail = "; published as is" if in_place else ""
            self.issues.append(Issue(file.source, f"{label}{entry['message']}{tail}", level))
            self._report(file.path, file, None if in_place else profile.name, file.size,
                         "failed", facts, profile, info_to=False)
            return None
        if status == "same":
            self._report(file.path, file, None, file.size, "kept", facts, profile)
            return None
        result_kind = str(entry["kind"])
        content_type = AUDIO_MIMES.get(result_kind, mime)
        path = self._path(file, profile, AUDIO_EXTENSIONS.get(result_kind, result_kind))
        if path is None:
            return None
        variant = None if in_place else profile.name
        made = output_of(file, entry, path=path, content_type=content_type, variant=variant)
        if in_place:
            self.out.pop(file.path, None)
        self.out[path] = made
        t = self.tally
        self.tally = replace(t, converted=t.converted + in_place, variants=t.variants + (
            not in_place))
        self._report(path, file, variant, made.size, "optimized" if in_place else "variant",
                     facts, profile)
        return made if in_place else None

    def _path(self, file: PublishedFile, profile: Profile, ext: str) -> str | None:
        """Where the output goes; None (after an error) when another file is published there.
        A voice prompt replaces its original (`path` "" keeps the original's path)."""
        in_place = profile.channel == "voice"
        if in_place and not profile.path:
            return file.path
        path = variant_path(profile.path, profile=profile.name, published=file.path, ext=ext)
        other = self.placed(path)
        if other is None or (in_place and path == file.path):
            return path
        if in_place:
            message = (f"{path} is already published from {other.source}; change the voice "
                       "profile's path template")
        else:
            message = (f"variant {profile.name!r}: {path} is already published from "
                       f"{other.source}; change the profile's path template")
        self.issues.append(Issue(file.source, message, "error"))
        return None

    def _report(self, path: str, file: PublishedFile, variant: str | None, after: int,
                outcome: str, facts: _Outcome, profile: Profile, *, info_to: bool = True) -> None:
        gain = None if outcome == "failed" else (0.0 if outcome == "kept" else facts.gain_db)
        self.reports.append(AudioReport(
            path, file.source, variant, file.size, after, facts.seconds, facts.cached, outcome,
            facts.note, facts.info_from, facts.info_to if info_to else None, gain, profile.name))
