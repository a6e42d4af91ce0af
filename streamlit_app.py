"""The dashboard's entry point: `streamlit run streamlit_app.py`. An st.navigation router over the
page files in pages/, with a sidebar that shows the device, the data status and the job queue.

Why every page starts with `common.require_router()`: Streamlit (1.67) decides when its first
session starts whether the app is a legacy multipage app, namely whether a `pages/` folder sits
beside the main script, and stays in that mode until some script run calls st.navigation. In that
mode a fresh server's first visit straight to /train runs pages/train.py on its own: no router, no
shared sidebar, the folder's file names as the menu. No setting turns this off
(`client.showSidebarNavigation = false` only hides the menu, the router's too), and only moving the
page files out of pages/ would avoid it, which we do not: their paths are how pages link to each
other and how the tests open them. So the guard lives in ui/common.py: this router runs each page
inside `common.routed()` (a context variable, no private Streamlit attribute), and a page run
without it runs this router in the same script run and stops; that first st.navigation call ends
the legacy mode for the whole server. tests/test_e2e.py opens /train first on a fresh server.
"""
from __future__ import annotations

import sys

import streamlit as st

from fashion_core import jobs
from fashion_core.data import data_root, is_available
from ui import common

st.set_page_config(page_title="Fashion-MNIST workbench", page_icon=":material/checkroom:", layout="wide")

PAGES = [
    st.Page("pages/overview.py", title="Overview", icon=":material/home:", default=True),
    st.Page("pages/dataset.py", title="Dataset", icon=":material/photo_library:"),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/compare.py", title="Compare", icon=":material/bar_chart:"),
    st.Page("pages/tune.py", title="Tune", icon=":material/tune:"),
    st.Page("pages/predict.py", title="Predict & explain", icon=":material/search_insights:"),
]
page = st.navigation(PAGES)


@st.cache_resource
def _device() -> str:
    from fashion_core.device import DEFAULT_THREADS, describe_device  # noqa: PLC0415

    return describe_device(threads=DEFAULT_THREADS)  # a training job's threads, not the app's


@st.fragment(run_every=5)
def _job_status() -> None:
    # Naming the device loads torch (seconds), which the Overview does not need: on a fresh app's first page
    # the sidebar says "checking" and names it at the fragment's next run, once the page is drawn.
    if "torch" in sys.modules or st.session_state.get("router.drawn"):
        st.caption(f"**Device:** {_device()}")
    else:
        st.caption("**Device:** checking…")
    problem = jobs.tick()  # also moves the queue on after an app restart
    n = jobs.counts()
    st.caption(f"**Jobs:** {n['running']} running · {n['queued']} queued")
    if problem:
        st.caption(f":orange[{problem}]")


with st.sidebar:
    if is_available():
        st.caption("**Data:** Fashion-MNIST ready")
    else:
        st.caption(f"**Data:** missing (looked in `{data_root()}`)")
    _job_status()

with common.routed():
    page.run()
st.session_state["router.drawn"] = True
