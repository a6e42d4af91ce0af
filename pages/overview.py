"""Overview: what the app is, the leaderboard of every evaluated run, and where to go next."""
import pandas as pd
import streamlit as st

from fashion_core.runs import leaderboard
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

st.subheader("Leaderboard")
rows = leaderboard()
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
            "test_accuracy": st.column_config.ProgressColumn("test accuracy", format="%.2f%%",
                                                             min_value=0, max_value=100),
            "run": st.column_config.TextColumn("run", width="medium", pinned=True),
            "params": st.column_config.NumberColumn("params", format="localized"),
            "train_time_s": st.column_config.NumberColumn("training time (s)", format="%.0f"),
        })
    st.caption(f"{shown_count} evaluated run(s); accuracy is on the official 10,000-image test set.")
