"""A cross-fitted unsure threshold for a run (or an ensemble of runs) that fine-tuned on two or more
quarters of the photos (fashion_core.photos.folders.QUARTERS): train and calib, or all four.

    python scripts/photo_threshold_cv.py RUN [--photos PHOTO_DIR] [--cv-dir runs/photo_cv]
    python scripts/photo_threshold_cv.py RUN --set outlier_weight=3 [--fold calib]   # try a variant

Such a run has no unseen photos left to choose its threshold on. So its recipe is trained once more
per quarter it learned from, on the other quarters only (fashion_core.photos.cv: CV_DIR/NAME_on_train
and CV_DIR/NAME_on_calib for a run that learned from train and calib; finished folds are reused;
CV_DIR is RUN/folds when RUN ships its folds, else runs/photo_cv);
for an ensemble, each member's recipe is, and the fold is the same vote of those. Each fold's
threshold is picked on the quarter it left out (fashion_core.photos.thresholds.pick_threshold) and their
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fashion_core.config import parse_setting  # noqa: E402
from fashion_core.photos.cv import cross_fit  # noqa: E402
from fashion_core.photos.folders import QUARTERS  # noqa: E402
from fashion_core.runs import Run  # noqa: E402


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
    try:
        cross_fit(Run(args.run), args.photos, args.cv_dir, dict(parse_setting(item) for item in args.set), args.fold)
    except (ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
