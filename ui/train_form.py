"""The Train page's form: a widget per TrainConfig field on the tab its metadata names, under the plain
label its metadata gives, the model's card, the init_from picker, the run's name, and the callbacks
that fill the form from a recipe or a job."""
from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import streamlit as st

from fashion_core import jobs
from fashion_core.config import RECIPES, SPLIT_FIELDS, TrainConfig, recipe, unused_because
from fashion_core.models import model_info
from fashion_core.runs import Run
from ui import common

JSON_FIELDS = ("model_kwargs", "class_weights")  # edited as JSON text
LABELS = {f.name: f.metadata.get("label", f.name) for f in fields(TrainConfig)}  # the form's plain labels
NAME_KEY = "train.name"  # the run name box
WIDE_FIELDS = ("model", "init_from")  # their options are long (run labels, model names): a row of their own
FINE_TUNE_NOTE = (
    "**Start from a finished run**: one of the same model (pick one, or type a run's folder); "
    "keep its validation split (for the shipped flagships: *stratified*, 4000 images), "
    "or validation would score images it trained on. "
    "**Folder of labelled photos**: real photos in garment folders (`t-shirt/`, `pants/`, "
    "`shoes/`, … and `hat/`, `shorts/`, `skirt/` for garments with no class). "
    "Its train slice joins each batch; its holdout slice (a fixed 15% of every garment folder) is never "
    "learned from and picks the run's unsure threshold when training ends. Keep the photos you will "
    "measure on (such as `clothing-photos-dev`) in another folder. "
    "**Weight of photos with no class**: how hard they are pushed towards \"unsure\". "
    "**Shoe photo target**: a shoe photo counts as right for any of Sandal, Sneaker, Ankle boot "
    "(*any*), or learns to commit to its likeliest one (*top*). "
    "**Cut garments per batch**: training garments cut to their top or bottom part and "
    "re-framed (trousers to shorts, a dress to a skirt), pushed towards \"unsure\" too; "
    "no photos needed.")


def fill_form(cfg: TrainConfig, with_model: bool) -> None:
    """Write a config into the form's widgets (before they are drawn)."""
    for f in fields(TrainConfig):
        v = getattr(cfg, f.name)
        if f.name != "augment" and (f.name != "model" or with_model):
            st.session_state[f"cfg.{f.name}"] = json.dumps(list(v) if isinstance(v, tuple) else v) \
                if f.name in JSON_FIELDS else v
    common.load_augment_preset(cfg.augment, "cfg_aug")


DEFAULT_RECIPE = "quick"  # what a first visit's form holds


def start_form() -> None:
    """On a session's first visit, the default recipe, its model included, fills the boxes no one has
    set yet (a link or another page may have set some)."""
    if "train.recipe" in st.session_state:
        return
    st.session_state["train.recipe"] = DEFAULT_RECIPE
    kept = {k: v for k, v in st.session_state.items() if k.startswith(("cfg.", "cfg_aug."))}
    fill_form(recipe(DEFAULT_RECIPE), with_model=True)
    st.session_state.update(kept)


def load_recipe() -> None:
    """The recipe picker's callback: the chosen recipe's values into the form (the model too where the
    recipe names one, else it stays)."""
    name = st.session_state["train.recipe"]
    with_model = "model" in RECIPES.get(name, {})
    fill_form(recipe(name) if name in RECIPES else TrainConfig(), with_model=with_model)
    st.session_state.pop("train.from_job", None)
    st.toast(f"Recipe {name} loaded: its values replaced the form's"
             + (f" (its model, {RECIPES[name]['model']}, too)." if with_model else " (the model stays as chosen)."))


# timed again after ten minutes, so a figure taken while a job trained does not stay
@st.cache_resource(show_spinner="Timing the quick recipe on this machine…", max_entries=2, ttl=600)
def _seconds_of(name: str, device: str) -> float:
    from fashion_core.device import DEFAULT_THREADS  # noqa: PLC0415  (torch: only for this page)
    from fashion_core.train import estimate_seconds  # noqa: PLC0415

    return estimate_seconds(recipe(name), threads=DEFAULT_THREADS)


def time_note(name: str) -> str:
    """How long recipe `name` trains for on this machine's device, timed from a few steps once per app."""
    from fashion_core.device import DEFAULT_THREADS, describe_device, resolve_device  # noqa: PLC0415

    device = resolve_device(recipe(name).device)
    where = describe_device(device, threads=DEFAULT_THREADS)
    seconds = _seconds_of(name, where)
    return (f"Here, on {where}, it trains for about {seconds:.0f} s, timed from a few of its steps; "
            "loading the data and scoring each epoch add a few seconds.")


def load_job(job: jobs.Job) -> None:
    """A Jobs-list button's callback: the job's settings into the form, model included."""
    fill_form(job.config, with_model=True)
    st.session_state["train.from_job"] = job.id
    st.session_state["train.toast"] = f"The form now holds job {job.id}'s settings: change what you like and start again."


def config_form(groups: dict[str, list[str]], helps: dict[str, str], choices: dict[str, tuple],
                start_runs: list[Run]) -> TrainConfig | None:
    """Every TrainConfig field as a widget, a tab per group (groups: field names per tab, the
    "augment" field drawn as the Augmentation tab; helps: help text per field; choices: the options
    of fields picked from a list; start_runs: the runs init_from may start from). Returns the
    config, or None with the problems shown, each with the tab it is on."""
    tabbed = {g: kept for g, names in groups.items() if (kept := [n for n in names if n != "augment"])}
    values: dict = {}
    tabs = st.tabs([*tabbed, "Augmentation"])
    for tab, (group, names) in zip(tabs, tabbed.items()):
        with tab:
            _fields_of(names, values, helps, choices, start_runs)
            if group == "Model":
                model_card(values["model"], values.get("model_kwargs", "{}"))
            if group == "Fine-tune":
                st.caption(FINE_TUNE_NOTE)
    with tabs[-1]:
        values["augment"] = common.augment_inputs("cfg_aug", columns=3).to_dict()
    cfg, problems = _checked(values)
    if problems:
        tab_of = {name: group for group, names in tabbed.items() for name in names}
        st.error("Fix this before training:\n" + "\n".join(f"- {_where(p, tab_of)}" for p in problems))
        return None
    return cfg


def _where(problem: str, tab_of: dict[str, str]) -> str:
    """A problem ("field: what is wrong") with the tab it is on and, where it differs, its box's label."""
    name = problem.split(":")[0]
    box = f" · the “{LABELS[name]}” box" if _renamed(name) else ""
    return f"{tab_of.get(name, 'Augmentation')} tab · {problem}{box}"


def _fields_of(names: list[str], values: dict, helps: dict[str, str], choices: dict[str, tuple],
               start_runs: list[Run]) -> None:
    """One tab's widgets, three to a row (a wide field on a row of its own); each value goes into
    `values`, which also says which fields the values drawn so far leave unused (greyed out, with why
    in the help)."""
    rows: list[list[str]] = []
    for name in names:
        if name in WIDE_FIELDS or not rows or rows[-1][0] in WIDE_FIELDS or len(rows[-1]) == 3:
            rows.append([])
        rows[-1].append(name)
    for row in rows:  # a row at a time, inputs level at the bottom: a long label may take two lines
        places = [st.container()] if row[0] in WIDE_FIELDS else st.columns(3, vertical_alignment="bottom")
        for place, name in zip(places, row):
            with place:
                _field(name, values, helps, choices, start_runs)


def _field(name: str, values: dict, helps: dict[str, str], choices: dict[str, tuple], start_runs: list[Run]) -> None:
    """One field's widget under its plain label, its help naming the config field and, when the values so
    far leave it unused, why it is greyed out; its value goes into `values`."""
    d = getattr(TrainConfig(), name)
    if name in JSON_FIELDS:
        d = json.dumps(list(d) if isinstance(d, tuple) else d)
    why = unused_because(name, values)
    named = f"(config: {name})" if _renamed(name) else ""  # the name `--set` and config.json use
    hint = " ".join(filter(None, (helps.get(name), named, why and f"({why.capitalize()}.)")))
    if name == "init_from":
        values[name] = init_from_input(f"cfg.{name}", values["model"], hint, start_runs)
    else:
        values[name] = common.field_input(LABELS[name], d, f"cfg.{name}", choices.get(name), disabled=bool(why),
                                          help=hint or None)


def _renamed(name: str) -> bool:
    """Whether a config field's label hides its name (the help then names it)."""
    return name in LABELS and LABELS[name] != name.replace("_", " ")


def _checked(values: dict) -> tuple[TrainConfig | None, list[str]]:
    """The form's values as a validated config, or the problems ("field: what is wrong")."""
    default = TrainConfig()
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
    return (None, problems) if problems else (cfg, [])


def init_from_input(key: str, model: str, help: str, start_runs: list[Run]) -> str:
    """init_from as a picker of the finished runs of the chosen model (a typed folder is taken too)."""
    here = Path.cwd().resolve()
    runs = {str(r.path.resolve().relative_to(here)) if r.path.resolve().is_relative_to(here) else str(r.path): r
            for r in start_runs if (r.path / "best.pt").exists() and r.config.model == model}
    current = st.session_state.setdefault(key, "")
    if (same := _listed_as(runs, current)) is not None:  # a job's absolute path, or a run's name typed in
        current = st.session_state[key] = same
    options = ["", *runs] + ([current] if current and current not in runs else [])
    return st.selectbox(LABELS["init_from"], options, key=key, help=help, accept_new_options=True,
                        persist_state="session", on_change=adopt_split, args=(key, runs),
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


@st.cache_data
def _num_params(name: str, kwargs: str) -> int:
    from fashion_core.models import count_params, create_model

    return count_params(create_model(name, **json.loads(kwargs)))


def model_card(name: str, kwargs: str) -> None:
    """The chosen model's registry entry: what it is, its report, and its parameter count with these
    kwargs (JSON text) beside the report's."""
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


def run_name_input() -> tuple[str, str | None]:
    """The box that names the run: (the name, "" for the default one; what is wrong with it, or None)."""
    if st.session_state.pop("train.clear_name", False):  # the last name went to a queued job
        st.session_state[NAME_KEY] = ""
    name = st.text_input(
        "Run name (optional)", key=NAME_KEY, max_chars=64, persist_state="session", width=360,
        placeholder="e.g. resnet-lr0.01",
        help="Names the job and its run folder, so Compare and Predict list the run by it. Letters, digits, "
             "-, _ and . (not first); empty: the date, time and model, such as 20261124-101500-flagship.").strip()
    problem = jobs.name_problem(name) if name else None
    if problem:
        st.error(f"{problem[0].upper()}{problem[1:]}.")
    return name, problem


def queued(job: jobs.Job) -> None:
    """A job was queued: say so after the rerun that follows, with the name box emptied for the next run."""
    st.session_state["train.toast"] = f"Queued job {job.id}: it is in the Jobs list below."
    st.session_state["train.clear_name"] = True


def set_concurrency() -> None:
    """The concurrency box's callback: a jobs folder that cannot be written is a toast, not a traceback."""
    try:
        jobs.set_concurrency(st.session_state["train.concurrency"])
    except jobs.QueueError as exc:
        st.toast(f"Not changed: {exc}", icon=":material/block:")
