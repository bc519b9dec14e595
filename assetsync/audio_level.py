"""Audio measurements (pure numpy): active speech level, silence bounds, peak levels.

Levels are in dB relative to digital full scale, power-based (0 dB = a full-scale square
wave), which is how ITU-T G.100.1 defines dBov; a full-scale sine is then -3 dB.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

__all__ = ["active_speech_level", "peak_db", "rms_db", "silence_bounds"]

Samples = NDArray[np.float32]

# ITU-T P.56 (12/2011) method B: envelope time constant 0.03 s, hangover 0.2 s, margin M of
# 15.9 dB between the active level and the activity threshold.
_TIME_CONSTANT_S = 0.03
_HANGOVER_S = 0.2
_MARGIN_DB = 15.9
# Thresholds tried, ascending: P.56 asks for thresholds no more than 2 dB apart (the G.191
# reference uses 6 dB steps and interpolates); 0.25 dB steps make interpolation error negligible.
_THRESHOLDS_DB = np.arange(-100.0, 0.25, 0.25)
_FRAME_S = 0.01  # frames over which silence is judged
_BLOCK = 1 << 18  # samples measured at a time (33 s at 8 kHz)


def active_speech_level(samples: Samples, rate: int) -> tuple[float, float] | None:
    """The active speech level (dB, see the module docstring) and the activity factor (0-1).

    ITU-T P.56 method B, written from the recommendation's description: the rectified signal
    is smoothed twice with a first-order filter of time constant 0.03 s (the envelope q); a
    sample is active for threshold c when q reached c within the last 0.2 s (hangover); for
    each threshold the active level is the total energy over the active samples, and the
    speech level is where that level lies 15.9 dB above the threshold, interpolated between
    neighbouring thresholds. None when nothing is ever active (digital silence).

    Worked through in blocks of `_BLOCK` samples, each with the history the envelope filter
    and the hangover need, so memory stays bounded for an hour-long file.
    """
    count = len(samples)
    if count == 0:
        return None
    kernel = _envelope_kernel(rate)
    hangover = max(1, round(_HANGOVER_S * rate))
    history = len(kernel) + hangover
    thresholds = 10.0 ** (_THRESHOLDS_DB / 20.0)
    # edges -inf, t0, t1, ...: bin j+1 holds the samples whose held envelope is in [t_j, t_j+1)
    edges = np.concatenate([[-np.inf], thresholds, [np.inf]])
    per_bin = np.zeros(len(edges) - 1, np.int64)
    energy = 0.0
    for start in range(0, count, _BLOCK):
        stop = min(count, start + _BLOCK)
        block = samples[start:stop].astype(np.float64)
        energy += float(np.square(block).sum())  # not np.dot: OpenBLAS would spin up threads
        lead = min(start, history)
        rectified = np.abs(samples[start - lead:stop].astype(np.float64))
        envelope = _convolve(rectified, kernel)
        held = _trailing_max(envelope, hangover + 1)[lead:]
        per_bin += np.histogram(held, bins=edges)[0]
    if energy <= 0.0:
        return None
    active = np.cumsum(per_bin[::-1])[::-1][1:]  # active[j] = #(held >= thresholds[j])
    previous: tuple[float, float] | None = None
    for threshold_db, active_count in zip(_THRESHOLDS_DB.tolist(), active.tolist()):
        if active_count <= 0:
            break
        level = 10.0 * math.log10(energy / active_count)
        delta = level - threshold_db
        if delta <= _MARGIN_DB:
            if previous is None:
                return level, active_count / count
            # linear interpolation of the threshold where delta == margin
            low_db, low_delta = previous
            share = (low_delta - _MARGIN_DB) / (low_delta - delta) if low_delta != delta else 1.0
            crossing = low_db + share * (threshold_db - low_db)
            activity = energy / (10.0 ** ((crossing + _MARGIN_DB) / 10.0)) / count
            return crossing + _MARGIN_DB, min(1.0, activity)
        previous = (threshold_db, delta)
    return None


def _envelope_kernel(rate: int) -> NDArray[np.float64]:
    """Two first-order smoothers in cascade (P.56's p(n) then q(n)) as one impulse response.

    Each stage is y(n) = g*y(n-1) + (1-g)*x(n), g = exp(-1/(rate*T)); the cascade's impulse
    response is (1-g)^2 (k+1) g^k, cut where it falls below 1e-7 of its start (~20 T).
    """
    g = math.exp(-1.0 / (rate * _TIME_CONSTANT_S))
    length = max(2, math.ceil(-math.log(1e-7) / (1.0 - g) * 1.25))
    k = np.arange(length, dtype=np.float64)
    return np.asarray((1.0 - g) ** 2 * (k + 1.0) * g**k)


def _convolve(signal: NDArray[np.float64], kernel: NDArray[np.float64]) -> NDArray[np.float64]:
    """The causal convolution's first len(signal) samples, by FFT."""
    size = 1 << (len(signal) + len(kernel) - 1).bit_length()
    spectrum = np.fft.rfft(signal, size) * np.fft.rfft(kernel, size)
    return np.asarray(np.fft.irfft(spectrum, size)[: len(signal)])


def _trailing_max(values: NDArray[np.float64], window: int) -> NDArray[np.float64]:
    """max(values[n-window+1 .. n]) for every n (shorter at the start), in O(n).

    Block prefix and suffix maxima (van Herk / Gil-Werman): every window spans at most two
    blocks of `window` samples.
    """
    count = len(values)
    padded = np.concatenate([values, np.full((-count) % window, -np.inf)])
    blocks = padded.reshape(-1, window)
    prefix = np.maximum.accumulate(blocks, axis=1).reshape(-1)
    suffix = np.maximum.accumulate(blocks[:, ::-1], axis=1)[:, ::-1].reshape(-1)
    result = prefix.copy()
    if len(padded) >= window:
        # window ending at i starts at i - window + 1, the suffix of its first block
        result[window - 1 :] = np.maximum(suffix[: len(padded) - window + 1],
                                          prefix[window - 1 :])
    return result[:count]


def silence_bounds(samples: Samples, rate: int, *, threshold_db: float,
                   keep_ms: int) -> tuple[int, int] | None:
    """(start, end) sample indices with leading and trailing silence cut, `keep_ms` of it kept.

    Silence is a 10 ms frame whose RMS is below `threshold_db`. None when every frame is
    silent (nothing to keep a window around).
    """
    frame = max(1, round(_FRAME_S * rate))
    frames = len(samples) // frame
    if frames == 0:
        return None
    body = samples[: frames * frame].reshape(frames, frame)
    power = np.einsum("ij,ij->i", body, body, dtype=np.float64) / frame
    loud = np.flatnonzero(power >= 10.0 ** (threshold_db / 10.0))
    tail = samples[frames * frame :]
    tail_loud = len(tail) and float(np.mean(np.square(tail, dtype=np.float64))) >= \
        10.0 ** (threshold_db / 10.0)
    if len(loud) == 0 and not tail_loud:
        return None
    keep = round(keep_ms * rate / 1000)
    first = int(loud[0]) * frame if len(loud) else frames * frame
    last = len(samples) if tail_loud else (int(loud[-1]) + 1) * frame
    return max(0, first - keep), min(len(samples), last + keep)


def rms_db(samples: Samples) -> float:
    """Mean power in dB (-inf for silence)."""
    if len(samples) == 0:
        return -math.inf
    power = float(np.mean(np.square(samples, dtype=np.float64)))
    return 10.0 * math.log10(power) if power > 0 else -math.inf


def peak_db(samples: Samples) -> float:
    """Largest absolute sample in dB re full scale (-inf for silence)."""
    if len(samples) == 0:
        return -math.inf
    peak = float(np.max(np.abs(samples)))
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf
