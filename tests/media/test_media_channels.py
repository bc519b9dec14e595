"""Content sniffing, derived variant paths, and the per-channel checks `plan` shows."""

from __future__ import annotations

from pathlib import Path

import pytest

from assetsync.media.options import parse_optimize_section, variant_path
from assetsync.media.sniff import channel_warnings, sniff
from assetsync.models import PublishedFile, Visibility
from tests.test_media_helpers import encode, photo

OGG_OPUS = b"OggS\x00\x02" + bytes(20) + b"\x01\x13OpusHead\x01\x02"
OGG_VORBIS = b"OggS\x00\x02" + bytes(20) + b"\x01\x1e\x01vorbis\x00\x00"


@pytest.mark.parametrize(
    ("head", "kind", "mime"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "jpeg", "image/jpeg"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "png", "image/png"),
        (b"GIF89a\x01\x00", "gif", "image/gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "webp", "image/webp"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00", "heic", "image/heic"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00", "avif", "image/avif"),
        (b"\x00\x00\x00\x18ftypisom\x00\x00", "mp4", "video/mp4"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "wav", "audio/wav"),
        (b"ID3\x04\x00\x00\x00\x00", "mp3", "audio/mpeg"),
        (b"\xff\xfb\x90\x00", "mp3", "audio/mpeg"),
        (OGG_OPUS, "ogg-opus", "audio/ogg"),
        (OGG_VORBIS, "ogg", "audio/ogg"),
        (b"#!AMR\n", "amr", "audio/amr"),
        (b"%PDF-1.7", "pdf", "application/pdf"),
        (b"II*\x00\x08\x00", "tiff", "image/tiff"),
    ],
)
def test_sniff_by_content(head: bytes, kind: str, mime: str) -> None:
    found = sniff(head)
    assert found is not None and (found.kind, found.mime) == (kind, mime)


def test_unknown_content_is_none() -> None:
    assert sniff(b"hello world, plain text") is None
    assert sniff(b"") is None


def test_variant_path_template() -> None:
    assert variant_path("/{profile}/{path}", profile="mms", published="/img/a.b.png",
                        ext="jpg") == "/mms/img/a.b.jpg"
    assert variant_path("/{profile}/{path}", profile="mms", published="/a.png",
                        ext="jpg") == "/mms/a.jpg"
    assert variant_path("/v/{dir}/{stem}@small.{ext}", profile="x", published="/top.gif",
                        ext="png") == "/v/top@small.png"
    assert variant_path("/{name}", profile="x", published="/d/e/f.webp", ext="jpg") == "/f.jpg"


def _file(tmp_path: Path, rel: str, data: bytes, content_type: str,
          variant: str | None = None, size: int | None = None) -> PublishedFile:
    path = tmp_path / rel.replace("/", "_")
    path.write_bytes(data)
    return PublishedFile(f"/{rel}", Visibility.PUBLIC, "xxh3_128:" + "0" * 32,
                         size if size is not None else len(data), rel, str(path), content_type, variant)


def test_channel_checks_flag_what_each_channel_rejects(tmp_path: Path) -> None:
    options = parse_optimize_section({"profiles": {
        "mms": {"globs": ["mms/**"], "variant": False},
        "whatsapp": {"globs": ["wa/**"], "variant": False},
        "voice": {"globs": ["voice/**"]},
    }}, file="t.toml")
    heic = b"\x00\x00\x00\x18ftypheic" + bytes(20)
    webp = encode(photo(16, 16), "WEBP")
    files = [
        _file(tmp_path, "mms/photo.jpg", heic, "image/jpeg"),  # a HEIC named .jpg
        _file(tmp_path, "mms/ok.png", encode(photo(16, 16), "PNG"), "image/png"),
        _file(tmp_path, "mms/clip.mp4", b"\x00\x00\x00\x18ftypisom", "video/mp4",
              size=2_000_000),
        _file(tmp_path, "wa/sticker.webp", webp, "image/webp"),
        _file(tmp_path, "wa/voice.ogg", OGG_VORBIS, "audio/ogg"),
        _file(tmp_path, "wa/opus.ogg", OGG_OPUS, "audio/ogg"),
        _file(tmp_path, "voice/hello.mp3", b"ID3\x04" + bytes(20), "audio/mpeg"),
        _file(tmp_path, "voice/hello.ogg", OGG_OPUS, "audio/ogg"),
        _file(tmp_path, "voice/prompt.bin", b"ID3\x04" + bytes(20), "application/octet-stream"),
        _file(tmp_path, "elsewhere/x.webp", webp, "image/webp"),
    ]
    warned = {issue.path: issue for issue in channel_warnings(files, options)}
    assert set(warned) == {"mms/photo.jpg", "mms/clip.mp4", "wa/sticker.webp", "wa/voice.ogg",
                           "voice/hello.ogg", "voice/prompt.bin"}
    assert "HEIC" in warned["mms/photo.jpg"].message
    assert "600 KB" in warned["mms/clip.mp4"].message
    assert "Opus" in warned["wa/voice.ogg"].message
    assert "<Play>" in warned["voice/hello.ogg"].message
    assert "13420" in warned["voice/prompt.bin"].message
    assert all(issue.severity == "warning" for issue in warned.values())
    assert all("'" in issue.message for issue in warned.values())  # names the profile


def test_images_a_variant_profile_converts_are_not_warned_about(tmp_path: Path) -> None:
    options = parse_optimize_section({"profiles": {"mms": {"globs": ["**"]}}}, file="t.toml")
    webp = _file(tmp_path, "a.webp", encode(photo(16, 16), "WEBP"), "image/webp")
    heic = _file(tmp_path, "b.heic", b"\x00\x00\x00\x18ftypheic" + bytes(20), "image/heic")
    variant = _file(tmp_path, "mms/a.jpg", b"\x00\x00\x00\x18ftypheic", "image/jpeg",
                    variant="mms")
    issues = channel_warnings([webp, heic, variant], options)
    # HEIC cannot be decoded here, so no variant can stand in for it; a variant is re-checked.
    assert sorted(i.path for i in issues) == ["b.heic", "mms/a.jpg"]
    assert any("variant /mms/a.jpg" in i.message for i in issues)


def test_a_voice_file_that_is_not_audio_says_what_it_is(tmp_path: Path) -> None:
    options = parse_optimize_section({"profiles": {"voice": {"globs": ["voice/**"]}}},
                                     file="t.toml")
    files = [
        _file(tmp_path, "voice/menu.wav", b"%PDF-1.7\n" + bytes(40), "audio/wav"),
        _file(tmp_path, "voice/note.wav", b"just some text, not a recording\n", "audio/wav"),
    ]
    warned = {issue.path: issue.message for issue in channel_warnings(files, options)}
    assert warned["voice/menu.wav"].startswith("the content is not audio (it was sniffed as "
                                               "application/pdf)")
    assert warned["voice/note.wav"].startswith("the content is not audio (its type was not "
                                               "recognised)")
    # Not the old contradiction: "<Play> cannot play audio/wav content; publish MP3 or WAV".
    assert not any("cannot play audio/wav" in m for m in warned.values())
