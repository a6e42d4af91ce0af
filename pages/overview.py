"""Overview: what the app is, the leaderboard of every evaluated run, and where to go next."""
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from fashion_core.runs import damaged, leaderboard, list_runs
from ui import common

common.require_router()

st.title("Fashion-MNIST workbench")
st.markdown(
    "Browse the 70,000 Fashion-MNIST images, train classifiers from the browser and watch them learn, "
    "compare architectures and losses from the reports, and classify a photo of a real garment with "
    "Captum explanations. The shipped runs in `checkpoints/` work without the dataset or a GPU."
)

cols = st.columns(4)
cols[0].page_link("pages/dataset.py", label="Explore the dataset", icon=":material/photo_library:")
cols[1].page_link("pages/train.py", label="Train a model", icon=":material/model_training:")
cols[2].page_link("pages/compare.py", label="Compare runs", icon=":material/bar_chart:")
cols[3].page_link("pages/predict.py", label="Predict & explain", icon=":material/search_insights:")

def against_reports(table: pd.DataFrame) -> None:
    """Each run whose model a report scored: the report's test accuracy and ours, on one line."""
    table = table[table["reported_accuracy"].notna() & table["test_accuracy"].notna()].sort_values("reported_accuracy")
    if table.empty:
        return
    st.subheader("Against the reports")
    ahead = table["test_accuracy"] >= table["reported_accuracy"]
    fig = go.Figure()
    for (_, r), better in zip(table.iterrows(), ahead):
        fig.add_scatter(x=[r["reported_accuracy"], r["test_accuracy"]], y=[r["run"]] * 2, mode="lines",
                        line=dict(color="#2ca02c" if better else "#d62728", width=3), showlegend=False,
                        hoverinfo="skip")
    fig.add_scatter(x=table["reported_accuracy"], y=table["run"], mode="markers", name="the report's number",
                    marker=dict(symbol="diamond-open", size=11, color="#7f7f7f", line=dict(width=2)),
                    customdata=table["report"], hovertemplate="%{y}: report %{customdata} says %{x:.2f}%<extra></extra>")
    fig.add_scatter(x=table["test_accuracy"], y=table["run"], mode="markers", name="measured here",
                    marker=dict(size=10, color="#1f77b4"), customdata=table["epochs"],
                    hovertemplate="%{y}: %{x:.2f}% measured after %{customdata} epochs<extra></extra>")
    fig.update_layout(height=120 + 26 * len(table), xaxis_title="test accuracy (%)", margin=dict(t=10, l=10),
                      legend=dict(orientation="h", y=1.02, yanchor="bottom", x=0))
    st.plotly_chart(fig, width="stretch")
    st.caption(f"{int(ahead.sum())} of {len(table)} runs match or beat the test accuracy their model's report gives (green line; "
               "red: below it), in the order of the reports' numbers; runs of a model no report scored (ours, "
               "ensembles) are left out. A report gives one number per model, for its own recipe, so every run of that model "
               "is drawn against it, whatever its loss or schedule. The shipped runs were trained on a 2-core CPU with "
               "epoch caps, so several stop short of their report's epochs (hover a dot for its count); Compare sets "
               "the two numbers side by side.")


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
    columns = ["rank", "run", "model", "loss", "test_accuracy", "params", "epochs", "train_time_s", "device", "source"]
    shown = table[columns].style.apply(  # the user's own runs stand out from the shipped ones
        lambda row: ["background-color: rgba(255, 200, 0, 0.18)" if row["source"].startswith("yours") else ""]
        * len(row), axis=1)
    st.dataframe(
        shown, hide_index=True, width="stretch",
        column_config={
            "test_accuracy": st.column_config.ProgressColumn("test accuracy", format="%.2f%%", color="blue",
                                                             min_value=0, max_value=100),  # red reads as "bad"
            "run": st.column_config.TextColumn("run", width="medium", pinned=True),
            "rank": st.column_config.NumberColumn("rank", width=45),
            "epochs": st.column_config.TextColumn("epochs", width=55),
            "loss": st.column_config.TextColumn("loss", width=80),
            "params": st.column_config.NumberColumn("params", format="localized"),
            "train_time_s": st.column_config.NumberColumn("train time (s)", format="%.0f", width=95),
        })
    st.caption(f"{shown_count} evaluated run(s); accuracy is on the official 10,000-image test set.")
    everything = pd.DataFrame(rows)
    against_reports(everything[everything["path"].isin(table["path"])])  # the runs the filter shows
common.damaged_panel(damaged(every_run))
