"""Generate the small real asset tree in fixtures/site/ (committed; run again to rebuild it).

Every file is made here from code, deterministically: images with Pillow, a WAV with the stdlib
`wave` module, an MP3 of silent MPEG-1 Layer III frames, and text files. The tree exercises
every visibility rule (toolkit `.protected.`/`.private.` markers and config globs), whitespace
in names, nesting, the deny list and the repository's `[ignore] patterns`.

Usage: python scripts/make_fixtures.py [DEST]   (default: fixtures/site next to this script)
"""

from __future__ import annotations

import io
import json
import math
import shutil
import struct
import sys
import wave
from pathlib import Path

from PIL import Image, ImageDraw


def _png(size: tuple[int, int], colour: tuple[int, int, int]) -> bytes:
    img = Image.new("RGB", size, colour)
    draw = ImageDraw.Draw(img)
    draw.ellipse(
        (size[0] // 4, size[1] // 4, 3 * size[0] // 4, 3 * size[1] // 4), fill=(255, 255, 255)
    )
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def _jpeg(size: tuple[int, int]) -> bytes:
    img = Image.new("RGB", size)
    img.putdata(
        [
            ((x * 7) % 256, (y * 5) % 256, ((x + y) * 3) % 256)
            for y in range(size[1])
            for x in range(size[0])
        ]
    )
    out = io.BytesIO()
    img.save(out, "JPEG", quality=85)
    return out.getvalue()


def _gif() -> bytes:
    frames = [Image.new("P", (16, 16), i) for i in (1, 2, 3)]
    for frame in frames:
        frame.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 12))
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=200, loop=0)
    return out.getvalue()


def _wav(seconds: float, hz: float) -> bytes:
    rate = 8000  # 8 kHz mono 16-bit: what telephony audio usually is
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(
            b"".join(
                struct.pack("<h", int(8000 * math.sin(2 * math.pi * hz * i / rate)))
                for i in range(int(rate * seconds))
            )
        )
    return out.getvalue()


def _mp3(frames: int) -> bytes:
    # MPEG-1 Layer III, 128 kbit/s, 44.1 kHz, no padding, no CRC: header FF FB 90 64, frame
    # length 144 * 128000 / 44100 = 417 bytes. All-zero side info and main data decode as silence.
    frame = bytes.fromhex("FFFB9064") + bytes(417 - 4)
    return frame * frames


SVG = """<svg xmlns="http://www.w3.org/2000/svg" width="32" height="32" viewBox="0 0 32 32">
  <circle cx="16" cy="16" r="14" fill="#f22f46"/>
  <circle cx="11" cy="11" r="3" fill="#fff"/><circle cx="21" cy="11" r="3" fill="#fff"/>
  <circle cx="11" cy="21" r="3" fill="#fff"/><circle cx="21" cy="21" r="3" fill="#fff"/>
</svg>
"""

HTML = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>assetsync demo</title>
<link rel="stylesheet" href="/css/site.css"></head>
<body><img src="/img/logo.png" alt="logo"><h1>assetsync demo</h1></body>
</html>
"""

CSS = "body { font-family: sans-serif; margin: 2rem; }\nimg { width: 64px; }\n"


def build(dest: Path) -> dict[str, bytes]:
    """The tree as {relative path: bytes}."""
    return {
        # public, by default
        "index.html": HTML.encode(),
        "css/site.css": CSS.encode(),
        "data/menu.json": (json.dumps({"items": ["sales", "support"]}, indent=2) + "\n").encode(),
        "img/logo.png": _png((64, 64), (242, 47, 70)),
        "img/icon.svg": SVG.encode(),
        "img/spinner.gif": _gif(),
        "img/team photo.jpg": _jpeg((48, 32)),  # whitespace: published as /img/team-photo.jpg
        "audio/welcome.mp3": _mp3(24),
        # toolkit markers
        "audio/hold-music.protected.wav": _wav(0.5, 440.0),
        "data/pricing.private.json": b'{"plan": "internal", "price": 42}\n',
        # config globs ([visibility] protected = ["audio/ivr/**"], private = ["data/internal/**"])
        "audio/ivr/menu.wav": _wav(0.25, 660.0),
        "data/internal/roster.json": b'{"on_call": "ops"}\n',
        # never published: the deny list and the repository's [ignore] patterns
        ".env": b"EXAMPLE_ONLY=not-a-real-secret\n",
        "img/.DS_Store": bytes(16),
        "drafts/logo-draft.png": _png((16, 16), (0, 0, 0)),
        "img/logo.psd": b"8BPS fake photoshop file\n",
    }


def main(argv: list[str]) -> int:
    dest = (
        Path(argv[1])
        if len(argv) > 1
        else Path(__file__).resolve().parent.parent / "fixtures" / "site"
    )
    if dest.exists():
        shutil.rmtree(dest)
    for rel, data in build(dest).items():
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    print(f"wrote {len(build(dest))} files under {dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
