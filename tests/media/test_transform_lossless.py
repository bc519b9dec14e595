"""The lossless pass: identical pixels, smaller bytes, no private metadata, safe on bad input."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image, PngImagePlugin

from assetsync.errors import TransformError
from assetsync.media.lossless import optimize_image
from assetsync.media.options import OptimizeOptions
from tests.test_media_helpers import (
    GPS_IFD,
    MAKE,
    ORIENTATION,
    XMP,
    animated_gif,
    decode,
    encode,
    graphic_rgba,
    jpeg_with_secrets,
    oriented_jpeg,
    photo,
    private_exif,
    rgb_at,
    same_pixels,
    shown,
    srgb_icc,
)

FAST = OptimizeOptions(effort=1)


def _exif_tags(data: bytes) -> set[int]:
    return set(decode(data).getexif())


def test_jpeg_is_smaller_with_identical_pixels() -> None:
    data = encode(photo(), "JPEG", quality=90)
    out = optimize_image(data, "jpeg", FAST)
    assert out is not None and out.kind == "jpeg"
    assert len(out.data) < len(data)
    assert same_pixels(decode(out.data), decode(data), "RGB")
    assert decode(out.data).info.get("progressive") or decode(out.data).info.get("progression")


def test_jpeg_private_metadata_goes_orientation_and_icc_stay() -> None:
    data = jpeg_with_secrets(orientation=6)
    original = decode(data)
    assert original.getexif().get_ifd(GPS_IFD) and "xmp" in original.info  # the fixture leaks
    out = optimize_image(data, "jpeg", FAST)
    assert out is not None
    image = decode(out.data)
    assert _exif_tags(out.data) == {ORIENTATION}
    assert image.getexif()[ORIENTATION] == 6
    assert image.info.get("icc_profile") == srgb_icc()
    assert "xmp" not in image.info and "comment" not in image.info
    for secret in (b"SecretCam", b"Jane Secret", b"shot at home"):
        assert secret not in out.data
    assert same_pixels(shown(out.data), shown(data), "RGB")


def test_keep_metadata_keeps_everything() -> None:
    data = jpeg_with_secrets()
    out = optimize_image(data, "jpeg", OptimizeOptions(effort=1, keep_metadata=True))
    result = out.data if out is not None else data
    image = decode(result)
    assert image.getexif()[MAKE] == "SecretCam"
    assert image.getexif().get_ifd(GPS_IFD)
    assert b"Jane Secret" in result and b"shot at home" in result


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_still_shows_upright(orientation: int) -> None:
    data, upright = oriented_jpeg(orientation)
    out = optimize_image(data, "jpeg", FAST)
    result = out.data if out is not None else data
    assert same_pixels(shown(result), shown(data), "RGB")
    view = shown(result).convert("RGB")
    assert view.size == upright.size
    red, white = rgb_at(view, (2, 2)), rgb_at(view, (upright.width - 20, 2))
    assert red[0] > 200 and red[1] < 60 and min(white) > 200


@pytest.mark.parametrize("mode", ["CMYK", "L"])
def test_cmyk_and_grayscale_jpeg_stay_identical(mode: str) -> None:
    data = encode(photo().convert(mode), "JPEG", quality=92)
    out = optimize_image(data, "jpeg", FAST)
    assert out is not None and len(out.data) < len(data)
    assert decode(out.data).mode == mode
    assert same_pixels(decode(out.data), decode(data), mode)


def test_png_opaque_alpha_is_dropped_and_pixels_kept() -> None:
    source = graphic_rgba(opaque=True)
    data = encode(source, "PNG", compress_level=0)
    out = optimize_image(data, "png", FAST)
    assert out is not None and len(out.data) < len(data) // 4
    assert "A" not in decode(out.data).mode
    assert same_pixels(decode(out.data), source)


def test_png_with_few_colours_becomes_a_palette() -> None:
    source = graphic_rgba(opaque=True).convert("RGB")
    source = source.quantize(16).convert("RGB")  # truecolour PNG with 16 distinct colours
    data = encode(source, "PNG")
    out = optimize_image(data, "png", FAST)
    assert out is not None and decode(out.data).mode == "P"
    assert same_pixels(decode(out.data), source)


def test_palette_png_with_transparency_stays_identical() -> None:
    source = graphic_rgba().quantize(32)  # P mode with a transparent palette entry
    assert source.mode == "P"
    data = encode(source, "PNG", compress_level=0)
    out = optimize_image(data, "png", FAST)
    assert out is not None and len(out.data) < len(data)
    assert same_pixels(decode(out.data), decode(data))


def test_transparent_png_keeps_its_visible_pixels() -> None:
    source = graphic_rgba()
    data = encode(source, "PNG")
    out = optimize_image(data, "png", FAST)
    assert out is not None and len(out.data) < len(data)
    result = decode(out.data).convert("RGBA")
    # Fully transparent pixels may change colour (oxipng --alpha); visible ones may not.
    assert result.getchannel("A").tobytes() == source.getchannel("A").tobytes()
    visible = Image.new("RGBA", source.size)
    visible.paste(source, mask=source.getchannel("A"))
    shown_result = Image.new("RGBA", source.size)
    shown_result.paste(result, mask=result.getchannel("A"))
    assert same_pixels(visible, shown_result)


def test_sixteen_bit_png_keeps_all_sixteen_bits() -> None:
    source = Image.linear_gradient("L").resize((256, 64)).convert("I")
    source = source.point(lambda v: v * 257 + 3)  # values that need 16 bits
    data = encode(source.convert("I;16"), "PNG", compress_level=0)
    out = optimize_image(data, "png", FAST)
    assert out is not None and len(out.data) < len(data)
    assert decode(out.data).convert("I").tobytes() == decode(data).convert("I").tobytes()


def test_png_text_xmp_and_gps_chunks_go_icc_stays() -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Jane Secret")
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    data = encode(photo(64, 48), "PNG", pnginfo=info, exif=private_exif(),
                  icc_profile=srgb_icc())
    out = optimize_image(data, "png", FAST)
    assert out is not None
    assert b"Jane Secret" not in out.data and b"SecretCam" not in out.data
    assert b"eXIf" not in out.data and b"tEXt" not in out.data and b"iTXt" not in out.data
    assert decode(out.data).info.get("icc_profile") == srgb_icc()
    assert same_pixels(decode(out.data), decode(data))


def test_png_orientation_survives_alone() -> None:
    data = encode(photo(40, 30), "PNG", exif=private_exif(orientation=8))
    out = optimize_image(data, "png", FAST)
    assert out is not None and b"SecretCam" not in out.data
    assert _exif_tags(out.data) == {ORIENTATION}
    assert same_pixels(shown(out.data), shown(data))


def test_static_gif_becomes_png_when_smaller() -> None:
    source = graphic_rgba(opaque=True).convert("RGB").quantize(8)
    data = encode(source, "GIF")
    out = optimize_image(data, "gif", FAST)
    assert out is not None and out.kind == "png" and out.mime == "image/png"
    assert len(out.data) < len(data)
    assert same_pixels(decode(out.data), decode(data))
    assert optimize_image(data, "gif", OptimizeOptions(effort=1, gif_to_png=False)) is None


def test_animated_gif_is_kept() -> None:
    assert optimize_image(animated_gif(), "gif", FAST) is None


def test_never_larger_an_optimal_file_comes_back_as_none() -> None:
    data = encode(photo(), "JPEG", quality=85)
    once = optimize_image(data, "jpeg", FAST)
    assert once is not None
    assert optimize_image(once.data, "jpeg", FAST) is None
    tiny = encode(Image.new("L", (1, 1)), "PNG")
    png_once = optimize_image(tiny, "png", FAST)
    smallest = png_once.data if png_once is not None else tiny
    assert optimize_image(smallest, "png", FAST) is None


def _corrupt_cases() -> list[tuple[str, str, bytes]]:
    jpeg = encode(photo(), "JPEG", quality=90)
    png = encode(photo(), "PNG")
    idat = png.index(b"IDAT")
    garbled_png = png[: idat + 20] + bytes(200) + png[idat + 220:]
    return [
        ("jpeg", "truncated JPEG", jpeg[: len(jpeg) // 2]),
        ("png", "truncated PNG", png[: len(png) // 2]),
        ("png", "garbled PNG", garbled_png),
        ("jpeg", "random bytes behind a JPEG signature", b"\xff\xd8\xff" + bytes(range(256)) * 4),
        ("png", "empty file named png", b""),
        ("png", "a JPEG where a PNG was sniffed", jpeg),
    ]


@pytest.mark.parametrize(("kind", "label", "data"), _corrupt_cases(),
                         ids=[case[1] for case in _corrupt_cases()])
def test_corrupt_inputs_raise_transform_error(kind: str, label: str, data: bytes) -> None:
    with pytest.raises(TransformError) as info:
        optimize_image(data, kind, FAST)
    assert str(info.value)


def _bomb_png(width: int, height: int) -> bytes:
    """A tiny file that claims (and holds) a huge 1-bit image: zeros deflate ~1000:1."""
    raw = zlib.compress((b"\x00" + bytes((width + 7) // 8)) * height, 9)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw)
            + chunk(b"IEND", b""))


def test_decompression_bomb_is_refused_before_decoding() -> None:
    bomb = _bomb_png(20_000, 20_000)  # 400 MP in a few tens of kilobytes
    assert len(bomb) < 100_000
    with pytest.raises(TransformError, match="decompression bomb"):
        optimize_image(bomb, "png", OptimizeOptions())
    with pytest.raises(TransformError, match="decompression bomb"):
        optimize_image(_bomb_png(2_000, 2_000), "png", OptimizeOptions(max_pixels=1_000_000))


def test_pillow_bomb_warning_is_an_error_even_under_a_raised_limit() -> None:
    # Our limit raised above Pillow's: Pillow's own DecompressionBombError still stops it.
    bomb = _bomb_png(20_000, 20_000)
    with pytest.raises(TransformError, match="decompression bomb"):
        optimize_image(bomb, "png", OptimizeOptions(max_pixels=10**10))


def test_output_is_byte_identical_run_to_run() -> None:
    inputs = [("jpeg", jpeg_with_secrets(orientation=3)), ("png", encode(graphic_rgba(), "PNG")),
              ("gif", encode(graphic_rgba(opaque=True).convert("RGB").quantize(8), "GIF"))]
    for kind, data in inputs:
        first = optimize_image(data, kind, FAST)
        second = optimize_image(bytes(io.BytesIO(data).getvalue()), kind, FAST)
        assert first is not None and second is not None
        assert first.data == second.data, kind
