"""The channel rules a published file must meet where it is used: one table, each row sourced.

Pure data, by MIME type. `check` looks up a reference's use (`<Play>`, messaging media) here and
the media stage's channel checks (`media/sniff.py`) judge a sniffed file by the same rows; sizes
are bytes. Sources (read 2026-12; the same facts as ../shared/reference/media.md):
- [PLAY] TwiML <Play> docs, "Supported audio file types":
  https://www.twilio.com/docs/voice/twiml/play — a wrong Content-Type is error 13420.
- [MMS] "Accepted content types for media", https://www.twilio.com/docs/messaging/guides/
  accepted-mime-types — 5 MB per message; jpeg/png/gif are transcoded for the handset, other
  types are passed on as they are (carriers: 600 KB is the safe size for those).
- [WA] WhatsApp media guidance, https://www.twilio.com/docs/whatsapp/guidance-whatsapp-media-
  messages — images JPEG/PNG up to 5 MB; audio, video and documents up to 16 MB.
"""

from __future__ import annotations

from assetsync.frozen import frozen

__all__ = ["CHANNELS", "ChannelRule", "rule_for"]

MB = 1024 * 1024


@frozen
class ChannelRule:
    """What one channel accepts: content types, a hard size cap, a soft one, and the source."""

    channel: str
    types: frozenset[str]
    max_bytes: int | None
    soft_bytes: int | None
    source: str
    checked: str  # the date the source was read

    def accepts(self, content_type: str) -> bool:
        """Whether `content_type` (parameters ignored) is one this channel takes."""
        return content_type.split(";")[0].strip().lower() in self.types


_PLAY_TYPES = frozenset({
    "audio/mpeg", "audio/wav", "audio/wave", "audio/x-wav", "audio/aiff", "audio/x-aifc",
    "audio/x-aiff", "audio/x-gsm", "audio/gsm", "audio/ulaw",
})
# The page lists audio/vnd.wave but not audio/wav, AIFF or FLAC.
_MMS_TYPES = frozenset({
    "image/jpeg", "image/jpg", "image/gif", "image/png", "image/bmp", "image/tiff",
    "image/heic", "image/heif", "image/webp", "audio/basic", "audio/l24", "audio/mp4",
    "audio/mpeg", "audio/ogg", "audio/vnd.wave", "audio/webm", "audio/3gpp", "audio/ac3",
    "audio/aac", "audio/amr", "video/mpeg", "video/mp4", "video/quicktime", "video/webm",
    "video/3gpp", "video/3gpp2", "video/h264", "text/vcard", "text/x-vcard", "text/csv",
    "text/rtf", "text/richtext", "text/calendar", "text/directory", "application/pdf",
})
_WHATSAPP_TYPES = frozenset({
    "image/jpeg", "image/png", "audio/ogg", "audio/amr", "audio/3gpp", "audio/aac",
    "audio/mpeg", "audio/mp4", "video/mp4", "video/3gpp", "application/pdf",
    "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
})

CHANNELS: dict[str, ChannelRule] = {
    "play": ChannelRule("play", _PLAY_TYPES, None, None, "[PLAY] TwiML <Play>", "2026-12-07"),
    "mms": ChannelRule("mms", _MMS_TYPES, 5 * MB, 600 * 1000, "[MMS] accepted MIME types",
                       "2026-12-07"),
    "whatsapp": ChannelRule("whatsapp", _WHATSAPP_TYPES, 16 * MB, None,
                            "[WA] WhatsApp media guidance", "2026-12-07"),
}

# Twilio transcodes these for MMS, so the soft (carrier) size does not apply to them [MMS].
MMS_TRANSCODED = frozenset({"image/jpeg", "image/jpg", "image/gif", "image/png"})
# WhatsApp's own, lower cap for images [WA].
WHATSAPP_IMAGE_MAX = 5 * MB


def rule_for(channel: str) -> ChannelRule:
    """The rule of `channel` ("play", "mms" or "whatsapp")."""
    return CHANNELS[channel]
