"""The Tune page's parts: the new-sweep form (a report's experiment, or a space built from the config's
fields; the budget, sampler and pruner), and a sweep's panel: its worker job with Cancel / Resume,
Optuna's own figures of the study, the trial table and the next steps, redrawn from disk while it runs."""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from optuna import visualization as ov
from optuna.trial import TrialState

from fashion_core import jobs, sweeps
from fashion_core.config import RECIPES, TrainConfig, recipe, recipe_note
from ui import common

POLL_S = 2  # seconds between redraws of a sweep's panel while a worker trains its trials
TOP_K = 3  # trials that "Compare the top trials" opens
LONGER = 3  # "Train the best config longer": this many times the epochs of the sweep's trials
TARGET = "validation accuracy (%)"  # what every trial reports and the sweep maximises
MODES = ("a report's experiment", "my own search space")
SAMPLER_HELP = ("tpe: learns from the trials so far where good values lie (Optuna's default). random: "
                "independent draws. grid: every combination of the choices once (needs choices, not ranges).")
PRUNER_HELP = ("hyperband: successive halving over epochs, stopping weak trials early (report 001). median: "
               "stops a trial whose accuracy at an epoch is below the median of earlier trials there. none: "
               "every trial trains all its epochs.")
FIGURE_WIDTH, FIGURE_HEIGHT = 430, 380  # px: two side by side at 1400 px with the sidebar, one a row at 900
INPUT_W = 160  # px: a number box or picker in a row that wraps


# --- the new-sweep form ------------------------------------------------------------------------
def new_sweep_form(presets: dict, models: list[str], choices: dict[str, tuple], blocked: str | None) -> None:
    """Pick a report's experiment (presets: sweeps.SWEEP_PRESETS) or build a space over the config's
    fields (models: the model picker's options; choices: the options of fields picked from a list), set
    the budget, sampler and pruner, then create the sweep and queue its worker. blocked: why nothing may
    start yet (no data), or None."""
    mode = st.segmented_control("Start from", MODES, key="tune.mode", default=MODES[0], persist_state="session",
                                required=True)
    if mode == MODES[0]:
        preset = stem = preset_picker(presets)  # stem: what a sweep given no name is named after
        defaults, base, space = presets[preset][1], None, ()
    else:
        base = base_inputs(models)
        stem, space = base.model, space_inputs(base, choices)
        defaults = sweeps.SweepConfig(base, space)
    budget = budget_inputs(defaults)
    if st.session_state.pop("tune.clear_name", False):  # the last name went to a sweep
        st.session_state["tune.name"] = ""
    name = st.text_input("Sweep name (optional)", key="tune.name", max_chars=64, persist_state="session",
                         placeholder=f"e.g. {stem}-{time.strftime('%Y%m%d-%H%M%S')}",
                         help="Names the sweep and its trials' runs (NAME-trial-0000, ...). Letters, digits, "
                              "-, _ and .; empty: the experiment's (or model's) name with the date and time.").strip()
    if blocked:
        st.caption(blocked)
    if st.button("Create and start", type="primary", disabled=blocked is not None, help=blocked):
        subset = budget.pop("train_subset")
        name = name or f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
        if base is None:
            create_and_start(name, lambda: sweeps.preset(preset, **budget, base_changes={"train_subset": subset}))
        else:  # sweeps.create validates it
            create_and_start(name, lambda: sweeps.SweepConfig(base.replace(train_subset=subset), space, **budget))


def preset_picker(presets: dict) -> str:
    """A report's experiment, its one-line description and what it searches; picking one fills the
    budget, sampler and pruner with the report's (shrink them for a small machine)."""
    name = st.selectbox("Experiment", list(presets), key="tune.preset", persist_state="session",
                        on_change=adopt_budget, args=(presets,))
    note, cfg = presets[name]
    st.caption(f"{note}  \nSearches {space_text(cfg.space)} · base model `{cfg.base.model}` · the report's budget: "
               f"{cfg.n_trials} trials of up to {cfg.max_epochs} epochs, {cfg.sampler} sampler, {cfg.pruner} pruner.")
    return name


def adopt_budget(presets: dict) -> None:
    """The experiment picker's callback: its budget, sampler and pruner into the widgets below it."""
    cfg = presets[st.session_state["tune.preset"]][1]
    st.session_state.update({"tune.trials": cfg.n_trials, "tune.epochs": cfg.max_epochs,
                             "tune.sampler": cfg.sampler, "tune.pruner": cfg.pruner})


def space_text(space: tuple[sweeps.Param, ...]) -> str:
    """A space in a line: `lr` 0.0001…0.01 (log), `optimizer` ∈ {adam, sgd}."""
    def one(p: sweeps.Param) -> str:
        if p.choices:
            return f"`{p.name}` ∈ {{{', '.join(map(str, p.choices))}}}"
        return f"`{p.name}` {p.low:g}…{p.high:g}" + (" (log)" if p.log else "") + (" (whole)" if p.integer else "")
    return ", ".join(map(one, space))


def base_inputs(models: list[str]) -> TrainConfig:
    """The config every trial starts from: a recipe (or the defaults) with a model."""
    c1, c2 = st.columns(2)
    name = c1.selectbox("Recipe", ["defaults", *RECIPES], key="tune.recipe", persist_state="session")
    st.session_state.setdefault("tune.model", "mlp_baseline")
    model = c2.selectbox("Model", models, key="tune.model", persist_state="session")
    st.caption(recipe_note(name))
    return recipe(name, model=model) if name in RECIPES else TrainConfig(model=model)


def space_inputs(base: TrainConfig, choices: dict[str, tuple]) -> tuple[sweeps.Param, ...]:
    """The settings to search, each a range or choices, first filled from base's value."""
    st.session_state.setdefault("tune.space", ["lr", "weight_decay"])
    names = st.multiselect(
        "Settings to search", [*sweeps.searchable(), "model_kwargs.dropout"], key="tune.space",
        persist_state="session", accept_new_options=True,
        help="Any TrainConfig field but epochs; augment (a preset), augment.p (every augmentation the recipe "
             "uses, at one probability), augment.FIELD; model_kwargs.KEY for a keyword the model takes (type it).")
    return tuple(param_input(n, base, choices.get(n)) for n in names)


def param_input(name: str, base: TrainConfig, options: tuple | None) -> sweeps.Param:
    """One setting: a range (low, high, log scale, whole numbers) or choices. options: the values a
    field picked from a list may take."""
    value, key = current_value(base, name), f"tune.p.{name}"
    numeric = options is None and (value is None or isinstance(value, (int, float)) and not isinstance(value, bool))
    with st.container(border=True):
        head = st.container(horizontal=True, vertical_alignment="center")
        head.markdown(f"**{name}**")
        as_range = numeric and head.segmented_control(
            "search over", ("range", "choices"), key=f"{key}.kind", default="range", required=True,
            persist_state="session", label_visibility="collapsed") == "range"
        if as_range:
            low, high, log = range_defaults(name, value)
            st.session_state.setdefault(f"{key}.low", low)
            st.session_state.setdefault(f"{key}.high", high)
            row = st.container(horizontal=True, vertical_alignment="bottom")  # wraps on a narrow screen
            return sweeps.Param(
                name, row.number_input("low", format="%g", key=f"{key}.low", persist_state="session", width=INPUT_W),
                row.number_input("high", format="%g", key=f"{key}.high", persist_state="session", width=INPUT_W),
                log=row.checkbox("log scale", value=log, key=f"{key}.log", persist_state="session"),
                integer=row.checkbox("whole numbers", value=isinstance(value, int), key=f"{key}.int",
                                     persist_state="session", help="An epoch count or a batch size, say."))
        if options or isinstance(value, bool):
            options = options or (True, False)
            picked = st.multiselect("choices", options, key=f"{key}.choices", persist_state="session",
                                    default=list(options) if len(options) <= 5 else
                                    [value] if value in options else list(options[:2]))
            return sweeps.Param(name, choices=tuple(picked))
        text = st.text_input("choices", key=f"{key}.text", value=choice_defaults(value), persist_state="session",
                             help="Comma-separated: 64, 128, 256 · adam, sgd · [16, 32], [32, 64] for lists.")
        return sweeps.Param(name, choices=parse_choices(text))


def current_value(base: TrainConfig, name: str):
    """The base config's value for a space's setting name (None for a model keyword it does not set)."""
    section, _, key = name.partition(".")
    if name in ("augment", "augment.p"):
        return None if name == "augment" else 0.5
    if section == "augment":
        return getattr(base.augment, key)
    if section == "model_kwargs":
        return base.model_kwargs.get(key)
    return getattr(base, name, None)


def range_defaults(name: str, value) -> tuple[float, float, bool]:
    """A first range around the base value: a decade either side, log-scaled, for a learning rate or
    a weight decay (the reports searched those so); else half to double, or 0..0.5 for an unset one."""
    if name in ("lr", "weight_decay") and value:
        return value / 10, value * 10.0, True
    if not value:
        return 0.0, 0.5, False
    if isinstance(value, float) and value < 1:  # a probability, a beta: stay below 1
        return value / 2, (1 + value) / 2, False
    return value / 2, value * 2.0, False


def choice_defaults(value) -> str:
    """First typed choices: half, the value and double for a number; the value itself otherwise."""
    if isinstance(value, (int, float)) and value:
        return ", ".join(f"{v:g}" for v in (value // 2 if isinstance(value, int) else value / 2, value, value * 2))
    return json.dumps(list(value)) if isinstance(value, tuple) else str(value if value is not None else "")


def parse_choices(text: str) -> tuple:
    """Typed choices: "64, 128, 256" -> (64, 128, 256); "[16, 32], [32, 64]" -> ((16, 32), (32, 64));
    "adam, sgd" -> ("adam", "sgd")."""
    try:
        values = json.loads(f"[{text}]")
    except json.JSONDecodeError:
        values = [v.strip() for v in text.split(",") if v.strip()]
    return tuple(tuple(v) if isinstance(v, list) else v for v in values)


def budget_inputs(defaults: sweeps.SweepConfig) -> dict:
    """Trials, epochs per trial, training images, sampler and pruner, first filled from defaults."""
    for key, value in (("tune.trials", defaults.n_trials), ("tune.epochs", defaults.max_epochs),
                       ("tune.subset", defaults.base.train_subset), ("tune.sampler", defaults.sampler),
                       ("tune.pruner", defaults.pruner)):
        st.session_state.setdefault(key, value)
    row = st.container(horizontal=True)  # one row that wraps on a narrow screen
    kept = {"persist_state": "session", "width": INPUT_W}
    return {
        "n_trials": int(row.number_input("Trials", 1, 10_000, step=1, key="tune.trials", **kept,
                                         help="Trials that finish (complete or pruned) before the sweep ends.")),
        "max_epochs": int(row.number_input("Max epochs per trial", 1, 1000, step=1, key="tune.epochs", **kept,
                                           help="Hyperband's largest resource.")),
        "train_subset": int(row.number_input("Training images (0 = all)", 0, 60_000, step=1000, key="tune.subset",
                                             **kept, help="Train every trial on the first N training images only: "
                                                          "a quicker, rougher search.")),
        "sampler": row.selectbox("Sampler", sweeps.SAMPLERS, key="tune.sampler", **kept, help=SAMPLER_HELP),
        "pruner": row.selectbox("Pruner", sweeps.PRUNERS, key="tune.pruner", **kept, help=PRUNER_HELP)}


def create_and_start(name: str, build: Callable[[], sweeps.SweepConfig]) -> None:
    """Create the sweep build() makes and queue its worker, then show it; or show every problem, naming
    its field, with nothing created or started."""
    try:
        sweeps.create(name, build())
    except ValueError as exc:  # ConfigError too: every problem, each naming its field
        st.error("Nothing was created or started:\n" + "\n".join(f"- {p}" for p in getattr(exc, "problems", [exc])))
        return
    try:
        job = jobs.submit_sweep(name)
    except (jobs.DuplicateJob, jobs.QueueError) as exc:
        st.session_state["tune.toast"] = f"Sweep {name} was created but not started ({exc}): start it below."
    else:
        st.session_state["tune.toast"] = f"Sweep {name} created: job {job.id} trains its trials in the background."
    st.session_state.update({"tune.pending": name, "tune.clear_name": True})
    st.rerun()


# --- a sweep's panel -----------------------------------------------------------------------------
def sweep_job(name: str, listed: list[jobs.Job]) -> jobs.Job | None:
    """The sweep's latest worker job in this app's queue (listed: jobs.list_jobs()), or None."""
    return next((j for j in listed if j.sweep == name), None)


def job_state(job: jobs.Job | None) -> str:
    return job.state.get("state", "unknown") if job else "not started"


@st.cache_resource(max_entries=8, show_spinner=False)
def _study(name: str, folder: str) -> tuple[optuna.Study, sweeps.SweepConfig]:
    # one storage per sweep for the app: opening one costs ~0.4 s, and Optuna's cached storage reads
    # what the workers wrote since on every get_trials
    return sweeps.load(name)


def load(name: str) -> tuple[optuna.Study, sweeps.SweepConfig]:
    """The sweep's study and config (ValueError when there is no such sweep)."""
    return _study(name, str(sweeps.sweeps_dir()))


def sweep_panel(name: str, on_best: Callable[[TrainConfig, str], None]) -> None:
    """The sweep's status, figures, trials and next steps, read from the study and the job queue; redrawn
    every POLL_S seconds while a worker runs (a second tab or a restarted app shows the same). on_best:
    takes the best trial's config, trained longer, and a line saying so (it fills the Train form)."""
    busy = _busy(name, sweep_job(name, jobs.list_jobs()))
    st.fragment(run_every=POLL_S if busy else None)(_panel)(name, busy, on_best)


def _busy(name: str, job: jobs.Job | None) -> bool:
    """Whether a worker trains the sweep: its job (job) is queued or running, or the study has a running
    trial (a worker from the command line)."""
    if job_state(job) in jobs.ACTIVE:
        return True
    try:
        study, _ = load(name)
    except ValueError:
        return False
    return bool(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))


def _panel(name: str, busy: bool, on_best: Callable[[TrainConfig, str], None]) -> None:
    job = sweep_job(name, jobs.list_jobs())
    if _busy(name, job) != busy:  # a worker started or ended: the whole page again, polling only while one runs
        st.rerun()
    try:
        study, cfg = load(name)
    except ValueError as exc:
        st.error(f"The sweep cannot be read: {exc}")
        return
    rows = sweeps.trial_table(study)
    status(name, cfg, rows, job)
    trials = study.get_trials(deepcopy=False)
    figures = study_figures(name, tuple((t.number, t.state.name, len(t.intermediate_values)) for t in trials))
    for pair in (("history", "intermediate"), ("parallel", "importances")):
        row = st.container(horizontal=True)  # two a row; one a row where two do not fit
        for key in pair:
            if isinstance(figures[key], str):
                row.info(figures[key], width=FIGURE_WIDTH)
            else:
                row.plotly_chart(figures[key], width=FIGURE_WIDTH, key=f"tune.fig.{key}")
    if not isinstance(figures["intermediate"], str):
        st.caption("Intermediate values: each trial's validation accuracy per epoch; a dotted line ending in ✕ is "
                   "a trial the pruner stopped there.")
    st.subheader("Trials")
    trial_table(rows, cfg)
    next_steps(name, study, cfg, on_best)


def status(name: str, cfg: sweeps.SweepConfig, rows: list[sweeps.TrialRow], job: jobs.Job | None) -> None:
    """Progress through the budget, what the sweep searches, its worker job with Cancel or Resume."""
    done = [r for r in rows if r.state in ("complete", "pruned")]
    running = [r for r in rows if r.state == "running"]
    pruned = sum(r.state == "pruned" for r in done)
    now = "".join(f" · trial {r.number} running ({r.epochs} of {cfg.max_epochs} epochs done)" for r in running)
    st.progress(min(len(done) / cfg.n_trials, 1.0), f"{len(done)} of {cfg.n_trials} trials finished "
                                                     f"({pruned} pruned){now}")
    subset = f"the first {cfg.base.train_subset:,} training images" if cfg.base.train_subset else "all training images"
    st.caption(f"Searches {space_text(cfg.space)} on `{cfg.base.model}` · {cfg.sampler} sampler · {cfg.pruner} "
               f"pruner · up to {cfg.max_epochs} epochs a trial on {subset}.")
    state = job_state(job)
    st.markdown(f"**Worker:** {f'job `{job.id}` · ' if job else ''}{state}")
    if state == "failed":
        st.error(job.state.get("error", "failed"))
    if state in jobs.ACTIVE:
        if job.cancel_requested:
            st.caption("Cancelling: the running trial stops within a batch and goes first when the sweep resumes.")
        elif st.button("Cancel", key="tune.cancel", help="Stop the worker; the running trial is trained again "
                                                         "first when you resume."):
            try:
                jobs.cancel(job)
            except jobs.QueueError as exc:
                st.error(f"Could not cancel: {exc}")
            else:
                st.rerun()  # "Cancelling" at once, not at the next poll
    elif len(done) < cfg.n_trials and st.button("Resume" if job else "Start", key="tune.resume", type="primary",
                                                help="Queue a worker that trains the trials the budget has left."):
        try:
            jobs.submit_sweep(name)
        except (jobs.DuplicateJob, jobs.QueueError) as exc:  # another tab was quicker; a full disk
            st.warning(str(exc))
        else:
            st.rerun()
    if job:
        with st.expander("Worker log"):
            st.code(job.log_tail(15) or "(no log yet)", language="text")


@st.cache_data(max_entries=16, show_spinner=False)
def study_figures(name: str, fingerprint: tuple) -> dict[str, go.Figure | str]:
    """Optuna's four figures of the sweep, or why one cannot be drawn yet. fingerprint: each trial's
    number, state and epochs reported, so a poll that finds nothing new draws nothing again."""
    study, cfg = load(name)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    pruned = {t.number: t.last_step for t in study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))}
    wait = "Appears once a trial completes."
    out: dict[str, go.Figure | str] = {
        "history": ov.plot_optimization_history(study, target_name=TARGET) if complete else wait,
        "intermediate": (cut_short(ov.plot_intermediate_values(study), pruned) if any(fp[2] for fp in fingerprint)
                         else "Appears once a trial has reported its first epoch."),
        "parallel": ov.plot_parallel_coordinate(study, target_name=TARGET) if complete else wait}
    if len(complete) < 2 or len(cfg.space) < 2:
        out["importances"] = (f"Parameter importances need at least two complete trials and more than one setting "
                              f"searched (here: {len(complete)} complete, {len(cfg.space)} setting(s)).")
    else:
        try:
            out["importances"] = ov.plot_param_importances(study, target_name=TARGET)
        except (ValueError, RuntimeError) as exc:  # e.g. every complete trial took the same values
            out["importances"] = f"Parameter importances cannot be computed yet: {exc}"
    every = max(1, len(fingerprint) // 8)  # whole trial numbers and epochs on the x axes
    for key, fig in out.items():
        if isinstance(fig, go.Figure):
            fig.update_layout(height=FIGURE_HEIGHT, margin=dict(t=80, b=40, l=50, r=20),
                              legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0))
            if key in ("history", "intermediate"):
                fig.update_xaxes(dtick=every if key == "history" else max(1, cfg.max_epochs // 8))
    return out


def cut_short(fig: go.Figure, pruned: dict[int, int]) -> go.Figure:
    """Optuna's intermediate-values figure with each pruned trial's line dotted and ended by a ✕ at the
    epoch the pruner stopped it (pruned: trial number -> that epoch)."""
    for trace in fig.data:
        if (epoch := pruned.get(int(trace.name.removeprefix("Trial")))) is not None:  # traces are "Trial7"...
            trace.update(name=f"{trace.name} (pruned at epoch {epoch})", line_dash="dot",
                         marker_symbol=["circle"] * (len(trace.x) - 1) + ["x"],
                         marker_size=[6] * (len(trace.x) - 1) + [13])
    return fig.update_layout(xaxis_title="epoch", yaxis_title=TARGET)


def trial_table(rows: list[sweeps.TrialRow], cfg: sweeps.SweepConfig) -> None:
    """One row per trial: its state, validation accuracy, epochs trained, values and run name."""
    if not rows:
        st.caption("No trials yet.")
        return
    table = pd.DataFrame([{"trial": r.number, "state": r.state, "val_acc": r.value, "epochs": r.epochs,
                           **{p.name: _value_text(r.params.get(p.name)) for p in cfg.space},
                           "run": Path(r.run_dir).name if r.run_dir else None} for r in rows])
    st.dataframe(common.with_dashes(table, {"val_acc": "{:.2f}", "run": "{}"}), hide_index=True, width="stretch",
                 column_config={"trial": st.column_config.NumberColumn(pinned=True),
                                "val_acc": st.column_config.TextColumn(
                                    "val acc %", help="A complete trial's best validation accuracy; a pruned "
                                                      "trial's at the epoch it was stopped.")})
    if any(r.state == "fail" for r in rows):
        st.caption("fail: the trial stopped part-way, because its worker was cancelled (it is trained again, with the "
                   "same values, as a later trial) or died; waiting: queued to go first when a worker runs.")


def _value_text(value) -> str:
    """A trial's value for the table: 4 significant digits, "—" before the trial has drawn it."""
    return "—" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def next_steps(name: str, study: optuna.Study, cfg: sweeps.SweepConfig,
               on_best: Callable[[TrainConfig, str], None]) -> None:
    """Open Compare on the best complete trials; put the best one's config, trained longer on every
    training image, into the Train form."""
    best = sweeps.best_trials(study, TOP_K)
    if not best:
        return
    st.subheader("Next")
    top = [Path(r.run_dir).name for r in best]
    c1, c2 = st.columns(2)
    label = f"Compare the top {len(top)} trials" if len(top) > 1 else "Compare the best trial"
    if c1.button(label, icon=":material/bar_chart:", key="tune.compare",
                 help=", ".join(top)):
        st.session_state.pop("cmp.runs", None)  # Compare's earlier picks give way to the link's runs
        st.switch_page("pages/compare.py", query_params={"cmp.runs": top})
    epochs = cfg.max_epochs * LONGER
    if c2.button("Train the best config longer", icon=":material/model_training:", key="tune.longer",
                 help=f"Fill the Train form with trial {best[0].number}'s settings, for {epochs} epochs on every "
                      "training image."):
        config = cfg.trial_config(sweeps.trial_values(cfg, best[0].params), f"best of sweep {name} "
                                  f"(trial {best[0].number}), trained longer").replace(epochs=epochs, train_subset=0)
        on_best(config, f"Trial {best[0].number} of sweep {name} ({best[0].value:.2f}%) is in the form, for {epochs} "
                        "epochs on all training images.")
