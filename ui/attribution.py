"""The Predict page's attribution panel: the chosen Captum methods' maps for one image or a class
average, each with its runtime, drawn large over the uploaded photo (a toggle shows the photo bare)
with a colour scale, and the Grad-CAM layer picker."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st
import torch.nn as nn

from fashion_core import explain
from fashion_core.runs import Run
from ui import common
from ui.photo_input import Photo

# Averaging over a class runs each method on up to 128 images: Occlusion alone is 64 forward passes an
# image, so that mode starts with the gradient methods and leaves the heavy ones to be picked.
CLASS_METHODS = ("Saliency", "Grad-CAM", "Guided Backprop")
# px: cards wrap onto new rows, so a 1400 px window shows two photo cards (three without a photo) a
# row and a 900 px one shows one, at full size, instead of squeezing them into fixed columns
PHOTO_CARD, CARD = 450, 300


@st.cache_data(max_entries=256, show_spinner=False)
def _attribution(run_path: str, stamp: float, images: np.ndarray, target: int, method: str, layer: str | None):
    """One attribution, kept until the run's weights change (stamp)."""
    return explain.attribute(common.model_for(Run(Path(run_path))), images, target, method, layer)


def attribution_panel(run: Run, model: nn.Module, images: np.ndarray, shown: np.ndarray, target: int,
                      many: bool = False, photo: Photo | None = None) -> None:
    """A card per chosen method, with its runtime: the attributions of `model` (the run's) for class
    `target` on images (28, 28) or, with many, averaged over images (N, 28, 28); shown: the image the
    small overlays are drawn on; photo: the uploaded photo the input came from, which gets each map large."""
    methods = explain.available_methods(model)
    # the whole width: in a column the box cuts chosen methods off instead of wrapping them onto a new line
    chosen = st.multiselect("Methods", methods, key="pr.methods.class" if many else "pr.methods",
                            persist_state="session",
                            default=[m for m in methods if m in CLASS_METHODS] if many else methods)
    layer = layer_picker(st.container(), run, model)
    on_photo = photo is not None and st.toggle(
        "Draw the maps over the photo", value=True, key="pr.on_photo", persist_state="session",
        help="Off: the photo as it is, in the same place, to see what lies under the colours.")
    st.caption("Red: pixels that raise the class's score; blue: pixels that lower it; each map is scaled to its own "
               "strongest pixel." + (" Averaged over the images." if many else
                                     " Saliency and SmoothGrad show where a change would move the score (black "
                                     "background included); Integrated Gradients and Occlusion show what the pixels "
                                     "that are there contributed.")
               + (" On the photo each of the model's 28×28 pixels is drawn where it came from; outside the garment "
                  "box, which the model never saw, the photo is dimmed." if photo is not None else ""))
    colour_bar()
    stamp = run.weights_stamp()
    with st.container(horizontal=True):
        for method in chosen:
            a = _attribution(str(run.path), stamp, images, target, method, layer if method == "Grad-CAM" else None)
            method_card(a, shown, photo, on_photo)


def method_card(a: explain.Attribution, shown: np.ndarray, photo: Photo | None, on_photo: bool) -> None:
    """One method's card: its name and runtime, the map large over the photo (or the bare photo when
    not on_photo), and the map alone and over the 28×28 input `shown`."""
    with st.container(border=True, width=PHOTO_CARD if photo is not None else CARD):
        st.markdown(f"**{a.method}** · {a.runtime_ms:.0f} ms")
        if photo is not None:
            rgb, box = photo
            shown_photo = explain.photo_overlay_rgb(rgb, a.map, box) if on_photo else rgb
            st.image(explain.around_box(shown_photo, box), width="stretch",
                     caption="on the photo" if on_photo else "the photo (map hidden)")
        st.image([explain.heatmap_rgb(a.map), explain.overlay_rgb(shown, a.map)], caption=["heat map", "overlay"],
                 width=130)


def colour_bar() -> None:
    """The colour scale of the maps: -1 (strongest against) to +1 (strongest for), 0 letting the image show."""
    stops = ", ".join(f"rgb({r}, {g}, {b})" for r, g, b in explain.colour_scale())
    st.html(f"""<div style="max-width: 420px; font-size: 0.8rem">
      <div style="height: 12px; border-radius: 3px; background: linear-gradient(to right, {stops})"></div>
      <div style="display: flex; justify-content: space-between; opacity: 0.75">
        <span>−1 · strongest against</span><span>0 · no effect</span><span>strongest for · +1</span>
      </div></div>""")


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
