"""Audio recipes (pure, bytes -> bytes): decode by content with PyAV (FFmpeg's libraries),
trim silence, normalize the speech level, and encode what each channel plays best.

- voice (`<Play>`): mono 8 kHz; MP3 sources stay MP3 (`mp3_bitrate`), everything else becomes
  8-bit µ-law WAV (G.711, WAVE format tag 7), the phone leg's own coding, so Twilio has
  nothing left to transcode (media.md §1: "the phone leg is 8 kHz mono µ-law").
- whatsapp: an OGG/Opus mono voice note (WhatsApp takes OGG audio "Opus only", media.md §1).
- mms: the original when its type is one MMS carries and it fits the budget, else mono MP3
  at the highest bitrate that fits.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from typing import Any, cast

import av
import numpy as np

from assetsync.errors import LimitError, TransformError
from assetsync.frozen import asdict, fields, frozen
from assetsync.media.audio_level import active_speech_level, peak_db, silence_bounds
from assetsync.media.audio_options import AudioSettings
from assetsync.media.sniff import AUDIO_EXTENSIONS, AUDIO_MIMES, AudioInfo

__all__ = ["AUDIO_EXTENSIONS", "AUDIO_MIMES", "AudioOutput", "Decoded", "apply_audio_recipe",
           "audio_versions", "decode_audio", "encode_audio", "fit_mms", "make_voice",
           "make_voice_note", "resample", "true_peak_db"]

_FORMAT_NAMES = {"wav": "WAV", "aiff": "AIFF", "mp3": "MP3", "flac": "FLAC", "ogg": "OGG",
                 "ogg-opus": "OGG", "m4a": "M4A", "aac": "AAC", "amr": "AMR"}
# Twilio's asset cap is 25 MB and 8 kHz µ-law is 480 KB a minute (~52 min), so nothing
# longer can be a prompt; the cap also bounds the decoded samples held in memory.
MAX_SECONDS = 3600
# Opus voice notes: 16 kHz is Opus's wideband mode (RFC 6716 §2), what speech needs.
_OPUS_RATE = 16_000
# MMS re-encodes, best first: (sample rate, kbit/s) pairs MPEG-2/2.5 layer III defines.
_MMS_LADDER = ((24_000, 64), (24_000, 48), (16_000, 32), (16_000, 24), (8_000, 16), (8_000, 8))
# The audio kinds each channel plays as they are.
_PLAY_AS_IS = frozenset({"wav", "mp3", "aiff"})
# Twilio's accepted MIME types page lists audio/mpeg, audio/mp4, audio/amr, audio/ogg and
# audio/aac for MMS (WAV only as audio/vnd.wave; AIFF and FLAC not at all).
_MMS_AS_IS = frozenset({"mp3", "m4a", "amr", "ogg", "ogg-opus", "aac"})
# Below this the level is already on target: re-encoding would only cost quality.
_LEVEL_TOLERANCE_DB = 0.5
_OVERSAMPLE = 4  # ITU-R BS.1770-4 annex 2: true peak from 4x oversampling
_ENCODER_OPTIONS = {
    # LAME -q 7 ("fast, ok quality"): half the CPU of its default, inaudible in 4 kHz audio
    "libmp3lame": {"compression_level": "7"},
    # libopus OPUS_APPLICATION_VOIP: tuned for speech intelligibility (opus_encoder_create)
    "libopus": {"application": "voip"},
    "vorbis": {"strict": "experimental"},  # FFmpeg's own Vorbis encoder (tests' inputs)
}


@frozen
class AudioOutput:
    """A recipe's result: `data` None means "publish the original as it is"."""

    data: bytes | None
    kind: str  # "wav", "mp3", "ogg-opus"
    note: str
    before: AudioInfo
    after: AudioInfo | None
    gain_db: float = 0.0

    @property
    def ext(self) -> str:
        """File extension for the format, without the dot."""
        return AUDIO_EXTENSIONS.get(self.kind, self.kind)

    def details(self) -> dict[str, object]:
        """Source and output facts for the cache entry (JSON), which reports are made from."""
        return {"before": asdict(self.before),
                "after": asdict(self.after) if self.after is not None else None,
                "gain_db": self.gain_db}

    @property
    def mime(self) -> str:
        """Content-Type for the format."""
        return AUDIO_MIMES.get(self.kind, f"audio/{self.kind}")


@frozen
class Decoded:
    """Decoded audio: mono float32 samples at `rate` (full scale = 1.0) and what the source was."""

    samples: np.ndarray
    rate: int
    info: AudioInfo
    bit_rate: int


def audio_versions() -> str:
    """PyAV's and FFmpeg's versions, for the transform cache's key of audio recipes."""
    libs = av.library_versions
    parts: dict[str, str] = {"av": av.__version__, "numpy": np.__version__}
    for name in ("libavcodec", "libavformat", "libswresample"):
        if name in libs:
            parts[name] = ".".join(map(str, libs[name]))
    return ";".join(f"{k}={v}" for k, v in sorted(parts.items()))


def decode_audio(data: bytes, kind: str, *, rate: int) -> Decoded:
    """Decode the first audio stream of `data` (format found from the content) to mono at `rate`.

    Raises:
        TransformError: not decodable audio, no samples, or longer than MAX_SECONDS.
    """
    chunks: list[np.ndarray] = []
    source_samples = 0
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            if not container.streams.audio:
                raise TransformError("cannot decode audio: no audio stream")
            stream = container.streams.audio[0]
            source_rate, channels = int(stream.rate or 0), int(stream.channels or 0)
            codec = stream.codec_context.name.replace("mp3float", "mp3")
            bit_rate = int(stream.bit_rate or container.bit_rate or 0)
            limit = MAX_SECONDS * max(source_rate, 1)
            convert = _ToMono(rate)
            # Decoders hand over small frames (1,152 samples a channel for MPEG-1 layer III,
            # ISO/IEC 11172-3; 1,024 for FFmpeg's PCM demuxers): they are gathered in an
            # AudioFifo (a C-level copy) and converted a second at a time, which spares the
            # per-frame cost of the resampling filter graph and of numpy conversions.
            fifo = av.AudioFifo()
            first: tuple[str, str, int] | None = None
            for frame in container.decode(stream):
                source_samples += frame.samples
                if source_samples > limit:
                    raise TransformError(f"longer than {MAX_SECONDS // 60} minutes; not "
                                         "decoded (over any prompt Twilio can hold)")
                setup = (frame.format.name, frame.layout.name, frame.sample_rate)
                if first is None:
                    first = setup
                elif setup != first:  # the fifo would copy a changed layout wrongly
                    raise ValueError("its sample rate or channels change midway; "
                                     "export it in one format")
                frame.pts = None  # timestamps are not needed; the fifo would check them
                fifo.write(frame)
                if fifo.samples >= frame.sample_rate:
                    chunks.extend(convert.run(fifo.read()))
            if fifo.samples:
                chunks.extend(convert.run(fifo.read()))
            chunks.extend(convert.run(None))
    except TransformError:
        raise
    except (av.FFmpegError, ValueError, EOFError, IndexError, OSError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise TransformError(f"cannot decode audio: {reason}") from None
    if not chunks or source_samples == 0 or source_rate <= 0:
        raise TransformError("cannot decode audio: no samples")
    samples = np.concatenate(chunks).astype(np.float32, copy=False)
    info = AudioInfo(_FORMAT_NAMES.get(kind, kind.upper()), codec, source_rate, channels,
                     round(source_samples / source_rate, 3))
    return Decoded(samples, rate, info, bit_rate)


class _ToMono:
    """Decoded frames -> mono float32 arrays at `rate`, with FFmpeg's swresample in two steps:
    the downmix (swresample's default matrix) at the source rate, then the rate conversion
    of the one mono channel. In one step swresample would convert the rate first whenever
    it lowers it: swr_init's `resample_first = RSC*out.ch_count/used_ch_count - RSC <
    out_rate/(float)in_rate - 1.0` is -1 < -0.82 for stereo 44.1 kHz to mono 8 kHz (the
    channel ratio is integer division), so both channels were resampled, twice the work."""

    __slots__ = ("_mix", "_rate")

    def __init__(self, rate: int) -> None:
        self._mix = av.AudioResampler(format="flt", layout="mono")  # keeps the source rate
        self._rate = av.AudioResampler(format="flt", layout="mono", rate=rate)

    def run(self, frame: av.AudioFrame | None) -> list[np.ndarray]:
        """The samples `frame` gives (None: flush what the filters hold)."""
        mixed: list[av.AudioFrame | None] = (
            [*self._mix.resample(None), None] if frame is None else [*self._mix.resample(frame)])
        return [out.to_ndarray().reshape(-1) for one in mixed
                for out in self._rate.resample(one)]


def resample(samples: np.ndarray, rate: int, new_rate: int) -> np.ndarray:
    """Mono float32 samples at another rate (FFmpeg's swresample)."""
    if rate == new_rate or len(samples) == 0:
        return samples
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples, np.float32).reshape(1, -1),
                                       format="flt", layout="mono")
    frame.sample_rate = rate
    resampler = av.AudioResampler(format="flt", layout="mono", rate=new_rate)
    out = [f.to_ndarray().reshape(-1) for f in [*resampler.resample(frame),
                                                 *resampler.resample(None)]]
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def true_peak_db(samples: np.ndarray, rate: int) -> float:
    """The 4x-oversampled peak in dB re full scale (ITU-R BS.1770-4 annex 2: interpolate by
    four with a 48-tap, 12-per-phase low-pass filter and take the largest magnitude)."""
    peak = float(np.max(np.abs(samples))) if len(samples) else 0.0
    for phase in _INTERPOLATOR:
        if len(samples):
            peak = max(peak, float(np.max(np.abs(np.convolve(samples, phase, mode="same")))))
    return 20.0 * np.log10(peak) if peak > 0 else -np.inf


def _interpolator() -> tuple[np.ndarray, ...]:
    """The three non-trivial phases of a 4x interpolator (phase 0 is the samples themselves):
    12 taps of a Hann-windowed sinc each, centred on the point between samples they estimate,
    scaled to unit DC gain; laid out for `np.convolve(..., mode="same")`."""
    phases = []
    for offset in (1, 2, 3):
        taps = np.arange(12) - 5 + offset / _OVERSAMPLE  # distance to the estimated point
        window = 0.5 * (1 + np.cos(np.pi * taps / 6.5))
        phase = np.sinc(taps) * window
        phases.append((phase / phase.sum()).astype(np.float32))
    return tuple(phases)


_INTERPOLATOR = _interpolator()
# An interpolated point is a weighted sum of 12 samples, so it is at most sum(|taps|) times
# the largest of them: 1.91 (+5.6 dB) for the widest phase, the bound `_level` uses.
_INTERPOLATOR_GAIN_DB = 20.0 * math.log10(max(float(np.abs(phase).sum(dtype=np.float64))
                                              for phase in _INTERPOLATOR))


def encode_audio(samples: np.ndarray, rate: int, container: str, codec: str, *,
                 bit_rate: int | None = None, layout: str = "mono") -> bytes:
    """Encode float samples (mono, or channels x samples for stereo) with an FFmpeg encoder."""
    buffer = io.BytesIO()
    planar = samples.reshape(1, -1) if samples.ndim == 1 else samples
    # bitexact: no encoder version strings in the headers, so the bytes depend on the samples
    with av.open(buffer, mode="w", format=container,
                 container_options={"fflags": "+bitexact"}) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        assert isinstance(stream, av.AudioStream)
        if bit_rate:
            stream.bit_rate = bit_rate
        stream.codec_context.options = dict(_ENCODER_OPTIONS.get(codec, {}))
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(planar, np.float32),
                                           format="fltp", layout=layout)
        frame.sample_rate = rate
        target = stream.codec_context.format
        resampler = av.AudioResampler(format=target.name if target else "s16", layout=layout,
                                      rate=rate)
        for converted in [*resampler.resample(frame), *resampler.resample(None)]:
            out.mux(stream.encode(converted))
        out.mux(stream.encode(None))
    return buffer.getvalue()


def _level(decoded: Decoded, settings: AudioSettings) -> tuple[np.ndarray, float, str]:
    """Trimmed, gain-adjusted samples, the gain applied, and a note of what was done."""
    samples, rate, notes = decoded.samples, decoded.rate, []
    if settings.trim:
        bounds = silence_bounds(samples, rate, threshold_db=settings.silence_threshold_db,
                                keep_ms=settings.keep_silence_ms)
        if bounds is not None and (bounds[1] - bounds[0]) < len(samples):
            cut = (len(samples) - (bounds[1] - bounds[0])) / rate
            samples = samples[bounds[0]:bounds[1]]
            notes.append(f"{cut:.1f} s silence trimmed")
    gain = 0.0
    measured = active_speech_level(samples, rate) if settings.normalize else None
    if measured is not None:
        gain = min(settings.target_level_db - measured[0], settings.max_gain_db)
    # The peak scales with the gain. The true peak is at most the sample peak plus
    # _INTERPOLATOR_GAIN_DB: below the ceiling even so (as speech at -26 dBov usually is), it
    # cannot hold the gain back and is not interpolated.
    peak = peak_db(samples) + gain
    if peak + _INTERPOLATOR_GAIN_DB > settings.true_peak_db:
        peak = true_peak_db(samples, rate) + gain
    if peak > settings.true_peak_db:
        gain -= peak - settings.true_peak_db
        notes.append(f"gain held at the {settings.true_peak_db:g} dBTP ceiling")
    if abs(gain) >= 0.05:
        samples = samples * np.float32(10 ** (gain / 20))
    return samples, gain, ", ".join(notes)


def _done(data: bytes, kind: str, samples: np.ndarray, rate: int, decoded: Decoded,
          gain: float, note: str, codec: str) -> AudioOutput:
    after = AudioInfo(_FORMAT_NAMES.get(kind, kind), codec, rate, 1,
                      round(len(samples) / rate, 3))
    gain_text = f"{gain:+.1f} dB"
    text = f"{decoded.info.describe()} -> {after.describe()}, {gain_text}"
    return AudioOutput(data, kind, f"{text}; {note}" if note else text, decoded.info, after,
                       round(gain, 2))


def _ready(decoded: Decoded, samples: np.ndarray, gain: float, codec: str, rate: int) -> bool:
    """Already mono, at the rate, in the codec, at the level, with nothing to trim."""
    info = decoded.info
    return (info.codec == codec and info.rate == rate and info.channels == 1
            and len(samples) == len(decoded.samples) and abs(gain) < _LEVEL_TOLERANCE_DB)


def make_voice(data: bytes, kind: str, settings: AudioSettings) -> AudioOutput:
    """A telephony-ready prompt: MP3 stays MP3, anything else becomes µ-law WAV.

    Raises:
        TransformError: the audio cannot be decoded.
    """
    rate = settings.sample_rate if kind == "mp3" else 8000  # G.711 is defined at 8 kHz
    decoded = decode_audio(data, kind, rate=rate)
    samples, gain, note = _level(decoded, settings)
    if kind == "mp3":
        out_kind, codec, container, bit_rate = "mp3", "mp3", "mp3", settings.mp3_bitrate * 1000
        ready = _ready(decoded, samples, gain, "mp3", rate) and \
            decoded.bit_rate <= bit_rate * 1.05
    else:
        out_kind, codec, container, bit_rate = "wav", "pcm_mulaw", "wav", 0
        ready = _ready(decoded, samples, gain, "pcm_mulaw", rate)
    if ready:
        return AudioOutput(None, out_kind, f"already telephony-ready "
                           f"({decoded.info.describe()})", decoded.info, decoded.info)
    encoded = encode_audio(samples, rate, container,
                           "libmp3lame" if codec == "mp3" else codec, bit_rate=bit_rate or None)
    # Never larger. In the same form the bytes differ by headers only, worth the level fix.
    same_form = decoded.info.codec == codec and decoded.info.rate == rate and \
        (codec != "mp3" or decoded.bit_rate >= bit_rate * 0.95)
    too_big = len(encoded) > len(data) + 256 if same_form else len(encoded) >= len(data)
    if too_big and kind in _PLAY_AS_IS:
        return AudioOutput(None, out_kind, f"kept: re-encoding gives {len(encoded):,} bytes, "
                           f"not smaller ({decoded.info.describe()})", decoded.info,
                           decoded.info)
    return _done(encoded, out_kind, samples, rate, decoded, gain, note, codec)


def make_voice_note(data: bytes, kind: str, settings: AudioSettings) -> AudioOutput:
    """An OGG/Opus mono voice note for WhatsApp (an Opus original is kept when not larger).

    Raises:
        TransformError: the audio cannot be decoded.
    """
    decoded = decode_audio(data, kind, rate=_OPUS_RATE)
    samples, gain, note = _level(decoded, settings)
    encoded = encode_audio(samples, _OPUS_RATE, "ogg", "libopus",
                           bit_rate=settings.opus_bitrate * 1000)
    if kind == "ogg-opus" and len(encoded) >= len(data):
        return AudioOutput(data, "ogg-opus", f"kept: already Opus ({decoded.info.describe()})",
                           decoded.info, decoded.info)
    return _done(encoded, "ogg-opus", samples, _OPUS_RATE, decoded, gain, note, "opus")


def fit_mms(data: bytes, kind: str, settings: AudioSettings, max_bytes: int) -> AudioOutput:
    """The original if MMS carries its type and it fits `max_bytes`, else mono MP3 that fits.

    Raises:
        TransformError: the audio cannot be decoded.
        LimitError: not even the lowest bitrate fits (the message gives the best size).
    """
    if kind in _MMS_AS_IS and len(data) <= max_bytes:
        info = decode_audio(data, kind, rate=8000).info  # proves it decodes
        return AudioOutput(data, kind, f"fits: kept "
                           f"({info.describe()})", info, info)
    decoded = decode_audio(data, kind, rate=_MMS_LADDER[0][0])
    leveled, gain, note = _level(decoded, settings)
    seconds = max(len(leveled) / decoded.rate, 1e-3)
    best: int | None = None
    for rate, kbps in _MMS_LADDER:
        if kbps * 125 * seconds > max_bytes * 1.02 and (rate, kbps) != _MMS_LADDER[-1]:
            continue  # the constant bitrate alone is over the budget: skip the encode
        samples = resample(leveled, decoded.rate, rate)
        encoded = encode_audio(samples, rate, "mp3", "libmp3lame", bit_rate=kbps * 1000)
        if len(encoded) <= max_bytes:
            return _done(encoded, "mp3", samples, rate, decoded, gain,
                         f"{kbps} kbit/s" + (f", {note}" if note else ""), "mp3")
        best = len(encoded) if best is None else min(best, len(encoded))
    raise LimitError(f"cannot fit the {max_bytes:,} byte MMS budget: best size reached "
                     f"{best or 0:,} bytes as 8 kbit/s mono MP3 ({seconds:.0f} s); shorten it",
                     limit="max_bytes")


def apply_audio_recipe(recipe: Mapping[str, object], data: bytes, kind: str) -> AudioOutput:
    """Run the recipe `transform_cache.audio_recipe` described (in a worker process)."""
    names = {f.name for f in fields(AudioSettings)}
    # The recipe is `audio_recipe`'s: AudioSettings' own fields (asdict), through JSON.
    settings = AudioSettings(**cast("dict[str, Any]",
                                    {k: v for k, v in recipe.items() if k in names}))
    channel = recipe["channel"]
    if channel == "voice":
        return make_voice(data, kind, settings)
    if channel == "whatsapp":
        return make_voice_note(data, kind, settings)
    budget = recipe.get("max_bytes")
    return fit_mms(data, kind, settings, int(str(budget)) if budget else 600_000)
