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
_SCAN_CONSTANTS = 4  # rows of the smoother's vectorized recursion, in time constants
_BLOCK = 1 << 18  # samples measured at a time (33 s at 8 kHz)


def active_speech_level(samples: Samples, rate: int) -> tuple[float, float] | None:
    """The active speech level (dB, see the module docstring) and the activity factor (0-1).

    ITU-T P.56 method B, written from the recommendation's description: the rectified signal
    is smoothed twice with a first-order filter of time constant 0.03 s (the envelope q); a
    sample is active for threshold c when q reached c within the last 0.2 s (hangover); for
    each threshold the active level is the total energy over the active samples, and the
    speech level is where that level lies 15.9 dB above the threshold, interpolated between
    neighbouring thresholds. None when nothing is ever active (digital silence).

    Worked through in blocks of `_BLOCK` samples, the smoothers' states and the last 0.2 s of
    the envelope carried from block to block, so memory stays bounded for an hour-long file
    and the result does not depend on where the blocks fall.
    """
    count = len(samples)
    if count == 0:
        return None
    g = math.exp(-1.0 / (rate * _TIME_CONSTANT_S))
    smoother = _Smoother(g, max(1, round(_SCAN_CONSTANTS * rate * _TIME_CONSTANT_S)))
    hangover = max(1, round(_HANGOVER_S * rate))
    thresholds = 10.0 ** (_THRESHOLDS_DB / 20.0)
    # edges -inf, t0, t1, ...: bin j+1 holds the samples whose held envelope is in [t_j, t_j+1)
    edges = np.concatenate([[-np.inf], thresholds, [np.inf]])
    per_bin = np.zeros(len(edges) - 1, np.int64)
    energy, p_state, q_state = 0.0, 0.0, 0.0
    tail = np.zeros(0, np.float64)  # the envelope's last `hangover` samples before the block
    for start in range(0, count, _BLOCK):
        block = samples[start:start + _BLOCK].astype(np.float64)
        energy += float(np.square(block).sum())  # not np.dot: OpenBLAS would spin up threads
        smoothed, p_state = smoother.run(np.abs(block, out=block), p_state)  # p(n)
        smoothed, q_state = smoother.run(smoothed, q_state)  # q(n), the envelope
        envelope = np.concatenate([tail, smoothed])
        held = _trailing_max(envelope, hangover + 1)[len(tail):]
        tail = envelope[-hangover:]
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


class _Smoother:
    """P.56's first-order smoother y(n) = g*y(n-1) + (1-g)*x(n), run exactly but vectorized.

    The signal is cut into rows of `width` samples. Within a row, starting from y = 0,
    y(k) = (1-g) g^k * sum_{j<=k} g^-j x(j): one cumulative sum. Each row then adds what the
    state before it leaves, y_before * g^(k+1), and the state each row hands on is
    g^width * y_before + its own last value (a Python loop over rows, 1/width of the samples).
    `width` is a few time constants, so g^-width stays near e^4: the weights neither overflow
    nor lose precision (the newest samples carry the largest weights, as in the recursion).
    This is the recursion itself, to float64 rounding, at a fifth of the cost of an FFT
    convolution with its impulse response.
    """

    __slots__ = ("_carry", "_down", "_step", "_up", "_width")

    def __init__(self, g: float, width: int) -> None:
        k = np.arange(width, dtype=np.float64)
        self._width = width
        self._up = g ** -k
        self._down = (1.0 - g) * g**k
        self._carry = g ** (k + 1.0)
        self._step = g**width

    def run(self, signal: NDArray[np.float64], state: float
            ) -> tuple[NDArray[np.float64], float]:
        """`signal` filtered from the state `state`, and the state after it."""
        count, width = len(signal), self._width
        rows = -(-count // width)
        padded = np.zeros(rows * width, np.float64)
        padded[:count] = signal
        grid = padded.reshape(rows, width)
        grid *= self._up
        np.cumsum(grid, axis=1, out=grid)
        grid *= self._down
        before = np.empty(rows, np.float64)
        step = self._step
        for row, last in enumerate(grid[:, -1].tolist()):
            before[row] = state
            state = step * state + last
        grid += before[:, None] * self._carry
        return padded[:count], float(padded[count - 1])


def _trailing_max(values: NDArray[np.float64], window: int) -> NDArray[np.float64]:
    """max(values[n-window+1 .. n]) for every n (shorter at the start), in O(n).

    Block prefix and suffix maxima (van Herk / Gil-Werman): every window spans at most two
    blocks of `window` samples. The window ending at column c of block b (c < window - 1)
    is the suffix of block b-1 from column c+1 and the prefix of block b up to c; ending at
    the last column, it is block b itself.
    """
    count = len(values)
    padded = np.concatenate([values, np.full((-count) % window, -np.inf)])
    blocks = padded.reshape(-1, window)
    result = np.maximum.accumulate(blocks, axis=1)  # prefixes; the first block's windows
    suffix = np.maximum.accumulate(blocks[:-1, ::-1], axis=1)[:, ::-1]
    np.maximum(result[1:, :-1], suffix[:, 1:], out=result[1:, :-1])
    return result.reshape(-1)[:count]


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
