"""Train: a form generated from TrainConfig that queues a background job, and the live job list."""
import json
from dataclasses import fields
from pathlib import Path

import plotly.graph_objects as go
import streamlit as st

from fashion_core import jobs
from fashion_core.config import (INITS, LOSSES, OPTIMIZERS, RECIPES, SCHEDULES, SPLIT_FIELDS, VAL_SPLITS, TrainConfig,
                                 field_help, recipe, recipe_note, unused_because)
from fashion_core.models import list_models, model_info
from ui import common

common.require_router()

# Fields per group; any field not listed lands in "Other", so a new config option still gets a widget.
GROUPS = {
    "Model": ["model", "model_kwargs", "init"],
    "Optimiser": ["optimizer", "lr", "momentum", "nesterov", "beta1", "beta2", "weight_decay"],
    "Schedule": ["epochs", "batch_size", "max_steps", "early_stop_patience", "schedule", "decay_rate",
                 "decay_steps", "plateau_patience", "plateau_factor", "warmup_frac"],
    "Loss": ["loss", "class_weights", "focal_gamma", "focal_alpha", "label_smoothing", "logit_norm", "ema_decay", "tta_flip"],
    "Data split": ["val_split", "val_fraction", "val_count", "train_subset", "seed"],
    "Fine-tune": ["init_from", "photo_dir", "photo_shares", "photo_batch", "photo_views", "outlier_weight", "photo_target",
                  "partial_outliers"],
    "Device": ["device", "note"],
}
CHOICES = {"model": tuple(list_models()), "optimizer": OPTIMIZERS, "schedule": SCHEDULES, "loss": LOSSES,
           "init": INITS, "val_split": VAL_SPLITS, "device": ("auto", "cpu", "cuda"),
           "photo_shares": ("train", "calib", "train,calib", "train,calib,held-out-a,held-out-b"), "photo_target": ("any", "top")}
JSON_FIELDS = ("model_kwargs", "class_weights")  # edited as JSON text


def fill_form(cfg: TrainConfig, with_model: bool) -> None:
    """Write a config into the form's widgets (before they are drawn)."""
    for f in fields(TrainConfig):
        v = getattr(cfg, f.name)
        if f.name != "augment" and (f.name != "model" or with_model):
            st.session_state[f"cfg.{f.name}"] = json.dumps(list(v) if isinstance(v, tuple) else v) \
                if f.name in JSON_FIELDS else v
    common.load_augment_preset(cfg.augment, "cfg_aug")


def load_recipe() -> None:
    name = st.session_state["train.recipe"]
    fill_form(recipe(name) if name in RECIPES else TrainConfig(), with_model=False)
    st.session_state.pop("train.from_job", None)
    st.toast(f"Recipe {name} loaded: its values replaced the form's (the model stays as chosen).")


def load_job(job: jobs.Job) -> None:
    fill_form(job.config, with_model=True)
    st.session_state["train.from_job"] = job.id
    st.session_state["train.toast"] = f"The form now holds job {job.id}'s settings: change what you like and start again."


@st.cache_data
def _num_params(name: str, kwargs: str) -> int:
    from fashion_core.models import count_params, create_model

    return count_params(create_model(name, **json.loads(kwargs)))


def config_form() -> TrainConfig | None:
    """Every TrainConfig field as a widget, grouped; returns the config or None (error shown)."""
    default = TrainConfig()
    listed = {n for names in GROUPS.values() for n in names} | {"augment"}
    groups = {**GROUPS, "Other": [f.name for f in fields(TrainConfig) if f.name not in listed]}
    values, helps = {}, field_help()
    tabs = st.tabs([g for g in groups if groups[g]] + ["Augmentation"])
    for tab, (group, names) in zip(tabs, [(g, n) for g, n in groups.items() if n]):
        with tab:
            cols = st.columns(3)
            for i, name in enumerate(names):
                d = getattr(default, name)
                if name in JSON_FIELDS:
                    d = json.dumps(list(d) if isinstance(d, tuple) else d)
                with cols[i % 3]:
                    why = unused_because(name, values)
                    hint = " ".join(filter(None, (helps.get(name), why and f"({why.capitalize()}.)")))
                    if name == "init_from":
                        values[name] = init_from_input(f"cfg.{name}", values["model"], hint)
                        continue
                    values[name] = common.field_input(name, d, f"cfg.{name}", CHOICES.get(name), disabled=bool(why),
                                                      help=hint or None)
            if group == "Model":
                model_card(values["model"], values.get("model_kwargs", "{}"))
            if group == "Fine-tune":
                st.caption("**init_from**: a finished run of the same model to start from (pick one, or type a run's "
                           "folder); "
                           "keep its validation split (for the shipped flagships: *stratified*, 4000 images), "
                           "or validation would score images it trained on. "
                           "**photo_dir**: a folder of real photos in garment folders (`t-shirt/`, `pants/`, "
                           "`shoes/`, … and `hat/`, `shorts/`, `skirt/` for garments with no class). "
                           "**photo_shares**: which quarters of them join each batch: *train*, *calib*, both, or "
                           "all four. Leave the two held-out quarters out and they stay a fair test; a run that "
                           "learns from *calib* gets its unsure threshold from `scripts/photo_threshold_cv.py`, "
                           "and a run that learns from all four is measured only by that script's cross-validation "
                           "(each quarter by the recipe trained on the other three). "
                           "**outlier_weight**: how hard photos with no class are pushed towards \"unsure\". "
                           "**photo_target**: a shoe photo counts as right for any of Sandal, Sneaker, Ankle boot "
                           "(*any*), or learns to commit to its likeliest one (*top*). "
                           "**partial_outliers**: training garments cut to their top or bottom part and "
                           "re-framed (trousers to shorts, a dress to a skirt), pushed towards \"unsure\" too; "
                           "no photos needed.")
    with tabs[-1]:
        values["augment"] = common.augment_inputs("cfg_aug", columns=3).to_dict()
    problems = []
    for name in JSON_FIELDS:  # text that is not JSON: say so, and check the rest with the default meanwhile
        try:
            values[name] = json.loads(values[name])
        except json.JSONDecodeError as exc:
            problems.append(f"{name}: not valid JSON ({exc.msg})")
            values[name] = getattr(default, name)
    try:
        cfg = TrainConfig.from_dict(values).validate()
    except (ValueError, TypeError) as exc:
        problems += getattr(exc, "problems", [str(exc)])
    if problems:
        tab_of = {name: group for group, names in groups.items() for name in names}
        st.error("Fix this before training:\n" + "\n".join(
            f"- {tab_of.get(p.split(':')[0], 'Augmentation')} tab · {p}" for p in problems))
        return None
    return cfg


def init_from_input(key: str, model: str, help: str) -> str:
    """init_from as a picker of the finished runs of the chosen model (a typed folder is taken too)."""
    here = Path.cwd().resolve()
    runs = {str(r.path.resolve().relative_to(here)) if r.path.resolve().is_relative_to(here) else str(r.path): r
            for r in common.finished_runs() if (r.path / "best.pt").exists() and r.config.model == model}
    current = st.session_state.setdefault(key, "")
    if (same := _listed_as(runs, current)) is not None:  # a job's absolute path, or a run's name typed in
        current = st.session_state[key] = same
    options = ["", *runs] + ([current] if current and current not in runs else [])
    return st.selectbox("init_from", options, key=key, help=help, accept_new_options=True, persist_state="session",
                        on_change=adopt_split, args=(key, runs),
                        format_func=lambda p: common.run_label(runs[p]) + f" · {p}" if p in runs
                        else p or "none: start from the model's initial weights") or ""


def _listed_as(runs: dict, value: str) -> str | None:
    """The picker's key for what init_from holds: a listed key, a path to a listed run, or a run's name."""
    if not value:
        return None
    return next((k for k, r in runs.items() if value in (k, r.name) or r.path.resolve() == Path(value).resolve()),
                None)


def adopt_split(key: str, runs: dict) -> None:
    """A run picked to start from: take over its validation split, or validation would score images
    the run trained on (validate() refuses that)."""
    if (listed := _listed_as(runs, st.session_state[key])) is None:
        return
    start = runs[listed]
    split = {k: getattr(start.config, k) for k in SPLIT_FIELDS}
    if any(st.session_state.get(f"cfg.{k}") != v for k, v in split.items()):
        st.session_state.update({f"cfg.{k}": v for k, v in split.items()})
        st.toast(f"The Data split tab now holds {start.name}'s validation split ({split['val_split']}, seed "
                 f"{split['seed']}), so validation scores only images neither run trained on.")


def model_card(name: str, kwargs: str) -> None:
    info = model_info(name)
    try:
        params = f"{_num_params(name, kwargs):,}"
    except Exception:  # noqa: BLE001 - bad kwargs are reported by validation below
        params = "? (fix model_kwargs first)"
    if info.report == "ours":
        source = f"our own architecture · parameters: {params}"
    else:
        source = (f"report {info.report} · parameters: {params}"
                  + (f" (the report: {info.reported_params:,})" if info.reported_params else "")
                  + (f" · the report's test accuracy: {info.reported_accuracy:.2f}%" if info.reported_accuracy
                     else " · the report gives no test accuracy"))
    st.info(f"**{name}** — {info.description}  \n{source}" + (f"  \n{info.notes}" if info.notes else ""))


def curves(job: jobs.Job) -> None:
    hist = job.progress.get("history", [])
    if not hist:
        return
    steps = [h for h in hist if h["phase"] == "train"]
    epochs = [h for h in hist if h["phase"] == "epoch"]
    loss, acc = go.Figure(), go.Figure()
    loss.add_scatter(x=[h["step"] for h in steps], y=[h["train_loss"] for h in steps], name="train (running)")
    acc.add_scatter(x=[h["step"] for h in steps], y=[h["train_acc"] for h in steps], name="train (running)")
    if epochs and "val_acc" in epochs[0]:
        loss.add_scatter(x=[h["step"] for h in epochs], y=[h["val_loss"] for h in epochs], name="validation")
        acc.add_scatter(x=[h["step"] for h in epochs], y=[h["val_acc"] for h in epochs], name="validation")
    for fig, title in ((loss, "loss"), (acc, "accuracy %")):
        fig.update_layout(height=240, margin=dict(l=10, r=10, t=30, b=10), title=title, xaxis_title="step")
    c1, c2 = st.columns(2)
    c1.plotly_chart(loss, width="stretch", key=f"loss-{job.id}")
    c2.plotly_chart(acc, width="stretch", key=f"acc-{job.id}")


@st.fragment(run_every=2)
def job_list() -> None:
    jobs.tick()
    all_jobs = jobs.list_jobs()
    if not all_jobs:
        st.caption("No jobs yet.")
    for job in all_jobs:
        state, p = job.state, job.progress.get("latest", {})
        s = state.get("state", "unknown")
        note = job.config.note
        with st.expander(f"{job.id} · **{s}**" + (f" · {state['test_accuracy']:.2f}%" if "test_accuracy" in state else "")
                         + (f" · {note[:60]}{'…' * (len(note) > 60)}" if note else ""),
                         expanded=s in jobs.ACTIVE or s == "failed"):
            if s == "failed":
                st.error(state.get("error", "failed"))
            if s in ("running", "starting") and p.get("total_steps"):
                frac = min(p.get("step", 0) / p["total_steps"], 1.0)
                eta = f" · ETA {p['eta_s']:.0f} s" if "eta_s" in p else ""  # epoch-end reports carry none
                st.progress(frac, f"epoch {p.get('epoch', '?')}/{p.get('epochs', '?')} · step {p.get('step')}/"
                                  f"{p['total_steps']}{eta} · {p.get('images_per_s', 0):,.0f} images/s")
            elif s in ("running", "starting"):
                st.progress(0.0, p.get("phase", "starting…"))
            if s in jobs.ACTIVE and job.cancel_requested:
                st.caption("Cancelling: it stops after the current batch, or once the validation pass under way "
                           "ends.")
            elif s in jobs.ACTIVE and st.button("Cancel", key=f"cancel-{job.id}"):
                jobs.cancel(job)
                st.rerun()  # the sidebar's job count too
            if (stopped := jobs.resumable(job, all_jobs)) and st.button(
                    "Resume", key=f"resume-{job.id}",
                    help=f"Queue a new job that carries {stopped.name} on from its last checkpoint."):
                try:
                    resumed = jobs.resume(job)
                except ValueError as exc:  # already queued to resume (another tab, a second click)
                    st.warning(str(exc))
                else:
                    st.session_state["train.toast"] = f"Queued job {resumed.id}: it carries {stopped.name} on."
                    st.rerun()  # the new job heads the list
            if st.button("Load its settings into the form", key=f"load-{job.id}", on_click=load_job, args=(job,),
                         help="Fill the form above with this job's settings, model and augmentation included."):
                st.rerun()  # the form lies outside this fragment
            # the list redraws every 2 s: finished jobs draw their curves and log only when asked
            if s in jobs.ACTIVE or s == "failed" or st.toggle("Curves and log", key=f"show-{job.id}"):
                curves(job)
                st.code(job.log_tail(12) or "(no log yet)", language="text")


st.title("Train")
if not common.data_ready():
    common.data_panel()
else:
    chosen = st.selectbox("Start from a recipe", ["defaults", *RECIPES], key="train.recipe", persist_state="session",
                          on_change=load_recipe)
    if st.session_state.get("train.from_job"):
        st.caption(f"The form holds the settings of job {st.session_state['train.from_job']} (loaded from the Jobs list).")
    else:
        st.caption(recipe_note(chosen))
    if toast := st.session_state.pop("train.toast", None):  # set in a Jobs-list callback, which reruns the app
        st.toast(toast)
    cfg = config_form()
    if st.button("Start training", type="primary", disabled=cfg is None) and cfg is not None:
        if twin := jobs.unfinished_twin(cfg):  # a toast: a banner would outlive the twin
            st.toast(f"Job {twin.id} with exactly these settings is already {twin.state['state']}, so this one was "
                     "not queued. Change a setting (the seed, say) to train another like it.", icon=":material/block:")
        else:
            job = jobs.submit(cfg)
            st.toast(f"Queued job {job.id}: it is in the Jobs list below.", icon=":material/schedule:")

st.subheader("Jobs")
st.columns(4)[0].number_input(
    "Jobs that may run at once", 1, 16, value=jobs.concurrency(), key="train.concurrency",
    help="Jobs share the CPU or GPU: more at once rarely finishes the queue sooner.",
    on_change=lambda: jobs.set_concurrency(st.session_state["train.concurrency"]))
job_list()
