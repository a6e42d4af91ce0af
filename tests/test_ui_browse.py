"""Browsing the app: links that name a run no one has, what the URL holds and how Back leaves a page,
gallery paging, short runs against the reports, the embedding map's speed-ups, and charts that fit a
narrow window. AppTest for the pages, headless Chromium (Debian's) for the address bar and history."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from apptest import fresh_caches, open_tab, ready  # noqa: F401 (fixtures)
from conftest import private_runs
from streamlit.testing.v1 import AppTest

import fashion_core.data as fdata
from browser import CHROMIUM, launch, serve_app, wait_idle
from fashion_core import compare, dataset_stats as ds
from fashion_core.runs import Run
from ui.charts import confusion_figure
import ui
from ui.embedding_view import embedding_map

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")


def start(page: str | None = None, query: dict[str, str] | None = None) -> AppTest:
    """The app as a first visit opens it: the router, then `page`, with `query` in its address."""
    at = AppTest.from_file(APP, default_timeout=120)
    for key, value in (query or {}).items():
        at.query_params[key] = value
    at.run()
    if page:
        at.switch_page(page)
        at.run()
    return at


def copy_run(run: Run, folder: Path, config: dict | None = None, evaluation: dict | None = None) -> Run:
    """A copy of run in folder with some of its config.json and eval.json values changed."""
    shutil.copytree(run.path, folder)
    for name, changes in (("config.json", config), ("eval.json", evaluation)):
        data = json.loads((folder / name).read_text())
        (folder / name).write_text(json.dumps({**data, **(changes or {})}))
    return Run(folder)


# --- links ------------------------------------------------------------------------------------------
def test_a_link_naming_an_unknown_run_says_so_and_what_it_shows_instead(ready):
    at = start("pages/compare.py", {"cmp.runs": "nope"})
    assert not at.exception
    assert [w.value for w in at.warning] == [f"No run named 'nope'; showing {ready.name} instead."]
    assert at.multiselect(key="cmp.runs").value == [ready.name]
    at = start("pages/predict.py", {"pr.run": "nope"})
    assert not at.exception
    assert f"No run named 'nope'; showing {ready.name} instead." in [w.value for w in at.warning]
    at = start("pages/compare.py", {"cmp.runs": ready.name})  # a good link: no warning
    assert not at.exception and not at.warning


def test_compare_writes_its_runs_into_the_address_only_when_they_are_not_the_default(ready, tmp_path, monkeypatch):
    shutil.copytree(ready.path, tmp_path / "checkpoints" / "other")
    at = start("pages/compare.py")
    assert not at.exception and set(at.multiselect(key="cmp.runs").value) == {"other", ready.name}
    assert "cmp.runs" not in at.query_params  # a first visit leaves the address (and the history) alone
    at.multiselect(key="cmp.runs").set_value(["other"]).run()
    assert not at.exception and at.query_params["cmp.runs"] in ("other", ["other"])  # the user's choice is kept


# --- gallery paging ------------------------------------------------------------------------------------
def test_gallery_page_comes_from_the_address_and_restarts_at_one_for_other_images(ready):
    at = start("pages/dataset.py", {"ds.page": "5"})
    assert not at.exception and at.number_input(key="ds.page").value == 5
    at.multiselect(key="ds.classes").set_value(["Trouser"]).run()  # 60 trousers: 3 pages of 24
    assert not at.exception and at.number_input(key="ds.page").value == 1
    assert at.number_input(key="ds.page").label == "Page (of 3)"
    at.number_input(key="ds.page").set_value(3).run()
    at.radio(key="ds.split").set_value("test").run()
    assert not at.exception and at.number_input(key="ds.page").value == 1
    at.multiselect(key="ds.classes").set_value([]).run()
    at.number_input(key="ds.page").set_value(4).run()  # images 72..95 of 24 a page
    at.selectbox(key="ds.per_page").set_value(48).run()
    assert not at.exception and at.number_input(key="ds.page").value == 2  # 72 is on page 2 of 48 a page


# --- short runs against the reports -----------------------------------------------------------------------
def test_a_run_shorter_than_its_reports_recipe_says_how(ready, tmp_path):
    assert compare.short_of_recipe(ready) == "2 of the recipe's 100 epochs"  # report 002's recipe: 100 epochs
    subset = copy_run(ready, tmp_path / "subset", {"train_subset": 300, "epochs": 100}, {"epochs": 100})
    assert compare.short_of_recipe(subset) == "300 training images"
    stopped = copy_run(ready, tmp_path / "stopped", {"epochs": 60}, {"epochs": 37})  # early stopping ended it
    assert compare.short_of_recipe(stopped) == ""
    capped = copy_run(ready, tmp_path / "capped", {"model": "resnet", "note": "reproduction, epochs capped"})
    assert compare.short_of_recipe(capped) == "epochs capped at 2, as its note says"
    ours = copy_run(ready, tmp_path / "ours", {"model": "flagship"})
    assert compare.short_of_recipe(ours) == ""  # no report's recipe to fall short of


def test_overview_draws_short_runs_grey_and_says_so(ready, tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    shutil.copytree(ready.path, runs / "short")
    copy_run(ready, runs / "full", {"epochs": 100}, {"epochs": 40, "test_accuracy": 80.0})  # stopped early
    monkeypatch.setenv("FASHION_RUNS_DIR", str(runs))
    at = start()
    assert not at.exception
    caption = next(c.value for c in at.caption if "match or beat" in c.value)
    assert caption.startswith("1 of 2 runs match or beat the test accuracy their model's report gives; of the 1 "
                              "trained on the report's whole recipe, 0 do (green line; red: below it). Grey: short "
                              "runs")
    chart = json.loads(at.get("plotly_chart")[0].proto.spec)["data"]
    lines = {t["y"][0]: t["line"]["color"] for t in chart if t.get("mode") == "lines"}
    assert lines == {"short": "#c7c7c7", "full": "#d62728"}  # grey for the short run, red for the full one below
    dots = {t["name"]: t for t in chart if t.get("mode") == "markers"}
    assert dots["measured on a short run (grey line)"]["y"] == ["short"]
    assert "short run: %{customdata[1]}" in dots["measured on a short run (grey line)"]["hovertemplate"]
    assert dots["measured on a short run (grey line)"]["customdata"][0][1] == "2 of the recipe's 100 epochs"


def test_leaderboard_shows_rank_run_and_accuracy_first(ready):
    at = start()
    assert not at.exception
    assert list(at.dataframe[0].value.columns[:3]) == ["rank", "run", "test_accuracy"]
    assert any("scrolls sideways" in c.value for c in at.caption)


# --- the embedding map -----------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["PCA", "t-SNE"])
def test_embedding_is_the_same_for_the_same_seed_and_kept_on_disk(fake_root, tmp_path, monkeypatch, method):
    data = fdata.load_split(True, fake_root)
    images = data.images[ds.sample(data.labels, 200, seed=1)]
    xy = ds.embed(images, method, seed=1, cache_dir=tmp_path)
    assert xy.shape == (200, 2) and np.isfinite(xy).all()
    assert np.allclose(ds.embed(images, method, seed=1), xy)  # deterministic without the cache too
    assert len(list(tmp_path.glob("*.npy"))) == 1

    def boom(*args):
        raise AssertionError("computed again")

    monkeypatch.setattr(ds, "_embed", boom)
    assert np.array_equal(ds.embed(images, method, seed=1, cache_dir=tmp_path), xy)  # from the disk


def test_pca_map_separates_the_classes(fake_root):
    data = fdata.load_split(True, fake_root)  # each class is a bright block in its own place
    xy = ds.embed(data.images, "PCA")
    centres = np.stack([xy[data.labels.numpy() == c].mean(0) for c in range(10)])
    spread = np.linalg.norm(xy - xy.mean(0), axis=1).mean()
    assert np.linalg.norm(centres[:, None] - centres[None], axis=2)[~np.eye(10, dtype=bool)].max() > spread


def test_embedding_map_sends_points_and_one_sheet_of_images_not_plotly(fake_root):
    data = fdata.load_split(False, fake_root)
    idx = np.arange(120)
    images = data.images[idx].numpy()
    sheet = ds.contact_sheet(images, columns=50)
    assert sheet.shape == (3 * 28, 50 * 28) and np.array_equal(sheet[28:56, 28 * 3:28 * 4], images[53])
    drawing = embedding_map(np.random.default_rng(0).normal(size=(120, 2)), data.labels[idx].numpy(), images, idx)
    figure = json.loads(drawing["figure"])
    assert len(figure["data"]) == 10 and len(drawing["figure"]) < 100_000  # points, not plotly's 4.6 MB
    assert "data:image" not in drawing["figure"] and drawing["sheet"].startswith("data:image/png;base64,")
    page = (Path(ui.__file__).parent / "embedding_map" / "index.html").read_text()
    assert "Plotly.react" in page and "plotly_hover" in page  # redrawn in place, hover wired


def test_dataset_page_draws_the_map(ready):
    at = open_tab(start("pages/dataset.py"), "ds.tab", "Embedding map")
    next(b for b in at.button if b.label == "Compute the map").click().run()
    assert not at.exception and not at.error
    assert any(c.value.startswith("PCA of 600 train images (seed 0)") for c in at.caption)
    assert list((fdata.CACHE_DIR / "embeddings").glob("pca-600-*.npy"))  # kept for the next app start


# --- charts that fit the window -----------------------------------------------------------------------
def test_confusion_matrix_fills_its_width_with_square_clickable_cells():
    cm = np.diag(np.full(10, 90.0)) + 1
    fig = confusion_figure(cm, normalise=False)
    assert fig.layout.width is None and fig.layout.xaxis.scaleanchor == "y"  # the chart's width, square cells
    heat, clicks = fig.data
    assert heat.type == "heatmap" and heat.hoverinfo == "skip"  # numbers and colours scale with the cells
    assert clicks.type == "scatter" and len(clicks.x) == 100 and (clicks.x[33], clicks.y[33]) == (3, 3)
    assert clicks.text[33] == "91" and clicks.customdata[12] == ["Trouser", "Pullover"]


# --- in Chromium: the address bar and Back -----------------------------------------------------------------
@pytest.fixture(scope="module")
def browser_app(tmp_path_factory, fake_root, tiny_run):
    playwright_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    tmp = tmp_path_factory.mktemp("browse")
    env = {"FASHION_MNIST_ROOT": str(fake_root), "FASHION_RUNS_DIR": str(private_runs(tiny_run, tmp).path.parent),
           "FASHION_JOBS_DIR": str(tmp / "jobs"), "FASHION_CORE_CACHE": str(tmp / "cache")}
    with serve_app(env, tmp / "streamlit.log") as url, playwright_api.sync_playwright() as p:
        browser = launch(p)
        page = browser.new_page(viewport={"width": 900, "height": 1400})
        yield page, url
        browser.close()


def settled(page, path: str) -> None:
    page.wait_for_url(lambda u: urlsplit(u).path.rstrip("/") == path.rstrip("/"), timeout=60_000)
    wait_idle(page)


def test_one_back_press_leaves_compare(browser_app):
    page, url = browser_app
    page.goto(f"{url}/")
    settled(page, "/")
    page.locator("[data-testid='stSidebarNav'] a", has_text="Compare").click()
    settled(page, "/compare")
    page.wait_for_timeout(1000)  # a late write of the address would come now
    page.go_back()
    settled(page, "/")
    assert page.locator("h1").first.inner_text() == "Fashion-MNIST workbench"


def query(page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def test_gallery_page_lives_in_the_address_and_a_filter_starts_it_again(browser_app):
    from playwright.sync_api import expect

    page, url = browser_app
    page.goto(f"{url}/dataset?ds.page=3")
    settled(page, "/dataset")
    box = page.get_by_label("Page (of", exact=False)
    expect(box).to_have_value("3", timeout=30_000)  # a link to a gallery page opens it
    box.fill("5")
    box.press("Enter")
    page.wait_for_url(lambda u: parse_qs(urlsplit(u).query).get("ds.page") == ["5"], timeout=30_000)
    page.locator("[data-testid='stMultiSelect']").first.click()
    page.get_by_role("option", name="Trouser").click()
    page.keyboard.press("Escape")
    page.wait_for_url(lambda u: parse_qs(urlsplit(u).query).get("ds.classes") == ["Trouser"], timeout=30_000)
    wait_idle(page)
    expect(box).to_have_value("1", timeout=30_000)  # another filter: the first page of its images
    assert "ds.page" not in query(page)
    page.goto(f"{url}/compare?cmp.runs=nope")
    settled(page, "/compare")
    page.get_by_text("No run named 'nope'; showing tiny, ").wait_for(timeout=30_000)  # and the shipped runs' best
