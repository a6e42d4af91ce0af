"""Benchmark: how fast the dashboard answers, in the browser and in-process, against its goals.

    FASHION_MNIST_ROOT=/work/shared/data python benchmarks/app_speed.py [--photo PATH] [--repeats 15]

In-process (CPU, time.perf_counter, median of --repeats after warm-up): one-image predict and each
Captum method on the shipped flagship, with the app's settings and torch thread count, beside the
same settings at torch's default thread count and beside a naive baseline (Captum's defaults, or a
model loaded from disk per request). In the browser (`streamlit run` on 127.0.0.1, headless
Chromium): each page's first render, cold (first visit on a fresh server) and warm (second visit,
by URL and by sidebar click), then on Predict the time from uploading a photo to the prediction
and to each attribution. A benchmark, not a test: timings on a busy CPU are noisy.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from captum.attr import IntegratedGradients, NoiseTunnel, Occlusion, Saliency

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]
DEFAULT_THREADS = torch.get_num_threads()  # before ui.common lowers it for the app process

from fashion_core import explain  # noqa: E402
from fashion_core.inference import to_input  # noqa: E402
from fashion_core.photos.pipeline import load_image, prepare  # noqa: E402
from fashion_core.predictor import Predictor  # noqa: E402
from fashion_core.runs import CHECKPOINT_DIR, Run, load_model  # noqa: E402
from ui.common import APP_TORCH_THREADS  # noqa: E402

warnings.filterwarnings("ignore", message="Setting backward hooks")  # Captum, on every Guided Backprop
GOALS_MS = {"predict": 50, "Integrated Gradients": 300}
PAGE_GOAL_S = 2.0  # warm render
WARM_VISITS = 3  # warm timings are the median of this many visits
TITLES = {"Overview": "Fashion-MNIST workbench", "Dataset": "Dataset", "Train": "Train",
          "Compare": "Compare runs", "Predict": "Predict & explain"}
NAV = {"Predict": "Predict & Explain"}  # sidebar labels that differ from the page key


# --- in-process ----------------------------------------------------------------------------------
@contextlib.contextmanager
def torch_threads(n: int):
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def medians_ms(fns: list, repeats: int, warmup: int = 2) -> list[float]:
    """Median milliseconds per function, run round-robin so CPU contention hits each alike."""
    for fn in fns:
        for _ in range(warmup):
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, t in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            t.append((time.perf_counter() - t0) * 1000)
    return [statistics.median(t) for t in times]


def naive_attribution(model, image28: np.ndarray, target: int, method: str):
    """What a first attempt looks like: Captum's defaults (or the textbook sample counts)."""
    x = to_input(torch.as_tensor(image28)[None]).requires_grad_(True)
    if method == "Integrated Gradients":  # n_steps=50, one batch
        return lambda: IntegratedGradients(model).attribute(x, baselines=torch.zeros_like(x), target=target)
    if method == "SmoothGrad":  # 50 noisy copies, as in the SmoothGrad paper
        return lambda: NoiseTunnel(Saliency(model)).attribute(x, nt_type="smoothgrad", nt_samples=50,
                                                              stdevs=explain.SMOOTHGRAD_STD, target=target)
    if method == "Occlusion":  # perturbations_per_eval=1: one forward pass per patch position
        w, s = explain.OCCLUSION_WINDOW, explain.OCCLUSION_STRIDE
        return lambda: Occlusion(model).attribute(x, sliding_window_shapes=(1, w, w), strides=(1, s, s),
                                                  baselines=0.0, target=target)
    return None  # nothing to tune: one forward and one backward pass


def in_process(run: Run, image28: np.ndarray, repeats: int) -> list[tuple]:
    """Rows (what, app ms, app at torch's default threads ms, naive ms, naive description, goal).

    The naive baseline runs at the app's thread count, so each column changes one thing.
    """
    default_threads = DEFAULT_THREADS
    model = load_model(run)
    target = int(Predictor.from_run(run, model=model, fit=False).model_probabilities(image28)[0].argmax())
    few = max(3, repeats // 3)
    rows = []

    def timings(app_fn, naive_fn) -> tuple[float, float, float | None]:
        with torch_threads(APP_TORCH_THREADS):
            app, *naive = medians_ms([app_fn] + ([naive_fn] if naive_fn else []), repeats)
        with torch_threads(default_threads):
            (app_default,) = medians_ms([app_fn], few)
        return app, app_default, naive[0] if naive else None

    app_predict = lambda: Predictor.from_run(run, model=model, fit=False).model_probabilities(image28)  # noqa: E731
    naive_predict = lambda: Predictor.from_run(run, fit=False).model_probabilities(image28)  # noqa: E731
    rows.append(("predict (1 image)", *timings(app_predict, naive_predict), "model loaded per request",
                 GOALS_MS["predict"]))
    for method in explain.available_methods(model):
        app_fn = lambda: explain.attribute(model, image28, target, method)  # noqa: E731
        naive_fn = naive_attribution(model, image28, target, method)
        rows.append((method, *timings(app_fn, naive_fn), NAIVE_LABELS.get(method, "—"), GOALS_MS.get(method)))
    return rows


NAIVE_LABELS = {"Integrated Gradients": "n_steps=50 (Captum default)",
                "SmoothGrad": "50 samples (paper)",
                "Occlusion": "perturbations_per_eval=1"}


# --- browser -------------------------------------------------------------------------------------
IDLE_JS = ("() => document.querySelector('[data-testid=\"stApp\"]')?.dataset.testScriptState === 'notRunning'"
           " && !document.querySelector('[data-testid=\"stSpinner\"]')")


def until_rendered(page, title: str, timeout_ms: float = 120_000) -> None:
    """The page's own title is drawn (not a stale one) and the script run has finished."""
    page.locator("h1", has_text=title).first.wait_for(timeout=timeout_ms)
    page.wait_for_function(IDLE_JS, timeout=timeout_ms, polling=20)


def timed(action, done) -> float:
    t0 = time.perf_counter()
    action()
    done()
    return time.perf_counter() - t0


def visit_by_url(page, base: str, name: str) -> float:
    from browser import PAGES

    return timed(lambda: page.goto(f"{base}/{PAGES[name]}"), lambda: until_rendered(page, TITLES[name]))


def visit_by_sidebar(page, name: str) -> float:
    link = page.locator("[data-testid='stSidebarNav'] a", has_text=NAV.get(name, name)).first
    return timed(link.click, lambda: until_rendered(page, TITLES[name]))


PREDICT_MARKERS_JS = """(methods) => {
  const seen = {};
  // the answer: a confident label (success) or an 'unsure' warning
  if (document.querySelector('[data-testid="stAlertContentSuccess"], [data-testid="stAlertContentWarning"]'))
    seen['prediction'] = true;
  for (const el of document.querySelectorAll('[data-testid="stMarkdownContainer"]')) {
    const t = el.innerText.trim();
    for (const m of methods) if (t.startsWith(m + ' \u00b7 ')) seen[m] = true;
  }
  if (document.querySelector('[data-testid="stException"]')) seen['exception'] = true;
  return seen;
}"""


def predict_upload(page, photo: Path, model_name: str | None) -> tuple[dict[str, float], str]:
    """Seconds from the upload to the prediction and to each attribution; and the model used."""
    if model_name:  # pick the flagship when the page lists it
        box = page.get_by_role("combobox", name="Model")
        box.click()
        option = page.get_by_role("option").filter(has_text=model_name)
        if option.count():
            option.first.click()
            page.wait_for_function(IDLE_JS, timeout=120_000, polling=20)
        else:
            page.keyboard.press("Escape")
    used = page.get_by_role("combobox", name="Model").input_value().split(" · ")[0]
    methods = list(explain.METHODS)
    seen: dict[str, float] = {}
    upload = page.locator("[data-testid='stFileUploaderDropzoneInput']")
    t0 = time.perf_counter()
    upload.set_input_files({"name": photo.name, "mimeType": "image/jpeg", "buffer": photo.read_bytes()})
    deadline = t0 + 180
    while time.perf_counter() < deadline:
        now = time.perf_counter() - t0
        for key in page.evaluate(PREDICT_MARKERS_JS, methods):
            seen.setdefault(key, now)
        if "exception" in seen:
            raise RuntimeError(page.inner_text("[data-testid='stMain']")[-2000:])
        if "prediction" in seen and page.evaluate(IDLE_JS) and now > 0.3:
            break
        time.sleep(0.02)
    seen["page idle"] = time.perf_counter() - t0
    return seen, used


def predict_rerun(page) -> float:
    """One widget change on the Predict page with the photo already there (Top k 5 -> 4)."""
    slider = page.get_by_role("slider", name="Top k")
    return timed(lambda: slider.press("ArrowLeft"),
                 lambda: (page.wait_for_timeout(100), page.wait_for_function(IDLE_JS, timeout=120_000, polling=20)))


def browser_timings(photo: Path, model_name: str | None) -> dict:
    from browser import PAGES, launch, serve_app
    from playwright.sync_api import sync_playwright

    out: dict = {"cold": {}, "warm": {}, "nav": {}}
    with tempfile.TemporaryDirectory() as tmp:
        env = {"FASHION_RUNS_DIR": str(Path(tmp) / "runs"), "FASHION_JOBS_DIR": str(Path(tmp) / "jobs")}
        with serve_app(env, Path(tmp) / "streamlit.log") as url, sync_playwright() as p:
            browser = launch(p)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            for name in PAGES:
                out["cold"][name] = visit_by_url(page, url, name)
            for _ in range(WARM_VISITS):
                for name in PAGES:
                    out["warm"].setdefault(name, []).append(visit_by_url(page, url, name))
                for name in [*list(PAGES)[1:], "Overview"]:
                    out["nav"].setdefault(name, []).append(visit_by_sidebar(page, name))
            for key in ("warm", "nav"):
                out[key] = {name: statistics.median(t) for name, t in out[key].items()}
            visit_by_url(page, url, "Predict")
            out["upload"], out["model"] = predict_upload(page, photo, model_name)
            out["rerun"] = predict_rerun(page)
            browser.close()
    return out


# --- report --------------------------------------------------------------------------------------
def verdict(value: float, goal: float | None) -> str:
    return "" if goal is None else ("ok" if value <= goal else "MISSED")


def print_report(rows: list[tuple], web: dict | None, run: Run, photo: Path) -> None:
    print(f"\nIn-process, CPU, {run.name}, photo {photo.parent.name}/{photo.name}; "
          f"app uses {APP_TORCH_THREADS} torch thread(s), torch's default here is {DEFAULT_THREADS}")
    head = f"{'step':<22}{'app ms':>9}{'@default thr':>14}{'naive ms':>10}  {'naive baseline':<28}{'goal':>7}"
    print(head + "\n" + "-" * len(head))
    for what, app, app_default, naive, label, goal in rows:
        naive_s = f"{naive:10.1f}" if naive is not None else f"{'—':>10}"
        goal_s = f"≤{goal}" if goal else ""
        print(f"{what:<22}{app:9.1f}{app_default:14.1f}{naive_s}  {label:<28}{goal_s:>7} {verdict(app, goal)}")
    if not web:
        return
    print(f"\nBrowser (headless Chromium, streamlit on 127.0.0.1), seconds to title drawn + script idle"
          f" (warm: median of {WARM_VISITS} visits)")
    head = f"{'page':<10}{'cold':>8}{'warm URL':>10}{'warm nav':>10}{'goal':>7}"
    print(head + "\n" + "-" * len(head))
    for name in web["cold"]:
        warm = max(web["warm"][name], web["nav"][name])
        print(f"{name:<10}{web['cold'][name]:8.2f}{web['warm'][name]:10.2f}{web['nav'][name]:10.2f}"
              f"{'≤' + str(PAGE_GOAL_S):>7} {verdict(warm, PAGE_GOAL_S)}")
    print(f"\nPredict page, photo upload -> result (model {web['model']}), seconds after the upload")
    for key, t in sorted(web["upload"].items(), key=lambda kv: kv[1]):
        print(f"  {key:<22}{t:7.2f}")
    print(f"  {'rerun (Top k change)':<22}{web['rerun']:7.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photo", type=Path, help="a garment photo (default: the first t-shirt photo of "
                                               "$FASHION_MNIST_ROOT/clothing-photos-dev)")
    ap.add_argument("--run", default="flagship", help="shipped checkpoint folder to time in-process")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--no-browser", action="store_true", help="only the in-process timings")
    args = ap.parse_args()
    if not os.environ.get("FASHION_MNIST_ROOT"):
        sys.exit("set FASHION_MNIST_ROOT to the real data (e.g. /work/shared/data)")
    # the dev photos sit beside Fashion-MNIST in the shared data folder
    photo = args.photo or sorted((Path(os.environ["FASHION_MNIST_ROOT"]) / "clothing-photos-dev" / "t-shirt").glob("*.jpg"))[0]
    run = Run(CHECKPOINT_DIR / args.run)
    image28 = prepare(load_image(photo.read_bytes())).image28
    rows = in_process(run, image28, args.repeats)
    web = None if args.no_browser else browser_timings(photo, args.run)
    print_report(rows, web, run, photo)


if __name__ == "__main__":
    main()
