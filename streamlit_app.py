"""The dashboard's entry point: `streamlit run streamlit_app.py`. An st.navigation router over the
page files in pages/, with a sidebar that shows the device, the data status and the job queue.

Streamlit treats a pages/ folder as a legacy multipage app until st.navigation has run once, so a
fresh server's first deep link (/train) would run the page file on its own; every page therefore
starts with `common.require_router()`, which hands that first run back to this router.
"""
from __future__ import annotations

import streamlit as st

from fashion_core import jobs
from fashion_core.data import data_root, is_available
from fashion_core.device import describe_device

st.set_page_config(page_title="Fashion-MNIST workbench", page_icon=":material/checkroom:", layout="wide")

PAGES = [
    st.Page("pages/overview.py", title="Overview", icon=":material/home:", default=True),
    st.Page("pages/dataset.py", title="Dataset", icon=":material/photo_library:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/compare.py", title="Compare", icon=":material/bar_chart:"),
    st.Page("pages/predict.py", title="Predict & explain", icon=":material/search_insights:"),
]
page = st.navigation(PAGES)


@st.cache_resource
def _device() -> str:
    return describe_device()


@st.fragment(run_every=5)
def _job_status() -> None:
    jobs.tick()  # also moves the queue on after an app restart
    n = jobs.counts()
    st.caption(f"**Jobs:** {n['running']} running · {n['queued']} queued")


with st.sidebar:
    st.caption(f"**Device:** {_device()}")
    if is_available():
        st.caption("**Data:** Fashion-MNIST ready")
    else:
        st.caption(f"**Data:** missing (looked in `{data_root()}`)")
    _job_status()

page.run()
