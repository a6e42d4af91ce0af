"""Compare: training curves, hyperparameters and results, clickable confusion matrices, per-class
bars, the architecture x loss grid, and downloads."""
import functools

import pandas as pd
import plotly.express as px
import streamlit as st

from fashion_core import compare
from ui import common
from ui.charts import per_class_figure, training_curves
from ui.confusion_view import confusion_panel

common.require_router()
CELL_IMAGES = 40  # images shown for a clicked confusion-matrix cell
KEY_COLUMNS = ["run", "test_accuracy", "reported_accuracy", "accuracy_gap"]  # in view at any window width

st.title("Compare runs")
runs = common.finished_runs()
if not runs:
    common.no_runs_message()
    st.stop()
by_name = common.by_key(runs)
common.from_url("cmp.runs", list(by_name), list(by_name)[:3])
picked = st.multiselect("Runs", list(by_name), key="cmp.runs", persist_state="session",
                        format_func=lambda n: common.run_label(by_name[n]))
common.to_url("cmp.runs")
chosen = [by_name[n] for n in picked]
COLOURS = {n: px.colors.qualitative.Plotly[i % 10] for i, n in enumerate(picked)}  # one colour per run on every chart
if not chosen:
    st.info("Pick at least one run.")
    st.stop()

st.subheader("Training curves")
rows = [{"run": n, **m} for n, r in zip(picked, chosen) for m in r.metrics]
if rows:
    df = pd.DataFrame(rows)
    st.plotly_chart(training_curves(df, COLOURS), width="stretch")
    st.caption("Solid lines: training set (running average over the epoch); dashed: validation set. Training "
               "loss can sit well above validation loss: it is measured on augmented images, with label smoothing "
               "where the recipe uses it (the flagships do), while the weights are still changing.")
without = [n for n, r in zip(picked, chosen) if not r.metrics]
if without:
    st.caption(f"No curves for {', '.join(without)}: " + ("an ensemble votes runs that trained, and trains nothing "
               "itself; its members' curves are theirs." if all(by_name[n].kind == "ensemble" for n in without)
               else "no per-epoch metrics were saved (an ensemble trains nothing itself)."))

st.subheader("Results and hyperparameters")
results = compare.results(chosen, picked)
shown = common.with_dashes(results, {
    "test_accuracy": "{:.2f}", "reported_accuracy": "{:.2f}", "accuracy_gap": "{:+.2f}", "params": "{:,.0f}",
    "reported_params": "{:,.0f}", "epochs_trained": "{:.0f}", "train_time_s": "{:,.0f}", "latency_ms": "{:.3f}",
    "report": "{}"})
st.dataframe(shown, hide_index=True, width="stretch",
             column_order=[*KEY_COLUMNS, *[c for c in shown.columns if c not in KEY_COLUMNS]],  # key ones first
             column_config={"run": st.column_config.TextColumn("run", width="medium", pinned=True),
                            "test_accuracy": st.column_config.TextColumn("test acc %", pinned=True),
                            "reported_accuracy": "report's acc %",
                            "accuracy_gap": "measured − report", "reported_params": "report's params",
                            "train_time_s": "training time (s)", "latency_ms": "latency (ms/image)",
                            "epochs_trained": st.column_config.TextColumn(
                                "epochs trained", help="Epochs the run trained (early stopping may end it before "
                                "its `epochs` setting, below)")})
diff_only = st.toggle("Differences only", value=len(chosen) > 1, key="cmp.diff", persist_state="session")
settings = compare.hyperparameters(chosen, False, picked)
hp = compare.blank_unused(settings)
hp = compare.only_differences(hp) if diff_only else hp
st.dataframe(hp.rename_axis("setting").reset_index(), hide_index=True, width="stretch",
             height=min(600, 35 * (len(hp) + 1) + 3),
             column_config={"setting": st.column_config.TextColumn(width=160, pinned=True)})
st.caption("Both tables scroll sideways when they hold more than the window shows (run, accuracy and setting stay "
           "in view). —: the setting does nothing for that run (another choice leaves it unused, or its augmentation "
           "is off); the CSV holds every value.")
st.download_button("Download results and every hyperparameter (CSV)",  # whatever the toggle hides
                   compare.export(results, settings).to_csv().encode(), "runs.csv", "text/csv")

st.subheader("Confusion matrices")
st.caption("Click a cell to see the test images of that true class the run predicted as that class.")
normalise = st.radio("Show", ["counts", "row-normalised %"], horizontal=True, key="cmp.norm",
                     persist_state="session") != "counts"
test_split = (lambda: common.split(False)) if common.data_ready() else None
# only the open tab's matrix is drawn (a tab switch reruns the page): each is a chart of its own
for tab, key, run in zip(st.tabs(picked, key="cmp.cm_tab", on_change="rerun"), picked, chosen):
    if tab.open:
        with tab:
            confusion_panel(run, key, normalise, test_split, CELL_IMAGES)

st.subheader("Per-class metrics")
metric = st.radio("Metric", ["recall", "precision", "f1"], horizontal=True, key="cmp.metric", persist_state="session",
                  format_func={"recall": "recall (the class's accuracy)", "precision": "precision", "f1": "F1"}.get,
                  help="Recall: the share of the class's test images the run called that class. Precision: the "
                       "share of the run's answers of that class that were right. F1: their harmonic mean.")
st.plotly_chart(per_class_figure(compare.per_class(chosen, picked), metric, COLOURS), width="stretch")

st.subheader("Architecture × loss (report 003's experiment)")
grid = compare.arch_loss_grid(runs)
if grid is None:
    st.caption("Needs runs that differ only in model and loss (train them with the same recipe and another "
               "model or loss); none of the current runs form such a grid.")
else:
    epochs = grid.attrs["epochs"]
    uneven = len(set(epochs.values())) > 1
    shown = pd.DataFrame({loss: [f"{grid.loc[m, loss]:.2f}" + (f" · {epochs[m, loss]:.0f} ep" if uneven else "")
                                 if (m, loss) in epochs else "—" for m in grid.index] for loss in grid.columns},
                         index=grid.index)
    best = grid.max().max()
    st.dataframe(shown.style.apply(
        lambda col: ["font-weight: bold;" if grid.loc[m, col.name] == best else "" for m in col.index]),
        width="content")
    st.caption("Test accuracy %; rows are architectures, columns losses, best in bold. Uses every evaluated "
               "run (not only the picked ones) whose other settings are identical"
               + (", except how long it trained (epochs per cell): fewer epochs can explain a lower score."
                  if uneven else "."))

st.subheader("Download a run")
name = st.selectbox("Run", picked, key="cmp.zip_run", persist_state="session")
target = by_name[name]
contents = (", best weights)" if (target.path / "best.pt").exists() else
            "; an ensemble's weights are its members', in their own runs)" if target.kind == "ensemble" else
            "; this run ships without weights)")
st.download_button(f"Download as zip (config, metrics, eval{contents}", functools.partial(compare.zip_run, target),
                   f"{target.name}.zip", "application/zip")
