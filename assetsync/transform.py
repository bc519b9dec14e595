"""The transform stage's pure image recipes: bytes in, bytes out, never larger, no metadata leak.

`optimize_image` is the lossless pass (JPEG, PNG, GIF); `make_variant` derives a channel copy
within a byte budget. Both decode only allowlisted formats, treat Pillow's decompression-bomb
warning as an error and raise `TransformError`/`LimitError` instead of crashing. Options and
profiles live in `assetsync.media`, metadata surgery in `assetsync.transform_markers`, caching
and the process pool in `assetsync.transform_cache`.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import mozjpeg_lossless_optimization as mozjpeg
import oxipng
from PIL import Image

from assetsync.errors import TransformError
from assetsync.media import (
    Issue,
    OptimizeOptions,
    Profile,
    channel_warnings,
    parse_optimize_section,
)
from assetsync.transform_markers import (
    jpeg_insert_app1,
    jpeg_strip,
    orientation_tiff,
    png_insert_chunk,
    png_strip,
)

__all__ = [
    "Issue",
    "OptimizeOptions",
    "Output",
    "Profile",
    "TransformResult",
    "TransformStats",
    "channel_warnings",
    "make_variant",
    "open_image",
    "optimize_image",
    "parse_optimize_section",
    "transform_files",
]

# Entry points defined by modules that build on this one (they import the recipes below), so
# they are resolved on first use (PEP 562) rather than imported here in a cycle.
_LAZY = {
    "make_variant": "assetsync.transform_variants",
    "transform_files": "assetsync.transform_cache",
    "TransformResult": "assetsync.transform_cache",
    "TransformStats": "assetsync.transform_cache",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

# Formats Pillow may decode at all (Pillow's security handbook: allowlist formats, never EPS).
DECODE_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF", "AVIF")
_ORIENTATION = 0x0112
# oxipng gives up searching after this many seconds and returns its best so far, so a
# pathological PNG cannot hang a worker.
_OXIPNG_TIMEOUT_S = 60
_EXT = {"jpeg": "jpg", "png": "png", "gif": "gif"}


@dataclass(frozen=True, slots=True)
class Output:
    """An encoded result: its bytes, format ("jpeg", "png", "gif") and what was done."""

    data: bytes
    kind: str
    note: str

    @property
    def ext(self) -> str:
        """File extension for the format, without the dot."""
        return _EXT[self.kind]

    @property
    def mime(self) -> str:
        """Content-Type for the format."""
        return f"image/{self.kind}"


# ---------------------------------------------------------------------------------------------
# safe decoding


def open_image(data: bytes, *, max_pixels: int, formats: tuple[str, ...] = DECODE_FORMATS,
               full: bool = True) -> Image.Image:
    """Decode `data` with Pillow, refusing unknown formats, bombs, truncation and corruption.

    Raises:
        TransformError: the bytes are not a sound image of an allowed format.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=formats)
            pixels = image.width * image.height
            if pixels > max_pixels:
                raise TransformError(f"{image.width}x{image.height} is {pixels:,} pixels, over "
                                     f"the {max_pixels:,} limit (decompression bomb?)")
            if full:
                image.load()
            return image
        except TransformError:
            raise
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
            raise TransformError(f"refused as a decompression bomb ({exc})") from None
        except Image.UnidentifiedImageError:
            raise TransformError("not an image of a supported format "
                                 f"({', '.join(formats)})") from None
        except Exception as exc:  # noqa: BLE001 - any decoder failure means a bad file
            raise TransformError(f"cannot decode: {exc or type(exc).__name__}") from None


def orientation_of(image: Image.Image) -> int:
    """The EXIF orientation (1-8) of an opened image; 1 when absent or invalid."""
    try:
        value = image.getexif().get(_ORIENTATION, 1)
    except Exception:  # noqa: BLE001 - a broken EXIF block means no usable orientation
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


# ---------------------------------------------------------------------------------------------
# lossless pass


def optimize_image(data: bytes, kind: str, options: OptimizeOptions) -> Output | None:
    """The lossless pass over one image; None means "publish the original bytes".

    JPEG: mozjpeg's lossless re-optimization (optimal Huffman tables, progressive scan search)
    and a marker-level strip, smaller of the two. PNG: oxipng (filters, colour-type and
    bit-depth reduction, palette, unused alpha, best deflate) at `options.effort`. Static
    GIF: its pixels as an oxipng-optimized PNG when `gif_to_png`. Unless `keep_metadata`,
    only the orientation tag and the ICC profile survive (GPS, camera EXIF, XMP and comments
    are dropped).

    Never larger: the result is smaller than `data`, or None. The one exception is privacy:
    when the original carries metadata that must go, the clean result is returned even if
    it is not smaller.

    Raises:
        TransformError: the image cannot be decoded or encoded.
    """
    if kind == "jpeg":
        image = open_image(data, max_pixels=options.max_pixels, formats=("JPEG",), full=False)
        # A 1/8-scale DCT decode still reads every entropy-coded byte, so truncation and
        # corruption are found at a fraction of the cost of a full decode.
        image.draft(image.mode, (max(1, image.width // 8), max(1, image.height // 8)))
        open_image_load(image)
        return _never_larger(data, _jpeg_candidates(data, orientation_of(image), options))
    if kind == "png":
        image = open_image(data, max_pixels=options.max_pixels, formats=("PNG",))
        return _never_larger(data, _png_candidates(data, orientation_of(image), options))
    if kind == "gif" and options.gif_to_png:
        image = open_image(data, max_pixels=options.max_pixels, formats=("GIF",))
        if getattr(image, "n_frames", 1) > 1:
            return None  # animations keep their GIF bytes
        buffer = io.BytesIO()
        image.save(buffer, format="PNG", compress_level=1)
        png = oxipng_optimize(buffer.getvalue(), options.effort, strip=True)
        out = Output(png, "png", f"GIF -> PNG, oxipng -o{options.effort}")
        return out if len(out.data) < len(data) else None
    return None


def open_image_load(image: Image.Image) -> None:
    """Load an opened image's pixels, mapping any decoder failure to `TransformError`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            image.load()
        except Exception as exc:  # noqa: BLE001 - any decoder failure means a bad file
            raise TransformError(f"cannot decode: {exc or type(exc).__name__}") from None


def _never_larger(data: bytes, candidates: tuple[list[Output], bool]) -> Output | None:
    outputs, dirty = candidates
    if not outputs:
        if dirty:
            raise TransformError("cannot remove its metadata; set keep_metadata = true to "
                                 "publish it as is")
        return None
    best = min(outputs, key=lambda out: len(out.data))
    return best if len(best.data) < len(data) or dirty else None


def _jpeg_candidates(data: bytes, orientation: int,
                     options: OptimizeOptions) -> tuple[list[Output], bool]:
    outputs: list[Output] = []
    if options.keep_metadata:
        copy, dirty = mozjpeg.COPY_MARKERS.ALL, False
    else:
        copy = mozjpeg.COPY_MARKERS.ICC
        stripped, dirty = jpeg_strip(data, orientation)
        if stripped is not None:
            outputs.append(Output(stripped, "jpeg", "metadata stripped"))
    try:
        optimized = mozjpeg.optimize(data, copy=copy)
    except (ValueError, MemoryError):
        optimized = None  # libjpeg refused it; the stripped original may still do
    if optimized is not None:
        if orientation != 1 and not options.keep_metadata:
            optimized = jpeg_insert_app1(optimized, b"Exif\x00\x00" + orientation_tiff(orientation))
        outputs.append(Output(optimized, "jpeg", "mozjpeg lossless (progressive, optimal Huffman)"))
    return outputs, dirty


def _png_candidates(data: bytes, orientation: int,
                    options: OptimizeOptions) -> tuple[list[Output], bool]:
    if options.keep_metadata:
        return [Output(oxipng_optimize(data, options.effort, strip=False), "png",
                       f"oxipng -o{options.effort}")], False
    exif = orientation_tiff(orientation) if orientation != 1 else None
    try:
        stripped, dirty = png_strip(data, keep_orientation=exif)
        optimized = oxipng_optimize(stripped, options.effort, strip=True)
        if exif is not None:
            optimized = png_insert_chunk(optimized, b"eXIf", exif)
    except ValueError as exc:
        raise TransformError(f"cannot rewrite: {exc}") from None
    return [Output(stripped, "png", "metadata stripped"),
            Output(optimized, "png", f"oxipng -o{options.effort}")], dirty


def oxipng_optimize(data: bytes, level: int, *, strip: bool) -> bytes:
    try:
        return oxipng.optimize_from_memory(
            data, level=level, optimize_alpha=True, timeout=_OXIPNG_TIMEOUT_S,
            # "safe" keeps only chunks that change how the image looks (iCCP, sRGB, cICP,
            # pHYs, animation) and drops text, EXIF and time stamps (oxipng README).
            strip=oxipng.StripChunks.safe() if strip else oxipng.StripChunks.none(),
        )
    except oxipng.PngError as exc:
        raise TransformError(f"PNG optimizer failed: {exc}") from None
