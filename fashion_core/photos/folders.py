"""Labelled real photos: a folder per garment type (../shared/data/README.md names them).

A training photo folder (clothing-photos-train) is split once into two fixed slices, by a hash of each
file's name (not its content or folder), stratified: the same share of every garment folder.
    train     what a photo fine-tune learns from (TrainConfig.photo_dir)
    holdout   HOLDOUT_SHARE of each folder: the unsure threshold (photos.thresholds) and any other setting
              are chosen here, never on a photo the model learned from
A measuring folder (clothing-photos-dev) is neither learned from nor chosen on: benchmarks/photo_accuracy.py
measures on all of it, and leaves out of its headline any run whose photo_dir holds one of its photos (by
content, under any name).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from fashion_core.config import PHOTO_MAPPING, PHOTO_UNMAPPED
from fashion_core.photos.pipeline import ImageError, load_image, prepare

MAPPING = PHOTO_MAPPING  # folder -> the Fashion-MNIST classes that count as correct
UNMAPPED = PHOTO_UNMAPPED  # no Fashion-MNIST class: a model should be unsure
EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif"}
SLICES = ("train", "holdout")
HOLDOUT_SHARE = 0.15


def _digest(path: str | Path) -> bytes:
    """A photo's fixed fingerprint, from its file name: its slice and its reframe() seeds come from it."""
    return hashlib.sha1(Path(path).name.encode()).digest()


def fingerprint(path: str | Path) -> str:
    """A photo's content hash: the same photo under any name or folder has the same one."""
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()


def collect(photo_dir: str | Path) -> list[tuple[str, Path]]:
    """(folder, file) for every photo in a mapped or unmapped folder, in a stable order."""
    root = Path(photo_dir)
    folders = [d for d in sorted(root.iterdir()) if d.is_dir() and d.name in {*MAPPING, *UNMAPPED}]
    return [(d.name, f) for d in folders for f in sorted(d.iterdir()) if f.suffix.lower() in EXTENSIONS]


def slices(photos: list[tuple[str, Path]]) -> list[str]:
    """The slice of each (folder, file): in every folder the HOLDOUT_SHARE of its files (rounded, at least one
    of two or more) whose name hashes lowest are 'holdout', the rest 'train'. A photo's slice depends only on
    its name and its folder's other names, so adding photos to a folder moves few."""
    by_folder: dict[str, list[int]] = {}
    for i, (folder, path) in enumerate(photos):
        by_folder.setdefault(folder, []).append(i)
    out = ["train"] * len(photos)
    for idx in by_folder.values():
        n_hold = max(int(len(idx) >= 2), round(HOLDOUT_SHARE * len(idx)))
        for i in sorted(idx, key=lambda i: _digest(photos[i][1]))[:n_hold]:
            out[i] = "holdout"
    return out


def photos_in(photo_dir: str | Path, which: str = "train") -> list[tuple[str, Path]]:
    """(folder, file) of the photos in one slice of photo_dir ('train' or 'holdout'), or 'all' of them."""
    if which not in (*SLICES, "all"):
        raise ValueError(f"which: {which!r} is not a slice; choose one of {', '.join(SLICES)} or 'all'")
    photos = collect(photo_dir)
    return photos if which == "all" else [p for p, s in zip(photos, slices(photos)) if s == which]


def fingerprints(photo_dir: str | Path, which: str = "train") -> set[str]:
    """The content hashes of one slice of photo_dir: what a run with this photo_dir learned from ('train')."""
    return {fingerprint(p) for _, p in photos_in(photo_dir, which)}


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


def load_photo_set(photo_dir: str | Path, which: str = "train", views: int = 1,
                   ) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """One slice of photo_dir ('train', 'holdout' or 'all') through the photo pipeline: uint8 (N, 28, 28),
    target sets (N, 10), folders. views > 1 adds views - 1 reframed shots of every photo (reframe()), each
    through the pipeline on its own. Unreadable files are left out."""
    images, folders = [], []
    for folder, path in photos_in(photo_dir, which):
        try:
            img = load_image(path)
        except ImageError:
            continue
        seed = int.from_bytes(_digest(path)[2:6], "little")
        for view in range(views):
            images.append(prepare(img if view == 0 else reframe(img, seed + view)).image28)
            folders.append(folder)
    if not images:
        raise ValueError(f"photo_dir: no readable photos in the {which} slice of {photo_dir}")
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
