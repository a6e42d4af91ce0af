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
    when calibration.json changes, e.g. a threshold picked again with `python -m fashion_core photo-threshold`)."""
    cal_file = r.path / "calibration.json"
    stamps = (r.weights_stamp(), cal_file.stat().st_mtime if cal_file.exists() else 0.0)
    return Predictor.from_run(r, model=common.model_for(r), calibration=_calibration(str(r.path), stamps))


def answer_for(r: Run, image28: np.ndarray) -> dict:
    """The run's answer for one image, with the calibration behind it ("cal")."""
    predictor = predictor_for(r)
    return {**predictor.answer(image28), "cal": predictor.calibration}


def answer_text(answer: dict) -> str:
    """The answer in words, as every banner on the page says it: '**Unsure — torn between …**' or
    '**Coat** (93.1% calibrated confidence)'."""
    if answer["unsure"]:
        return f"**{describe(answer)}**"
    return f"**{answer['label']}** ({percent(answer['confidence'])} calibrated confidence)"


def show_answer(answer: dict, run_name: str) -> None:
    """The answer as a banner (a warning when unsure), and how its confidence was calibrated."""
    cal = answer["cal"]
    (st.warning if answer["unsure"] else st.success)(f"{answer_text(answer)} — {run_name}")
    st.caption(f"The confidence is calibrated: the model's scores are softened or sharpened (temperature "
               f"{cal.temperature:.2f}; {cal.source}) so that on Fashion-MNIST an answer given at 80% is right about "
               f"80% of the time. Under {cal.threshold:.0%} the answer is 'unsure'."
               + (f" {describe_check(cal.check)}" if cal.check else ""))


CARD_WIDTH = 300  # px: three charts a row in a 1400 px window, one a row at 900 px, never squeezed


def top_k_charts(answer: dict, run_name: str, others: dict[str, Run], image28: np.ndarray, k: int) -> None:
    """Top-k bars in cards that wrap onto new rows: the answer of the run (run_name), then, each under
    its own banner (unsure by its own threshold), those of `others` (by widget key) for the same image;
    a run whose checkpoint is refused says so in its card."""
    with st.container(horizontal=True):
        _bars_card(run_name, answer, k, main=True)
        for name, run in others.items():
            try:
                other = answer_for(run, image28)
            except ValueError as exc:
                with st.container(border=True, width=CARD_WIDTH):
                    st.error(f"{name}: {exc}")
                continue
            _bars_card(name, other, k, main=False)


def _bars_card(name: str, answer: dict, k: int, main: bool) -> None:
    """One run's top-k bars under its name; a compared run's (not main) with its answer's banner."""
    with st.container(border=True, width=CARD_WIDTH):
        st.markdown(f"**{name}**" + (" · the answer above" if main else ""))
        if not main:
            (st.warning if answer["unsure"] else st.success)(answer_text(answer))
        st.plotly_chart(top_k_bars(np.array(answer["probabilities"]), k, answer["unsure"]), width="stretch",
                        key="pr.bars.main" if main else f"pr.bars.{name}", config={"displayModeBar": False})
        st.caption(f"Unsure under {answer['cal'].threshold:.0%} calibrated confidence.")
