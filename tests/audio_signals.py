"""Generated test audio (numpy; containers and codecs by PyAV): speech-like and music-like
signals, silence padding, and every input format the audio recipes decode. Shared by the
audio tests and bench/bench_audio.py; nothing here is committed as a binary."""

from __future__ import annotations

import io
import wave

import numpy as np

from assetsync.media.audio import encode_audio

__all__ = ["FORMATS", "encode_as", "music_like", "pad_silence", "speech_like", "wav_pcm16"]

# Vowel formants (F1, F2, F3 in Hz; Peterson & Barney 1952 averages for adult male voices).
_VOWELS = ((730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480),
           (660, 1720, 2410), (570, 840, 2410))


def speech_like(seconds: float, rate: int, *, level_db: float = -26.0, seed: int = 1
                ) -> np.ndarray:
    """Mono float32 speech-like audio: syllables (150-300 ms, 4-5 a second) of a glottal pulse
    train at 100-140 Hz through three vowel formants, in words with 80-400 ms pauses between
    them; scaled so the syllables' mean power is about `level_db`."""
    rng = np.random.default_rng(seed)
    total = int(seconds * rate)
    out = np.zeros(total, np.float64)
    position = 0
    while position < total:
        for _ in range(rng.integers(2, 5)):  # syllables in a word
            length = int(rng.uniform(0.15, 0.3) * rate)
            if position + length > total:
                break
            out[position:position + length] = _syllable(length, rate, rng)
            position += length + int(rng.uniform(0.0, 0.04) * rate)
        position += int(rng.uniform(0.08, 0.4) * rate)
    loud = out[np.abs(out) > 0]
    power = float(np.mean(loud**2)) if len(loud) else 1.0
    out *= 10 ** (level_db / 20) / np.sqrt(power)
    return out.astype(np.float32)


def _syllable(length: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    f0 = rng.uniform(100, 140)
    pulses = np.zeros(length)
    period = rate / f0
    pulses[(np.arange(0, length, period) + rng.normal(0, 0.3, len(np.arange(0, length, period)))
            ).clip(0, length - 1).astype(int)] = 1.0
    spectrum = np.fft.rfft(pulses)
    freqs = np.fft.rfftfreq(length, 1 / rate)
    shape = np.zeros_like(freqs)
    for i, formant in enumerate(_VOWELS[rng.integers(len(_VOWELS))]):
        bandwidth = 60 + 40 * i
        shape += (0.5**i) / (1 + ((freqs - formant) / bandwidth) ** 2)
    voiced = np.fft.irfft(spectrum * shape, length)
    envelope = np.sin(np.pi * np.arange(length) / length) ** 0.7  # syllabic rise and fall
    return voiced * envelope


def music_like(seconds: float, rate: int, *, level_db: float = -20.0, seed: int = 2
               ) -> np.ndarray:
    """Stereo (2 x n) float32 chords: three-note triads with harmonics, 0.5-1 s each, with
    attack/decay envelopes and slightly different channel mixes."""
    rng = np.random.default_rng(seed)
    total = int(seconds * rate)
    out = np.zeros((2, total))
    t = np.arange(total) / rate
    position = 0
    while position < total:
        length = min(int(rng.uniform(0.5, 1.0) * rate), total - position)
        root = 220 * 2 ** (rng.integers(0, 12) / 12)
        span = t[:length]
        envelope = (1 - np.exp(-span / 0.01)) * np.exp(-span / 0.6)
        for step, pan in ((0, 0.3), (4, 0.5), (7, 0.7)):
            freq = root * 2 ** (step / 12)
            tone = sum(np.sin(2 * np.pi * freq * h * span) / h**1.5 for h in (1, 2, 3, 4))
            out[0, position:position + length] += (1 - pan) * tone * envelope
            out[1, position:position + length] += pan * tone * envelope
        position += length
    out *= 10 ** (level_db / 20) / np.sqrt(np.mean(out**2))
    return out.astype(np.float32)


def pad_silence(samples: np.ndarray, rate: int, lead_s: float, tail_s: float) -> np.ndarray:
    """Digital silence before and after (works on mono or channels x samples)."""
    pad = [(0, 0)] * (samples.ndim - 1) + [(int(lead_s * rate), int(tail_s * rate))]
    return np.pad(samples, pad)


def wav_pcm16(samples: np.ndarray, rate: int) -> bytes:
    """16-bit PCM WAV written with the standard library (mono, or 2 x n stereo)."""
    frames = samples if samples.ndim == 1 else samples.T
    ints = np.clip(np.round(frames * 32767), -32768, 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1 if samples.ndim == 1 else samples.shape[0])
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(ints.tobytes())
    return buffer.getvalue()


# name -> (container, codec, bit rate): every input format the issue lists.
FORMATS: dict[str, tuple[str, str, int | None]] = {
    "wav-s16": ("wav", "pcm_s16le", None),
    "wav-f32": ("wav", "pcm_f32le", None),
    "wav-mulaw": ("wav", "pcm_mulaw", None),
    "wav-alaw": ("wav", "pcm_alaw", None),
    "mp3": ("mp3", "libmp3lame", 128_000),
    "aiff": ("aiff", "pcm_s16be", None),
    "flac": ("flac", "flac", None),
    "ogg-vorbis": ("ogg", "vorbis", 96_000),
    "ogg-opus": ("ogg", "libopus", 48_000),
    "m4a-aac": ("ipod", "aac", 96_000),
    "aac-adts": ("adts", "aac", 96_000),
    "amr-nb": ("amr", "libopencore_amrnb", 12_200),
}


def encode_as(name: str, samples: np.ndarray, rate: int, *, bit_rate: int | None = None
              ) -> bytes:
    """`samples` (mono, or 2 x n stereo) in the format `FORMATS[name]` (or at `bit_rate`)."""
    container, codec, default_rate = FORMATS[name]
    bit_rate = bit_rate or default_rate
    if codec in ("pcm_mulaw", "pcm_alaw", "libopencore_amrnb") and rate != 8000:
        from assetsync.media.audio import resample

        mono = samples if samples.ndim == 1 else samples.mean(axis=0)
        samples, rate = resample(mono, rate, 8000), 8000
    if codec == "libopencore_amrnb" and samples.ndim > 1:
        samples = samples.mean(axis=0)
    if codec == "libopus" and rate not in (8000, 12000, 16000, 24000, 48000):
        from assetsync.media.audio import resample

        mono = samples if samples.ndim == 1 else samples.mean(axis=0)
        samples, rate = resample(mono, rate, 48000), 48000
    layout = "mono" if samples.ndim == 1 else "stereo"
    return encode_audio(samples, rate, container, codec, bit_rate=bit_rate, layout=layout)
