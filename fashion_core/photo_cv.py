"""Cross-validation over the photo quarters (fashion_core.photo_set.QUARTERS).

A run that learned from two or more quarters has no unseen photos of those quarters left to choose
its unsure threshold on, or, when it learned from all four, to be measured on. So its recipe is
trained once more per quarter it learned from, on the others only (a "fold", in CV_DIR, named
RUN_on_Q1+Q2...; a shipped run keeps its folds in RUN/folds). Each fold scores the quarter it left out; those out-of-fold scores give the run its
threshold (scripts/photo_threshold_cv.py) and, for a run that learned from every photo, its
measured numbers (benchmarks/photo_accuracy.py).
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fashion_core.calibration import calibrate, calibrated, load_calibration, photo_check, pick_threshold
from fashion_core.config import TrainConfig
from fashion_core.ensemble import create_ensemble, is_ensemble, member_runs
from fashion_core.photo_set import LEARNED_PHOTOS, QUARTERS, learned_photos, target_sets
from fashion_core.predict import learned_shares, probabilities
from fashion_core.runs import CHECKPOINT_DIR, Run, load_model, read_json

FOLDS_DIR = "folds"  # inside a run folder: its shipped folds, the evidence behind its photo numbers


def default_cv_dir(run: Run) -> Path:
    """Where RUN's folds are: its own folds/ when it ships them, else runs/photo_cv (git-ignored)."""
    own = run.path / FOLDS_DIR
    return own if own.is_dir() else CHECKPOINT_DIR.parent / "runs" / "photo_cv"


def folds(learned: set[str]) -> dict[str, tuple[str, ...]]:
    """Quarter left out (and measured) -> the quarters its fold learns from; one fold per quarter learned."""
    ordered = [q for q in QUARTERS if q in learned]
    return {q: tuple(o for o in ordered if o != q) for q in ordered} if len(ordered) > 1 else {}


def variant_name(changes: dict) -> str:
    """'outlier_weight=3,epochs=8' -> '_outlier_weight3_epochs8': part of a variant's fold names."""
    return "".join(f"_{k}{v}" for k, v in changes.items()).replace("/", "-").replace(" ", "")


def variant_recipe(run: Run, photo_dir: Path, changes: dict, learn: tuple[str, ...] = ()) -> TrainConfig:
    """RUN's recipe on photo_dir with changes, learning from the quarters learn when given; raises
    ValueError (or TypeError) when the result is not a valid recipe, or when changes name the photos
    (which a fold learns from is the cross-validation's to decide, not a variant's)."""
    fixed = sorted({"photo_dir", "photo_shares"} & set(changes))
    if fixed:
        raise ValueError(f"{', '.join(fixed)}: a variant cannot change which photos its folds learn from")
    return TrainConfig.from_dict({**run.config.to_dict(), **changes, "photo_dir": str(photo_dir),
                                  **({"photo_shares": ",".join(learn)} if learn else {})}).validate()


def _same_recipe(a: TrainConfig, b: TrainConfig) -> bool:
    """Equal but for the note, and for how the photo folder's path is written."""
    def norm(c: TrainConfig) -> TrainConfig:
        return c.replace(note="", photo_dir=str(Path(c.photo_dir).resolve()) if c.photo_dir else "")
    return norm(a) == norm(b)


def fold_path(run: Run, learn: tuple[str, ...], cv_dir: Path, changes: dict | None = None) -> Path:
    return cv_dir / f"{run.path.name}{variant_name(changes or {})}_on_{'+'.join(learn)}"


def fold_run(run: Run, photo_dir: Path, learn: tuple[str, ...], cv_dir: Path, changes: dict | None = None) -> Run:
    """RUN's recipe (with changes, if any) trained on the quarters learn only (reused once finished);
    for an ensemble, the same weighted vote of its members' folds."""
    from fashion_core.train import train  # noqa: PLC0415 (only when a fold has to be trained)

    changes = changes or {}
    fold = Run(fold_path(run, learn, cv_dir, changes))
    if is_ensemble(run.path):
        members = [fold_run(m, photo_dir, learn, cv_dir).path for m in member_runs(run.path)]
        if fold.eval and all((m / "eval.json").stat().st_mtime <= (fold.path / "eval.json").stat().st_mtime
                             for m in members):
            return fold
        shutil.rmtree(fold.path, ignore_errors=True)  # a member's fold was trained again since
        return create_ensemble(fold.path, members, read_json(run.path / "ensemble.json")["weights"])
    recipe = variant_recipe(run, photo_dir, changes, learn)
    same = (fold.path / "config.json").exists() and _same_recipe(fold.config, recipe)
    if same and fold.eval:
        return fold
    if fold.path.exists() and not same and cv_dir.name == FOLDS_DIR:  # shipped evidence: never thrown away
        raise ValueError(f"{fold.path} was trained with another recipe; it ships with its run, so it is not "
                         "replaced: give --cv-dir to train folds of this recipe elsewhere")
    if fold.path.exists() and not same:  # a fold of an earlier recipe under this name: not evidence for this one
        print(f"{fold.path} was trained with another recipe; training it again", flush=True)
        shutil.rmtree(fold.path)
    print(f"{'resuming' if same else 'training'} {fold.path} on {' + '.join(learn)} ...", flush=True)
    train(recipe, fold.path)
    calibrate(fold)
    return fold


def confidences(run: Run, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N,) calibrated top probabilities (what "unsure" compares with the threshold) and top classes."""
    probs = calibrated(probabilities(load_model(run), images, run.config.tta_flip), load_calibration(run).temperature)
    return probs.max(1).round(6), probs.argmax(1)  # rounded as decide() reports it


@dataclass
class OutOfFold:
    """One fold's scores on the quarter it left out: calibrated confidence, top class, whether the top
    class is right and whether the photo has a class, per photo, plus their folders."""
    conf: np.ndarray
    top: np.ndarray
    correct: np.ndarray
    mapped: np.ndarray
    folders: list[str]


def score_fold(fold: Run, images: np.ndarray, folders: list[str]) -> OutOfFold:
    """A fold's scores on pipeline outputs (N, 28, 28) of photos from these folders."""
    sets = target_sets(folders).numpy()
    conf, top = confidences(fold, images)
    return OutOfFold(conf, top, sets[np.arange(len(top)), top], sets.any(1), list(folders))


def learned_quarters(run: Run) -> dict[str, str] | None:
    """Fingerprint -> quarter of every photo the run (or a member) learned from: as its training
    recorded them (photo_set.LEARNED_PHOTOS), or from its photo folder for a run trained before that
    record; None when neither is here, so that cannot be told."""
    learned: dict[str, str] = {}
    for single in member_runs(run.path) if is_ensemble(run.path) else [run]:
        cfg = single.config
        recorded = read_json(single.path / LEARNED_PHOTOS)
        if isinstance(recorded, dict):
            learned.update(recorded)
        elif cfg.photo_dir and Path(cfg.photo_dir).is_dir():
            learned.update(learned_photos(cfg.photo_dir, cfg.photo_share_names))
        elif cfg.photo_dir:
            return None
    return learned


def existing_folds(run: Run, cv_dir: Path) -> dict[str, Run]:
    """Quarter left out -> RUN's finished fold for it; raises ValueError naming what is missing."""
    learned = learned_shares(run)
    if len(learned) < 2:
        raise ValueError(f"{run.path} learned from {len(learned)} photo quarter(s); cross-validation needs two or more")
    found = {q: Run(fold_path(run, learn, cv_dir)) for q, learn in folds(learned).items()}
    missing = [str(f.path) for f in found.values() if not f.eval]
    if missing:
        raise ValueError(f"{run.path}: its folds are not trained ({', '.join(missing)}); "
                         f"run scripts/photo_threshold_cv.py {run.path} first")
    return found


def nested_thresholds(scores: dict[str, OutOfFold]) -> dict[str, float]:
    """Quarter -> an unsure threshold picked on the other quarters' out-of-fold scores only, so that a
    quarter is judged by a threshold none of its photos chose."""
    out = {}
    for q in scores:
        others = [s for o, s in scores.items() if o != q]
        out[q] = pick_threshold(np.concatenate([s.conf for s in others]), np.concatenate([s.mapped for s in others]))
    return out


def cross_validated_check(scores: dict[str, OutOfFold]) -> dict:
    """photo_check of every quarter judged by its fold and its nested threshold, all pooled; the
    thresholds are kept in it (quarter_thresholds), so a later measurement judges each quarter the same."""
    t = nested_thresholds(scores)
    per_photo = np.concatenate([np.full(len(s.conf), t[q]) for q, s in scores.items()])
    pooled = [np.concatenate([getattr(s, k) for s in scores.values()]) for k in ("conf", "correct", "mapped")]
    return {**photo_check(*pooled, per_photo, cross_fitted=True), "quarter_thresholds": t}
