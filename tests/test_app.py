"""AppTest tests for every page, with and without data and runs, plus the train form, a
prediction from a generated PNG and the bad-input cases (never a traceback on the page)."""
from __future__ import annotations

import io
import os
import subprocess
import sys
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from apptest import APP, empty, fresh_caches, open_tab, ready, start, text_of  # noqa: F401 (fixtures)
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

import fashion_core.data as fdata
import fashion_core.runs as fruns
from fakedata import write_idx
from fashion_core import jobs
from fashion_core.data import CLASSES

PAGES = ["pages/overview.py", "pages/dataset.py", "pages/train.py", "pages/compare.py", "pages/tune.py",
         "pages/predict.py"]


@pytest.mark.parametrize("page", PAGES)
def test_pages_open_with_no_data_and_no_runs(empty, page):
    at = start(page)
    assert not at.exception
    assert at.title, "every page draws its title"
    if page in ("pages/dataset.py", "pages/train.py"):
        assert any("Download Fashion-MNIST" in b.label for b in at.button)
        assert "t10k-labels-idx1-ubyte.gz" in text_of(at)  # names the four files and where they go
    if page in ("pages/compare.py", "pages/predict.py", "pages/overview.py"):
        assert "no evaluated runs" in text_of(at).lower() or "No evaluated runs" in text_of(at)


def test_compare_and_predict_work_from_shipped_checkpoints_without_data(empty, tiny_run, monkeypatch):
    monkeypatch.setattr(fruns, "CHECKPOINT_DIR", tiny_run.path.parent)  # the tiny run plays "shipped"
    at = start("pages/compare.py")
    assert not at.exception and not at.error
    assert at.multiselect(key="cmp.runs").format_func(tiny_run.name).endswith(" · shipped")
    at = upload(start("pages/predict.py"), "trouser.png", png_bytes(trouser()))
    assert not at.exception and answers(at)
    assert "calibrated confidence" in text_of(at).lower()  # T = 1 without data: no crash, says so
    assert "Test image" not in at.radio(key="pr.source").options  # no test set without the data


def test_a_run_shipped_without_weights_is_compared_but_not_offered_for_prediction(empty, tiny_run, monkeypatch):
    ck = empty / "checkpoints"
    shutil.copytree(tiny_run.path, ck / "small")
    shutil.copytree(tiny_run.path, ck / "huge", ignore=shutil.ignore_patterns("*.pt"))  # evaluation only
    monkeypatch.setattr(fruns, "CHECKPOINT_DIR", ck)
    at = start("pages/compare.py")
    assert not at.exception and not at.error
    assert "evaluation only" in at.multiselect(key="cmp.runs").format_func("huge")
    at = start("pages/overview.py")
    assert not at.exception and "evaluation only" in at.dataframe[0].value.to_string()
    at = start("pages/predict.py")
    options = at.selectbox(key="pr.run").options
    assert not at.exception and len(options) == 1 and options[0].startswith("small")


def test_damaged_data_files_are_reported_on_the_page_not_as_a_traceback(empty, monkeypatch):
    root = write_idx(empty / "data", n_train=50, n_test=20)
    (root / "FashionMNIST" / "raw" / "t10k-images-idx3-ubyte").write_bytes(b"garbage")
    for page in ("pages/dataset.py", "pages/predict.py"):
        at = start(page)
        assert not at.exception
        if page == "pages/dataset.py":
            assert "could not be read" in text_of(at) and "damaged" in text_of(at)


def test_a_users_run_with_a_shipped_runs_name_hides_neither(ready, tmp_path, monkeypatch):
    shutil.copytree(ready.path, tmp_path / "checkpoints" / ready.name)  # shipped, same folder name
    monkeypatch.setattr(fruns, "CHECKPOINT_DIR", tmp_path / "checkpoints")
    at = start("pages/compare.py")
    picker = at.multiselect(key="cmp.runs")
    assert not at.exception and len(picker.options) == 2
    assert {o.split(" · ")[-1] for o in picker.options} == {"shipped", "yours"}  # each says whose it is
    at = picker.set_value(picker.options).run()  # both picked: curves, tables and matrices side by side
    assert not at.exception and len(at.tabs) == 2
    at = start("pages/predict.py")
    assert not at.exception and len(at.selectbox(key="pr.run").options) == 2


def test_download_panel_fills_the_data_and_shows_the_page(empty, monkeypatch):
    seen = []

    def fake_download(root, on_progress=None):
        for f in (0.25, 0.5, 1.0):
            seen.append(f)
            on_progress(f, "train-images-idx3-ubyte.gz")
        write_idx(Path(root), n_train=100, n_test=50)

    monkeypatch.setattr(fdata, "download", fake_download)
    at = start("pages/dataset.py")
    next(b for b in at.button if "Download" in b.label).click().run()
    assert not at.exception and seen == [0.25, 0.5, 1.0]
    assert not any("Download" in b.label for b in at.button)
    assert at.tabs, "the dataset page shows its tabs once the data is there"


def test_download_failure_says_where_the_files_go(empty, monkeypatch):
    def offline(root, on_progress=None):
        raise fdata.DataMissingError(fdata.missing_files_message(Path(root)))

    monkeypatch.setattr(fdata, "download", offline)
    at = start("pages/train.py")
    next(b for b in at.button if "Download" in b.label).click().run()
    assert not at.exception
    assert any("download failed" in e.value for e in at.error)


@pytest.mark.parametrize("page", PAGES)
def test_pages_open_with_data_and_runs(ready, page):
    at = start(page)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    sidebar = " ".join(c.value for c in at.sidebar.caption)  # the router's shared sidebar
    assert "Device:" in sidebar and "Data:** Fashion-MNIST ready" in sidebar and "Jobs:" in sidebar


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_beside_damaged_run_folders(ready, tmp_path, monkeypatch, page):
    from test_hardening import damaged_folders

    runs = tmp_path / "broken"
    runs.mkdir()
    shutil.copytree(ready.path, runs / "good")
    reasons = damaged_folders(runs, fruns.Run(runs / "good"))
    monkeypatch.setenv("FASHION_RUNS_DIR", str(runs))
    at = start(page)
    assert not at.exception, at.exception
    if page == "pages/overview.py":  # the good run ranks; every damaged one is listed with what is wrong
        assert set(at.dataframe[0].value["run"]) == {"good", "empty_weights", "bare_tensor"}  # weights: checked on load
        listed = at.dataframe[1].value.set_index("run")["what is wrong"]
        assert set(listed.index) == set(reasons) and all(w in listed[n] for n, w in reasons.items())
    if page == "pages/predict.py":  # a checkpoint refused on loading is a message, not a traceback
        at.selectbox(key="pr.run").set_value("empty_weights").run()
        assert not at.exception and any("refused" in e.value for e in at.error)


def test_overview_leaderboard_lists_the_run_and_points_out_the_users_own(ready, tmp_path, monkeypatch):
    ck = tmp_path / "checkpoints"
    shutil.copytree(ready.path, ck / "shipped_one")  # a shipped run next to the user's own
    monkeypatch.setattr(fruns, "CHECKPOINT_DIR", ck)
    at = start()
    table = at.dataframe[0].value
    assert set(table["run"]) == {ready.name, "shipped_one"} and list(table["rank"]) == [1, 2]
    assert table.set_index("run").loc[ready.name, "source"] == "yours"
    assert f"Your best run, **{ready.name}**, ranks" in at.success[0].value
    # the tiny runs (100% on tiny data) against their model's report (92.72%)
    assert [h.value for h in at.subheader][-1] == "Against the reports" and len(at.get("plotly_chart")) == 1
    assert "2 of 2 runs match or beat the test accuracy their model's report gives" in text_of(at)
    at.segmented_control(key="ov.show").set_value("yours").run()
    assert at.dataframe[0].value["run"].tolist() == [ready.name]
    assert "1 of 1 runs match or beat" in text_of(at)  # the chart follows the filter


def test_dataset_page_controls(ready):
    at = start("pages/dataset.py")
    at.multiselect(key="ds.classes").set_value(["Trouser"]).run()
    assert not at.exception
    at = open_tab(at, "ds.tab", "Augmentation playground")
    at.number_input(key="ds.aug_seed").set_value(3).run()
    at.toggle(key="aug.hflip_p.on").set_value(True).run()
    assert not at.exception and not at.error


def test_train_form_submits_a_job_that_finishes(ready):
    at = start("pages/train.py")
    at.selectbox(key="cfg.model").set_value("mlp_baseline")
    at.number_input(key="cfg.epochs").set_value(1)
    at.run()
    assert not at.error, [e.value for e in at.error]
    assert "mlp_baseline" in text_of(at) and "7,850" in text_of(at)  # registry card with param count
    assert "report 002 · parameters: 7,850 (the report: 7,850) · the report's test accuracy: 84.60%" in text_of(at)
    next(b for b in at.button if b.label == "Start training").click().run()
    assert not at.exception
    assert any("Queued job" in t.value for t in at.toast) and not at.success  # no banner left behind
    job = jobs.list_jobs()[0]
    deadline = time.time() + 120
    while job.state.get("state") not in jobs.FINISHED and time.time() < deadline:
        time.sleep(0.5)
        jobs.tick()
    assert job.state["state"] == "done", job.log_tail(40)
    at.run()  # a reload sees the finished job from disk
    assert any("done" in e.label for e in at.expander)
    assert "test accuracy" not in "\n".join(c.value for c in at.code)  # a finished job's log waits to be asked for
    at.toggle(key=f"show-{job.id}").set_value(True).run()
    assert "test accuracy" in "\n".join(c.value for c in at.code) and not at.exception
    # after a reload the form is back to its defaults; the job's settings come back with one click
    fresh = start("pages/train.py")
    assert fresh.selectbox(key="cfg.model").value != "mlp_baseline"
    fresh.button(key=f"load-{job.id}").click().run()
    assert fresh.selectbox(key="cfg.model").value == "mlp_baseline" and fresh.number_input(key="cfg.epochs").value == 1
    assert f"The form holds the settings of job {job.id}" in text_of(fresh)  # not the recipe's line any more
    assert any(job.id in t.value for t in fresh.toast)
    assert not fresh.exception


def test_a_second_click_on_start_training_queues_nothing_more(ready, monkeypatch):
    monkeypatch.setattr(jobs, "tick", lambda: None)  # the first job waits in the queue
    at = start("pages/train.py")
    at.selectbox(key="cfg.model").set_value("mlp_baseline")
    at.text_input(key="cfg.note").set_value("first try").run()
    next(b for b in at.button if b.label == "Start training").click().run()
    next(b for b in at.button if b.label == "Start training").click().run()
    assert len(jobs.list_jobs()) == 1 and not at.exception
    assert any("already queued" in t.value and "not queued" in t.value for t in at.toast) and not at.warning
    assert any("first try" in e.label for e in at.expander)  # the job's note is on its entry


def test_a_cancelled_job_can_be_resumed_from_the_jobs_list(ready, tmp_path, monkeypatch):
    monkeypatch.setattr(jobs, "tick", lambda: None)  # nothing starts: the test looks at the queue only
    stopped = tmp_path / "stopped_run"
    shutil.copytree(ready.path, stopped, ignore=shutil.ignore_patterns("eval.json"))  # trained part-way
    (stopped / "status.json").write_text('{"state": "cancelled"}')  # and stopped there, as a cancelled run is
    job = jobs.submit(ready.config)
    job.set_state("cancelled", run_dir=str(stopped))
    at = start("pages/train.py")
    at.button(key=f"resume-{job.id}").click().run()
    assert not at.exception
    queued = [j for j in jobs.list_jobs() if j.id != job.id]
    assert len(queued) == 1 and queued[0].request["resume"] == str(stopped) and queued[0].state["state"] == "queued"
    assert queued[0].id == "stopped_run-resumed" and jobs.list_jobs()[0] == queued[0]  # named after the run, on top
    assert any("stopped_run-resumed" in t.value for t in at.toast)
    offered = lambda: {b.key for b in at.button if (b.key or "").startswith("resume-")}  # noqa: E731
    assert offered() == set()  # the run is queued again: nothing to resume
    with pytest.raises(ValueError, match="already queued to resume"):  # a click in a second, stale tab
        jobs.resume(job)
    queued[0].set_state("cancelled", run_dir=str(stopped))  # the resumed job is stopped too
    at.run()
    assert offered() == {f"resume-{queued[0].id}"}  # only the run's latest job offers Resume
    with pytest.raises(ValueError, match="taken on by a later job"):
        jobs.resume(job)


def test_train_form_rejects_bad_values_by_field(ready):
    at = start("pages/train.py")
    at.selectbox(key="cfg.loss").set_value("weighted_ce").run()  # class_weights is greyed out for the other losses
    at.text_input(key="cfg.class_weights").set_value("[1, 2]").run()
    assert any("class_weights" in e.value for e in at.error)
    assert next(b for b in at.button if b.label == "Start training").disabled
    at.text_input(key="cfg.class_weights").set_value("[1, 1, 1, 1, 1, 1, 1, 1, 1, 1]").run()
    at.number_input(key="cfg.lr").set_value(-1.0).run()
    at.number_input(key="cfg.epochs").set_value(0).run()
    message = "\n".join(e.value for e in at.error)  # every bad field at once, with the tab it is on
    assert "Optimiser tab · lr: must be in (0, 10]" in message and "Schedule tab · epochs:" in message
    at.text_input(key="cfg.model_kwargs").set_value("{bad").run()  # text that is not JSON hides nothing else
    message = "\n".join(e.value for e in at.error)
    assert "Model tab · model_kwargs: not valid JSON" in message and "lr: must be in (0, 10]" in message
    assert "parameters: ? (fix model_kwargs first)" in text_of(at)  # the card, not an exception's name
    assert at.number_input(key="cfg.lr").help  # fields say what they do


def test_train_form_greys_out_what_the_chosen_settings_do_not_use(ready):
    at = start("pages/train.py")
    assert at.number_input(key="cfg.beta1").disabled and not at.number_input(key="cfg.momentum").disabled  # sgd
    assert "optimizer is adam" in at.number_input(key="cfg.beta1").help
    at.selectbox(key="cfg.optimizer").set_value("adam").run()
    assert not at.number_input(key="cfg.beta1").disabled and at.number_input(key="cfg.momentum").disabled
    assert at.number_input(key="cfg.photo_batch").disabled  # no photo_dir
    assert not at.exception


def test_train_form_tabs_and_help_come_from_the_config_fields(ready):
    at = start("pages/train.py")
    assert [t.label for t in at.tabs] == ["Model", "Optimiser", "Schedule", "Loss", "Data split", "Fine-tune",
                                          "Synthetic data", "Device", "Augmentation"]
    assert at.number_input(key="cfg.epochs").help == "passes over the training images"
    assert "mirror left-right" in at.toggle(key="cfg_aug.hflip_p.on").help
    assert not at.exception


def test_recipe_fills_the_form(ready):
    at = start("pages/train.py")
    at.selectbox(key="train.recipe").set_value("report003").run()
    assert "Report 003: Adam at 5e-4" in text_of(at)  # says what the recipe is
    assert at.selectbox(key="cfg.optimizer").value == "adam"
    assert at.selectbox(key="cfg.val_split").value == "stratified"
    assert at.toggle(key="cfg_aug.erase_p.on").value is True


def png_bytes(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def trouser(mode: str = "RGB") -> Image.Image:
    arr = np.full((120, 90), 230, np.uint8)
    arr[10:110, 20:40] = 30
    arr[10:110, 50:70] = 30
    arr[10:25, 20:70] = 30
    return Image.fromarray(arr).convert(mode)


def test_predict_says_when_no_garment_stood_out_from_the_background(ready):
    wall = np.broadcast_to(np.linspace(90, 200, 80, dtype=np.uint8)[None, :, None], (60, 80, 3))  # a smooth gradient
    at = upload(start("pages/predict.py"), "wall.png", png_bytes(Image.fromarray(np.ascontiguousarray(wall))))
    assert not at.exception and len(answers(at)) == 1
    assert "No garment stood out from the background" in text_of(at)


def test_predict_picks_up_a_new_threshold_without_a_restart(ready, tmp_path, monkeypatch):
    import json

    run = tmp_path / "runs" / "r"
    shutil.copytree(ready.path, run)
    monkeypatch.setenv("FASHION_RUNS_DIR", str(run.parent))
    (run / "calibration.json").write_text(json.dumps({"temperature": 1.0, "threshold": 0.2, "source": "test"}))
    at = upload(start("pages/predict.py"), "trouser.png", png_bytes(trouser()))
    assert not at.exception and at.success  # confident under a 20% threshold
    time.sleep(0.05)  # a later modification time
    check = {"photos": 40, "no_class": 8, "mapped_accuracy": 0.75, "mapped_unsure": 0.125, "no_class_unsure": 0.5,
             "score": 0.6}
    (run / "calibration.json").write_text(json.dumps({"temperature": 1.0, "threshold": 1.0, "source": "test",
                                                      "threshold_source": "a test", "photo_check": check}))
    at.run()
    assert not at.success and "Unsure" in answers(at)[0]  # the app's own answer follows the file
    # and says how that threshold did on labelled photos
    assert "On 40 labelled photos it did not learn from" in text_of(at) and "unsure on 50% of 8" in text_of(at)


def answers(at: AppTest) -> list[str]:
    """The prediction lines: a confident label (success) or 'Unsure — torn between ...' (warning)."""
    return [e.value for e in at.success] + [e.value for e in at.warning if "Unsure" in e.value]


def upload(at: AppTest, name: str, data: bytes, mime: str = "image/png") -> AppTest:
    at.file_uploader(key="pr.upload").upload(name, data, mime)
    return at.run()


def test_predict_classifies_a_generated_png(ready):
    at = upload(start("pages/predict.py"), "trouser.png", png_bytes(trouser()))
    assert not at.exception and "No garment stood out" not in text_of(at)
    assert len(answers(at)) == 1 and any(c in answers(at)[0] for c in CLASSES)
    assert "Saliency" in text_of(at) and "ms" in text_of(at)  # attributions with their runtimes
    captions = [c for img in at.get("image") for c in img.captions]
    assert "heat map" in captions and "overlay" in captions  # attributions drawn beside the input
    from fashion_core.photos.pipeline import load_image, prepare
    steps = [name for name, _ in prepare(load_image(png_bytes(trouser()))).steps]
    assert set(steps) <= set(captions)  # the page shows whatever preprocessing steps the engine reports


def exif_rotated() -> bytes:
    img = trouser().rotate(90, expand=True)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 CW to display
    return png_bytes(img, "JPEG", exif=exif.tobytes())


def animated_gif() -> bytes:
    frames = [trouser("P"), trouser("P").transpose(Image.Transpose.FLIP_TOP_BOTTOM)]
    return png_bytes(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


BAD_INPUTS = {
    "empty.png": (b"", "error"),
    "notes.png": (b"this is a text file, not an image\n" * 20, "error"),
    "truncated.png": (png_bytes(trouser())[:200], "error"),
    "bomb.png": (png_bytes(Image.new("1", (12_000, 12_000))), "error"),
    "blank.png": (png_bytes(Image.new("RGB", (300, 200), (255, 255, 255))), "error"),
    "clear.png": (png_bytes(Image.new("RGBA", (300, 200), (0, 0, 0, 0))), "error"),
    "dot.png": (png_bytes(Image.new("RGB", (1, 1), (200, 30, 30))), "error"),
    "cmyk.jpg": (png_bytes(trouser("CMYK"), "JPEG"), "success"),
    "sixteen.png": (png_bytes(Image.fromarray((np.asarray(trouser("L"), np.uint16) * 257))), "success"),
    "rgba.png": (png_bytes(trouser("RGBA")), "success"),
    "palette.png": (png_bytes(trouser("P")), "success"),
    "animated.gif": (animated_gif(), "success"),
    "rotated.jpg": (exif_rotated(), "success"),
}


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_bad_or_odd_images_never_show_a_traceback(ready, name):
    data, outcome = BAD_INPUTS[name]
    at = upload(start("pages/predict.py"), name, data)
    assert not at.exception, at.exception
    if outcome == "error":
        assert at.error and "Cannot use this file" in at.error[0].value and not answers(at)
        if name == "bomb.png":  # says what to do, in plain words
            assert "50 megapixels): resize it" in at.error[0].value
        if name == "truncated.png":  # no library wording ("image file is truncated (3 bytes not processed)")
            assert "cut short" in at.error[0].value and "bytes not processed" not in at.error[0].value
    else:
        assert answers(at) and not at.error, [e.value for e in at.error]


def test_exif_rotation_is_applied_before_preprocessing(ready):
    at = upload(start("pages/predict.py"), "rotated.jpg", exif_rotated())
    assert not at.exception and answers(at)
    from fashion_core.photos.pipeline import load_image
    assert load_image(exif_rotated()).size == (90, 120)  # upright, as the camera meant it


def test_checkpoint_that_is_not_plain_weights_is_refused(ready, tmp_path, monkeypatch):
    bad = tmp_path / "runs" / "evil"
    shutil.copytree(ready.path, bad, ignore=shutil.ignore_patterns("*.pt"))
    torch.save({"model": _Payload()}, bad / "best.pt")  # needs pickle to load: weights_only refuses
    monkeypatch.setenv("FASHION_RUNS_DIR", str(bad.parent))
    at = start("pages/predict.py")
    at.selectbox(key="pr.run").set_value("evil").run()
    assert not at.exception
    assert any("refused" in e.value for e in at.error)


class _Payload:
    def __reduce__(self):
        return (print, ("this would run on load",))


def test_explain_a_class_mode(ready):
    at = start("pages/predict.py")
    at.radio(key="pr.mode").set_value("Explain a class").run()
    at.selectbox(key="pr.class").set_value("Bag").run()
    assert not at.exception and not at.error
    shown = text_of(at)  # the averaged maps start with the cheap gradient methods only
    assert "**Saliency**" in shown and "**Occlusion**" not in shown and "**Integrated Gradients**" not in shown
    at.multiselect(key="pr.methods.class").set_value(["Integrated Gradients"]).run()
    assert "**Integrated Gradients**" in text_of(at) and not at.error


def test_predict_page_says_unsure_and_between_what(ready, tmp_path, monkeypatch):
    run = tmp_path / "runs" / "doubtful"
    shutil.copytree(ready.path, run)
    (run / "calibration.json").write_text('{"temperature": 1.0, "threshold": 1.0, "source": "test"}')
    monkeypatch.setenv("FASHION_RUNS_DIR", str(run.parent))
    at = upload(start("pages/predict.py"), "trouser.png", png_bytes(trouser()))
    assert not at.exception and not at.success  # threshold 1: never a confident label
    assert answers(at)[0].startswith("**Unsure — ") and "none of the ten classes" in answers(at)[0]
    assert any(c in answers(at)[0] for c in CLASSES)  # says which classes were likeliest
    assert "(the likeliest class of an unsure answer)" in text_of(at)  # which class the maps explain
    assert "temperature 1.00" in text_of(at)


def test_an_ensemble_is_a_model_choice_on_predict_and_compare(ready, tmp_path, monkeypatch, fake_root):
    from fashion_core.ensemble import create_ensemble
    from fashion_core.train import train

    runs = tmp_path / "runs"
    shutil.copytree(ready.path, runs / "a")
    train(ready.config.replace(epochs=1, seed=3, model="mlp_1hidden"), runs / "b", data_root=fake_root)
    create_ensemble(runs / "vote", [runs / "a", runs / "b"], weights=[0.6, 0.4], data_root=fake_root)
    monkeypatch.setenv("FASHION_RUNS_DIR", str(runs))
    at = start("pages/predict.py")
    at.selectbox(key="pr.run").set_value("vote").run()
    at = upload(at, "trouser.png", png_bytes(trouser()))
    at.multiselect(key="pr.methods").set_value(["Saliency", "Grad-CAM"]).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert answers(at) and "Grad-CAM" in text_of(at)  # the soft vote explains like one model
    cmp = start("pages/compare.py")
    cmp.multiselect(key="cmp.runs").set_value(["vote", "a"]).run()
    assert not cmp.exception and not cmp.error
    table = cmp.dataframe[0].value
    assert "vote" in table.to_string()  # the ensemble sits in the comparison table beside its member


def test_train_form_keeps_its_values_across_a_visit_to_another_page(ready):
    at = start("pages/train.py")
    at.selectbox(key="train.recipe").set_value("report003").run()
    at.number_input(key="cfg.epochs").set_value(42).run()
    at.text_input(key="cfg.note").set_value("my first resnet").run()
    at.switch_page("pages/dataset.py").run()
    at.switch_page("pages/train.py").run()
    assert not at.exception
    assert at.number_input(key="cfg.epochs").value == 42
    assert at.text_input(key="cfg.note").value == "my first resnet"
    assert at.selectbox(key="train.recipe").value == "report003"
    assert at.selectbox(key="cfg.optimizer").value == "adam"  # the recipe's values, not the defaults


def test_init_from_offers_the_finished_runs_of_the_chosen_model(ready):
    at = start("pages/train.py")
    assert at.selectbox(key="cfg.init_from").options == ["none: start from the model's initial weights"]  # no flagship run
    at.selectbox(key="cfg.model").set_value(ready.config.model).run()
    pick = at.selectbox(key="cfg.init_from")
    assert len(pick.options) == 2 and ready.name in pick.options[1] and ready.config.model in pick.options[1]
    at.selectbox(key="cfg.val_split").set_value("stratified").run()  # not the run's split (random)
    at.selectbox(key="cfg.init_from").set_value(str(ready.path)).run()
    assert not at.error and not at.exception, [e.value for e in at.error]  # the run's split came with it
    assert at.selectbox(key="cfg.val_split").value == ready.config.val_split and any("split" in t.value for t in at.toast)
    typed = AppTest.from_file(APP, default_timeout=120)  # a folder typed into the box, which takes new text
    typed.session_state["cfg.init_from"] = str(ready.path.parent / "typo")
    typed.run().switch_page("pages/train.py").run()
    assert typed.selectbox(key="cfg.init_from").value == str(ready.path.parent / "typo")
    assert "Fine-tune tab · init_from: must be a finished run directory" in "\n".join(e.value for e in typed.error)


def test_a_fresh_app_draws_the_overview_without_loading_torch(tmp_path):
    """Cold start: a fresh process draws the Overview (the shipped runs' leaderboard) from JSON alone;
    torch, captum, umap and cv2 load with the pages that use them, not in the router."""
    script = f"""
import sys
from streamlit.testing.v1 import AppTest
at = AppTest.from_file({APP!r}, default_timeout=120)
at.run()
assert not at.exception, at.exception
print("TITLE", at.title[0].value)
print("ROWS", sum(len(d.value) for d in at.dataframe))
print("SIDEBAR", " ".join(c.value for c in at.sidebar.caption))
print("HEAVY", [m for m in ("torch", "torchvision", "captum", "umap", "cv2", "sklearn") if m in sys.modules])
"""
    env = {**os.environ, "FASHION_RUNS_DIR": str(tmp_path / "runs"), "FASHION_JOBS_DIR": str(tmp_path / "jobs"),
           "FASHION_MNIST_ROOT": str(tmp_path / "data")}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in out.stdout.splitlines() if " " in line)
    assert lines["TITLE"] == "Fashion-MNIST workbench"
    assert int(lines["ROWS"]) >= 20  # the shipped runs' leaderboard
    assert "Device:** checking" in lines["SIDEBAR"]  # named at the sidebar's next run, once torch is loaded
    assert lines["HEAVY"] == "[]", lines["HEAVY"]
