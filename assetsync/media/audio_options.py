"""The audio settings of `[optimize.profiles.NAME]` (pure): defaults with their sources, types,
ranges, and which channel takes which key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn, cast

from assetsync.errors import ConfigError
from assetsync.frozen import frozen, replace

__all__ = ["AUDIO_KEYS", "IMAGE_KEYS", "AudioSettings", "parse_audio_settings"]


@frozen
class AudioSettings:
    """How a profile treats audio (voice, whatsapp and mms profiles); see docs/media.md.

    Attributes:
        trim: cut leading and trailing silence.
        silence_threshold_db: a 10 ms frame quieter than this (RMS, dB re full scale) is
            silence (our choice: below the noise floor of a usable recording, above dither).
        keep_silence_ms: silence kept before the first and after the last sound.
        normalize: bring the active speech level (ITU-T P.56) to `target_level_db`.
        target_level_db: -26 dBov, the nominal active speech level of digital telephony
            test signals (ITU-T P.800 annex B / P.830 and the G.191 tools' default).
        true_peak_db: ceiling on the 4x-oversampled peak (ITU-R BS.1770 annex 2), so the gain
            never clips; the gain is lowered rather than the peaks limited.
        max_gain_db: at most this much gain, so a file of noise is not blown up.
        sample_rate: voice output rate (Hz): 8000 is the G.711 phone leg; 16000 for MP3 only.
        mp3_bitrate: voice MP3 bitrate (kbit/s).
        voice_note: whatsapp: audio becomes an OGG/Opus voice note (false: only checked).
        opus_bitrate: whatsapp voice note bitrate (kbit/s).
    """

    trim: bool = True
    silence_threshold_db: float = -50.0
    keep_silence_ms: int = 100
    normalize: bool = True
    target_level_db: float = -26.0
    true_peak_db: float = -1.0
    max_gain_db: float = 20.0
    sample_rate: int = 8000
    mp3_bitrate: int = 32
    voice_note: bool = True
    opus_bitrate: int = 24


_FLOAT_KEYS: Mapping[str, tuple[float, float]] = {
    "silence_threshold_db": (-120.0, -10.0),
    "target_level_db": (-60.0, -6.0),
    "true_peak_db": (-20.0, 0.0),
    "max_gain_db": (0.0, 60.0),
}
_INT_KEYS: Mapping[str, tuple[int, int]] = {
    "keep_silence_ms": (0, 10_000),
    "opus_bitrate": (6, 64),  # libopus takes 6-510 kbit/s; above 64 a voice note gains nothing
}
_BOOL_KEYS = ("trim", "normalize", "voice_note")
# MPEG-2.5 layer III at 8 kHz and MPEG-2 at 16 kHz both offer these bitrates (ISO/IEC
# 13818-3 table; 8 kHz is the MPEG-2.5 extension that LAME and FFmpeg read and write).
_MP3_BITRATES = (8, 16, 24, 32, 40, 48, 56, 64)
_SAMPLE_RATES = (8000, 16000)

AUDIO_KEYS = frozenset({*_FLOAT_KEYS, *_INT_KEYS, *_BOOL_KEYS, "sample_rate", "mp3_bitrate"})
# Keys only the image variants read: an error on a voice profile, which makes audio only.
IMAGE_KEYS = frozenset({"max_width", "max_height", "format", "quality", "min_quality",
                        "background", "max_bytes"})
_ONLY = {"sample_rate": "voice", "mp3_bitrate": "voice", "voice_note": "whatsapp",
         "opus_bitrate": "whatsapp"}
_AUDIO_CHANNELS = ("voice", "whatsapp", "mms")


def parse_audio_settings(body: Mapping[str, object], *, channel: str | None, prefix: str,
                         file: str, base: AudioSettings) -> AudioSettings:
    """`base` with the audio keys of one profile's table applied.

    Raises:
        ConfigError: a wrong type or range, an audio key on a profile whose channel makes no
            audio, or an image key on a voice profile; the message names `prefix key`.
    """
    given = [key for key in body if key in AUDIO_KEYS]
    _check_channel(body, given, channel, prefix, file)
    changes = {key: _audio_value(key, body[key], f"{prefix} {key}", file) for key in given}
    # Each value was checked against its field's type above (bool, float or int).
    return replace(base, **cast("dict[str, Any]", changes)) if changes else base


def _check_channel(body: Mapping[str, object], given: list[str], channel: str | None,
                   prefix: str, file: str) -> None:
    """Refuse keys the profile's channel never reads (image keys on voice, audio keys on an
    image-only channel, a voice- or whatsapp-only key elsewhere)."""
    if channel == "voice":
        for key in body:
            if key in IMAGE_KEYS:
                _fail("an image setting; a voice profile makes audio only (see docs/media.md)",
                      f"{prefix} {key}", file)
    for key in given:
        if channel not in _AUDIO_CHANNELS:
            _fail(f"an audio setting; it applies to profiles with channel "
                  f"{', '.join(_AUDIO_CHANNELS)}", f"{prefix} {key}", file)
        only = _ONLY.get(key)
        if only is not None and channel != only:
            _fail(f"applies to {only} profiles only", f"{prefix} {key}", file)


def _audio_value(key: str, value: object, where: str, file: str) -> bool | float | int:
    """One audio key's value, checked for type and range."""
    if key in _BOOL_KEYS:
        if not isinstance(value, bool):
            _fail(f"must be true or false (got {value!r})", where, file)
        return value
    if key in _FLOAT_KEYS:
        low, high = _FLOAT_KEYS[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            _fail(f"must be a number of dB (got {value!r})", where, file)
        if not low <= value <= high:
            _fail(f"{value} is out of range; use {low:g}..{high:g}", where, file)
        return float(value)
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(f"must be an integer (got {value!r})", where, file)
    choices = {"sample_rate": _SAMPLE_RATES, "mp3_bitrate": _MP3_BITRATES}.get(key)
    if choices is not None and value not in choices:
        _fail(f"{value}: use one of {', '.join(map(str, choices))}", where, file)
    low_i, high_i = _INT_KEYS.get(key, (value, value))
    if not low_i <= value <= high_i:
        _fail(f"{value} is out of range; use {low_i}..{high_i}", where, file)
    return value


def _fail(problem: str, key: str, file: str) -> NoReturn:
    raise ConfigError(f"{file}: {key}: {problem}", key=key, file=file)
