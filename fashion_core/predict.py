"""Classify photos or 28x28 images with a run (shipped checkpoint or user run)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from fashion_core.calibration import Calibration, decide, load_calibration
from fashion_core.ensemble import is_ensemble, member_runs
from fashion_core.photo import ImageError, load_image, prepare
from fashion_core.runs import CHECKPOINT_DIR, Run, list_runs, load_model
from fashion_core.train import infer


def tuned_on_photos(run: Run) -> bool:
    """Fine-tuned on real photos: photo_dir set, or an ensemble whose every member was."""
    try:
        if is_ensemble(run.path):
            members = member_runs(run.path)
            return bool(members) and all(tuned_on_photos(m) for m in members)
        return bool(run.config.photo_dir)
    except (ValueError, TypeError, OSError, KeyError):  # an unreadable or foreign config.json / ensemble.json
        return False


def learned_shares(run: Run) -> set[str]:
    """The photo quarters (fashion_core.photo_set.QUARTERS) a run learned from; an ensemble's are any member's."""
    if is_ensemble(run.path):
        return set().union(*(learned_shares(m) for m in member_runs(run.path)))
    return set(run.config.photo_share_names) if run.config.photo_dir else set()


def photo_score(run: Run) -> float:
    """The run's photo_check score (calibration.json: right-and-sure on photos with a class and unsure on
    the others, measured on photos it did not learn from when its threshold was picked); -1 without one."""
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
    shipped = [r for r in list_runs(CHECKPOINT_DIR) if r.eval and r.has_weights]
    if not shipped:
        raise ValueError(f"no shipped checkpoints in {CHECKPOINT_DIR}; pass --model RUN_DIR")
    return best_for_photos(shipped)


def resolve_run(name_or_dir: str | None) -> Run:
    """A run directory path, a shipped checkpoint's folder name, or None for the default."""
    if not name_or_dir:
        return default_run()
    for candidate in (Path(name_or_dir), CHECKPOINT_DIR / name_or_dir):
        if (candidate / "config.json").exists():
            return Run(candidate)
    matches = [r for r in list_runs(CHECKPOINT_DIR) if r.eval and r.has_weights and r.config.model == name_or_dir]
    if matches:
        return max(matches, key=lambda r: r.eval["test_accuracy"])
    raise ValueError(f"model: {name_or_dir!r} is neither a run directory nor a shipped model")


def probabilities(model: nn.Module, images28: np.ndarray | torch.Tensor, tta_flip: bool = False) -> np.ndarray:
    """(N, 28, 28) or (28, 28) uint8 -> (N, 10) softmax probabilities.

    tta_flip: average with the mirrored image, as the run's own evaluation and calibration did.
    """
    x = torch.as_tensor(np.asarray(images28, dtype=np.uint8))
    return infer(model, x[None] if x.ndim == 2 else x, tta_flip=tta_flip).softmax(1).cpu().numpy()


def predict_file(model: nn.Module, path: str | Path, cal: Calibration = Calibration(), tta_flip: bool = False) -> dict:
    """One JSON-ready result per file, or {"file", "error"} when it cannot be read.

    {"file", "label", "index", "probabilities" (calibrated), "confidence", "unsure", "torn_between",
    "garment_found" (False: no garment stood out from the background; the centre of the photo was used)}
    """
    try:
        prepared = prepare(load_image(path))
    except ImageError as exc:
        return {"file": str(path), "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - an image the pipeline cannot handle must not end the batch
        return {"file": str(path), "error": f"could not process the image ({type(exc).__name__}: {str(exc)[:160]})"}
    return {"file": str(path), **decide(probabilities(model, prepared.image28, tta_flip)[0], cal),
            "garment_found": prepared.found}


__all__ = ["best_for_photos", "photo_ranked", "photo_score", "tuned_on_photos", "learned_shares", "default_run", "resolve_run",
           "probabilities", "predict_file", "load_model"]
