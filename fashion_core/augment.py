"""Batched, per-image random augmentation as tensor ops on the training device.

Each op has its own probability p and is drawn independently for every image (report 003's
AUGMENT_PROB semantics), unlike torchvision v2 batch transforms that draw once per batch.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from fashion_core.config import AugmentConfig

# Sandal, Sneaker, Ankle boot all face the same way in train and test (report 003).
NO_FLIP_CLASSES = (5, 7, 9)


def _mask(n: int, p: float, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=gen, device=device) < p


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen, device=device)


def augment_batch(x: torch.Tensor, labels: torch.Tensor | None, cfg: AugmentConfig,
                  gen: torch.Generator) -> torch.Tensor:
    """x: (N, 1, H, W) float in [0, 1] on any device -> augmented copy, same shape.

    `gen` must live on x.device; labels are needed only for the class-aware flip.
    """
    n, dev = x.shape[0], x.device
    if not cfg.active or n == 0:
        return x
    if cfg.hflip_p:
        m = _mask(n, cfg.hflip_p, gen, dev)
        if cfg.class_aware_flip and labels is not None:
            m &= ~torch.isin(labels, torch.tensor(NO_FLIP_CLASSES, device=dev))
        x = torch.where(m[:, None, None, None], x.flip(-1), x)
    if cfg.vflip_p:
        m = _mask(n, cfg.vflip_p, gen, dev)
        x = torch.where(m[:, None, None, None], x.flip(-2), x)
    if cfg.rotate_p or cfg.zoom_p or cfg.translate_p:
        x = _affine(x, cfg, gen)
    if cfg.crop_p and cfg.crop_pad:
        x = _pad_crop(x, cfg, gen)
    if cfg.brightness_p:
        f = 1 + _uniform(n, -cfg.brightness, cfg.brightness, gen, dev) * _mask(n, cfg.brightness_p, gen, dev)
        x = (x * f[:, None, None, None]).clamp(0, 1)
    if cfg.contrast_p:
        f = 1 + _uniform(n, -cfg.contrast, cfg.contrast, gen, dev) * _mask(n, cfg.contrast_p, gen, dev)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = ((x - mean) * f[:, None, None, None] + mean).clamp(0, 1)
    if cfg.noise_p:
        m = _mask(n, cfg.noise_p, gen, dev)[:, None, None, None]
        noise = torch.randn(x.shape, generator=gen, device=dev, dtype=x.dtype) * cfg.noise_std
        x = (x + noise * m).clamp(0, 1)
    if cfg.flatten_p:
        x = _flatten(x, cfg, gen)
    if cfg.lighting_p:
        x = _lighting(x, cfg, gen)
    if cfg.clutter_p:
        x = _clutter(x, cfg, gen)
    if cfg.blur_p:
        x = _blur(x, cfg, gen)
    if cfg.erase_p:
        x = _erase(x, cfg, gen)
    return x


def _affine(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Per-image rotation, zoom and translation in one grid_sample (black fill)."""
    n, dev = x.shape[0], x.device
    ang = _uniform(n, -cfg.rotate_deg, cfg.rotate_deg, gen, dev) * math.pi / 180
    ang = ang * _mask(n, cfg.rotate_p, gen, dev)
    scale = 1 + _uniform(n, -cfg.zoom, cfg.zoom, gen, dev) * _mask(n, cfg.zoom_p, gen, dev)
    shift = _uniform(2 * n, -cfg.translate, cfg.translate, gen, dev).view(n, 2) * 2  # grid units
    shift = shift * _mask(n, cfg.translate_p, gen, dev)[:, None]
    cos, sin = torch.cos(ang) / scale, torch.sin(ang) / scale  # zoom in = sample a smaller window
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1),
                         torch.stack([sin, cos, shift[:, 1]], 1)], 1).to(x.dtype)  # (N, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _pad_crop(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Pad by crop_pad with zeros, then take a random HxW window per image."""
    n, c, h, w = x.shape
    pad, dev = cfg.crop_pad, x.device
    padded = F.pad(x, (pad, pad, pad, pad))
    m = _mask(n, cfg.crop_p, gen, dev)
    dy = torch.where(m, torch.randint(0, 2 * pad + 1, (n,), generator=gen, device=dev), pad)
    dx = torch.where(m, torch.randint(0, 2 * pad + 1, (n,), generator=gen, device=dev), pad)
    rows = (torch.arange(h, device=dev)[None, :] + dy[:, None])  # (N, H)
    cols = (torch.arange(w, device=dev)[None, :] + dx[:, None])  # (N, W)
    idx = (rows[:, :, None] * (w + 2 * pad) + cols[:, None, :]).view(n, 1, h * w).expand(n, c, h * w)
    return padded.flatten(2).gather(2, idx).view(n, c, h, w)


def _erase(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Random erasing (Zhong et al. 2017): one rectangle per image, area 2%..erase_area, black."""
    n, _, h, w = x.shape
    dev = x.device
    area = _uniform(n, 0.02, cfg.erase_area, gen, dev) * h * w
    log_ratio = _uniform(n, math.log(0.3), math.log(1 / 0.3), gen, dev)
    eh = (area * log_ratio.exp()).sqrt().round().clamp(1, h)
    ew = (area / log_ratio.exp()).sqrt().round().clamp(1, w)
    y0 = (torch.rand(n, generator=gen, device=dev) * (h - eh + 1)).floor()
    x0 = (torch.rand(n, generator=gen, device=dev) * (w - ew + 1)).floor()
    ys = torch.arange(h, device=dev)[None, :]
    xs = torch.arange(w, device=dev)[None, :]
    in_y = (ys >= y0[:, None]) & (ys < (y0 + eh)[:, None])  # (N, H)
    in_x = (xs >= x0[:, None]) & (xs < (x0 + ew)[:, None])  # (N, W)
    box = in_y[:, :, None] & in_x[:, None, :] & _mask(n, cfg.erase_p, gen, dev)[:, None, None]
    return x.masked_fill(box[:, None], 0.0)


def _flatten(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Blend the garment's pixels toward their mean: a plain, untextured garment."""
    n, dev = x.shape[0], x.device
    fg = (x > 0.08).to(x.dtype)  # (N, 1, H, W) garment mask
    mean = (x * fg).sum((1, 2, 3), keepdim=True) / fg.sum((1, 2, 3), keepdim=True).clamp(min=1)
    a = (_uniform(n, 0, cfg.flatten, gen, dev) * _mask(n, cfg.flatten_p, gen, dev))[:, None, None, None]
    return torch.where(fg > 0, x + a * (mean - x), x)


def _lighting(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """A linear brightness ramp in a random direction and a random gamma: uneven light."""
    n, _, h, w = x.shape
    dev = x.device
    m = _mask(n, cfg.lighting_p, gen, dev)
    ang = _uniform(n, 0, 2 * math.pi, gen, dev)
    amp = _uniform(n, 0, cfg.lighting, gen, dev) * m
    ys = torch.linspace(-0.5, 0.5, h, device=dev)[None, :, None]
    xs = torch.linspace(-0.5, 0.5, w, device=dev)[None, None, :]
    ramp = 1 + amp[:, None, None] * (torch.cos(ang)[:, None, None] * xs + torch.sin(ang)[:, None, None] * ys)
    log_gamma = _uniform(n, -1, 1, gen, dev) * math.log1p(cfg.lighting) * m
    x = x.clamp(min=1e-6) ** log_gamma.exp()[:, None, None, None]
    return (x * ramp[:, None]).clamp(0, 1)


def _clutter(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Smooth random blobs behind the garment: background a segmentation left in."""
    n, _, h, w = x.shape
    dev = x.device
    coarse = torch.rand(n, 1, 5, 5, generator=gen, device=dev, dtype=x.dtype)
    field = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)
    cut = _uniform(n, 0.5, 0.85, gen, dev)[:, None, None, None]  # higher = fewer, smaller blobs
    blobs = ((field - cut) / (1 - cut)).clamp(0, 1)
    amp = (_uniform(n, 0.1, 1, gen, dev) * cfg.clutter * _mask(n, cfg.clutter_p, gen, dev))
    return torch.maximum(x, blobs * amp[:, None, None, None])


def _blur(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Gaussian blur with a per-image sigma (0 = unchanged), as one grouped convolution."""
    n, c, h, w = x.shape
    dev = x.device
    sigma = _uniform(n, 0.3, cfg.blur_sigma, gen, dev) * _mask(n, cfg.blur_p, gen, dev)
    r = max(1, math.ceil(2 * cfg.blur_sigma))
    t = torch.arange(-r, r + 1, device=dev, dtype=x.dtype)
    k = torch.exp(-t[None] ** 2 / (2 * sigma[:, None].clamp(min=1e-3) ** 2))
    k = (k / k.sum(1, keepdim=True)).repeat_interleave(c, 0)  # (N*C, 2r+1), a delta when sigma = 0
    y = x.reshape(1, n * c, h, w)
    y = F.conv2d(F.pad(y, (r, r, 0, 0), mode="replicate"), k[:, None, None, :], groups=n * c)
    y = F.conv2d(F.pad(y, (0, 0, r, r), mode="replicate"), k[:, None, :, None], groups=n * c)
    return y.view(n, c, h, w).clamp(0, 1)


def preview(images: torch.Tensor, cfg: AugmentConfig, seed: int = 0,
            labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """images (N, 28, 28) uint8 -> (original, augmented), both (N, 28, 28) uint8, for the UI."""
    gen = torch.Generator().manual_seed(seed)
    x = images.float().div(255).unsqueeze(1)
    out = augment_batch(x, labels, cfg, gen)
    return images, (out.squeeze(1) * 255).round().to(torch.uint8)


def preview_grid(images: torch.Tensor, cfg: AugmentConfig, seed: int = 0,
                 labels: torch.Tensor | None = None, gap: int = 2) -> torch.Tensor:
    """Two-row uint8 grid (2*28 + gap, N*(28 + gap) - gap): originals on top, augmented below."""
    orig, aug = preview(images, cfg, seed, labels)
    n, h, w = orig.shape
    grid = torch.full((2 * h + gap, n * (w + gap) - gap), 128, dtype=torch.uint8)
    for i in range(n):
        grid[:h, i * (w + gap): i * (w + gap) + w] = orig[i]
        grid[h + gap:, i * (w + gap): i * (w + gap) + w] = aug[i]
    return grid


def partial_garments(x: torch.Tensor, gen: torch.Generator, keep: tuple[float, float] = (0.35, 0.6)) -> torch.Tensor:
    """Outlier exposure without photos: each image cut to a random part of its garment, re-framed.

    x: (N, 1, 28, 28) float in [0, 1]. Every image keeps a `keep` fraction of the height of its
    garment's bounding box, from the top or from the bottom, and that part is scaled (aspect kept)
    and centred to fill the frame the way Fashion-MNIST garments do. The results look like no
    class — trousers cut to shorts, a dress cut to a skirt — and train with a uniform target.
    """
    n, _, h, w = x.shape
    dev = x.device
    ink = x[:, 0] > 0.1
    rows, cols = ink.any(2), ink.any(1)  # (N, H), (N, W)
    ar_h, ar_w = torch.arange(h, device=dev), torch.arange(w, device=dev)
    top = torch.where(rows, ar_h, h).amin(1).float()
    bottom = torch.where(rows, ar_h, -1).amax(1).float()
    left = torch.where(cols, ar_w, w).amin(1).float()
    right = torch.where(cols, ar_w, -1).amax(1).float()
    empty = bottom < top  # blank image: use the whole frame
    top, bottom = torch.where(empty, 0.0, top), torch.where(empty, h - 1.0, bottom)
    left, right = torch.where(empty, 0.0, left), torch.where(empty, w - 1.0, right)
    frac = _uniform(n, keep[0], keep[1], gen, dev)
    lower = torch.rand(n, generator=gen, device=dev) < 0.5
    bh = bottom - top + 1
    top, bottom = torch.where(lower, bottom + 1 - frac * bh, top), torch.where(lower, bottom, top - 1 + frac * bh)
    # the kept box's centre goes to the frame's centre; its longer side spans 26 of the 28 pixels
    cy, cx = (top + bottom + 1) / h - 1, (left + right + 1) / w - 1
    a = torch.maximum((bottom - top + 1) / h, (right - left + 1) / w) * (28 / 26)
    zero = torch.zeros_like(a)
    theta = torch.stack([torch.stack([a, zero, cx], 1), torch.stack([zero, a, cy], 1)], 1).to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # sample only inside the kept box: mask the rest of the source first
    ys, xs = ar_h.view(1, h, 1).float(), ar_w.view(1, 1, w).float()
    inside = ((ys >= top.floor().view(n, 1, 1)) & (ys <= bottom.ceil().view(n, 1, 1)) &
              (xs >= left.floor().view(n, 1, 1)) & (xs <= right.ceil().view(n, 1, 1)))
    return F.grid_sample(x * inside.unsqueeze(1), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
