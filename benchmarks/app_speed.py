"""Benchmark: how fast the dashboard answers, in the browser and in-process, against its goals.

    FASHION_MNIST_ROOT=/work/shared/data python benchmarks/app_speed.py [--photo PATH] [--repeats 15]

In-process (CPU, time.perf_counter, median of --repeats after warm-up): one-image predict and each
Captum method on the shipped flagship, with the app's settings and torch thread count, beside the
same settings at torch's default thread count and beside a naive baseline (Captum's defaults, or a
model loaded from disk per request). In the browser (`streamlit run` on 127.0.0.1, headless
Chromium): each page's first render, cold (first visit on a fresh server) and warm (second visit,
by URL and by sidebar click), then on Predict the time from uploading a photo to the prediction
and to each attribution. The Dataset page's embedding map (PCA, t-SNE, UMAP of --embed-size images):
in-process, each method in a fresh process (first map: imports and UMAP's compiling; then a second one),
now and as it was before the speed-ups (commit b747736), hover images and HTML included; in the browser,
from "Compute the map" to the map drawn, uncached and again. A benchmark, not a test: timings on a busy
CPU are noisy.

    python benchmarks/app_speed.py --embed-only      # just the embedding map, both ways
"""
from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import os
import statistics
import subprocess
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
          "Compare": "Compare runs", "Tune": "Tune", "Predict": "Predict & explain"}
EMBED_GOALS_S = {"PCA": 2.0, "t-SNE": 15.0, "UMAP": 15.0}  # 2,000 images, from the click to the map
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


# --- the embedding map --------------------------------------------------------------------------------
def before_embed(images: torch.Tensor, method: str, seed: int) -> np.ndarray:
    """dataset_stats.embed before the speed-ups (b747736): sklearn's PCA, t-SNE's 1,000 iterations,
    UMAP's 500 epochs with its own distance called per pair."""
    from sklearn.decomposition import PCA

    x = images.reshape(len(images), -1).float().div(255).numpy()
    if method == "PCA":
        return PCA(2, random_state=seed).fit_transform(x)
    x50 = PCA(min(50, len(x), x.shape[1]), random_state=seed).fit_transform(x)
    if method == "t-SNE":
        from sklearn.manifold import TSNE

        return TSNE(2, perplexity=min(30.0, (len(x) - 1) / 3), init="pca", random_state=seed).fit_transform(x50)
    import umap

    return umap.UMAP(n_neighbors=min(15, len(x) - 1), random_state=seed, n_jobs=1).fit_transform(x50)


def before_html(xy: np.ndarray, labels: np.ndarray, images: np.ndarray, index: np.ndarray) -> str:
    """embedding_view.embedding_html before (b747736): an optimised 3x PNG per point in its customdata,
    plotly.js inlined (the hover script, which costs nothing, left out)."""
    import plotly.graph_objects as go
    from PIL import Image

    from fashion_core.dataset_stats import upscale

    def png(img: np.ndarray) -> str:
        buf = io.BytesIO()
        Image.fromarray(upscale(img, 3)).save(buf, format="PNG", optimize=True)
        return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()

    fig = go.Figure()
    for c in range(10):
        m = labels == c
        fig.add_trace(go.Scattergl(x=xy[m, 0], y=xy[m, 1], mode="markers",
                                   customdata=[[int(i), png(img)] for i, img in zip(index[m], images[m])]))
    return fig.to_html(full_html=False, include_plotlyjs=True, default_height=600)


def embed_worker(version: str, method: str, n: int) -> None:
    """In a fresh process: seconds for one map (coordinates, then hover images and HTML), twice."""
    from fashion_core import dataset_stats as ds
    from fashion_core.data import load_split
    from ui.embedding_view import embedding_map

    torch.set_num_threads(APP_TORCH_THREADS)
    data = load_split(True)
    idx = ds.sample(data.labels, n, 0)
    images, labels = data.images[idx], data.labels[idx].numpy()
    out = []
    for _ in range(2):
        t0 = time.perf_counter()
        xy = ds.embed(images, method, 0) if version == "now" else before_embed(images, method, 0)
        t1 = time.perf_counter()
        html = (json.dumps(embedding_map(xy, labels, images.numpy(), idx))
                if version == "now" else before_html(xy, labels, images.numpy(), idx))
        out.append({"embed": t1 - t0, "html": time.perf_counter() - t1, "kB": len(html) // 1000})
    print(json.dumps(out))


def embed_timings(methods: list[str], n: int) -> dict:
    """{(method, version): [first map, second map]}, each method and version in a process of its own."""
    out = {}
    for method in methods:
        for version in ("before", "now"):
            done = subprocess.run([sys.executable, __file__, "--embed-worker", version, method, str(n)],
                                  capture_output=True, text=True, cwd=REPO, check=True)
            out[method, version] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def embedding_in_browser(page, base: str, methods: list[str]) -> dict[str, list[float]]:
    """Seconds from "Compute the map" (the default 2,000 images) to the map drawn: the tab's first map
    (PCA, which also loads plotly.js into the tab), then per method uncached (a seed no earlier run used,
    so neither the page's cache nor the disk holds it) and again after the other methods' maps."""
    seed = int(time.time()) % 9000 + 1000
    visit_by_url(page, base, "Dataset")
    page.get_by_role("tab", name="Embedding map").click()
    # the map's own form (the Synthetic tab has a form with a Seed too)
    form = page.locator("[data-testid='stForm']").filter(has=page.get_by_role("button", name="Compute the map"))
    out: dict[str, list[float]] = {}
    for method, key in [("PCA", "first map in a tab"), *[(m, m) for m in methods * 2]]:
        form.get_by_role("radiogroup", name="Method").get_by_text(method, exact=True).click()
        form.get_by_role("spinbutton", name="Seed").fill(str(seed - 1 if key == "first map in a tab" else seed))
        t0 = time.perf_counter()
        form.get_by_role("button", name="Compute the map").click()
        page.wait_for_timeout(100)  # the rerun has started (the caption may be the same map's)
        shown = seed - 1 if key == "first map in a tab" else seed
        page.get_by_text(f"{method} of 2,000 train images (seed {shown})").wait_for(timeout=600_000)
        page.wait_for_function(IDLE_JS, timeout=600_000, polling=20)
        page.frame_locator("iframe").first.locator(f"body[data-drawn*='/{method}/2000/{shown}/'] .main-svg").first.wait_for(
            state="attached", timeout=120_000)
        out.setdefault(key, []).append(time.perf_counter() - t0)
    return out


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


def browser_timings(photo: Path | None, model_name: str | None, parts: str = "all") -> dict:
    """The browser's timings: parts "all", "pages" (each page's renders) or "embed" (the embedding map's)."""
    from browser import PAGES, launch, serve_app
    from playwright.sync_api import sync_playwright

    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        env = {"FASHION_RUNS_DIR": str(Path(tmp) / "runs"), "FASHION_JOBS_DIR": str(Path(tmp) / "jobs")}
        with serve_app(env, Path(tmp) / "streamlit.log") as url, sync_playwright() as p:
            browser = launch(p)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            if parts in ("all", "pages"):
                out["cold"] = {name: visit_by_url(page, url, name) for name in PAGES}
                warm: dict[str, list[float]] = {}
                nav: dict[str, list[float]] = {}
                for _ in range(WARM_VISITS):
                    for name in PAGES:
                        warm.setdefault(name, []).append(visit_by_url(page, url, name))
                    for name in [*list(PAGES)[1:], "Overview"]:
                        nav.setdefault(name, []).append(visit_by_sidebar(page, name))
                out["warm"] = {name: statistics.median(t) for name, t in warm.items()}
                out["nav"] = {name: statistics.median(t) for name, t in nav.items()}
            if parts in ("all", "embed"):
                out["embed"] = embedding_in_browser(page, url, list(EMBED_GOALS_S))
            if parts == "all":
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
    print_pages(web)
    print(f"\nPredict page, photo upload -> result (model {web['model']}), seconds after the upload")
    for key, t in sorted(web["upload"].items(), key=lambda kv: kv[1]):
        print(f"  {key:<22}{t:7.2f}")
    print(f"  {'rerun (Top k change)':<22}{web['rerun']:7.2f}")


def print_pages(web: dict) -> None:
    print(f"\nBrowser (headless Chromium, streamlit on 127.0.0.1), seconds to title drawn + script idle"
          f" (warm: median of {WARM_VISITS} visits)")
    head = f"{'page':<10}{'cold':>8}{'warm URL':>10}{'warm nav':>10}{'goal':>7}"
    print(head + "\n" + "-" * len(head))
    for name in web["cold"]:
        warm = max(web["warm"][name], web["nav"][name])
        print(f"{name:<10}{web['cold'][name]:8.2f}{web['warm'][name]:10.2f}{web['nav'][name]:10.2f}"
              f"{'≤' + str(PAGE_GOAL_S):>7} {verdict(warm, PAGE_GOAL_S)}")


def print_embed_report(timings: dict, browser: dict | None, n: int) -> None:
    print(f"\nEmbedding map of {n:,} train images (seed 0), in-process, seconds; each method and version in a "
          f"fresh process: its first map (imports, UMAP's compiling), then a second one. before: commit b747736")
    head = (f"{'method':<7}{'version':<8}{'1st: map':>9}{'hover+HTML':>11}{'total':>8}{'2nd: map':>9}"
            f"{'hover+HTML':>11}{'total':>8}{'HTML kB':>9}{'goal':>6}")
    print(head + "\n" + "-" * len(head))
    for (method, version), (first, second) in timings.items():
        total, goal = first["embed"] + first["html"], EMBED_GOALS_S[method]
        print(f"{method:<7}{version:<8}{first['embed']:9.2f}{first['html']:11.2f}{total:8.2f}"
              f"{second['embed']:9.2f}{second['html']:11.2f}{second['embed'] + second['html']:8.2f}{first['kB']:9,}"
              + (f"{'≤' + format(goal, 'g'):>6} {verdict(total, goal)}" if version == "now" else ""))
    if browser:
        times = dict(browser["embed"])
        print("\nIn the browser (Dataset page, 2,000 images): seconds from \"Compute the map\" to the map drawn; "
              f"the tab's first map (PCA, loading plotly.js too): {times.pop('first map in a tab')[0]:.2f}")
        for method, (first, again) in times.items():
            print(f"  {method:<7} uncached {first:6.2f}   again {again:6.2f}   goal ≤{EMBED_GOALS_S[method]:g} "
                  f"{verdict(first, EMBED_GOALS_S[method])}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photo", type=Path, help="a garment photo (default: the first t-shirt photo of "
                                               "$FASHION_MNIST_ROOT/clothing-photos-dev)")
    ap.add_argument("--run", default="flagship", help="shipped checkpoint folder to time in-process")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--no-browser", action="store_true", help="only the in-process timings")
    ap.add_argument("--embed-only", action="store_true", help="only the embedding map's timings")
    ap.add_argument("--pages-only", action="store_true", help="only the pages' cold and warm renders")
    ap.add_argument("--embed-size", type=int, default=2000, help="images in the in-process maps")
    ap.add_argument("--embed-worker", nargs=3, help=argparse.SUPPRESS)  # VERSION METHOD N, in a fresh process
    args = ap.parse_args()
    if not os.environ.get("FASHION_MNIST_ROOT"):
        sys.exit("set FASHION_MNIST_ROOT to the real data (e.g. /work/shared/data)")
    if args.embed_worker:
        version, method, n = args.embed_worker
        return embed_worker(version, method, int(n))
    if args.embed_only:
        maps = embed_timings(list(EMBED_GOALS_S), args.embed_size)
        print_embed_report(maps, None if args.no_browser else browser_timings(None, None, "embed"),
                           args.embed_size)
        return
    if args.pages_only:
        return print_pages(browser_timings(None, None, "pages"))
    # the dev photos sit beside Fashion-MNIST in the shared data folder
    photo = args.photo or sorted((Path(os.environ["FASHION_MNIST_ROOT"]) / "clothing-photos-dev" / "t-shirt").glob("*.jpg"))[0]
    run = Run(CHECKPOINT_DIR / args.run)
    image28 = prepare(load_image(photo.read_bytes())).image28
    rows = in_process(run, image28, args.repeats)
    web = None if args.no_browser else browser_timings(photo, args.run)
    maps = embed_timings(list(EMBED_GOALS_S), args.embed_size)
    print_report(rows, web, run, photo)
    print_embed_report(maps, web, args.embed_size)


if __name__ == "__main__":
    main()
