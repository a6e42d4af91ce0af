"""Batched augmentation draws independently per image and keeps images valid."""
from __future__ import annotations

import pytest
import torch

from fashion_core.augment import AugmentConfig, augment_batch, partial_garments, preview_grid
from fashion_core.config import PRESETS


def asym_batch(n: int = 64) -> torch.Tensor:
    """n copies of an image with a bright block on the left: a flip is easy to see."""
    x = torch.zeros(n, 1, 28, 28)
    x[:, :, 8:20, 2:10] = 1.0
    return x


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def flipped(out: torch.Tensor) -> torch.Tensor:
    return out[:, 0, :, 18:].sum((1, 2)) > out[:, 0, :, :10].sum((1, 2))


def test_flip_is_drawn_per_image():
    out = augment_batch(asym_batch(), None, AugmentConfig(hflip_p=0.5), gen())
    n_flipped = int(flipped(out).sum())
    assert 16 < n_flipped < 48  # some images flipped, some not, in one batch


def test_class_aware_flip_never_flips_footwear():
    labels = torch.tensor([5, 7, 9, 0] * 16)
    out = augment_batch(asym_batch(), labels, AugmentConfig(hflip_p=1.0, class_aware_flip=True), gen())
    f = flipped(out)
    assert not f[labels != 0].any() and f[labels == 0].all()


def test_probability_zero_changes_nothing_and_one_changes_everything():
    x = asym_batch(8)
    assert torch.equal(augment_batch(x, None, AugmentConfig(), gen()), x)
    white = torch.ones(8, 1, 28, 28)
    out = augment_batch(white, None, AugmentConfig(erase_p=1.0, erase_area=0.3), gen())
    erased = (out == 0).float().mean((1, 2, 3))  # fraction of each image blacked out
    assert (erased >= 0.01).all() and (erased <= 0.35).all()


@pytest.mark.parametrize("preset", list(PRESETS))
def test_presets_keep_shape_range_and_are_deterministic(preset):
    x = torch.rand(16, 1, 28, 28)
    a = augment_batch(x, torch.arange(16) % 10, PRESETS[preset], gen(1))
    b = augment_batch(x, torch.arange(16) % 10, PRESETS[preset], gen(1))
    assert a.shape == x.shape and torch.equal(a, b)
    assert a.min() >= 0 and a.max() <= 1


def test_pad_crop_shifts_content_by_at_most_pad():
    x = asym_batch(32)
    out = augment_batch(x, None, AugmentConfig(crop_p=1.0, crop_pad=4), gen())
    assert (out.sum((1, 2, 3)) > 0).all()
    cols = out[:, 0].sum(1).gt(0).float().argmax(1)  # first lit column (was 2)
    assert cols.max() <= 6 and len(cols.unique()) > 1


def test_rotation_zoom_translate_move_pixels_differently_per_image():
    out = augment_batch(asym_batch(8), None, AugmentConfig(rotate_p=1, rotate_deg=45, zoom_p=1, zoom=0.2,
                                                           translate_p=1, translate=0.1), gen())
    assert len({round(float(o.sum()), 3) for o in out}) > 4


def test_invalid_augment_values_are_rejected():
    with pytest.raises(ValueError, match="augment.rotate_deg"):
        AugmentConfig(rotate_deg=90).validate()
    with pytest.raises(ValueError, match="augment.hflip_p"):
        AugmentConfig(hflip_p=1.5).validate()


def test_preview_grid_shows_originals_over_augmented():
    imgs = (asym_batch(4)[:, 0] * 255).to(torch.uint8)
    grid = preview_grid(imgs, AugmentConfig(vflip_p=1.0), seed=0)
    assert grid.shape == (58, 4 * 30 - 2) and grid.dtype == torch.uint8
    assert torch.equal(grid[:28, :28], imgs[0]) and torch.equal(grid[30:, :28], imgs[0].flip(0))


def test_partial_garments_keep_the_top_or_bottom_and_refill_the_frame():
    x = torch.zeros(200, 1, 28, 28)
    x[:, :, 1:27, 10:18] = 1.0  # a tall narrow garment: trousers
    x[:, :, 1:5, 10:18] = 0.5  # a darker waistband marks the top
    x[-1] = 0  # a blank image stays blank
    out = partial_garments(x, gen())
    assert out.shape == x.shape and 0 <= out.min() and out.max() <= 1 and out[-1].abs().sum() == 0
    ink = out[:-1, 0] > 0.25
    rows = ink.any(2).sum(1).float()
    assert (rows >= 24).all()  # the kept part is scaled up to fill the frame's height
    widths = ink.any(1).sum(1).float()
    assert (widths > 11).all() and (widths < 28).all()  # aspect kept: wider than the 8-px original
    band = (out[:-1, 0, 1:8] - 0.5).abs().lt(0.15).float().mean((1, 2)) > 0.1  # waistband at the top
    assert 0.3 < band.float().mean() < 0.7  # tops and bottoms drawn about half and half
