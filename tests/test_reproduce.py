"""scripts/reproduce.py: finished runs keep their training state aside and can be given more epochs."""
from __future__ import annotations

import importlib.util
import json

from fashion_core.runs import CHECKPOINT_DIR, Run


def _reproduce(tmp_path, monkeypatch, fake_root, plan):
    spec = importlib.util.spec_from_file_location("reproduce", CHECKPOINT_DIR.parent / "scripts" / "reproduce.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setenv("FASHION_MNIST_ROOT", str(fake_root))
    monkeypatch.setattr(mod, "CHECKPOINT_DIR", tmp_path / "checkpoints")
    monkeypatch.setattr(mod, "UNSHIPPED", tmp_path / "runs" / "unshipped")
    monkeypatch.setattr(mod, "PLAN", plan)
    return mod


def _plan(epochs: int, schedule: str = "none") -> tuple[str, dict]:
    return ("report002", dict(model="cnn2_mlp", epochs=epochs, batch_size=32, early_stop_patience=0, schedule=schedule))


def test_a_finished_run_given_more_epochs_goes_on_from_where_it_stopped(tmp_path, monkeypatch, fake_root, capsys):
    plan = {"tiny": _plan(1), "cyc": _plan(1, "onecycle"), "big": _plan(1)}
    mod = _reproduce(tmp_path, monkeypatch, fake_root, plan)
    monkeypatch.setattr(mod, "EVALUATION_ONLY", {"big"})  # ships its evaluation, not its weights
    mod.main(["tiny", "cyc", "big"])
    tiny, cyc = Run(tmp_path / "checkpoints" / "tiny"), Run(tmp_path / "checkpoints" / "cyc")
    first = tiny.metrics[0]
    # what ships is the fp16 best.pt; the full training state waits outside checkpoints/
    assert not (tiny.path / "last.pt").exists() and (tmp_path / "runs" / "unshipped" / "tiny" / "last.pt").exists()
    assert tiny.eval["epochs"] == 1

    plan["tiny"] = ("report002", {**_plan(3)[1], "lr": 0.01})  # more than the epochs changed: left alone
    mod.main(["tiny"])
    assert Run(tiny.path).config.epochs == 1 and "PLAN changed more than its epochs" in capsys.readouterr().out
    plan.update(tiny=_plan(3), cyc=_plan(3, "onecycle"), big=_plan(2))
    mod.main(["tiny", "cyc", "big"])
    tiny, cyc = Run(tiny.path), Run(cyc.path)
    assert tiny.config.epochs == 3 and tiny.eval["epochs"] == 3 and [m["epoch"] for m in tiny.metrics] == [1, 2, 3]
    assert tiny.metrics[0] == first  # epoch 1 was not trained again
    assert json.loads((tiny.path / "eval.json").read_text())["train_time_s"] > first["time_s"]
    # a one-cycle schedule would have been a different run with 3 epochs: it is left as it was
    assert cyc.config.epochs == 1 and len(cyc.metrics) == 1
    big = Run(tmp_path / "checkpoints" / "big")
    assert big.eval["epochs"] == 2 and not big.has_weights
    assert {f.name for f in (tmp_path / "runs" / "unshipped" / "big").iterdir()} == {"best.pt", "last.pt"}
    assert "cyc: PLAN gives 3 epochs, it has 1, but its schedule stretches with the epochs" in capsys.readouterr().out


def test_a_plain_reproduce_builds_the_shipped_votes_but_no_experiment(tmp_path, monkeypatch, fake_root, capsys):
    mod = _reproduce(tmp_path, monkeypatch, fake_root, {"a": _plan(1), "b": _plan(1), "c": _plan(1)})
    monkeypatch.setattr(mod, "ENSEMBLES", {"vote": (["a", "b"], [0.5, 0.5]), "trial": (["a", "b"], [0.9, 0.1])})
    monkeypatch.setattr(mod, "EXPERIMENTS", {"c", "trial"})
    mod.main([])
    shipped = tmp_path / "checkpoints"
    assert sorted(p.name for p in shipped.iterdir()) == ["a", "b", "vote"]
    assert json.loads((shipped / "vote" / "config.json").read_text())["weights"] == [0.5, 0.5]
    assert Run(shipped / "vote").eval["test_accuracy"] > 0
    mod.main(["trial"])  # an experiment is built when named
    assert (shipped / "trial" / "eval.json").exists()
    mod.main(["vote"])  # and a built vote is never overwritten
    assert "vote: already built" in capsys.readouterr().out
