"""Compare's confusion matrix of one run: click a cell to see the test images of that true class the
run predicted as that class."""
from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from fashion_core import compare
from fashion_core.data import CLASSES, FashionData
from fashion_core.runs import Run
from ui.charts import confusion_figure


def confusion_panel(run: Run, key: str, normalise: bool, test_split: Callable[[], FashionData] | None,
                    cell_images: int) -> None:
    """The run's clickable matrix (key: its widget key's suffix; normalise: row percentages instead
    of counts) and, under a clicked cell, up to cell_images of its test images (test_split: loads
    the official test split, None when it is not on this machine)."""
    cm = compare.confusion(run, normalise)
    with st.container(width=640):  # as wide as its column allows, up to 640 px; the cells stay square
        event = st.plotly_chart(confusion_figure(cm, normalise), on_select="rerun", selection_mode="points",
                                key=f"cm-{key}", width="stretch")
    points = event.selection.points if event else []
    if not points:
        return
    true, pred = int(points[0]["y"]), int(points[0]["x"])
    st.markdown(f"**True {CLASSES[true]}, predicted {CLASSES[pred]}** ({cm[true, pred]:.0f}"
                f"{'%' if normalise else ' images'})")
    if test_split is None:
        st.info("The test images are not on this machine; download the dataset on the Dataset page.")
    else:
        cell(run, test_split(), true, pred, cell_images)


def cell(run: Run, test: FashionData, true: int, pred: int, limit: int) -> None:
    """The first `limit` test images of class `true` that the run predicted as `pred`, each with its
    index and, where the run saved it, its top probability."""
    try:
        idx = compare.cell_examples(run, test.labels.numpy(), true, pred, limit=limit)
    except ValueError as exc:
        st.warning(str(exc))
        return
    conf = run.eval.get("confidence") or [None] * len(test)
    st.image([test.images[i].numpy() for i in idx], width=84,
             caption=[f"#{i}" + (f" · {conf[i]:.0%} sure" if conf[i] else "") for i in idx])
    if not len(idx):
        st.caption("No test images in this cell.")
    else:
        st.caption("Under each image: its test-set index and, where the run saved it, its top "
                   "probability (before calibration) for the predicted class.")
    if len(idx) == limit:
        st.caption(f"The first {limit} of them, by test-set index.")
