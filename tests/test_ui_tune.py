"""AppTest tests for the Tune page: it opens with no sweeps, a bad space is refused naming its field with
nothing started, and a tiny sweep created from the page runs as a background job, after which the page
shows its trials and Optuna's four figures and opens Compare on its top trials and the Train form on
its best one."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from apptest import fresh_caches  # noqa: F401 (fixtures)
from streamlit.testing.v1 import AppTest

import fashion_core.runs as fruns
from fashion_core import jobs, sweeps
from fashion_core.config import TrainConfig
from ui import tune_view

APP = str(Path(__file__).resolve().parent.parent / "streamlit_app.py")


def tune_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("pages/tune.py")
    at.run()
    assert not at.exception
    return at


def text_of(at: AppTest) -> str:
    return "\n".join(str(e.value) for kind in ("markdown", "caption", "info", "warning", "error", "success")
                     for e in getattr(at, kind))


def click(at: AppTest, label: str) -> None:
    next(b for b in at.button if b.label == label).click().run()


def own_space(at: AppTest, settings: list[str]) -> None:
    """Switch the form to a space of one's own, searching `settings` on mlp_baseline."""
    at.segmented_control(key="tune.mode").set_value(tune_view.MODES[1]).run()
    at.selectbox(key="tune.model").set_value("mlp_baseline")
    at.multiselect(key="tune.space").set_value(settings).run()
    assert not at.exception


@pytest.fixture
def ready(tmp_path, monkeypatch, fake_root):
    """Tiny data, no runs, no sweeps, an empty job queue; no shipped checkpoints."""
    monkeypatch.setenv("FASHION_MNIST_ROOT", str(fake_root))
    monkeypatch.setenv("FASHION_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("FASHION_JOBS_DIR", str(tmp_path / "jobs"))
    monkeypatch.setattr(fruns, "CHECKPOINT_DIR", tmp_path / "checkpoints")
    return tmp_path


def test_the_page_opens_with_no_sweeps_and_offers_the_reports_experiments(ready):
    at = tune_page()
    assert at.title[0].value == "Tune"
    assert "No sweeps yet" in text_of(at)
    assert at.selectbox(key="tune.preset").options == list(sweeps.SWEEP_PRESETS)
    first_note, first = next(iter(sweeps.SWEEP_PRESETS.values()))
    assert first_note in text_of(at)  # its one-line description
    assert at.number_input(key="tune.trials").value == first.n_trials  # its budget, to shrink
    at.selectbox(key="tune.preset").set_value("report003_augmentation_probability").run()
    assert at.selectbox(key="tune.sampler").value == "grid" and at.selectbox(key="tune.pruner").value == "none"


def test_a_bad_space_shows_the_field_it_names_and_starts_nothing(ready):
    at = tune_page()
    own_space(at, ["lr"])
    at.number_input(key="tune.p.lr.low").set_value(0.1)
    at.number_input(key="tune.p.lr.high").set_value(0.01)
    click(at, "Create and start")
    assert not at.exception
    assert any("space.lr: empty range" in e.value for e in at.error), [e.value for e in at.error]
    assert sweeps.list_sweeps() == [] and jobs.list_jobs() == []
    at.number_input(key="tune.p.lr.low").set_value(0.001)  # the space fixed, the name is bad
    at.text_input(key="tune.name").set_value("-bad name")
    click(at, "Create and start")
    assert not at.exception
    assert any("name: '-bad name'" in e.value for e in at.error), [e.value for e in at.error]
    assert sweeps.list_sweeps() == [] and jobs.list_jobs() == []


def test_every_kind_of_setting_gets_its_widgets_and_a_grid_over_a_range_is_refused(ready):
    at = tune_page()
    own_space(at, ["batch_size", "tta_flip", "optimizer", "augment", "class_weights", "augment.p", "lr"])
    at.segmented_control(key="tune.p.batch_size.kind").set_value("choices").run()
    assert not at.exception
    assert at.text_input(key="tune.p.batch_size.text").value == "64, 128, 256"  # typed choices around the value
    assert at.multiselect(key="tune.p.tta_flip.choices").value == [True, False]
    assert at.number_input(key="tune.p.lr.low").value < at.number_input(key="tune.p.lr.high").value
    at.selectbox(key="tune.sampler").set_value("grid")
    click(at, "Create and start")
    assert not at.exception
    assert any("sampler: a grid needs choices" in e.value for e in at.error), [e.value for e in at.error]
    assert sweeps.list_sweeps() == [] and jobs.list_jobs() == []


def wait_for(job: jobs.Job, states: tuple[str, ...], timeout: float = 300) -> str:
    deadline = time.time() + timeout
    while job.state.get("state") not in states:
        assert time.time() < deadline, job.log_tail(40)
        jobs.tick()
        time.sleep(0.3)
    return job.state["state"]


def wait_done(job: jobs.Job) -> None:
    assert wait_for(job, jobs.FINISHED) == "done", job.log_tail(40)


def test_a_sweep_is_started_cancelled_and_resumed_from_the_page(ready):
    base = TrainConfig(model="mlp_baseline", schedule="none")
    cfg = sweeps.SweepConfig(base, (sweeps.Param("lr", 1e-3, 1e-1, log=True),), sampler="random", pruner="none",
                             n_trials=2, max_epochs=500)  # long trials
    sweeps.create("long", cfg)  # made elsewhere (the command line): the page offers to start it
    at = tune_page()
    assert "not started" in text_of(at)
    click(at, "Start")
    (job,) = jobs.list_jobs()
    assert job.sweep == "long"
    try:
        wait_for(job, ("running",))
        at.run()
        click(at, "Cancel")
        assert not at.exception and job.cancel_requested
        assert wait_for(job, jobs.FINISHED) == "cancelled", job.log_tail(40)
        at.run()
        assert "cancelled" in text_of(at)
        click(at, "Resume")  # a new worker carries the sweep on, the stopped trial first
        assert not at.exception
        again = jobs.list_jobs()[0]
        assert again.id != job.id and again.sweep == "long" and again.state["state"] in jobs.ACTIVE
        assert not [b for b in at.button if b.label == "Resume"]  # one worker a sweep: Cancel instead
    finally:
        for j in jobs.list_jobs():
            jobs.cancel(j)
            wait_for(j, jobs.FINISHED)


@pytest.fixture(scope="module")
def swept(tmp_path_factory, fake_root):
    """A tiny sweep (mlp_baseline, lr and optimizer, 2 trials of 1 epoch) created from the page, its job
    finished; the queue and runs in a folder of the module's own."""
    tmp = tmp_path_factory.mktemp("tune")
    with pytest.MonkeyPatch.context() as mp:
        for var, path in (("FASHION_MNIST_ROOT", fake_root), ("FASHION_RUNS_DIR", tmp / "runs"),
                          ("FASHION_JOBS_DIR", tmp / "jobs")):
            mp.setenv(var, str(path))
        mp.setattr(fruns, "CHECKPOINT_DIR", tmp / "checkpoints")
        at = tune_page()
        own_space(at, ["lr", "optimizer"])
        at.multiselect(key="tune.p.optimizer.choices").set_value(["adam", "sgd"])
        at.number_input(key="tune.trials").set_value(2)
        at.number_input(key="tune.epochs").set_value(1)
        at.selectbox(key="tune.sampler").set_value("random")
        at.selectbox(key="tune.pruner").set_value("none")
        at.text_input(key="tune.name").set_value("tiny")
        click(at, "Create and start")
        assert not at.exception
        assert sweeps.list_sweeps() == ["tiny"] and at.selectbox(key="tune.sweep").value == "tiny"
        assert at.query_params["tune.sweep"] == "tiny"  # a reload or a shared link opens the same sweep
        (job,) = jobs.list_jobs()
        assert job.sweep == "tiny"  # queued as a worker job in the existing queue
        wait_done(job)
        yield sweeps.load("tiny")[0]


def test_a_finished_sweep_shows_its_trials_and_figures_and_opens_compare_on_the_top_trials(swept):
    at = tune_page()  # a fresh session (a reload, another tab, a restarted app) shows it from disk
    assert at.selectbox(key="tune.sweep").value == "tiny"
    assert "2 of 2 trials finished" in at.get("progress")[0].proto.text
    table = at.dataframe[0].value
    assert list(table["state"]) == ["complete", "complete"] and set(table["epochs"]) == {1}
    assert list(table["run"]) == ["tiny-trial-0000", "tiny-trial-0001"]
    assert len(at.get("plotly_chart")) == 4, text_of(at)  # history, intermediate, parallel coordinates, importances
    top = [Path(r.run_dir).name for r in sweeps.best_trials(swept, tune_view.TOP_K)]
    assert sorted(top) == ["tiny-trial-0000", "tiny-trial-0001"]
    click(at, "Compare the top 2 trials")
    assert not at.exception
    assert at.title[0].value == "Compare runs"
    assert at.multiselect(key="cmp.runs").value == top  # the top trials, best first
    assert at.query_params["cmp.runs"] == top, at.query_params


def test_train_the_best_config_longer_fills_the_train_form(swept):
    at = tune_page()
    click(at, "Train the best config longer")
    best = sweeps.best_trials(swept, 1)[0]
    assert at.title[0].value == "Train"
    assert at.session_state["cfg.model"] == "mlp_baseline" and at.session_state["cfg.epochs"] == tune_view.LONGER
    assert at.session_state["cfg.lr"] == pytest.approx(best.params["lr"])
    assert at.session_state["cfg.optimizer"] == best.params["optimizer"]
    assert at.session_state["cfg.train_subset"] == 0
    assert any("sweep tiny" in t.value for t in at.toast)  # the Train page says what the form now holds
    assert not at.exception
