"""The transform stage's audio side: which recipes an audio file gets, and how their cached
outcomes become published files (a voice prompt in place, WhatsApp and MMS variants).

No decoding here (that is `assetsync.media.audio`, run by the cache's workers), so a sync
whose audio is all cached never imports PyAV.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

from assetsync.prepare.classify import Issue, Severity
from assetsync.media.sniff import AUDIO_EXTENSIONS, AUDIO_MIMES, AudioInfo
from assetsync.media.options import Profile, variant_path
from assetsync.models import PublishedFile
from assetsync.media.report import FileReport

__all__ = ["AUDIO_RECIPE_VERSION", "AudioReport", "AudioTally", "assemble_audio",
           "audio_profiles", "audio_recipe"]

# Bump when an audio recipe changes its output for the same input and settings.
AUDIO_RECIPE_VERSION = 1


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
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
    reports: list[AudioReport] = []
    files = converted = variants = hits = before_total = after_total = 0
    seconds_total = 0.0
    for file, kind, mime, todo in planned:
        files += 1
        published = file
        if file.content_type != mime and kind in ("wav", "mp3", "aiff"):
            # Twilio checks that the Content-Type matches the media (error 13420 for <Play>)
            published = file._replace(content_type=mime)
            out[file.path] = published
        for profile, key in todo:
            entry = entries[key]
            cached, seconds = bool(entry.get("cached")), float(str(entry.get("seconds") or 0))
            hits += cached
            seconds_total += 0.0 if cached else seconds
            details = entry.get("audio") if isinstance(entry.get("audio"), dict) else {}
            assert isinstance(details, dict)
            info_from, info_to = _info(details.get("before")), _info(details.get("after"))
            gain = details.get("gain_db")
            gain_db = float(gain) if isinstance(gain, (int, float)) else None
            in_place = profile.channel == "voice"
            label = "" if in_place else f"variant {profile.name!r}: "
            status, note = entry["status"], str(entry.get("note") or entry.get("message") or "")
            if status in ("error", "limit"):
                level: Severity = "error" if status == "limit" else severity
                tail = "; published as is" if in_place else ""
                issues.append(Issue(file.source, f"{label}{entry['message']}{tail}", level))
                reports.append(AudioReport(file.path, file.source, None if in_place else
                                           profile.name, file.size, file.size, seconds, cached,
                                           "failed", note, info_from, profile=profile.name))
                continue
            if status == "same":
                reports.append(AudioReport(file.path, file.source, None, file.size, file.size,
                                           seconds, cached, "kept", note, info_from, info_to,
                                           0.0, profile.name))
                continue
            result_kind = str(entry["kind"])
            changes = {"digest": str(entry["digest"]), "size": int(str(entry["size"])),
                       "content_path": str(entry["content_path"]),
                       "content_type": AUDIO_MIMES.get(result_kind, mime)}
            ext = AUDIO_EXTENSIONS.get(result_kind, result_kind)
            if in_place:
                path = file.path if not profile.path else variant_path(
                    profile.path, profile=profile.name, published=file.path, ext=ext)
                other = placed(path)
                if path != file.path and other is not None:
                    issues.append(Issue(file.source, f"{path} is already published from "
                                        f"{other.source}; change the voice profile's path "
                                        "template", "error"))
                    continue
                out.pop(file.path, None)
                published = file._replace(path=path, **changes)  # type: ignore[arg-type]
                out[path] = published
                converted += 1
                outcome, variant = "optimized", None
            else:
                path = variant_path(profile.path, profile=profile.name, published=file.path,
                                    ext=ext)
                other = placed(path)
                if other is not None:
                    issues.append(Issue(file.source, f"{label}{path} is already published "
                                        f"from {other.source}; change the profile's path "
                                        "template", "error"))
                    continue
                out[path] = file._replace(path=path, variant=profile.name,
                                          **changes)  # type: ignore[arg-type]
                variants += 1
                outcome, variant = "variant", profile.name
            reports.append(AudioReport(path, file.source, variant, file.size,
                                       int(str(entry["size"])), seconds, cached, outcome, note,
                                       info_from, info_to, gain_db, profile.name))
        before_total += file.size
        after_total += published.size
    tally = AudioTally(files, converted, variants, hits, before_total, after_total,
                       seconds_total)
    return reports, tally
