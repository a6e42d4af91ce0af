"""Numbers and pictures about the dataset for the Dataset page: gallery pages, class balance,
mean/std images, intensity histograms and 2-D embeddings (PCA, t-SNE, UMAP)."""
from __future__ import annotations

import base64
import io

import numpy as np
import torch
from PIL import Image

from fashion_core.data import CLASSES, NUM_CLASSES, split_indices

EMBEDDINGS = ("PCA", "t-SNE", "UMAP")


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


def embed(images: torch.Tensor, method: str, seed: int = 0) -> np.ndarray:
    """(N, 28, 28) uint8 -> (N, 2) coordinates; t-SNE and UMAP run on a 50-d PCA first (faster, less noise)."""
    x = images.reshape(len(images), -1).float().div(255).numpy()
    if method not in EMBEDDINGS:
        raise ValueError(f"method: unknown embedding {method!r}; choose one of {', '.join(EMBEDDINGS)}")
    from sklearn.decomposition import PCA  # noqa: PLC0415 (heavy imports only when asked)

    if method == "PCA":
        return PCA(2, random_state=seed).fit_transform(x)
    x50 = PCA(min(50, len(x), x.shape[1]), random_state=seed).fit_transform(x)
    if method == "t-SNE":
        from sklearn.manifold import TSNE  # noqa: PLC0415

        return TSNE(2, perplexity=min(30.0, (len(x) - 1) / 3), init="pca", random_state=seed).fit_transform(x50)
    import umap  # noqa: PLC0415

    return umap.UMAP(n_neighbors=min(15, len(x) - 1), random_state=seed, n_jobs=1).fit_transform(x50)


def png_data_uri(image_u8: np.ndarray, scale: int = 3) -> str:
    """A small PNG as a data: URI, for hover previews in the browser."""
    img = Image.fromarray(upscale(image_u8, scale))
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def upscale(image: np.ndarray, k: int = 4) -> np.ndarray:
    """Nearest-neighbour k-times upscaling to uint8, so a 28x28 image stays crisp in the browser."""
    img = np.clip(np.asarray(image), 0, 255).astype(np.uint8)
    return img.repeat(k, axis=0).repeat(k, axis=1)


__all__ = ["CLASSES", "EMBEDDINGS", "gallery_page", "class_balance", "mean_std_images",
           "intensity_histograms", "sample", "embed", "png_data_uri", "upscale"]
