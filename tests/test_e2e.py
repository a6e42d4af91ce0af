"""End to end: `streamlit run` on 127.0.0.1 driven by headless Chromium (Debian's package).

Visits every page (in a 1400 px and a 900 px wide window), classifies an uploaded PNG and waits for an
attribution, trains a 1-epoch job on tiny data to completion, and saves a screenshot of each step under
screenshots/e2e/ (the 900 px ones end in -900).
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from conftest import private_runs
from PIL import Image

from browser import CHROMIUM, PAGES, REPO, launch, open_page, serve_app, wait_idle

playwright_api = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}")
SHOTS = Path(os.environ.get("E2E_SCREENSHOTS", REPO / "screenshots" / "e2e"))


def garment_png() -> bytes:
    """A dark trouser-like shape on a light background, like a phone photo of a garment."""
    img = np.full((240, 180, 3), 235, np.uint8)
    img[30:210, 50:85] = (40, 40, 60)
    img[30:210, 95:130] = (40, 40, 60)
    img[30:60, 50:130] = (40, 40, 60)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def app(tmp_path_factory, fake_root, tiny_run):
    tmp = tmp_path_factory.mktemp("e2e")
    env = {"FASHION_MNIST_ROOT": str(fake_root), "FASHION_RUNS_DIR": str(private_runs(tiny_run, tmp).path.parent),
           "FASHION_JOBS_DIR": str(tmp / "jobs")}
    with serve_app(env, tmp / "streamlit.log") as url, playwright_api.sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 1400, "height": 2400})
        yield page, url
        browser.close()


def no_exception(page) -> None:
    assert page.locator("[data-testid='stException']").count() == 0, page.inner_text("[data-testid='stMain']")


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def test_every_page_renders(app):
    page, url = app
    # a deep link first: on a fresh server Streamlit would run pages/train.py without the router
    for name in ["Train", *[n for n in PAGES if n != "Train"]]:
        open_page(page, url, name)
        no_exception(page)
        sidebar = page.inner_text("[data-testid='stSidebar']")
        assert "Device:" in sidebar and "Predict & explain" in sidebar, sidebar
        page.wait_for_timeout(1000)  # tables, charts and images draw after the script run
        shot(page, f"page-{name.lower()}")


# the numbers in a confusion matrix's cells (its chart's key): (text, left, top, right, bottom) in pixels
CELL_TEXTS_JS = """(key) => [...document.querySelectorAll('.st-key-' + key + ' g.hm text')].map(t => {
  const b = t.getBoundingClientRect(); return [t.textContent, b.left, b.top, b.right, b.bottom]; })"""


def test_every_page_fits_a_900_px_window(app, tiny_run):
    page, url = app
    narrow = page.context.browser.new_page(viewport={"width": 900, "height": 2400})
    try:
        for name in PAGES:
            open_page(narrow, url, name)
            no_exception(narrow)
            assert narrow.evaluate("document.querySelector('[data-testid=\"stMain\"]').scrollWidth") <= 900
            narrow.wait_for_timeout(1000)  # tables and charts draw after the script run
            shot(narrow, f"page-{name.lower()}-900")
            if name == "Compare":  # the matrix's numbers side by side, none over another
                key = f"cm-{tiny_run.name}"
                narrow.locator(f".st-key-{key}").scroll_into_view_if_needed()
                narrow.wait_for_function(f"({CELL_TEXTS_JS})('{key}').length === 100", timeout=60_000)
                cells = narrow.evaluate(CELL_TEXTS_JS, key)
                chart = narrow.locator(f".st-key-{key}").bounding_box()
                assert all(chart["x"] <= c[1] and c[3] <= chart["x"] + chart["width"] for c in cells)
                rows = sorted(cells, key=lambda c: (round(c[2]), c[1]))
                for a, b in zip(rows, rows[1:]):
                    assert round(a[2]) != round(b[2]) or a[3] <= b[1], (a, b)  # same row: a ends before b
                shot(narrow, "compare-matrix-900")
    finally:
        narrow.close()


def test_upload_predicts_and_explains(app, tiny_run):
    page, url = app
    open_page(page, url, "Predict")
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(
        {"name": "trousers.png", "mimeType": "image/png", "buffer": garment_png()})
    page.get_by_text("Preprocessing").wait_for(timeout=60_000)
    page.locator("[data-testid='stAlertContentSuccess']").wait_for(timeout=60_000)
    page.get_by_text("Integrated Gradients ·").wait_for(timeout=120_000)
    wait_idle(page, 120_000)
    no_exception(page)
    assert page.locator("[data-testid='stImage']").count() >= 4  # steps + heat maps
    shot(page, "predict-upload")
    for name in ("Dataset", "Predict & explain"):  # the uploader comes back empty; the photo does not go
        page.locator("[data-testid='stSidebarNav'] a", has_text=name).click()
        wait_idle(page)
    page.get_by_text("Showing your last upload").wait_for(timeout=60_000)
    page.locator("[data-testid='stAlertContentSuccess']").wait_for(timeout=60_000)
    no_exception(page)
    page.get_by_role("button", name="Forget this photo").click()  # the uploader is empty: this clears it
    # gone once the rerun is drawn (a busy machine can start it later than wait_idle's grace)
    page.get_by_text("Showing your last upload").wait_for(state="detached", timeout=60_000)
    wait_idle(page)
    assert page.get_by_text("Showing your last upload").count() == 0
    assert page.locator("[data-testid='stAlertContentSuccess']").count() == 0
    no_exception(page)


def test_confusion_matrix_cell_click_shows_its_images(app, tiny_run):
    page, url = app
    open_page(page, url, "Compare")
    page.get_by_role("tab", name=tiny_run.name).click()
    chart = page.locator(f".st-key-cm-{tiny_run.name}")
    chart.scroll_into_view_if_needed()
    cell = chart.locator(".scatterlayer .points path").nth(3 * 10 + 3)  # true Dress, predicted Dress
    cell.wait_for()  # the tab's matrix is drawn once the tab is opened
    box = cell.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.get_by_text("True Dress, predicted Dress").wait_for(timeout=60_000)
    wait_idle(page)
    no_exception(page)
    shot(page, "compare-cell")


def test_train_job_runs_to_done(app):
    page, url = app
    open_page(page, url, "Train")
    model = page.get_by_role("combobox", name="model", exact=True)
    model.click()
    model.fill("mlp_baseline")
    model.press("Enter")
    wait_idle(page)
    page.get_by_role("tab", name="Schedule").click()
    epochs = page.get_by_label("epochs", exact=True)
    epochs.fill("1")
    epochs.press("Enter")
    wait_idle(page)
    page.get_by_role("button", name="Start training").click()
    page.get_by_text("Queued job").wait_for(timeout=30_000)
    page.locator("summary", has_text="done").first.wait_for(timeout=180_000)
    no_exception(page)
    shot(page, "train-done")


def test_embedding_map_hover_shows_the_image(app):
    page, url = app
    open_page(page, url, "Dataset")
    page.get_by_role("tab", name="Embedding map").click()
    page.wait_for_url(lambda u: "ds.tab=Embedding" in u, timeout=30_000)  # a reload opens this tab again
    page.get_by_role("button", name="Compute the map").click()
    wait_idle(page, 120_000)
    frame = page.frame_locator("iframe").first
    frame.locator(".js-plotly-plot .main-svg").first.wait_for(state="attached", timeout=60_000)
    assert "hover a point" in frame.locator("#hover-preview").inner_text()
    # move the real mouse onto the first point of the first class
    x, y = frame.locator("body").evaluate(
        "b => { const p = document.querySelector('.js-plotly-plot'), L = p._fullLayout, d = p._fullData[0];"
        " return [L._size.l + L.xaxis.l2p(d.x[0]), L._size.t + L.yaxis.l2p(d.y[0])]; }")
    box = page.locator("iframe").first.bounding_box()
    page.mouse.move(box["x"] + x + 30, box["y"] + y + 30)
    page.mouse.move(box["x"] + x, box["y"] + y, steps=5)
    frame.locator("#hover-preview img").wait_for(timeout=10_000)
    assert frame.locator("#hover-preview img").get_attribute("src").startswith("data:image/png")
    no_exception(page)
    shot(page, "dataset-embedding-hover")


def test_choices_survive_a_visit_to_other_pages_and_a_reload(app):
    page, url = app

    def chosen() -> list[str]:
        return [r.inner_text() for r in page.locator("[data-testid='stRadio'] label:has(input:checked)").all()]

    def visit(name: str) -> None:
        page.locator("[data-testid='stSidebarNav'] a", has_text=name).click()
        # on a busy machine the page can change later than wait_idle's grace: wait for its address first
        page.wait_for_url(lambda u: urlsplit(u).path.rstrip("/").endswith(f"/{PAGES[name]}"), timeout=60_000)
        wait_idle(page)

    open_page(page, url, "Predict")
    page.get_by_text("Test image", exact=True).click()
    wait_idle(page)
    index = page.get_by_label("Test image index", exact=False)
    index.fill("7")
    index.press("Enter")
    wait_idle(page)
    visit("Train")  # a page with a timer fragment, where Streamlit used to drop the Predict widgets' values
    page.wait_for_timeout(3000)
    visit("Predict")
    assert "Test image" in chosen() and page.get_by_label("Test image index", exact=False).input_value() == "7"
    page.reload()
    wait_idle(page)
    page.get_by_text("Test image index").wait_for(timeout=60_000)
    assert "Test image" in chosen() and page.get_by_label("Test image index", exact=False).input_value() == "7"
    no_exception(page)
    # a link written by hand names runs plainly, and the page keeps them there (not their changing labels)
    page.goto(f"{url}/compare?cmp.runs=flagship&cmp.runs=r002_mlp_baseline&cmp.runs=no_such_run")
    page.wait_for_selector("h1", timeout=60_000)
    wait_idle(page)
    picked = page.locator("[data-testid='stMultiSelect']").first.inner_text()
    assert "flagship · flagship" in picked and "r002_mlp_baseline" in picked and "ensemble" not in picked
    assert page.url.endswith("?cmp.runs=flagship&cmp.runs=r002_mlp_baseline")
    page.goto(f"{url}/predict?pr.run=r002_mlp_baseline")
    page.wait_for_selector("h1", timeout=60_000)
    wait_idle(page)
    assert page.get_by_role("combobox", name="Model", exact=True).input_value().startswith("r002_mlp_baseline · ")
    no_exception(page)
