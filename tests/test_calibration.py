"""Temperature scaling and "unsure": the fit recovers a known temperature, decide() says when it is
torn and between what, and a run without data or calibration.json falls back instead of failing."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

import fashion_core.data as fdata
from fashion_core.calibration import Calibration, calibrate, calibration_for, fit_temperature, load_calibration
from fashion_core.data import CLASSES
from fashion_core.predictor import calibrated, decide, describe


def overconfident_logits(scale: float, n: int = 4000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Labels drawn from softmax(z), logits z * scale: the right temperature is `scale`."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 10, generator=g) * 2
    labels = torch.multinomial(z.softmax(1), 1, generator=g).squeeze(1)
    return z * scale, labels


@pytest.mark.parametrize("scale", [0.5, 1.0, 3.0])
def test_fit_temperature_recovers_the_scale_the_logits_were_blown_up_by(scale):
    logits, labels = overconfident_logits(scale)
    t = fit_temperature(logits, labels)
    assert abs(t - scale) / scale < 0.12, t
    nll = lambda s: torch.nn.functional.cross_entropy(logits / s, labels).item()  # noqa: E731
    assert nll(t) <= min(nll(1.0), nll(t * 1.2), nll(t / 1.2)) + 1e-6


def test_calibrated_probabilities_soften_with_temperature():
    p = np.array([0.9] + [0.1 / 9] * 9)
    np.testing.assert_allclose(calibrated(p, 1.0), p, atol=1e-9)
    soft = calibrated(p, 3.0)
    assert soft.argmax() == 0 and 0.1 < soft[0] < 0.9 and abs(soft.sum() - 1) < 1e-9


def test_decide_is_sure_on_a_peak_and_torn_on_a_tie():
    peak = np.full(10, 0.01)
    peak[1] = 0.91
    sure = decide(peak, Calibration(temperature=1.0, threshold=0.55))
    assert sure["label"] == "Trouser" and not sure["unsure"] and sure["torn_between"] == []
    assert describe(sure) == "Trouser (91.0%)"
    certain = np.full(10, 1e-6)
    certain[1] = 1 - 9e-6
    assert describe(decide(certain, Calibration(temperature=1.0))) == "Trouser (> 99.9%)"  # never "100.0%"

    tie = np.full(10, 0.02)
    tie[4], tie[6] = 0.45, 0.39  # Coat vs Shirt
    torn = decide(tie, Calibration(temperature=1.0, threshold=0.55))
    assert torn["unsure"] and torn["label"] == "Coat" and torn["torn_between"][:2] == ["Coat", "Shirt"]
    assert describe(torn).startswith("Unsure — torn between Coat") and "Shirt" in describe(torn)
    assert "or none of the ten classes" in describe(torn)  # a hat or a skirt is answered this way too
    assert describe(torn).startswith("Unsure — torn between Coat (45.0%) and Shirt (39.0%)")  # each with its share
    shoe = np.full(10, 0.0001)
    shoe[9], shoe[5] = 0.5049, 0.4942  # Ankle boot or Sandal: one of the ten, surely
    assert describe(decide(shoe, Calibration(temperature=1.0, threshold=0.55))) == \
        "Unsure — torn between Ankle boot (50.5%) and Sandal (49.4%)"
    flat = np.array([0.156, 0.09, 0.115, 0.103, 0.09, 0.07, 0.108, 0.111, 0.09, 0.067])  # nothing near half
    answer = decide(flat, Calibration(temperature=1.0, threshold=0.55))
    assert answer["unsure"] and answer["torn_between"] == ["T-shirt/top", "Pullover", "Sneaker"]
    assert describe(answer) == ("Unsure — no class stands out, so perhaps none of the ten classes "
                                "(likeliest: T-shirt/top 15.6%, Pullover 11.5%, Sneaker 11.1%)")  # not "torn"
    # a hotter temperature makes the same peak unsure
    assert decide(peak, Calibration(temperature=4.0, threshold=0.55))["unsure"]


def test_calibrate_fits_on_the_runs_validation_split_and_stores_it(tiny_run, fake_root, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run.path, run_dir, ignore=shutil.ignore_patterns("calibration.json"))
    result = calibrate(run_dir, fake_root)
    assert result["temperature"] > 0 and result["val_nll_after"] <= result["val_nll_before"] + 1e-4
    assert "120 validation images" in result["source"]  # 20% of the 600 fake training images
    cal = load_calibration(run_dir)
    assert cal.temperature == result["temperature"] and cal.threshold == result["threshold"]


def test_calibration_for_falls_back_without_data_and_fits_lazily_with_it(tiny_run, fake_root, tmp_path,
                                                                          monkeypatch):
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run.path, run_dir, ignore=shutil.ignore_patterns("calibration.json"))
    monkeypatch.setattr(fdata, "CACHE_DIR", tmp_path / "cache")
    cal = calibration_for(run_dir, tmp_path / "no-data")
    assert cal.temperature == 1.0 and "default" in cal.source and not (run_dir / "calibration.json").exists()
    cal = calibration_for(run_dir, fake_root)
    assert (run_dir / "calibration.json").exists() and "fitted" in cal.source
    flat = decide(np.full(10, 0.1), cal)
    assert flat["unsure"] and len(flat["torn_between"]) >= 2 and set(flat["torn_between"]) <= set(CLASSES)


def test_the_photo_threshold_catches_the_most_unmapped_photos_with_few_mapped_ones_unsure():
    from fashion_core.photos.thresholds import MAX_MAPPED_UNSURE, pick_threshold

    rng = np.random.default_rng(0)
    mapped_conf, unmapped_conf = rng.uniform(0.5, 1.0, 100), rng.uniform(0.2, 0.7, 30)
    conf = np.concatenate([mapped_conf, unmapped_conf])
    mapped = np.arange(130) < 100
    t = pick_threshold(conf, mapped)
    assert (mapped_conf < t).mean() <= MAX_MAPPED_UNSURE < (mapped_conf < t + 0.01).mean()
    assert (unmapped_conf < t).mean() > 0.6
    assert pick_threshold(np.array([0.3, 0.9]), np.array([True, True])) == 0.3  # no photo unsure below 0.3
    with pytest.raises(ValueError, match="no threshold fits"):  # rather than 0.0, "never unsure", unsaid
        pick_threshold(np.array([0.1, 0.15, 0.9]), np.array([True, True, True]))


def test_a_stored_threshold_keeps_its_photo_check_when_the_temperature_is_refitted(tiny_run, fake_root, tmp_path):
    from fashion_core.photos.thresholds import photo_check, set_threshold

    # 4 photos with a class (one wrong, one right but unsure) and 2 without (one caught)
    check = photo_check(np.array([0.9, 0.8, 0.3, 0.95, 0.2, 0.9]), np.array([1, 0, 1, 1, 0, 0]),
                        np.array([1, 1, 1, 1, 0, 0]), threshold=0.5)
    assert check["mapped_accuracy"] == 0.75 and check["mapped_unsure"] == 0.25 and check["no_class_unsure"] == 0.5
    assert check["mapped_right_and_sure"] == 0.5 and check["score"] == 0.5
    # pooled folds (each photo judged by its own fold's threshold) weight each rate by the photos behind
    # it, not each fold equally: a second fold of 2 photos with no class, both caught at its 0.4
    pooled = photo_check(np.array([0.9, 0.8, 0.3, 0.95, 0.2, 0.9, 0.2, 0.3]), np.array([1, 0, 1, 1, 0, 0, 0, 0]),
                         np.array([1, 1, 1, 1, 0, 0, 0, 0]), threshold=np.array([0.5] * 6 + [0.4] * 2))
    assert pooled["photos"] == 8 and pooled["no_class_unsure"] == 0.75 and pooled["mapped_accuracy"] == 0.75
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run.path, run_dir)
    set_threshold(run_dir, 0.5, "a test", check)
    calibrate(run_dir, fake_root)  # a new temperature keeps the threshold's source and evidence
    import json
    stored = json.loads((run_dir / "calibration.json").read_text())
    assert stored["photo_check"] == check and stored["threshold_source"] == "a test"
