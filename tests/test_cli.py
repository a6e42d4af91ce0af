"""python -m fashion_core: list-models, train, evaluate and predict as a user runs them."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image


def cli(*args: str, env_root=None) -> subprocess.CompletedProcess:
    import os

    env = dict(os.environ)
    if env_root:
        env["FASHION_MNIST_ROOT"] = str(env_root)
    return subprocess.run([sys.executable, "-m", "fashion_core", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def test_list_models_shows_the_registry():
    out = cli("list-models", "--json")
    assert out.returncode == 0
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    assert rows["mlp_baseline"]["params"] == 7850 and rows["resnet"]["report"] == "003"


def test_train_rejects_a_bad_field_with_its_name(tmp_path):
    out = cli("train", "--model", "mlp_baseline", "--set", "lr=-1", "--run-dir", str(tmp_path / "r"))
    assert out.returncode == 2 and "lr:" in out.stderr and "Traceback" not in out.stderr
    out = cli("train", "--model", "mlp_baseline", "--set", 'augment={"hflip_p": "0.5"}',
              "--run-dir", str(tmp_path / "r"))
    assert out.returncode == 2 and "augment.hflip_p" in out.stderr and "Traceback" not in out.stderr
    out = cli("train", "--config", str(tmp_path / "missing.json"), "--run-dir", str(tmp_path / "r"))
    assert out.returncode == 2 and "missing.json" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "r").exists()  # nothing was started


def test_train_then_evaluate(tmp_path, fake_root):
    out = cli("train", "--recipe", "report002", "--model", "mlp_baseline", "--epochs", "1",
              "--run-dir", str(tmp_path / "r"), "--quiet", env_root=fake_root)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert 0 <= result["test_accuracy"] <= 100 and result["params"] == 7850
    out = cli("evaluate", str(tmp_path / "r"), env_root=fake_root)
    assert out.returncode == 0 and json.loads(out.stdout)["test_accuracy"] == result["test_accuracy"]


def test_an_interrupted_run_resumes_with_just_its_run_dir(tmp_path, fake_root, tiny_config):
    from fashion_core.runs import Run
    from fashion_core.train import train

    calls = iter(range(10**6))
    run = train(tiny_config, tmp_path / "r", should_stop=lambda: next(calls) >= 20, data_root=fake_root)
    assert run.status["state"] == "cancelled" and run.eval is None
    out = cli("train", "--run-dir", str(run.path), "--quiet", env_root=fake_root)  # the hint it printed
    assert out.returncode == 0, out.stderr
    run = Run(run.path)
    assert run.config == tiny_config and run.eval["epochs"] == tiny_config.epochs
    out = cli("train", "--run-dir", str(run.path), "--epochs", "5", "--quiet", env_root=fake_root)
    assert out.returncode == 2 and "different config" in out.stderr


def gradient(h: int, w: int) -> np.ndarray:
    """(h, w, 3) uint8: grey rising smoothly from left to right, a picture with no garment in it."""
    return np.ascontiguousarray(np.broadcast_to(np.linspace(60, 200, w, dtype=np.uint8)[None, :, None], (h, w, 3)))


def test_predict_json_keeps_going_past_a_bad_file(tmp_path, tiny_run, fake_root):
    good = tmp_path / "shirt.png"
    img = np.zeros((60, 40, 3), np.uint8)
    img[10:50, 8:32] = 200
    Image.fromarray(img).save(good)
    bad = tmp_path / "notes.txt"
    bad.write_text("not an image")
    wall = tmp_path / "wall.png"  # a smooth light gradient: nothing stands out from the background
    Image.fromarray(gradient(60, 60)).save(wall)
    blank = tmp_path / "blank.png"  # one flat colour: nothing to classify at all
    Image.fromarray(np.full((60, 60, 3), 128, np.uint8)).save(blank)
    out = cli("predict", str(good), str(bad), str(wall), str(blank), "--model", str(tiny_run.path), "--json",
              env_root=fake_root)
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert out.returncode != 0  # one file failed
    assert lines[0]["file"] == str(good) and len(lines[0]["probabilities"]) == 10
    assert abs(sum(lines[0]["probabilities"]) - 1) < 1e-3 and lines[0]["label"]
    assert 0 <= lines[0]["index"] <= 9
    assert isinstance(lines[0]["unsure"], bool) and lines[0]["confidence"] == max(lines[0]["probabilities"])
    assert lines[0]["torn_between"] == [] if not lines[0]["unsure"] else len(lines[0]["torn_between"]) >= 2
    assert (tiny_run.path / "calibration.json").exists()  # temperature fitted on first use, then kept
    assert lines[1]["file"] == str(bad) and "not a supported image" in lines[1]["error"]
    assert lines[0]["garment_found"] is True and lines[2]["garment_found"] is False and lines[2]["label"]
    assert lines[3]["file"] == str(blank) and "one flat colour" in lines[3]["error"] and "label" not in lines[3]


def test_predict_says_unsure_and_between_what(tmp_path, tiny_run, fake_root):
    photo = tmp_path / "blob.png"
    Image.fromarray(gradient(40, 40)).save(photo)  # nothing a model can be sure of
    shutil.copytree(tiny_run.path, tmp_path / "run", ignore=shutil.ignore_patterns("calibration.json"))
    (tmp_path / "run" / "calibration.json").write_text(json.dumps({"temperature": 1.0, "threshold": 1.0}))
    out = cli("predict", str(photo), "--model", str(tmp_path / "run"), env_root=fake_root)
    assert out.returncode == 0 and "Unsure — " in out.stdout  # threshold 1: always unsure
    line = json.loads(cli("predict", str(photo), "--model", str(tmp_path / "run"), "--json").stdout)
    assert line["unsure"] is True and len(line["torn_between"]) >= 2 and line["label"] == line["torn_between"][0]


def test_predict_unknown_model_is_a_clear_error(tmp_path):
    out = cli("predict", "x.png", "--model", str(tmp_path / "nothing"))
    assert out.returncode == 2 and "model:" in out.stderr


def test_ensemble_of_runs_with_given_and_bad_weights(tmp_path, tiny_run, fake_root):
    out = cli("ensemble", str(tmp_path / "ens"), str(tiny_run.path), str(tiny_run.path), "--weights", "0.5,0.5",
              env_root=fake_root)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["weights"] == [0.5, 0.5] and res["test_accuracy"] == tiny_run.eval["test_accuracy"]
    bad = cli("ensemble", str(tmp_path / "bad"), str(tiny_run.path), "--weights", "a,b", env_root=fake_root)
    assert bad.returncode == 2 and "weights" in bad.stderr and not (tmp_path / "bad").exists()


def test_predict_reports_an_image_the_pipeline_cannot_handle_and_goes_on(tmp_path, tiny_run, monkeypatch):
    import fashion_core.predictor as fpredictor

    photo = tmp_path / "odd.png"
    Image.fromarray(gradient(30, 30)).save(photo)

    def broken(img):
        raise ArithmeticError("segmentation blew up")  # stands in for an OpenCV error on a strange image

    monkeypatch.setattr(fpredictor, "prepare", broken)
    out = fpredictor.Predictor.from_run(tiny_run.path, fit=False).answer_file(photo)
    assert out == {"file": str(photo), "error": "could not process the image (ArithmeticError: segmentation blew up)"}
