"""Training writes a complete run, stops on request, resumes exactly, and never tears a checkpoint."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import real_data_root
from fashion_core.config import TrainConfig
from fashion_core.runs import load_checkpoint, load_model, save_checkpoint
from fashion_core.inference import evaluate
from fashion_core.train import train
from fashion_core.data import load_split


def test_short_run_learns_and_writes_everything(tiny_run, fake_root):
    files = {p.name for p in tiny_run.path.iterdir()}
    assert {"config.json", "metrics.jsonl", "best.pt", "last.pt", "eval.json", "status.json",
            "calibration.json"} <= files
    cal = json.loads((tiny_run.path / "calibration.json").read_text())  # the temperature behind "unsure"
    assert 0.05 <= cal["temperature"] <= 20 and cal["val_nll_after"] <= cal["val_nll_before"] + 1e-6
    assert tiny_run.status["state"] == "done"
    ev = tiny_run.eval
    assert ev["test_accuracy"] >= 60  # the fake classes are easy: far above 10% chance
    assert len(ev["predictions"]) == 200 and len(ev["confusion_matrix"]) == 10
    assert sum(map(sum, ev["confusion_matrix"])) == 200
    assert {"precision", "recall", "f1"} <= set(ev["per_class"][0])
    assert ev["params"] == 409_034 and ev["latency_ms"] > 0 and ev["throughput_per_s"] > 0
    assert [m["epoch"] for m in tiny_run.metrics] == [1, 2] and "val_acc" in tiny_run.metrics[0]
    # the model comes back from config.json + weights alone, and scores what eval.json says
    model = load_model(tiny_run.path)
    acc, _ = evaluate(model, load_split(False, fake_root))
    assert abs(acc - ev["test_accuracy"]) < 0.01


def test_progress_reports_what_the_ui_needs(tmp_path, fake_root, tiny_config):
    seen = []
    train(tiny_config.replace(epochs=1), tmp_path / "r", seen.append, data_root=fake_root)
    phases = [p["phase"] for p in seen]
    assert phases[0] == "loading data" and phases[-1] == "done" and "epoch" in phases
    step = next(p for p in seen if p["phase"] == "train")
    for key in ("step", "epoch", "train_loss", "train_acc", "lr", "images_per_s", "eta_s", "total_steps"):
        assert key in step


def test_cancel_stops_within_a_batch_and_resume_matches_an_uninterrupted_run(tmp_path, fake_root):
    cfg = TrainConfig.from_dict({"model": "cnn5", "epochs": 2, "batch_size": 32, "lr": 0.02,
                                 "augment": "report003", "ema_decay": 0.9, "seed": 1})
    full = train(cfg, tmp_path / "full", data_root=fake_root)

    asks = []  # should_stop is asked before every batch; say yes on the 25th question

    def stop_after_24_batches() -> bool:
        asks.append(1)
        return len(asks) > 24

    run = train(cfg, tmp_path / "cut", should_stop=stop_after_24_batches, data_root=fake_root)
    assert run.status["state"] == "cancelled" and run.eval is None
    ck = load_checkpoint(run.path / "last.pt")
    assert ck["step"] == 24  # stopped before the next batch, nothing lost
    assert ck["epoch"] == 1 and ck["batch"] > 0  # mid-way through the second epoch
    load_model(run.path, "last")  # a cancelled run is still usable

    resumed = train(cfg, tmp_path / "cut", data_root=fake_root)
    assert resumed.status["state"] == "done"
    a, b = load_checkpoint(full.path / "last.pt"), load_checkpoint(resumed.path / "last.pt")
    for k in a["model"]:
        assert torch.allclose(a["model"][k].float(), b["model"][k].float(), atol=1e-5), k
    assert resumed.eval["test_accuracy"] == full.eval["test_accuracy"]


def test_resume_refuses_a_different_config(tiny_run, tiny_config):
    with pytest.raises(ValueError, match="different config"):
        train(tiny_config.replace(lr=0.5), tiny_run.path)


def test_invalid_config_fails_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match="^batch_size:"):
        train(TrainConfig(batch_size=0), tmp_path / "never")
    assert not (tmp_path / "never").exists()


KILLER = """
import os, sys, time, torch
from fashion_core.runs import save_checkpoint

def stall(fd):  # the new file is written in full but not yet moved into place: the save is under way
    print("inside", flush=True)
    time.sleep(60)

os.fsync = stall
save_checkpoint(sys.argv[1], {"model": {"w": torch.randn(4_000_000)}, "step": 1})
"""


def test_kill_during_save_leaves_the_previous_checkpoint_loadable(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"model": {"w": torch.zeros(3)}, "step": -1})
    proc = subprocess.Popen([sys.executable, "-c", KILLER, str(path)], stdout=subprocess.PIPE,
                            cwd=Path(__file__).resolve().parent.parent)
    assert proc.stdout.readline().strip() == b"inside"  # killed inside the save, never before or after it
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert list(tmp_path.glob(".last.pt.*.tmp")), "the kill should have caught a save half-way"
    ck = load_checkpoint(path)  # whole and loadable: the previous checkpoint, not half of the new one
    assert ck["step"] == -1 and ck["model"]["w"].numel() == 3


def test_a_pickle_that_is_not_plain_weights_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pt"
    torch.save({"model": Evil()}, path)
    with pytest.raises(ValueError, match="not a plain weights file"):
        load_checkpoint(path)


@pytest.mark.skipif(real_data_root() is None, reason="FASHION_MNIST_ROOT does not hold the real data")
def test_real_data_one_epoch_mlp_reaches_80_percent(tmp_path):
    cfg = TrainConfig(model="mlp_1hidden", epochs=1, batch_size=128, optimizer="adam", lr=1e-3,
                      weight_decay=0.0, schedule="none")
    run = train(cfg, tmp_path / "mlp", data_root=real_data_root())
    assert run.eval["test_accuracy"] >= 80.0
    assert len(run.eval["predictions"]) == 10_000


def test_ensemble_soft_votes_runs_and_loads_like_a_run(tmp_path, fake_root, tiny_config):
    from fashion_core.ensemble import create_ensemble
    from fashion_core.models.soft_vote import SoftVote

    a = train(tiny_config.replace(epochs=1, seed=1), tmp_path / "a", data_root=fake_root)
    b = train(tiny_config.replace(epochs=1, seed=1, model="mlp_1hidden"), tmp_path / "b", data_root=fake_root)
    ens = create_ensemble(tmp_path / "ens", [a.path, b.path], data_root=fake_root)  # weights fitted on val
    model = load_model(ens.path)
    assert isinstance(model, SoftVote) and abs(float(model.weights.sum()) - 1) < 1e-6
    assert len(ens.eval["predictions"]) == 200 and ens.eval["test_accuracy"] >= 50
    # it ships its temperature, fitted on images its members held out, not on a split of its own
    # (the default config's), most of which they trained on: that would make it overconfident
    from fashion_core.calibration import load_calibration
    from fashion_core.runs import validation_data
    assert "validation images of ens" in load_calibration(ens).source
    assert torch.equal(validation_data([ens], fake_root).images, validation_data([a], fake_root).images)
    fixed = create_ensemble(tmp_path / "fixed", [a.path, b.path], weights=[1.0, 0.0], data_root=fake_root)
    assert fixed.eval["test_accuracy"] == a.eval["test_accuracy"]  # all weight on one member = that member
    assert len(load_model(fixed.path).members) == 1  # a member with no say is not run (nor explained)
    for out in (a.path, ens.path):  # an existing run (or a member) is never overwritten
        before = (out / "config.json").read_text()
        with pytest.raises(ValueError, match="already"):
            create_ensemble(out, [a.path, b.path], weights=[0.5, 0.5], data_root=fake_root)
        assert (out / "config.json").read_text() == before
    with pytest.raises(ValueError, match="weights"):
        create_ensemble(tmp_path / "bad", [a.path, b.path], weights=[1.0], data_root=fake_root)


def test_soft_vote_scores_a_member_with_its_own_test_time_flips():
    from fashion_core.models.soft_vote import SoftVote
    from fashion_core.models import create_model

    torch.manual_seed(0)
    m = create_model("mlp_baseline").eval()
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        alone = ((m(x) + m(x.flip(-1))) / 2).log_softmax(1)  # how the member predicts on its own
        assert torch.allclose(SoftVote([m], [1.0], [True])(x), alone, atol=1e-5)
        assert not torch.allclose(SoftVote([m], [1.0])(x), alone, atol=1e-3)


def test_a_run_that_early_stopping_ended_trains_no_more_when_resumed(tmp_path, fake_root, tiny_config):
    from fashion_core.runs import load_checkpoint, save_checkpoint

    cfg = tiny_config.replace(epochs=3, early_stop_patience=1)
    calls = iter(range(10**6))
    run = train(cfg, tmp_path / "r", should_stop=lambda: next(calls) >= 20, data_root=fake_root)  # stops in epoch 2
    ck = load_checkpoint(run.path / "last.pt")
    save_checkpoint(run.path / "last.pt", {**ck, "epoch": 1, "batch": 0, "stale_epochs": 1})  # as if epoch 1 did not improve
    run = train(cfg, run.path, data_root=fake_root)
    assert [m["epoch"] for m in run.metrics] == [1] and run.eval is not None  # evaluated, no epoch 2


def test_ensemble_weights_for_many_members_are_searched_greedily(tmp_path, fake_root, tiny_config, monkeypatch):
    import fashion_core.ensemble as fens
    from fashion_core.inference import infer
    from fashion_core.runs import validation_data

    a = train(tiny_config.replace(epochs=1, seed=1), tmp_path / "a", data_root=fake_root)
    b = train(tiny_config.replace(epochs=1, seed=2, model="mlp_1hidden"), tmp_path / "b", data_root=fake_root)
    runs = [a, b, a]
    monkeypatch.setattr(fens, "EXHAUSTIVE_MEMBERS", 2)  # as if three were too many for the grid
    weights = fens.fit_weights(runs, fake_root)
    assert len(weights) == 3 and abs(sum(weights) - 1) < 1e-6 and min(weights) >= 0
    val = validation_data(runs, fake_root)
    probs = [infer(load_model(r), val.images).softmax(1) for r in runs]

    def acc(p):
        return (p.argmax(1) == val.labels).float().mean().item()

    mixed = sum(w * p for w, p in zip(weights, probs))
    assert acc(mixed) >= max(acc(p) for p in probs)  # never worse on validation than its best member


def test_an_epoch_replayed_after_a_kill_is_listed_once(tmp_path, fake_root, tiny_config):
    from fashion_core.runs import load_checkpoint, save_checkpoint

    cfg = tiny_config.replace(epochs=2)
    run = train(cfg, tmp_path / "r", data_root=fake_root)
    before = [m["epoch"] for m in run.metrics]
    ck = load_checkpoint(run.path / "last.pt")  # killed after epoch 2's row was written, before its checkpoint
    save_checkpoint(run.path / "last.pt", {**ck, "epoch": 1, "batch": 0})
    (run.path / "eval.json").unlink()
    run = train(cfg, run.path, data_root=fake_root)
    assert before == [1, 2] and [m["epoch"] for m in run.metrics] == [1, 2] and run.eval["epochs"] == 2


def test_a_run_without_a_validation_split_reports_no_validation_accuracy(tmp_path, fake_root, tiny_config):
    run = train(tiny_config.replace(epochs=1, val_split="none"), tmp_path / "r", data_root=fake_root)
    assert run.eval["best_val_acc"] is None  # shown as "–", not as 0.00%


def test_logit_norm_trains_a_model_whose_loss_ignores_the_length_of_its_logits(tmp_path, fake_root, tiny_config):
    from dataclasses import replace

    from fashion_core.losses import normalise_logits

    logits, target = torch.tensor([[4.0, 1.0, -2.0], [0.5, 0.0, 3.0]]), torch.tensor([0, 2])
    ce = torch.nn.functional.cross_entropy
    # LogitNorm's point: ten times longer logits are no more "certain" to the loss
    assert torch.allclose(ce(normalise_logits(logits, 0.04), target), ce(normalise_logits(10 * logits, 0.04), target))
    assert normalise_logits(logits, 0.04).norm(dim=1).sub(25).abs().max() < 1e-4
    run = train(replace(tiny_config, logit_norm=0.04), tmp_path / "logitnorm", data_root=fake_root)
    assert run.config.logit_norm == 0.04 and run.eval["test_accuracy"] >= 60  # it still learns the classes


def test_a_time_estimate_counts_the_steps_the_run_will_take():
    from fashion_core.train import estimate_seconds

    cfg = TrainConfig(model="mlp_baseline", epochs=2, batch_size=100, val_split="random", val_fraction=0.2)
    seconds = estimate_seconds(cfg, steps=4)
    one = estimate_seconds(TrainConfig.from_dict({**cfg.to_dict(), "max_steps": 1}), steps=4)
    assert 0 < one < seconds / 20  # one step, against the 960 of two epochs on 48,000 images
    before = torch.get_num_threads()
    estimate_seconds(cfg, steps=1, threads=1)
    assert torch.get_num_threads() == before  # the app's own threads are left as they were
