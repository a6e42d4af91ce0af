"""Calibrated confidence and "unsure": temperature scaling fitted on a run's validation split.

`calibrate(run)` fits one temperature T (softmax(logits / T)) by minimising the validation NLL
and stores it in run_dir/calibration.json; `decide(probs, cal)` turns a model's probabilities
into the label, the calibrated probabilities, whether it is unsure and which classes it was torn between.
"""
from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from fashion_core import ensemble
from fashion_core.data import CLASSES, FashionData, is_available
from fashion_core.runs import Run, atomic_write_json, load_model, read_json

CALIBRATION_FILE = "calibration.json"
# Calibrated confidence under which a photo is reported as unsure, for runs without their own.
# Shipped runs store one chosen on the dev photos' calib share (benchmarks/photo_accuracy.py
# --fit-threshold), or cross-fitted over the calib and train shares when the run learned from both
# (scripts/photo_threshold_cv.py); each run's calibration.json says which. Never on the held-out share.
DEFAULT_THRESHOLD = 0.55
# threshold rule on labelled photos: catch the most photos with no class while at most this share
# of photos with a class are unsure
MAX_MAPPED_UNSURE = 0.12
TORN_MASS = 0.8  # torn_between: the fewest top classes holding this much calibrated probability
TORN_MAX = 3
SURELY_ONE_OF = 0.95  # describe(): listed classes holding this much are not "or none of the ten classes"
FLAT_MASS = 0.5  # describe(): listed classes holding less than this are "no class stands out", not "torn"


@dataclass(frozen=True)
class Calibration:
    temperature: float = 1.0  # > 1 softens over-confident logits
    threshold: float = DEFAULT_THRESHOLD  # calibrated max probability below this = unsure
    source: str = "default"  # where the numbers came from, for the UI
    check: dict | None = None  # photo_check of the threshold on labelled photos (set_threshold), if any

    def to_dict(self) -> dict:
        return asdict(self)


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The T > 0 minimising mean cross-entropy of softmax(logits / T) (Guo et al. 2017)."""
    logits, labels = logits.detach().float().cpu(), labels.cpu()
    log_t = torch.zeros((), requires_grad=True)  # optimise log T so T stays positive
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    opt.step(closure)
    return float(log_t.detach().exp().clamp(0.05, 20))


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, bins: int = 15) -> float:
    """ECE in % over equal-width confidence bins: how far confidence is from accuracy."""
    conf, pred = probs.max(1)
    correct = (pred == labels).float()
    edges = torch.linspace(0, 1, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (conf > lo) & (conf <= hi)
        if inside.any():
            ece += inside.float().mean().item() * abs(conf[inside].mean().item() - correct[inside].mean().item())
    return ece * 100


def validation_data(run: Run, data_root=None) -> FashionData:
    """The run's own validation images: the split its training held out (config seed and mode);
    for an ensemble, the images every member held out."""
    if not ensemble.is_ensemble(run.path) and run.config.val_split == "none":
        raise ValueError(f"{run.name} trained without a validation split; nothing to calibrate on")
    return ensemble.validation_data([run], data_root)


def fit_calibration(run: Run, data_root=None) -> dict:
    """Fit the temperature on the run's validation split; the stored threshold is kept."""
    from fashion_core.train import infer  # noqa: PLC0415 (train imports the whole engine)

    val = validation_data(run, data_root)
    logits = infer(load_model(run), val.images, tta_flip=run.config.tta_flip).cpu()
    t = fit_temperature(logits, val.labels)
    nll = {name: torch.nn.functional.cross_entropy(logits / s, val.labels).item()
           for name, s in (("before", 1.0), ("after", t))}
    ece = {name: expected_calibration_error((logits / s).softmax(1), val.labels)
           for name, s in (("before", 1.0), ("after", t))}
    return {"temperature": round(t, 4), "threshold": load_calibration(run).threshold,
            "source": f"temperature fitted on {len(val)} validation images of {run.name}",
            "val_nll_before": round(nll["before"], 4), "val_nll_after": round(nll["after"], 4),
            "val_ece_before": round(ece["before"], 3), "val_ece_after": round(ece["after"], 3)}


def calibrate(run: Run | str | Path, data_root=None, threshold: float | None = None) -> dict:
    """Fit the temperature on the run's validation split; write and return calibration.json.

    threshold: the unsure threshold to store (default: keep the stored one, else DEFAULT_THRESHOLD).
    """
    run = _as_run(run)
    result = fit_calibration(run, data_root)
    old = read_json(run.path / CALIBRATION_FILE, {}) or {}
    if threshold is not None:
        result["threshold"] = threshold
    else:
        result.update({k: old[k] for k in ("threshold_source", "photo_check") if k in old})
    atomic_write_json(run.path / CALIBRATION_FILE, result)
    return result


def calibration_for(run: Run | str | Path, data_root=None) -> Calibration:
    """The run's calibration; fitted (and stored when the folder is writable) on first use.

    Never raises: without Fashion-MNIST, without a validation split or when fitting fails it
    falls back to T = 1 and the default threshold, and .source says why.
    """
    run = _as_run(run)
    if (run.path / CALIBRATION_FILE).exists():
        return load_calibration(run)
    if not is_available(data_root):
        return Calibration(source="default: T = 1 (no calibration.json and no Fashion-MNIST to fit one)")
    try:
        result = fit_calibration(run, data_root)
    except Exception as exc:  # noqa: BLE001 - no validation split, odd ensemble, data error...
        return Calibration(source=f"default: T = 1 (could not fit a temperature: {str(exc)[:120]})")
    try:
        atomic_write_json(run.path / CALIBRATION_FILE, result)
    except OSError:  # a read-only run folder: use the fit for this process only
        pass
    return Calibration(result["temperature"], result["threshold"], result["source"])


def _as_run(run: Run | str | Path) -> Run:
    return run if isinstance(run, Run) else Run(Path(run))


def set_threshold(run: Run | str | Path, threshold: float, source: str, check: dict | None = None) -> None:
    """Store a new unsure threshold next to the fitted temperature, with the photo_check that
    measured it (or none)."""
    run = _as_run(run)
    d = {k: v for k, v in (read_json(run.path / CALIBRATION_FILE, {}) or {}).items() if k != "photo_check"}
    atomic_write_json(run.path / CALIBRATION_FILE, {**d, "threshold": round(float(threshold), 4),
                                                    "threshold_source": source,
                                                    **({"photo_check": check} if check else {})})


def photo_check(conf: np.ndarray, correct: np.ndarray, mapped: np.ndarray, threshold: float | np.ndarray,
                cross_fitted: bool = False) -> dict:
    """How a threshold does on labelled photos: conf calibrated top probabilities, correct whether
    the top class counts as right (False on photos with no class), mapped whether the photo has a
    class; threshold one value, or one per photo (folds pooled, each with its own). score is the
    mean of "right and sure" on mapped photos and "unsure" on the others: what ranks photo-tuned
    runs for the Predict page's default (predict.best_for_photos)."""
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


def load_calibration(run: Run | str | Path | None) -> Calibration:
    """The run's stored calibration, or T = 1 and the default threshold when it has none."""
    if run is None:
        return Calibration()
    d = read_json(_as_run(run).path / CALIBRATION_FILE)
    if not isinstance(d, dict) or not isinstance(d.get("temperature"), (int, float)):
        return Calibration()
    check = d.get("photo_check")
    return Calibration(float(d["temperature"]), float(d.get("threshold", DEFAULT_THRESHOLD)),
                       str(d.get("source", "calibration.json")),
                       check if isinstance(check, dict) and isinstance(check.get("score"), (int, float)) else None)


def calibrated(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Re-scale softmax probabilities (..., 10) by a temperature: softmax(log p / T)."""
    logp = np.log(np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1)) / temperature
    logp -= logp.max(-1, keepdims=True)
    e = np.exp(logp)
    return e / e.sum(-1, keepdims=True)


def decide(probs: np.ndarray, cal: Calibration = Calibration()) -> dict:
    """One image's (10,) model probabilities -> the answer the app and the CLI show.

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


def main(argv: list[str] | None = None) -> int:
    """python -m fashion_core.calibration RUN_DIR...: fit and store each run's temperature."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m fashion_core.calibration RUN_DIR...", file=sys.stderr)
        return 2
    for path in args:
        r = calibrate(path)
        print(f"{path}: T = {r['temperature']:.3f}, val NLL {r['val_nll_before']:.4f} -> {r['val_nll_after']:.4f}, "
              f"ECE {r['val_ece_before']:.2f}% -> {r['val_ece_after']:.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["Calibration", "fit_temperature", "expected_calibration_error", "fit_calibration", "calibrate",
           "calibration_for", "pick_threshold", "photo_check", "describe_check", "set_threshold", "load_calibration", "calibrated", "decide",
           "describe", "percent"]
