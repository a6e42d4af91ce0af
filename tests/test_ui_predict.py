"""Predict explains on the photo itself: the attribution maps mapped back onto the uploaded photo (the
engine's inverse of fit28, checked pixel by pixel), the overlay toggle and colour scale, all chosen
methods, readable top-k bars at k = 10, and "Compare with" that adds no photo runs unasked and shows
each compared run's own unsure state."""
from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from apptest import fresh_caches, ready  # noqa: F401 (fixtures)
from PIL import Image
from streamlit.testing.v1 import AppTest

from fashion_core import explain
from fashion_core.data import CLASSES
from fashion_core.photos.pipeline import fit28, load_image, prepare, working_copy
from ui.charts import top_k_bars

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")


# --- the engine: a 28x28 map back onto the photo ------------------------------------------------

def expected_spot(r: int, c: int, box: tuple[int, int, int, int]) -> tuple[float, float]:
    """Where pixel (r, c) of fit28's output comes from on the photo: the centre of its block of the
    centred square, moved by the square's padding and the box's corner."""
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0)
    left, top = (side - (x1 - x0)) // 2, (side - (y1 - y0)) // 2
    scale = side / 28
    return y0 - top + (r + 0.5) * scale - 0.5, x0 - left + (c + 0.5) * scale - 0.5


@pytest.mark.parametrize("box", [(30, 50, 130, 250), (10, 40, 190, 100), (0, 0, 200, 300), (57, 61, 98, 102)])
@pytest.mark.parametrize("pixel", [(0, 0), (7, 14), (13, 27), (27, 5), (20, 20)])
def test_a_hot_pixel_of_the_input_lands_where_it_came_from_on_the_photo(box, pixel):
    shape = (300, 200)
    attr = np.zeros((28, 28), np.float32)
    attr[pixel] = 1.0
    on_photo = explain.onto_photo(attr, box, shape)
    assert on_photo.shape == shape
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0)
    y, x = np.unravel_index(on_photo.argmax(), shape)
    ey, ex = expected_spot(*pixel, box)
    if y0 <= ey < y1 and x0 <= ex < x1:  # the pixel's centre lies on the photo, not in the square's padding
        assert abs(y - ey) <= 1 and abs(x - ex) <= 1, ((y, x), (ey, ex))
        assert on_photo.max() >= (1 - 0.5 * 28 / side) ** 2 - 1e-6  # the whole pixel's weight, bar bilinear's share
    # nothing lands outside the garment box (the model never saw the rest of the photo) ...
    outside = np.ones(shape, bool)
    outside[y0:y1, x0:x1] = False
    assert on_photo[outside].max(initial=0) == 0
    # ... or further from the pixel's block than the bilinear spread of one 28x28 pixel
    ys, xs = np.nonzero(on_photo)
    assert np.all(np.abs(ys - ey) < 1.5 * side / 28 + 1) and np.all(np.abs(xs - ex) < 1.5 * side / 28 + 1)


def test_mapping_back_then_preparing_again_gives_the_same_pixel():
    """Round trip through the real fit28: a map's hot pixel, drawn onto the photo, is the pixel that
    fit28 makes from that part of the photo."""
    box, shape = (40, 20, 140, 260), (300, 200)
    for pixel in [(3, 10), (14, 14), (25, 18)]:  # columns 9..19 hold the crop, the rest is padding
        attr = np.zeros((28, 28), np.float32)
        attr[pixel] = 1.0
        back = fit28(explain.onto_photo(attr, box, shape), box)
        assert np.unravel_index(back.argmax(), back.shape) == pixel


def test_the_input_itself_mapped_back_covers_the_garment_on_the_photo():
    photo = load_image(png_bytes(trouser()))
    prepared = prepare(photo)
    rgb = working_copy(photo)
    on_photo = explain.onto_photo(prepared.image28.astype(np.float32), prepared.box, rgb.shape[:2])
    garment = on_photo > 40  # the bright garment of the input lands on the garment mask
    assert (garment & prepared.mask).sum() > 0.8 * garment.sum()
    overlay = explain.photo_overlay_rgb(rgb, prepared.image28.astype(np.float32), prepared.box)
    assert overlay.shape == rgb.shape and overlay.dtype == np.uint8
    shown = explain.around_box(overlay, prepared.box)
    x0, y0, x1, y1 = prepared.box
    assert shown.shape[0] >= y1 - y0 and shown.shape[1] >= x1 - x0  # the whole garment, a margin around it


def test_the_colour_scale_runs_from_blue_against_to_red_for():
    scale = explain.colour_scale(9).astype(int)
    assert scale[0, 2] > scale[0, 0] and scale[-1, 0] > scale[-1, 2]  # blue at -1, red at +1
    assert len(set(scale[4])) == 1  # 0: the grey photo, no colour


# --- the top-k bars ----------------------------------------------------------------------------

def test_ten_bars_get_room_and_a_label_each():
    probs = np.array([0.30, 0.2, 0.15, 0.1, 0.08, 0.07, 0.05, 0.03, 0.02, 0.0])
    five, ten = top_k_bars(probs, 5), top_k_bars(probs, 10, unsure=True)
    assert len(ten.data[0].y) == 10 and ten.data[0].y[-1] == CLASSES[0]  # the likeliest on top
    assert ten.layout.height - five.layout.height >= 5 * 24  # the chart grows with k instead of squeezing bars
    assert all(ten.data[0].text) and ten.data[0].textposition[0] == "outside"  # even a 0% bar is labelled
    assert ten.data[0].marker.color != five.data[0].marker.color  # unsure bars look unsure
    assert not ten.layout.title.text  # no title for plotly to cut off: the page writes it above


# --- the page ----------------------------------------------------------------------------------


@pytest.fixture
def photo_runs(ready, tmp_path, monkeypatch):
    """Runs "photo_a" and "photo_b" marked as fine-tuned on photos (photo_dir), and "plain", which is not."""
    runs, photos = tmp_path / "runs", tmp_path / "photos"
    (photos / "pants").mkdir(parents=True)
    for name in ("photo_a", "photo_b", "plain"):
        shutil.copytree(ready.path, runs / name)
        if name != "plain":
            cfg = json.loads((runs / name / "config.json").read_text())
            (runs / name / "config.json").write_text(json.dumps({**cfg, "photo_dir": str(photos)}))
    monkeypatch.setenv("FASHION_RUNS_DIR", str(runs))
    return runs


def start(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page(page)
    return at.run()


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def trouser() -> Image.Image:
    arr = np.full((120, 90), 230, np.uint8)
    arr[10:110, 20:40] = 30
    arr[10:110, 50:70] = 30
    arr[10:25, 20:70] = 30
    return Image.fromarray(arr).convert("RGB")


def upload(at: AppTest) -> AppTest:
    at.file_uploader(key="pr.upload").upload("trouser.png", png_bytes(trouser()), "image/png")
    return at.run()


def captions(at: AppTest) -> list[str]:
    return [c for img in at.get("image") for c in img.captions]


def charts(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def test_each_method_is_drawn_large_on_the_photo_and_the_overlay_can_be_hidden(ready):
    at = upload(start("pages/predict.py"))
    assert not at.exception and not at.error
    chosen = at.multiselect(key="pr.methods").value
    assert len(chosen) >= 5  # every method the model offers, all shown (the box is the page's full width)
    assert captions(at).count("on the photo") == len(chosen)
    assert "heat map" in captions(at) and "overlay" in captions(at)  # the 28x28 maps are still there
    page = "\n".join(str(e.proto) for e in at.get("html"))
    assert "strongest against" in page and "strongest for" in page  # the colour scale
    at.toggle(key="pr.on_photo").set_value(False).run()
    assert not at.exception
    assert "on the photo" not in captions(at) and captions(at).count("the photo (map hidden)") == len(chosen)


def test_a_test_image_has_no_photo_and_keeps_its_maps(ready):
    at = start("pages/predict.py")
    at.radio(key="pr.source").set_value("Test image").run()
    assert not at.exception and not at.error
    assert "on the photo" not in captions(at) and "heat map" in captions(at)
    assert not at.toggle  # nothing to draw the maps over


def test_top_k_of_ten_draws_ten_readable_bars(ready):
    at = upload(start("pages/predict.py"))
    at.slider(key="pr.k").set_value(10).run()
    assert not at.exception
    (bars,) = charts(at)
    assert len(bars["data"][0]["y"]) == 10 and bars["layout"]["height"] >= 10 * 28
    assert "title" not in bars["layout"] or not bars["layout"]["title"].get("text")
    assert any(e.value.startswith(f"**{ready.name}**") for e in at.markdown)  # the run named above its chart


def test_compare_with_adds_no_photo_runs_unasked(photo_runs):
    at = upload(start("pages/predict.py"))
    assert not at.exception
    assert at.selectbox(key="pr.run").value in ("photo_a", "photo_b")  # a photo run answers photos
    assert at.multiselect(key="pr.others").value == [] and len(charts(at)) == 1
    at = start("pages/predict.py")
    at.radio(key="pr.source").set_value("Test image").run()
    assert not at.exception
    assert at.multiselect(key="pr.others").value == ["plain"]  # a test image: runs of Fashion-MNIST alone


def test_each_compared_run_says_unsure_by_its_own_threshold(photo_runs):
    (photo_runs / "plain" / "calibration.json").write_text(
        json.dumps({"temperature": 1.0, "threshold": 1.0, "source": "test"}))  # never sure
    for name in ("photo_a", "photo_b"):
        (photo_runs / name / "calibration.json").write_text(
            json.dumps({"temperature": 1.0, "threshold": 0.0, "source": "test"}))  # always sure
    at = upload(start("pages/predict.py"))
    main = at.selectbox(key="pr.run").value
    at.multiselect(key="pr.others").set_value(["plain", "photo_b" if main == "photo_a" else "photo_a"]).run()
    assert not at.exception and not at.error
    unsure = [e.value for e in at.warning]
    sure = [e.value for e in at.success]
    assert len(unsure) == 1 and unsure[0].startswith("**Unsure — ")  # plain's card, worded like the main answer
    assert len(sure) == 2 and sure[0].endswith(f"— {main}")  # the main answer, then the sure compared run
    assert "calibrated confidence" in sure[1]
    assert len(charts(at)) == 3
    colours = [c["data"][0]["marker"]["color"] for c in charts(at)]
    assert colours[0] == colours[2] != colours[1]  # the unsure run's bars stand out like its banner
