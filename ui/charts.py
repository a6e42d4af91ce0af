"""The pages' Plotly figures, built from what they show (no Streamlit calls here): a job's live
curves, Compare's curves, confusion matrix and per-class dots, and Predict's top-k bars."""
from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from fashion_core.predictor import percent
from fashion_core.data import CLASSES


def job_curves(history: list[dict]) -> tuple[go.Figure, go.Figure]:
    """A job's loss and accuracy against the step: the running training numbers, and validation at
    each epoch's end when the run holds out a split. history: the job's progress records."""
    steps = [h for h in history if h["phase"] == "train"]
    epochs = [h for h in history if h["phase"] == "epoch"]
    loss, acc = go.Figure(), go.Figure()
    loss.add_scatter(x=[h["step"] for h in steps], y=[h["train_loss"] for h in steps], name="train (running)")
    acc.add_scatter(x=[h["step"] for h in steps], y=[h["train_acc"] for h in steps], name="train (running)")
    if epochs and "val_acc" in epochs[0]:
        loss.add_scatter(x=[h["step"] for h in epochs], y=[h["val_loss"] for h in epochs], name="validation")
        acc.add_scatter(x=[h["step"] for h in epochs], y=[h["val_acc"] for h in epochs], name="validation")
    for fig, title in ((loss, "loss"), (acc, "accuracy %")):
        fig.update_layout(height=240, margin=dict(l=10, r=10, t=30, b=10), title=title, xaxis_title="step")
    return loss, acc


def training_curves(metrics: pd.DataFrame, metric: str, colours: dict[str, str]) -> go.Figure:
    """Compare's curves of one metric ("loss" or "acc") per epoch: solid training, dashed validation,
    one colour per run. metrics: a row per run and epoch (column "run" and the runs' metrics)."""
    fig = go.Figure()
    for name, g in metrics.groupby("run", sort=False):
        for split, dash in (("train", "solid"), ("val", "dash")):
            if f"{split}_{metric}" in g:
                fig.add_scatter(x=g["epoch"], y=g[f"{split}_{metric}"], name=f"{name} {split}",
                                line=dict(color=colours[name], dash=dash))
    fig.update_layout(height=400, title="loss" if metric == "loss" else "accuracy %", xaxis_title="epoch",
                      margin=dict(t=40, b=10), legend=dict(font=dict(size=10), orientation="h", y=-0.2))
    return fig


def confusion_figure(cm: np.ndarray, normalise: bool) -> go.Figure:
    """A clickable (10, 10) confusion matrix, true classes down, predictions across."""
    t, p = np.meshgrid(range(10), range(10), indexing="ij")
    # square scatter markers, not a heatmap: Plotly heatmaps report no selection to Streamlit
    fig = go.Figure(go.Scatter(
        x=p.ravel(), y=t.ravel(), mode="markers+text",
        marker=dict(symbol="square", size=44, color=cm.ravel(), colorscale="Blues", showscale=True),
        unselected=dict(marker=dict(opacity=0.6)),  # a clicked cell stands out, the others stay readable
        text=[f"{v:.1f}" if normalise else f"{v:.0f}" for v in cm.ravel()],
        textfont=dict(size=12, color=["white" if v > cm.max() / 2 else "#333" for v in cm.ravel()]),
        customdata=[[CLASSES[i], CLASSES[j]] for i, j in zip(t.ravel(), p.ravel())],
        hovertemplate="true %{customdata[0]}, predicted %{customdata[1]}: %{text}<extra></extra>"))
    axis = dict(tickmode="array", tickvals=list(range(10)), ticktext=CLASSES, showgrid=False, zeroline=False)
    fig.update_layout(height=620, width=700, xaxis={**axis, "title": "predicted"},
                      yaxis={**axis, "title": "true", "autorange": "reversed"}, margin=dict(t=10))
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


def top_k_bars(probs: np.ndarray, k: int, title: str, height: int = 260) -> go.Figure:
    """The k likeliest classes of probs (10,), as horizontal bars, the likeliest on top."""
    top = np.argsort(probs)[::-1][:k][::-1]
    fig = go.Figure(go.Bar(x=probs[top] * 100, y=[CLASSES[i] for i in top], orientation="h",
                           text=[percent(probs[i]) for i in top], textposition="auto"))
    lines = textwrap.wrap(title, 40) or [""]  # plotly cuts a long title off at the chart's edge instead
    fig.update_layout(title="<br>".join(lines), height=height + 20 * (len(lines) - 1),
                      margin=dict(l=10, r=10, t=24 + 20 * len(lines), b=10), xaxis_range=[0, 100],
                      xaxis_title="probability %", title_font_size=13)
    return fig
