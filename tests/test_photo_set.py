"""Fine-tuning on real photos: the fixed train and holdout slices, the photo loss, a run that learns from them
and its threshold."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fashion_core.augment import partial_garments
from fashion_core.config import TrainConfig
from fashion_core.data import load_split
from fashion_core.photos.folders import (HOLDOUT_SHARE, collect, load_photo_set, photo_loss, photos_in, slices,
                                         target_sets)
from fashion_core.predictor import Predictor
import fashion_core.runs as fruns
from fashion_core.runs import load_model
from fashion_core.train import train
from test_photo import SHOE, TSHIRT, draw


def test_slices_hold_out_a_fixed_stratified_share_of_every_folder():
    photos = [(folder, Path(f"/photos/{folder}/IMG_{i:04d}.jpg")) for folder, n in (("t-shirt", 795), ("hat", 123),
                                                                                 ("skirt", 7)) for i in range(n)]
    got = slices(photos)
    for folder, n in (("t-shirt", 795), ("hat", 123), ("skirt", 7)):
        held = sum(s == "holdout" for (f, _), s in zip(photos, got) if f == folder)
        assert held == round(HOLDOUT_SHARE * n)  # 15% of every folder, so every garment type is in both
    # fixed by the file names alone: the same photos elsewhere, listed in another order, fall the same way
    moved = [(f, Path("/elsewhere") / p.name) for f, p in reversed(photos)]
    assert slices(moved) == got[::-1]
    assert slices([("hat", Path("a.jpg")), ("hat", Path("b.jpg"))]).count("holdout") == 1  # even a tiny folder


def test_photo_loss_rewards_any_shoe_class_and_a_spread_belief_on_unmapped_garments():
    sets = target_sets(["t-shirt", "shoes", "hat"])
    assert sets[0].nonzero().flatten().tolist() == [0] and sets[1].nonzero().flatten().tolist() == [5, 7, 9]
    assert not sets[2].any()
    sure_sneaker = torch.full((1, 10), -10.0)
    sure_sneaker[0, 7] = 10.0
    assert photo_loss(sure_sneaker, sets[1:2], 0.5) < 1e-3  # Sneaker counts as right for shoes
    assert photo_loss(sure_sneaker, sets[0:1], 0.5) > 10  # ... and as badly wrong for a T-shirt
    flat = torch.zeros(1, 10)
    assert photo_loss(flat, sets[2:3], 1.0) < photo_loss(sure_sneaker, sets[2:3], 1.0)  # unsure on a hat wins
    assert photo_loss(flat, sets[2:3], 1.0) == pytest.approx(np.log(10), rel=1e-5)
    torn = torch.full((1, 10), -10.0)
    torn[0, [5, 7]] = 10.0  # half Sandal, half Sneaker: sure it is a shoe, not which class
    assert photo_loss(torn, sets[1:2], 0.5) < 1e-3  # 'any' shoe class is right
    assert photo_loss(torn, sets[1:2], 0.5, "top") == pytest.approx(np.log(2), rel=1e-4)  # 'top' wants one
    assert photo_loss(sure_sneaker, sets[1:2], 0.5, "top") < 1e-3


def _photo_dir(root, n: int = 6, seed: int = 0):
    """t-shirt, shoes and hat folders of n drawn garments each on a light wall, and a .txt that is no photo."""
    rng = np.random.default_rng(seed)
    shapes = {"t-shirt": TSHIRT, "shoes": SHOE, "hat": [(0.2, 0.0), (0.8, 0.0), (0.85, 0.6), (1.0, 0.7),
                                                          (1.0, 1.0), (0.0, 1.0), (0.0, 0.7), (0.15, 0.6)]}
    for folder, outline in shapes.items():
        (root / folder).mkdir(parents=True)
        for i in range(n):
            x0, y0 = rng.integers(10, 40, 2)
            wall = np.full((180, 160, 3), 215, np.uint8) + rng.integers(0, 12, (180, 160, 3), dtype=np.uint8)
            wall[draw(outline, (x0, y0, x0 + 100, y0 + 120), (160, 180))] = (50, 40, 90)
            Image.fromarray(wall).save(root / folder / f"p{i}.png")
    (root / "hat" / "notes.txt").write_text("not a photo")
    return root


def test_only_the_train_slice_is_loaded_and_each_photo_gets_its_classes(tmp_path):
    root = _photo_dir(tmp_path / "photos", n=4)
    assert len(collect(root)) == 12  # the .txt is no photo
    assert len(load_photo_set(root, "holdout")[2]) == 3 and len(load_photo_set(root, "all")[2]) == 12
    images, sets, folders = load_photo_set(root, "train")
    assert images.shape == (9, 28, 28) and images.dtype == torch.uint8
    assert sorted(set(folders)) == ["hat", "shoes", "t-shirt"] and len(folders) == 9
    assert images[:, [0, 0, -1, -1], [0, -1, 0, -1]].float().mean() < 40  # pipeline output: garment on black
    assert sets[[f == "shoes" for f in folders]].sum(1).tolist() == [3, 3, 3]
    with pytest.raises(ValueError, match="photo_dir"):
        load_photo_set(tmp_path / "photos" / "hat", "train")  # no garment folders in there


def test_more_views_add_reframed_shots_of_each_photo_that_still_show_the_garment(tmp_path):
    from fashion_core.photos.pipeline import load_image
    from fashion_core.photos.folders import reframe

    root = _photo_dir(tmp_path / "photos", n=3)
    one, _, folders1 = load_photo_set(root, "train")
    three, sets3, folders3 = load_photo_set(root, "train", views=3)
    assert three.shape == (18, 28, 28) and folders3 == [f for f in folders1 for _ in range(3)]
    assert torch.equal(three[::3], one)  # the first view is the photo itself
    assert all(not torch.equal(three[i], three[i + 1]) for i in range(0, 18, 3))  # the others differ
    assert sets3[[f == "shoes" for f in folders3]].sum(1).tolist() == [3] * 6  # and keep their classes
    ink = (three > 40).float().mean((1, 2))  # each view is still a garment on black filling the frame
    assert three[:, [0, 0, -1, -1], [0, -1, 0, -1]].float().mean() < 40 and bool((ink > 0.2).all())
    photo = load_image(collect(root)[0][1])
    a, b = reframe(photo, 7), reframe(photo, 7)
    assert a.size == b.size and a.tobytes() == b.tobytes()  # deterministic in its seed
    assert 0.8 * photo.width - 1 <= a.width <= photo.width and 0.8 * photo.height - 1 <= a.height <= photo.height


def test_a_photo_run_picks_its_threshold_on_the_holdout_slice_only(tmp_path, fake_root, tiny_run, monkeypatch):
    import json
    import shutil

    from fashion_core.photos.thresholds import fit_threshold

    photos = _photo_dir(tmp_path / "photos", n=8)
    cfg = tiny_run.config.replace(epochs=1, init_from=str(tiny_run.path), photo_dir=str(photos), photo_batch=8)
    run = train(cfg, tmp_path / "tuned", data_root=fake_root)  # fits the temperature, then the threshold
    cal = json.loads((run.path / "calibration.json").read_text())
    held = photos_in(photos, "holdout")
    assert len(held) == 3 and "holdout slice" in cal["threshold_source"]  # one of each folder's 8 (15%, rounded)
    assert cal["photo_check"]["photos"] == 3 and cal["photo_check"]["no_class"] == 1
    assert 0.2 <= cal["threshold"] <= 0.95
    # the train slice plays no part: with every photo the run learned from overwritten, the same threshold
    for _, path in photos_in(photos, "train"):
        path.write_bytes(b"not a photo any more")
    assert photos_in(photos, "holdout") == held
    (run.path / "calibration.json").write_text(json.dumps({**cal, "threshold": 0.9}))
    assert fit_threshold(run) == cal["photo_check"]
    assert json.loads((run.path / "calibration.json").read_text())["threshold"] == cal["threshold"]
    elsewhere = shutil.copytree(photos, tmp_path / "elsewhere")
    with pytest.raises(ValueError, match="holdout slice"):  # a photo run's threshold comes from its own folder
        fit_threshold(run, elsewhere)
    with pytest.raises(ValueError, match="learned from no photos"):
        fit_threshold(tiny_run)


def test_config_refuses_missing_photos_and_a_start_run_of_another_model(tmp_path, tiny_run):
    with pytest.raises(ValueError, match="photo_dir"):
        TrainConfig(photo_dir=str(tmp_path)).validate()  # exists, but holds no garment folders
    with pytest.raises(ValueError, match="init_from"):
        TrainConfig(model="cnn2_mlp", init_from=str(tmp_path / "nope")).validate()
    with pytest.raises(ValueError, match="init_from.*cnn2_mlp"):
        TrainConfig(model="mlp_1hidden", init_from=str(tiny_run.path)).validate()
    # validation images of the fine-tune must be ones the start run held out too
    for other_split in (dict(seed=1), dict(val_fraction=0.1), dict(val_split="stratified", val_count=100)):
        with pytest.raises(ValueError, match="^init_from: held out a different validation split"):
            tiny_run.config.replace(init_from=str(tiny_run.path), **other_split).validate()
    tiny_run.config.replace(init_from=str(tiny_run.path), val_split="none").validate()
    with pytest.raises(ValueError, match="outlier_weight"):
        TrainConfig(outlier_weight=-1).validate()


def test_fine_tuning_on_photos_starts_from_the_run_and_learns_to_doubt_hats(tmp_path, fake_root, tiny_run):
    photos = _photo_dir(tmp_path / "photos", n=7)  # 6 of each folder in the train slice, as the run learns
    images, _, folders = load_photo_set(photos, "train")
    hats = images[[f == "hat" for f in folders]].numpy()
    before = Predictor(load_model(tiny_run.path)).model_probabilities(hats).max(1).mean()
    cfg = tiny_run.config.replace(epochs=1, init_from=str(tiny_run.path), photo_dir=str(photos),
                                  photo_batch=8, outlier_weight=2.0)
    run = train(cfg, tmp_path / "tuned", data_root=fake_root)
    assert run.config.init_from == str(tiny_run.path) and run.eval["test_accuracy"] > 0
    after = Predictor(load_model(run.path)).model_probabilities(hats).max(1).mean()
    assert after < before - 0.1 and after < 0.5  # it learned the hats are none of its classes


def test_partial_outliers_train_with_a_uniform_target_without_photos(tmp_path, fake_root, tiny_run):
    cfg = tiny_run.config.replace(epochs=1, init_from=str(tiny_run.path), partial_outliers=16, outlier_weight=2.0)
    run = train(cfg, tmp_path / "parts", data_root=fake_root)
    parts = partial_garments(load_split(False, fake_root).images[:64].float().div(255).unsqueeze(1),
                             torch.Generator().manual_seed(1))
    parts = (parts[:, 0] * 255).round().to(torch.uint8).numpy()
    before = Predictor(load_model(tiny_run.path)).model_probabilities(parts).max(1).mean()
    after = Predictor(load_model(run.path)).model_probabilities(parts).max(1).mean()
    assert run.config.partial_outliers == 16 and after < before - 0.05  # cut garments now read as no class


def test_predict_defaults_to_the_run_tuned_on_photos(tmp_path, tiny_run, monkeypatch):
    import json
    import shutil

    import fashion_core.photos.selection as selection

    for name, acc, photos in (("best_on_fmnist", 99.0, ""), ("tuned", 90.0, "photos"), ("other", 95.0, "")):
        shutil.copytree(tiny_run.path, tmp_path / name)
        ev = json.loads((tmp_path / name / "eval.json").read_text())
        (tmp_path / name / "eval.json").write_text(json.dumps({**ev, "test_accuracy": acc}))
        cfg = json.loads((tmp_path / name / "config.json").read_text())
        (tmp_path / name / "config.json").write_text(json.dumps({**cfg, "photo_dir": photos}))
    monkeypatch.setattr(fruns, "CHECKPOINT_DIR", tmp_path)
    assert selection.default_run().name == "tuned"  # uploads are photos: the photo-tuned run answers
    shutil.copytree(tmp_path / "tuned", tmp_path / "tuned_too")
    for name, members, acc in (("vote_tuned", ["tuned", "tuned_too"], 99.5),
                               ("vote_mixed", ["tuned", "best_on_fmnist"], 99.9)):  # the best, were it counted
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(json.dumps({"kind": "ensemble", "members": members,
                                                                 "weights": [0.5, 0.5]}))
        ev = json.loads((tmp_path / "tuned" / "eval.json").read_text())
        (tmp_path / name / "eval.json").write_text(json.dumps({**ev, "test_accuracy": acc}))
    # a vote of photo-tuned runs counts as tuned on photos; one with an untuned member does not
    assert selection.default_run().name == "vote_tuned"
    for name in ("vote_tuned", "vote_mixed", "tuned_too"):
        shutil.rmtree(tmp_path / name)
    shutil.rmtree(tmp_path / "tuned")
    assert selection.default_run().name == "best_on_fmnist"  # none tuned: the best test accuracy


def test_among_photo_tuned_runs_photo_evidence_picks_the_default_not_fashion_mnist(tmp_path, tiny_run, monkeypatch):
    import json
    import shutil

    import fashion_core.photos.selection as selection
    from fashion_core.photos.thresholds import set_threshold

    for name, acc, score in (("better_on_photos", 90.0, 0.8), ("better_on_fmnist", 95.0, 0.7), ("unchecked", 99.0, None)):
        shutil.copytree(tiny_run.path, tmp_path / name)
        ev = json.loads((tmp_path / name / "eval.json").read_text())
        (tmp_path / name / "eval.json").write_text(json.dumps({**ev, "test_accuracy": acc}))
        cfg = json.loads((tmp_path / name / "config.json").read_text())
        (tmp_path / name / "config.json").write_text(json.dumps({**cfg, "photo_dir": "photos"}))
        if score is not None:
            set_threshold(tmp_path / name, 0.5, "a test", {"photos": 10, "no_class": 2, "score": score})
    monkeypatch.setattr(fruns, "CHECKPOINT_DIR", tmp_path)
    assert selection.default_run().name == "better_on_photos"  # not the run with the best test accuracy


def _benchmark():
    import importlib.util

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "photo_accuracy.py"
    spec = importlib.util.spec_from_file_location("photo_accuracy", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_benchmark_leaves_a_run_that_learned_from_measured_photos_out_of_its_headline(
        tmp_path, fake_root, tiny_run, capsys, monkeypatch):
    import shutil

    monkeypatch.setenv("FASHION_MNIST_ROOT", str(fake_root))
    dev = _photo_dir(tmp_path / "dev", n=3, seed=1)
    clean = _photo_dir(tmp_path / "train", n=7, seed=2)  # other photos of the same kind
    leaky = shutil.copytree(clean, tmp_path / "leaky")
    for folder, path in photos_in(dev, "all")[:2]:  # two measured photos under other names, in the train slice too
        shutil.copy(path, leaky / folder / f"renamed_{path.name}")
    base = tiny_run.config.replace(epochs=1, init_from=str(tiny_run.path), photo_batch=8)
    fair = train(base.replace(photo_dir=str(clean)), tmp_path / "fair", data_root=fake_root)
    unfair = train(base.replace(photo_dir=str(leaky)), tmp_path / "unfair", data_root=fake_root)
    bench = _benchmark()

    assert bench.main([str(dev), "--model", str(fair.path), "--also", str(unfair.path)]) == 0
    out = capsys.readouterr().out
    headline = out.split("### Headline")[1].split("###")[0]
    assert "naive + fair" in headline and "ours + fair" in headline and "unfair" not in headline
    assert headline.count("/6;") == 4 and headline.count("/3;") == 2  # 6 garments with a class, 3 hats; intervals
    apart = out.split("### Not in the headline")[1]
    assert "unfair" in apart and "learned from or chose its threshold on 2 of these photos" in apart
    assert "### Confusion between the seven folders" in out and "### Per folder" in out

    # a run whose photo folder is gone cannot be cleared: never in the headline; with nothing fair, exit 1
    shutil.rmtree(leaky)
    assert bench.main([str(dev), "--model", str(unfair.path)]) == 1
    out = capsys.readouterr().out
    assert "### Headline" not in out and "is not here, so what it learned from cannot be checked" in out


def test_distillation_pulls_a_fine_tune_back_to_the_start_runs_answers(tmp_path, fake_root, tiny_run):
    """distill_weight adds weight x KL(start run's answers || this run's) on the batch's Fashion-MNIST images: little
    while the fine-tune still answers as its start run does, more once it has moved away from it."""
    from fashion_core.runs import Run
    from fashion_core.train import setup, training_step

    photos = _photo_dir(tmp_path / "photos", n=7)
    cfg = tiny_run.config.replace(epochs=1, init_from=str(tiny_run.path), photo_dir=str(photos), photo_batch=8)
    losses = {}
    for w in (0.0, 5.0):
        for moved in (False, True):
            s = setup(cfg.replace(distill_weight=w), Run(tmp_path / f"s{w}{moved}"), torch.device("cpu"),
                      lambda p: None, fake_root)
            assert (s.teacher is not None) == bool(w)
            if moved:  # as if some photo steps had already changed it
                with torch.no_grad():
                    for p in s.model.parameters():
                        p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(1)) * 0.05)
            losses[w, moved] = training_step(s, torch.arange(32))[0].item()
    # the start run answers in eval mode, the fine-tune in training mode (dropout, batch statistics), so even
    # unmoved it pays a little; moved away from the start run's weights it pays more
    still, moved = losses[5.0, False] - losses[0.0, False], losses[5.0, True] - losses[0.0, True]
    assert 0 <= still < moved / 2, losses
    assert all(not p.requires_grad for p in s.teacher.parameters())  # the start run itself never learns
    with pytest.raises(ValueError, match="distill_weight: needs init_from"):
        TrainConfig(distill_weight=1.0).validate()
    with pytest.raises(ValueError, match="distill_weight: must be in"):
        cfg.replace(distill_weight=-1.0).validate()
