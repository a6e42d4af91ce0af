"""What the AppTest suites share: the app, starting it on a page, its text, and the empty and ready
fixtures (import the fixtures into a test module to use them)."""
from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import fashion_core.data as fdata
import fashion_core.runs as fruns
from conftest import private_runs

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")


def start(page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    if page:
        at.switch_page(page)
        at.run()
    return at


def open_tab(at: AppTest, key: str, label: str) -> AppTest:
    """Click the tab `label` of the st.tabs with this key (a page that runs only its open tab)."""
    at.session_state[key] = label
    return at.run()


def text_of(at: AppTest) -> str:
    return "\n".join(str(e.value) for kind in ("markdown", "caption", "info", "warning", "error", "success", "code")
                     for e in getattr(at, kind))


@pytest.fixture(autouse=True)
def fresh_caches():
    st.cache_data.clear()
    st.cache_resource.clear()
    yield


@pytest.fixture
def empty(tmp_path, monkeypatch):
    """No dataset anywhere and no runs at all (not even shipped checkpoints)."""
    monkeypatch.setenv("FASHION_MNIST_ROOT", str(tmp_path / "data"))
    monkeypatch.setenv("FASHION_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("FASHION_JOBS_DIR", str(tmp_path / "jobs"))
    monkeypatch.setattr(fdata, "CACHE_DIR", tmp_path / "cache")
    monkeypatch.setattr(fruns, "CHECKPOINT_DIR", tmp_path / "checkpoints")
    return tmp_path


@pytest.fixture
def ready(tmp_path, monkeypatch, fake_root, tiny_run):
    """Tiny data and one tiny trained run; no shipped checkpoints; caches (embeddings) in tmp."""
    monkeypatch.setenv("FASHION_MNIST_ROOT", str(fake_root))
    tiny_run = private_runs(tiny_run, tmp_path)
    monkeypatch.setenv("FASHION_RUNS_DIR", str(tiny_run.path.parent))
    monkeypatch.setenv("FASHION_JOBS_DIR", str(tmp_path / "jobs"))
    monkeypatch.setattr(fruns, "CHECKPOINT_DIR", tmp_path / "checkpoints")
    monkeypatch.setattr(fdata, "CACHE_DIR", tmp_path / "cache")
    return tiny_run
