"""A cross-fitted unsure threshold for a run that fine-tuned on both the train and calib photo shares.

    python scripts/photo_threshold_cv.py RUN [--photos PHOTO_DIR] [--cv-dir runs/photo_cv]

Such a run has no photos left to choose its threshold on (the held-out share only ever measures).
So its recipe is trained twice more, each time on one share only (CV_DIR/NAME_on_train and
CV_DIR/NAME_on_calib; finished folds are reused); each fold's threshold is picked on the share it
did not learn from (fashion_core.calibration.pick_threshold) and their mean goes into RUN's
calibration.json, with both fold thresholds named in its threshold_source.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fashion_core.calibration import calibrate, decide, load_calibration, pick_threshold, set_threshold  # noqa: E402
from fashion_core.photo_set import load_photo_set  # noqa: E402
from fashion_core.predict import probabilities  # noqa: E402
from fashion_core.runs import CHECKPOINT_DIR, Run, load_model  # noqa: E402
from fashion_core.train import train  # noqa: E402

FOLDS = {"train": "calib", "calib": "train"}  # learn from -> threshold picked on


def fold_threshold(run: Run, photo_dir: Path, learn: str, cv_dir: Path) -> tuple[float, int]:
    """Train RUN's recipe on one share (unless done); its threshold on the other share, and that share's size."""
    fold = Run(cv_dir / f"{run.path.name}_on_{learn}")
    if not fold.eval:
        cfg = run.config.replace(photo_dir=str(photo_dir), photo_shares=learn)
        print(f"training {fold.path} on the {learn} share ...", flush=True)
        train(cfg, fold.path)
    if not (fold.path / "calibration.json").exists():
        calibrate(fold)
    cal = load_calibration(fold)
    images, sets, _ = load_photo_set(photo_dir, FOLDS[learn])
    probs = probabilities(load_model(fold), images.numpy(), fold.config.tta_flip)
    conf = np.array([decide(p, cal)["confidence"] for p in probs])
    return pick_threshold(conf, sets.any(1).numpy()), len(images)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--photos", type=Path, default=None, help="labelled photos (default: the run's photo_dir)")
    ap.add_argument("--cv-dir", type=Path, default=CHECKPOINT_DIR.parent / "runs" / "photo_cv",
                    help="where the two fold runs go (default: runs/photo_cv, git-ignored)")
    args = ap.parse_args(argv)
    run = Run(args.run)
    if not run.eval:
        print(f"error: {run.path} is not a finished run", file=sys.stderr)
        return 2
    photo_dir = args.photos or Path(run.config.photo_dir)
    if not run.config.photo_dir or set(run.config.photo_share_names) != set(FOLDS):
        print(f"error: {run.path} did not learn from both the train and calib shares of a photo folder; "
              "benchmarks/photo_accuracy.py --fit-threshold picks its threshold on the calib share", file=sys.stderr)
        return 2
    if not photo_dir.is_dir():
        print(f"error: no photo folder at {photo_dir}; pass --photos", file=sys.stderr)
        return 2
    picked = {learn: fold_threshold(run, photo_dir, learn, args.cv_dir) for learn in FOLDS}
    t = float(np.mean([t for t, _ in picked.values()]))
    set_threshold(run, t, "mean of two cross-fitted thresholds on " + photo_dir.name + ": " + "; ".join(
        f"{t_:.2f} on the {FOLDS[learn]} share ({n} photos) for the same recipe trained on the {learn} share"
        for learn, (t_, n) in picked.items()))
    print(f"{run.path}: unsure threshold {t:.3f} (" + ", ".join(f"{t_:.2f}" for t_, _ in picked.values()) + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
