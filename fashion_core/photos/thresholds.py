"""Unsure thresholds picked on labelled photos, and how a threshold does on them (photo_check).

A run's threshold is stored in its calibration.json beside the temperature
(fashion_core.calibration), with the photo_check that measured it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from fashion_core.calibration import CALIBRATION_FILE
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


def photo_check(conf: np.ndarray, correct: np.ndarray, mapped: np.ndarray, threshold: float | np.ndarray,
                cross_fitted: bool = False) -> dict:
    """How a threshold does on labelled photos: conf calibrated top probabilities, correct whether
    the top class counts as right (False on photos with no class), mapped whether the photo has a
    class; threshold one value, or one per photo (folds pooled, each with its own). score is the
    mean of "right and sure" on mapped photos and "unsure" on the others: what ranks photo-tuned
    runs for the Predict page's default (photos.selection.best_for_photos)."""
    conf, correct, mapped = np.asarray(conf), np.asarray(correct, dtype=bool), np.asarray(mapped, dtype=bool)
    unsure = conf < np.asarray(threshold)

    def rate(hit: np.ndarray, among: np.ndarray) -> float | None:
        return round(float(hit[among].mean()), 4) if among.any() else None

    check = {"photos": len(conf), "no_class": int((~mapped).sum()), "mapped_accuracy": rate(correct, mapped),
             "mapped_unsure": rate(unsure, mapped), "mapped_right_and_sure": rate(correct & ~unsure, mapped),
             "no_class_unsure": rate(unsure, ~mapped)}
    parts = [check[k] for k in ("mapped_right_and_sure", "no_class_unsure") if check[k] is not None]
    return {**check, "score": round(float(np.mean(parts)), 4) if parts else None,
            **({"cross_fitted": True} if cross_fitted else {})}


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


def describe_check(check: dict) -> str:
    """One sentence on how a threshold did on labelled photos, for the Predict page."""
    parts = []
    if check.get("mapped_unsure") is not None:
        parts.append(f"top class right on {check['mapped_accuracy']:.0%} of the garments with a Fashion-MNIST class "
                     f"and unsure on {check['mapped_unsure']:.0%} of them")
    if check.get("no_class_unsure") is not None:
        parts.append(f"unsure on {check['no_class_unsure']:.0%} of {check['no_class']} hats, shorts and skirts")
    where = (f"Checked on {check['photos']} labelled photos, each scored by a copy of this recipe trained "
             "without it and judged by a threshold chosen without it (cross-validation): " if check.get("cross_fitted")
             else f"On {check['photos']} labelled photos it did not learn from: ")
    return where + "; ".join(parts) + "."
