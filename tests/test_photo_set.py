"""Fine-tuning on real photos: the fixed shares, the photo loss, and a run that learns from them."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from PIL import Image

from fashion_core.augment import partial_garments
from fashion_core.config import TrainConfig
from fashion_core.data import load_split
from fashion_core.photos.folders import QUARTERS, collect, load_photo_set, photo_loss, quarter, share, target_sets
from fashion_core.predictor import Predictor
from fashion_core.runs import load_model
from fashion_core.train import train
from test_photo import SHOE, TSHIRT, draw


def test_shares_are_fixed_by_file_name_half_held_out():
    names = [f"IMG_{i:04d}.jpg" for i in range(2000)]
    shares = [share(n) for n in names]
    assert shares == [share(f"/elsewhere/other-folder/{n}") for n in names]  # folder does not matter
    frac = {s: shares.count(s) / len(names) for s in ("held-out", "calib", "train")}
    assert abs(frac["held-out"] - 0.5) < 0.04 and abs(frac["calib"] - 0.25) < 0.04 and abs(frac["train"] - 0.25) < 0.04
    quarters = [quarter(n) for n in names]  # the held-out half is two quarters, for cross-validation
    assert all(q == s or q.startswith(s) for q, s in zip(quarters, shares))
    assert all(abs(quarters.count(q) / len(names) - 0.25) < 0.04 for q in QUARTERS)


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


def _names(which: str, n: int) -> list[str]:
    """n file names that fall in the share or quarter which."""
    return list(itertools.islice((f"p{i}.png" for i in itertools.count()
                                  if which in (share(f"p{i}.png"), quarter(f"p{i}.png"))), n))


def _photo_dir(root, n: int = 6, calib: int = 0, held: int = 0, seed: int = 0):
    """t-shirt, shoes and hat folders of drawn garments on a light wall; n train-share and `calib`
    calib-share names, plus `held` names in each held-out quarter (one held-out file when 0, which
    a run learning from train and calib must never load)."""
    rng = np.random.default_rng(seed)
    shapes = {"t-shirt": TSHIRT, "shoes": SHOE, "hat": [(0.2, 0.0), (0.8, 0.0), (0.85, 0.6), (1.0, 0.7),
                                                          (1.0, 1.0), (0.0, 1.0), (0.0, 0.7), (0.15, 0.6)]}
    for folder, outline in shapes.items():
        (root / folder).mkdir(parents=True)
        held_out = _names("held-out-a", held) + _names("held-out-b", held) if held else _names("held-out", 1)
        for name in _names("train", n) + _names("calib", calib) + held_out:
            x0, y0 = rng.integers(10, 40, 2)
            wall = np.full((180, 160, 3), 215, np.uint8) + rng.integers(0, 12, (180, 160, 3), dtype=np.uint8)
            wall[draw(outline, (x0, y0, x0 + 100, y0 + 120), (160, 180))] = (50, 40, 90)
            Image.fromarray(wall).save(root / folder / name)
    (root / "hat" / "notes.txt").write_text("not a photo")
    return root


def test_only_the_train_share_is_loaded_and_each_photo_gets_its_classes(tmp_path):
    root = _photo_dir(tmp_path / "photos", n=3)
    assert len(collect(root)) == 12  # the .txt is no photo
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

    root = _photo_dir(tmp_path / "photos", n=2)
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


def test_a_run_learns_from_named_quarters_and_the_held_out_share_is_not_one(tmp_path):
    root = _photo_dir(tmp_path / "photos", n=3, calib=2)
    assert len(load_photo_set(root, "calib")[2]) == 6
    images, _, folders = load_photo_set(root, ["train", "calib"])
    assert images.shape == (15, 28, 28) and folders.count("hat") == 5
    held = load_photo_set(root, "held-out")[2]  # the share is both held-out quarters
    assert len(held) == 3 and len(held) == sum(len(_quarter_or_none(root, q)) for q in ("held-out-a", "held-out-b"))
    assert TrainConfig(photo_dir=str(root), photo_shares="train,calib").validate()
    assert TrainConfig(photo_dir=str(root), photo_shares=",".join(QUARTERS)).validate()
    for bad in ("held-out", "train,held-out", "", "train,train"):
        with pytest.raises(ValueError, match="^photo_shares: must name quarters.*held-out-b"):
            TrainConfig(photo_dir=str(root), photo_shares=bad).validate()


def test_the_photos_a_run_learned_from_are_known_by_content_under_any_name(tmp_path):
    import shutil

    from fashion_core.photos.folders import fingerprint, photos_of

    root = _photo_dir(tmp_path / "photos", n=2, calib=1)
    learned = photos_of(root, ("train",))
    assert len(learned) == 6  # two drawn garments in each of three folders
    train_photo = next(p for _, p in collect(root) if share(p) == "train")
    held_photo = next(p for _, p in collect(root) if share(p) == "held-out")
    copy = tmp_path / "elsewhere" / "renamed.png"
    copy.parent.mkdir()
    shutil.copy(train_photo, copy)
    assert fingerprint(copy) in learned and fingerprint(held_photo) not in learned
    assert len(photos_of(root, ("held-out-a", "held-out-b"))) == len(photos_of(root, ("held-out",))) == 3


def _quarter_or_none(root, q: str) -> list[str]:
    try:
        return load_photo_set(root, q)[2]
    except ValueError:  # none of the drawn photos fell in this quarter
        return []


def _module(path: str):
    """A script of the project (scripts/..., benchmarks/...) as a module."""
    import importlib.util

    from fashion_core.runs import CHECKPOINT_DIR

    spec = importlib.util.spec_from_file_location(path.replace("/", "_")[:-3], CHECKPOINT_DIR.parent / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cross_fit_setup(tmp_path, fake_root, tiny_run, monkeypatch, held: int = 0):
    """scripts/photo_threshold_cv.py as a module, a photo folder with calib photos (and `held` in each
    held-out quarter), and a one-epoch fine-tune of tiny_run on its train and calib shares."""
    cv = _module("scripts/photo_threshold_cv.py")
    monkeypatch.setenv("FASHION_MNIST_ROOT", str(fake_root))
    photos = _photo_dir(tmp_path / "photos", n=3, calib=3, held=held)
    cfg = tiny_run.config.replace(epochs=1, init_from=str(tiny_run.path), photo_dir=str(photos), photo_batch=8,
                                  photo_shares="train,calib")
    return cv, photos, cfg


def test_a_run_that_learned_from_train_and_calib_gets_a_cross_fitted_threshold(tmp_path, fake_root, tiny_run,
                                                                                 monkeypatch):
    import json

    cv, photos, cfg = _cross_fit_setup(tmp_path, fake_root, tiny_run, monkeypatch)
    run = train(cfg, tmp_path / "both", data_root=fake_root)
    assert cv.main([str(run.path), "--cv-dir", str(tmp_path / "cv")]) == 0
    folds = {learn: json.loads((tmp_path / "cv" / f"both_on_{learn}" / "config.json").read_text())
             for learn in ("train", "calib")}
    assert {learn: c["photo_shares"] for learn, c in folds.items()} == {"train": "train", "calib": "calib"}
    cal = json.loads((run.path / "calibration.json").read_text())
    assert "cross-fitted" in cal["threshold_source"] and "on the calib quarter (9 photos)" in cal["threshold_source"]
    assert 0.2 <= cal["threshold"] <= 0.95 and cal["temperature"] > 0
    check = cal["photo_check"]  # the evidence behind the threshold: both folds' held-back shares pooled
    both = sum(len(load_photo_set(photos, share)[2]) for share in ("train", "calib"))
    assert check["photos"] == both and 0 <= check["score"] <= 1
    # a variant of the recipe is cross-fitted under its own fold names and changes nothing stored
    stored = (run.path / "calibration.json").read_bytes()
    assert cv.main([str(run.path), "--cv-dir", str(tmp_path / "cv"), "--set", "lr=0.001"]) == 0
    assert json.loads((tmp_path / "cv" / "both_lr0.001_on_calib" / "config.json").read_text())["lr"] == 0.001
    assert (run.path / "calibration.json").read_bytes() == stored
    assert cv.main([str(run.path), "--set", "no_such_field=1"]) == 2
    # a fold left by an earlier recipe under the same name is trained again, not taken as evidence
    stale = tmp_path / "cv" / "both_on_train" / "config.json"
    stale.write_text(json.dumps({**json.loads(stale.read_text()), "lr": 0.5}))
    assert cv.main([str(run.path), "--cv-dir", str(tmp_path / "cv")]) == 0
    assert json.loads(stale.read_text())["lr"] == cfg.lr
    # a fold that was stopped before its evaluation (same recipe, no eval.json) is resumed, not thrown away
    unfinished = tmp_path / "cv" / "both_on_calib"
    (unfinished / "eval.json").unlink()
    (unfinished / "kept.txt").write_text("")
    assert cv.main([str(run.path), "--cv-dir", str(tmp_path / "cv")]) == 0
    assert (unfinished / "kept.txt").exists() and (unfinished / "eval.json").exists()
    before = (tiny_run.path / "calibration.json").read_bytes()
    assert cv.main([str(tiny_run.path), "--photos", str(photos), "--cv-dir", str(tmp_path / "cv2")]) == 2
    assert (tiny_run.path / "calibration.json").read_bytes() == before and not (tmp_path / "cv2").exists()


def test_a_run_that_learned_from_every_photo_is_cross_validated_over_the_four_quarters(
        tmp_path, fake_root, tiny_run, monkeypatch, capsys):
    import json

    cv, photos, cfg = _cross_fit_setup(tmp_path, fake_root, tiny_run, monkeypatch, held=2)
    run = train(cfg.replace(photo_shares=",".join(QUARTERS)), tmp_path / "all", data_root=fake_root)
    assert cv.main([str(run.path), "--cv-dir", str(tmp_path / "cv"), "--fold", "held-out-b"]) == 0
    only = sorted(p.name for p in (tmp_path / "cv").iterdir())
    assert only == ["all_on_train+calib+held-out-a"]  # --fold: just the fold that leaves held-out-b out
    assert not json.loads((run.path / "calibration.json").read_text()).get("threshold_source")
    assert cv.main([str(run.path), "--cv-dir", str(tmp_path / "cv")]) == 0
    for q in QUARTERS:  # every fold learned from the other three quarters only
        fold = tmp_path / "cv" / ("all_on_" + "+".join(o for o in QUARTERS if o != q))
        assert json.loads((fold / "config.json").read_text())["photo_shares"] == ",".join(o for o in QUARTERS if o != q)
    out = capsys.readouterr().out
    assert "cross-validated over 4 quarters (30 photos, 10 with no class; each quarter's threshold picked" in out
    cal = json.loads((run.path / "calibration.json").read_text())
    assert cal["threshold_source"].startswith("mean of 4 cross-fitted thresholds")
    assert "on the held-out-a quarter (6 photos) for the same recipe trained on train + calib + held-out-b" in (
        cal["threshold_source"])
    assert cal["photo_check"]["photos"] == 30
    # the benchmark scores each photo it learned from by the fold that left its quarter out ...
    bench = _module("benchmarks/photo_accuracy.py")
    args = ["--plain", str(tiny_run.path), "--model", str(tiny_run.path), "--tuned", str(run.path)]
    assert bench.main([str(photos), *args, "--cv-dir", str(tmp_path / "cv")]) == 0
    out = capsys.readouterr().out
    assert "learned from 30 of these photos, so each is scored by the fold that left its quarter out" in out
    assert "### all photos (tuned: none was learned from, or each one learned from is scored by a fold" in out
    assert bench.main([str(photos), *args, "--cv-dir", str(tmp_path / "nothing")]) == 2  # ... and needs them
    assert "its folds are not trained" in capsys.readouterr().err
    # ... while photos it never saw (other drawings) are its own to answer, folds or not
    other = _photo_dir(tmp_path / "other", n=2, calib=1, seed=1)
    assert bench.main([str(other), *args, "--cv-dir", str(tmp_path / "nothing")]) == 0
    out = capsys.readouterr().out
    assert "of these photos" not in out and "### all photos" in out
    # a quarter the run did not learn from has no fold
    both = train(cfg, tmp_path / "both", data_root=fake_root)
    assert cv.main([str(both.path), "--cv-dir", str(tmp_path / "cv"), "--fold", "held-out-a"]) == 2
    # each quarter's threshold is kept, so a later measurement judges the quarter the same way
    assert set(cal["photo_check"]["quarter_thresholds"]) == set(QUARTERS)
    # a variant may not change which photos the folds learn from
    assert cv.main([str(run.path), "--cv-dir", str(tmp_path / "cv"), "--set", 'photo_shares="train"']) == 2
    # folds shipped inside the run are reused however the photo folder is written, and never replaced
    import shutil

    shutil.copytree(tmp_path / "cv", run.path / "folds")
    import os

    assert cv.main([str(run.path), "--photos", os.path.relpath(photos)]) == 0  # a relative path this time
    assert "training" not in capsys.readouterr().out
    shipped = run.path / "folds" / "all_on_train+calib+held-out-a"
    shipped_cfg = shipped / "config.json"
    shipped_cfg.write_text(json.dumps({**json.loads(shipped_cfg.read_text()), "lr": 0.5}))
    assert cv.main([str(run.path)]) == 2 and "it ships with its run" in capsys.readouterr().err
    assert (shipped / "eval.json").exists()
    # a learned photo copied under a new name is still known, and scored by its fold
    renamed = tmp_path / "renamed"
    (renamed / "hat").mkdir(parents=True)
    shutil.copy(next((photos / "hat").glob("*.png")), renamed / "hat" / "zz-new-name.png")
    assert bench.main([str(renamed), *args, "--cv-dir", str(tmp_path / "cv")]) == 0
    assert "learned from 1 of these photos" in capsys.readouterr().out
    # the run keeps the fingerprints of what it learned from, so it can tell without the photo folder
    learned = json.loads((run.path / "photos_learned.json").read_text())
    assert len(learned) == 30 and set(learned.values()) == set(QUARTERS)
    import shutil

    shutil.rmtree(photos)
    assert bench.main([str(other), *args, "--cv-dir", str(tmp_path / "nothing")]) == 0


def test_an_ensemble_of_photo_tuned_runs_gets_a_threshold_from_the_same_vote_of_their_folds(
        tmp_path, fake_root, tiny_run, monkeypatch):
    import json

    from fashion_core.ensemble import create_ensemble
    from fashion_core.runs import Run

    cv, _, cfg = _cross_fit_setup(tmp_path, fake_root, tiny_run, monkeypatch)
    a = train(cfg, tmp_path / "a", data_root=fake_root)
    b = train(cfg.replace(lr=cfg.lr / 2), tmp_path / "b", data_root=fake_root)
    vote = create_ensemble(tmp_path / "vote", [a.path, b.path], [0.5, 0.5], data_root=fake_root)
    assert cv.main([str(vote.path), "--cv-dir", str(tmp_path / "cv")]) == 0
    for learn in ("train", "calib"):  # each fold votes, with the same weights, the members' folds on one share
        fold = tmp_path / "cv" / f"vote_on_{learn}"
        assert Run(fold).config.weights == (0.5, 0.5)
        assert {m.config.photo_shares for m in Run(fold).members()} == {learn}
        assert sorted(m.name for m in Run(fold).members()) == [f"a_on_{learn}", f"b_on_{learn}"]
    cal = json.loads((vote.path / "calibration.json").read_text())
    assert "cross-fitted" in cal["threshold_source"] and 0.2 <= cal["threshold"] <= 0.95
    # a vote with a member that never saw photos has no both-share recipe to cross-fit
    mixed = create_ensemble(tmp_path / "mixed", [a.path, tiny_run.path], [0.5, 0.5], data_root=fake_root)
    assert cv.main([str(mixed.path), "--cv-dir", str(tmp_path / "cv2")]) == 2 and not (tmp_path / "cv2").exists()


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
    photos = _photo_dir(tmp_path / "photos")
    hats, _, _ = load_photo_set(photos, "train")
    hats = hats[:6].numpy()  # folders load in sorted order: hat, shoes, t-shirt
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
    monkeypatch.setattr(selection, "CHECKPOINT_DIR", tmp_path)
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
    monkeypatch.setattr(selection, "CHECKPOINT_DIR", tmp_path)
    assert selection.default_run().name == "better_on_photos"  # not the run with the best test accuracy
