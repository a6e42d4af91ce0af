"""Overview: what the app is, the leaderboard of every evaluated run, and where to go next."""
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from fashion_core.compare import short_of_recipe
from fashion_core.runs import damaged, leaderboard, list_runs
from ui import common

common.require_router()

st.title("Fashion-MNIST workbench")
st.markdown(
    "Browse the 70,000 Fashion-MNIST images, train classifiers from the browser and watch them learn, "
    "compare architectures and losses from the reports, and classify a photo of a real garment with "
    "Captum explanations. The shipped runs in `checkpoints/` work without the dataset or a GPU."
)

links = st.container(horizontal=True)  # wraps onto a second line in a narrow window, where columns cut the labels
links.page_link("pages/dataset.py", label="Explore the dataset", icon=":material/photo_library:")
links.page_link("pages/train.py", label="Train a model", icon=":material/model_training:")
links.page_link("pages/compare.py", label="Compare runs", icon=":material/bar_chart:")
links.page_link("pages/predict.py", label="Predict & explain", icon=":material/search_insights:")

def against_reports(table: pd.DataFrame) -> None:
    """Each run whose model a report scored: the report's test accuracy and ours, on one line; grey
    for a run shorter than the report's recipe (table["short"]: how), whose gap says little."""
    table = table[table["reported_accuracy"].notna() & table["test_accuracy"].notna()].sort_values("reported_accuracy")
    if table.empty:
        return
    st.subheader("Against the reports")
    ahead = table["test_accuracy"] >= table["reported_accuracy"]
    short = table["short"] != ""
    fig = go.Figure()
    for (_, r), better, cut in zip(table.iterrows(), ahead, short):
        fig.add_scatter(x=[r["reported_accuracy"], r["test_accuracy"]], y=[r["run"]] * 2, mode="lines",
                        line=dict(color="#c7c7c7" if cut else "#2ca02c" if better else "#d62728", width=3),
                        showlegend=False, hoverinfo="skip")
    fig.add_scatter(x=table["reported_accuracy"], y=table["run"], mode="markers", name="the report's number",
                    marker=dict(symbol="diamond-open", size=11, color="#7f7f7f", line=dict(width=2)),
                    customdata=table["report"], hovertemplate="%{y}: report %{customdata} says %{x:.2f}%<extra></extra>")
    for cut, name, colour in ((False, "measured here", "#1f77b4"),
                              (True, "measured on a short run (grey line)", "#a0a0a0")):
        rows = table[short == cut]
        if len(rows):
            fig.add_scatter(x=rows["test_accuracy"], y=rows["run"], mode="markers", name=name,
                            marker=dict(size=10, color=colour), customdata=rows[["epochs", "short"]],
                            hovertemplate="%{y}: %{x:.2f}% measured after %{customdata[0]} epochs"
                                          + ("; a short run: %{customdata[1]}" if cut else "") + "<extra></extra>")
    fig.update_layout(height=140 + 26 * len(table), xaxis_title="test accuracy (%)", margin=dict(t=10, l=10, r=10),
                      legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0))
    st.plotly_chart(fig, width="stretch")
    full = int(ahead[~short].sum())
    st.caption(f"{int(ahead.sum())} of {len(table)} runs match or beat the test accuracy their model's report gives; "
               f"of the {int((~short).sum())} trained on the report's whole recipe, {full} "
               f"{'does' if full == 1 else 'do'} (green line; red: below it). Grey: short runs, trained on fewer epochs or images than the report's "
               f"recipe ({int(short.sum())} here; hover a grey dot for how short), so their gap says little about the "
               "model. A report gives one number per model, for its own recipe, so every run of that model is drawn "
               "against it; runs of a model no report scored (ours, ensembles) are left out.")


st.subheader("Leaderboard")
every_run = list_runs()
rows = leaderboard(every_run)
if not rows:
    st.info("No evaluated runs yet: `checkpoints/` is empty and no user run has finished. "
            "Train one on the Train page.")
else:
    table = pd.DataFrame(rows)
    table = common.with_dashes(table, {"epochs": "{:.0f}"})  # an ensemble has no epochs of its own
    yours = ~table["shipped"]
    table["source"] = [("shipped" if s else "yours") + ("" if w else ", evaluation only (no weights)")
                       for s, w in zip(table.pop("shipped"), table.pop("weights"))]
    if yours.any():
        best = table[yours].iloc[0]
        st.success(f"Your best run, **{best['run']}**, ranks {best['rank']} of {len(table)} "
                   f"with {best['test_accuracy']:.2f}% test accuracy. Your runs are highlighted.",
                   icon=":material/person:")
        show = st.segmented_control("Show", ["all runs", "yours", "shipped"], default="all runs", key="ov.show",
                                    persist_state="session")
        table = table[yours] if show == "yours" else table[~yours] if show == "shipped" else table
    shown_count = f"{len(table)} of {len(rows)}" if len(table) < len(rows) else f"{len(rows)}"
    # the key columns first and pinned, so a narrow window scrolls the others past them
    columns = ["rank", "run", "test_accuracy", "model", "loss", "params", "epochs", "train_time_s", "device", "source"]
    shown = table[columns].style.apply(  # the user's own runs stand out from the shipped ones
        lambda row: ["background-color: rgba(255, 200, 0, 0.18)" if row["source"].startswith("yours") else ""]
        * len(row), axis=1)
    st.dataframe(
        shown, hide_index=True, width="stretch",
        column_config={
            "test_accuracy": st.column_config.ProgressColumn("test accuracy", format="%.2f%%", color="blue", width=130,
                                                             min_value=0, max_value=100, pinned=True),  # red: "bad"
            "run": st.column_config.TextColumn("run", width="medium", pinned=True),
            "rank": st.column_config.NumberColumn("rank", width=45, pinned=True),
            "epochs": st.column_config.TextColumn("epochs", width=55),
            "loss": st.column_config.TextColumn("loss", width=80),
            "params": st.column_config.NumberColumn("params", format="localized"),
            "train_time_s": st.column_config.NumberColumn("train time (s)", format="%.0f", width=95),
        })
    st.caption(f"{shown_count} evaluated run(s); accuracy is on the official 10,000-image test set. The table "
               "scrolls sideways for more columns (model, loss, parameters, epochs, time, device, source); rank, run "
               "and accuracy stay in view.")
    everything = pd.DataFrame(rows)
    run_at = {str(r.path): r for r in every_run}
    everything["short"] = [short_of_recipe(run_at[p]) for p in everything["path"]]
    against_reports(everything[everything["path"].isin(table["path"])])  # the runs the filter shows
common.damaged_panel(damaged(every_run))
