"""Serve the app with `streamlit run` on 127.0.0.1 and drive Debian's Chromium with Playwright.

Shared by the end-to-end test and benchmarks/app_speed.py.
"""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PAGES = {"Overview": "", "Dataset": "dataset", "Train": "train", "Compare": "compare", "Tune": "tune",
         "Predict": "predict"}  # every page the router lists


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_app(env: dict[str, str], log_path: Path, timeout_s: float = 60):
    """Start `streamlit run streamlit_app.py` on a free local port; yield its base URL."""
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.address", "127.0.0.1",
           "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout_s
        while True:
            try:
                if urllib.request.urlopen(url + "/_stcore/health", timeout=2).status == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"streamlit did not start:\n{Path(log_path).read_text()[-3000:]}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def wait_idle(page, timeout_ms: float = 60_000) -> None:
    """Wait until the script run has finished: no running indicator and no spinner."""
    page.wait_for_selector("[data-testid='stMain']", timeout=timeout_ms)
    page.wait_for_timeout(250)  # a rerun triggered by the last input may not have started yet
    page.wait_for_function(
        "() => document.querySelector('[data-testid=\"stApp\"]').dataset.testScriptState === 'notRunning' && "
        "!document.querySelector('[data-testid=\"stSpinner\"]')", timeout=timeout_ms, polling=50)


def open_page(page, base: str, name: str, timeout_ms: float = 60_000) -> float:
    """Load one page; return seconds until its title is drawn and the script run is done."""
    t0 = time.perf_counter()
    page.goto(f"{base}/{PAGES[name]}")
    page.wait_for_selector("h1", timeout=timeout_ms)
    wait_idle(page, timeout_ms)
    return time.perf_counter() - t0
