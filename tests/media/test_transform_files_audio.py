"""The transform stage over real audio files: in-place prompts, path templates, variants, the
cache (a second run decodes nothing), strict, and image cache keys left as they were."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from assetsync.media.cache import variant_recipe
from assetsync.media.options import BUILTIN_PROFILES, OptimizeOptions, parse_optimize_section
from assetsync.media.stage import TransformResult, transform_files
from tests.audio_signals import encode_as, pad_silence, speech_like, wav_pcm16
from tests.media.test_transform_files import _tree

PROMPT = wav_pcm16(pad_silence(speech_like(3.0, 22_050, level_db=-32.0), 22_050, 1.0, 0.5),
                   22_050)
CORRUPT = b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(range(256)) * 8


def _options(**table: object) -> OptimizeOptions:
    return parse_optimize_section(table, file="t.toml")


def _run(tmp_path: Path, files: list, options: OptimizeOptions) -> TransformResult:  # type: ignore[type-arg]
    return transform_files(files, options, source=tmp_path / "src",
                           cache_dir=tmp_path / "state" / "transform", workers=1)


VOICE = {"profiles": {"voice": {"globs": ["voice/**"]}}}


def test_prompts_replace_their_originals_and_a_second_run_decodes_nothing(
        tmp_path: Path) -> None:
    files = _tree(tmp_path / "src", {"voice/a.wav": PROMPT, "voice/b.aiff":
                                     encode_as("aiff", speech_like(2.0, 22_050), 22_050),
                                     "other/c.wav": PROMPT, "voice/readme.txt": b"hi"})
    first = _run(tmp_path, files, _options(**VOICE))
    out = {f.path: f for f in first.files}
    assert set(out) == {"/voice/a.wav", "/voice/b.aiff", "/other/c.wav", "/voice/readme.txt"}
    assert out["/voice/a.wav"].size * 2 < len(PROMPT) and out["/voice/a.wav"].variant is None
    assert out["/voice/b.aiff"].content_type == "audio/wav"  # the bytes are WAV now
    assert out["/other/c.wav"].size == len(PROMPT)  # not under the profile
    assert first.audio_stats.files == 2 and first.audio_stats.converted == 2
    assert first.stats.encoded == 2
    assert [i.path for i in first.issues] == ["voice/readme.txt"]  # <Play> cannot play text
    second = _run(tmp_path, files, _options(**VOICE))
    assert second.stats.encoded == 0 and second.audio_stats.cache_hits == 2
    assert second.files == first.files
    assert all(r.cached for r in second.audio)


def test_a_path_template_moves_the_prompt_and_changes_its_extension(tmp_path: Path) -> None:
    files = _tree(tmp_path / "src", {"voice/hold.flac": encode_as(
        "flac", speech_like(2.0, 22_050), 22_050)})
    options = _options(profiles={"voice": {"globs": ["voice/**"],
                                           "path": "/{dir}/{stem}.{ext}"}})
    (moved,) = _run(tmp_path, files, options).files
    assert moved.path == "/voice/hold.wav" and moved.source == "voice/hold.flac"
    assert moved.content_type == "audio/wav" and moved.variant is None


def test_a_moved_prompt_landing_on_a_real_file_is_an_error(tmp_path: Path) -> None:
    files = _tree(tmp_path / "src", {"voice/x.flac": encode_as("flac", speech_like(
        2.0, 22_050), 22_050), "voice/x.wav": b"RIFF not really"})
    options = _options(profiles={"voice": {"globs": ["voice/*.flac"],
                                           "path": "/{dir}/{stem}.{ext}"}})
    result = _run(tmp_path, files, options)
    (issue,) = [i for i in result.issues if i.severity == "error"]
    assert issue.path == "voice/x.flac" and "/voice/x.wav is already published" in issue.message


def test_undecodable_audio_is_a_warning_or_under_strict_an_error(tmp_path: Path) -> None:
    files = _tree(tmp_path / "src", {"voice/bad.mp3": CORRUPT, "voice/a.wav": PROMPT})
    loose = _run(tmp_path, files, _options(**VOICE))
    (issue,) = loose.issues
    assert (issue.path, issue.severity) == ("voice/bad.mp3", "warning")
    assert issue.message.startswith("cannot decode audio") and "published as is" in issue.message
    assert {f.path: f.size for f in loose.files}["/voice/bad.mp3"] == len(CORRUPT)
    strict = _run(tmp_path, files, _options(strict=True, **VOICE))
    assert [i.severity for i in strict.issues] == ["error"]


def test_whatsapp_and_mms_add_audio_variants_beside_the_original(tmp_path: Path) -> None:
    files = _tree(tmp_path / "src", {"notes/hi.wav": PROMPT})
    options = _options(profiles={"whatsapp": {"globs": ["notes/**"]},
                                 "mms": {"globs": ["notes/**"]}})
    result = _run(tmp_path, files, options)
    out = {f.path: f for f in result.files}
    assert out["/notes/hi.wav"].size == len(PROMPT)
    assert out["/whatsapp/notes/hi.ogg"].content_type == "audio/ogg"
    assert out["/whatsapp/notes/hi.ogg"].variant == "whatsapp"
    assert out["/mms/notes/hi.mp3"].content_type == "audio/mpeg"
    assert not result.issues  # the variants are what the channels get: no type warning
    checked = _options(profiles={"whatsapp": {"globs": ["notes/**"], "voice_note": False}})
    assert [f.path for f in _run(tmp_path, files, checked).files] == ["/notes/hi.wav"]


def test_image_variant_recipes_do_not_carry_the_audio_settings() -> None:
    recipe = variant_recipe(BUILTIN_PROFILES["mms"], OptimizeOptions())
    assert "audio" not in recipe and "trim" not in json.dumps(recipe)
    assert set(recipe) == {"op", "max_pixels", "as_is", "name", "max_bytes", "max_width", "max_height",
                           "format", "quality", "min_quality", "background", "channel",
                           "variant"}


def test_the_recipe_changes_with_an_audio_setting(tmp_path: Path) -> None:
    files = _tree(tmp_path / "src", {"voice/a.wav": PROMPT})
    _run(tmp_path, files, _options(**VOICE))
    louder = _options(profiles={"voice": {"globs": ["voice/**"], "target_level_db": -20}})
    result = _run(tmp_path, files, louder)
    assert result.stats.encoded == 1
    (report,) = result.audio
    assert report.gain_db is not None and report.gain_db > 10
    assert np.isfinite(report.gain_db)


def test_a_voice_note_over_512_kb_is_warned_about(tmp_path: Path) -> None:
    long = wav_pcm16(np.tile(speech_like(10.0, 16_000, level_db=-26.0), 22), 16_000)  # 220 s
    files = _tree(tmp_path / "src", {"notes/long.wav": long})
    options = _options(profiles={"whatsapp": {"globs": ["notes/**"], "opus_bitrate": 64}})
    result = _run(tmp_path, files, options)
    note = {f.path: f for f in result.files}["/whatsapp/notes/long.ogg"]
    assert note.size > 512_000
    (issue,) = result.issues
    assert "download icon" in issue.message and issue.severity == "warning"


def test_mms_checks_audio_types_twilio_does_not_list_when_it_makes_no_variant(
        tmp_path: Path) -> None:
    files = _tree(tmp_path / "src", {"mms/a.flac": encode_as("flac", speech_like(
        2.0, 22_050), 22_050), "mms/b.mp3": encode_as("mp3", speech_like(2.0, 22_050), 22_050)})
    checked = _run(tmp_path, files, _options(profiles={"mms": {"globs": ["mms/**"],
                                                               "variant": False}}))
    (issue,) = checked.issues
    assert issue.path == "mms/a.flac" and "audio/flac" in issue.message
    converted = _run(tmp_path, files, _options(profiles={"mms": {"globs": ["mms/**"]}}))
    out = {f.path: f for f in converted.files}
    assert out["/mms/mms/a.mp3"].content_type == "audio/mpeg"  # re-encoded: FLAC is unlisted
    assert Path(out["/mms/mms/b.mp3"].content_path).read_bytes() == \
        (tmp_path / "src" / "mms" / "b.mp3").read_bytes()  # an MP3 that fits is kept
    assert not converted.issues


def test_audio_encoder_versions_are_kept_beside_the_cache(tmp_path: Path) -> None:
    from assetsync.media.audio import audio_versions
    from assetsync.media.cache import audio_encoder_versions

    versions = audio_encoder_versions(tmp_path)
    assert versions == audio_versions() and "libavcodec=" in versions and "av=" in versions
    saved = tmp_path / "audio-encoders.txt"
    stamp, _, kept = saved.read_text(encoding="utf-8").partition("\n")
    assert kept == versions and "numpy" in stamp
    # read from the file while the installed packages are unchanged
    saved.write_text(f"{stamp}\nav=from-the-file", encoding="utf-8")
    assert audio_encoder_versions(tmp_path) == "av=from-the-file"
    # a different stamp (another install) reads the versions again
    saved.write_text("other\nav=stale", encoding="utf-8")
    assert audio_encoder_versions(tmp_path) == versions
