"""What the pages share: cached data and models, run pickers, the data-missing panel, widgets for
config fields, and the guard that runs every page under the router."""
from __future__ import annotations

import contextlib
import contextvars
import runpy
import sys
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from fashion_core import data as fdata
from fashion_core.config import AugmentConfig, field_groups, field_help
from fashion_core.runs import Run, list_runs, load_model

if TYPE_CHECKING:  # the pages that run models import torch; the Overview and the router never do
    import torch.nn as nn

ROUTER = Path(__file__).resolve().parent.parent / "streamlit_app.py"

# The app only runs one-image work (training runs in processes of its own), and on a busy CPU a
# second intra-op thread just waits for a core: beside a training job a one-image forward pass took
# ~200 ms with torch's default 2 threads and ~1 ms with 1 (benchmarks/app_speed.py).
APP_TORCH_THREADS = 1


@st.cache_resource(show_spinner="Loading Fashion-MNIST…", max_entries=4)
def dataset(train: bool, root: str) -> fdata.FashionData:
    # cache_resource, not cache_data: cache_data would pickle 47 MB of tensors on every access
    return fdata.load_split(train, root)


def data_ready() -> bool:
    return fdata.is_available()


def split(train: bool) -> fdata.FashionData:
    """The official split; when its files cannot be read (gone since the page checked, or corrupt)
    the page says so and stops, rather than showing a traceback."""
    try:
        return dataset(train, str(fdata.data_root().resolve()))
    except fdata.DataMissingError as exc:
        st.error("Fashion-MNIST could not be read: its files are missing or damaged.")
        st.code(str(exc), language="text")
        st.stop()


def data_panel(missing: str = "so this page has nothing to show") -> None:
    """Offer the download with a progress bar, and say which files go where when it fails (the help
    then open, the progress bar gone). missing: what the missing data means for the page."""
    root = fdata.data_root().resolve()
    st.warning(f"Fashion-MNIST is not on this machine yet, {missing}.")
    failed = False
    if st.button("Download Fashion-MNIST (about 30 MB)", type="primary"):
        slot = st.empty()  # the progress bar's place: emptied when the download fails
        bar = slot.progress(0.0, "Connecting…")
        try:
            fdata.download(root, lambda f, msg: bar.progress(min(max(f, 0.0), 1.0), f"{msg}: {f:.0%}"))
        except fdata.DataMissingError as exc:
            slot.empty()
            failed = True
            first = str(exc).splitlines()[0]
            st.error(f"The download failed ({first if first.startswith('cannot create') else 'no network?'}). "
                     "Put the files by hand instead:")
        else:
            st.cache_resource.clear()
            st.rerun()
    with st.expander("Or copy the four files by hand", expanded=failed):
        st.code(fdata.missing_files_message(root), language="text", wrap_lines=True)  # long paths stay whole


@st.cache_resource(max_entries=8, show_spinner="Loading model…")
def _model(path: str, stamp: float) -> nn.Module:
    return load_model(Run(Path(path)))


def model_for(run: Run) -> nn.Module:
    """The run's best weights on the CPU, cached until its weights change (Run.weights_stamp).

    Raises ValueError (a message for the user) when the file is not a plain weights file.
    """
    return _model(str(run.path), run.weights_stamp())


def damaged_panel(broken: list[tuple[Run, str]]) -> None:
    """The damaged run folders, each with what is wrong: they are left out of every list and page."""
    if broken:
        with st.expander(f"{len(broken)} damaged run folder(s), left out of every page", icon=":material/warning:"):
            st.dataframe(pd.DataFrame([{"run": r.name, "what is wrong": why, "folder": str(r.path.parent)}
                                       for r, why in broken]), hide_index=True, width="stretch")


def finished_runs(with_weights: bool = False) -> list[Run]:
    """Runs with a test evaluation (shipped checkpoints and user runs; not damaged ones, nor one stopped
    during its evaluation), best first; with_weights: only those a model can be loaded from (a few
    shipped runs carry their evaluation without weights)."""
    runs = [r for r in list_runs() if r.finished and not r.damage and (r.has_weights or not with_weights)]
    return sorted(runs, key=lambda r: -r.eval["test_accuracy"])


def by_key(runs: list[Run]) -> dict[str, Run]:
    """Runs keyed for widgets: by name, and where a user's run has a shipped run's name, the user's
    one also by its folder (so neither hides the other). Keeps the order given."""
    count: dict[str, int] = {}
    for r in runs:
        count[r.name] = count.get(r.name, 0) + 1
    return {r.name if count[r.name] == 1 or r.shipped else f"{r.name} ({r.path.parent})": r for r in runs}


def key_of(runs: dict[str, Run], run: Run) -> str:
    return next(k for k, r in runs.items() if r.path == run.path)


def from_url(key: str, options: list[str], default: str | list[str]) -> None:
    """Give a run picker its first value from the URL (`?key=NAME`, repeated for several) or `default`.

    Streamlit's own bind="query-params" writes a widget's *labels* into the URL ("flagship · 94.35%
    · shipped"), so a link breaks when a run is re-evaluated and cannot be written by hand; run
    pickers keep plain run names there instead (to_url). A name no run has is left out, and a
    warning names it and what is shown instead."""
    st.session_state[f"url-default:{key}"] = default  # to_url leaves the URL alone while it is shown
    kept = st.session_state.get(key)
    if isinstance(kept, list):  # this session's choice (maybe none), less any run that is gone
        st.session_state[key] = [v for v in kept if v in options]
        return
    if kept in options:
        return
    asked = st.query_params.get_all(key)
    wanted = list(dict.fromkeys(v for v in asked if v in options))  # each once
    if isinstance(default, list):
        st.session_state[key] = wanted or default
    else:
        st.session_state[key] = wanted[0] if wanted else default
    if unknown := [v for v in asked if v not in options]:
        shown = st.session_state[key] if isinstance(default, list) else [st.session_state[key]]
        st.warning(f"No run{'s' if len(unknown) > 1 else ''} named {', '.join(repr(v) for v in unknown)}; "
                   f"showing {', '.join(shown) or 'none'} instead.", icon=":material/link_off:")


def to_url(key: str) -> None:
    """Write a run picker's names into the URL, so a reload or a shared link shows the same runs.

    Only when the URL says something else: each write adds a browser history entry, so writing on
    every visit made leaving the page take two Back presses. A plain address (no names) stands for
    the default choice, as with Streamlit's own bound widgets, so a first visit writes nothing."""
    value = st.session_state[key]
    names = value if isinstance(value, list) else [value]
    in_url = st.query_params.get_all(key)
    if in_url == names or (not in_url and value == st.session_state.get(f"url-default:{key}")):
        return
    if names:
        st.query_params[key] = names
    elif key in st.query_params:
        del st.query_params[key]


def with_dashes(table: pd.DataFrame, formats: dict[str, str]) -> pd.DataFrame:
    """A copy with the named columns written out as text ("{:.2f}"...), and "—" where a value is
    missing or empty: st.dataframe prints "None" for a missing number and ignores a Styler's na_rep."""
    shown = table.copy()
    for col, fmt in formats.items():
        if col in shown:
            shown[col] = [fmt.format(v) if pd.notna(v) and v != "" else "—" for v in table[col]]
    return shown


def run_label(run: Run) -> str:
    ev = run.eval or {}
    acc = f"{ev['test_accuracy']:.2f}%" if "test_accuracy" in ev else "not evaluated"
    return (f"{run.name} · {ev.get('model', '?')} · {acc}" + (" · shipped" if run.shipped else " · yours")
            + ("" if run.has_weights else " · evaluation only"))


def no_runs_message() -> None:
    st.info("There are no evaluated runs yet: no shipped checkpoints in `checkpoints/` and no user "
            "runs. Train one on the Train page (it needs the dataset).")


# --- form inputs generated from the engine's dataclasses ----------------------------------------
def field_input(label: str, default, key: str, choices: tuple | None = None, disabled: bool = False,
                help: str | None = None):
    """One widget for a config field, chosen from its default's type (and choices, when given).

    The value lives in session state under `key` (set once from `default`), so recipes and presets
    can fill the widgets by writing session state before they are drawn; it is kept for the session
    while another page is shown (persist_state).
    """
    if choices:
        if st.session_state.get(key) not in choices:
            st.session_state[key] = default if default in choices else choices[0]
        return st.selectbox(label, choices, key=key, disabled=disabled, help=help, persist_state="session")
    st.session_state.setdefault(key, default)
    if isinstance(default, bool):
        return st.checkbox(label, key=key, disabled=disabled, help=help, persist_state="session")
    if isinstance(default, int):
        return int(st.number_input(label, step=1, key=key, disabled=disabled, help=help, persist_state="session"))
    if isinstance(default, float):
        return float(st.number_input(label, format="%g", key=key, disabled=disabled, help=help,
                                     persist_state="session"))
    return st.text_input(label, key=key, disabled=disabled, help=help, persist_state="session")


def load_augment_preset(cfg, prefix: str) -> None:
    """Write an AugmentConfig's values into the widgets' session state (a preset or recipe)."""
    for f in fields(cfg):
        v = getattr(cfg, f.name)
        if f.name.endswith("_p"):
            st.session_state[f"{prefix}.{f.name}.on"] = v > 0
            st.session_state[f"{prefix}.{f.name}"] = float(v) if v > 0 else 0.5
        else:
            st.session_state[f"{prefix}.{f.name}"] = v


def augment_inputs(prefix: str, columns: int = 2) -> AugmentConfig:
    """Widgets for every augmentation op (on/off, probability, strengths) -> AugmentConfig: a box per
    op (its fields' metadata group), switched by the op's probability field (`*_p`) when it has one."""
    values, helps = {}, field_help(AugmentConfig)
    default = AugmentConfig()
    cols = st.columns(columns)
    for i, names in enumerate(field_groups(AugmentConfig).values()):
        with cols[i % columns].container(border=True):
            head, rest = names[0], names[1:]
            on = True
            if head.endswith("_p"):
                st.session_state.setdefault(f"{prefix}.{head}.on", False)
                st.session_state.setdefault(f"{prefix}.{head}", 0.5)
                on = st.toggle(head.removesuffix("_p"), key=f"{prefix}.{head}.on", help=helps.get(head),
                               persist_state="session")
                p = st.slider("probability", 0.0, 1.0, step=0.05, key=f"{prefix}.{head}", disabled=not on,
                              persist_state="session")
                values[head] = p if on else 0.0
            else:
                rest = names
            for name in rest:
                values[name] = field_input(name, getattr(default, name), f"{prefix}.{name}", disabled=not on,
                                           help=helps.get(name))
    return AugmentConfig(**values)


# True while streamlit_app.py runs a page (routed()); a page that runs without it was started by
# Streamlit's legacy pages/ mode (see require_router). A context variable, not a global: sessions run
# their scripts side by side, each in a thread (so a context) of its own.
_ROUTED: contextvars.ContextVar[bool] = contextvars.ContextVar("routed", default=False)


@contextlib.contextmanager
def routed():
    """Around the router's `page.run()`: the page runs under the router."""
    token = _ROUTED.set(True)
    try:
        yield
    finally:
        _ROUTED.reset(token)


def require_router() -> None:
    """Run this page through streamlit_app.py when Streamlit ran the page file on its own; then, on a page
    that loaded torch, set the app process's torch threads (after fashion_core.device has read the default,
    which the sidebar names as a training job's).

    A server whose main script has a pages/ folder beside it starts in Streamlit's legacy multipage
    mode until st.navigation is called once, so a fresh server's first visit straight to /train runs
    pages/train.py alone (no router, no shared sidebar). Running the router here, in the same script
    run, keeps the visit's widget events (a rerun would drop them); its st.navigation call ends the
    legacy mode for the whole server. Why a guard at all: see streamlit_app.py.
    """
    if not _ROUTED.get():
        runpy.run_path(str(ROUTER), run_name="__main__")  # runs this page again, under the router
        st.stop()
    if "torch" in sys.modules:  # the page runs models (the Overview never loads torch: a fresh app opens fast)
        from fashion_core.device import DEFAULT_THREADS  # noqa: F401,PLC0415  (read before they are lowered)

        sys.modules["torch"].set_num_threads(APP_TORCH_THREADS)
