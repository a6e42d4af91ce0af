"""Train: a form generated from TrainConfig's field metadata that queues a background job, and the live
job list."""
import streamlit as st

from fashion_core import jobs
from fashion_core.config import (INITS, LOSSES, OPTIMIZERS, RECIPES, SCHEDULES, VAL_SPLITS, field_groups, field_help,
                                 recipe_note)
from fashion_core.models import list_models
from ui import common, train_form
from ui.jobs_view import job_list

common.require_router()

# the options of the fields picked from a list; the others get a widget for their default's type
CHOICES = {"model": tuple(list_models()), "optimizer": OPTIMIZERS, "schedule": SCHEDULES, "loss": LOSSES,
           "init": INITS, "val_split": VAL_SPLITS, "device": ("auto", "cpu", "cuda"),
           "photo_shares": ("train", "calib", "train,calib", "train,calib,held-out-a,held-out-b"), "photo_target": ("any", "top")}

st.title("Train")
if not common.data_ready():
    common.data_panel()
else:
    chosen = st.selectbox("Start from a recipe", ["defaults", *RECIPES], key="train.recipe", persist_state="session",
                          on_change=train_form.load_recipe)
    if st.session_state.get("train.from_job"):
        st.caption(f"The form holds the settings of job {st.session_state['train.from_job']} (loaded from the Jobs list).")
    else:
        st.caption(recipe_note(chosen))
    if toast := st.session_state.pop("train.toast", None):  # set in a Jobs-list callback, which reruns the app
        st.toast(toast)
    cfg = train_form.config_form(field_groups(), field_help(), CHOICES, common.finished_runs())
    if st.button("Start training", type="primary", disabled=cfg is None) and cfg is not None:
        try:  # the duplicate check and the queueing happen at once, so two tabs never queue one config twice
            job = jobs.submit(cfg, unique=True)
            st.toast(f"Queued job {job.id}: it is in the Jobs list below.", icon=":material/schedule:")
        except jobs.DuplicateJob as exc:  # a toast: a banner would outlive the twin
            st.toast(f"{exc}, so this one was not queued. Change a setting (the seed, say) to train "
                     "another like it.", icon=":material/block:")
        except jobs.QueueError as exc:
            st.error(f"Nothing was queued: {exc}. Free some space or make the folder writable, then start again.")

st.subheader("Jobs")
st.columns(4)[0].number_input(
    "Jobs that may run at once", 1, 16, value=jobs.concurrency(), key="train.concurrency",
    help="Jobs share the CPU or GPU: more at once rarely finishes the queue sooner.",
    on_change=train_form.set_concurrency)
job_list(train_form.load_job)
