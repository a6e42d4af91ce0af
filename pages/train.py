"""Train: a form generated from TrainConfig's field metadata that queues a background job (under a name
the user may give it), and the live job list. Without the dataset the form is there too, with the download
above it."""
import streamlit as st

from fashion_core import jobs
from fashion_core.config import (INITS, LOSSES, OPTIMIZERS, RECIPES, SCHEDULES, SYNTHETIC_MODES, VAL_SPLITS, field_groups,
                                 field_help, recipe_note)
from fashion_core.gan import list_generators
from fashion_core.models import list_models
from ui import common, train_form
from ui.jobs_view import job_list

common.require_router()

# the options of the fields picked from a list; the others get a widget for their default's type
CHOICES = {"model": tuple(list_models()), "optimizer": OPTIMIZERS, "schedule": SCHEDULES, "loss": LOSSES,
           "init": INITS, "val_split": VAL_SPLITS, "device": ("auto", "cpu", "cuda"),
           "photo_target": ("any", "top"),
           "synthetic_mode": SYNTHETIC_MODES, "synthetic_from": ("", *(str(r.path) for r in list_generators()))}

st.title("Train")
have_data = common.data_ready()
if not have_data:  # the form stays: settings can be chosen while the data comes
    common.data_panel("so training cannot start yet; the form below can be filled in meanwhile")
train_form.start_form()
chosen = st.selectbox("Start from a recipe", [*RECIPES, "defaults"], key="train.recipe", persist_state="session",
                      on_change=train_form.load_recipe)
if st.session_state.get("train.from_job"):
    st.caption(f"The form holds the settings of job {st.session_state['train.from_job']} (loaded from the Jobs list).")
else:
    st.caption(recipe_note(chosen))
    if chosen == train_form.DEFAULT_RECIPE:
        st.caption(train_form.time_note(chosen))
if toast := st.session_state.pop("train.toast", None):  # set in a callback or before a rerun
    st.toast(toast)
cfg = train_form.config_form(field_groups(), field_help(), CHOICES, common.finished_runs())
name, bad_name = train_form.run_name_input()
no_data = None if have_data else "Training needs Fashion-MNIST: download it at the top of the page first."
if no_data:
    st.caption(no_data)
blocked = bad_name or no_data or ("Fix the settings above first." if cfg is None else None)
if st.button("Start training", type="primary", disabled=blocked is not None, help=blocked) and not blocked:
    try:  # the duplicate check and the queueing happen at once, so two tabs never queue one config twice
        job = jobs.submit(cfg, unique=True, name=name)
    except jobs.DuplicateJob as exc:  # a toast: a banner would outlive the twin
        st.toast(f"{exc}, so this one was not queued. Change a setting (the seed, say) to train "
                 "another like it.", icon=":material/block:")
    except jobs.QueueError as exc:
        st.error(f"Nothing was queued: {exc}. Free some space or make the folder writable, then start again.")
    except ValueError as exc:  # the name was taken meanwhile (another tab)
        st.error(f"Nothing was queued: {exc}. Choose another name.")
    else:  # a rerun: the name box empties and the job heads the list at once
        train_form.queued(job)
        st.rerun()

st.subheader("Jobs")
st.number_input(
    "Jobs that may run at once", 1, 16, value=jobs.concurrency(), key="train.concurrency", width=240,
    help="Jobs share the CPU or GPU: more at once rarely finishes the queue sooner.",
    on_change=train_form.set_concurrency)
job_list(train_form.load_job)
