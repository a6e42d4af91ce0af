"""The Predict page's answer: a run's calibrated answer for an image (answer_for), the banner that
states it, and the top-k bars of the run and of the runs it is compared with."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from fashion_core.calibration import calibration_for
from fashion_core.photos.thresholds import describe_check
from fashion_core.predictor import Predictor, describe, percent
from fashion_core.runs import Run
from ui import common
from ui.charts import top_k_bars


@st.cache_resource(max_entries=16, show_spinner="Calibrating confidence on the validation split…")
def _calibration(run_path: str, stamps: tuple[float, float]):
    return calibration_for(Run(Path(run_path)))


def predictor_for(r: Run) -> Predictor:
    """The run's Predictor from the cached model and calibration (fitted once per checkpoint, re-read
    when calibration.json changes, e.g. a new threshold from scripts/photo_threshold_cv.py)."""
    cal_file = r.path / "calibration.json"
    stamps = (r.weights_stamp(), cal_file.stat().st_mtime if cal_file.exists() else 0.0)
    return Predictor.from_run(r, model=common.model_for(r), calibration=_calibration(str(r.path), stamps))


def answer_for(r: Run, image28: np.ndarray) -> dict:
    """The run's answer for one image, with the calibration behind it ("cal")."""
    predictor = predictor_for(r)
    return {**predictor.answer(image28), "cal": predictor.calibration}


def chart_title(name: str, answer: dict) -> str:
    """A chart's short heading: the run, its top class and share, and whether that is unsure."""
    return f"{name}: {answer['label']} ({percent(answer['confidence'])})" + (", unsure" if answer["unsure"] else "")


def show_answer(answer: dict, run_name: str) -> None:
    """The answer as a banner (a warning when unsure), and how its confidence was calibrated."""
    cal = answer["cal"]
    if answer["unsure"]:
        st.warning(f"**{describe(answer)}** — {run_name}")
    else:
        st.success(f"**{answer['label']}** ({percent(answer['confidence'])} calibrated confidence) — {run_name}")
    st.caption(f"The confidence is calibrated: the model's scores are softened or sharpened (temperature "
               f"{cal.temperature:.2f}; {cal.source}) so that on Fashion-MNIST an answer given at 80% is right about "
               f"80% of the time. Under {cal.threshold:.0%} the answer is 'unsure'."
               + (f" {describe_check(cal.check)}" if cal.check else ""))


def top_k_charts(answer: dict, run_name: str, others: dict[str, Run], image28: np.ndarray, k: int) -> None:
    """Top-k bars side by side: the answer of the run (run_name), then those of `others` (by widget
    key) for the same image; a run whose checkpoint is refused says so in its column."""
    cols = st.columns(1 + len(others))
    cols[0].plotly_chart(top_k_bars(np.array(answer["probabilities"]), k, chart_title(run_name, answer)),
                         width="stretch", key="pr.bars.main")
    for col, (name, run) in zip(cols[1:], others.items()):
        try:
            other = answer_for(run, image28)
            col.plotly_chart(top_k_bars(np.array(other["probabilities"]), k, chart_title(name, other)),
                             width="stretch", key=f"pr.bars.{name}")
        except ValueError as exc:
            col.error(f"{name}: {exc}")
