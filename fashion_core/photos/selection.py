"""Which runs learned from photos, and which run answers photos by default.

The default photo model is the photo-tuned run whose unsure threshold did best on labelled photos it
never learned from (its calibration.json photo_check score, on its photo folder's holdout slice), not
the one with the best Fashion-MNIST test accuracy.
"""
from __future__ import annotations

from pathlib import Path

from fashion_core.calibration import load_calibration
from fashion_core import runs as run_folders
from fashion_core.runs import Run, list_runs


def tuned_on_photos(run: Run) -> bool:
    """Fine-tuned on real photos: photo_dir set in every trained run behind it."""
    try:
        return all(m.config.photo_dir for m in run.members())
    except (ValueError, TypeError, OSError, KeyError):  # an unreadable or foreign config.json
        return False


def photo_score(run: Run) -> float:
    """The run's photo_check score (calibration.json: right-and-sure on photos with a class and unsure on
    the others, on the holdout slice its threshold was picked on); -1 without one."""
    check = load_calibration(run).check
    return float(check["score"]) if check else -1.0


def photo_ranked(runs: list[Run]) -> list[Run]:
    """The evaluated runs fine-tuned on real photos (or ensembles of such runs), best for photos first:
    by photo_score, then test accuracy."""
    photo = [r for r in runs if r.eval and tuned_on_photos(r)]
    return sorted(photo, key=lambda r: (photo_score(r), r.eval.get("test_accuracy", 0)), reverse=True)


def best_for_photos(runs: list[Run]) -> Run:
    """The first of photo_ranked(runs); without a photo-tuned run, the best test accuracy of all."""
    evaluated = [r for r in runs if r.eval]
    if not evaluated:
        raise ValueError("no evaluated runs")
    ranked = photo_ranked(evaluated)
    return ranked[0] if ranked else max(evaluated, key=lambda r: r.eval.get("test_accuracy", 0))


def default_run() -> Run:
    """The best shipped checkpoint for photos (best_for_photos over checkpoints/)."""
    shipped = [r for r in list_runs(run_folders.CHECKPOINT_DIR) if r.eval and r.has_weights]
    if not shipped:
        raise ValueError(f"no shipped checkpoints in {run_folders.CHECKPOINT_DIR}; pass --model RUN_DIR")
    return best_for_photos(shipped)


def resolve_run(name_or_dir: str | None) -> Run:
    """A run directory path, a shipped checkpoint's folder name, a shipped model's name (its best run),
    or None for the default."""
    if not name_or_dir:
        return default_run()
    for candidate in (Path(name_or_dir), run_folders.CHECKPOINT_DIR / name_or_dir):
        if (candidate / "config.json").exists():
            return Run(candidate)
    matches = [r for r in list_runs(run_folders.CHECKPOINT_DIR)
               if r.eval and r.has_weights and r.config.model == name_or_dir]
    if matches:
        return max(matches, key=lambda r: r.eval["test_accuracy"])
    raise ValueError(f"model: {name_or_dir!r} is neither a run directory nor a shipped model")
