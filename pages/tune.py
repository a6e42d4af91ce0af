"""Tune: hyperparameter sweeps on Optuna. Start a report's experiment or a search space of your own as a
background job, watch its study fill in, then compare its best trials or train the best one longer."""
import streamlit as st

from fashion_core import sweeps
from fashion_core.config import INITS, LOSSES, OPTIMIZERS, PRESETS, SCHEDULES, VAL_SPLITS, TrainConfig
from fashion_core.models import list_models
from ui import common, train_form, tune_view

common.require_router()

# the options of the settings picked from a list; the others are searched over a range or typed choices
CHOICES = {"model": tuple(list_models()), "optimizer": OPTIMIZERS, "schedule": SCHEDULES, "loss": LOSSES,
           "init": INITS, "val_split": VAL_SPLITS, "augment": tuple(PRESETS), "photo_target": ("any", "top")}


def train_longer(config: TrainConfig, message: str) -> None:
    """The best trial's config into the Train form, then the Train page (which shows the message)."""
    train_form.fill_form(config, with_model=True)
    st.session_state.pop("train.from_job", None)  # the form no longer holds a job's settings
    st.session_state["train.toast"] = message
    st.switch_page("pages/train.py")


st.title("Tune")
st.caption("A sweep trains many short runs (trials) of one recipe with different settings, chosen by an Optuna "
           "sampler, and stops unpromising ones early (the pruner). Each trial is an ordinary run, listed on "
           "Overview and Compare as SWEEP-trial-NNNN.")
if toast := st.session_state.pop("tune.toast", None):  # set before a rerun
    st.toast(toast)
if pending := st.session_state.pop("tune.pending", None):  # a sweep just created: show it, and name it in the
    st.session_state["tune.sweep"] = st.query_params["tune.sweep"] = pending  # URL (the default one may change)

names = sweeps.list_sweeps()
have_data = common.data_ready()
if not have_data:
    common.data_panel()
with st.expander("New sweep", expanded=not names, icon=":material/add_circle:"):
    tune_view.new_sweep_form(sweeps.SWEEP_PRESETS, list(list_models()), CHOICES,
                             None if have_data else "A sweep trains on Fashion-MNIST: download it first.")
if not names:
    st.info("No sweeps yet: create one above. It runs as a background job, like training does, so you can "
            "leave this page or close the tab.")
    st.stop()

common.from_url("tune.sweep", names, max(names, key=sweeps.last_changed))  # by default the last one at work
name = st.selectbox("Sweep", names, key="tune.sweep", persist_state="session")
common.to_url("tune.sweep")
tune_view.sweep_panel(name, train_longer)
