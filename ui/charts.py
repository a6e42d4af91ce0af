"""The pages' Plotly figures, built from what they show (no Streamlit calls here): a job's live
curves, Compare's curves, confusion matrix and per-class dots, and Predict's top-k bars."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from fashion_core.predictor import percent
from fashion_core.data import CLASSES


SMOOTHING_EPOCHS = 0.1  # the training curve's moving average reaches back about this share of an epoch


def job_curves(history: list[dict], latest: dict | None = None,
               resumed: bool = False) -> tuple[go.Figure, go.Figure]:
    """A job's loss and accuracy against the epoch (1.5: half-way through the second): the training
    numbers smoothed across epochs, and validation at each epoch's end when the run holds out a split.
    history: the job's progress records; latest: its last report; resumed: the job carries a stopped run on."""
    per_epoch = _steps_per_epoch(history, latest or {})
    train = _training_curve(history, per_epoch, resumed)
    ends = [h for h in history if h["phase"] == "epoch" and "val_acc" in h]
    loss, acc = go.Figure(), go.Figure()
    for fig, key, title in ((loss, "loss", "loss"), (acc, "acc", "accuracy %")):
        fig.add_scatter(x=train["x"], y=train[key], name="training (smoothed)" if per_epoch else "training",
                        mode="lines+markers" if len(train["x"]) == 1 else "lines")  # one report: still a dot
        if ends:
            fig.add_scatter(x=[h["epoch"] for h in ends], y=[h[f"val_{key}"] for h in ends], name="validation",
                            mode="lines+markers")
        fig.update_layout(height=260, margin=dict(l=10, r=10, t=10, b=10), yaxis_title=title,
                          xaxis_title="epoch" if per_epoch else "step", showlegend=True,
                          legend=dict(orientation="h", x=1, xanchor="right", y=1.02, yanchor="bottom"))
    xs = train["x"] + [h["epoch"] for h in ends]
    if per_epoch and xs:  # whole epochs: the one under way shows how far it has got
        lo = float(np.floor(min(xs)))
        for fig in (loss, acc):
            fig.update_xaxes(range=[lo - 0.02, max(float(np.ceil(max(xs))), lo + 1) + 0.02])
    return loss, acc


def _steps_per_epoch(history: list[dict], latest: dict) -> float | None:
    """Optimiser steps per epoch: from the first epoch's end on record (its step counts whole epochs), else
    the latest report's total_steps over epochs; None when neither is known (a job stopped in its first
    epoch), and the curves are drawn against the step."""
    ends = [h for h in history if h["phase"] == "epoch" and h.get("step")]
    if ends:
        return ends[0]["step"] / ends[0]["epoch"]
    return latest["total_steps"] / latest["epochs"] if latest.get("total_steps") and latest.get("epochs") else None


def _training_curve(history: list[dict], per_epoch: float | None, resumed: bool) -> dict[str, list[float]]:
    """The training points as x (epochs, or steps when per_epoch is None), loss and acc. A report holds the
    running mean since its epoch began, which restarts each epoch (a saw-tooth): each is turned back into
    the mean over the steps since the report before, then smoothed by a moving average that runs on
    across epochs. A resumed job's first means count from where it resumed, taken to be one report's
    spacing before its first report (reports come at even times)."""
    out: dict[str, list[float]] = {"x": [], "loss": [], "acc": []}
    points = [h for h in history if h["phase"] == "train"]
    if not per_epoch:  # nothing says where epochs begin: the running means against the step
        return {"x": [h["step"] for h in points], "loss": [h["train_loss"] for h in points],
                "acc": [h["train_acc"] for h in points]}
    first = [h["step"] for h in points if h["epoch"] == points[0]["epoch"]][:2] if resumed else []
    resumed_at = 2 * first[0] - first[1] if len(first) == 2 else None
    prev: dict = {}
    for h in points:
        begin = (h["epoch"] - 1) * per_epoch  # where its running mean began: its epoch's start, or the resume
        if resumed_at is not None and h["epoch"] == points[0]["epoch"]:
            begin = max(begin, resumed_at)
        into = h["step"] - begin
        since = prev.get("epoch") == h["epoch"] and into > prev["into"]
        weight = 1 - np.exp(-(h["step"] - prev["step"]) / (SMOOTHING_EPOCHS * per_epoch)) if prev else 1.0
        for key, top in (("loss", np.inf), ("acc", 100.0)):
            mean = h[f"train_{key}"]
            if since:  # the mean over the steps since prev, from the two running means
                mean = (mean * into - prev[key] * prev["into"]) / (into - prev["into"])
            mean = float(np.clip(mean, 0.0, top))
            out[key].append(mean if not prev else out[key][-1] + weight * (mean - out[key][-1]))
        out["x"].append(float(np.clip(h["step"] / per_epoch, h["epoch"] - 1, h["epoch"])))
        prev = {"epoch": h["epoch"], "step": h["step"], "into": into, "loss": h["train_loss"], "acc": h["train_acc"]}
    return out


def training_curves(metrics: pd.DataFrame, colours: dict[str, str]) -> go.Figure:
    """Compare's curves, loss on the left and accuracy on the right, per epoch: solid training, dashed
    validation, one colour per run. metrics: a row per run and epoch (column "run" and the runs' metrics).
    One figure with two panels, not two charts: each Plotly chart costs the browser a few tenths of a second."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", "accuracy %"), horizontal_spacing=0.08)
    for name, g in metrics.groupby("run", sort=False):
        drawn = 0
        for col, metric in enumerate(("loss", "acc"), 1):
            for split, dash in (("train", "solid"), ("val", "dash")):
                if f"{split}_{metric}" in g and g[f"{split}_{metric}"].notna().any():
                    # one legend entry per run (the caption says which line is which)
                    fig.add_scatter(x=g["epoch"], y=g[f"{split}_{metric}"], name=name, legendgroup=name,
                                    showlegend=not drawn, line=dict(color=colours[name], dash=dash), row=1, col=col,
                                    hovertemplate=f"{name} {split}: %{{y:.3f}} at epoch %{{x}}<extra></extra>")
                    drawn += 1
    fig.update_xaxes(title_text="epoch")
    fig.update_layout(height=400, margin=dict(t=40, b=10, l=10, r=10),
                      legend=dict(font=dict(size=10), orientation="h", y=-0.2))
    return fig


def confusion_figure(cm: np.ndarray, normalise: bool) -> go.Figure:
    """A clickable (10, 10) confusion matrix, true classes down, predictions across, with square cells
    that scale with the chart's width (a narrow window gets smaller cells, not overlapping ones)."""
    t, p = np.meshgrid(range(10), range(10), indexing="ij")
    text = [f"{v:.1f}" if normalise else f"{v:.0f}" for v in cm.ravel()]
    # the colours: a heatmap, which scales with the chart and writes each cell's number to fit it
    # (no colour bar: every cell says its number, and the bar took a sixth of a narrow window's width)
    fig = go.Figure(go.Heatmap(z=cm, text=np.reshape(text, cm.shape), texttemplate="%{text}", colorscale="Blues",
                               xgap=1, ygap=1, hoverinfo="skip", showscale=False))
    # the clicks: Plotly heatmaps report no selection to Streamlit, so an invisible open square sits on every
    # cell; the clicked one shows, an orange outline inside its cell at any width
    fig.add_scatter(
        x=p.ravel(), y=t.ravel(), mode="markers", text=text,
        marker=dict(symbol="square-open", size=24, color="#ff7f0e", opacity=0, line=dict(width=3)),
        selected=dict(marker=dict(opacity=1)), unselected=dict(marker=dict(opacity=0)),
        customdata=[[CLASSES[i], CLASSES[j]] for i, j in zip(t.ravel(), p.ravel())],
        hovertemplate="true %{customdata[0]}, predicted %{customdata[1]}: %{text}<extra></extra>")
    axis = dict(tickmode="array", tickvals=list(range(10)), ticktext=CLASSES, showgrid=False, zeroline=False,
                constrain="domain")  # square cells: the longer side gives way, towards the top left
    fig.update_layout(height=520, xaxis={**axis, "title": "predicted", "scaleanchor": "y", "constraintoward": "left",
                                           "tickangle": -45},
                      yaxis={**axis, "title": "true", "autorange": "reversed", "constraintoward": "top"},
                      margin=dict(t=10, l=10, r=10, b=10),
                      hoverdistance=-1, plot_bgcolor="rgba(0,0,0,0)")  # a click anywhere in a cell picks it
    return fig


def per_class_figure(per_class: pd.DataFrame, metric: str, colours: dict[str, str]) -> go.Figure:
    """One metric per class and run (compare.per_class's long table), as dots."""
    # dots, not bars: the axis starts near the lowest value, which a bar (read by its length) would exaggerate
    fig = px.scatter(per_class[per_class.metric == metric], x="class", y="value", color="run", symbol="run",
                     height=380, color_discrete_map=colours)
    fig.update_traces(marker=dict(size=11, line=dict(width=1, color="white")))
    fig.update_layout(yaxis_title=f"{metric} %", margin=dict(t=10), scattermode="group",
                      yaxis_range=[max(0, per_class.value.min() - 3), 100.5])
    return fig


def top_k_bars(probs: np.ndarray, k: int, unsure: bool = False) -> go.Figure:
    """The k likeliest classes of probs (10,), as horizontal bars, the likeliest on top; amber when the
    answer is unsure, like its banner. No title: the page writes one above, where a long one wraps."""
    top = np.argsort(probs)[::-1][:k][::-1]
    fig = go.Figure(go.Bar(x=probs[top] * 100, y=[CLASSES[i] for i in top], orientation="h",
                           text=[percent(probs[i]) for i in top], cliponaxis=False,
                           # beside a short bar, or plotly drops the label of a bar too thin to hold it
                           textposition=["inside" if probs[i] > 0.25 else "outside" for i in top],
                           marker_color="#f0b429" if unsure else "#1c83e1",
                           insidetextfont=dict(color="#31333f" if unsure else "white")))
    # 28 px a class: ten bars keep a 13 px label each, and the chart grows instead of squeezing them
    fig.update_layout(height=80 + 28 * k, margin=dict(l=10, r=10, t=10, b=10), xaxis_range=[0, 100],
                      xaxis_title="probability %", bargap=0.25, yaxis=dict(automargin=True, tickfont_size=13),
                      uniformtext=dict(minsize=12, mode="show"), font_size=13)
    return fig
