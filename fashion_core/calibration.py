"""Temperature scaling fitted on a run's validation split (Guo et al. 2017).

`calibrate(run)` fits one temperature T (softmax(logits / T)) by minimising the validation NLL and
stores it in run_dir/calibration.json, beside the unsure threshold that fashion_core.photos.thresholds
picks on labelled photos; `fashion_core.predictor.Predictor` reads both.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torchmetrics.functional.classification import multiclass_calibration_error

from fashion_core.data import is_available
from fashion_core.inference import infer
from fashion_core.runs import Run, atomic_write_json, load_model, read_json, validation_data

CALIBRATION_FILE = "calibration.json"
# Calibrated confidence under which a photo is reported as unsure, for runs without their own.
# Shipped photo runs store one picked on labelled photos (fashion_core.photos.thresholds); each
# run's calibration.json says where it came from.
DEFAULT_THRESHOLD = 0.55


@dataclass(frozen=True)
class Calibration:
    temperature: float = 1.0  # > 1 softens over-confident logits
    threshold: float = DEFAULT_THRESHOLD  # calibrated max probability below this = unsure
    source: str = "default"  # where the numbers came from, for the UI
    check: dict | None = None  # photo_check of the threshold on labelled photos (set_threshold), if any


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
    return multiclass_calibration_error(probs, labels, num_classes=probs.shape[1], n_bins=bins).item() * 100


def fit_calibration(run: Run, data_root=None) -> dict:
    """Fit the temperature on the run's validation split; the stored threshold is kept."""
    val = validation_data([run], data_root)
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

