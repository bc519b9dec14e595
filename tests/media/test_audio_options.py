"""The audio keys of `[optimize.profiles.NAME]`: defaults, values, one error line per bad key."""

from __future__ import annotations

import pytest

from assetsync.errors import ConfigError
from assetsync.media.audio_options import AudioSettings
from assetsync.media.options import parse_optimize_section


def _profiles(body: dict[str, object], name: str = "voice") -> dict[str, object]:
    return {"profiles": {name: {"globs": ["voice/**"], **body}}}


def test_voice_profile_replaces_in_place_with_the_documented_defaults() -> None:
    (voice,) = parse_optimize_section(_profiles({}), file="a.toml").profiles
    assert voice.channel == "voice" and voice.variant and voice.path == ""
    assert voice.audio == AudioSettings()
    assert (voice.audio.target_level_db, voice.audio.true_peak_db, voice.audio.max_gain_db,
            voice.audio.keep_silence_ms, voice.audio.sample_rate) == (-26.0, -1.0, 20.0, 100, 8000)


def test_audio_keys_are_read() -> None:
    body = {"trim": False, "normalize": True, "silence_threshold_db": -60,
            "keep_silence_ms": 250, "target_level_db": -23.5, "true_peak_db": -2,
            "max_gain_db": 12, "sample_rate": 16000, "mp3_bitrate": 24,
            "path": "/{dir}/{stem}.{ext}"}
    (voice,) = parse_optimize_section(_profiles(body), file="a.toml").profiles
    assert voice.audio == AudioSettings(trim=False, silence_threshold_db=-60.0,
                                        keep_silence_ms=250, target_level_db=-23.5,
                                        true_peak_db=-2.0, max_gain_db=12.0, sample_rate=16000,
                                        mp3_bitrate=24)
    assert voice.path == "/{dir}/{stem}.{ext}"
    (wa,) = parse_optimize_section(_profiles({"opus_bitrate": 32, "voice_note": False},
                                             "whatsapp"), file="a.toml").profiles
    assert wa.audio.opus_bitrate == 32 and not wa.audio.voice_note
    # a user profile on the voice channel is in place too
    (own,) = parse_optimize_section(_profiles({"channel": "voice"}, "prompts"),
                                    file="a.toml").profiles
    assert own.path == "" and own.channel == "voice"


@pytest.mark.parametrize(("name", "body", "key", "words"), [
    ("voice", {"target_level_db": "loud"}, "target_level_db", "number of dB"),
    ("voice", {"target_level_db": True}, "target_level_db", "number of dB"),
    ("voice", {"target_level_db": 3}, "target_level_db", "out of range"),
    ("voice", {"true_peak_db": 1.5}, "true_peak_db", "out of range"),
    ("voice", {"max_gain_db": -1}, "max_gain_db", "out of range"),
    ("voice", {"keep_silence_ms": 1.5}, "keep_silence_ms", "integer"),
    ("voice", {"keep_silence_ms": -5}, "keep_silence_ms", "out of range"),
    ("voice", {"sample_rate": 44100}, "sample_rate", "8000, 16000"),
    ("voice", {"mp3_bitrate": 33}, "mp3_bitrate", "use one of"),
    ("voice", {"trim": "yes"}, "trim", "true or false"),
    ("voice", {"quality": 80}, "quality", "voice profile makes audio only"),
    ("voice", {"max_width": 80}, "max_width", "voice profile makes audio only"),
    ("voice", {"opus_bitrate": 24}, "opus_bitrate", "whatsapp profiles only"),
    ("whatsapp", {"sample_rate": 8000}, "sample_rate", "voice profiles only"),
    ("mms", {"voice_note": True}, "voice_note", "whatsapp profiles only"),
    ("thumbs", {"trim": True}, "trim", "channel voice, whatsapp, mms"),
    ("site", {"channel": "web", "normalize": True}, "normalize", "channel voice"),
    ("voice", {"loudness": -26}, "loudness", "unknown key"),
])
def test_every_bad_audio_key_is_one_line_naming_it(name: str, body: dict[str, object],
                                                   key: str, words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_optimize_section(_profiles(body, name), file="a.toml")
    message = str(caught.value)
    assert message.startswith(f"a.toml: [optimize.profiles.{name}] {key}: ")
    assert words in message and "\n" not in message
