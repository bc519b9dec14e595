"""Channel variants (pure): an image re-encoded to fit a profile's format, size and byte budget.

Recipe (shared/reference/media.md §2.3-2.4): apply EXIF orientation first, convert to 8-bit
sRGB, scale down to the profile's bounds, then for JPEG binary-search the highest quality in
[min_quality, quality] that fits `max_bytes`, scaling down by the missing ratio when even the
floor does not fit. PNG keeps alpha: truecolour first, then a 256-colour palette, then
smaller. No EXIF, XMP or comment is ever written.
"""

from __future__ import annotations

import io
import math
import warnings

import mozjpeg_lossless_optimization as mozjpeg  # type: ignore[import-untyped]
from PIL import Image, ImageCms, ImageOps

from assetsync.errors import LimitError, TransformError
from assetsync.media.codec import Output, open_image, orientation_of, oxipng_optimize
from assetsync.media.lossless import optimize_image
from assetsync.media.options import OptimizeOptions, Profile

__all__ = ["make_variant"]

# Sources that may hold screenshots or line art, where a PNG variant can be worth its bytes.
_LOSSLESS_SOURCES = frozenset({"png", "gif", "bmp", "tiff", "webp"})
# Give up shrinking below this edge: nobody wants a 20-pixel MMS photo.
_MIN_EDGE = 32
# The oxipng level used inside the budget search: fast, and within ~1 % of the best.
_SEARCH_LEVEL = 2
_SRGB = ImageCms.createProfile("sRGB")


def make_variant(data: bytes, kind: str, profile: Profile, *, max_pixels: int) -> Output:
    """Encode one image for `profile`; never larger than the source when the source already
    fits the channel (then the source's lossless output is the variant, with a note saying so).

    Args:
        data: the source image's bytes.
        kind: its sniffed format ("jpeg", "png", "gif", "webp", ...).
        profile: the channel profile (format, bounds, budget, quality range, background).
        max_pixels: decompression-bomb limit.

    Raises:
        TransformError: the image cannot be decoded or encoded.
        LimitError: it cannot fit `max_bytes` (the message gives the best size reached).
    """
    image = open_image(data, max_pixels=max_pixels, full=False)
    if kind == "gif" and getattr(image, "n_frames", 1) > 1 and profile.format == "auto" \
            and profile.channel in ("mms", None):
        return _animated_gif(data, profile)
    fits = _fits_as_is(image, kind, len(data), profile)
    image = _decoded(image, kind, profile)
    fmt = _target_format(image, kind, profile)
    if profile.max_width or profile.max_height:
        image = _fit(image, profile.max_width or image.width, profile.max_height or image.height)
    out = _encode(image, fmt, kind, profile)
    return _smaller_of(out, data, kind, max_pixels) if fits else out


def _decoded(image: Image.Image, kind: str, profile: Profile) -> Image.Image:
    """The opened image decoded upright, as 8-bit sRGB (a JPEG decoded near the profile's
    bounds: a DCT-domain downscale takes far less memory and time for photos)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if kind == "jpeg" and profile.max_width and profile.max_height:
                box = (profile.max_width, profile.max_height)
                if image.getexif().get(0x0112, 1) in (5, 6, 7, 8):
                    box = box[::-1]
                image.draft(image.mode, box)
            image.load()
            return _to_srgb_8bit(ImageOps.exif_transpose(image))
        except TransformError:
            raise
        except Exception as exc:  # noqa: BLE001 - any decoder failure means a bad file
            raise TransformError(f"cannot decode: {exc or type(exc).__name__}") from None


def _encode(image: Image.Image, fmt: str, kind: str, profile: Profile) -> Output:
    if fmt == "jpeg" and profile.format == "auto" and kind in _LOSSLESS_SOURCES:
        sharp = _sharp_png(image, profile)
        if sharp is not None:
            return sharp
    if fmt == "jpeg":
        return _fit_jpeg(image, profile)
    return _fit_png(image, profile)


# Formats each channel takes as they are (media.md §1: MMS transcodes JPEG/PNG/GIF; WhatsApp
# takes JPEG and 8-bit RGB/RGBA PNG), and the pixel modes that need no conversion for it.
_AS_IS_KINDS = {"whatsapp": frozenset({"jpeg", "png"})}
_AS_IS_MODES = {"whatsapp": frozenset({"RGB", "RGBA"})}
_DEFAULT_KINDS = frozenset({"jpeg", "png", "gif"})
_DEFAULT_MODES = frozenset({"RGB", "RGBA", "L", "LA", "P"})


def _fits_as_is(image: Image.Image, kind: str, size: int, profile: Profile) -> bool:
    """Whether the source (before decoding) already fits the profile: a format and pixel
    mode the channel takes, within the byte budget and the pixel bounds. EXIF orientation
    does not count against it: the lossless output keeps the tag, which browsers and
    handsets honour."""
    channel = profile.channel or ""
    kinds = _AS_IS_KINDS.get(channel, _DEFAULT_KINDS)
    if profile.format != "auto":
        kinds = kinds & {profile.format}
    width, height = image.size
    if orientation_of(image) in (5, 6, 7, 8):
        width, height = height, width  # the bounds apply to the upright image
    return (
        kind in kinds
        and image.mode in _AS_IS_MODES.get(channel, _DEFAULT_MODES)
        and (profile.max_bytes is None or size <= profile.max_bytes)
        and width <= (profile.max_width or width)
        and height <= (profile.max_height or height)
    )


def _smaller_of(out: Output, data: bytes, kind: str, max_pixels: int) -> Output:
    """`out`, unless the source's own lossless output (same pixels, private metadata
    dropped) is smaller: a re-encode of an already compressed photo can grow it."""
    try:
        kept = optimize_image(data, kind, OptimizeOptions(max_pixels=max_pixels, gif_to_png=False))
    except TransformError:
        return out
    kept_data = kept.data if kept is not None else data
    if len(out.data) <= len(kept_data):
        return out
    return Output(kept_data, kind, f"source kept: it fits the channel as it is, and a "
                  f"re-encode ({out.note}, {len(out.data):,} B) was larger")


def _sharp_png(image: Image.Image, profile: Profile) -> Output | None:
    """A PNG for a screenshot-like image, when it fits and costs under 2x a JPEG's bytes.

    Text and hard edges blur under JPEG's 4:2:0 subsampling and quantization (media.md §2.3:
    "Screenshots/text: ... or PNG"); photos stored as PNG are many times their JPEG size, so
    the ratio tells the two apart.
    """
    png = _encode_png(image, reduce=profile.channel != "whatsapp")
    if profile.max_bytes is not None and len(png) > profile.max_bytes:
        return None
    if len(png) > 2 * len(_encode_jpeg(_flat_rgb(image, profile), profile.quality)):
        return None
    return Output(png, "png", f"PNG {image.width}x{image.height} (sharp: under 2x a JPEG)")


def _animated_gif(data: bytes, profile: Profile) -> Output:
    # Twilio passes GIFs to handsets as they are and animated GIFs are not resized by
    # carriers (Telnyx's transcoding notes), so the original is the variant if it fits.
    if profile.max_bytes is not None and len(data) > profile.max_bytes:
        raise LimitError(f"animated GIF is {len(data):,} bytes, over the {profile.max_bytes:,} "
                         f"byte budget of profile {profile.name!r}; animations are not resized: "
                         "shorten it or make it smaller", limit="max_bytes")
    return Output(data, "gif", "animated GIF kept")


def _to_srgb_8bit(image: Image.Image) -> Image.Image:
    icc = image.info.get("icc_profile")
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: scale to 8 bits rather than clip (convert("L") would clip).
        image = image.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    elif image.mode == "CMYK" and not icc:
        image = image.convert("RGB")
    elif image.mode not in ("RGB", "RGBA", "L", "LA", "P", "PA", "1"):
        image = image.convert("RGBA" if "A" in image.mode else "RGB")
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            mode = "RGBA" if image.mode in ("RGBA", "LA", "PA") else "RGB"
            if image.mode in ("P", "1"):
                image = image.convert("RGBA")
                mode = "RGBA"
            converted = ImageCms.profileToProfile(image, source, _SRGB, outputMode=mode)
            image = converted if converted is not None else image
        except Exception:  # noqa: BLE001 - a broken or mismatched profile: keep the raw pixels
            if image.mode == "CMYK":
                image = image.convert("RGB")
    image.info.pop("icc_profile", None)
    if image.mode == "1":
        image = image.convert("L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode == "PA":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA") and image.getchannel("A").getextrema()[0] == 255:
        image = image.convert(image.mode[:-1])  # alpha nobody uses
    return image


def _target_format(image: Image.Image, kind: str, profile: Profile) -> str:
    if profile.format != "auto":
        return profile.format
    if image.mode in ("RGBA", "LA"):
        return "png"
    if kind in ("png", "gif") and image.getcolors(256) is not None:
        return "png"  # flat graphics: a palette PNG beats JPEG and stays sharp
    return "jpeg"


def _fit(image: Image.Image, width: int, height: int) -> Image.Image:
    if image.width <= width and image.height <= height:
        return image
    scale = min(width / image.width, height / image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _scaled(image: Image.Image, ratio: float) -> Image.Image:
    # Bytes grow roughly with pixel count, so the edge shrinks by the square root of the
    # missing ratio; clamp so that one step is neither negligible nor drastic.
    factor = min(0.9, max(0.35, math.sqrt(ratio) * 0.97))
    return _fit(image, max(1, int(image.width * factor)), max(1, int(image.height * factor)))


def _encode_jpeg(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality, optimize=True, progressive=True,
               subsampling="4:2:0" if quality < 90 else "4:4:4")
    try:
        return bytes(mozjpeg.optimize(buffer.getvalue()))
    except ValueError:
        return buffer.getvalue()


def _flat_rgb(image: Image.Image, profile: Profile) -> Image.Image:
    """The image as JPEG can hold it: alpha flattened on the background; RGB for WhatsApp."""
    if image.mode in ("RGBA", "LA"):
        background = Image.new("RGB", image.size, profile.background)
        background.paste(image.convert("RGBA"), mask=image.getchannel("A"))
        image = background if image.mode == "RGBA" else background.convert("L")
    if profile.channel == "whatsapp" and image.mode != "RGB":
        image = image.convert("RGB")  # Meta: "Images must be 8-bit, RGB or RGBA"
    return image


def _fit_jpeg(image: Image.Image, profile: Profile) -> Output:
    image = _flat_rgb(image, profile)
    budget = profile.max_bytes
    best = None
    while True:
        data = _encode_jpeg(image, profile.quality)
        if budget is None or len(data) <= budget:
            return _jpeg_out(data, image, profile.quality)
        low, high, found = profile.min_quality, profile.quality - 1, None
        while low <= high:
            middle = (low + high) // 2
            data = _encode_jpeg(image, middle)
            if len(data) <= budget:
                found, low = (data, middle), middle + 1
            else:
                best = len(data) if best is None else min(best, len(data))
                high = middle - 1
        if found is not None:
            return _jpeg_out(found[0], image, found[1])
        if min(image.size) <= _MIN_EDGE:
            raise _over_budget(profile, best)
        image = _scaled(image, budget / (best or budget * 2))


def _jpeg_out(data: bytes, image: Image.Image, quality: int) -> Output:
    return Output(data, "jpeg", f"JPEG q{quality} {image.width}x{image.height}")


def _fit_png(image: Image.Image, profile: Profile) -> Output:
    budget = profile.max_bytes
    best: int | None = None
    # WhatsApp wants 8-bit RGB/RGBA; palette PNGs are not known to be accepted (media.md §1.1).
    palette_ok = profile.channel != "whatsapp"
    if not palette_ok and image.mode in ("L", "LA"):
        image = image.convert("RGBA" if image.mode == "LA" else "RGB")
    truecolour = True
    while True:
        if truecolour:
            data = _encode_png(image, reduce=palette_ok)
            if budget is None or len(data) <= budget:
                return Output(data, "png", f"PNG {image.width}x{image.height}")
            best = len(data) if best is None else min(best, len(data))
        if palette_ok:
            method = Image.Quantize.FASTOCTREE if image.mode in ("RGBA", "LA") \
                else Image.Quantize.MEDIANCUT
            quantized = image.convert("RGBA" if image.mode == "LA" else image.mode)
            data = _encode_png(quantized.quantize(256, method=method))
            if budget is None or len(data) <= budget:
                return Output(data, "png", f"PNG 256 colours {image.width}x{image.height}")
            # Once a palette is needed at this size it is needed at every smaller one too.
            truecolour = False
            best = len(data) if best is None else min(best, len(data))
        if min(image.size) <= _MIN_EDGE:
            raise _over_budget(profile, best)
        if budget is None:  # unreachable: without a budget the first encode is returned
            raise _over_budget(profile, best)
        image = _scaled(image, budget / (best or budget * 2))


def _encode_png(image: Image.Image, *, reduce: bool = True) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return oxipng_optimize(buffer.getvalue(), _SEARCH_LEVEL, strip=True, reduce=reduce)


def _over_budget(profile: Profile, best: int | None) -> LimitError:
    return LimitError(f"cannot fit the {profile.max_bytes:,} byte budget of profile "
                      f"{profile.name!r}: best size reached {best or 0:,} bytes at "
                      f"{_MIN_EDGE} px; raise max_bytes or lower min_quality",
                      limit="max_bytes")
