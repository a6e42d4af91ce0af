"""Cross-validation over the photo quarters (fashion_core.photos.folders.QUARTERS).

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
from sklearn.metrics import roc_auc_score

from fashion_core.calibration import calibrate
from fashion_core.config import TrainConfig
from fashion_core.ensemble import create_ensemble
from fashion_core.photos.folders import QUARTERS, load_photo_set, target_sets
from fashion_core.photos.selection import learned_shares
from fashion_core.photos.thresholds import photo_check, pick_threshold, set_threshold
from fashion_core.predictor import Predictor
from fashion_core.runs import CHECKPOINT_DIR, Run
from fashion_core.train import train

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


def fold_run(run: Run, photo_dir: Path, learn: tuple[str, ...], cv_dir: Path, changes: dict | None = None,
             log=print) -> Run:
    """RUN's recipe (with changes, if any) trained on the quarters learn only (reused once finished);
    for an ensemble, the same weighted vote of its members' folds."""
    changes = changes or {}
    fold = Run(fold_path(run, learn, cv_dir, changes))
    if run.kind == "ensemble":
        members = [fold_run(m, photo_dir, learn, cv_dir, log=log).path for m in run.members()]
        if fold.eval and all((m / "eval.json").stat().st_mtime <= (fold.path / "eval.json").stat().st_mtime
                             for m in members):
            return fold
        shutil.rmtree(fold.path, ignore_errors=True)  # a member's fold was trained again since
        return create_ensemble(fold.path, members, list(run.config.weights))
    recipe = variant_recipe(run, photo_dir, changes, learn)
    same = (fold.path / "config.json").exists() and _same_recipe(fold.config, recipe)
    if same and fold.eval:
        return fold
    if fold.path.exists() and not same and cv_dir.name == FOLDS_DIR:  # shipped evidence: never thrown away
        raise ValueError(f"{fold.path} was trained with another recipe; it ships with its run, so it is not "
                         "replaced: give --cv-dir to train folds of this recipe elsewhere")
    if fold.path.exists() and not same:  # a fold of an earlier recipe under this name: not evidence for this one
        log(f"{fold.path} was trained with another recipe; training it again")
        shutil.rmtree(fold.path)
    log(f"{'resuming' if same else 'training'} {fold.path} on {' + '.join(learn)} ...")
    train(recipe, fold.path)
    calibrate(fold)
    return fold


def confidences(run: Run, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N,) calibrated top probabilities (what "unsure" compares with the threshold) and top classes."""
    answers = Predictor.from_run(run, fit=False).answers(images)
    return np.array([a["confidence"] for a in answers]), np.array([a["index"] for a in answers])


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


def auroc(score: np.ndarray, positive: np.ndarray) -> float:
    """P(a positive scores above a negative), ties counted half; nan when one side is empty."""
    return float(roc_auc_score(positive, score)) if 0 < positive.sum() < len(positive) else float("nan")


def fold_threshold(run: Run, photo_dir: Path, left_out: str, learn: tuple[str, ...], cv_dir: Path,
                   changes: dict | None = None, log=print) -> tuple[float, OutOfFold]:
    """RUN's fold that learns from learn; its threshold picked on the quarter left_out, and what it
    was picked on. Logs how well it separates photos with no class (AUROC), for it and each member's fold."""
    fold = fold_run(run, photo_dir, learn, cv_dir, changes, log)
    images, _, folders = load_photo_set(photo_dir, left_out)
    images = images.numpy()
    oof = score_fold(fold, images, folders)
    parts = [m for m in fold.members() if m != fold]  # an ensemble's fold: its members' folds
    t = pick_threshold(oof.conf, oof.mapped)
    check = photo_check(oof.conf, oof.correct, oof.mapped, t)
    val = (fold.metrics or [{}])[-1].get("val_acc")
    log(f"learned from {' + '.join(learn)}, measured on {left_out} ({len(oof.conf)} photos, {(~oof.mapped).sum()} "
        f"with no class): AUROC no-class vs mapped {auroc(-oof.conf, ~oof.mapped):.3f}" +
        "".join(f"; {m.name} {auroc(-confidences(m, images)[0], ~oof.mapped):.3f}" for m in parts) +
        f"; threshold {t:.2f}: mapped accuracy {check['mapped_accuracy']:.1%}, unsure on {check['mapped_unsure']:.1%}"
        f" of mapped and {check['no_class_unsure']:.1%} with no class, score {check['score']:.3f}" +
        (f"; Fashion-MNIST validation {val:.2f}%" if val else ""))
    return t, oof


def cross_fit_plan(run: Run, photo_dir: Path | None, changes: dict, only: str | None) -> tuple[dict, Path]:
    """(quarter left out -> quarters learned, photo folder) for cross-fitting RUN; ValueError saying
    why RUN cannot be cross-fitted so."""
    if not run.eval:
        raise ValueError(f"{run.path} is not a finished run")
    singles = run.members()
    learned = learned_shares(singles[0])
    if len(learned) < 2 or any(learned_shares(r) != learned for r in singles):
        raise ValueError(f"{run.path} (or one of its members) did not learn from two or more quarters of a photo "
                         "folder (the same ones for every member); benchmarks/photo_accuracy.py --fit-threshold "
                         "picks the threshold of a run that learned from the train share on the calib share")
    plan = folds(learned)
    if only and only not in plan:
        raise ValueError(f"{run.path} did not learn from the {only} quarter, so it has no fold leaving it out")
    photo_dir = photo_dir or Path(singles[0].config.photo_dir)
    if not photo_dir.is_dir():
        raise ValueError(f"no photo folder at {photo_dir}; pass --photos")
    if changes and run.kind == "ensemble":
        raise ValueError("--set needs a single run, not an ensemble")
    if changes:  # a variant must be a valid recipe before anything trains
        variant_recipe(run, photo_dir, changes)
    return plan, photo_dir


def cross_fit(run: Run, photo_dir: Path | None = None, cv_dir: Path | None = None, changes: dict | None = None,
              only: str | None = None, log=print) -> dict | None:
    """Cross-fit RUN's unsure threshold (scripts/photo_threshold_cv.py): train or reuse a fold per
    quarter it learned from, pick each fold's threshold on the quarter it left out, and store their mean
    with the cross-validated photo_check; returns that check. A variant (changes) or a single fold
    (only) is measured and logged, not stored (None)."""
    changes = changes or {}
    plan, photo_dir = cross_fit_plan(run, photo_dir, changes, only)
    cv_dir = cv_dir or default_cv_dir(run)
    if changes and cv_dir == run.path / FOLDS_DIR:  # a variant's folds do not belong with the run
        cv_dir = CHECKPOINT_DIR.parent / "runs" / "photo_cv"
    picked = {q: fold_threshold(run, photo_dir, q, learn, cv_dir, changes, log)
              for q, learn in plan.items() if only in (None, q)}
    if only:
        return None  # a single fold: compared, not stored
    # every quarter judged by its fold and by a threshold picked on the other quarters only
    check = cross_validated_check({q: oof for q, (_, oof) in picked.items()})
    log(f"cross-validated over {len(picked)} quarters ({check['photos']} photos, {check['no_class']} with no class; "
        f"each quarter's threshold picked on the other quarters): mapped accuracy {check['mapped_accuracy']:.1%}, "
        f"unsure on {check['mapped_unsure']:.1%} of mapped and {check['no_class_unsure']:.1%} with no class, "
        f"score {check['score']:.3f}")
    if changes:
        return None  # a variant: compared, not stored
    t = float(np.mean([t for t, _ in picked.values()]))
    set_threshold(run, t, f"mean of {len(picked)} cross-fitted thresholds on " + photo_dir.name + ": " + "; ".join(
        f"{t_:.2f} on the {q} quarter ({len(oof.conf)} photos) for the same recipe trained on {' + '.join(plan[q])}"
        for q, (t_, oof) in picked.items()), check)
    log(f"{run.path}: unsure threshold {t:.3f} (" + ", ".join(f"{t_:.2f}" for t_, _ in picked.values()) + ")")
    return check
