"""The embedding map as a self-contained Plotly page whose hover shows the image under the cursor.

Streamlit's plotly_chart reports selections but not hovers, so the map is rendered with plotly.js
in an iframe and a few lines of JavaScript put the hovered point's PNG beside the plot.
"""
from __future__ import annotations

import numpy as np
import plotly.express as px
import plotly.graph_objects as go

from fashion_core.data import CLASSES
from fashion_core.dataset_stats import png_data_uri

_HOVER_JS = """
var plot = document.getElementById('{plot_id}');
plot.on('plotly_hover', function (ev) {
  // looked up here, not above: this script runs before the parser reaches the preview element
  var box = document.getElementById('hover-preview');
  var p = ev.points[0];
  box.innerHTML = '<img src="' + p.customdata[1] + '" width="112" height="112" ' +
    'style="image-rendering: pixelated; border: 1px solid #888">' +
    '<div>#' + p.customdata[0] + ' · ' + p.data.name + '</div>';
});
"""


def embedding_html(xy: np.ndarray, labels: np.ndarray, images: np.ndarray, index: np.ndarray) -> str:
    """HTML for a scatter of xy (N, 2) coloured by class; hovering shows images[i] (28x28 uint8)."""
    # a standalone page gets no colours from Streamlit's theme (its default template has none)
    fig = go.Figure(layout=dict(template="plotly_white"))
    for c, name in enumerate(CLASSES):
        m = labels == c
        fig.add_trace(go.Scattergl(
            x=xy[m, 0], y=xy[m, 1], mode="markers", name=name,
            marker=dict(size=5, opacity=0.8, color=px.colors.qualitative.T10[c]),
            customdata=[[int(i), png_data_uri(img)] for i, img in zip(index[m], images[m])],
            hovertemplate="#%{customdata[0]}<extra>%{fullData.name}</extra>"))
    # the top margin leaves room for plotly's toolbar above the legend
    fig.update_layout(height=600, margin=dict(l=10, r=10, t=40, b=10), legend=dict(itemsizing="constant"),
                      xaxis=dict(showticklabels=False, zeroline=False),
                      yaxis=dict(showticklabels=False, zeroline=False))
    plot = fig.to_html(full_html=False, include_plotlyjs=True, post_script=_HOVER_JS,
                       config={"displaylogo": False, "responsive": True}, default_height=600)
    # a grid, not flex: the plot's column may shrink, so the preview column always stays in view
    return ('<div style="display:grid;grid-template-columns:minmax(0,1fr) 130px;gap:12px;'
            'font-family:sans-serif;font-size:13px">'
            f'<div>{plot}</div>'
            '<div id="hover-preview" style="padding-top:20px">hover a point</div></div>')
