"""Labelled real photos: a folder per garment type (../shared/data/README.md names them).

Each photo falls in one fixed quarter, by a hash of its file name (not its content or folder):
    train         fine-tuning may learn from these (TrainConfig.photo_dir)
    calib         unsure thresholds are picked here, unless a run trains on it too
                  (TrainConfig.photo_shares); then its threshold comes from cross-fitting over the
                  quarters it learned from (fashion_core.photos.cv)
    held-out-a,   together the held-out share: only ever measured (benchmarks/photo_accuracy.py),
    held-out-b    except by a run that learns from every quarter, which is measured by
                  cross-validation instead: each quarter by the same recipe trained on the other three
so a number reported on a photo never comes from a model that learned from it, nor from a threshold
picked on it (though for a run that learned from every photo, the folds whose scores pick a quarter's
threshold did learn from that quarter).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from fashion_core.config import PHOTO_MAPPING, PHOTO_QUARTERS, PHOTO_UNMAPPED
from fashion_core.photos.pipeline import ImageError, load_image, prepare

MAPPING = PHOTO_MAPPING  # folder -> the Fashion-MNIST classes that count as correct
UNMAPPED = PHOTO_UNMAPPED  # no Fashion-MNIST class: a model should be unsure
EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif"}
QUARTERS = PHOTO_QUARTERS  # what TrainConfig.photo_shares names
HELD_OUT = QUARTERS[2:]  # the quarters that make up the held-out share
LEARNED_PHOTOS = "photos_learned.json"  # in a run folder: fingerprint -> quarter of each photo it learned from


def _digest(path: str | Path) -> bytes:
    """A photo's fixed fingerprint, from its file name: its share and its reframe() seeds come from it."""
    return hashlib.sha1(Path(path).name.encode()).digest()


def quarter(path: str | Path) -> str:
    digest = _digest(path)
    if digest[0] % 2:
        return "held-out-a" if digest[1] % 2 == 0 else "held-out-b"
    return "train" if digest[1] % 2 == 0 else "calib"


def share(path: str | Path) -> str:
    """train, calib or held-out (both held-out quarters)."""
    q = quarter(path)
    return "held-out" if q in HELD_OUT else q


def fingerprint(path: str | Path) -> str:
    """A photo's content hash: the same photo under any name or folder has the same one."""
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()


def photos_of(photo_dir: str | Path, shares: tuple[str, ...] | list[str]) -> dict[str, str]:
    """Fingerprint -> quarter of each photo in photo_dir that a run learning from these shares or
    quarters saw (the quarter as it was then, whatever the photo is called later)."""
    return {fingerprint(p): quarter(p) for _, p in collect(photo_dir) if share(p) in shares or quarter(p) in shares}


def collect(photo_dir: str | Path) -> list[tuple[str, Path]]:
    """(folder, file) for every photo in a mapped or unmapped folder, in a stable order."""
    root = Path(photo_dir)
    folders = [d for d in sorted(root.iterdir()) if d.is_dir() and d.name in {*MAPPING, *UNMAPPED}]
    return [(d.name, f) for d in folders for f in sorted(d.iterdir()) if f.suffix.lower() in EXTENSIONS]


def target_sets(folders: list[str]) -> torch.Tensor:
    """(N, 10) bool: the classes that count as correct; all False for an unmapped folder."""
    sets = torch.zeros(len(folders), 10, dtype=torch.bool)
    for i, name in enumerate(folders):
        sets[i, list(MAPPING.get(name, ()))] = True
    return sets


def reframe(img, seed: int):
    """Another shot of the same garment, as a different upload of it might be: a crop keeping 80-100%
    of each side at a random place, a tilt of up to 7 degrees (corners filled with the border's
    median colour), and brightness, contrast and colour changed by up to 25%. Deterministic in seed."""
    from PIL import Image, ImageEnhance  # noqa: PLC0415

    rng = np.random.default_rng(seed)
    w, h = img.size
    cw, ch = (max(1, int(round(side * rng.uniform(0.8, 1.0)))) for side in (w, h))
    x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    img = img.crop((x0, y0, x0 + cw, y0 + ch))
    a = np.asarray(img)
    frame = np.concatenate([a[:3].reshape(-1, 3), a[-3:].reshape(-1, 3), a[:, :3].reshape(-1, 3),
                            a[:, -3:].reshape(-1, 3)])
    img = img.rotate(float(rng.uniform(-7, 7)), resample=Image.BILINEAR,
                     fillcolor=tuple(int(v) for v in np.median(frame, axis=0)))
    for enhance in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
        img = enhance(img).enhance(float(rng.uniform(0.75, 1.25)))
    return img


def load_photo_set(photo_dir: str | Path, which: str | list[str] = "train", views: int = 1,
                   ) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """The photos of one share or quarter (or of several) through the photo pipeline: uint8 (N, 28, 28), target
    sets (N, 10), folders. views > 1 adds views - 1 reframed shots of every photo (reframe()), each
    through the pipeline on its own. Unreadable files are left out."""
    which = [which] if isinstance(which, str) else list(which)
    images, folders = [], []
    for folder, path in collect(photo_dir):
        if share(path) not in which and quarter(path) not in which:
            continue
        try:
            img = load_image(path)
        except ImageError:
            continue
        seed = int.from_bytes(_digest(path)[2:6], "little")
        for view in range(views):
            images.append(prepare(img if view == 0 else reframe(img, seed + view)).image28)
            folders.append(folder)
    if not images:
        raise ValueError(f"photo_dir: no readable photos of the {' or '.join(which)} share in {photo_dir}")
    return torch.from_numpy(np.stack(images)), target_sets(folders), folders


def photo_loss(logits: torch.Tensor, sets: torch.Tensor, outlier_weight: float, target: str = "any",
               ) -> torch.Tensor:
    """Mapped photo: -log P(any correct class) (target 'any'), or -log P(its likeliest correct class)
    (target 'top': a shoe photo learns to commit to one of Sandal, Sneaker, Ankle boot, as "unsure"
    reads the top class's probability). Unmapped photo: cross-entropy to the uniform distribution
    (outlier exposure), so the model learns to spread its belief on such garments."""
    logp = logits.float().log_softmax(1)
    mapped = sets.any(1)
    loss = logits.new_zeros((), dtype=torch.float32)
    if mapped.any():
        allowed = logp[mapped].masked_fill(~sets[mapped], float("-inf"))
        loss = loss - (allowed.amax(1) if target == "top" else allowed.logsumexp(1)).sum()
    if (~mapped).any():
        loss = loss - outlier_weight * logp[~mapped].mean(1).sum()
    return loss / len(logits)
