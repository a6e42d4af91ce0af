"""Numbers and pictures about the dataset for the Dataset page: gallery pages, class balance,
mean/std images, intensity histograms and 2-D embeddings (PCA, t-SNE, UMAP)."""
from __future__ import annotations

import base64
import hashlib
import io
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fashion_core.data import CLASSES, NUM_CLASSES, split_indices

EMBEDDINGS = ("PCA", "t-SNE", "UMAP")
EMBED_VERSION = 2  # part of the disk cache's key: raise it when a method's settings change


def gallery_page(labels: torch.Tensor, classes: list[int], page: int, per_page: int) -> tuple[np.ndarray, int]:
    """Indices of the images on `page` (0-based) among images of the chosen classes, and the page count."""
    keep = torch.isin(labels, torch.tensor(classes or list(range(NUM_CLASSES)))).nonzero().flatten().numpy()
    pages = max(1, -(-len(keep) // per_page))
    page = min(max(page, 0), pages - 1)
    return keep[page * per_page:(page + 1) * per_page], pages


def class_balance(train_labels: torch.Tensor, test_labels: torch.Tensor, val_split: str = "random",
                  val_fraction: float = 0.2, val_count: int = 4000, seed: int = 0) -> dict[str, list[int]]:
    """Images per class in train, validation (as the trainer would split) and test."""
    tr, va = split_indices(train_labels, val_split, val_fraction, val_count, seed)

    def count(lab: torch.Tensor) -> list[int]:
        return torch.bincount(lab, minlength=NUM_CLASSES).tolist()

    return {"train": count(train_labels[tr]), "validation": count(train_labels[va]), "test": count(test_labels)}


def mean_std_images(images: torch.Tensor, labels: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per-class mean and standard-deviation images, (10, 28, 28) float in pixel units."""
    x = images.float()
    mean = torch.stack([x[labels == c].mean(0) for c in range(NUM_CLASSES)])
    std = torch.stack([x[labels == c].std(0) for c in range(NUM_CLASSES)])
    return mean.numpy(), std.numpy()


def intensity_histograms(images: torch.Tensor, labels: torch.Tensor, bins: int = 32,
                         skip_black: bool = True) -> np.ndarray:
    """(10, bins) fraction of pixels per intensity bin for each class (background 0s optional)."""
    out = np.zeros((NUM_CLASSES, bins))
    for c in range(NUM_CLASSES):
        px = images[labels == c].flatten()
        if skip_black:
            px = px[px > 0]
        hist = torch.bincount(px.long() * bins // 256, minlength=bins).double()
        out[c] = (hist / hist.sum().clamp(min=1)).numpy()
    return out


def sample(labels: torch.Tensor, n: int, seed: int = 0) -> np.ndarray:
    """n random indices (sorted), the same for the same seed."""
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(len(labels), generator=g)[: min(n, len(labels))].sort().values.numpy()


def _pca(x: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    """(N, D) -> (N, k) scores on the first k principal components. torch's randomized low-rank PCA,
    oversampled by 10 components: 0.04 s for 2,000 images, sklearn's PCA 0.5 s with its first import."""
    q = min(k + 10, *x.shape)
    with torch.random.fork_rng(devices=[]):  # its random projections: the same map for the same seed
        torch.manual_seed(seed)
        _, _, v = torch.pca_lowrank(x, q=q, center=True, niter=3)
    return (x - x.mean(0)) @ v[:, :k]


def embed(images: torch.Tensor, method: str, seed: int = 0, cache_dir: Path | None = None) -> np.ndarray:
    """(N, 28, 28) uint8 -> (N, 2) coordinates; t-SNE and UMAP run on a 50-d PCA first (faster, less noise).

    cache_dir: keep each map there as .npy, keyed by the images, method and seed, so the same map
    comes back at once after an app restart. Settings measured with benchmarks/app_speed.py (2,000
    images, 2 cores): t-SNE stops at 500 iterations with learning rate N/12 (at least 200), which draws
    the same clusters as sklearn's default 1,000 in half the time (6 s); UMAP takes its 15 neighbours
    from torch instead of calling its own distance once per pair from Python (most of its time below
    4,096 images), and runs 200 epochs: 1.2 s against 8.6 s, after the ~7 s its first call compiles.
    """
    if method not in EMBEDDINGS:
        raise ValueError(f"method: unknown embedding {method!r}; choose one of {', '.join(EMBEDDINGS)}")
    flat = images.reshape(len(images), -1)
    path = None
    if cache_dir is not None:
        key = hashlib.sha1(flat.numpy().tobytes() + f"{method}|{seed}|{EMBED_VERSION}".encode()).hexdigest()
        path = Path(cache_dir) / f"{method.lower()}-{len(flat)}-{key[:16]}.npy"
        if path.exists():
            return np.load(path)
    xy = _embed(flat.float().div(255), method, seed)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            np.save(f, xy)
        os.replace(tmp, path)  # atomic: a second session reading it never sees half a file
    return xy


def _embed(x: torch.Tensor, method: str, seed: int) -> np.ndarray:
    """(N, 784) floats in [0, 1] -> (N, 2) float32 coordinates."""
    if method == "PCA":
        return _pca(x, 2, seed).numpy()
    x50 = _pca(x, min(50, *x.shape), seed)
    n = len(x)
    if method == "t-SNE":
        from sklearn.manifold import TSNE  # noqa: PLC0415 (heavy imports only when asked)

        return TSNE(2, perplexity=min(30.0, (n - 1) / 3), init="pca", max_iter=500, learning_rate=max(200.0, n / 12),
                    random_state=seed).fit_transform(x50.numpy()).astype(np.float32)
    import umap  # noqa: PLC0415

    k = min(15, n - 1)
    dist, ind = torch.cdist(x50, x50).topk(k, largest=False)  # each point's k nearest, itself first
    with warnings.catch_warnings():  # "no search index": we never map new points onto this one
        warnings.simplefilter("ignore")
        return umap.UMAP(n_neighbors=k, n_epochs=200, random_state=seed, n_jobs=1,
                         precomputed_knn=(ind.numpy(), dist.numpy(), None)).fit_transform(x50.numpy())


def contact_sheet(images: np.ndarray, columns: int = 50) -> np.ndarray:
    """(N, h, w) -> one (rows*h, columns*w) image, image i at row i // columns, column i % columns
    (the last row padded with black): the embedding map's hover images as a single PNG."""
    n, h, w = images.shape
    rows = max(1, -(-n // columns))
    sheet = np.zeros((rows * columns, h, w), np.uint8)
    sheet[:n] = np.clip(images, 0, 255)
    return sheet.reshape(rows, columns, h, w).transpose(0, 2, 1, 3).reshape(rows * h, columns * w)


def png_data_uri(image_u8: np.ndarray) -> str:
    """A PNG as a data: URI, for the browser (which scales it up itself, pixelated)."""
    buf = io.BytesIO()
    Image.fromarray(np.clip(np.asarray(image_u8), 0, 255).astype(np.uint8)).save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def upscale(image: np.ndarray, k: int = 4) -> np.ndarray:
    """Nearest-neighbour k-times upscaling to uint8, so a 28x28 image stays crisp in the browser."""
    img = np.clip(np.asarray(image), 0, 255).astype(np.uint8)
    return img.repeat(k, axis=0).repeat(k, axis=1)


__all__ = ["CLASSES", "EMBEDDINGS", "gallery_page", "class_balance", "mean_std_images",
           "intensity_histograms", "sample", "embed", "contact_sheet", "png_data_uri", "upscale"]
