"""The lossless pass (pure): JPEG, PNG and GIF re-encoded to the same pixels, never larger,
with no private metadata left.
"""

from __future__ import annotations

import io

import mozjpeg_lossless_optimization as mozjpeg  # type: ignore[import-untyped]

from assetsync.errors import TransformError
from assetsync.media.codec import (
    Output,
    jpeg_insert_app1,
    jpeg_strip,
    load_image,
    open_image,
    orientation_of,
    orientation_tiff,
    oxipng_optimize,
    png_insert_chunk,
    png_strip,
)
from assetsync.media.options import OptimizeOptions

__all__ = ["optimize_image"]


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
        load_image(image)
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
