"""From an uploaded photo to a Fashion-MNIST-like 28x28 input, keeping every step for the UI.

Decoding is defensive: a whitelist of formats, a pixel limit against decompression bombs,
EXIF orientation applied, and every mode (CMYK, RGBA, I;16, P, animated) converted explicitly.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

FORMATS = ["JPEG", "PNG", "WEBP", "BMP", "GIF"]  # Pillow reads phones' multi-picture JPEGs as JPEG
MAX_PIXELS = 50_000_000  # refuse anything larger (PIL's default warns only at ~89M)
MAX_BYTES = 40 * 1024 * 1024


class ImageError(ValueError):
    """The file is not an image this app can read; the message says why, for the user."""


def load_image(src: str | os.PathLike | bytes | io.IOBase) -> Image.Image:
    """Decode src into an upright RGB PIL image, or raise ImageError with a clear message."""
    if isinstance(src, (str, os.PathLike)):
        path = Path(src)
        if not path.is_file():
            raise ImageError(f"{path.name}: no such file")
        if path.stat().st_size > MAX_BYTES:
            raise ImageError(f"{path.name}: file is larger than {MAX_BYTES // 2**20} MB")
        data = path.read_bytes()
    elif isinstance(src, bytes):
        data = src
    else:
        data = src.read()
    if not data:
        raise ImageError("the file is empty (0 bytes)")
    if len(data) > MAX_BYTES:
        raise ImageError(f"file is larger than {MAX_BYTES // 2**20} MB")
    try:
        img = Image.open(io.BytesIO(data), formats=FORMATS)
        if img.width * img.height > MAX_PIXELS:
            raise ImageError(f"image is too large ({img.width}x{img.height} pixels; the limit is "
                             f"{MAX_PIXELS // 1_000_000} megapixels)")
        img.seek(0)  # animated GIF/WebP: the first frame
        img.load()
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageError("image is too large to decode safely (decompression bomb?)") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"not a supported image (allowed: {', '.join(FORMATS)})") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError(f"the image is damaged or truncated ({str(exc)[:120]})") from exc
    img = ImageOps.exif_transpose(img) or img
    return to_rgb(img)


def to_rgb(img: Image.Image) -> Image.Image:
    """Explicit conversion from any PIL mode to RGB; transparency is composited on white."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo or 1) * 255
        return Image.fromarray(arr.astype(np.uint8), "L").convert("RGB")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, img).convert("RGB")
    return img.convert("RGB")  # CMYK, L, 1, YCbCr, LAB, HSV


@dataclass
class Prepared:
    """The 28x28 model input plus each intermediate step, (name, uint8 array), for display."""

    image28: np.ndarray  # (28, 28) uint8, garment light on black
    steps: list[tuple[str, np.ndarray]] = field(default_factory=list)


def naive(img: Image.Image) -> np.ndarray:
    """The usual baseline: greyscale, invert when the border is light, squash to 28x28."""
    grey = np.asarray(img.convert("L").resize((28, 28), Image.BILINEAR), dtype=np.uint8)
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    return 255 - grey if border.mean() > 127 else grey


def prepare(img: Image.Image) -> Prepared:
    """Photo -> Fashion-MNIST-like 28x28, with the steps the UI shows."""
    rgb = np.asarray(img)
    grey = np.asarray(img.convert("L"))
    out = naive(img)
    return Prepared(out, [("upright RGB", rgb), ("greyscale", grey), ("28x28", out)])
