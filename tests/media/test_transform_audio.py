"""The audio recipes on generated audio: every input format, loudness, trimming, the true-peak
ceiling and gain cap, never-larger, WhatsApp Opus, the MMS budget, undecodable input."""

from __future__ import annotations

import math
import struct
from collections import deque
from pathlib import Path

import av
import numpy as np
import pytest

from assetsync.errors import LimitError, TransformError
from assetsync.media.audio import decode_audio, fit_mms, make_voice, make_voice_note
from assetsync.media.audio_level import active_speech_level
from assetsync.media.audio_options import AudioSettings
from assetsync.media.sniff import sniff
from tests.audio_signals import FORMATS, encode_as, pad_silence, speech_like, wav_pcm16

RATE = 44_100
DEFAULT = AudioSettings()


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """8 s of speech-like audio at about -35 dBFS, 1.5 s of digital silence before, 1 s after."""
    return pad_silence(speech_like(8.0, RATE, level_db=-35.0), RATE, 1.5, 1.0)


def _level(data: bytes, kind: str, rate: int = 8000) -> float:
    decoded = decode_audio(data, kind, rate=rate)
    measured = active_speech_level(decoded.samples, rate)
    assert measured is not None
    return measured[0]


def _wav_format_tag(data: bytes) -> tuple[int, int, int, int]:
    """(format tag, channels, sample rate, bits per sample) from a WAV's fmt chunk."""
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    at = 12
    while at < len(data):
        chunk, size = data[at:at + 4], struct.unpack("<I", data[at + 4:at + 8])[0]
        if chunk == b"fmt ":
            tag, channels, rate = struct.unpack("<HHI", data[at + 8:at + 16])
            bits = struct.unpack("<H", data[at + 22:at + 24])[0]
            return tag, channels, rate, bits
        at += 8 + size + (size & 1)
    raise AssertionError("no fmt chunk")


# PyAV's wheels from 18.1.1 on ship no AMR-NB *encoder* (libopencore_amrnb); assetsync only
# decodes AMR, with FFmpeg's own `amrnb` decoder, which every wheel has. So the AMR-NB input
# was made once, by `encode_as` under PyAV 18.1.0, from this module's `speech` (stereo as
# below), and is kept as a fixture.
AMR_NB_SPEECH = Path(__file__).resolve().parents[2] / "fixtures" / "audio" / "speech-amr-nb.amr"


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_format_becomes_a_telephony_prompt(name: str, speech: np.ndarray) -> None:
    stereo = np.stack([speech, speech * 0.9])
    data = AMR_NB_SPEECH.read_bytes() if name == "amr-nb" else encode_as(name, stereo, RATE)
    media = sniff(data[:64])
    assert media is not None and media.is_audio, name
    out = make_voice(data, media.kind, DEFAULT)
    assert out.data is not None
    if media.kind == "mp3":
        assert out.kind == "mp3" and out.mime == "audio/mpeg"
        decoded = decode_audio(out.data, "mp3", rate=8000)
        assert (decoded.info.codec, decoded.info.rate, decoded.info.channels) == ("mp3", 8000, 1)
    else:
        assert out.kind == "wav" and out.mime == "audio/wav"
        assert _wav_format_tag(out.data) == (7, 1, 8000, 8)  # WAVE_FORMAT_MULAW
    if name not in ("ogg-opus", "ogg-vorbis", "m4a-aac", "aac-adts", "amr-nb"):
        assert len(out.data) < len(data)  # lossy sources may be smaller: <Play> needs the fix
    assert abs(_level(out.data, out.kind) - DEFAULT.target_level_db) < 1.0
    assert out.after is not None and out.after.seconds < 8.0 + 0.2 + 0.1


@pytest.mark.parametrize("source_db", [-42.0, -30.0, -14.0])
def test_active_speech_level_lands_within_1_db_of_target(source_db: float) -> None:
    data = wav_pcm16(speech_like(6.0, 16_000, level_db=source_db, seed=5), 16_000)
    before = _level(data, "wav", 16_000)
    out = make_voice(data, "wav", DEFAULT)
    assert out.data is not None
    after = _level(out.data, "wav")
    assert abs(after - DEFAULT.target_level_db) < 1.0
    assert out.gain_db == pytest.approx(DEFAULT.target_level_db - before, abs=1.0)


def test_p56_level_of_steady_noise_is_its_power() -> None:
    rng = np.random.default_rng(3)
    noise = (rng.standard_normal(8000 * 5) * 10 ** (-30 / 20)).astype(np.float32)
    measured = active_speech_level(noise, 8000)
    assert measured is not None
    assert measured[0] == pytest.approx(-30.0, abs=0.2) and measured[1] > 0.95
    # Half of it silent: the level of the sound is kept, the activity factor drops.
    gated = noise * (np.arange(len(noise)) % 16000 < 8000)
    level, activity = active_speech_level(gated.astype(np.float32), 8000) or (0.0, 0.0)
    assert -31.5 < level < -29.5 and 0.5 < activity < 0.75  # hangover counts as active
    assert active_speech_level(np.zeros(8000, np.float32), 8000) is None


def test_gain_is_capped_so_faint_noise_is_not_blown_up() -> None:
    rng = np.random.default_rng(4)
    hiss = (rng.standard_normal(8000 * 3) * 10 ** (-75 / 20)).astype(np.float32)
    out = make_voice(wav_pcm16(hiss, 8000), "wav", AudioSettings(trim=False))
    assert out.gain_db == pytest.approx(DEFAULT.max_gain_db)
    capped = make_voice(wav_pcm16(hiss, 8000), "wav", AudioSettings(trim=False, max_gain_db=6))
    assert capped.gain_db == pytest.approx(6.0)


def test_true_peak_ceiling_holds_the_gain_back() -> None:
    # Clicks over a quiet voice: reaching -26 dBov would push the clicks far over full scale.
    voice = speech_like(4.0, 8000, level_db=-40.0, seed=6)
    voice[::4000] = 0.9
    out = make_voice(wav_pcm16(voice, 8000), "wav", DEFAULT)
    assert out.data is not None and "ceiling" in out.note
    decoded = decode_audio(out.data, "wav", rate=8000)
    # µ-law's step near full scale is ~3 %: allow that over the -1 dBTP ceiling
    assert float(np.max(np.abs(decoded.samples))) <= 10 ** (-1 / 20) * 1.04
    assert out.gain_db < 14.0 - 0.5


def test_silence_is_trimmed_to_the_kept_padding(speech: np.ndarray) -> None:
    data = wav_pcm16(speech, RATE)
    default = make_voice(data, "wav", DEFAULT)
    tight = make_voice(data, "wav", AudioSettings(keep_silence_ms=0))
    untrimmed = make_voice(data, "wav", AudioSettings(trim=False))
    assert default.after and tight.after and untrimmed.after
    assert untrimmed.after.seconds == pytest.approx(10.5, abs=0.02)
    # the speech itself ends slightly before 8 s (the last word's pause)
    assert 7.0 < tight.after.seconds <= 8.0
    assert default.after.seconds == pytest.approx(tight.after.seconds + 0.2, abs=0.03)
    assert "silence trimmed" in default.note


def test_an_already_telephony_ready_file_is_published_unchanged() -> None:
    prompt = make_voice(wav_pcm16(speech_like(5.0, 8000, level_db=-33.0), 8000), "wav",
                        DEFAULT)
    assert prompt.data is not None
    again = make_voice(prompt.data, "wav", DEFAULT)
    assert again.data is None and "already telephony-ready" in again.note


def test_a_small_mp3_is_never_made_larger() -> None:
    voice = pad_silence(speech_like(4.0, 8000, level_db=-35.0), 8000, 1.0, 0.0)
    tiny = encode_as("mp3", voice, 8000, bit_rate=8_000)
    # Trimming and +9 dB would be worth it, but not at four times the bytes.
    small = make_voice(tiny, "mp3", DEFAULT)
    assert small.data is None and "not smaller" in small.note
    assert make_voice(tiny, "mp3", AudioSettings(mp3_bitrate=8)).data is not None


def test_mp3_sample_rate_and_bitrate_options() -> None:
    data = encode_as("mp3", speech_like(6.0, RATE, level_db=-26.0), RATE)
    out = make_voice(data, "mp3", AudioSettings(sample_rate=16_000, mp3_bitrate=24))
    assert out.data is not None
    decoded = decode_audio(out.data, "mp3", rate=16_000)
    assert decoded.info.rate == 16_000
    assert len(out.data) == pytest.approx(24_000 / 8 * decoded.info.seconds, rel=0.1)


def test_whatsapp_voice_note_is_mono_ogg_opus(speech: np.ndarray) -> None:
    data = wav_pcm16(np.stack([speech, speech]), RATE)
    out = make_voice_note(data, "wav", DEFAULT)
    assert out.data is not None and out.kind == "ogg-opus" and out.mime == "audio/ogg"
    assert out.data.startswith(b"OggS") and b"OpusHead" in out.data[:64]
    assert out.data[28 + 9] == 1  # OpusHead channel count (RFC 7845 §5.1)
    decoded = decode_audio(out.data, "ogg-opus", rate=16_000)
    assert decoded.info.codec == "opus" and decoded.info.channels == 1
    assert len(out.data) < 9.0 * 32_000 / 8  # about 24 kbit/s
    # An Opus original that re-encoding cannot shrink is the voice note as it is.
    small = encode_as("ogg-opus", speech_like(3.0, 16_000), 16_000)
    kept = make_voice_note(small, "ogg-opus", AudioSettings(opus_bitrate=64))
    assert kept.data == small


def test_mms_keeps_what_fits_and_reencodes_what_does_not(speech: np.ndarray) -> None:
    mp3 = encode_as("mp3", speech, RATE)
    assert len(mp3) < 600_000
    assert fit_mms(mp3, "mp3", DEFAULT, 600_000).data == mp3
    long_wav = wav_pcm16(np.tile(speech, 4), RATE)  # 42 s, 3.7 MB
    out = fit_mms(long_wav, "wav", DEFAULT, 600_000)
    assert out.data is not None and out.kind == "mp3" and len(out.data) <= 600_000
    tight = fit_mms(long_wav, "wav", DEFAULT, 100_000)
    assert tight.data is not None and len(tight.data) <= 100_000
    with pytest.raises(LimitError, match=r"best size reached [\d,]+ bytes"):
        fit_mms(long_wav, "wav", DEFAULT, 10_000)


@pytest.mark.parametrize("data", [
    b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 20,
    b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x07\x00",
    b"fLaC" + b"\x00" * 100,
])
def test_undecodable_audio_is_one_line_transform_error(data: bytes) -> None:
    kind = (sniff(data[:64]) or pytest.fail("not sniffed")).kind
    with pytest.raises(TransformError) as caught:
        make_voice(data, kind, DEFAULT)
    assert "\n" not in str(caught.value) and "cannot decode audio" in str(caught.value)


def test_p56_level_does_not_depend_on_the_measuring_blocks() -> None:
    # 100 s at 8 kHz spans four of the measuring blocks; the same speech cut short spans one.
    long = speech_like(100.0, 8000, level_db=-31.0, seed=9)
    whole = active_speech_level(long, 8000)
    start = active_speech_level(long[: 8000 * 30], 8000)
    assert whole is not None and start is not None
    assert whole[0] == pytest.approx(start[0], abs=0.3)
    assert whole[1] == pytest.approx(start[1], abs=0.05)


def test_true_peak_finds_the_peak_between_samples() -> None:
    from assetsync.media.audio import true_peak_db

    n = np.arange(8000)
    # a quarter-rate sine sampled at 45 degrees: every sample is at 0.707, the wave peaks at 1
    between = np.sin(2 * np.pi * 0.25 * n + np.pi / 4).astype(np.float32)
    assert float(np.max(np.abs(between))) == pytest.approx(10 ** (-3.01 / 20), abs=1e-3)
    assert true_peak_db(between, 8000) == pytest.approx(0.0, abs=0.7)  # BS.1770-4's 4x bound
    on_samples = (0.5 * np.sin(2 * np.pi * 1000 / 8000 * n)).astype(np.float32)
    assert true_peak_db(on_samples, 8000) == pytest.approx(-6.02, abs=0.1)


def _p56_sample_by_sample(samples: np.ndarray, rate: int) -> float:
    """ITU-T P.56 method B as the recommendation states it, one sample at a time: p and q
    smooth |x| with g = exp(-1/(0.03 rate)), a sample is active at threshold c when q >= c
    within the last 0.2 s, and the level sits 15.9 dB above the threshold (interpolated)."""
    g = math.exp(-1.0 / (0.03 * rate))
    hangover = round(0.2 * rate)
    p = q = 0.0
    held = np.empty(len(samples))
    window: deque[tuple[int, float]] = deque()  # (index, q) with decreasing q: running max
    for n, x in enumerate(np.abs(samples.astype(np.float64)).tolist()):
        p = g * p + (1.0 - g) * x
        q = g * q + (1.0 - g) * p
        while window and window[-1][1] <= q:
            window.pop()
        window.append((n, q))
        if window[0][0] < n - hangover:
            window.popleft()
        held[n] = window[0][1]
    energy = float(np.sum(np.square(samples, dtype=np.float64)))
    previous = None
    for c_db in np.arange(-100.0, 0.25, 0.25).tolist():
        active = int(np.count_nonzero(held >= 10.0 ** (c_db / 20.0)))
        delta = 10.0 * math.log10(energy / active) - c_db
        if delta <= 15.9:
            assert previous is not None
            share = (previous[1] - 15.9) / (previous[1] - delta)
            return previous[0] + share * (c_db - previous[0]) + 15.9
        previous = (c_db, delta)
    raise AssertionError("no crossing")


def test_p56_level_matches_the_sample_by_sample_recursion() -> None:
    from assetsync.media.audio_level import _BLOCK

    # 36 s at 8 kHz crosses a measuring block; pauses make the hangover and thresholds count.
    voice = speech_like(36.0, 8000, level_db=-29.0, seed=11)
    # Half a second of noise ending 0.1 s before a measuring block does, then silence: the
    # envelope has decayed by the block's start, but the 0.2 s hangover reaches 0.1 s into it.
    burst = np.zeros(_BLOCK + 8000, np.float32)
    burst[_BLOCK - 4800:_BLOCK - 800] = np.random.default_rng(15).standard_normal(4000) * 0.1
    for signal in (voice, burst):
        measured = active_speech_level(signal, 8000)
        assert measured is not None
        assert measured[0] == pytest.approx(_p56_sample_by_sample(signal, 8000), abs=0.01)


def test_decoding_downmixes_and_resamples_like_one_swresample_pass() -> None:
    # 44.1 kHz stereo with different channels, long enough for several of the decoder's
    # conversion batches: the result is swresample's own stereo -> mono 8 kHz conversion.
    left = speech_like(3.5, RATE, level_db=-20.0, seed=12)
    stereo = np.stack([left, speech_like(3.5, RATE, level_db=-24.0, seed=13)])
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(stereo), format="fltp",
                                       layout="stereo")
    frame.sample_rate = RATE
    resampler = av.AudioResampler(format="flt", layout="mono", rate=8000)
    whole = np.concatenate([f.to_ndarray().reshape(-1) for f in
                            [*resampler.resample(frame), *resampler.resample(None)]])
    decoded = decode_audio(encode_as("wav-f32", stereo, RATE), "wav", rate=8000)
    assert len(decoded.samples) == len(whole) == 28_000
    assert float(np.max(np.abs(decoded.samples - whole))) < 1e-5


def test_audio_whose_format_changes_midway_is_a_transform_error() -> None:
    def without_id3(data: bytes) -> bytes:  # ID3v2 size: four 7-bit bytes (id3v2.4 §3.1)
        size = (data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9]
        return data[10 + size:] if data[:3] == b"ID3" else data

    first = encode_as("mp3", np.stack([speech_like(2.0, RATE)] * 2), RATE)
    for rate, channels in ((22_050, 2), (RATE, 1)):
        second = speech_like(2.0, rate)
        tail = encode_as("mp3", np.stack([second] * channels) if channels == 2 else second,
                         rate)
        with pytest.raises(TransformError, match="change midway") as caught:
            make_voice(first + without_id3(tail), "mp3", DEFAULT)
        assert "\n" not in str(caught.value)
    assert make_voice(first + without_id3(first), "mp3", DEFAULT).data is not None


def test_true_peak_is_within_the_bound_that_spares_its_measurement() -> None:
    from assetsync.media.audio import _INTERPOLATOR, _INTERPOLATOR_GAIN_DB, true_peak_db

    rng = np.random.default_rng(14)
    for _ in range(20):
        noise = rng.standard_normal(2000).astype(np.float32)
        assert true_peak_db(noise, 8000) <= 20 * np.log10(np.max(np.abs(noise))) + \
            _INTERPOLATOR_GAIN_DB + 1e-4
    # The bound is reached: samples with the signs of the widest phase's taps (reversed).
    widest = max(_INTERPOLATOR, key=lambda phase: float(np.abs(phase).sum()))
    worst = np.zeros(64, np.float32)
    worst[26:38] = np.sign(widest[::-1])
    assert true_peak_db(worst, 8000) == pytest.approx(_INTERPOLATOR_GAIN_DB, abs=0.01)


def test_an_inter_sample_peak_over_the_ceiling_holds_the_gain_back() -> None:
    # A quarter-rate sine of peak 0.1 (-20 dBFS) sampled at 45 degrees: its samples are at
    # -23 dBFS and so is its level (power). +17 dB would bring it to -6 dBov with the samples
    # at -6 dBFS, under a -4 dBTP ceiling, but the wave would peak at -3 dBTP: the gain must
    # give up 1 dB (and the 12-tap interpolator's ~0.08 dB overshoot at 2 kHz).
    n = np.arange(8000 * 3)
    sine = (0.1 * np.sin(2 * np.pi * 0.25 * n + np.pi / 4)).astype(np.float32)
    settings = AudioSettings(trim=False, target_level_db=-6.0, true_peak_db=-4.0)
    out = make_voice(wav_pcm16(sine, 8000), "wav", settings)
    assert "ceiling" in out.note
    assert out.gain_db == pytest.approx(17.0 - 1.0, abs=0.15)
