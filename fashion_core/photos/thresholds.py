"""Unsure thresholds picked on labelled photos, and how a threshold does on them (photo_check).

A photo run's threshold is picked on the holdout slice of its photo_dir (photos.folders), photos it never
learned from, and stored in its calibration.json beside the temperature (fashion_core.calibration), with
the photo_check that measured it there.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from fashion_core.calibration import CALIBRATION_FILE
from fashion_core.photos.folders import load_photo_set
from fashion_core.predictor import Predictor
from fashion_core.runs import Run, atomic_write_json, read_json

# threshold rule on labelled photos: catch the most photos with no class while at most this share
# of photos with a class are unsure
MAX_MAPPED_UNSURE = 0.12


def set_threshold(run: Run | str | Path, threshold: float, source: str, check: dict | None = None) -> None:
    """Store a new unsure threshold next to the fitted temperature, with the photo_check that
    measured it (or none)."""
    path = (run.path if isinstance(run, Run) else Path(run)) / CALIBRATION_FILE
    d = {k: v for k, v in (read_json(path, {}) or {}).items() if k != "photo_check"}
    atomic_write_json(path, {**d, "threshold": round(float(threshold), 4), "threshold_source": source,
                             **({"photo_check": check} if check else {})})


def photo_check(conf: np.ndarray, correct: np.ndarray, mapped: np.ndarray, threshold: float) -> dict:
    """How a threshold does on labelled photos: conf calibrated top probabilities, correct whether
    the top class counts as right (False on photos with no class), mapped whether the photo has a
    class. score is the mean of "right and sure" on mapped photos and "unsure" on the others: what
    ranks photo-tuned runs for the Predict page's default (photos.selection.best_for_photos)."""
    conf, correct, mapped = np.asarray(conf), np.asarray(correct, dtype=bool), np.asarray(mapped, dtype=bool)
    unsure = conf < np.asarray(threshold)

    def rate(hit: np.ndarray, among: np.ndarray) -> float | None:
        return round(float(hit[among].mean()), 4) if among.any() else None

    check = {"photos": len(conf), "no_class": int((~mapped).sum()), "mapped_accuracy": rate(correct, mapped),
             "mapped_unsure": rate(unsure, mapped), "mapped_right_and_sure": rate(correct & ~unsure, mapped),
             "no_class_unsure": rate(unsure, ~mapped)}
    parts = [check[k] for k in ("mapped_right_and_sure", "no_class_unsure") if check[k] is not None]
    return {**check, "score": round(float(np.mean(parts)), 4) if parts else None}


def pick_threshold(conf: np.ndarray, mapped: np.ndarray) -> float:
    """The unsure threshold (0.20..0.95, steps of 0.01) that flags the most unmapped photos (mapped
    False) while at most MAX_MAPPED_UNSURE of the mapped ones fall under it; conf is calibrated.
    Raises ValueError when even 0.20 leaves more mapped photos unsure than that."""
    conf, mapped = np.asarray(conf, dtype=np.float64), np.asarray(mapped, dtype=bool)
    if mapped.any() and (conf[mapped] < 0.20).mean() > MAX_MAPPED_UNSURE:
        raise ValueError(f"no threshold fits: {(conf[mapped] < 0.20).mean():.0%} of the mapped photos are under "
                         f"even 0.20 calibrated confidence (at most {MAX_MAPPED_UNSURE:.0%} may be unsure)")
    best, best_score = 0.20, -1.0
    for t in np.round(np.arange(0.20, 0.96, 0.01), 2):
        unsure = conf < t
        if mapped.any() and unsure[mapped].mean() > MAX_MAPPED_UNSURE:
            break
        score = unsure[~mapped].mean() if (~mapped).any() else 0.0
        if score >= best_score:
            best, best_score = float(t), score
    return best


def photo_dir_of(run: Run) -> str:
    """The photo folder the trained runs behind `run` fine-tuned on ("" for none); ValueError when they differ."""
    dirs = {m.config.photo_dir for m in run.members()}
    if len(dirs) > 1:
        raise ValueError(f"{run.name}: its members fine-tuned on different photo folders ({', '.join(sorted(dirs))}), "
                         "so no one holdout slice was unseen by all of them")
    return dirs.pop() if dirs else ""


def fit_threshold(run: Run | str | Path, photo_dir: str | Path | None = None) -> dict:
    """Pick and store the run's unsure threshold on the holdout slice of its photo_dir (or of photo_dir, for a
    run that learned from no photos); returns the photo_check stored with it. When no threshold keeps the
    garments with a class sure enough (pick_threshold's rule), the lowest, 0.20, is stored, and its check
    says how many it leaves unsure."""
    run = run if isinstance(run, Run) else Run(Path(run))
    own = photo_dir_of(run)
    if own and photo_dir and Path(photo_dir).resolve() != Path(own).resolve():
        raise ValueError(f"{run.name} learned from the photos in {own}: its threshold comes from their holdout slice")
    folder = own or photo_dir
    if not folder:
        raise ValueError(f"{run.name} learned from no photos: name a training photo folder for its threshold")
    images, sets, _ = load_photo_set(folder, "holdout")
    probs = Predictor.from_run(run).probabilities(images.numpy())
    conf, top = probs.max(1), probs.argmax(1)
    mapped = sets.any(1).numpy()
    correct = sets.numpy()[np.arange(len(top)), top] & mapped
    try:
        threshold, rule = pick_threshold(conf, mapped), ""
    except ValueError as exc:
        threshold, rule = 0.20, f"; {exc}, so the lowest threshold is kept"
    check = photo_check(conf, correct, mapped, threshold)
    set_threshold(run, threshold, f"picked on the holdout slice of {folder} ({len(conf)} photos){rule}", check)
    return check


def describe_check(check: dict) -> str:
    """One sentence on how a threshold did on labelled photos, for the Predict page."""
    parts = []
    if check.get("mapped_unsure") is not None:
        parts.append(f"top class right on {check['mapped_accuracy']:.0%} of the garments with a Fashion-MNIST class "
                     f"and unsure on {check['mapped_unsure']:.0%} of them")
    if check.get("no_class_unsure") is not None:
        parts.append(f"unsure on {check['no_class_unsure']:.0%} of {check['no_class']} hats, shorts and skirts")
    return f"On {check['photos']} labelled photos it did not learn from: " + "; ".join(parts) + "."
