"""The Dataset page's embedding map: a form, and the map drawn by a small component of ours
(ui/embedding_map/index.html) whose hover shows the image under the cursor.

Streamlit's plotly_chart reports selections but not hovers, so the map is drawn with plotly.js in the
component's frame. The frame stays across reruns: plotly.js is loaded and parsed once per tab, and each
new map is redrawn in place.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import plotly
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st
from streamlit import config
from streamlit.components.v1 import declare_component

from fashion_core import data as fdata, dataset_stats as ds
from fashion_core.data import CLASSES
from fashion_core.dataset_stats import contact_sheet, png_data_uri
from ui import common

SHEET_COLUMNS = 50  # the hovered images, in one PNG with this many to a row
MAP_HEIGHT = 640
_map_frame = declare_component("embedding_map", path=str(Path(__file__).parent / "embedding_map"))


def plotly_source() -> str:
    """plotly.js as this server serves it, for the map's frame to load by URL, cached by the browser
    ("Cache-Control: public"). Inlined, its 4.6 MB made every map a 6 MB page: on a busy 2-core machine
    Chromium drew a 1,000-image map 49 s after the click, 6 s with plotly.js loaded by URL (the same map,
    cached on the server). Registers plotly's own package folder as a component's files: call it while
    the page runs."""
    files = declare_component("plotly_js", path=str(Path(plotly.__file__).parent / "package_data"))
    base = config.get_option("server.baseUrlPath").strip("/")
    return f"{'/' + base if base else ''}/component/{files.name}/plotly.min.js"


def embedding_map(xy: np.ndarray, labels: np.ndarray, images: np.ndarray, index: np.ndarray) -> dict:
    """What the map's frame draws: a scatter of xy (N, 2) coloured by class, as Plotly JSON, and the
    images (N, 28, 28 uint8) as one contact sheet, whose tile i the frame shows when point i is hovered
    (for 2,000 points one PNG encodes in 0.1 s, a PNG per point in 1.8 s)."""
    # the frame gets no colours from Streamlit's theme (plotly's default template has none)
    fig = go.Figure(layout=dict(template="plotly_white"))
    for c, name in enumerate(CLASSES):
        m = labels == c
        fig.add_trace(go.Scattergl(
            x=xy[m, 0], y=xy[m, 1], mode="markers", name=name,
            marker=dict(size=5, opacity=0.8, color=px.colors.qualitative.T10[c]),
            customdata=np.stack([index[m], np.flatnonzero(m)], 1),  # (dataset index, tile on the sheet)
            hovertemplate="#%{customdata[0]}<extra>%{fullData.name}</extra>"))
    # the top margin leaves room for plotly's toolbar; the legend goes under the map, so that a narrow
    # window (the app at 900 px) gives the points the width rather than the class names
    fig.update_layout(height=600, margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(itemsizing="constant", orientation="h", y=-0.02, yanchor="top"),
                      xaxis=dict(showticklabels=False, zeroline=False),
                      yaxis=dict(showticklabels=False, zeroline=False))
    return dict(figure=fig.to_json(), sheet=png_data_uri(contact_sheet(images, SHEET_COLUMNS)),
                cols=SHEET_COLUMNS, config={"displaylogo": False, "responsive": True})


@st.cache_data(show_spinner=False, max_entries=6)
def _map(which: str, method: str, n: int, seed: int, root: str) -> tuple[dict, int]:
    """The map's drawing (embedding_map) and its point count, once per (split, method, size, seed); the engine also keeps
    the coordinates on disk, for after a restart."""
    data = common.dataset(which == "train", root)
    idx = ds.sample(data.labels, n, seed)
    xy = ds.embed(data.images[idx], method, seed, cache_dir=fdata.CACHE_DIR / "embeddings")
    return embedding_map(xy, data.labels[idx].numpy(), data.images[idx].numpy(), idx), len(idx)


@st.fragment  # computing a map reruns this panel only, not the whole Dataset page (a second of its wait)
def embedding_panel(which: str, root: str) -> None:
    """The embedding tab: method, sample size and seed, and the map of the `which` split's images
    (root: the data folder, part of the cache's key)."""
    with st.form("ds.embed_form"):
        c1, c2, c3 = st.columns(3)
        method = c1.radio("Method", ds.EMBEDDINGS, horizontal=True)
        n = c2.slider("Sample size", 200, 5000, 2000, step=100,
                      help="Time grows with the points. For 2,000 images on a 2-core machine: PCA about 1 s, "
                           "t-SNE about 10 s, UMAP about 10 s the first time after the app starts (it compiles "
                           "its code) and 3 s after. A map computed once comes back at once, even after a restart.")
        seed = c3.number_input("Seed", 0, 10_000, 0)
        go_embed = st.form_submit_button("Compute the map", type="primary")
    if go_embed:
        st.session_state["ds.embed_args"] = (which, method, n, seed, root)
    if args := st.session_state.get("ds.embed_args"):
        with st.spinner(f"Computing the {args[1]} map of {args[2]:,} images…" + (
                " The first UMAP map after the app starts also compiles UMAP's code (several seconds more)."
                if args[1] == "UMAP" else "")):
            drawing, points = _map(*args)
        st.caption(f"{args[1]} of {points:,} {args[0]} images (seed {args[3]}). Hover a point to see its image.")
        # one key: the same frame redraws each map; map_id tells it whether this one is new, and the frame
        # writes it on its body (data-drawn) once drawn
        _map_frame(**drawing, plotly_js=plotly_source(), height=MAP_HEIGHT, map_id="/".join(map(str, args)), key="ds.embed_map",
                   default=None)
