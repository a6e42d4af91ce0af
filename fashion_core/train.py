"""The one training loop, used by the CLI, background jobs and tests. It never prints.

`train(config, run_dir, on_progress, should_stop)` trains on CUDA when present (bf16 autocast,
data on the GPU) and on the CPU otherwise (both channels_last), writes a self-describing run, resumes
from `last.pt`, and stops within one batch when `should_stop()` turns true.
"""
from __future__ import annotations

import copy
import random
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn

from fashion_core.augment import augment_batch, partial_garments
from fashion_core.config import TrainConfig
from fashion_core.data import CLASSES, FashionData, load_split, split_indices
from fashion_core.device import describe_device, resolve_device
from fashion_core.losses import make_loss, normalise_logits
from fashion_core.models import count_params, create_model
from fashion_core.optim import init_weights, make_optimizer, make_scheduler
from fashion_core.photo_set import LEARNED_PHOTOS, learned_photos, load_photo_set, photo_loss
from fashion_core.runs import Run, atomic_write_json, load_checkpoint, load_model, save_checkpoint

Progress = Callable[[dict], None]
PROGRESS_EVERY_S = 0.5  # seconds between progress reports


class Cancelled(Exception):
    """Raised inside the loop when should_stop() says so; the run is saved before it leaves."""


# --- inference helpers -----------------------------------------------------------------------
def to_input(images_u8: torch.Tensor) -> torch.Tensor:
    """(N, 28, 28) uint8 -> (N, 1, 28, 28) float in [0, 1]: the input every model takes."""
    return images_u8.float().div_(255).unsqueeze(1)


@torch.no_grad()
def infer(model: nn.Module, images_u8: torch.Tensor, batch_size: int = 1000, tta_flip: bool = False,
          device: torch.device | None = None) -> torch.Tensor:
    """(N, 28, 28) uint8 -> (N, 10) float32 logits, batch by batch, in eval mode."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    for i in range(0, len(images_u8), batch_size):
        x = to_input(images_u8[i:i + batch_size].to(device))
        with _autocast(device):
            logits = model(x).float()
            if tta_flip:
                logits = (logits + model(x.flip(-1)).float()) / 2
        out.append(logits)
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, 10)


def evaluate(model: nn.Module, data: FashionData, tta_flip: bool = False) -> tuple[float, float]:
    """(accuracy %, mean cross-entropy) of model on data."""
    logits = infer(model, data.images, tta_flip=tta_flip)
    labels = data.labels.to(logits.device)
    return (logits.argmax(1) == labels).float().mean().item() * 100, \
        nn.functional.cross_entropy(logits, labels).item()


def _autocast(device: torch.device):
    # bf16 on CUDA only: CPU bf16 autocast is slower than fp32 on most CPUs
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")


# --- the loop ----------------------------------------------------------------------------------
def train(config: TrainConfig, run_dir: str | Path, on_progress: Progress | None = None,
          should_stop: Callable[[], bool] | None = None, data_root: str | Path | None = None) -> Run:
    """Train (or resume) the run in run_dir; returns the Run once eval.json is written."""
    config.validate()
    device = resolve_device(config.device)
    run = Run(Path(run_dir))
    run.path.mkdir(parents=True, exist_ok=True)
    saved = run.path / "config.json"
    if saved.exists() and run.config != config:
        raise ValueError(f"{run.path} already holds a run with a different config")
    atomic_write_json(saved, config.to_dict())
    report = on_progress or (lambda p: None)
    stop = should_stop or (lambda: False)
    run.set_status("running", device=describe_device(device))
    try:
        _fit(config, run, device, report, stop, data_root)
        run.set_status("evaluating")
        report({"phase": "test"})
        result = write_eval(run, data_root, device)
        if config.val_split != "none":  # the temperature behind "unsure", fitted on validation only
            from fashion_core.calibration import calibrate  # noqa: PLC0415 (it imports this module)
            calibrate(run, data_root)
        run.set_status("done", test_accuracy=result["test_accuracy"])
        report({"phase": "done", "test_accuracy": result["test_accuracy"]})
    except Cancelled:
        run.set_status("cancelled")
        report({"phase": "cancelled"})
    except BaseException as exc:
        run.set_status("failed", error=f"{type(exc).__name__}: {exc}")
        raise
    return run


def _fit(cfg: TrainConfig, run: Run, device: torch.device, report: Progress,
         stop: Callable[[], bool], data_root) -> None:
    report({"phase": "loading data"})
    full = load_split(True, data_root)
    tr_idx, va_idx = split_indices(full.labels, cfg.val_split, cfg.val_fraction, cfg.val_count, cfg.seed)
    if cfg.train_subset:
        tr_idx = tr_idx[: cfg.train_subset]
    # faster to hold uint8 on the device and convert per batch than to hold floats
    x_train, y_train = full.images[tr_idx].to(device), full.labels[tr_idx].to(device)
    val = FashionData(full.images[va_idx], full.labels[va_idx])

    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    model = create_model(cfg.model, **cfg.model_kwargs)
    init_weights(model, cfg.init)
    if cfg.init_from:  # fine-tuning: a resumed run overwrites these below with its own
        model.load_state_dict(load_model(Run(Path(cfg.init_from))).state_dict())
    photos = None
    if cfg.photo_dir:  # real photos (their 'train' and/or 'calib' shares) join every batch
        report({"phase": "loading photos"})
        p_images, p_sets, _ = load_photo_set(cfg.photo_dir, cfg.photo_share_names, cfg.photo_views)
        photos = p_images.to(device), p_sets.to(device)
        # which photos it learned from, by content: a benchmark must never score it on them
        atomic_write_json(run.path / LEARNED_PHOTOS, dict(sorted(learned_photos(cfg.photo_dir,
                                                                                cfg.photo_share_names).items())))
    # channels_last pays on CUDA and on the CPU too (measured: flagship 1169 -> 1718 img/s on 2 cores)
    model = model.to(device, memory_format=torch.channels_last)
    if device.type == "cpu":
        # subnormal floats (ConvNeXt's 1e-6 layer scales make some) slow x86 arithmetic by orders of
        # magnitude; flushing them to zero loses nothing a model needs
        torch.set_flush_denormal(True)
    opt = make_optimizer(cfg, model.parameters())
    steps_per_epoch = -(-len(tr_idx) // cfg.batch_size)
    total_steps = steps_per_epoch * cfg.epochs
    if cfg.max_steps:
        total_steps = min(total_steps, cfg.max_steps)
    sched, per_step = make_scheduler(cfg, opt, total_steps)
    loss_fn = make_loss(cfg, device)
    ema = copy.deepcopy(model).eval() if cfg.ema_decay else None
    aug_gen = torch.Generator(device=device).manual_seed(cfg.seed)
    no_class = torch.zeros(cfg.partial_outliers, len(CLASSES), dtype=torch.bool, device=device)  # their targets

    start_epoch, start_batch, step, best_acc, stale, elapsed = 0, 0, 0, -1.0, 0, 0.0
    last_path = run.path / "last.pt"
    if last_path.exists():  # resume where the last checkpoint left off
        ck = load_checkpoint(last_path)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        if sched is not None and ck.get("scheduler"):
            sched.load_state_dict(ck["scheduler"])
        if ema is not None and ck.get("ema"):
            ema.load_state_dict(ck["ema"])
        aug_gen.set_state(ck["aug_rng"].to(aug_gen.get_state().device))
        torch.set_rng_state(ck["torch_rng"])
        if device.type == "cuda" and ck.get("cuda_rng") is not None:  # dropout draws from it there
            torch.cuda.set_rng_state(ck["cuda_rng"], device)
        start_epoch, start_batch, step = ck["epoch"], ck["batch"], ck["step"]
        best_acc, stale, elapsed = ck["best_val_acc"], ck["stale_epochs"], ck["train_time_s"]

    def checkpoint(path: Path, epoch: int, batch: int) -> None:
        save_checkpoint(path, {
            "model": model.state_dict(), "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict() if sched is not None else None,
            "ema": ema.state_dict() if ema is not None else None,
            "epoch": epoch, "batch": batch, "step": step, "best_val_acc": best_acc,
            "stale_epochs": stale, "train_time_s": elapsed,
            "aug_rng": aug_gen.get_state(), "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        })

    n = len(tr_idx)
    for epoch in range(start_epoch, cfg.epochs):
        if cfg.max_steps and step >= cfg.max_steps:
            break
        if cfg.early_stop_patience and stale >= cfg.early_stop_patience:  # checked first: a resumed
            break  # run that early stopping had ended trains no extra epoch
        model.train()
        # the epoch's order depends only on (seed, epoch), so a resumed epoch replays it exactly
        order = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)).to(device)
        t0, last_report, seen = time.perf_counter(), 0.0, 0
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device)
        for b in range(start_batch, steps_per_epoch):
            if stop():
                elapsed += time.perf_counter() - t0
                checkpoint(last_path, epoch, b)
                raise Cancelled
            idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            x = to_input(x_train[idx])
            y = y_train[idx]
            x = augment_batch(x, y, cfg.augment, aug_gen)
            extra, sets = [], []  # photos and partial garments, scored by photo_loss
            if photos is not None:
                pick = torch.randint(len(photos[0]), (cfg.photo_batch,), generator=aug_gen, device=device)
                sets.append(photos[1][pick])
                extra.append(augment_batch(to_input(photos[0][pick]), sets[-1].int().argmax(1), cfg.augment,
                                           aug_gen))
            if cfg.partial_outliers:
                extra.append(partial_garments(x[:cfg.partial_outliers], aug_gen))
                sets.append(no_class[:len(extra[-1])])  # a short last batch gives fewer
            x = torch.cat([x, *extra]).contiguous(memory_format=torch.channels_last)
            with _autocast(device):
                logits = model(x)
                scored = normalise_logits(logits, cfg.logit_norm) if cfg.logit_norm else logits
                loss = loss_fn(scored[:len(y)].float(), y)
                if extra:
                    loss = loss + photo_loss(scored[len(y):], torch.cat(sets), cfg.outlier_weight,
                                             cfg.photo_target)
                    logits = logits[:len(y)]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if sched is not None and per_step:
                sched.step()
            if ema is not None:
                _ema_update(ema, model, cfg.ema_decay)
            step += 1
            seen += len(idx)
            loss_sum += loss.detach() * len(idx)
            correct += (logits.argmax(1) == y).sum()
            now = time.perf_counter() - t0
            if now - last_report >= PROGRESS_EVERY_S or b == steps_per_epoch - 1:
                last_report = now
                rate = seen / max(now, 1e-9)
                left = (total_steps - step) * cfg.batch_size / max(rate, 1e-9)
                report({"phase": "train", "epoch": epoch + 1, "epochs": cfg.epochs, "step": step,
                        "total_steps": total_steps, "train_loss": loss_sum.item() / seen,
                        "train_acc": correct.item() / seen * 100, "lr": opt.param_groups[0]["lr"],
                        "images_per_s": rate, "eta_s": left})
            if cfg.max_steps and step >= cfg.max_steps:
                break
        start_batch = 0
        elapsed += time.perf_counter() - t0
        row = {"epoch": epoch + 1, "step": step, "train_loss": loss_sum.item() / max(seen, 1),
               "train_acc": correct.item() / max(seen, 1) * 100, "lr": opt.param_groups[0]["lr"],
               "time_s": elapsed, "images_per_s": seen / max(time.perf_counter() - t0, 1e-9)}
        eval_model = ema if ema is not None else model
        improved = True
        if len(val):
            row["val_acc"], row["val_loss"] = evaluate(eval_model, val, cfg.tta_flip)
            improved = row["val_acc"] > best_acc
            if improved:
                best_acc, stale = row["val_acc"], 0
            else:
                stale += 1
            if sched is not None and not per_step:
                sched.step(row["val_acc"])
        run.append_metrics(row)
        if improved:  # with no validation split, the latest epoch is the best we know of
            save_checkpoint(run.path / "best.pt", {"model": model.state_dict(),
                                                   "ema": ema.state_dict() if ema is not None else None,
                                                   "epoch": epoch + 1})
        checkpoint(last_path, epoch + 1, 0)
        report({"phase": "epoch", **row, "epochs": cfg.epochs, "total_steps": total_steps})


@torch.no_grad()
def _ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    for e, p in zip(ema.state_dict().values(), model.state_dict().values()):
        if e.dtype.is_floating_point:
            e.lerp_(p, 1 - decay)
        else:
            e.copy_(p)


# --- evaluation written next to the weights --------------------------------------------------
def classification_report(labels: torch.Tensor, preds: torch.Tensor) -> dict:
    """Confusion matrix (rows = true class) and per-class precision/recall/F1 in %."""
    cm = torch.bincount(labels * 10 + preds, minlength=100).view(10, 10)
    tp = cm.diag().float()
    precision = tp / cm.sum(0).clamp(min=1) * 100
    recall = tp / cm.sum(1).clamp(min=1) * 100
    f1 = 2 * precision * recall / (precision + recall).clamp(min=1e-9)
    return {"confusion_matrix": cm.tolist(),
            "per_class": [{"class": c, "precision": round(p, 2), "recall": round(r, 2), "f1": round(f, 2)}
                          for c, p, r, f in zip(CLASSES, precision.tolist(), recall.tolist(), f1.tolist())]}


def measure_speed(model: nn.Module, device: torch.device) -> dict:
    """Inference latency for one image (median of 30, ms; one thread on CPU) and batched throughput (images/s)."""
    model.eval()
    one = torch.rand(1, 1, 28, 28, device=device)
    batch = torch.rand(512, 1, 28, 28, device=device)
    times = []
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)  # one image is latency-bound: the app serves it on one thread
    with torch.no_grad(), _autocast(device):
        for i in range(35):
            t = time.perf_counter()
            model(one)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i >= 5:
                times.append(time.perf_counter() - t)
        torch.set_num_threads(threads)
        model(batch)
        t = time.perf_counter()
        for _ in range(3):
            model(batch)
        if device.type == "cuda":
            torch.cuda.synchronize()
        rate = 3 * 512 / (time.perf_counter() - t)
    return {"latency_ms": sorted(times)[len(times) // 2] * 1000, "throughput_per_s": rate}


def write_eval(run: Run, data_root=None, device: torch.device | None = None) -> dict:
    """Evaluate the run's best weights once on the official 10k test set; write eval.json."""
    from fashion_core.runs import load_model  # noqa: PLC0415 (runs imports nothing from here)

    device = device or resolve_device("auto")
    cfg = run.config
    model = load_model(run, "best", device)
    test = load_split(False, data_root)
    logits = infer(model, test.images, tta_flip=cfg.tta_flip)
    probs = logits.softmax(1)
    preds = probs.argmax(1).cpu()
    acc = (preds == test.labels).float().mean().item() * 100
    metrics = run.metrics
    ck = load_checkpoint(run.path / "last.pt") if (run.path / "last.pt").exists() else {}
    result = {
        "test_accuracy": round(acc, 2), "model": cfg.model, "params": count_params(model),
        "epochs": len(metrics), "best_epoch": max(metrics, key=lambda m: m.get("val_acc", 0))["epoch"]
        if metrics and "val_acc" in metrics[0] else len(metrics),
        "best_val_acc": max((m["val_acc"] for m in metrics if "val_acc" in m), default=None),
        "train_time_s": round(ck.get("train_time_s", metrics[-1]["time_s"] if metrics else 0.0), 1),
        "device": describe_device(device), "classes": CLASSES,
        **classification_report(test.labels, preds),
        "predictions": preds.tolist(),
        "confidence": [round(p, 4) for p in probs.max(1).values.cpu().tolist()],
        **measure_speed(model, device),
    }
    atomic_write_json(run.path / "eval.json", result)
    return result
