"""Audio end to end: `assetsync sync` (in-process `main`, and the engine) against the emulator
over a socket publishes telephony-ready prompts in place and WhatsApp/MMS variants, serves them
with the right Content-Type, and a second sync decodes and uploads nothing."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from assetsync.cli import main
from assetsync.media.audio import decode_audio
from assetsync.media.audio_level import active_speech_level
from assetsync.results import SyncEvent
from assetsync.sync.run import sync
from tests.audio_signals import encode_as, pad_silence, speech_like, wav_pcm16
from tests.sync_harness import enter_cli, load, uploads, write_config

VOICE = '[optimize.profiles.voice]\nglobs = ["voice/**"]\n'
CORRUPT_MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 20


def _prompt() -> bytes:
    """The issue's prompt: 20 s, 44.1 kHz stereo 16-bit, 1.5 s of leading silence, ~-35 dBFS."""
    voice = speech_like(18.5, 44_100, level_db=-35.0, seed=11)
    return wav_pcm16(pad_silence(np.stack([voice, voice * 0.95]), 44_100, 1.5, 0.0), 44_100)


def _project(tmp_path: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch,
             extra: str = VOICE) -> Path:
    write_config(tmp_path, emulator, extra="[optimize]\n" + extra)
    enter_cli(tmp_path, emulator, monkeypatch)
    (tmp_path / "site" / "voice").mkdir(parents=True)
    return tmp_path / "site"


def _with_prompt(tmp_path: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch
                 ) -> tuple[Path, bytes]:
    """The project with the issue's prompt at voice/prompt.wav: (site folder, its bytes)."""
    site = _project(tmp_path, emulator, monkeypatch)
    original = _prompt()
    (site / "voice" / "prompt.wav").write_bytes(original)
    return site, original


def _served(emulator: Any, path: str) -> httpx.Response:
    with emulator.client() as http:
        services = http.get("/v1/Services").json()["services"]
        env = http.get(f"/v1/Services/{services[0]['sid']}/Environments").json()["environments"]
    response = httpx.get(f"{emulator.url}/_serve/{env[0]['domain_name']}{path}")
    assert response.status_code == 200, path
    return response


def _fmt(data: bytes) -> tuple[int, int, int, int]:
    assert data[:4] == b"RIFF" and data[12:16] == b"fmt "
    tag, channels, rate = struct.unpack("<HHI", data[20:28])
    return tag, channels, rate, struct.unpack("<H", data[34:36])[0]


def _level(data: bytes, kind: str, rate: int) -> float:
    decoded = decode_audio(data, kind, rate=rate)
    measured = active_speech_level(decoded.samples, rate)
    assert measured is not None
    return measured[0]


def test_done_when_a_studio_wav_is_served_as_a_telephony_prompt(
        tmp_path: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    site, original = _with_prompt(tmp_path, emulator, monkeypatch)
    (site / "voice" / "broken.mp3").write_bytes(CORRUPT_MP3)
    (site / "index.html").write_text("<p>hi</p>")

    assert main(["sync"]) == 0
    out, err = capsys.readouterr()
    lines = [line for line in (out + err).splitlines()
             if "broken.mp3" in line and "https://" not in line]  # not the URL listing
    assert len(lines) == 1 and lines[0].startswith("warning: voice/broken.mp3: cannot decode "
                                                   "audio"), out + err
    assert "Traceback" not in out + err

    served = _served(emulator, "/voice/prompt.wav")
    assert served.headers["content-type"] == "audio/wav"
    body = served.content
    assert _fmt(body) == (7, 1, 8000, 8)  # µ-law, mono, 8 kHz, 8 bits
    decoded = decode_audio(body, "wav", rate=8000)
    assert decoded.info.seconds < 19.0
    assert len(body) * 10 <= len(original)
    before, after = _level(original, "wav", 8000), _level(body, "wav", 8000)
    assert after > before + 5 and abs(after - -26.0) < 1.0
    # the rest publishes: the broken file as it is, the page beside it
    assert _served(emulator, "/voice/broken.mp3").content == CORRUPT_MP3
    assert _served(emulator, "/index.html").text == "<p>hi</p>"

    code = main(["urls"])
    assert code == 0 and "/voice/prompt.wav" in capsys.readouterr().out

    # A second sync uploads nothing and decodes nothing (no encode ran: no transform events,
    # and the cache index holds no new or rewritten entry).
    index = sorted((tmp_path / ".assetsync" / "transform" / "index").rglob("*.json"))
    stamps = [p.stat().st_mtime_ns for p in index]
    sent = uploads(emulator)
    events: list[SyncEvent] = []
    result = sync(load(tmp_path, emulator), on_event=events.append)
    assert uploads(emulator) == sent and not result.uploaded and result.noop
    assert not [e for e in events if e.kind in ("transform_started", "transformed")]
    assert sorted((tmp_path / ".assetsync" / "transform" / "index").rglob("*.json")) == index
    assert [p.stat().st_mtime_ns for p in index] == stamps


def test_strict_makes_an_undecodable_file_an_error_and_uploads_nothing(
        tmp_path: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    site = _project(tmp_path, emulator, monkeypatch, "strict = true\n" + VOICE)
    (site / "voice" / "prompt.wav").write_bytes(_prompt())
    (site / "voice" / "broken.mp3").write_bytes(CORRUPT_MP3)
    assert main(["sync"]) == 1
    out, err = capsys.readouterr()
    assert "voice/broken.mp3" in err and "cannot decode audio" in err
    assert "Traceback" not in out + err
    assert uploads(emulator) == 0


def test_other_formats_keep_their_path_and_get_the_content_type_of_their_bytes(
        tmp_path: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    site = _project(tmp_path, emulator, monkeypatch)
    music = speech_like(4.0, 44_100, level_db=-20.0, seed=3)
    (site / "voice" / "hold.flac").write_bytes(encode_as("flac", music, 44_100))
    (site / "voice" / "menu.mp3").write_bytes(encode_as("mp3", music, 44_100))
    assert main(["sync"]) == 0
    capsys.readouterr()
    flac = _served(emulator, "/voice/hold.flac")
    assert flac.headers["content-type"] == "audio/wav" and _fmt(flac.content)[0] == 7
    mp3 = _served(emulator, "/voice/menu.mp3")
    assert mp3.headers["content-type"] == "audio/mpeg"
    info = decode_audio(mp3.content, "mp3", rate=8000).info
    assert (info.rate, info.channels) == (8000, 1)


def test_whatsapp_voice_notes_and_mms_budget_variants_are_served(
        tmp_path: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    extra = ('[optimize.profiles.whatsapp]\nglobs = ["notes/**"]\n'
             '[optimize.profiles.mms]\nglobs = ["notes/**"]\n')
    site = _project(tmp_path, emulator, monkeypatch, extra)
    (site / "notes").mkdir()
    long = np.tile(speech_like(10.0, 44_100, level_db=-30.0), 4)  # 40 s: 3.5 MB of PCM
    (site / "notes" / "hello.wav").write_bytes(wav_pcm16(long, 44_100))
    assert main(["sync"]) == 0
    capsys.readouterr()
    note = _served(emulator, "/whatsapp/notes/hello.ogg")
    assert note.headers["content-type"] == "audio/ogg"
    assert note.content.startswith(b"OggS") and b"OpusHead" in note.content[:64]
    mms = _served(emulator, "/mms/notes/hello.mp3")
    assert mms.headers["content-type"] == "audio/mpeg" and len(mms.content) <= 600_000
    assert _served(emulator, "/notes/hello.wav").headers["content-type"] == "audio/wav"


def test_plan_shows_what_each_audio_file_becomes(
        tmp_path: Path, emulator: Any, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    _site, original = _with_prompt(tmp_path, emulator, monkeypatch)
    main(["plan"])
    out = capsys.readouterr().out
    (line,) = [line for line in out.splitlines() if "/voice/prompt.wav:" in line]
    assert line.strip().startswith("voice: /voice/prompt.wav: WAV 16-bit PCM 44.1 kHz stereo 20.0 s")
    assert "-> WAV µ-law 8 kHz mono" in line and f"{len(original):,} ->" in line
    assert main(["plan", "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)["audio"]
    assert entry["path"] == "/voice/prompt.wav" and entry["before"] == len(original)
    assert entry["to"]["codec"] == "pcm_mulaw" and entry["to"]["rate"] == 8000
    assert entry["from"]["channels"] == 2 and entry["to"]["seconds"] < 19.0
    assert entry["after"] * 10 <= entry["before"] and entry["gain_db"] > 5


def test_optimize_report_and_json_show_the_audio(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "site" / "voice").mkdir(parents=True)
    original = _prompt()
    (tmp_path / "site" / "voice" / "prompt.wav").write_bytes(original)
    config = tmp_path / ".assetsync.toml"
    config.write_text('[project]\nsource = "site"\nservice = "demo"\n[optimize]\n' + VOICE)
    assert main(["-c", str(config), "optimize", "--report", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "voice: /voice/prompt.wav: WAV 16-bit PCM 44.1 kHz stereo 20.0 s -> WAV µ-law" in out
    assert "1 audio file(s): 3,528,044 -> " in out and "1 converted" in out
    assert main(["-c", str(config), "optimize", "--json", "--workers", "1"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (entry,) = doc["audio"]
    assert entry["cached"] is True and entry["outcome"] == "optimized"
    assert doc["audio_totals"]["cache_hits"] == 1 and doc["totals"]["encoded"] == 0
    assert doc["audio_totals"]["bytes_after"] * 10 <= len(original)
