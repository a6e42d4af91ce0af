"""Tiny Fashion-MNIST look-alikes written as real IDX files, so tests use torchvision's loader."""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np


def class_pattern(label: int, rng: np.random.Generator) -> np.ndarray:
    """A 28x28 uint8 image whose bright block position encodes the class, plus noise."""
    img = rng.integers(0, 40, (28, 28), dtype=np.uint8)
    r, c = divmod(label, 4)
    img[3 + r * 8: 3 + r * 8 + 7, 2 + c * 6: 2 + c * 6 + 6] = 230
    return img


def write_idx(root: Path, n_train: int = 600, n_test: int = 200, seed: int = 0) -> Path:
    """Write the four extracted IDX files under root/FashionMNIST/raw; returns root."""
    raw = Path(root) / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        rng.shuffle(labels)
        images = np.stack([class_pattern(int(k), rng) for k in labels])
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes())
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + labels.tobytes())
    return Path(root)
