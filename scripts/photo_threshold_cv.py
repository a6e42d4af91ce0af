"""A cross-fitted unsure threshold for a run (or an ensemble of runs) that fine-tuned on both the
train and calib photo shares.

    python scripts/photo_threshold_cv.py RUN [--photos PHOTO_DIR] [--cv-dir runs/photo_cv]
    python scripts/photo_threshold_cv.py RUN --set outlier_weight=3 [--fold train]   # try a variant

Such a run has no photos left to choose its threshold on (the held-out share only ever measures).
So its recipe is trained twice more, each time on one share only (CV_DIR/NAME_on_train and
CV_DIR/NAME_on_calib; finished folds are reused); for an ensemble, each member's recipe is, and the
fold is the same vote of those. Each fold's threshold is picked on the share it did not learn from
(fashion_core.calibration.pick_threshold) and their mean goes into RUN's calibration.json, with
both fold thresholds named in its threshold_source. It also prints, per fold, how well calibrated
confidence separates photos with no class from the others there (AUROC), for the fold and for each
member's fold: the evidence for or against voting.

With --set FIELD=VALUE (repeatable; single runs only) it cross-fits a variant of RUN's recipe
instead (folds named after the change) and only prints: nothing is stored, so variants can be
compared on the train and calib shares before any of them is trained for real. --fold trains
and measures one fold, so two processes can share the work.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sklearn.metrics import roc_auc_score  # noqa: E402

from fashion_core.calibration import (calibrate, calibrated, load_calibration, photo_check,  # noqa: E402
                                      pick_threshold, set_threshold)
from fashion_core.config import TrainConfig, parse_setting  # noqa: E402
from fashion_core.ensemble import create_ensemble, is_ensemble, member_runs  # noqa: E402
from fashion_core.photo_set import load_photo_set  # noqa: E402
from fashion_core.predict import learned_shares, probabilities  # noqa: E402
from fashion_core.runs import CHECKPOINT_DIR, Run, load_model, read_json  # noqa: E402
from fashion_core.train import train  # noqa: E402

FOLDS = {"train": "calib", "calib": "train"}  # learn from -> threshold picked on


def variant_name(changes: dict) -> str:
    """'outlier_weight=3,epochs=8' -> '_outlier_weight3_epochs8': part of a variant's fold names."""
    return "".join(f"_{k}{v}" for k, v in changes.items()).replace("/", "-").replace(" ", "")


def variant_recipe(run: Run, photo_dir: Path, changes: dict, learn: str | None = None) -> TrainConfig:
    """RUN's recipe on photo_dir with changes, learning from one share when learn is given; raises
    ValueError (or TypeError) when the result is not a valid recipe."""
    return TrainConfig.from_dict({**run.config.to_dict(), "photo_dir": str(photo_dir),
                                  **({"photo_shares": learn} if learn else {}), **changes}).validate()


def fold_run(run: Run, photo_dir: Path, learn: str, cv_dir: Path, changes: dict | None = None) -> Run:
    """RUN's recipe (with changes, if any) trained on one share only (reused once finished); for an
    ensemble, the same weighted vote of its members' folds."""
    changes = changes or {}
    fold = Run(cv_dir / f"{run.path.name}{variant_name(changes)}_on_{learn}")
    if is_ensemble(run.path):
        members = [fold_run(m, photo_dir, learn, cv_dir).path for m in member_runs(run.path)]
        if fold.eval and all((m / "eval.json").stat().st_mtime <= (fold.path / "eval.json").stat().st_mtime
                             for m in members):
            return fold
        shutil.rmtree(fold.path, ignore_errors=True)  # a member's fold was trained again since
        return create_ensemble(fold.path, members, read_json(run.path / "ensemble.json")["weights"])
    recipe = variant_recipe(run, photo_dir, changes, learn)
    same = (fold.path / "config.json").exists() and fold.config.replace(note=recipe.note) == recipe
    if same and fold.eval:
        return fold
    if fold.path.exists() and not same:  # a fold of an earlier recipe under this name: not evidence for this one
        print(f"{fold.path} was trained with another recipe; training it again", flush=True)
        shutil.rmtree(fold.path)
    print(f"{'resuming' if same else 'training'} {fold.path} on the {learn} share ...", flush=True)
    train(recipe, fold.path)
    calibrate(fold)
    return fold


def auroc(score: np.ndarray, positive: np.ndarray) -> float:
    """P(a positive scores above a negative), ties counted half; nan when one side is empty."""
    return float(roc_auc_score(positive, score)) if 0 < positive.sum() < len(positive) else float("nan")


def confidences(run: Run, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N,) calibrated top probabilities (what "unsure" compares with the threshold) and top classes."""
    probs = calibrated(probabilities(load_model(run), images, run.config.tta_flip), load_calibration(run).temperature)
    return probs.max(1).round(6), probs.argmax(1)  # rounded as decide() reports it


def fold_threshold(run: Run, photo_dir: Path, learn: str, cv_dir: Path, changes: dict | None = None,
                   ) -> tuple[float, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """RUN's fold on one share; its threshold picked on the other share, and what it was picked on:
    (calibrated confidence, top class right, has a class) per photo there."""
    fold = fold_run(run, photo_dir, learn, cv_dir, changes)
    images, sets, _ = load_photo_set(photo_dir, FOLDS[learn])
    images, sets = images.numpy(), sets.numpy()
    mapped = sets.any(1)
    conf, top = confidences(fold, images)
    correct = sets[np.arange(len(top)), top]
    parts = member_runs(fold.path) if is_ensemble(fold.path) else []
    t = pick_threshold(conf, mapped)
    check = photo_check(conf, correct, mapped, t)
    val = (fold.metrics or [{}])[-1].get("val_acc")
    print(f"learned from {learn}, measured on {FOLDS[learn]} ({len(images)} photos, {(~mapped).sum()} with no "
          f"class): AUROC no-class vs mapped {auroc(-conf, ~mapped):.3f}" +
          "".join(f"; {m.name} {auroc(-confidences(m, images)[0], ~mapped):.3f}" for m in parts) +
          f"; threshold {t:.2f}: mapped accuracy {check['mapped_accuracy']:.1%}, unsure on {check['mapped_unsure']:.1%}"
          f" of mapped and {check['no_class_unsure']:.1%} with no class, score {check['score']:.3f}" +
          (f"; Fashion-MNIST validation {val:.2f}%" if val else ""), flush=True)
    return t, (conf, correct, mapped)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--photos", type=Path, default=None, help="labelled photos (default: the run's photo_dir)")
    ap.add_argument("--cv-dir", type=Path, default=CHECKPOINT_DIR.parent / "runs" / "photo_cv",
                    help="where the fold runs go (default: runs/photo_cv, git-ignored)")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="cross-fit this variant of RUN's recipe and store nothing (JSON value)")
    ap.add_argument("--fold", choices=list(FOLDS), help="only the fold that learns from this share")
    args = ap.parse_args(argv)
    run = Run(args.run)
    if not run.eval:
        print(f"error: {run.path} is not a finished run", file=sys.stderr)
        return 2
    singles = member_runs(run.path) if is_ensemble(run.path) else [run]
    if any(learned_shares(r) != set(FOLDS) for r in singles):
        print(f"error: {run.path} (or one of its members) did not learn from both the train and calib shares of "
              "a photo folder; benchmarks/photo_accuracy.py --fit-threshold picks its threshold on the calib share",
              file=sys.stderr)
        return 2
    photo_dir = args.photos or Path(singles[0].config.photo_dir)
    if not photo_dir.is_dir():
        print(f"error: no photo folder at {photo_dir}; pass --photos", file=sys.stderr)
        return 2
    if args.set and is_ensemble(run.path):
        print("error: --set needs a single run, not an ensemble", file=sys.stderr)
        return 2
    try:  # a variant must be a valid recipe before anything trains
        changes = dict(parse_setting(item) for item in args.set)
        if changes:
            variant_recipe(run, photo_dir, changes)
    except (ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    picked = {learn: fold_threshold(run, photo_dir, learn, args.cv_dir, changes)
              for learn in FOLDS if args.fold in (None, learn)}
    if changes or args.fold:
        return 0  # a variant or a single fold: compared, not stored
    t = float(np.mean([t for t, _ in picked.values()]))
    # both folds' photos pooled, each judged by its own fold's threshold
    pooled = [np.concatenate(a) for a in zip(*(seen for _, seen in picked.values()))]
    per_photo = np.concatenate([np.full(len(seen[0]), t_) for t_, seen in picked.values()])
    set_threshold(run, t, "mean of two cross-fitted thresholds on " + photo_dir.name + ": " + "; ".join(
        f"{t_:.2f} on the {FOLDS[learn]} share ({len(seen[0])} photos) for the same recipe trained on the {learn} "
        "share" for learn, (t_, seen) in picked.items()), photo_check(*pooled, per_photo, cross_fitted=True))
    print(f"{run.path}: unsure threshold {t:.3f} (" + ", ".join(f"{t_:.2f}" for t_, _ in picked.values()) + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
