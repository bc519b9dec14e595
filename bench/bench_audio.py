"""Audio benchmark: the voice and WhatsApp recipes over a generated corpus; prints one JSON document.

    .venv/bin/python bench/bench_audio.py [--minutes 1.0] [--skip-sync]

Corpus (generated, never committed; `tests/audio_signals.py`): speech-like audio (glottal pulse
trains at 100-140 Hz through three vowel formants, 150-300 ms syllables in words separated by
80-400 ms pauses) and music-like audio (three-note chords with harmonics and attack/decay
envelopes), with digital silence padding, as:

- `speech-quiet.wav`: 44.1 kHz stereo 16-bit, speech at -35 dBFS, 1.5 s silence before, 1 s after
- `speech-hot.wav`: 44.1 kHz stereo 16-bit, speech at -12 dBFS, 0.5 s silence each side
- `speech-48k.wav`: 48 kHz stereo 16-bit, speech at -24 dBFS, 1 s silence each side
- `speech-320k.mp3`: 44.1 kHz stereo MP3 at 320 kbit/s (libmp3lame), speech at -20 dBFS
- `hold-music.wav`: 44.1 kHz stereo 16-bit music-like audio at -18 dBFS

each `--minutes` long (default 1). Per file: bytes before/after and their ratio for the voice
prompt (and the WhatsApp voice note), CPU seconds of the recipe (process time, decode to
encode; the median of 3 runs) per minute of audio, and the active speech level (ITU-T P.56) of
the decoded output against the -26 dBov target. `voice_cpu_split_s_per_min` times the voice
recipe's stages again, separately: decoding to mono at the output rate, encoding the output,
and the rest (the recipe's total minus those two: trim, P.56 level, peak check, gain). Peak RSS
is that of a separate process that only runs the recipes over the corpus files (after a warm-up
on a 1 s clip: first-call set-up is paid once per worker process), with one OpenBLAS thread as
in the transform pool's workers. Then, unless `--skip-sync`, the real CLI once: `assetsync sync`
as a subprocess against the emulator (another process, over a socket) with the voice profile on
the corpus: wall time of the first sync (encode + upload + build + deploy) and of a second,
no-change sync. Excluded: generating the corpus and starting the emulator.
Goals (issue 15): voice >= 10x smaller than 44.1 kHz stereo PCM, loudness within 1 dB of the
target, < 0.2 s CPU per minute of audio.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.audio_signals

import numpy as np
from bench_sync import ENV, start_emulator

from assetsync.media.audio import (
    AudioOutput,
    decode_audio,
    encode_audio,
    make_voice,
    make_voice_note,
)
from assetsync.media.audio_level import active_speech_level
from assetsync.media.audio_options import AudioSettings
from assetsync.media.sniff import sniff
from tests.audio_signals import (
    encode_as,
    music_like,
    pad_silence,
    speech_like,
    wav_pcm16,
)

TARGET = AudioSettings().target_level_db


def corpus(folder: Path, minutes: float) -> dict[str, bool]:
    """Write the corpus into `folder`; returns name -> is speech."""
    seconds = 60.0 * minutes
    folder.mkdir(parents=True, exist_ok=True)

    def stereo(level: float, rate: int, seed: int, lead: float, tail: float) -> np.ndarray:
        voice = speech_like(seconds - lead - tail, rate, level_db=level, seed=seed)
        return pad_silence(np.stack([voice, voice * 0.93]), rate, lead, tail)

    (folder / "speech-quiet.wav").write_bytes(wav_pcm16(stereo(-35, 44_100, 1, 1.5, 1.0),
                                                        44_100))
    (folder / "speech-hot.wav").write_bytes(wav_pcm16(stereo(-12, 44_100, 2, 0.5, 0.5), 44_100))
    (folder / "speech-48k.wav").write_bytes(wav_pcm16(stereo(-24, 48_000, 3, 1.0, 1.0), 48_000))
    (folder / "speech-320k.mp3").write_bytes(encode_as("mp3", stereo(-20, 44_100, 4, 0.5, 0.5),
                                                       44_100, bit_rate=320_000))
    (folder / "hold-music.wav").write_bytes(wav_pcm16(music_like(seconds, 44_100,
                                                                 level_db=-18), 44_100))
    return {"speech-quiet.wav": True, "speech-hot.wav": True, "speech-48k.wav": True,
            "speech-320k.mp3": True, "hold-music.wav": False}


def measure(folder: Path, names: dict[str, bool]) -> dict[str, object]:
    """Run the recipes over the corpus (in this process) and measure them."""
    rows = []
    settings = AudioSettings()
    baseline_rss = _peak_rss_mb()
    # Warm-up (FFmpeg's and numpy's first-call set-up, paid once per worker process)
    warm = wav_pcm16(speech_like(1.0, 44_100), 44_100)
    make_voice(warm, "wav", settings)
    make_voice_note(warm, "wav", settings)
    for name, speech in names.items():
        data = (folder / name).read_bytes()
        kind = (sniff(data[:64]) or sys.exit(f"{name}: not sniffed")).kind
        voice, voice_cpu = _median_cpu(partial(make_voice, data, kind, settings))
        note, note_cpu = _median_cpu(partial(make_voice_note, data, kind, settings))
        assert voice.data is not None and note.data is not None
        minutes = voice.before.seconds / 60
        split = _voice_split(data, kind, voice.kind, settings)
        decoded = decode_audio(voice.data, voice.kind, rate=8000)
        level = active_speech_level(decoded.samples, 8000)
        rows.append({
            "file": name, "speech": speech, "seconds": voice.before.seconds,
            "source": voice.before.describe(), "voice": voice.note,
            "bytes_before": len(data), "voice_bytes": len(voice.data),
            "voice_ratio": round(len(data) / len(voice.data), 2),
            "whatsapp_bytes": len(note.data),
            "voice_cpu_s_per_min": round(voice_cpu / minutes, 4),
            "whatsapp_cpu_s_per_min": round(note_cpu / minutes, 4),
            "voice_cpu_split_s_per_min": {
                "decode": round(split[0] / minutes, 4), "encode": round(split[1] / minutes, 4),
                "rest": round((voice_cpu - split[0] - split[1]) / minutes, 4)},
            "level_db": round(level[0], 2) if level else None,
            "level_error_db": round(level[0] - TARGET, 2) if level else None,
        })
    speech_rows = [r for r in rows if r["speech"]]
    pcm = [r for r in rows if str(r["file"]).endswith(".wav") and "44" in str(r["source"])]
    return {
        "files": rows,
        "voice_ratio_min_44k_stereo_pcm": min(float(str(r["voice_ratio"])) for r in pcm),
        "level_error_db_max_speech": max(abs(float(str(r["level_error_db"])))
                                         for r in speech_rows),
        "voice_cpu_s_per_min_max": max(float(str(r["voice_cpu_s_per_min"])) for r in rows),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "rss_after_imports_mb": round(baseline_rss, 1),
    }


def _median_cpu(recipe: Callable[[], AudioOutput], runs: int = 3) -> tuple[AudioOutput, float]:
    """The recipe's output and the median CPU seconds of `runs` runs of it (one run alone
    swung by ~15% on this machine)."""
    times = []
    for _ in range(runs):
        started = time.process_time()
        output = recipe()
        times.append(time.process_time() - started)
    return output, statistics.median(times)


def _voice_split(data: bytes, kind: str, out_kind: str, settings: AudioSettings
                 ) -> tuple[float, float]:
    """CPU seconds of the voice recipe's decode and of its encode (the defaults: 8 kHz)."""
    started = time.process_time()
    samples = decode_audio(data, kind, rate=settings.sample_rate).samples
    decode_cpu = time.process_time() - started
    started = time.process_time()
    if out_kind == "mp3":
        encode_audio(samples, settings.sample_rate, "mp3", "libmp3lame",
                     bit_rate=settings.mp3_bitrate * 1000)
    else:
        encode_audio(samples, 8000, "wav", "pcm_mulaw")
    return decode_cpu, time.process_time() - started


def _peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM: unlike ru_maxrss it starts afresh at exec, so the parent
    that generated the corpus does not count)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cli_sync(folder: Path, root: Path) -> dict[str, object]:
    """Wall time of `assetsync sync` (a subprocess) publishing the corpus as voice prompts."""
    emulator, url = start_emulator(root / "emulator")
    try:
        site = root / "project" / "site" / "voice"
        site.mkdir(parents=True)
        for path in folder.iterdir():
            (site / path.name).write_bytes(path.read_bytes())
        config = root / "project" / ".assetsync.toml"
        config.write_text(
            f'[project]\nsource = "site"\nservice = "audio"\nenvironment = "dev"\n'
            f'[target]\napi = "{url}"\n[sync]\npoll_interval_s = 0.05\n'
            '[optimize.profiles.voice]\nglobs = ["voice/**"]\n')
        times = []
        for _ in range(2):
            started = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "assetsync", "-c", str(config), "sync"],
                                  env={**ENV, "PATH": "/usr/bin:/bin"}, capture_output=True,
                                  text=True, check=False)
            times.append(time.perf_counter() - started)
            if done.returncode != 0:
                sys.exit(f"sync failed: {done.stderr.strip()}")
        return {"first_sync_s": round(times[0], 2), "no_change_sync_s": round(times[1], 2),
                "excludes": "corpus generation and emulator start-up; includes process "
                            "start, scan, encode (process pool), upload, build and deploy"}
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=1.0, help="length of each file")
    parser.add_argument("--skip-sync", action="store_true", help="no end-to-end CLI sync")
    parser.add_argument("--measure", metavar="DIR", help=argparse.SUPPRESS)  # the child
    args = parser.parse_args()
    if args.measure:
        names = json.loads((Path(args.measure) / "names.json").read_text())
        print(json.dumps(measure(Path(args.measure), names)))
        return
    with tempfile.TemporaryDirectory(prefix="bench-audio-") as tmp:
        folder = Path(tmp) / "corpus"
        names = corpus(folder, args.minutes)
        (folder / "names.json").write_text(json.dumps(names))
        # One thread for OpenBLAS, as in the transform pool's workers (`_init_worker`).
        child = subprocess.run([sys.executable, __file__, "--measure", str(folder)],
                               capture_output=True, text=True, check=True,
                               env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
        (folder / "names.json").unlink()
        report: dict[str, object] = {"minutes_per_file": args.minutes,
                                     "target_level_db": TARGET, **json.loads(child.stdout)}
        if not args.skip_sync:
            report["cli_sync"] = cli_sync(folder, Path(tmp))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
