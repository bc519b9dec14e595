"""Generated test images (deterministic) shared by the media and transform tests.

Nothing here is a test; every image is built in memory from fixed seeds so results repeat.
"""

from __future__ import annotations

import io
import random
from functools import lru_cache

from PIL import Image, ImageChops, ImageCms, ImageDraw, ImageOps

GPS_IFD = 0x8825
EXIF_IFD = 0x8769
ORIENTATION = 0x0112
MAKE = 0x010F
XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/'
       b'22-rdf-syntax-ns#"><rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/" '
       b'dc:creator="Jane Secret"/></rdf:RDF></x:xmpmeta>')


def photo(width: int = 320, height: int = 240, *, seed: int = 1, noise: int = 24) -> Image.Image:
    """A photo-like RGB image: smooth gradients plus seeded noise (so JPEG has work to do)."""
    gx = Image.linear_gradient("L").resize((width, height))
    gy = Image.linear_gradient("L").rotate(90).resize((width, height))
    rings = Image.radial_gradient("L").resize((width, height))
    base = Image.merge("RGB", (gx, gy, rings))
    rng = random.Random(seed)
    grain = Image.frombytes("L", (width, height), rng.randbytes(width * height))
    grain = grain.point(lambda v: v * noise // 255)
    return ImageChops.add(base, Image.merge("RGB", (grain, grain, grain)))


def noise(width: int, height: int, *, seed: int = 7) -> Image.Image:
    """Incompressible RGB noise: the worst case for any byte budget."""
    return Image.frombytes("RGB", (width, height), random.Random(seed).randbytes(width * height * 3))


def graphic_rgba(width: int = 200, height: int = 120, *, opaque: bool = False) -> Image.Image:
    """A flat logo-like graphic with a transparent background (or all-opaque alpha)."""
    image = Image.new("RGBA", (width, height), (255, 255, 255, 255 if opaque else 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((10, 10, width // 2, height - 10), fill=(200, 30, 40, 255))
    draw.rectangle((width // 2, 20, width - 10, height - 20), fill=(20, 90, 200, 255))
    draw.text((15, height // 2), "assetsync", fill=(0, 0, 0, 255))
    return image


def asymmetric(width: int = 64, height: int = 48) -> Image.Image:
    """An image whose eight orientations all differ (a coloured corner block)."""
    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, width // 4, height // 3), fill=(255, 0, 0))
    draw.rectangle((width - 8, height - 6, width, height), fill=(0, 0, 255))
    return image


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    """Encode with Pillow."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def decode(data: bytes) -> Image.Image:
    """Decode fully."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def same_pixels(a: Image.Image, b: Image.Image, mode: str = "RGBA") -> bool:
    """Whether two images show exactly the same pixels (compared in `mode`)."""
    a2, b2 = a.convert(mode), b.convert(mode)
    return a2.size == b2.size and ImageChops.difference(a2, b2).getbbox() is None


def rgb_at(image: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    """The RGB value of one pixel."""
    value = image.convert("RGB").getpixel(xy)
    assert isinstance(value, tuple)
    return value


def shown(data: bytes) -> Image.Image:
    """The image as a viewer shows it (EXIF orientation applied)."""
    return ImageOps.exif_transpose(decode(data))


@lru_cache(maxsize=1)
def srgb_icc() -> bytes:
    """A real ICC profile's bytes (made once: its header holds the creation time, so two
    calls a second apart differ)."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def private_exif(orientation: int = 1) -> Image.Exif:
    """EXIF with GPS coordinates, camera make and (optionally) an orientation."""
    exif = Image.Exif()
    exif[MAKE] = "SecretCam"
    if orientation != 1:
        exif[ORIENTATION] = orientation
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)})
    return exif


def jpeg_with_secrets(image: Image.Image | None = None, *, orientation: int = 1) -> bytes:
    """A JPEG carrying GPS and camera EXIF, XMP, a comment and an ICC profile."""
    return encode(image or photo(), "JPEG", quality=90, exif=private_exif(orientation),
                  xmp=XMP, comment=b"shot at home", icc_profile=srgb_icc())


def oriented_jpeg(orientation: int) -> tuple[bytes, Image.Image]:
    """A JPEG stored so that applying `orientation` shows `asymmetric()` upright."""
    upright = asymmetric()
    # Store the inverse of the transform the viewer will apply.
    inverse = {1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
               4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
               6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
               8: Image.Transpose.ROTATE_270}[orientation]
    stored = upright if inverse is None else upright.transpose(inverse)
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    return encode(stored, "JPEG", quality=95, exif=exif), upright


def animated_gif(frames: int = 4, size: tuple[int, int] = (60, 40)) -> bytes:
    """A small animated GIF."""
    images = []
    for index in range(frames):
        frame = Image.new("P", size, 0)
        frame.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 756)
        ImageDraw.Draw(frame).rectangle((index * 10, 5, index * 10 + 12, 30), fill=1 + index % 3)
        images.append(frame)
    return encode(images[0], "GIF", save_all=True, append_images=images[1:], duration=100, loop=0)
