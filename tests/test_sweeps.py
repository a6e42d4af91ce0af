"""Sweeps on Optuna: Hyperband prunes through the one training loop, a grid runs each cell once, a
stopped sweep resumes without repeating a trial, a bad space is refused before anything starts, and
two workers on a real PostgreSQL share one study, a killed worker's trial retried by another."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pytest

from fashion_core import sweeps
from fashion_core.config import ConfigError, TrainConfig
from fashion_core.runs import Run, leaderboard, list_runs

REPO = Path(__file__).resolve().parent.parent
BASE = TrainConfig(model="mlp_baseline", batch_size=64, optimizer="adam", lr=1e-2, weight_decay=0.0, schedule="none",
                   val_split="random", val_fraction=0.2)


@pytest.fixture
def sweep_env(tmp_path, monkeypatch, fake_root):
    monkeypatch.setenv("FASHION_RUNS_DIR", str(tmp_path / "runs"))
    return fake_root


def test_hyperband_prunes_trials_that_lag_and_every_trial_is_an_ordinary_run(sweep_env):
    cfg = sweeps.SweepConfig(BASE, (sweeps.Param("lr", 1e-6, 1e-1, log=True),), sampler="random", pruner="hyperband",
                             n_trials=8, max_epochs=4, seed=0)
    sweeps.create("hb", cfg)
    assert sweeps.work("hb", data_root=sweep_env) == 8
    study, _ = sweeps.load("hb")
    rows = sweeps.trial_table(study)
    assert sweeps.counted(study) == 8 and {r.state for r in rows} <= {"complete", "pruned"}
    pruned = [r for r in rows if r.state == "pruned"]
    assert pruned, [(r.params, r.epochs) for r in rows]
    for row in pruned:  # cut short, its curves kept, and its run says where
        run = Run(Path(row.run_dir))
        assert run.status["state"] == "pruned" and run.status["pruned_at_epoch"] == len(run.metrics) < 4
    runs = {r.path for r in list_runs(sweeps.sweeps_dir() / "hb")}
    assert runs == {Path(r.run_dir) for r in rows}  # every trial is a run folder ...
    board = {row["run"]: row["sweep"] for row in leaderboard()}  # ... that Overview and Compare list, tagged
    assert {Path(r.run_dir).name: f"hb #{r.number}" for r in rows}.items() <= board.items()


def test_a_grid_runs_every_cell_once_and_a_stopped_sweep_resumes_without_repeating_one(sweep_env):
    cfg = sweeps.SweepConfig(BASE, (sweeps.Param("optimizer", choices=("adam", "sgd")),
                                    sweeps.Param("augment.hflip_p", choices=(0.0, 0.5))),
                             sampler="grid", pruner="none", n_trials=4, max_epochs=1)
    sweeps.create("grid", cfg)
    calls = iter(range(10**6))
    # stopped in its second trial: the first is kept, the second fails and goes first on resuming
    assert sweeps.work("grid", should_stop=lambda: next(calls) > 12, data_root=sweep_env) == 2
    study, _ = sweeps.load("grid")
    assert sweeps.counted(study) == 1
    sweeps.work("grid", data_root=sweep_env)
    study, _ = sweeps.load("grid")
    done = [r for r in sweeps.trial_table(study) if r.state == "complete"]
    cells = sorted((r.params["optimizer"], r.params["augment.hflip_p"]) for r in done)
    assert cells == [("adam", 0.0), ("adam", 0.5), ("sgd", 0.0), ("sgd", 0.5)]  # each once, none repeated
    trained = [Run(Path(r.run_dir)).config for r in done]
    assert {(c.optimizer, c.augment.hflip_p) for c in trained} == set(cells)  # the values reached the loop


def test_a_resumed_worker_draws_new_random_points_and_a_fresh_one_is_reproducible(sweep_env):
    cfg = sweeps.SweepConfig(BASE, (sweeps.Param("lr", 1e-4, 1e-1, log=True),), sampler="random", pruner="none",
                             n_trials=6, max_epochs=1, seed=3)
    lr = {"lr": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)}
    for name in ("first", "twin"):
        sweeps.create(name, cfg)
    first, _ = sweeps.load("first")
    drawn = [first.ask(lr).params["lr"] for _ in range(2)]
    twin, _ = sweeps.load("twin")  # a fresh study with the same seed: the same first point
    assert twin.ask(lr).params["lr"] == drawn[0]
    resumed, _ = sweeps.load("first")  # a worker joining (or resuming) a study with trials in it
    assert resumed.ask(lr).params["lr"] not in drawn


@pytest.mark.parametrize("param, field", [
    (sweeps.Param("lr", 0.1, 0.01), "space.lr: empty range"),
    (sweeps.Param("learning_rate", 0.1, 1.0), "space.learning_rate: not a setting"),
    (sweeps.Param("lr", 0.01, 100.0, log=True), "space.lr=100.0: lr: must be in (0, 10]"),
    (sweeps.Param("optimizer", choices=("adam", "lbfgs")), "space.optimizer='lbfgs': optimizer: must be one of"),
    (sweeps.Param("model_kwargs.width", choices=(1, 2)), "model_kwargs: mlp_baseline does not take these"),
])
def test_a_bad_space_is_refused_before_anything_starts(sweep_env, param, field):
    cfg = sweeps.SweepConfig(BASE, (param,), sampler="random", n_trials=2, max_epochs=1)
    with pytest.raises(ConfigError) as caught:
        sweeps.create("bad", cfg)
    assert field in str(caught.value)
    assert not (sweeps.sweeps_dir() / "bad").exists()  # no study, no run folder


def test_a_sweep_round_trips_through_its_study_so_any_worker_runs_the_same_one(sweep_env):
    cfg = sweeps.SweepConfig(BASE, (sweeps.Param("batch_size", 16, 128, integer=True, log=True),
                                    sweeps.Param("augment.erase_p", 0.0, 0.5)), n_trials=3, max_epochs=2, seed=7)
    assert sweeps.SweepConfig.from_dict(cfg.to_dict()) == cfg
    sweeps.create("again", cfg)
    with pytest.raises(ValueError, match="exists already"):
        sweeps.create("again", cfg)
    assert sweeps.load("again")[1] == cfg


def test_hyperbands_reduction_factor_is_kept_with_the_sweep_and_a_bad_one_is_refused(sweep_env):
    cfg = sweeps.SweepConfig(BASE, (sweeps.Param("lr", 1e-4, 1e-1, log=True),), n_trials=2, max_epochs=9,
                             reduction_factor=4)
    sweeps.create("eta", cfg)
    study, loaded = sweeps.load("eta")
    assert loaded.reduction_factor == 4 and study.pruner._reduction_factor == 4  # the rungs keep 1 in 4
    old = {k: v for k, v in cfg.to_dict().items() if k != "reduction_factor"}  # a study made before the setting
    assert sweeps.SweepConfig.from_dict(old).reduction_factor == 3
    with pytest.raises(ConfigError, match="reduction_factor: must be 2..10"):
        sweeps.create("eta1", sweeps.SweepConfig(BASE, cfg.space, reduction_factor=1))
    assert "eta1" not in sweeps.list_sweeps()


# --- PostgreSQL: many workers, one study ------------------------------------------------------------
def _pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


def _as_postgres(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    """Run a PostgreSQL server command as the postgres user when we are root (it refuses root)."""
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def postgres():
    """A throwaway PostgreSQL cluster on 127.0.0.1, stopped and removed afterwards."""
    pg = _pg_bin()
    if pg is None:  # .ci/run and the README's test command install Debian's postgresql
        pytest.fail("PostgreSQL is not installed (apt-get install postgresql)")
    home = Path(tempfile.mkdtemp(prefix="fashion-pg-"))  # not under pytest's folder: postgres cannot enter that
    if os.geteuid() == 0:
        shutil.chown(home, "postgres")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _as_postgres([str(pg / "initdb"), "-D", str(home / "data"), "-A", "trust", "-U", "postgres"])
    _as_postgres([str(pg / "pg_ctl"), "-D", str(home / "data"), "-l", str(home / "log"), "-w", "-o",
                  f"-h 127.0.0.1 -p {port} -k {home}", "start"])
    try:
        _as_postgres([str(pg / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "sweeps"])
        yield f"postgresql://postgres@127.0.0.1:{port}/sweeps"
    finally:
        _as_postgres([str(pg / "pg_ctl"), "-D", str(home / "data"), "-m", "immediate", "stop"])
        shutil.rmtree(home, ignore_errors=True)


def _worker(name: str, url: str, fake_root, runs: Path) -> subprocess.Popen:
    env = {**os.environ, "FASHION_MNIST_ROOT": str(fake_root), "FASHION_RUNS_DIR": str(runs),
           "FASHION_SWEEP_HEARTBEAT_S": "1", "FASHION_SWEEP_GRACE_S": "4"}
    return subprocess.Popen([sys.executable, "-m", "fashion_core", "sweep", "work", name, "--storage", url], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_workers_on_one_postgres_study_finish_exactly_the_budget(postgres, fake_root, tmp_path):
    cfg = sweeps.SweepConfig(BASE, (sweeps.Param("lr", 1e-3, 1e-1, log=True),), sampler="random", pruner="none",
                             n_trials=6, max_epochs=2)
    sweeps.create("shared", cfg, postgres)
    workers = [_worker("shared", postgres, fake_root, tmp_path / f"machine{i}") for i in range(2)]
    for w in workers:
        out, err = w.communicate(timeout=600)
        assert w.returncode == 0, err[-2000:]
    study, _ = sweeps.load("shared", postgres)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 6 and len({t.number for t in done}) == 6
    assert len({t.user_attrs["run_dir"] for t in done}) == 6  # no trial trained twice
    machines = {Path(t.user_attrs["run_dir"]).parents[2].name for t in done}
    assert machines == {"machine0", "machine1"}  # both workers took trials


def test_a_worker_killed_mid_trial_has_its_trial_retried_by_another(postgres, fake_root, tmp_path):
    cfg = sweeps.SweepConfig(BASE, (sweeps.Param("lr", 1e-3, 1e-2, log=True),), sampler="random", pruner="none",
                             n_trials=1, max_epochs=200)  # long enough to be killed mid-trial
    sweeps.create("killed", cfg, postgres)
    first = _worker("killed", postgres, fake_root, tmp_path / "first")
    deadline = time.time() + 120
    while not sweeps.load("killed", postgres)[0].get_trials(states=(optuna.trial.TrialState.RUNNING,)):
        assert time.time() < deadline and first.poll() is None, first.stderr.read()[-2000:] if first.poll() else ""
        time.sleep(0.5)
    time.sleep(2)
    first.send_signal(signal.SIGKILL)
    first.wait()
    time.sleep(5)  # past the grace period: its heartbeat has stopped
    second = _worker("killed", postgres, fake_root, tmp_path / "second")
    out, err = second.communicate(timeout=600)
    assert second.returncode == 0, err[-2000:]
    study, _ = sweeps.load("killed", postgres)
    states = [t.state for t in study.trials]
    assert states[0] == optuna.trial.TrialState.FAIL and states.count(optuna.trial.TrialState.COMPLETE) == 1
    retried = next(t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE)
    assert optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(retried) == 0
    assert retried.params == study.trials[0].params and "second" in retried.user_attrs["run_dir"]


def test_a_preset_runs_from_the_command_line_and_a_bad_one_is_a_message(sweep_env, tmp_path):
    env = {**os.environ, "FASHION_MNIST_ROOT": str(sweep_env), "FASHION_RUNS_DIR": str(tmp_path / "runs")}

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "fashion_core", "sweep", *args], cwd=REPO, env=env,
                              capture_output=True, text=True)

    made = cli("create", "p", "--preset", "report003_augmentation_probability", "--max-epochs", "1",
               "--train-subset", "200")
    assert made.returncode == 0, made.stderr
    assert cli("work", "p").returncode == 0
    rows = [json.loads(line) for line in cli("show", "p").stdout.splitlines()]
    assert sorted(r["params"]["augment.p"] for r in rows) == [0.0, 0.05, 0.3, 0.5]  # the report's grid, once each
    bad = cli("create", "q", "--preset", "report999")
    assert bad.returncode == 2 and "unknown preset" in bad.stderr and "Traceback" not in bad.stderr


def test_a_sweep_runs_as_a_background_job_that_can_be_cancelled_and_resumed(sweep_env, tmp_path, monkeypatch):
    from fashion_core import jobs

    monkeypatch.setenv("FASHION_JOBS_DIR", str(tmp_path / "jobs"))
    monkeypatch.setenv("FASHION_MNIST_ROOT", str(sweep_env))
    cfg = sweeps.SweepConfig(BASE, (sweeps.Param("lr", 1e-3, 1e-1, log=True),), sampler="random", pruner="none",
                             n_trials=3, max_epochs=150)  # long trials: cancelled mid-way
    sweeps.create("queued", cfg)
    job = jobs.submit_sweep("queued")
    with pytest.raises(jobs.DuplicateJob):
        jobs.submit_sweep("queued")  # one worker per sweep from this app
    deadline = time.time() + 120
    while job.state.get("state") != "running":
        assert time.time() < deadline, job.log_tail(40)
        time.sleep(0.3)
    time.sleep(3)
    jobs.cancel(job)
    while job.state.get("state") not in jobs.FINISHED:
        assert time.time() < deadline + 120, job.log_tail(40)
        time.sleep(0.3)
    assert job.state["state"] == "cancelled"
    study, _ = sweeps.load("queued")
    assert sweeps.counted(study) < 3 and study.get_trials(states=(optuna.trial.TrialState.WAITING,))  # goes first next
    again = jobs.submit_sweep("queued")  # Resume: another worker carries the sweep on
    while again.state.get("state") not in jobs.FINISHED:
        time.sleep(0.5)
        assert time.time() < deadline + 900, again.log_tail(40)
    assert again.state["state"] == "done" and sweeps.counted(sweeps.load("queued")[0]) == 3
