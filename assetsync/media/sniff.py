"""Media facts: file types sniffed from content, and the per-channel checks `plan` shows.

Pure except `channel_warnings`, which reads the first bytes of each file to sniff its type.
Accepted types come from shared/reference/media.md (Twilio's accepted MIME types page,
WhatsApp media guidance and the `<Play>` docs).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from assetsync.frozen import frozen
from assetsync.media.channels import rule_for
from assetsync.media.options import (
    MMS_MAX_BYTES,
    WHATSAPP_IMAGE_MAX_BYTES,
    WHATSAPP_MEDIA_MAX_BYTES,
    OptimizeOptions,
    Profile,
)
from assetsync.models import PublishedFile
from assetsync.prepare.classify import Issue

__all__ = [
    "AUDIO_DECODABLE",
    "AUDIO_EXTENSIONS",
    "AUDIO_MIMES",
    "DECODABLE",
    "AudioInfo",
    "MediaType",
    "channel_warnings",
    "sniff",
]


# ---------------------------------------------------------------------------------------------
# content sniffing


@frozen
class MediaType:
    """A file type found from its first bytes: `kind` ("jpeg", "png", ...) and its MIME type."""

    kind: str
    mime: str

    @property
    def is_image(self) -> bool:
        """True for image types."""
        return self.mime.startswith("image/")

    @property
    def is_audio(self) -> bool:
        """True for the audio types the audio recipes decode."""
        return self.kind in AUDIO_DECODABLE


@frozen
class AudioInfo:
    """What an audio file holds, for `plan` and `optimize --report`: container format ("WAV",
    "MP3", ...), codec (FFmpeg's name), sample rate, channels, duration."""

    format: str
    codec: str
    rate: int
    channels: int
    seconds: float

    def describe(self) -> str:
        """E.g. "WAV 16-bit PCM 44.1 kHz stereo 20.0 s", "WAV µ-law 8 kHz mono 18.6 s"."""
        layout = {1: "mono", 2: "stereo"}.get(self.channels, f"{self.channels} ch")
        codec = _CODEC_LABELS.get(self.codec, self.codec)
        name = f"{self.format} {codec}" if codec and codec.upper() != self.format else \
            self.format
        return f"{name} {self.rate / 1000:g} kHz {layout} {self.seconds:.1f} s"


_CODEC_LABELS = {"pcm_s16le": "16-bit PCM", "pcm_s16be": "16-bit PCM", "pcm_s24le": "24-bit PCM",
                 "pcm_s24be": "24-bit PCM", "pcm_s32le": "32-bit PCM", "pcm_u8": "8-bit PCM",
                 "pcm_f32le": "float PCM", "pcm_f32be": "float PCM", "pcm_f64le": "float PCM",
                 "pcm_mulaw": "µ-law", "pcm_alaw": "A-law", "opus": "Opus",
                 "vorbis": "Vorbis", "aac": "AAC", "flac": "", "mp3": ""}


# What the audio recipes publish: file extension and Content-Type per output kind.
AUDIO_EXTENSIONS = {"wav": "wav", "mp3": "mp3", "ogg-opus": "ogg", "ogg": "ogg", "m4a": "m4a",
                    "amr": "amr", "aac": "aac"}
AUDIO_MIMES = {"wav": "audio/wav", "mp3": "audio/mpeg", "ogg-opus": "audio/ogg",
               "ogg": "audio/ogg", "m4a": "audio/mp4", "amr": "audio/amr", "aac": "audio/aac"}
# Audio decoded by content with FFmpeg's libraries (assetsync.media.audio).
AUDIO_DECODABLE = frozenset({"wav", "aiff", "mp3", "flac", "ogg", "ogg-opus", "m4a", "aac",
                             "amr"})


_ISO_BRANDS = {
    b"avif": ("avif", "image/avif"), b"avis": ("avif", "image/avif"),
    b"heic": ("heic", "image/heic"), b"heix": ("heic", "image/heic"),
    b"heim": ("heic", "image/heic"), b"heis": ("heic", "image/heic"),
    b"hevc": ("heic", "image/heic"), b"mif1": ("heif", "image/heif"),
    b"msf1": ("heif", "image/heif"), b"3gp4": ("3gp", "video/3gpp"),
    b"3gp5": ("3gp", "video/3gpp"), b"3gp6": ("3gp", "video/3gpp"),
    b"M4A ": ("m4a", "audio/mp4"),
}


# Signatures at offset 0 (checked in order; the first match wins).
_PREFIXES: tuple[tuple[bytes, str, str], ...] = (
    (b"\xff\xd8\xff", "jpeg", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png", "image/png"),
    (b"GIF87a", "gif", "image/gif"),
    (b"GIF89a", "gif", "image/gif"),
    (b"II*\x00", "tiff", "image/tiff"),
    (b"MM\x00*", "tiff", "image/tiff"),
    (b"ID3", "mp3", "audio/mpeg"),
    (b"\xff\xf1", "aac", "audio/aac"),
    (b"\xff\xf9", "aac", "audio/aac"),
    (b"#!AMR", "amr", "audio/amr"),
    (b"fLaC", "flac", "audio/flac"),
    (b"%PDF-", "pdf", "application/pdf"),
)
# RIFF / IFF containers: (container at 0, form type at 8) -> type.
_FORMS = {
    (b"RIFF", b"WEBP"): ("webp", "image/webp"),
    (b"RIFF", b"WAVE"): ("wav", "audio/wav"),
    (b"FORM", b"AIFF"): ("aiff", "audio/aiff"),
    (b"FORM", b"AIFC"): ("aiff", "audio/aiff"),
}


def sniff(head: bytes) -> MediaType | None:
    """The type of a file from its first bytes (64 are enough), or None when unknown.

    Only content counts, never the name: a HEIC photo saved as `photo.jpg` is HEIC.
    """
    for prefix, kind, mime in _PREFIXES:
        if head.startswith(prefix):
            return MediaType(kind, mime)
    form = _FORMS.get((head[:4], head[8:12]))
    if form is not None:
        return MediaType(*form)
    if head[4:8] == b"ftyp":
        return MediaType(*_ISO_BRANDS.get(head[8:12], ("mp4", "video/mp4")))
    if head[:2] == b"BM" and len(head) >= 14:
        return MediaType("bmp", "image/bmp")
    if head.startswith(b"OggS"):
        # The first Ogg page carries the codec's identification header (RFC 7845 §5.1).
        return MediaType("ogg-opus" if b"OpusHead" in head else "ogg", "audio/ogg")
    if len(head) > 1 and head[0] == 0xFF and head[1] & 0xE6 == 0xE2:
        return MediaType("mp3", "audio/mpeg")  # an MPEG audio frame sync without ID3
    return None


# ---------------------------------------------------------------------------------------------
# channel checks

# Meta's Cloud API audio messages page: "The play icon will only appear if the file is 512KB or
# smaller"; KB read as 10^3 B, the stricter reading.
WHATSAPP_VOICE_NOTE_PLAY_BYTES = 512_000
# Accepted types per channel (media.md §1): MMS transcodes only JPEG/PNG/GIF; WhatsApp takes
# JPEG/PNG images (WebP only as stickers), Opus-only OGG, AMR, 3GP, AAC, MPEG, MP4 and PDF;
# `<Play>` takes MPEG, WAV, AIFF, GSM and µ-law audio (twilio.com/docs/voice/twiml/play).
# Which types each channel accepts comes from the one sourced table, `media/channels.py`.
_MMS_IMAGES = frozenset({"jpeg", "png", "gif"})
_VOICE_MIMES = frozenset({"audio/x-gsm", "audio/gsm", "audio/ulaw", "audio/basic"})
# Formats Pillow decodes, so a variant profile converts them instead of warning.
DECODABLE = frozenset({"jpeg", "png", "gif", "webp", "bmp", "tiff", "avif"})


def channel_warnings(
    files: Sequence[PublishedFile],
    options: OptimizeOptions,
    *,
    sniffed: Callable[[PublishedFile], MediaType | None] | None = None,
) -> tuple[Issue, ...]:
    """Warnings for files a channel profile covers whose type or size that channel rejects.

    A decodable image under a profile that makes variants, and audio under an mms or whatsapp
    profile that makes variants, are not warned about (the variant is what the channel gets);
    variants themselves are checked against their own profile.

    Args:
        files: the files to publish (variants included).
        options: the `[optimize]` options (their profiles).
        sniffed: a file's type, when the caller knows it already (the transform stage caches
            types by digest); default: read its first bytes.
    """
    if not any(p.channel for p in options.profiles):
        return ()
    type_of = sniffed or _sniff_file
    by_name = {p.name: p for p in options.profiles}
    issues: list[Issue] = []
    for file in files:
        profiles = _channel_profiles(file, options, by_name)
        if not profiles:
            continue
        media = type_of(file)
        for profile in profiles:
            if _variant_stands_in(file, profile, media):
                continue
            problem = _channel_problem(profile.channel or "", media, file)
            if problem:
                where = f"variant {file.path}: " if file.variant is not None else ""
                issues.append(Issue(file.source, f"{where}{problem} (profile {profile.name!r})",
                                    "warning"))
    return tuple(issues)


def _channel_profiles(file: PublishedFile, options: OptimizeOptions,
                      by_name: Mapping[str, Profile]) -> tuple[Profile, ...]:
    """The profiles with a channel that judge `file`: a variant's own, else those covering it."""
    if file.variant is not None:
        profiles: tuple[Profile, ...] = tuple(
            p for p in (by_name.get(file.variant),) if p is not None)
    else:
        profiles = options.profiles_for(file.source)
    return tuple(p for p in profiles if p.channel)


def _variant_stands_in(file: PublishedFile, profile: Profile, media: MediaType | None) -> bool:
    """True when the profile makes a variant of this original, so the variant (checked on its
    own) is what the channel gets: a decodable image, or audio for mms / a WhatsApp voice note."""
    if file.variant is not None or not profile.variant or media is None:
        return False
    if media.kind in DECODABLE:
        return True
    return media.is_audio and (profile.channel == "mms" or (
        profile.channel == "whatsapp" and profile.audio.voice_note))


def _sniff_file(file: PublishedFile) -> MediaType | None:
    try:
        with open(file.content_path, "rb") as handle:
            return sniff(handle.read(64))
    except OSError:
        return None


def _size_mb(file: PublishedFile) -> str:
    return f"{file.size / 1e6:.1f} MB"


def _mms_problem(media: MediaType | None, file: PublishedFile) -> str | None:
    kind = media.kind if media else None
    if media and media.is_image and kind not in _MMS_IMAGES:
        return (f"{media.kind.upper()} is not transcoded by Twilio for MMS; "
                "publish JPEG, PNG or GIF (an mms profile converts decodable images)")
    if media and media.is_audio and not rule_for("mms").accepts(media.mime):
        return (f"Twilio does not list {media.mime} among the media types MMS accepts; "
                "publish MP3, M4A, AMR or OGG (an mms profile with variants converts it)")
    if kind not in _MMS_IMAGES and file.size > MMS_MAX_BYTES:
        return f"{_size_mb(file)} is over the 600 KB that every US carrier accepts for MMS media"
    if file.size > 5_000_000:
        return f"{_size_mb(file)} is over MMS's 5 MB per message"
    return None


def _whatsapp_problem(media: MediaType | None, file: PublishedFile) -> str | None:
    kind = media.kind if media else None
    if kind == "ogg":
        return "WhatsApp accepts OGG audio only with the Opus codec; re-encode it as Opus"
    if kind == "webp":
        return "WhatsApp takes WebP only as stickers; publish JPEG or PNG"
    if media is not None and not rule_for("whatsapp").accepts(media.mime):
        return f"WhatsApp does not accept {media.mime}"
    if media and media.is_image and file.size > WHATSAPP_IMAGE_MAX_BYTES:
        return f"{_size_mb(file)} is over WhatsApp's 5 MB image limit"
    if file.size > WHATSAPP_MEDIA_MAX_BYTES:
        return f"{_size_mb(file)} is over WhatsApp's 16 MB media limit"
    if kind == "ogg-opus" and file.size > WHATSAPP_VOICE_NOTE_PLAY_BYTES:
        return (f"{file.size / 1e3:.0f} KB: WhatsApp shows a voice note over 512 KB with a "
                "download icon instead of play; shorten it or lower opus_bitrate")
    return None


def _voice_problem(media: MediaType | None, file: PublishedFile) -> str | None:
    if media is not None and rule_for("play").accepts(media.mime):
        if not rule_for("play").accepts(file.content_type):
            return (f"served as {file.content_type}; <Play> needs an audio Content-Type "
                    "(Twilio error 13420): give it an audio extension")
        return None
    if file.content_type in _VOICE_MIMES:
        return None
    if media is None or not media.mime.startswith("audio/"):
        # The name may say audio (`x.wav`) while the bytes are not: say what they are.
        found = f"it was sniffed as {media.mime}" if media else "its type was not recognised"
        return (f"the content is not audio ({found}); <Play> plays MP3 or WAV "
                "(Twilio error 13420): publish an audio file at this path")
    return f"<Play> cannot play {media.mime}; publish MP3 or WAV (Twilio error 13420)"


def _web_problem(media: MediaType | None, file: PublishedFile) -> str | None:
    if media is not None and media.kind in ("heic", "heif", "tiff"):
        return (f"most browsers cannot show {media.kind.upper()}; "
                "publish JPEG, PNG, WebP or AVIF")
    return None


_PROBLEMS: Mapping[str, Callable[[MediaType | None, PublishedFile], str | None]] = {
    "mms": _mms_problem, "whatsapp": _whatsapp_problem, "voice": _voice_problem,
    "web": _web_problem,
}


def _channel_problem(channel: str, media: MediaType | None, file: PublishedFile) -> str | None:
    check = _PROBLEMS.get(channel)
    return check(media, file) if check is not None else None
