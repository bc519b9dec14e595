"""The `[optimize]` options and channel profiles (pure): parsing, defaults, derived paths.

Channel limits come from shared/reference/media.md (Twilio's accepted MIME types page, the MMS
carrier limits article, WhatsApp media guidance).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any, NoReturn, cast

from assetsync.errors import ConfigError
from assetsync.frozen import field, frozen, replace
from assetsync.media.audio_options import AUDIO_KEYS, AudioSettings, parse_audio_settings
from assetsync.scan.globs import compile_glob_set, validate_glob

__all__ = [
    "BUILTIN_PROFILES",
    "MMS_MAX_BYTES",
    "WHATSAPP_IMAGE_MAX_BYTES",
    "WHATSAPP_MEDIA_MAX_BYTES",
    "AudioSettings",
    "OptimizeOptions",
    "Profile",
    "parse_optimize_section",
    "profile_warnings",
    "variant_path",
]

# Twilio asks for media at most 600 KB for MMS ("the only size safe for every US carrier and
# sender type"; support article 360018832773, Telnyx's transcoding table). KB read as 10^3 B,
# the stricter reading.
MMS_MAX_BYTES = 600_000
# WhatsApp: images at most 5 MB, anything at most 16 MB (twilio.com/docs/whatsapp/
# guidance-whatsapp-media-messages).
WHATSAPP_IMAGE_MAX_BYTES = 5_000_000
WHATSAPP_MEDIA_MAX_BYTES = 16_000_000
# Pillow's own default (Image.MAX_IMAGE_PIXELS, ~0.25 GB at 24 bit): a 48 MP photo fits.
DEFAULT_MAX_PIXELS = 89_478_485
# Refuse to decode inputs above this many bytes at all (Pillow's security handbook advises a
# byte cap before decoding); Twilio's own per-asset cap is 25 MB, so nothing legitimate is lost.
DEFAULT_MAX_INPUT_BYTES = 50_000_000

FORMATS = ("auto", "jpeg", "png")
CHANNELS = ("mms", "whatsapp", "voice", "web")


@frozen
class Profile:
    """A channel profile: which source files it applies to and the variant it derives from them.

    Attributes:
        name: the profile's name (`[optimize.profiles.NAME]`), also the `variant` of its outputs.
        globs: source paths (relative to the source folder) the profile applies to.
        path: template of the variant's published path (see `variant_path`).
        max_bytes: byte budget every variant must fit; None for no budget.
        max_width, max_height: pixel bounds; the image is scaled down (never up) to fit them.
        format: "auto" (keep PNG for alpha, GIF for animations when the channel takes it, else
            JPEG), "jpeg" or "png".
        quality: JPEG quality tried first; the search never goes above it.
        min_quality: the quality floor; below it the image is scaled down instead.
        background: "#rrggbb" that transparent pixels are flattened onto for JPEG.
        channel: whose accepted types `channel_warnings` checks ("mms", "whatsapp", "voice",
            "web") or None.
        variant: False for a check-only profile: no derived copy is made.
        audio: how audio files the profile covers are treated (channels voice, whatsapp, mms).
            A voice profile's output replaces the original at its path (`path` "" keeps the
            original's path; a template moves it).
    """

    name: str
    globs: tuple[str, ...] = ()
    path: str = "/{profile}/{path}"
    max_bytes: int | None = None
    max_width: int | None = None
    max_height: int | None = None
    format: str = "auto"
    quality: int = 82
    min_quality: int = 60
    background: str = "#ffffff"
    channel: str | None = None
    variant: bool = True
    audio: AudioSettings = field(default_factory=AudioSettings)


BUILTIN_PROFILES: Mapping[str, Profile] = {
    # 1600 px long edge is our choice (media.md §1.1): Twilio publishes no pixel limit, and a
    # 12 MP photo at 1600 px has ~5.7x fewer pixels, so the budget is met at a high quality.
    "mms": Profile(
        name="mms", max_bytes=MMS_MAX_BYTES, max_width=1600, max_height=1600,
        quality=82, min_quality=60, channel="mms",
    ),
    "whatsapp": Profile(
        name="whatsapp", max_bytes=WHATSAPP_IMAGE_MAX_BYTES, max_width=4096, max_height=4096,
        quality=85, min_quality=60, channel="whatsapp",
    ),
    # In place: TwiML saying <Play>/voice/welcome.wav</Play> keeps working.
    "voice": Profile(name="voice", path="", channel="voice"),
}


@frozen
class OptimizeOptions:
    """What the transform stage does, from `[optimize]`; every default lives here.

    Attributes:
        lossless: run the lossless pass over JPEG, PNG and GIF sources.
        keep_metadata: keep EXIF/XMP/comments (by default only orientation and ICC survive).
        strict: an image that cannot be decoded or optimized is an error, not a warning.
        gif_to_png: publish a static GIF's pixels as PNG when that is smaller.
        exclude: globs of source files the transform stage leaves untouched.
        effort: oxipng optimisation level for PNG (0-6); higher is smaller and slower.
        max_pixels: images with more pixels are refused as decompression bombs.
        max_input_bytes: larger files are never decoded.
        profiles: the active profiles (those with globs), sorted by name.
    """

    lossless: bool = True
    keep_metadata: bool = False
    strict: bool = False
    gif_to_png: bool = True
    exclude: tuple[str, ...] = ()
    effort: int = 2
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES
    profiles: tuple[Profile, ...] = field(default=())

    def profiles_for(self, source: str) -> tuple[Profile, ...]:
        """The active profiles whose globs match the source path `source`."""
        return tuple(p for p in self.profiles if compile_glob_set(p.globs).match(source))

    def excluded(self, source: str) -> bool:
        """True when `source` matches an `exclude` glob."""
        return compile_glob_set(self.exclude).match(source)


# ---------------------------------------------------------------------------------------------
# [optimize] parsing

_TOP_KEYS: Mapping[str, type | tuple[type, ...]] = {
    "lossless": bool, "keep_metadata": bool, "strict": bool, "gif_to_png": bool,
    "exclude": list, "effort": int, "max_pixels": int, "max_input_bytes": int,
    "profiles": dict,
}
_PROFILE_KEYS: Mapping[str, type | tuple[type, ...]] = {
    "globs": list, "path": str, "max_bytes": int, "max_width": int, "max_height": int,
    "format": str, "quality": int, "min_quality": int, "background": str, "channel": str,
    "variant": bool,
    # audio keys: types and ranges are checked by assetsync.media.audio_options
    **{key: object for key in AUDIO_KEYS},
}
_TEMPLATE_FIELDS = frozenset({"profile", "path", "dir", "stem", "ext", "name"})
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_COLOUR_RE = re.compile(r"^#[0-9A-Fa-f]{6}$")


def parse_optimize_section(table: Mapping[str, object], *, file: str) -> OptimizeOptions:
    """Build `OptimizeOptions` from the `[optimize]` table of a config file.

    Args:
        table: the parsed TOML table (may be empty).
        file: the config file's name, for error messages.

    Raises:
        ConfigError: an unknown key, a value of the wrong type or out of range; the message
            names `[optimize] <key>` and the file.
    """
    for key, value in table.items():
        _check_type(f"[optimize] {key}", value, _TOP_KEYS.get(key), file)
    base = OptimizeOptions()
    exclude = _str_list(table.get("exclude", []), "[optimize] exclude", file)
    effort = _int_range(table.get("effort", base.effort), 0, 6, "[optimize] effort", file)
    max_pixels = _int_range(table.get("max_pixels", base.max_pixels), 1, 2**40,
                            "[optimize] max_pixels", file)
    max_input = _int_range(table.get("max_input_bytes", base.max_input_bytes), 1, 2**40,
                           "[optimize] max_input_bytes", file)
    raw_profiles = table.get("profiles", {})
    assert isinstance(raw_profiles, Mapping)
    profiles = []
    for name in sorted(raw_profiles):
        body = raw_profiles[name]
        key = f"[optimize.profiles.{name}]"
        if not _NAME_RE.match(name):
            _fail("profile names use letters, digits, '-' and '_'", key, file)
        if not isinstance(body, Mapping):
            _fail("must be a table", key, file)
        profiles.append(_parse_profile(name, body, file))
    return OptimizeOptions(
        lossless=bool(table.get("lossless", base.lossless)),
        keep_metadata=bool(table.get("keep_metadata", base.keep_metadata)),
        strict=bool(table.get("strict", base.strict)),
        gif_to_png=bool(table.get("gif_to_png", base.gif_to_png)),
        exclude=exclude,
        effort=effort,
        max_pixels=max_pixels,
        max_input_bytes=max_input,
        profiles=tuple(profiles),
    )


def profile_warnings(options: OptimizeOptions, *, file: str) -> tuple[str, ...]:
    """One line per profile whose name is no channel and that sets no `channel`: most often a
    misspelling (`[optimize.profiles.voices]`), which would otherwise pass silently as a
    generic image profile with no channel rules."""
    out = []
    for profile in options.profiles:
        if profile.channel is None and profile.name not in CHANNELS:
            import difflib  # only when there is something to warn about

            near = difflib.get_close_matches(profile.name, CHANNELS, n=1)
            hint = f'did you mean [optimize.profiles.{near[0]}]? ' if near else ""
            out.append(f"{file}: [optimize.profiles.{profile.name}]: {profile.name!r} is not "
                       f"a channel ({', '.join(CHANNELS)}) and sets no channel, so no channel "
                       f'rules apply; {hint}or add channel = "..." to the profile')
    return tuple(out)


def _parse_profile(name: str, body: Mapping[str, object], file: str) -> Profile:
    prefix = f"[optimize.profiles.{name}]"
    for key, value in body.items():
        _check_type(f"{prefix} {key}", value, _PROFILE_KEYS.get(key), file)
    base = BUILTIN_PROFILES.get(name, Profile(name=name))
    globs = _str_list(body.get("globs", []), f"{prefix} globs", file)
    if not globs:
        _fail("list the source files this profile applies to, "
              'e.g. globs = ["photos/**"]', f"{prefix} globs", file)
    changes: dict[str, object] = {"globs": globs}
    for key in ("max_bytes", "max_width", "max_height"):
        if key in body:
            changes[key] = _int_range(body[key], 1, 2**40, f"{prefix} {key}", file)
    for key, low, high in (("quality", 1, 95), ("min_quality", 1, 95)):
        if key in body:
            changes[key] = _int_range(body[key], low, high, f"{prefix} {key}", file)
    for key, choices in (("format", FORMATS), ("channel", CHANNELS)):
        if key in body:
            value = str(body[key]).lower()
            if value not in choices:
                _fail(f"{body[key]!r}: use one of {', '.join(choices)}",
                      f"{prefix} {key}", file)
            changes[key] = value
    if "background" in body:
        if not _COLOUR_RE.match(str(body["background"])):
            _fail(f'{body["background"]!r}: use "#rrggbb"',
                  f"{prefix} background", file)
        changes["background"] = str(body["background"]).lower()
    if "path" in body:
        changes["path"] = _check_template(str(body["path"]), f"{prefix} path", file)
    if "variant" in body:
        changes["variant"] = bool(body["variant"])
    channel = changes.get("channel", base.channel)
    if channel == "voice" and "path" not in body:
        changes["path"] = ""  # a voice profile's output replaces the original in place
    changes["audio"] = parse_audio_settings(body, channel=channel if isinstance(channel, str)
                                            else None, prefix=prefix, file=file,
                                            base=base.audio)
    # Each value was checked against its field's type above.
    profile = replace(base, **cast("dict[str, Any]", changes))
    if profile.min_quality > profile.quality:
        _fail(f"{profile.min_quality} is above quality "
              f"({profile.quality}): lower min_quality", f"{prefix} min_quality", file)
    return profile


def _check_template(template: str, key: str, file: str) -> str:
    if not template.startswith("/"):
        _fail(f"{template!r}: a published path template starts with '/'", key, file)
    used = set(re.findall(r"\{([^{}]*)\}", template))
    unknown = used - _TEMPLATE_FIELDS
    if unknown:
        _fail(f"{template!r}: unknown placeholder {{{min(unknown)}}}; use "
              f"{', '.join('{' + f + '}' for f in sorted(_TEMPLATE_FIELDS))}", key, file)
    if not used & {"path", "name", "stem"}:
        _fail(f"{template!r}: include {{path}}, {{name}} or {{stem}} so variants of "
              "different files get different paths", key, file)
    return template


def _check_type(key: str, value: object, expected: type | tuple[type, ...] | None,
                file: str) -> None:
    if expected is None:
        _fail("unknown key; check the spelling (see docs/media.md)", key, file)
    # bool is an int subclass in Python; `effort = true` must not pass as 1.
    if (expected is int and isinstance(value, bool)) or not isinstance(value, expected):
        names: dict[object, str] = {bool: "true or false", int: "an integer", str: "a string",
                                    list: "a list", dict: "a table"}
        _fail(f"must be {names.get(expected, 'valid')} (got {value!r})", key, file)


def _str_list(value: object, key: str, file: str) -> tuple[str, ...]:
    assert isinstance(value, list)
    if not all(isinstance(item, str) for item in value):
        _fail("must be a list of glob strings", key, file)
    for item in value:
        problem = validate_glob(item)
        if problem:
            _fail(f"{item!r}: {problem}", key, file)
    return tuple(value)


def _int_range(value: object, low: int, high: int, key: str, file: str) -> int:
    assert isinstance(value, int)
    if not low <= value <= high:
        _fail(f"{value} is out of range; use {low}..{high}", key, file)
    return value


def _fail(problem: str, key: str, file: str) -> NoReturn:
    # The config module's format: "<file>: <key>: <problem>".
    raise ConfigError(f"{file}: {key}: {problem}", key=key, file=file)


# ---------------------------------------------------------------------------------------------
# derived paths


def variant_path(template: str, *, profile: str, published: str, ext: str) -> str:
    """The published path of a variant.

    Placeholders: `{profile}`; `{path}` (the original's published path without its leading
    slash, extension replaced by `ext`); `{dir}` (its folder, empty at the top); `{stem}`;
    `{ext}` (without the dot); `{name}` (`{stem}.{ext}`). Repeated slashes collapse.

    >>> variant_path("/{profile}/{path}", profile="mms", published="/img/a.png", ext="jpg")
    '/mms/img/a.jpg'
    """
    pure = PurePosixPath(published.lstrip("/"))
    folder = "" if str(pure.parent) == "." else str(pure.parent)
    name = f"{pure.stem}.{ext}"
    path = f"{folder}/{name}" if folder else name
    rendered = template.format(profile=profile, path=path, dir=folder, stem=pure.stem,
                               ext=ext, name=name)
    return re.sub(r"/{2,}", "/", rendered)
