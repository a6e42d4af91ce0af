"""The Dataset page's embedding map: a form, and the map as a self-contained Plotly page whose hover
shows the image under the cursor.

Streamlit's plotly_chart reports selections but not hovers, so the map is rendered with plotly.js
in an iframe and a few lines of JavaScript put the hovered point's image beside the plot.
"""
from __future__ import annotations

import json
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

# SHEET (every hovered image in one PNG, COLS to a row) is prepended in Python and the hovered point's
# tile cut out on a canvas: for 2,000 points one encode takes 0.1 s, a PNG per point in its customdata 1.8 s
_HOVER_JS = """
var sheet = new Image();
sheet.src = SHEET;
var tile = document.createElement('canvas');
tile.width = 28;
tile.height = 28;
var plot = document.getElementById('{plot_id}');
plot.on('plotly_hover', function (ev) {
  // looked up here, not above: this script runs before the parser reaches the preview element
  var box = document.getElementById('hover-preview');
  var p = ev.points[0], at = p.customdata[1], ctx = tile.getContext('2d');
  ctx.clearRect(0, 0, 28, 28);
  ctx.drawImage(sheet, (at % COLS) * 28, Math.floor(at / COLS) * 28, 28, 28, 0, 0, 28, 28);
  box.innerHTML = '<img src="' + tile.toDataURL('image/png') + '" width="112" height="112" ' +
    'style="image-rendering: pixelated; border: 1px solid #888">' +
    '<div>#' + p.customdata[0] + ' · ' + p.data.name + '</div>';
});
"""
SHEET_COLUMNS = 50


def plotly_source() -> str:
    """plotly.js as this server serves it, for the map's page to load by URL, cached by the browser
    ("Cache-Control: public"). Inlined, its 4.6 MB made every map a 6 MB page: on a busy 2-core machine
    Chromium drew a 1,000-image map 49 s after the click, 6 s with plotly.js loaded by URL (the same map,
    cached on the server). Registers plotly's own package folder as a component's files: call it while
    the page runs."""
    files = declare_component("plotly_js", path=str(Path(plotly.__file__).parent / "package_data"))
    base = config.get_option("server.baseUrlPath").strip("/")  # the map's page (srcdoc) has the app's origin
    return f"{'/' + base if base else ''}/component/{files.name}/plotly.min.js"


def embedding_html(xy: np.ndarray, labels: np.ndarray, images: np.ndarray, index: np.ndarray,
                   plotly_js: str | bool = True) -> str:
    """HTML for a scatter of xy (N, 2) coloured by class; hovering shows images[i] (28x28 uint8).
    plotly_js: where the page loads plotly.js from (plotly_source()), or True to inline it."""
    # a standalone page gets no colours from Streamlit's theme (its default template has none)
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
    sheet = png_data_uri(contact_sheet(images, SHEET_COLUMNS))
    plot = fig.to_html(full_html=False, include_plotlyjs=plotly_js, post_script=f"var SHEET = {json.dumps(sheet)}, "
                       f"COLS = {SHEET_COLUMNS};" + _HOVER_JS,
                       config={"displaylogo": False, "responsive": True}, default_height=600)
    # a grid, not flex: the plot's column may shrink, so the preview column always stays in view
    return ('<style>.map{display:grid;grid-template-columns:minmax(0,1fr) 130px;gap:12px;font-family:sans-serif;'
            'font-size:13px} @media (max-width:600px){.map{grid-template-columns:minmax(0,1fr) 96px}'
            '.map img{width:84px;height:84px}}</style>'
            f'<div class="map"><div>{plot}</div>'
            '<div id="hover-preview" style="padding-top:20px">hover a point</div></div>')


@st.cache_data(show_spinner=False, max_entries=6)
def _map(which: str, method: str, n: int, seed: int, root: str, plotly_js: str) -> tuple[str, int]:
    """The map's HTML and its point count, once per (split, method, size, seed); the engine also keeps
    the coordinates on disk, for after a restart."""
    data = common.dataset(which == "train", root)
    idx = ds.sample(data.labels, n, seed)
    xy = ds.embed(data.images[idx], method, seed, cache_dir=fdata.CACHE_DIR / "embeddings")
    return embedding_html(xy, data.labels[idx].numpy(), data.images[idx].numpy(), idx, plotly_js), len(idx)


@st.fragment  # computing a map reruns this panel only, not the whole Dataset page (a second of its wait)
def embedding_panel(which: str, root: str) -> None:
    """The embedding tab: method, sample size and seed, and the map of the `which` split's images
    (root: the data folder, part of the cache's key)."""
    with st.form("ds.embed_form"):
        c1, c2, c3 = st.columns(3)
        method = c1.radio("Method", ds.EMBEDDINGS, horizontal=True)
        n = c2.slider("Sample size", 200, 5000, 2000, step=100,
                      help="Time grows with the points. For 2,000 images on a 2-core machine: PCA about 2 s, "
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
            html, points = _map(*args, plotly_source())
        st.caption(f"{args[1]} of {points:,} {args[0]} images (seed {args[3]}). Hover a point to see its image.")
        st.iframe(html, height=640)  # our own HTML
