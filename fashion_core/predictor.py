"""One object answers: a run's model with its test-time flip, temperature and unsure threshold.

`Predictor.from_run(run)` is built once; `.probabilities(images)` gives calibrated probabilities and
`.answer(image)` / `.answer_file(path)` the user-facing answer. The CLI, the Predict page, the photo
code and the benchmarks all answer through it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from fashion_core.calibration import Calibration, calibration_for, load_calibration
from fashion_core.data import CLASSES
from fashion_core.inference import infer
from fashion_core.photos.pipeline import ImageError, load_image, prepare
from fashion_core.runs import Run, load_model

TORN_MASS = 0.8  # torn_between: the fewest top classes holding this much calibrated probability
TORN_MAX = 3
SURELY_ONE_OF = 0.95  # describe(): listed classes holding this much are not "or none of the ten classes"
FLAT_MASS = 0.5  # describe(): listed classes holding less than this are "no class stands out", not "torn"


@dataclass(frozen=True)
class Predictor:
    model: nn.Module
    calibration: Calibration = field(default_factory=Calibration)
    tta_flip: bool = False  # average with the mirrored image, as the run's evaluation and calibration did

    @classmethod
    def from_run(cls, run: Run | str | Path, device: str | torch.device = "cpu", model: nn.Module | None = None,
                 calibration: Calibration | None = None, fit: bool = True) -> Predictor:
        """The run's predictor. model and calibration: already loaded ones (the app caches them);
        fit: fit (and store) a temperature when the run has none, else use what is stored."""
        run = run if isinstance(run, Run) else Run(Path(run))
        if calibration is None:
            calibration = calibration_for(run) if fit else load_calibration(run)
        return cls(model if model is not None else load_model(run, device=device), calibration,
                   run.config.tta_flip)

    def model_probabilities(self, images28: np.ndarray | torch.Tensor) -> np.ndarray:
        """(N, 28, 28) or (28, 28) uint8 -> (N, 10) softmax probabilities, before the temperature."""
        x = torch.as_tensor(np.asarray(images28, dtype=np.uint8))
        return infer(self.model, x[None] if x.ndim == 2 else x, tta_flip=self.tta_flip).softmax(1).cpu().numpy()

    def probabilities(self, images28: np.ndarray | torch.Tensor) -> np.ndarray:
        """(N, 10) calibrated probabilities: what "unsure" compares with the threshold."""
        return calibrated(self.model_probabilities(images28), self.calibration.temperature)

    def answers(self, images28: np.ndarray | torch.Tensor) -> list[dict]:
        return [decide(p, self.calibration) for p in self.model_probabilities(images28)]

    def answer(self, image28: np.ndarray) -> dict:
        """decide() for one (28, 28) image."""
        return self.answers(image28)[0]

    def answer_file(self, path: str | Path) -> dict:
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
        return {"file": str(path), **self.answer(prepared.image28), "garment_found": prepared.found}


def calibrated(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Re-scale softmax probabilities (..., 10) by a temperature: softmax(log p / T)."""
    logp = np.log(np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1)) / temperature
    logp -= logp.max(-1, keepdims=True)
    e = np.exp(logp)
    return e / e.sum(-1, keepdims=True)


def decide(probs: np.ndarray, cal: Calibration = Calibration()) -> dict:
    """One image's (10,) model probabilities (softmax, before the temperature) -> the answer the app
    and the CLI show.

    {"label", "index", "probabilities" (calibrated), "confidence", "unsure", "torn_between"}:
    unsure when the calibrated top probability is under cal.threshold; torn_between lists the
    fewest top classes holding TORN_MASS of the probability (at least two) when unsure.
    """
    p = calibrated(probs, cal.temperature)
    order = np.argsort(-p)
    k = int(order[0])
    unsure = bool(p[k] < cal.threshold)
    torn = []
    if unsure:
        mass = np.cumsum(p[order])
        count = min(TORN_MAX, max(2, int(np.searchsorted(mass, TORN_MASS)) + 1))
        torn = [CLASSES[int(i)] for i in order[:count]]
    return {"label": CLASSES[k], "index": k, "probabilities": [round(float(v), 6) for v in p],
            "confidence": round(float(p[k]), 6), "unsure": unsure, "torn_between": torn}


def percent(p: float) -> str:
    """A probability as the app prints it: one decimal, but never a rounded-up "100.0%" or "0.0%"
    (no calibrated answer is certain)."""
    return "> 99.9%" if p >= 0.9995 else "< 0.1%" if 0 < p < 0.0005 else f"{p:.1%}"


def describe(answer: dict) -> str:
    """One line for a decide() answer: 'Coat (93.1%)', or 'Unsure — torn between Coat (45.0%) and Shirt
    (39.0%), or none of the ten classes' (a garment with no Fashion-MNIST class, a hat, gets this
    answer too; the last words go when the classes named hold SURELY_ONE_OF of it), or, when the classes it lists hold under FLAT_MASS of the probability, 'Unsure — no
    class stands out, so perhaps none of the ten classes (likeliest: Coat 15.6%, ...)'."""
    if not answer["unsure"]:
        return f"{answer['label']} ({percent(answer['confidence'])})"
    p = [answer["probabilities"][CLASSES.index(c)] for c in answer["torn_between"]]
    if sum(p) < FLAT_MASS:
        return ("Unsure — no class stands out, so perhaps none of the ten classes (likeliest: "
                + ", ".join(f"{c} {percent(v)}" for c, v in zip(answer["torn_between"], p)) + ")")
    *first, last = (f"{c} ({percent(v)})" for c, v in zip(answer["torn_between"], p))
    none = ", or none of the ten classes" if sum(p) < SURELY_ONE_OF else ""  # 50/50 between two shoes: one of them
    return f"Unsure — torn between {', '.join(first)} and {last}{none}"
