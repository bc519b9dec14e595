"""Channel variants: budgets met, orientation applied, alpha handled, bad input refused."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from assetsync.errors import LimitError, TransformError
from assetsync.frozen import replace
from assetsync.media.options import BUILTIN_PROFILES, Profile
from assetsync.media.variants import make_variant
from tests.test_media_helpers import (
    ORIENTATION,
    animated_gif,
    decode,
    encode,
    graphic_rgba,
    jpeg_with_secrets,
    noise,
    oriented_jpeg,
    photo,
    rgb_at,
)

MMS = BUILTIN_PROFILES["mms"]
WHATSAPP = BUILTIN_PROFILES["whatsapp"]
PIXELS = 50_000_000


def test_mms_photo_fits_600_kb_and_1600_px_without_metadata() -> None:
    data = encode(noise(2000, 1000), "JPEG", quality=95)
    assert len(data) > MMS.max_bytes  # type: ignore[operator]
    out = make_variant(data, "jpeg", MMS, max_pixels=PIXELS)
    image = decode(out.data)
    assert out.kind == "jpeg" and image.format == "JPEG"
    assert len(out.data) <= 600_000
    assert image.width <= 1600 and image.height <= 1600
    assert not image.getexif()


def test_tight_budget_lowers_quality_then_size() -> None:
    data = encode(photo(1200, 800), "JPEG", quality=95)
    profile = replace(MMS, max_bytes=15_000, min_quality=70)
    out = make_variant(data, "jpeg", profile, max_pixels=PIXELS)
    assert len(out.data) <= 15_000
    assert decode(out.data).width < 1200  # the floor did not fit: it was scaled down
    roomy = make_variant(data, "jpeg", replace(MMS, max_bytes=2_000_000), max_pixels=PIXELS)
    assert decode(roomy.data).size == (1200, 800) and "q82" in roomy.note


def test_budget_that_cannot_be_met_names_the_best_size() -> None:
    data = encode(noise(400, 300), "PNG")
    with pytest.raises(LimitError) as info:
        make_variant(data, "png", replace(MMS, max_bytes=100, format="jpeg"), max_pixels=PIXELS)
    assert "best size reached" in str(info.value) and "'mms'" in str(info.value)
    assert info.value.limit == "max_bytes"


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_orientation_is_applied_first(orientation: int) -> None:
    data, upright = oriented_jpeg(orientation)
    out = make_variant(data, "jpeg", MMS, max_pixels=PIXELS)
    image = decode(out.data).convert("RGB")
    assert ORIENTATION not in image.getexif()
    assert image.size == upright.size
    red = rgb_at(image, (2, 2))
    assert red[0] > 200 and red[1] < 80


def test_metadata_never_reaches_a_variant() -> None:
    out = make_variant(jpeg_with_secrets(orientation=6), "jpeg", MMS, max_pixels=PIXELS)
    for secret in (b"SecretCam", b"Jane Secret", b"shot at home", b"Exif"):
        assert secret not in out.data


def test_alpha_is_flattened_on_the_background_for_jpeg() -> None:
    data = encode(graphic_rgba(), "PNG")
    profile = replace(MMS, format="jpeg", background="#ff0000")
    out = make_variant(data, "png", profile, max_pixels=PIXELS)
    image = decode(out.data).convert("RGB")
    assert out.kind == "jpeg"
    corner = rgb_at(image, (image.width - 2, 2))  # transparent in the source
    assert corner[0] > 230 and corner[1] < 30 and corner[2] < 30


def test_alpha_keeps_png_and_falls_back_to_a_palette() -> None:
    source = graphic_rgba(800, 600)
    source.paste(noise(300, 200).convert("RGBA"), (250, 200))  # many colours
    data = encode(source, "PNG")
    roomy = make_variant(data, "png", MMS, max_pixels=PIXELS)
    assert roomy.kind == "png"
    assert decode(roomy.data).convert("RGBA").getchannel("A").getextrema() == (0, 255)
    tight = make_variant(data, "png", replace(MMS, max_bytes=len(roomy.data) // 2),
                         max_pixels=PIXELS)
    image = decode(tight.data)
    assert tight.kind == "png" and len(tight.data) <= len(roomy.data) // 2
    assert image.mode == "P" and "transparency" in image.info
    assert image.convert("RGBA").getchannel("A").getextrema() == (0, 255)


def test_whatsapp_gets_8_bit_rgb_from_cmyk_and_16_bit() -> None:
    cmyk = encode(photo().convert("CMYK"), "JPEG", quality=90)
    out = make_variant(cmyk, "jpeg", WHATSAPP, max_pixels=PIXELS)
    assert decode(out.data).mode == "RGB"
    grey16 = encode(photo(100, 80).convert("I").point(lambda v: v * 200).convert("I;16"), "PNG")
    out = make_variant(grey16, "png", replace(WHATSAPP, format="png"), max_pixels=PIXELS)
    image = decode(out.data)
    assert image.mode in ("RGB", "L") and image.getextrema() != (0, 0)


def test_whatsapp_png_stays_8_bit_rgb_even_for_flat_graphics() -> None:
    flat = graphic_rgba(opaque=True).convert("L")  # grey, few colours: oxipng would pick P/L
    out = make_variant(encode(flat, "PNG"), "png", WHATSAPP, max_pixels=PIXELS)
    # IHDR: bit depth at byte 24, colour type at byte 25 (2 = RGB, 6 = RGBA).
    assert out.kind == "png" and out.data[24] == 8 and out.data[25] in (2, 6)
    assert decode(out.data).mode in ("RGB", "RGBA")
    mms = make_variant(encode(flat, "PNG"), "png", MMS, max_pixels=PIXELS)
    assert mms.data[25] in (0, 3) and len(mms.data) < len(out.data)  # elsewhere: reduced


def test_animated_gif_is_kept_within_budget_and_refused_over_it() -> None:
    data = animated_gif()
    out = make_variant(data, "gif", MMS, max_pixels=PIXELS)
    assert out.kind == "gif" and out.data == data
    with pytest.raises(LimitError, match="animated GIF"):
        make_variant(data, "gif", replace(MMS, max_bytes=len(data) - 1), max_pixels=PIXELS)


def test_screenshot_png_stays_a_sharp_png_and_a_photo_png_becomes_jpeg() -> None:
    screenshot = Image.new("RGB", (600, 400), (255, 255, 255))
    draw = ImageDraw.Draw(screenshot)
    for row in range(0, 400, 14):
        draw.text((10, row), "assetsync publishes your assets " * 3, fill=(20, 20, 20))
    bar = photo(600, 40)  # a colourful banner: far more than 256 colours
    screenshot.paste(bar, (0, 0))
    assert screenshot.getcolors(256) is None  # too many colours for the palette shortcut
    out = make_variant(encode(screenshot, "PNG"), "png", MMS, max_pixels=PIXELS)
    assert out.kind == "png" and "sharp" in out.note
    photo_out = make_variant(encode(photo(600, 400), "PNG"), "png", MMS, max_pixels=PIXELS)
    assert photo_out.kind == "jpeg"


def test_webp_becomes_jpeg_for_mms() -> None:
    data = encode(photo(), "WEBP", quality=90)
    out = make_variant(data, "webp", MMS, max_pixels=PIXELS)
    assert out.kind == "jpeg" and decode(out.data).format == "JPEG"


def test_corrupt_input_is_a_transform_error() -> None:
    data = encode(photo(), "JPEG")
    with pytest.raises(TransformError):
        make_variant(data[: len(data) // 3], "jpeg", MMS, max_pixels=PIXELS)
    with pytest.raises(TransformError, match="decompression bomb"):
        make_variant(data, "jpeg", MMS, max_pixels=1000)


def test_variant_is_deterministic() -> None:
    data = encode(photo(900, 700), "PNG")
    profile = Profile(name="small", max_bytes=30_000, max_width=500, max_height=500)
    first = make_variant(data, "png", profile, max_pixels=PIXELS)
    second = make_variant(data, "png", profile, max_pixels=PIXELS)
    assert first.data == second.data and len(first.data) <= 30_000


# --- a channel variant is never larger than a source that already fits the channel ---------


def test_a_fitting_source_is_kept_when_a_re_encode_would_be_larger() -> None:
    # A photo already JPEG-compressed at a lower quality than the profile's: re-encoding it at
    # q85 grows it (the WhatsApp case of issue 25: 348,796 B became 408,756 B).
    data = encode(photo(900, 600), "JPEG", quality=60)
    out = make_variant(data, "jpeg", WHATSAPP, max_pixels=PIXELS)
    assert len(out.data) <= len(data)
    assert out.kind == "jpeg" and out.note.startswith("source kept: it fits the channel")
    assert decode(out.data).tobytes() == decode(data).tobytes()  # the same pixels


def test_the_kept_source_loses_its_private_metadata() -> None:
    data = jpeg_with_secrets(photo(900, 600))
    out = make_variant(data, "jpeg", WHATSAPP, max_pixels=PIXELS)
    assert len(out.data) <= len(data)
    exif = decode(out.data).getexif()
    assert 0x8825 not in exif and b"shot at home" not in out.data  # no GPS, no comment


def test_a_source_that_does_not_fit_is_still_made_to_fit() -> None:
    # Over the MMS pixel bounds: the variant is the re-encode, whatever its size.
    data = encode(photo(2000, 1000), "JPEG", quality=60)
    out = make_variant(data, "jpeg", MMS, max_pixels=PIXELS)
    assert decode(out.data).size == (1600, 800) and "source kept" not in out.note
    # A format the channel does not take as it is (WebP for WhatsApp) is converted too.
    webp = encode(photo(300, 200), "WEBP", quality=50)
    assert make_variant(webp, "webp", WHATSAPP, max_pixels=PIXELS).kind in ("jpeg", "png")


@settings(max_examples=12, deadline=None)
@given(quality=st.integers(min_value=30, max_value=95), seed=st.integers(0, 50),
       channel=st.sampled_from(["mms", "whatsapp"]))
def test_never_larger_than_a_fitting_source(quality: int, seed: int, channel: str) -> None:
    data = encode(photo(400, 300, seed=seed), "JPEG", quality=quality)
    out = make_variant(data, "jpeg", BUILTIN_PROFILES[channel], max_pixels=PIXELS)
    assert len(out.data) <= len(data)
