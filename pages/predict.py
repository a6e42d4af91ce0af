"""Predict & Explain: a photo, the camera or a test image -> preprocessing strip, top-k
probabilities for several models, and Captum attributions (one image or a whole class)."""
import textwrap
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from fashion_core import explain
from fashion_core.calibration import calibration_for, decide, describe, describe_check, percent
from fashion_core.data import CLASSES
from fashion_core.photo import NOT_FOUND, ImageError, load_image, prepare
from fashion_core.predict import best_for_photos, photo_ranked, probabilities
from fashion_core.runs import Run
from ui import common


def _square(img: np.ndarray) -> np.ndarray:
    """Pad a step's image with black to a square, so the strip's thumbnails line up."""
    h, w = img.shape[:2]
    pad_h, pad_w = max(h, w) - h, max(h, w) - w
    pad = [(pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2)] + [(0, 0)] * (img.ndim - 2)
    return np.pad(img, pad)


common.require_router()

st.title("Predict & explain")
runs = common.finished_runs(with_weights=True)
if not runs:
    common.no_runs_message()
    st.stop()
by_name = common.by_key(runs)
c1, c2 = st.columns([2, 1])
names = list(by_name)  # best test accuracy first; the default is the one best for photos
common.from_url("pr.run", names, common.key_of(by_name, best_for_photos(runs)))
run = by_name[c1.selectbox("Model", names, key="pr.run", persist_state="session",
                           format_func=lambda n: common.run_label(by_name[n]),
                           help="Runs fine-tuned on real photos (photo_dir in their config), and votes of such runs, "
                                "classify uploads best; the others are best on Fashion-MNIST's own images. The "
                                "default is the photo-tuned run whose unsure threshold did best on labelled photos "
                                "it never learned from.")]
common.to_url("pr.run")
mode = c2.radio("Mode", ["Explain one image", "Explain a class"], key="pr.mode", bind="query-params", horizontal=True,
                persist_state="session")
try:
    model = common.model_for(run)
except ValueError as exc:  # not a plain weights file, or weights that do not fit the model
    st.error(f"This run's checkpoint was refused: {exc}")
    st.stop()


@st.cache_data(max_entries=256, show_spinner=False)
def _attribution(run_path: str, stamp: float, images: np.ndarray, target: int, method: str, layer: str | None):
    """One attribution, kept until the run's weights change (stamp)."""
    return explain.attribute(common.model_for(Run(Path(run_path))), images, target, method, layer)


@st.cache_data(max_entries=32, show_spinner="Finding the garment…")
def _prepared(data: bytes):
    """Decode and segment once per uploaded file, not on every widget change (ImageError is not cached)."""
    return prepare(load_image(data))


@st.cache_resource(max_entries=16, show_spinner="Calibrating confidence on the validation split…")
def _calibration(run_path: str, stamps: tuple[float, float]):
    return calibration_for(Run(Path(run_path)))


def answer_for(r: Run, image28: np.ndarray) -> dict:
    """decide() on the run's temperature-scaled probabilities (fitted once per checkpoint, re-read
    when calibration.json changes, e.g. a new threshold from scripts/photo_threshold_cv.py)."""
    cal_file = r.path / "calibration.json"
    stamps = (r.weights_stamp(), cal_file.stat().st_mtime if cal_file.exists() else 0.0)
    cal = _calibration(str(r.path), stamps)
    return {**decide(probabilities(common.model_for(r), image28, r.config.tta_flip)[0], cal), "cal": cal}


def _forget_upload() -> None:
    """The user removed the uploaded photo (not a page change): forget it."""
    if st.session_state.get("pr.upload") is None:
        st.session_state.pop("pr.last_upload", None)


def chart_title(name: str, answer: dict) -> str:
    """A chart's short heading: the run, its top class and share, and whether that is unsure."""
    return f"{name}: {answer['label']} ({percent(answer['confidence'])})" + (", unsure" if answer["unsure"] else "")


def bars(probs: np.ndarray, k: int, title: str, height: int = 260) -> go.Figure:
    top = np.argsort(probs)[::-1][:k][::-1]
    fig = go.Figure(go.Bar(x=probs[top] * 100, y=[CLASSES[i] for i in top], orientation="h",
                           text=[percent(probs[i]) for i in top], textposition="auto"))
    lines = textwrap.wrap(title, 40) or [""]  # plotly cuts a long title off at the chart's edge instead
    fig.update_layout(title="<br>".join(lines), height=height + 20 * (len(lines) - 1),
                      margin=dict(l=10, r=10, t=24 + 20 * len(lines), b=10), xaxis_range=[0, 100],
                      xaxis_title="probability %", title_font_size=13)
    return fig


# Averaging over a class runs each method on up to 128 images: Occlusion alone is 64 forward passes an
# image, so that mode starts with the gradient methods and leaves the heavy ones to be picked.
CLASS_METHODS = ("Saliency", "Grad-CAM", "Guided Backprop")


def attribution_panel(images: np.ndarray, shown: np.ndarray, target: int, many: bool = False) -> None:
    """Heat map and overlay per chosen method, with its runtime."""
    methods = explain.available_methods(model)
    c1, c2 = st.columns([5, 3])
    chosen = c1.multiselect("Methods", methods, key="pr.methods.class" if many else "pr.methods",
                            persist_state="session",
                            default=[m for m in methods if m in CLASS_METHODS] if many else methods)
    layers = explain.conv_layers(model)
    modules = dict(model.named_modules())
    layer = None
    if layers:  # keyed per run, so each model starts on its own default layer
        layer = c2.selectbox("Grad-CAM layer", layers, index=layers.index(explain.default_layer(model)),
                             key=f"pr.layer.{run.path}", persist_state="session",
                             format_func=lambda n: f"conv {layers.index(n) + 1} of {len(layers)} · "
                                                   f"{modules[n].in_channels}→{modules[n].out_channels} channels "
                                                   f"({n})",
                             help="The conv layer whose activations Grad-CAM weighs. The last one (the default) "
                                  "knows most about the class but has the coarsest grid, so on a 28×28 input its "
                                  "map is a blurry blob; earlier layers give sharper, less class-specific maps.")
    else:
        c2.caption("Grad-CAM needs conv layers; this model has none.")
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


if mode == "Explain one image":
    sources = ["Upload a photo", "Camera"] + (["Test image"] if common.data_ready() else [])
    source = st.radio("Input", sources, horizontal=True, key="pr.source", bind="query-params", persist_state="session")
    image28, steps = None, []
    if source == "Test image":
        test = common.split(False)
        i = st.number_input(f"Test image index (0–{len(test) - 1})", 0, len(test) - 1, 0, key="pr.index",
                            bind="query-params", persist_state="session")
        image28, steps = test.images[i].numpy(), [(f"test #{i}: {CLASSES[test.labels[i]]}", test.images[i].numpy())]
    else:
        f = (st.file_uploader("Photo of a garment", type=["jpg", "jpeg", "png", "webp", "bmp", "gif"], key="pr.upload",
                              on_change=_forget_upload)
             if source == "Upload a photo" else st.camera_input("Take a photo", key="pr.camera"))
        data = f.getvalue() if f is not None else None
        if source == "Upload a photo":
            # an uploader comes back empty after a visit to another page: keep the last photo until it is removed
            if data is not None:
                st.session_state["pr.last_upload"] = (f.name, data)
            elif "pr.last_upload" in st.session_state:
                name, data = st.session_state["pr.last_upload"]
                st.caption(f"Showing your last upload, **{name}**; upload another photo to replace it.")
                if st.button("Forget this photo", key="pr.forget"):
                    del st.session_state["pr.last_upload"]
                    st.rerun()
        if data is not None:
            try:
                prepared = _prepared(data)
            except ImageError as exc:
                st.error(f"Cannot use this file: {exc}")
                st.stop()
            except Exception as exc:  # noqa: BLE001 - never a traceback on the page
                st.error(f"Cannot use this file: unexpected {type(exc).__name__} while reading it ({exc})")
                st.stop()
            else:
                image28, steps = prepared.image28, prepared.steps
                if not prepared.found:
                    st.info(f"{NOT_FOUND}. A plain background or a tighter crop helps.")
    if image28 is None:
        st.info("Upload a photo of a garment above." if source == "Upload a photo" else
                "Take a photo with the camera above (the browser asks for permission first).")
        st.stop()
    if source == "Test image":
        st.markdown("**The test image** — already 28×28 and Fashion-MNIST-like, so no preprocessing")
    else:
        st.markdown("**Preprocessing** — what the model sees, step by step")
    st.image([_square(s) for _, s in steps], caption=[n for n, _ in steps], width=110)
    answer = answer_for(run, image28)
    probs, pred, cal = np.array(answer["probabilities"]), answer["index"], answer["cal"]
    if answer["unsure"]:
        st.warning(f"**{describe(answer)}** — {run.name}")
    else:
        st.success(f"**{answer['label']}** ({percent(answer['confidence'])} calibrated confidence) — {run.name}")
    st.caption(f"The confidence is calibrated: the model's scores are softened or sharpened (temperature "
               f"{cal.temperature:.2f}; {cal.source}) so that on Fashion-MNIST an answer given at 80% is right about "
               f"80% of the time. Under {cal.threshold:.0%} the answer is 'unsure'."
               + (f" {describe_check(cal.check)}" if cal.check else ""))
    k = st.slider("Top k", 1, 10, 5, key="pr.k", persist_state="session")
    rest = [n for n, r in by_name.items() if r.path != run.path]
    # a photo is compared with the other photo-tuned runs (the others are sure of themselves on photos
    # they cannot read), a test image with the most accurate runs
    tuned = [common.key_of(by_name, r) for r in photo_ranked([by_name[n] for n in rest])]
    others = st.multiselect("Compare with", rest, key="pr.others", persist_state="session",
                            default=(rest if source == "Test image" else tuned)[:2],
                            format_func=lambda n: common.run_label(by_name[n]))
    cols = st.columns(1 + len(others))
    cols[0].plotly_chart(bars(probs, k, chart_title(run.name, answer)), width="stretch", key="pr.bars.main")
    for col, name in zip(cols[1:], others):
        try:
            other = answer_for(by_name[name], image28)
            col.plotly_chart(bars(np.array(other["probabilities"]), k, chart_title(name, other)),
                             width="stretch", key=f"pr.bars.{name}")
        except ValueError as exc:
            col.error(f"{name}: {exc}")
    st.subheader("Attributions")
    # a fixed label: a label that changes with the answer is left stale in the closed box by the browser
    choice = st.selectbox("Explain the class", ["predicted"] + CLASSES, key="pr.target", persist_state="session",
                          format_func=lambda c: "the predicted class" if c == "predicted" else c)
    target = pred if choice == "predicted" else CLASSES.index(choice)
    st.caption(f"The maps below explain **{CLASSES[target]}**" + (
        " (the likeliest class of an unsure answer)." if choice == "predicted" and answer["unsure"] else "."))
    attribution_panel(np.asarray(image28), np.asarray(image28), target)
else:
    if not common.data_ready():
        common.data_panel()
        st.stop()
    test = common.split(False)
    c1, c2 = st.columns(2)
    cls = CLASSES.index(c1.selectbox("Class", CLASSES, key="pr.class", persist_state="session"))
    n = c2.slider("Test images to average over", 4, 128, 32, step=4, key="pr.n", persist_state="session")
    idx = (test.labels == cls).nonzero().flatten()[:n]
    images = test.images[idx].numpy()
    mean_img = images.mean(0).round().astype(np.uint8)
    st.image(mean_img, caption=f"mean of {len(idx)} test images of {CLASSES[cls]}", width=140)
    attribution_panel(images, mean_img, cls, many=True)
