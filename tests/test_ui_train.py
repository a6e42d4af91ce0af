"""The Train page as a user meets it: curves that tell the truth, a form with plain labels, a run
that can be named, the form without the dataset, and a resumed job's trail in the Jobs list."""
from __future__ import annotations

import math
import re
import shutil
from dataclasses import fields
from pathlib import Path

import pytest
from apptest import empty, fresh_caches, text_of  # noqa: F401 (fixtures)
from streamlit.testing.v1 import AppTest

import fashion_core.data as fdata
import fashion_core.runs as fruns
from fashion_core import jobs
from fashion_core.config import RECIPES, TrainConfig
from ui.charts import job_curves

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")
FIELD_WIDGETS = ("selectbox", "number_input", "text_input", "checkbox")


def start(page: str = "pages/train.py") -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page(page)
    at.run()
    return at


def start_button(at: AppTest):
    return next(b for b in at.button if b.label == "Start training")


@pytest.fixture
def ready(tmp_path, monkeypatch, fake_root, tiny_run):
    """Tiny data and one tiny trained run (in its own runs folder); no shipped checkpoints."""
    runs = tmp_path / "runs"
    shutil.copytree(tiny_run.path, runs / tiny_run.name)
    monkeypatch.setenv("FASHION_MNIST_ROOT", str(fake_root))
    monkeypatch.setenv("FASHION_RUNS_DIR", str(runs))
    monkeypatch.setenv("FASHION_JOBS_DIR", str(tmp_path / "jobs"))
    monkeypatch.setattr(fruns, "CHECKPOINT_DIR", tmp_path / "checkpoints")
    return fruns.Run(runs / tiny_run.name)


# --- the live curves ---------------------------------------------------------------------------
def true_loss(step: float) -> float:
    return 0.3 + 2 * math.exp(-step / 300)


def reports(per_epoch: int = 100, epochs: int = 3, every: int = 10, resumed_at: int = 0) -> list[dict]:
    """What a runner records for a loss that falls smoothly: each training report holds the running mean
    since its epoch began (or since the resume), each epoch's end its validation numbers."""
    history = []
    for e in range(resumed_at // per_epoch, epochs):
        total, seen = 0.0, 0
        for step in range(max(e * per_epoch, resumed_at), (e + 1) * per_epoch):
            total, seen = total + true_loss(step), seen + 1
            if (step + 1) % every == 0:
                history.append({"phase": "train", "epoch": e + 1, "step": step + 1, "train_loss": total / seen,
                                "train_acc": 100 - 20 * total / seen})
        end = (e + 1) * per_epoch
        history.append({"phase": "epoch", "epoch": e + 1, "step": end, "train_loss": total / seen,
                        "train_acc": 100 - 20 * total / seen, "val_loss": true_loss(end), "val_acc": 90.0})
    return history


def test_training_curve_follows_the_loss_across_epochs_instead_of_restarting_each_epoch():
    history = reports()
    loss, acc = job_curves(history, {"total_steps": 300, "epochs": 3})
    train, val = loss.data
    assert loss.layout.xaxis.title.text == "epoch" and list(val.x) == [1, 2, 3]
    assert list(train.x) == sorted(train.x) and train.x[0] == pytest.approx(0.1) and train.x[-1] == pytest.approx(3.0)
    # the running mean of epoch 1 ends 0.27 above the loss the model has by then; the curve stays close
    errors = [abs(y - true_loss(x * 100)) for x, y in zip(train.x, train.y)]
    naive = [abs(h["train_loss"] - true_loss(h["step"])) for h in history if h["phase"] == "train"]
    assert max(naive) > 0.25 and max(errors) < 0.1
    drops = [a - b for a, b in zip(train.y, train.y[1:])]
    assert all(d >= 0 for d in drops) and max(drops) < 3 * sorted(drops)[len(drops) // 2]  # no step at epoch ends
    assert list(acc.data[0].y) == pytest.approx([100 - 20 * y for y in train.y])  # accuracy: the same treatment


def test_before_the_first_epoch_ends_the_curve_spans_that_epoch_and_one_report_shows_as_a_marker():
    first = [h for h in reports() if h["phase"] == "train"][:1]
    loss, _ = job_curves(first, {"total_steps": 300, "epochs": 3, "step": 10})
    assert "markers" in loss.data[0].mode and list(loss.data[0].x) == [pytest.approx(0.1)]
    assert loss.layout.xaxis.range[0] < 0 < 1 < loss.layout.xaxis.range[1]  # the whole first epoch is in view
    many, _ = job_curves(reports(), {"total_steps": 300, "epochs": 3})
    assert many.data[0].mode == "lines"


def test_a_resumed_job_draws_from_where_it_resumed_and_stays_true():
    history = reports(resumed_at=150)  # running means count from the resume, half-way through epoch 2
    loss, _ = job_curves(history, {"total_steps": 300, "epochs": 3}, resumed=True)
    train = loss.data[0]
    assert train.x[0] == pytest.approx(1.6) and train.x[-1] == pytest.approx(3.0)
    assert max(abs(y - true_loss(x * 100)) for x, y in zip(train.x, train.y)) < 0.06
    assert loss.layout.xaxis.range[0] < 1 and loss.layout.xaxis.range[1] > 3


def test_a_job_stopped_in_its_first_epoch_is_drawn_against_the_step():
    first = [h for h in reports() if h["phase"] == "train"][:4]
    loss, _ = job_curves(first, {"phase": "cancelled"})  # no epoch ended, no total on record
    assert loss.layout.xaxis.title.text == "step" and list(loss.data[0].x) == [10, 20, 30, 40]


# --- the Jobs list -----------------------------------------------------------------------------
def test_a_cancelled_job_that_was_resumed_says_by_which_job(ready, tmp_path, monkeypatch):
    monkeypatch.setattr(jobs, "tick", lambda: None)  # nothing starts: the test looks at the queue only
    stopped = tmp_path / "stopped_run"
    shutil.copytree(ready.path, stopped, ignore=shutil.ignore_patterns("eval.json"))
    (stopped / "status.json").write_text('{"state": "cancelled"}')
    job = jobs.submit(ready.config)
    job.set_state("cancelled", run_dir=str(stopped))
    at = start()
    assert not any("resumed as" in e.label for e in at.expander)
    resumed = jobs.resume(job)
    at.run()
    labels = {e.label.split(" · ")[0]: e.label for e in at.expander}
    assert f"resumed as {resumed.id}" in labels[job.id] and "resumed as" not in labels[resumed.id]
    assert not at.exception


def test_a_job_that_trains_no_config_of_its_own_is_listed_not_a_traceback(ready):
    worker = jobs.jobs_dir() / "sweep-demo"  # a sweep's worker, as the Tune page queues it
    worker.mkdir(parents=True)
    (worker / "state.json").write_text('{"state": "cancelled"}')
    (worker / "request.json").write_text('{"sweep": "demo", "data_root": "data", "runs_dir": "runs"}')
    at = start()
    assert not at.exception and any(e.label.startswith("sweep-demo · **cancelled**") for e in at.expander)


# --- the form ----------------------------------------------------------------------------------
def test_the_form_starts_from_the_quick_recipe_and_says_how_long_it_takes_here(ready):
    at = start()
    assert at.selectbox(key="train.recipe").value == "quick" and at.selectbox(key="cfg.model").value == "quick"
    assert at.number_input(key="cfg.epochs").value == RECIPES["quick"]["epochs"]
    shown = text_of(at)
    assert "Quick, the default" in shown and re.search(r"Here, on CPU \(\d+ threads?\), it trains for about \d+ s",
                                                       shown), shown
    at.selectbox(key="train.recipe").set_value("report003").run()  # a report's recipe keeps the model
    assert at.selectbox(key="cfg.model").value == "quick" and at.selectbox(key="cfg.optimizer").value == "adam"
    at.selectbox(key="cfg.model").set_value("mlp_baseline").run()
    at.selectbox(key="train.recipe").set_value("quick").run()  # the quick recipe brings its model back
    assert at.selectbox(key="cfg.model").value == "quick" and not at.exception


def test_every_field_has_a_plain_label_and_its_help_names_the_config_field(ready):
    at = start()
    shown = {w.key.removeprefix("cfg."): w for kind in FIELD_WIDGETS for w in getattr(at, kind)
             if (w.key or "").startswith("cfg.")}
    assert set(shown) == {f.name for f in fields(TrainConfig)} - {"augment"}  # every field, no other
    for f in fields(TrainConfig):
        if f.name in shown:
            assert shown[f.name].label == f.metadata["label"], f.name
            if f.metadata["label"] != f.name.replace("_", " "):
                assert f"(config: {f.name})" in shown[f.name].help, f.name
    assert shown["train_subset"].label == "training images to use (0 = all)"
    assert "(config: train_subset)" in shown["train_subset"].help
    assert shown["photo_dir"].label == "folder of labelled photos"
    assert shown["epochs"].help == "passes over the training images"  # its label already names it
    assert not at.exception


def test_a_bad_value_names_its_tab_field_and_box(ready):
    at = start()
    at.number_input(key="cfg.lr").set_value(-1.0).run()
    message = "\n".join(e.value for e in at.error)
    assert "Optimiser tab · lr: must be in (0, 10]" in message and "the “learning rate” box" in message
    assert start_button(at).disabled


@pytest.mark.parametrize("name", ["../escape", ".hidden", "two words", "a/b", "x" * 65])
def test_a_bad_run_name_is_refused_with_the_rule(ready, name):
    if len(name) <= 64:  # the box takes no more than 64 characters
        at = start()
        at.text_input(key="train.name").set_value(name).run()
        assert any("1 to 64 letters, digits" in e.value for e in at.error)
        assert start_button(at).disabled and not at.exception
    with pytest.raises(ValueError, match="1 to 64 letters"):
        jobs.submit(ready.config, name=name)


def test_a_taken_run_name_is_refused(ready, monkeypatch):
    monkeypatch.setattr(jobs, "tick", lambda: None)
    at = start()
    at.text_input(key="train.name").set_value(ready.name).run()  # a run folder of that name exists
    assert any(f"{ready.name} is taken" in e.value for e in at.error) and start_button(at).disabled
    jobs.submit(ready.config.replace(seed=7), name="mine")  # and a job of that name
    at.text_input(key="train.name").set_value("mine").run()
    assert any("mine is taken" in e.value for e in at.error) and start_button(at).disabled


def test_a_named_run_is_trained_into_the_folder_of_that_name(ready, monkeypatch):
    monkeypatch.setattr(jobs, "tick", lambda: None)  # the job is run below, in this process
    at = start()
    at.selectbox(key="cfg.model").set_value("mlp_baseline")
    at.number_input(key="cfg.epochs").set_value(1)
    at.text_input(key="train.name").set_value("my-first_run.v2").run()
    assert not at.error, [e.value for e in at.error]
    start_button(at).click().run()
    assert not at.exception and any("Queued job my-first_run.v2" in t.value for t in at.toast)
    assert at.text_input(key="train.name").value == ""  # ready for the next run's name
    job = jobs.list_jobs()[0]
    assert job.id == "my-first_run.v2"
    job.set_state("starting")
    assert jobs.run_job(job) == 0, job.log_tail(40)
    run_dir = Path(job.state["run_dir"])
    assert run_dir == Path(jobs.runs_dir()).resolve() / "my-first_run.v2" and (run_dir / "eval.json").exists()
    at.run()
    assert not at.error  # the box was emptied: the name now taken is not in it
    at.text_input(key="train.name").set_value("my-first_run.v2").run()
    assert any("is taken" in e.value for e in at.error)


def test_without_the_dataset_the_form_is_shown_with_the_download_one_click_away(empty):
    at = start()
    assert not at.exception
    assert any("Download Fashion-MNIST" in b.label for b in at.button)  # the download, above the form
    assert [t.label for t in at.tabs][:2] == ["Model", "Optimiser"]  # the form, ready to fill in
    assert start_button(at).disabled and "download it" in start_button(at).help
    assert "Training needs Fashion-MNIST" in text_of(at)


def test_after_a_failed_download_the_help_is_open_and_no_progress_bar_is_left(empty, monkeypatch):
    def offline(root, on_progress=None):
        on_progress(0.0, "Connecting")
        raise fdata.DataMissingError(fdata.missing_files_message(Path(root)))

    monkeypatch.setattr(fdata, "download", offline)
    at = start()
    next(b for b in at.button if "Download" in b.label).click().run()
    assert not at.exception and any("download failed" in e.value for e in at.error)
    assert not at.get("progress")
    assert next(e for e in at.expander if e.label == "Or copy the four files by hand").proto.expanded
