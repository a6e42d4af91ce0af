"""Captum attributions: every method gives a finite 28x28 map that points at the evidence."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from fashion_core import explain
from fashion_core.models import create_model


class BlockDetector(nn.Module):
    """A fixed conv net whose class-3 logit is the brightness of the top-left 8x8 block only."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 1, bias=False)
        self.relu = nn.ReLU()
        self.head = nn.Linear(28 * 28, 10, bias=False)
        with torch.no_grad():
            self.conv.weight.fill_(1.0)
            w = torch.zeros(10, 28, 28)
            w[3, :8, :8] = 1.0
            self.head.weight.copy_(w.view(10, -1))

    def forward(self, x):
        return self.head(self.relu(self.conv(x)).flatten(1))


@pytest.fixture
def image():
    img = np.zeros((28, 28), np.uint8)
    img[:8, :8] = 200  # evidence for class 3
    img[20:, 20:] = 200  # irrelevant to class 3
    return img


@pytest.mark.parametrize("method", [m for m in explain.METHODS if m != "Grad-CAM"])
def test_each_method_finds_the_evidence(method, image):
    a = explain.attribute(BlockDetector(), image, 3, method)
    assert a.map.shape == (28, 28) and np.isfinite(a.map).all() and a.runtime_ms > 0
    strength = np.abs(a.map)
    assert strength[:8, :8].mean() > 5 * strength[20:, 20:].mean() + 1e-9, method


def test_gradcam_follows_the_activations():
    # Grad-CAM weighs whole channels, so it cannot tell the two blocks apart; it must still light
    # up the active region and leave the empty one dark
    img = np.zeros((28, 28), np.uint8)
    img[:8, :8] = 200
    a = explain.attribute(BlockDetector(), img, 3, "Grad-CAM")
    assert a.map.shape == (28, 28) and a.map[:8, :8].mean() > 0 and np.abs(a.map[20:, 20:]).max() == 0


def test_works_inside_no_grad_and_in_train_mode(image):
    model = create_model("flagship").train()
    with torch.no_grad():  # the page may be in an inference context; attribute must still get gradients
        a = explain.attribute(model, image, 0, "Integrated Gradients")
    assert np.abs(a.map).sum() > 0
    assert not model.training  # dropout/BN must not randomise the explanation


def test_gradcam_layers_are_the_conv_layers():
    model = create_model("flagship")
    names = explain.conv_layers(model)
    assert names and all(isinstance(dict(model.named_modules())[n], nn.Conv2d) for n in names)
    assert "Grad-CAM" in explain.available_methods(model)
    mlp = create_model("mlp_baseline")
    assert explain.conv_layers(mlp) == [] and "Grad-CAM" not in explain.available_methods(mlp)
    with pytest.raises(ValueError, match="conv layer"):
        explain.attribute(mlp, np.zeros((28, 28), np.uint8), 0, "Grad-CAM")


def test_gradcam_on_an_early_layer_differs_from_the_last(image):
    model = create_model("flagship").eval()
    first, last = explain.conv_layers(model)[0], explain.conv_layers(model)[-1]
    a = explain.attribute(model, image, 1, "Grad-CAM", first).map
    b = explain.attribute(model, image, 1, "Grad-CAM", last).map
    assert a.shape == b.shape == (28, 28) and not np.allclose(a, b)


def test_class_mode_averages_over_images(image):
    other = np.zeros((28, 28), np.uint8)
    other[:8, :8] = 100
    one = explain.attribute(BlockDetector(), image, 3, "Saliency").map
    mean = explain.attribute(BlockDetector(), np.stack([image, other]), 3, "Integrated Gradients").map
    a, b = (explain.attribute(BlockDetector(), x, 3, "Integrated Gradients").map for x in (image, other))
    np.testing.assert_allclose(mean, (a + b) / 2, rtol=1e-4, atol=1e-6)
    assert one.shape == mean.shape


def test_unknown_method_is_refused(image):
    with pytest.raises(ValueError, match="method"):
        explain.attribute(BlockDetector(), image, 0, "LIME")


def test_rendering_is_rgb_and_sized(image):
    attr = np.random.default_rng(0).normal(size=(28, 28)).astype(np.float32)
    heat, over = explain.heatmap_rgb(attr, 140), explain.overlay_rgb(image, attr, 140)
    assert heat.shape == over.shape == (140, 140, 3) and heat.dtype == over.dtype == np.uint8
    assert explain.heatmap_rgb(np.zeros((28, 28))).max() == 0  # an all-zero map stays black


def test_gradcam_on_an_ensemble_explains_the_image_not_its_mirror():
    from fashion_core.models.soft_vote import SoftVote

    img = np.zeros((28, 28), np.uint8)
    img[:8, :8] = 5  # evidence on the left only (faint: a vote explains log-probabilities, which saturate)
    vote = SoftVote([BlockDetector()], [1.0], flips=[True])  # a member trained with test-time flips
    a = explain.attribute(vote, img, 3, "Grad-CAM", "members.0.conv").map
    assert a[:8, :8].mean() > 0 and np.abs(a[:, 20:]).max() == 0  # lit where the evidence is, dark on the right


def test_gradcam_on_an_ensemble_starts_on_its_heaviest_member():
    from fashion_core.models.soft_vote import SoftVote

    img = np.zeros((28, 28), np.uint8)
    img[:8, :8] = 5
    vote = SoftVote([BlockDetector(), create_model("flagship").eval()], [0.9, 0.1])
    assert explain.default_layer(vote) == "members.0.conv"
    assert explain.default_layer(SoftVote([create_model("flagship"), BlockDetector()], [0.3, 0.7])) == "members.1.conv"
    assert explain.attribute(vote, img, 3, "Grad-CAM").map.max() > 0  # not the blank map of a light member


def test_two_sessions_explaining_with_one_model_get_their_own_maps():
    from concurrent.futures import ThreadPoolExecutor

    torch.manual_seed(0)
    model = create_model("flagship").eval()  # the app caches one model object for every browser tab
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (28, 28), dtype=np.uint8) for _ in range(4)]
    jobs = [(img, method) for img in images for method in ("Grad-CAM", "Guided Backprop")] * 3
    alone = [explain.attribute(model, img, 2, method).map for img, method in jobs]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda job: explain.attribute(model, job[0], 2, job[1]).map, jobs))
    for a, b in zip(alone, together):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
