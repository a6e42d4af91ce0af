"""A cross-fitted unsure threshold for a run (or an ensemble of runs) that fine-tuned on two or more
quarters of the photos (fashion_core.photo_set.QUARTERS): train and calib, or all four.

    python scripts/photo_threshold_cv.py RUN [--photos PHOTO_DIR] [--cv-dir runs/photo_cv]
    python scripts/photo_threshold_cv.py RUN --set outlier_weight=3 [--fold calib]   # try a variant

Such a run has no unseen photos left to choose its threshold on. So its recipe is trained once more
per quarter it learned from, on the other quarters only (fashion_core.photo_cv: CV_DIR/NAME_on_train
and CV_DIR/NAME_on_calib for a run that learned from train and calib; finished folds are reused;
CV_DIR is RUN/folds when RUN ships its folds, else runs/photo_cv);
for an ensemble, each member's recipe is, and the fold is the same vote of those. Each fold's
threshold is picked on the quarter it left out (fashion_core.calibration.pick_threshold) and their
mean goes into RUN's calibration.json, with every fold threshold named in its threshold_source. It
also prints, per fold, how well calibrated confidence separates photos with no class from the others
there (AUROC), for the fold and for each member's fold: the evidence for or against voting.
The photo_check stored with the threshold (what the Predict page quotes, and what ranks runs for
its default) judges each quarter by its fold and by a threshold picked on the other quarters only;
for a run that learned from every photo that is its measurement (benchmarks/photo_accuracy.py
prints the same per folder).

With --set FIELD=VALUE (repeatable; single runs only) it cross-fits a variant of RUN's recipe
instead (folds named after the change) and only prints: nothing is stored, so variants can be
compared before any of them is trained for real. --fold Q trains and measures only the fold that
leaves out quarter Q, so two processes can share the work.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sklearn.metrics import roc_auc_score  # noqa: E402

from fashion_core.calibration import photo_check, pick_threshold, set_threshold  # noqa: E402
from fashion_core.config import parse_setting  # noqa: E402
from fashion_core.ensemble import is_ensemble, member_runs  # noqa: E402
from fashion_core.photo_cv import (FOLDS_DIR, confidences, cross_validated_check, default_cv_dir,  # noqa: E402
                                   fold_run, folds, score_fold, variant_recipe)
from fashion_core.photo_set import QUARTERS, load_photo_set  # noqa: E402
from fashion_core.predict import learned_shares  # noqa: E402
from fashion_core.runs import CHECKPOINT_DIR, Run  # noqa: E402


def auroc(score: np.ndarray, positive: np.ndarray) -> float:
    """P(a positive scores above a negative), ties counted half; nan when one side is empty."""
    return float(roc_auc_score(positive, score)) if 0 < positive.sum() < len(positive) else float("nan")


def fold_threshold(run: Run, photo_dir: Path, left_out: str, learn: tuple[str, ...], cv_dir: Path,
                   changes: dict | None = None):
    """RUN's fold that learns from learn; its threshold picked on the quarter left_out, and what it
    was picked on (photo_cv.OutOfFold)."""
    fold = fold_run(run, photo_dir, learn, cv_dir, changes)
    images, _, folders = load_photo_set(photo_dir, left_out)
    images = images.numpy()
    oof = score_fold(fold, images, folders)
    parts = member_runs(fold.path) if is_ensemble(fold.path) else []
    t = pick_threshold(oof.conf, oof.mapped)
    check = photo_check(oof.conf, oof.correct, oof.mapped, t)
    val = (fold.metrics or [{}])[-1].get("val_acc")
    print(f"learned from {' + '.join(learn)}, measured on {left_out} ({len(oof.conf)} photos, {(~oof.mapped).sum()} "
          f"with no class): AUROC no-class vs mapped {auroc(-oof.conf, ~oof.mapped):.3f}" +
          "".join(f"; {m.name} {auroc(-confidences(m, images)[0], ~oof.mapped):.3f}" for m in parts) +
          f"; threshold {t:.2f}: mapped accuracy {check['mapped_accuracy']:.1%}, unsure on {check['mapped_unsure']:.1%}"
          f" of mapped and {check['no_class_unsure']:.1%} with no class, score {check['score']:.3f}" +
          (f"; Fashion-MNIST validation {val:.2f}%" if val else ""), flush=True)
    return t, oof


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--photos", type=Path, default=None, help="labelled photos (default: the run's photo_dir)")
    ap.add_argument("--cv-dir", type=Path, default=None,
                    help="where the fold runs go (default: RUN/folds when RUN ships its folds, else runs/photo_cv, "
                         "git-ignored)")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="cross-fit this variant of RUN's recipe and store nothing (JSON value)")
    ap.add_argument("--fold", choices=QUARTERS, help="only the fold that leaves out (and is measured on) this quarter")
    args = ap.parse_args(argv)
    run = Run(args.run)
    if not run.eval:
        print(f"error: {run.path} is not a finished run", file=sys.stderr)
        return 2
    singles = member_runs(run.path) if is_ensemble(run.path) else [run]
    learned = learned_shares(singles[0])
    if len(learned) < 2 or any(learned_shares(r) != learned for r in singles):
        print(f"error: {run.path} (or one of its members) did not learn from two or more quarters of a photo "
              "folder (the same ones for every member); benchmarks/photo_accuracy.py --fit-threshold picks the "
              "threshold of a run that learned from the train share on the calib share", file=sys.stderr)
        return 2
    plan = folds(learned)
    if args.fold and args.fold not in plan:
        print(f"error: {run.path} did not learn from the {args.fold} quarter, so it has no fold leaving it out",
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
    cv_dir = args.cv_dir or default_cv_dir(run)
    if changes and cv_dir == run.path / FOLDS_DIR:  # a variant's folds do not belong with the run
        cv_dir = CHECKPOINT_DIR.parent / "runs" / "photo_cv"
    try:
        picked = {q: fold_threshold(run, photo_dir, q, learn, cv_dir, changes)
                  for q, learn in plan.items() if args.fold in (None, q)}
    except ValueError as exc:  # a shipped fold of another recipe, which is never replaced
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.fold:
        return 0  # a single fold: compared, not stored
    # every quarter judged by its fold and by a threshold picked on the other quarters only
    check = cross_validated_check({q: oof for q, (_, oof) in picked.items()})
    print(f"cross-validated over {len(picked)} quarters ({check['photos']} photos, {check['no_class']} with no class; "
          f"each quarter's threshold picked on the other quarters): mapped accuracy {check['mapped_accuracy']:.1%}, "
          f"unsure on {check['mapped_unsure']:.1%} of mapped and {check['no_class_unsure']:.1%} with no class, "
          f"score {check['score']:.3f}", flush=True)
    if changes:
        return 0  # a variant: compared, not stored
    t = float(np.mean([t for t, _ in picked.values()]))
    set_threshold(run, t, f"mean of {len(picked)} cross-fitted thresholds on " + photo_dir.name + ": " + "; ".join(
        f"{t_:.2f} on the {q} quarter ({len(oof.conf)} photos) for the same recipe trained on {' + '.join(plan[q])}"
        for q, (t_, oof) in picked.items()), check)
    print(f"{run.path}: unsure threshold {t:.3f} (" + ", ".join(f"{t_:.2f}" for t_, _ in picked.values()) + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
