"""The Predict page's attribution panel: the chosen Captum methods' heat maps and overlays for one
image or a class average, each with its runtime, and the Grad-CAM layer picker."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st
import torch.nn as nn

from fashion_core import explain
from fashion_core.runs import Run
from ui import common

# Averaging over a class runs each method on up to 128 images: Occlusion alone is 64 forward passes an
# image, so that mode starts with the gradient methods and leaves the heavy ones to be picked.
CLASS_METHODS = ("Saliency", "Grad-CAM", "Guided Backprop")


@st.cache_data(max_entries=256, show_spinner=False)
def _attribution(run_path: str, stamp: float, images: np.ndarray, target: int, method: str, layer: str | None):
    """One attribution, kept until the run's weights change (stamp)."""
    return explain.attribute(common.model_for(Run(Path(run_path))), images, target, method, layer)


def attribution_panel(run: Run, model: nn.Module, images: np.ndarray, shown: np.ndarray, target: int,
                      many: bool = False) -> None:
    """Heat map and overlay per chosen method, with its runtime: the attributions of `model` (the
    run's) for class `target` on images (28, 28) or, with many, averaged over images (N, 28, 28);
    shown: the image the overlays are drawn on."""
    methods = explain.available_methods(model)
    c1, c2 = st.columns([5, 3])
    chosen = c1.multiselect("Methods", methods, key="pr.methods.class" if many else "pr.methods",
                            persist_state="session",
                            default=[m for m in methods if m in CLASS_METHODS] if many else methods)
    layer = layer_picker(c2, run, model)
    st.caption("Red: pixels that raise the class's score; blue: pixels that lower it; each map is scaled to its own "
               "strongest pixel." + (" Averaged over the images." if many else
                                     " Saliency and SmoothGrad show where a change would move the score (black "
                                     "background included); Integrated Gradients and Occlusion show what the pixels "
                                     "that are there contributed."))
    cols = st.columns(3)
    stamp = run.weights_stamp()
    for i, method in enumerate(chosen):
        a = _attribution(str(run.path), stamp, images, target, method, layer if method == "Grad-CAM" else None)
        with cols[i % 3].container(border=True):
            st.markdown(f"**{method}** · {a.runtime_ms:.0f} ms")
            st.image([explain.heatmap_rgb(a.map), explain.overlay_rgb(shown, a.map)], caption=["heat map", "overlay"],
                     width=120)


def layer_picker(col, run: Run, model: nn.Module) -> str | None:
    """The conv layer Grad-CAM weighs, picked in `col` (None for a model without conv layers)."""
    layers = explain.conv_layers(model)
    if not layers:
        col.caption("Grad-CAM needs conv layers; this model has none.")
        return None
    modules = dict(model.named_modules())
    # keyed per run, so each model starts on its own default layer
    return col.selectbox("Grad-CAM layer", layers, index=layers.index(explain.default_layer(model)),
                         key=f"pr.layer.{run.path}", persist_state="session",
                         format_func=lambda n: f"conv {layers.index(n) + 1} of {len(layers)} · "
                                               f"{modules[n].in_channels}→{modules[n].out_channels} channels ({n})",
                         help="The conv layer whose activations Grad-CAM weighs. The last one (the default) "
                              "knows most about the class but has the coarsest grid, so on a 28×28 input its "
                              "map is a blurry blob; earlier layers give sharper, less class-specific maps.")
