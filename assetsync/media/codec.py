"""Codec plumbing for the transform recipes (pure): safe decoding, the PNG optimizer, and
metadata surgery on encoded JPEG and PNG bytes without touching the pixel data.

Removing segments and chunks can only make a file smaller, so the surgery is the privacy floor
under the lossless pass: even when no encoder can shrink an image, GPS and camera EXIF, XMP,
IPTC, comments and trailers still go. Orientation and colour (ICC, sRGB, gamma) are kept so
the image looks the same. Layouts: ITU T.81 annex B (JPEG markers), JFIF 1.02, EXIF 2.32 §4.5,
PNG (third edition) §5 and §11.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib

import oxipng
from PIL import Image, UnidentifiedImageError

from assetsync.errors import TransformError
from assetsync.frozen import frozen
from assetsync.media.sniff import DECODABLE

__all__ = [
    "DECODE_FORMATS",
    "EXTENSIONS",
    "Output",
    "jpeg_insert_app1",
    "jpeg_strip",
    "load_image",
    "open_image",
    "orientation_of",
    "orientation_tiff",
    "oxipng_optimize",
    "png_insert_chunk",
    "png_strip",
]

DECODE_FORMATS = tuple(sorted(kind.upper() for kind in DECODABLE))
_ORIENTATION = 0x0112
# oxipng gives up searching after this many seconds and returns its best so far, so a
# pathological PNG cannot hang a worker.
_OXIPNG_TIMEOUT_S = 60
EXTENSIONS = {"jpeg": "jpg", "png": "png", "gif": "gif"}


@frozen
class Output:
    """An encoded result: its bytes, format ("jpeg", "png", "gif") and what was done."""

    data: bytes
    kind: str
    note: str

    @property
    def ext(self) -> str:
        """File extension for the format, without the dot."""
        return EXTENSIONS[self.kind]

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
        except UnidentifiedImageError:
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


def load_image(image: Image.Image) -> None:
    """Load an opened image's pixels, mapping any decoder failure to `TransformError`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            image.load()
        except Exception as exc:  # noqa: BLE001 - any decoder failure means a bad file
            raise TransformError(f"cannot decode: {exc or type(exc).__name__}") from None


# ---------------------------------------------------------------------------------------------
# PNG optimizer


def oxipng_optimize(data: bytes, level: int, *, strip: bool, reduce: bool = True) -> bytes:
    """oxipng at `level` (lossless); `strip` drops every chunk that does not change the look.

    `reduce=False` keeps the colour type and bit depth as they are (WhatsApp wants 8-bit
    RGB/RGBA, not the palette or grey PNG oxipng would otherwise pick).

    Raises:
        TransformError: oxipng refused the PNG.
    """
    try:
        return oxipng.optimize_from_memory(
            data, level=level, optimize_alpha=True, timeout=_OXIPNG_TIMEOUT_S,
            color_type_reduction=reduce, bit_depth_reduction=reduce,
            grayscale_reduction=reduce, palette_reduction=reduce,
            # "safe" keeps only chunks that change how the image looks (iCCP, sRGB, cICP,
            # pHYs, animation) and drops text, EXIF and time stamps (oxipng README).
            strip=oxipng.StripChunks.safe() if strip else oxipng.StripChunks.none(),
        )
    except oxipng.PngError as exc:
        raise TransformError(f"PNG optimizer failed: {exc}") from None


# ---------------------------------------------------------------------------------------------
# metadata surgery

# Baseline TIFF tags that say nothing about the camera, the place or the person.
_HARMLESS_EXIF_TAGS = frozenset({0x0112, 0x011A, 0x011B, 0x0128, 0x0213})
# PNG ancillary chunks that change how the image is shown (PNG §11.3, APNG, cICP/HDR).
_PNG_VISUAL = frozenset({b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT", b"pHYs", b"bKGD",
                         b"hIST", b"tRNS", b"sPLT", b"acTL", b"fcTL", b"fdAT", b"cICP",
                         b"mDCV", b"cLLI", b"mDCv", b"cLLi"})
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _exif_is_harmless(tiff: bytes) -> bool:
    """True when a TIFF/EXIF block holds nothing beyond orientation and resolution."""
    exif = Image.Exif()
    try:
        exif.load(tiff)
    except Exception:  # noqa: BLE001 - unreadable EXIF cannot be vouched for
        return False
    return set(exif) <= _HARMLESS_EXIF_TAGS


def jpeg_strip(data: bytes, orientation: int) -> tuple[bytes | None, bool]:
    """Drop every JPEG marker segment that is not needed to show the image.

    Kept: JFIF APP0, ICC APP2, Adobe APP14 (CMYK colour transform), tables, frames and scans.
    Dropped: APP1 (EXIF, XMP), APP13 (IPTC), other APPn (MPF, FPXR, JFXX thumbnails), COM,
    anything after EOI. When `orientation` is not 1 a minimal EXIF holding only it is written.

    Returns:
        (stripped bytes, whether anything private was removed); (None, True) when the
        marker structure cannot be followed.
    """
    if not data.startswith(b"\xff\xd8"):
        return None, True
    out = [b"\xff\xd8"]
    dirty = False
    pos, size = 2, len(data)
    while pos < size:
        if data[pos] != 0xFF:
            return None, True
        while pos < size and data[pos] == 0xFF:  # fill bytes (T.81 B.1.1.2)
            pos += 1
        if pos >= size:
            return None, True
        marker = data[pos]
        pos += 1
        if marker == 0xD9:  # EOI: whatever follows (motion photos, trailers) is dropped
            out.append(b"\xff\xd9")
            dirty = dirty or pos < size
            if orientation != 1:
                return (
                    jpeg_insert_app1(
                        b"".join(out), b"Exif\x00\x00" + orientation_tiff(orientation)
                    ),
                    dirty,
                )
            return b"".join(out), dirty
        if marker in range(0xD0, 0xD8) or marker == 0x01:
            out.append(bytes((0xFF, marker)))
            continue
        if pos + 2 > size:
            return None, True
        (length,) = struct.unpack(">H", data[pos:pos + 2])
        end = pos + length
        if length < 2 or end > size:
            return None, True
        segment = data[pos - 2:end]
        payload = data[pos + 2:end]
        if _keep_jpeg_segment(marker, payload):
            out.append(segment)
        elif not (marker == 0xE1 and payload.startswith(b"Exif\x00\x00")
                  and _exif_is_harmless(payload[6:])):
            dirty = True
        pos = end
        if marker == 0xDA:  # SOS: copy the entropy-coded data up to the next real marker
            scan_end = _scan_end(data, pos)
            out.append(data[pos:scan_end])
            pos = scan_end
    return None, True  # no EOI: truncated


def _keep_jpeg_segment(marker: int, payload: bytes) -> bool:
    if marker == 0xE0:
        return payload.startswith(b"JFIF\x00")
    if marker == 0xE2:
        return payload.startswith(b"ICC_PROFILE\x00")
    if marker == 0xEE:
        return payload.startswith(b"Adobe")
    return not (0xE0 <= marker <= 0xEF or marker == 0xFE)


def _scan_end(data: bytes, pos: int) -> int:
    """Offset of the first marker after entropy-coded data (skipping FF00 and RSTn)."""
    while True:
        pos = data.find(b"\xff", pos)
        if pos < 0 or pos + 1 >= len(data):
            return len(data)
        following = data[pos + 1]
        if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
            pos += 1 if following == 0xFF else 2
            continue
        return pos


def orientation_tiff(orientation: int) -> bytes:
    """A minimal TIFF/EXIF block holding only the orientation tag (no "Exif\\0\\0" prefix)."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()[6:]


def jpeg_insert_app1(data: bytes, payload: bytes) -> bytes:
    """Insert an APP1 segment after SOI and a JFIF APP0, where EXIF readers look for it."""
    pos = 2
    if data[2:4] == b"\xff\xe0":
        (length,) = struct.unpack(">H", data[4:6])
        pos = 4 + length
    segment = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return data[:pos] + segment + data[pos:]


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]] | None:
    if not data.startswith(_PNG_SIGNATURE):
        return None
    chunks, pos = [], len(_PNG_SIGNATURE)
    while pos + 12 <= len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        if pos + 12 + length > len(data):
            return None
        chunks.append((kind, data[pos + 8:pos + 8 + length]))
        pos += 12 + length
        if kind == b"IEND":
            return chunks
    return None


def _png_join(chunks: list[tuple[bytes, bytes]]) -> bytes:
    parts = [_PNG_SIGNATURE]
    for kind, body in chunks:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        parts.append(struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc))
    return b"".join(parts)


def png_strip(data: bytes, *, keep_orientation: bytes | None) -> tuple[bytes, bool]:
    """Drop PNG ancillary chunks that do not change how the image looks.

    Dropped: tEXt, zTXt, iTXt (XMP lives there), eXIf, tIME and unknown private chunks, and
    anything after IEND. `keep_orientation`, a TIFF block, is written back as a new eXIf.

    Returns:
        (stripped bytes, whether anything private was removed).

    Raises:
        ValueError: the chunk structure is broken.
    """
    chunks = _png_chunks(data)
    if chunks is None:
        raise ValueError("broken PNG chunk structure")
    kept = [(k, b) for k, b in chunks if k[:1].isupper() or k in _PNG_VISUAL]
    dropped = [(k, b) for k, b in chunks if not (k[:1].isupper() or k in _PNG_VISUAL)]
    dirty = any(not (k == b"eXIf" and _exif_is_harmless(b)) for k, b in dropped)
    dirty = dirty or len(_png_join(chunks)) < len(data)
    out = _png_join(kept)
    if keep_orientation is not None:
        out = png_insert_chunk(out, b"eXIf", keep_orientation)
    return out, dirty


def png_insert_chunk(data: bytes, kind: bytes, body: bytes) -> bytes:
    """Insert a chunk before the first IDAT (where PNG §5.6 puts eXIf), replacing any of its
    kind."""
    chunks = _png_chunks(data)
    if chunks is None:
        raise ValueError("broken PNG chunk structure")
    chunks = [c for c in chunks if c[0] != kind]
    first_idat = next(i for i, c in enumerate(chunks) if c[0] == b"IDAT")
    chunks.insert(first_idat, (kind, body))
    return _png_join(chunks)
