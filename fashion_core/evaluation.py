"""Evaluation written next to the weights: eval.json with test accuracy, the classification report,
every test prediction and the model's latency and throughput."""
from __future__ import annotations

import logging

import torch
import torch.nn as nn
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from fashion_core.data import CLASSES, load_split
from fashion_core.device import describe_device, resolve_device
from fashion_core.inference import accuracy, autocast, infer
from fashion_core.models import count_params
from fashion_core.runs import Run, atomic_write_json, load_checkpoint, load_model


def classification_report(labels: torch.Tensor, preds: torch.Tensor) -> dict:
    """Confusion matrix (rows = true class) and per-class precision/recall/F1 in % (0 where undefined)."""
    classes = list(range(len(CLASSES)))
    cm = confusion_matrix(labels, preds, labels=classes)
    precision, recall, f1, _ = precision_recall_fscore_support(labels, preds, labels=classes, zero_division=0)
    return {"confusion_matrix": cm.tolist(),
            "per_class": [{"class": c, "precision": round(p * 100, 2), "recall": round(r * 100, 2),
                           "f1": round(f * 100, 2)}
                          for c, p, r, f in zip(CLASSES, precision.tolist(), recall.tolist(), f1.tolist())]}


def measure_speed(model: nn.Module, device: torch.device) -> dict:
    """Inference latency for one image (median, ms; one thread on CPU: the app serves one image on
    one thread) and batched throughput (images/s), timed by torch.utils.benchmark (it warms up and
    synchronises CUDA)."""
    # torch.utils.benchmark imports the C++-extension builder, which warns about a CUDA toolkit no
    # timing here uses; import it only when timing, without that warning
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    from torch.utils.benchmark import Timer  # noqa: PLC0415

    model.eval()
    one = torch.rand(1, 1, 28, 28, device=device)
    batch = torch.rand(512, 1, 28, 28, device=device)

    def forward(x: torch.Tensor) -> None:
        with torch.no_grad(), autocast(device):
            model(x)

    threads = 1 if device.type == "cpu" else torch.get_num_threads()
    latency = Timer("forward(x)", globals={"forward": forward, "x": one}, num_threads=threads)
    batched = Timer("forward(x)", globals={"forward": forward, "x": batch}, num_threads=torch.get_num_threads())
    one_s = latency.blocked_autorange(min_run_time=0.2).median
    batch_s = batched.timeit(3).median
    return {"latency_ms": one_s * 1000, "throughput_per_s": len(batch) / batch_s}


def write_eval(run: Run, data_root=None, device: torch.device | None = None) -> dict:
    """Evaluate the run's best weights once on the official 10k test set; write eval.json."""
    device = device or resolve_device("auto")
    cfg = run.config
    model = load_model(run, "best", device)
    test = load_split(False, data_root)
    logits = infer(model, test.images, tta_flip=cfg.tta_flip)
    probs = logits.softmax(1)
    preds = probs.argmax(1).cpu()
    metrics = run.metrics
    ck = load_checkpoint(run.path / "last.pt") if (run.path / "last.pt").exists() else {}
    with_val = [m for m in metrics if "val_acc" in m]
    result = {
        "test_accuracy": round(accuracy(logits, test.labels), 2), "model": cfg.model, "params": count_params(model),
        "epochs": len(metrics), "best_epoch": max(with_val, key=lambda m: m["val_acc"])["epoch"] if with_val
        else len(metrics),
        "best_val_acc": max((m["val_acc"] for m in with_val), default=None),
        "train_time_s": round(ck.get("train_time_s", metrics[-1]["time_s"] if metrics else 0.0), 1),
        "device": describe_device(device), "classes": CLASSES,
        **classification_report(test.labels, preds),
        "predictions": preds.tolist(),
        "confidence": [round(p, 4) for p in probs.max(1).values.cpu().tolist()],
        **measure_speed(model, device),
    }
    atomic_write_json(run.path / "eval.json", result)
    return result
