"""Captum attributions for one 28x28 image or the average over many, plus heat-map rendering.

Every method returns a (28, 28) map in input space and its runtime. Models are put in eval mode,
attribution never runs under no_grad, and Grad-CAM is offered on the model's conv layers only.
onto_photo maps such a map back onto the photo the input was made from (photos.pipeline.fit28 undone).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn as nn
from captum.attr import (GuidedBackprop, IntegratedGradients, LayerAttribution, LayerGradCam,
                         NoiseTunnel, Occlusion, Saliency)

from fashion_core.dataset_stats import upscale
from fashion_core.inference import to_input
from fashion_core.models.soft_vote import SoftVote
from fashion_core.photos.pipeline import centre_square

METHODS = ("Saliency", "Integrated Gradients", "SmoothGrad", "Guided Backprop", "Grad-CAM", "Occlusion")
IG_STEPS = 32  # Riemann steps; the map hardly changes beyond this on 28x28 inputs
SMOOTHGRAD_SAMPLES, SMOOTHGRAD_STD = 16, 0.15  # noise std in input units ([0, 1] pixels)
OCCLUSION_WINDOW, OCCLUSION_STRIDE = 4, 2  # pixels: a 4x4 patch covers a button or a strap
_HOOKS = threading.Lock()


@dataclass(frozen=True)
class Attribution:
    method: str
    map: np.ndarray  # (28, 28) float32; positive = evidence for the target class
    runtime_ms: float


def conv_layers(model: nn.Module) -> list[str]:
    """Names of the Conv2d modules, in forward order: the layers Grad-CAM can use."""
    return [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def default_layer(model: nn.Module) -> str | None:
    """The last conv layer; in an ensemble, the last one of its heaviest member (the vote's gradient
    reaches a member in proportion to its weight)."""
    names = conv_layers(model)
    if isinstance(model, SoftVote):
        heaviest = f"members.{int(model.weights.argmax())}."
        names = [n for n in names if n.startswith(heaviest)] or names
    return names[-1] if names else None


def available_methods(model: nn.Module) -> list[str]:
    return [m for m in METHODS if m != "Grad-CAM" or conv_layers(model)]


def attribute(model: nn.Module, images_u8: torch.Tensor | np.ndarray, target: int | torch.Tensor,
              method: str, layer: str | None = None) -> Attribution:
    """Attribute the target logit to the pixels of (28, 28) or (N, 28, 28) uint8 images.

    Returns the map for one image, or the mean map over N images (the "explain a class" mode).
    """
    model.eval()  # dropout off and BatchNorm on running stats, or the maps are noise
    if isinstance(model, SoftVote):
        model = model.unflipped()  # as for a single run: the image as it is, not its mirror too
    x = torch.as_tensor(np.asarray(images_u8, dtype=np.uint8))
    x = to_input(x[None] if x.ndim == 2 else x)
    device = next(model.parameters()).device
    x = x.to(device).requires_grad_(True)
    target = torch.as_tensor(target, device=device).expand(len(x)).contiguous()
    start = time.perf_counter()
    # The app shares one model object between browser sessions, and Grad-CAM and Guided Backprop hook
    # into its modules while they run: two at once would read each other's activations or gradients.
    with _HOOKS, torch.enable_grad():  # enable_grad: the page may call us inside an inference context
        attr = _attribute(model, x, target, method, layer)
    if device.type == "cuda":
        torch.cuda.synchronize()
    runtime = (time.perf_counter() - start) * 1000
    return Attribution(method, attr.detach().float().mean(0)[0].cpu().numpy(), runtime)


def _attribute(model: nn.Module, x: torch.Tensor, target: torch.Tensor, method: str,
               layer: str | None) -> torch.Tensor:
    if method == "Saliency":
        return Saliency(model).attribute(x, target=target, abs=True)
    if method == "Integrated Gradients":
        return IntegratedGradients(model).attribute(x, baselines=torch.zeros_like(x), target=target,
                                                    n_steps=IG_STEPS, internal_batch_size=256)
    if method == "SmoothGrad":
        return NoiseTunnel(Saliency(model)).attribute(x, nt_type="smoothgrad", nt_samples=SMOOTHGRAD_SAMPLES,
                                                      nt_samples_batch_size=64, stdevs=SMOOTHGRAD_STD,
                                                      target=target, abs=True)
    if method == "Guided Backprop":
        return GuidedBackprop(model).attribute(x, target=target)
    if method == "Grad-CAM":
        names = conv_layers(model)
        if not names:
            raise ValueError("Grad-CAM needs a conv layer and this model has none")
        module = dict(model.named_modules())[layer or default_layer(model)]
        cam = LayerGradCam(model, module).attribute(x, target=target, relu_attributions=True)
        return LayerAttribution.interpolate(cam, tuple(x.shape[-2:]), interpolate_mode="bilinear")
    if method == "Occlusion":
        w, s = OCCLUSION_WINDOW, OCCLUSION_STRIDE
        return Occlusion(model).attribute(x, sliding_window_shapes=(1, w, w), strides=(1, s, s),
                                          baselines=0.0, target=target, perturbations_per_eval=64)
    raise ValueError(f"method: unknown attribution method {method!r}; choose one of {', '.join(METHODS)}")


# --- rendering ---------------------------------------------------------------------------------
# A diverging map: blue (against) -> white/black (none) -> red (for); sequential maps use the upper half.
_NEG, _POS = np.array([49, 130, 189], np.float32), np.array([222, 45, 38], np.float32)


def heatmap_rgb(attr: np.ndarray, size: int = 140) -> np.ndarray:
    """(28, 28) attribution -> (size, size, 3) uint8: red for, blue against, on black."""
    a = attr / (np.abs(attr).max() or 1.0)
    rgb = np.clip(a, 0, 1)[..., None] * _POS + np.clip(-a, 0, 1)[..., None] * _NEG
    return _upscale(rgb.astype(np.uint8), size)


def overlay_rgb(image_u8: np.ndarray, attr: np.ndarray, size: int = 140, alpha: float = 0.6) -> np.ndarray:
    """The greyscale input with the heat map blended in where the attribution is strong."""
    grey = np.repeat(np.asarray(image_u8, np.float32)[..., None], 3, axis=2) * 0.7
    return _upscale(_blend(grey, attr / (np.abs(attr).max() or 1.0), alpha), size)


def _blend(base: np.ndarray, a: np.ndarray, alpha: float) -> np.ndarray:
    """(h, w, 3) float base with a map a in [-1, 1] blended in: red for, blue against, opaque as |a|."""
    colour = np.where((a >= 0)[..., None], _POS, _NEG)
    w = alpha * np.abs(a)[..., None]
    return ((1 - w) * base + w * colour).clip(0, 255).astype(np.uint8)


def _upscale(img: np.ndarray, size: int) -> np.ndarray:
    """Nearest-neighbour upscaling keeps pixels square and crisp (no smoothing of 28x28 maps)."""
    return upscale(img, max(1, size // img.shape[0]))


# --- back onto the photo -----------------------------------------------------------------------
PHOTO_ALPHA = 0.75  # the strongest pixel's colour covers 75% of the photo beneath it
SEEN, UNSEEN = 0.8, 0.35  # brightness of the grey photo inside the garment box (what the model saw) and outside


def onto_photo(attr: np.ndarray, box: tuple[int, int, int, int], shape: tuple[int, int]) -> np.ndarray:
    """A (28, 28) map of a photo's model input -> an (h, w) = shape map over the working copy the input was
    made from (photos.pipeline.prepare): fit28's resize, centred square and crop to the garment box
    undone, so a pixel of the input lands on the part of the photo it was made from; 0 outside the box."""
    x0, y0, x1, y1 = box
    inside = centre_square(np.ones((y1 - y0, x1 - x0), bool))  # where fit28 put the crop in its square
    # bilinear: cv2 maps pixel centres onto pixel centres both ways, so this undoes fit28's resize
    square = cv2.resize(np.asarray(attr, np.float32), inside.shape[::-1], interpolation=cv2.INTER_LINEAR)
    out = np.zeros(shape, np.float32)
    out[y0:y1, x0:x1] = square[inside].reshape(y1 - y0, x1 - x0)
    return out


def photo_overlay_rgb(rgb: np.ndarray, attr: np.ndarray, box: tuple[int, int, int, int],
                      alpha: float = PHOTO_ALPHA) -> np.ndarray:
    """The photo (h, w, 3) in grey, dimmed outside the garment box the model saw, with a (28, 28) map
    laid over it by onto_photo: red for, blue against, each scaled to its strongest pixel."""
    grey = cv2.cvtColor(np.asarray(rgb, np.uint8), cv2.COLOR_RGB2GRAY).astype(np.float32)
    x0, y0, x1, y1 = box
    light = np.full(grey.shape, UNSEEN, np.float32)
    light[y0:y1, x0:x1] = SEEN
    a = onto_photo(attr, box, grey.shape)
    return _blend(np.repeat((grey * light)[..., None], 3, axis=2), a / (np.abs(a).max() or 1.0), alpha)


def around_box(image: np.ndarray, box: tuple[int, int, int, int], margin: float = 0.15) -> np.ndarray:
    """The part of an (h, w, ...) photo around the garment box, `margin` of the box's longer side on
    each side (less at the photo's edge): the garment large, with a little of what surrounds it."""
    x0, y0, x1, y1 = box
    m = round(margin * max(x1 - x0, y1 - y0))
    h, w = image.shape[:2]
    return image[max(0, y0 - m): min(h, y1 + m), max(0, x0 - m): min(w, x1 + m)]


def colour_scale(n: int = 9, alpha: float = PHOTO_ALPHA, grey: float = 128 * SEEN) -> np.ndarray:
    """(n, 3) uint8: the colours photo_overlay_rgb gives the values -1 (strongest against) ... 1 (strongest
    for) over a mid-grey photo, for a colour bar."""
    values = np.linspace(-1, 1, n, dtype=np.float32)[None]
    return _blend(np.full((1, n, 3), grey, np.float32), values, alpha)[0]
