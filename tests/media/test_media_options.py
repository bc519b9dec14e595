"""`[optimize]` parsing: defaults, profiles, and one clear error per bad key."""

from __future__ import annotations

import pytest

from assetsync.errors import ConfigError
from assetsync.media.options import BUILTIN_PROFILES, OptimizeOptions, parse_optimize_section


def test_empty_table_gives_the_documented_defaults() -> None:
    options = parse_optimize_section({}, file="a.toml")
    assert options == OptimizeOptions()
    assert options.lossless and not options.keep_metadata and not options.strict
    assert options.profiles == ()
    assert set(BUILTIN_PROFILES) >= {"mms", "whatsapp"}


def test_builtin_profile_is_activated_by_globs_and_keeps_its_limits() -> None:
    options = parse_optimize_section(
        {"profiles": {"mms": {"globs": ["photos/**"]}, "whatsapp": {"globs": ["*.png"],
                                                                    "max_bytes": 1_000_000}}},
        file="a.toml",
    )
    mms, whatsapp = options.profiles
    assert (mms.name, mms.max_bytes, mms.max_width, mms.channel) == ("mms", 600_000, 1600, "mms")
    assert whatsapp.max_bytes == 1_000_000 and whatsapp.channel == "whatsapp"
    assert options.profiles_for("photos/2024/a.jpg") == (mms,)
    assert options.profiles_for("icons/a.png") == (whatsapp,)
    assert options.profiles_for("photos/a.png") == (mms, whatsapp)
    assert options.profiles_for("other/a.jpg") == ()


def test_user_profile_takes_every_documented_key() -> None:
    options = parse_optimize_section(
        {
            "keep_metadata": True, "strict": True, "exclude": ["raw/**"], "effort": 2,
            "profiles": {"thumbs": {
                "globs": ["**/*.jpg"], "path": "/t/{dir}/{stem}-small.{ext}", "max_bytes": 50_000,
                "max_width": 320, "max_height": 240, "format": "JPEG", "quality": 80,
                "min_quality": 50, "background": "#FF0000", "channel": "web", "variant": True,
            }},
        },
        file="a.toml",
    )
    (thumbs,) = options.profiles
    assert options.keep_metadata and options.strict and options.effort == 2
    assert options.excluded("raw/a/b.png") and not options.excluded("rawx/b.png")
    assert thumbs.format == "jpeg" and thumbs.background == "#ff0000"
    assert (thumbs.max_width, thumbs.max_height, thumbs.min_quality) == (320, 240, 50)


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"bogus": 1}, "[optimize] bogus"),
        ({"lossless": "yes"}, "[optimize] lossless"),
        ({"effort": True}, "[optimize] effort"),
        ({"effort": 9}, "[optimize] effort"),
        ({"exclude": "raw/**"}, "[optimize] exclude"),
        ({"profiles": {"mms": {}}}, "[optimize.profiles.mms] globs"),
        ({"profiles": {"x": {"globs": ["a"], "colour": 1}}}, "[optimize.profiles.x] colour"),
        ({"profiles": {"x": {"globs": ["a"], "format": "bmp"}}}, "[optimize.profiles.x] format"),
        ({"profiles": {"x": {"globs": ["a"], "path": "x/{path}"}}}, "[optimize.profiles.x] path"),
        ({"profiles": {"x": {"globs": ["a"], "path": "/x/{bad}"}}}, "[optimize.profiles.x] path"),
        ({"profiles": {"x": {"globs": ["a"], "path": "/x/"}}}, "[optimize.profiles.x] path"),
        ({"profiles": {"x": {"globs": ["a"], "background": "white"}}},
         "[optimize.profiles.x] background"),
        ({"profiles": {"x": {"globs": ["a"], "quality": 70, "min_quality": 80}}},
         "[optimize.profiles.x] min_quality"),
        ({"profiles": {"x": {"globs": ["a"], "max_bytes": 0}}}, "[optimize.profiles.x] max_bytes"),
        ({"profiles": {"x y": {"globs": ["a"]}}}, "[optimize.profiles.x y]"),
        ({"profiles": {"x": 3}}, "[optimize.profiles.x]"),
    ],
)
def test_bad_key_names_the_key_and_the_file(table: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_optimize_section(table, file="site/.assetsync.toml")
    assert info.value.key == key
    assert info.value.file == "site/.assetsync.toml"
    message = str(info.value)
    assert message.startswith(f"site/.assetsync.toml: {key}: ")
    assert "\n" not in message
