"""Dataset: gallery, class balance, mean/std images, intensity histograms, embedding map, the
augmentation playground and synthetic garments from a GAN."""
import numpy as np
import plotly.graph_objects as go
import streamlit as st

from fashion_core import dataset_stats as ds
from fashion_core.augment import preview_grid
from fashion_core.config import PRESETS, VAL_SPLITS
from fashion_core.data import CLASSES, data_root
from ui import common

common.require_router()
from ui.embedding_view import embedding_panel
from ui.synthetic_view import synthetic_panel

st.title("Dataset")
if not common.data_ready():
    common.data_panel("so only generated garments can be shown")
    st.subheader("Synthetic garments")
    synthetic_panel(None)  # a shipped generator needs no dataset
    st.stop()

train, test = common.split(True), common.split(False)


def _first_page() -> None:
    """Another split or class filter lists other images: the gallery starts again at page 1."""
    st.session_state["ds.page"] = 1


def _same_images() -> None:
    """Another page size: open the page that holds the first image shown before."""
    first = (st.session_state.get("ds.page", 1) - 1) * st.session_state.get("ds.per_page_was", 24)
    st.session_state["ds.page"] = first // st.session_state["ds.per_page"] + 1


which = st.radio("Split", ["train", "test"], horizontal=True, key="ds.split", bind="query-params",
                 persist_state="session", on_change=_first_page)
data = train if which == "train" else test


@st.cache_data(show_spinner="Computing per-class statistics…", max_entries=4)
def _stats(which: str, root: str):
    d = train if which == "train" else test
    return (*ds.mean_std_images(d.images, d.labels), ds.intensity_histograms(d.images, d.labels))


def _gallery() -> None:
    c1, c2, c3 = st.columns([3, 1, 1])
    chosen = c1.multiselect("Classes", CLASSES, placeholder="all classes", key="ds.classes", bind="query-params",
                            persist_state="session", on_change=_first_page)
    per_page = c2.selectbox("Per page", [24, 48, 96], key="ds.per_page", bind="query-params", persist_state="session",
                            on_change=_same_images)
    st.session_state["ds.per_page_was"] = per_page
    _, pages = ds.gallery_page(data.labels, [CLASSES.index(c) for c in chosen], 0, per_page)
    if st.session_state.get("ds.page", 1) > pages:  # fewer pages than before (another split or filter)
        st.session_state["ds.page"] = pages
    page = c3.number_input(f"Page (of {pages:,})", 1, pages, key="ds.page", bind="query-params",
                           persist_state="session") - 1
    idx, _ = ds.gallery_page(data.labels, [CLASSES.index(c) for c in chosen], page, per_page)
    st.image([data.images[i].numpy() for i in idx], width=84,
             caption=[f"#{i} {CLASSES[data.labels[i]]}" for i in idx])


def _balance() -> None:
    c1, c2, c3 = st.columns(3)
    mode = c1.selectbox("Validation split", VAL_SPLITS, key="ds.val_split", persist_state="session")
    frac = c2.slider("Validation fraction (random)", 0.05, 0.5, 0.2, key="ds.val_fraction", persist_state="session",
                     disabled=mode != "random")
    count = c3.number_input("Validation count (stratified)", 10, 30000, 4000, key="ds.val_count",
                            persist_state="session", disabled=mode != "stratified")
    counts = ds.class_balance(train.labels, test.labels, mode, frac, count)
    fig = go.Figure([go.Bar(name=k, x=CLASSES, y=v) for k, v in counts.items()])
    fig.update_layout(barmode="group", height=380, yaxis_title="images", margin=dict(t=20))
    st.plotly_chart(fig, width="stretch")
    st.caption(" · ".join(f"{k}: {sum(v):,} images" for k, v in counts.items()) + ". All three splits at once, "
               "whichever split is chosen above: the validation images are held out of the 60,000 training ones.")


def _means() -> None:
    mean, std, _ = _stats(which, str(data_root().resolve()))
    st.markdown(f"**Mean image per class** ({which} split)")
    st.image([ds.upscale(m) for m in mean], caption=CLASSES, width=84)
    st.markdown("**Standard deviation per pixel** (white = the class varies most there; scaled to the maximum)")
    st.image([ds.upscale(s / std.max() * 255) for s in std], caption=CLASSES, width=84)


def _hists() -> None:
    hist = _stats(which, str(data_root().resolve()))[2]
    width = 256 // hist.shape[1]  # intensities per bin
    st.caption(f"{which.capitalize()} split: share of each class's pixels per intensity bin ({width} levels wide), "
               f"pure black (0, the background) left out. The first bin (1–{width - 1}) still holds the many near-black pixels at "
               "the garments' edges.")
    centres = (np.arange(hist.shape[1]) + 0.5) * width
    fig = go.Figure([go.Scatter(x=centres, y=h, mode="lines", name=c) for c, h in zip(CLASSES, hist)])
    fig.update_layout(height=400, xaxis_title="pixel intensity", yaxis_title="fraction of pixels", margin=dict(t=20))
    st.plotly_chart(fig, width="stretch")


def _embedding() -> None:
    embedding_panel(which, str(data_root().resolve()))


def _augment() -> None:
    if "ds.aug_preset" not in st.session_state:  # open on a preset that does something visible
        st.session_state["ds.aug_preset"] = "flagship" if "flagship" in PRESETS else next(iter(PRESETS))
        common.load_augment_preset(PRESETS[st.session_state["ds.aug_preset"]], "aug")
    c1, c2, c3 = st.columns([2, 1, 1])
    c1.selectbox("Start from a preset", list(PRESETS), key="ds.aug_preset", persist_state="session",
                          on_change=lambda: common.load_augment_preset(PRESETS[st.session_state["ds.aug_preset"]], "aug"))
    st.session_state.setdefault("ds.aug_seed", 0)
    if c3.button("New draw", icon=":material/casino:"):
        st.session_state["ds.aug_seed"] += 1
    seed = c2.number_input("Seed", 0, 1_000_000, key="ds.aug_seed", persist_state="session")
    preview = st.container()  # above the controls, so every change shows without scrolling
    cfg = common.augment_inputs("aug", columns=3)
    try:
        cfg.validate()
    except ValueError as exc:
        preview.error(str(exc))
    else:
        pick = ds.sample(train.labels, 12, seed=1)  # the same 12 images for every draw
        grid = preview_grid(train.images[pick], cfg, int(seed), train.labels[pick])
        preview.image(ds.upscale(grid.numpy()), caption="top: original · bottom: augmented. Always training images, "
                      "whichever split is chosen above: only training batches are augmented.")


def _synthetic() -> None:
    synthetic_panel(train)


# only the open tab runs (a tab switch reruns the page), so a visit draws one tab's images and charts, not seven;
# the open tab is in the address, so a reload or a shared link opens it again
TABS = {"Gallery": _gallery, "Class balance": _balance, "Mean & std": _means, "Histograms": _hists,
        "Embedding map": _embedding, "Augmentation playground": _augment, "Synthetic": _synthetic}
for tab, draw in zip(st.tabs(list(TABS), key="ds.tab", on_change="rerun", bind="query-params"), TABS.values()):
    if tab.open:
        with tab:
            draw()
