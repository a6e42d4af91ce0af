"""From an uploaded photo to a Fashion-MNIST-like 28x28 input, keeping every step for the UI.

Decoding is defensive (format whitelist, pixel limit, EXIF orientation, every mode converted);
then the garment is separated from its background (GrabCut seeded from the border colours),
cropped, inverted onto black, contrast-matched to Fashion-MNIST and resized like its images.
"""
from __future__ import annotations

import io
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

FORMATS = ["JPEG", "PNG", "WEBP", "BMP", "GIF"]  # Pillow reads phones' multi-picture JPEGs as JPEG
MAX_PIXELS = 50_000_000  # refuse anything larger (PIL's default warns only at ~89M)
MAX_BYTES = 40 * 1024 * 1024
WORK_SIDE = 256  # pixels: the working copy that is cropped and resized to 28x28
# pixels: segmentation runs on a smaller copy and its mask is scaled up to the working copy, with 4 rounds of
# GrabCut. Its cost grows with the area and the rounds, and a 28x28 input needs no finer mask: on the 341 dev
# photos prepare() took p50 170 ms / p90 410 ms at 256 px, 47 / 103 at 128 px (benchmarks/photo_speed.py).
# 96 px and 3 rounds took 26 / 52 but left 5 more dev photos unsure with the shipped thresholds, so it waits
# for thresholds and a photo run chosen with it on the holdout slice
SEGMENT_SIDE = 128
GRABCUT_ITERATIONS = 4  # GrabCut's rounds of colour models and graph cut
# The second GrabCut (the centre of the frame, when the colour-seeded one finds an implausible mask) is started
# at once, on another core, when the colour seed marks less than this share of the frame as garment: on 522
# training photos, 72-83% of those photos needed it against 1% above 0.4. It stops at its next round when it
# turns out not to be needed; either way every photo gets the very mask the two GrabCuts in turn would give.
SPECULATE_BELOW = 0.4
_FALLBACK: tuple[int, ThreadPoolExecutor] | None = None  # (process id, its pool): see _fallback_pool
BORDER = 0.04  # fraction of the side whose colours describe the background
# Fashion-MNIST garments (pixels > 20 of its 60k training images): mean 158, per-image std ~48.
TARGET_MEAN, TARGET_STD, FLOOR = 158.0, 48.0, 50.0  # 0..255 grey levels
MAX_GAIN = 3.0  # cap on the contrast stretch, so sensor noise on a plain garment stays noise
MIN_SIDE = 16  # pixels: a smaller picture has no garment to find (Fashion-MNIST itself is 28x28)
MIN_SPREAD = 8  # grey levels between the 1st and 99th percentile: less is one flat colour, nothing to classify


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
        raise ImageError(f"file is larger than {MAX_BYTES // 2**20} MB: save it smaller (a JPEG of a few MB is "
                         "plenty; the model sees 28x28 pixels)")
    try:
        img = Image.open(io.BytesIO(data), formats=FORMATS)
        if img.width * img.height > MAX_PIXELS:
            raise ImageError(f"image is too large ({img.width}x{img.height} pixels; the limit is "
                             f"{MAX_PIXELS // 1_000_000} megapixels): resize it and try again")
        img.seek(0)  # animated GIF/WebP: the first frame
        img.load()
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageError(f"image has too many pixels to open safely (the limit is {MAX_PIXELS // 1_000_000} "
                         "megapixels): resize it and try again") from exc
    except UnidentifiedImageError as exc:
        raise ImageError(f"not a supported image (allowed: {', '.join(FORMATS)})") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageError("the image is damaged or cut short (the file ends before the picture does, or its data "
                         "is corrupt): save or download it again and retry") from exc
    img = ImageOps.exif_transpose(img) or img
    if min(img.size) < MIN_SIDE:
        raise ImageError(f"image is too small ({img.width}x{img.height} pixels; at least {MIN_SIDE}x{MIN_SIDE} "
                         "are needed to find a garment)")
    rgb = to_rgb(img)
    if spread(rgb) < MIN_SPREAD:
        raise ImageError("the image is one flat colour (blank, or fully transparent): there is no garment in it "
                         "to classify")
    return rgb


def spread(img: Image.Image) -> float:
    """Grey levels between the 1st and 99th percentile of a small grey copy: how much the picture
    varies at all, ignoring a few stray pixels."""
    grey = np.asarray(working_copy(img, 64).mean(-1))
    lo, hi = np.percentile(grey, [1, 99])
    return float(hi - lo)


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


# what the app and the CLI say when Prepared.found is False
NOT_FOUND = "No garment stood out from the background, so the centre of the photo was used"


@dataclass
class Prepared:
    """The 28x28 model input plus each intermediate step, (name, uint8 array), for display."""

    image28: np.ndarray  # (28, 28) uint8, garment light on black
    steps: list[tuple[str, np.ndarray]] = field(default_factory=list)
    mask: np.ndarray | None = None  # (h, w) bool garment mask on the working copy
    box: tuple[int, int, int, int] | None = None  # garment box (x0, y0, x1, y1) on the working copy
    found: bool = True  # False when segmentation gave up and the central 80% of the frame was used


def naive(img: Image.Image) -> np.ndarray:
    """The usual baseline: greyscale, invert when the border is light, squash to 28x28."""
    grey = np.asarray(img.convert("L").resize((28, 28), Image.BILINEAR), dtype=np.uint8)
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    return 255 - grey if border.mean() > 127 else grey


def working_copy(img: Image.Image, side: int = WORK_SIDE) -> np.ndarray:
    """(h, w, 3) uint8 RGB whose longer side is `side` pixels (never upscaled above it)."""
    scale = side / max(img.size)
    size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
    rgb = img if img.mode == "RGB" else img.convert("RGB")  # convert() copies even an RGB picture
    return np.asarray(rgb.resize(size, Image.BILINEAR if scale < 1 else Image.BICUBIC))


def border_distance(rgb: np.ndarray, k: int = 4) -> tuple[np.ndarray, float]:
    """Lab distance of every pixel to the nearest border colour cluster, and a threshold.

    The frame's border is mostly background in a photo of one garment; pixels unlike any
    border colour are likely garment. Returns ((h, w) float32 distance, threshold).
    """
    lab = cv2.cvtColor(cv2.GaussianBlur(rgb, (5, 5), 0), cv2.COLOR_RGB2LAB).astype(np.float32)
    h, w = lab.shape[:2]
    b = max(2, round(BORDER * max(h, w)))
    ring = np.concatenate([lab[:b].reshape(-1, 3), lab[-b:].reshape(-1, 3),
                           lab[:, :b].reshape(-1, 3), lab[:, -b:].reshape(-1, 3)])
    k = min(k, len(ring))
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    cv2.setRNGSeed(0)  # k-means++ seeding: fixed so the same photo always gives the same input
    _, _, centres = cv2.kmeans(ring, k, None, criteria, 2, cv2.KMEANS_PP_CENTERS)
    return nearest(lab, centres), max(12.0, float(np.percentile(nearest(ring, centres), 90)))


def nearest(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Euclidean distance of each point (..., 3) to its nearest centre (k, 3): the same floats as
    np.linalg.norm(points[..., None, :] - centres, axis=-1).min(-1), in a third of its time (one centre at a
    time, and one square root a point: the root of the least sum is the least root)."""
    least = None
    for c in centres:
        d = points - c
        d2 = (d * d).sum(-1)
        least = d2 if least is None else np.minimum(least, d2)
    return np.sqrt(least)


def segment(rgb: np.ndarray, iterations: int | None = None) -> tuple[np.ndarray, bool]:
    """(h, w, 3) uint8 RGB -> ((h, w) bool garment mask, found).

    GrabCut seeded by colour: border-like pixels are probable background, the border ring itself
    definite background where it looks like the rest of the border, everything unlike the border
    probable garment. Then morphological cleanup, the largest component, holes filled.
    found is False when the result is implausible and the central 80% of the frame is used.
    iterations: GrabCut's (GRABCUT_ITERATIONS unless given).
    """
    iterations = iterations or GRABCUT_ITERATIONS
    h, w = rgb.shape[:2]
    dist, thr = border_distance(rgb)
    seed = np.full((h, w), cv2.GC_PR_BGD, np.uint8)
    seed[dist > thr] = cv2.GC_PR_FGD
    b = max(2, round(BORDER * max(h, w)))
    ring = np.zeros((h, w), bool)
    ring[:b], ring[-b:], ring[:, :b], ring[:, -b:] = True, True, True, True
    seed[ring & (dist <= thr)] = cv2.GC_BGD
    if (seed == cv2.GC_PR_FGD).mean() < 0.01:  # garment the colour of its background: trust the centre
        seed[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = cv2.GC_PR_FGD
    centre = np.full((h, w), cv2.GC_PR_BGD, np.uint8)  # the second try's seed: the centre of the frame
    centre[ring] = cv2.GC_BGD
    centre[h // 10: h - h // 10, w // 10: w - w // 10] = cv2.GC_PR_FGD
    stop = threading.Event()
    second = (_fallback_pool().submit(_grabcut, rgb, centre, iterations, stop)
              if (seed == cv2.GC_PR_FGD).mean() < SPECULATE_BELOW else None)
    mask = _grabcut(rgb, seed, iterations)
    if 0.02 <= mask.mean() <= 0.97:
        stop.set()  # not needed: it ends at its next round, before another photo's starts
        return mask, True
    mask = second.result() if second is not None else _grabcut(rgb, centre, iterations)
    if not 0.02 <= mask.mean() <= 0.97:
        mask = np.zeros((h, w), bool)
        mask[h // 10: h - h // 10, w // 10: w - w // 10] = True
        return mask, False
    return mask, True


def _fallback_pool() -> ThreadPoolExecutor:
    """The one thread the second GrabCut runs on (OpenCV releases the GIL), made anew in a forked child, where
    the parent's thread does not exist."""
    global _FALLBACK
    if _FALLBACK is None or _FALLBACK[0] != os.getpid():
        _FALLBACK = (os.getpid(), ThreadPoolExecutor(max_workers=1, thread_name_prefix="grabcut-fallback"))
    return _FALLBACK[1]


def _grabcut(rgb: np.ndarray, seed: np.ndarray, iterations: int, stop: threading.Event | None = None
             ) -> np.ndarray | None:
    """GrabCut from a seed label map, then open/close, keep the largest blob, fill its holes. With `stop`, one
    round per call (the same result as all rounds in one call: each round continues from the colour models and
    the mask the last one left), giving up (returning None) once stop is set."""
    gc = seed.copy()
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    cv2.setRNGSeed(0)  # the colour models' k-means start: OpenCV's generator is per thread
    try:
        if stop is None:
            cv2.grabCut(bgr, gc, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
        else:
            for i in range(iterations):
                if stop.is_set():
                    return None
                cv2.grabCut(bgr, gc, None, bgd, fgd, 1, cv2.GC_EVAL if i else cv2.GC_INIT_WITH_MASK)
    except cv2.error:  # a seed with no background or no garment sample: GrabCut cannot model it
        return np.isin(seed, (cv2.GC_FGD, cv2.GC_PR_FGD))
    fg = np.isin(gc, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.uint8)
    side = max(fg.shape)
    fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, _disk(max(1, side // 100)))
    fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, _disk(max(1, side // 60)))
    return largest_component(fg.astype(bool))


def _disk(r: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected blob of a bool mask, with its holes filled."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return mask.astype(bool)
    keep = (labels == 1 + int(stats[1:, cv2.CC_STAT_AREA].argmax())).astype(np.uint8)
    contours, _ = cv2.findContours(keep, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    filled = np.zeros_like(keep)
    cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
    return filled.astype(bool)


def garment_on_black(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Inverted grey inside the mask, contrast-matched to Fashion-MNIST garments, black outside.

    Fashion-MNIST is negated product shots, so a dark garment is bright; its garments have a
    mean of TARGET_MEAN and a spread of TARGET_STD, which a linear stretch reproduces here.
    """
    inv = 255.0 - cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    vals = inv[mask]
    if vals.size == 0:
        return np.zeros(mask.shape, np.uint8)
    gain = min(MAX_GAIN, TARGET_STD / max(float(vals.std()), 1e-3))
    out = TARGET_MEAN + (inv - float(vals.mean())) * gain
    out = np.clip(out, FLOOR, 255) * mask
    return out.round().astype(np.uint8)


def garment_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1), exclusive ends, of the mask's pixels (the whole frame when empty)."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return 0, 0, mask.shape[1], mask.shape[0]
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def centre_square(crop: np.ndarray) -> np.ndarray:
    """Pad a (h, w) or (h, w, c) crop with black to a (side, side) square, the crop centred, side = max(h, w)."""
    h, w = crop.shape[:2]
    side = max(h, w)
    top, left = (side - h) // 2, (side - w) // 2
    pad = [(top, side - h - top), (left, side - w - left)] + [(0, 0)] * (crop.ndim - 2)
    return np.pad(crop, pad)


def fit28(garment: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Crop to box, centre on a black square, resize to 28x28: the longest side spans all 28 pixels.

    No margin, as in Fashion-MNIST: measured on its 60k training images, the box of pixels > 0
    spans all 28 pixels along its longest side in 98.3% of images (pixels > 20: 91.9%, median 28,
    5th percentile 27), the box centre is at (13.6, 13.7) and the short side is centred
    (median margins 3 px left and right for upright garments).
    """
    x0, y0, x1, y1 = box
    square = centre_square(garment[y0:y1, x0:x1])
    interp = cv2.INTER_AREA if len(square) >= 28 else cv2.INTER_LINEAR
    return cv2.resize(square, (28, 28), interpolation=interp)


def overlay(rgb: np.ndarray, mask: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The working copy with the background dimmed and the garment box drawn, for the UI."""
    shown = np.where(mask[..., None], rgb, (rgb * 0.3).astype(np.uint8)).copy()
    x0, y0, x1, y1 = box
    cv2.rectangle(shown, (x0, y0), (x1 - 1, y1 - 1), (255, 64, 64), 1)
    return shown


def segment_scaled(rgb: np.ndarray, side: int = SEGMENT_SIDE, iterations: int | None = None
                   ) -> tuple[np.ndarray, bool]:
    """segment() on a copy whose longer side is `side` pixels, the mask scaled back up to rgb's size."""
    h, w = rgb.shape[:2]
    if max(h, w) <= side:
        return segment(rgb, iterations)
    scale = side / max(h, w)
    small = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    mask, found = segment(small, iterations)
    up = cv2.resize(mask.astype(np.uint8) * 255, (w, h), interpolation=cv2.INTER_LINEAR)
    return up >= 128, found


def prepare(img: Image.Image, segment_side: int = SEGMENT_SIDE, iterations: int | None = None) -> Prepared:
    """Photo -> Fashion-MNIST-like 28x28, with every step the UI shows, in order. segment_side: the size of the
    copy the garment is found on (WORK_SIDE: on the working copy itself, as before SEGMENT_SIDE); iterations:
    GrabCut's (GRABCUT_ITERATIONS unless given)."""
    rgb = working_copy(img)
    mask, found = segment_scaled(rgb, segment_side, iterations)
    box = garment_box(mask)
    garment = garment_on_black(rgb, mask)
    out = fit28(garment, box)
    x0, y0, x1, y1 = box
    crop = garment[y0:y1, x0:x1]
    steps = [("upright", rgb), ("greyscale", cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)),
             ("garment mask", overlay(rgb, mask, box)), ("inverted on black", garment),
             ("cropped to garment", crop), ("centred square", centre_square(crop)), ("28x28", out)]
    return Prepared(out, steps, mask, box, found)
