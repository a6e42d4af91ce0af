"""The one training loop, used by the CLI, background jobs and tests. It never prints.

`train(config, run_dir, on_progress, should_stop)` trains on CUDA when present (bf16 autocast,
data on the GPU) and on the CPU otherwise (both channels_last), writes a self-describing run, resumes
from `last.pt`, and stops within one batch when `should_stop()` turns true. It reads like
torchvision's references: `train` over `setup`, `resume`, `train_one_epoch`, `end_epoch` and `save`.
"""
from __future__ import annotations

import copy
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from fashion_core.augment import augment_batch, partial_garments
from fashion_core.calibration import calibrate
from fashion_core.config import TrainConfig
from fashion_core.data import CLASSES, TRAIN_SIZE, FashionData, load_split, split_indices, val_size
from fashion_core.device import describe_device, resolve_device
from fashion_core.evaluation import write_eval
from fashion_core.gan import Generator, load_generator, to_unit
from fashion_core.inference import autocast, evaluate, to_input
from fashion_core.losses import make_loss, normalise_logits
from fashion_core.models import create_model
from fashion_core.optim import init_weights, make_optimizer, make_scheduler
from fashion_core.photos.folders import load_photo_set, photo_loss
from fashion_core.photos.thresholds import fit_threshold
from fashion_core.runs import (Run, atomic_write_json, config_json, load_checkpoint, load_model, remove_stray_temps,
                               save_checkpoint)

Progress = Callable[[dict], None]
PROGRESS_EVERY_S = 0.5  # seconds between progress reports


class Cancelled(Exception):
    """Raised inside the loop when should_stop() says so; the run is saved before it leaves."""


def train(config: TrainConfig, run_dir: str | Path, on_progress: Progress | None = None,
          should_stop: Callable[[], bool] | None = None, data_root: str | Path | None = None) -> Run:
    """Train (or resume) the run in run_dir; returns the Run once eval.json is written."""
    config.validate()
    device = resolve_device(config.device)
    run = Run(Path(run_dir))
    check_resumable(run, config)
    run.path.mkdir(parents=True, exist_ok=True)
    remove_stray_temps(run.path)
    atomic_write_json(run.path / "config.json", config_json(config))
    report = on_progress or (lambda p: None)
    run.set_status("running", device=describe_device(device))
    try:
        fit(setup(config, run, device, report, data_root), report, should_stop or (lambda: False))
        run.set_status("evaluating")
        report({"phase": "test"})
        result = write_eval(run, data_root, device)
        if config.val_split != "none":  # the temperature behind "unsure", fitted on validation only
            calibrate(run, data_root)
        if config.photo_dir:  # the unsure threshold, picked on the photos' holdout slice
            report({"phase": "photo threshold"})
            fit_threshold(run)
        run.set_status("done", test_accuracy=result["test_accuracy"])
        report({"phase": "done", "test_accuracy": result["test_accuracy"]})
    except Cancelled:
        run.set_status("cancelled")
        report({"phase": "cancelled"})
    except BaseException as exc:
        run.set_status("failed", error=f"{type(exc).__name__}: {exc}")
        raise
    return run


def check_resumable(run: Run, config: TrainConfig) -> None:
    """Refuse, before anything is written, a folder whose history training would overwrite: another
    run's config, or a finished run with no last.pt to go on from (a shipped or compacted run):
    retraining it would replace its weights and cut its metrics. (A run killed before its first
    last.pt trains again from the start, which replays the same epochs.)"""
    if not (run.path / "config.json").exists():
        return
    if run.config != config:
        raise ValueError(f"{run.path} already holds a run with a different config")
    if not (run.path / "last.pt").exists() and (run.eval is not None or run.status.get("state") == "done"):
        raise ValueError(f"{run.path} has trained epochs but no last.pt to resume from (a finished or compacted "
                         "run); it is left as it is: train into a new folder instead")


@dataclass
class Session:
    """Everything one training run works with, built by setup(); the counters are what resume() restores."""
    cfg: TrainConfig
    run: Run
    device: torch.device
    model: nn.Module
    opt: torch.optim.Optimizer
    sched: object
    per_step: bool  # the schedule steps every batch (else once an epoch, on validation accuracy)
    loss_fn: Callable
    ema: AveragedModel | None
    aug_gen: torch.Generator
    x_train: torch.Tensor  # (N, 28, 28) uint8 on the device
    y_train: torch.Tensor
    val: FashionData
    photos: tuple[torch.Tensor, torch.Tensor] | None  # (images uint8, target sets) on the device
    synth: Generator | None  # where synthetic_fraction of each batch comes from
    teacher: nn.Module | None  # init_from's model, frozen, when distill_weight is set
    steps_per_epoch: int
    total_steps: int
    epoch: int = 0
    batch: int = 0
    step: int = 0
    best_acc: float = -1.0
    stale: int = 0
    elapsed: float = 0.0  # seconds of training, over every session of this run


def load_data(cfg: TrainConfig, device: torch.device, data_root) -> tuple[torch.Tensor, torch.Tensor, FashionData]:
    """(training images, labels) on the device, and the validation split."""
    full = load_split(True, data_root)
    tr_idx, va_idx = split_indices(full.labels, cfg.val_split, cfg.val_fraction, cfg.val_count, cfg.seed)
    if cfg.train_subset:
        tr_idx = tr_idx[: cfg.train_subset]
    # faster to hold uint8 on the device and convert per batch than to hold floats
    return full.images[tr_idx].to(device), full.labels[tr_idx].to(device), FashionData(full.images[va_idx],
                                                                                         full.labels[va_idx])


def build_model(cfg: TrainConfig) -> nn.Module:
    """The seeded, initialised model on the CPU (a fine-tune's start weights loaded)."""
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    model = create_model(cfg.model, **cfg.model_kwargs)
    init_weights(model, cfg.init)
    if cfg.init_from:  # fine-tuning: a resumed run overwrites these in resume() with its own
        model.load_state_dict(load_model(Run(Path(cfg.init_from))).state_dict())
    return model


def load_photos(cfg: TrainConfig, run: Run, device: torch.device, report: Progress):
    """The train slice of the labelled photos in photo_dir (photos.folders), which joins every batch."""
    if not cfg.photo_dir:
        return None
    report({"phase": "loading photos"})
    images, sets, _ = load_photo_set(cfg.photo_dir, "train", cfg.photo_views)
    return images.to(device), sets.to(device)


def setup(cfg: TrainConfig, run: Run, device: torch.device, report: Progress, data_root) -> Session:
    report({"phase": "loading data"})
    x_train, y_train, val = load_data(cfg, device, data_root)
    model = build_model(cfg)
    # the start run, as build_model loaded it (before resume() overwrites the weights), when its answers are kept
    teacher = (copy.deepcopy(model).to(device, memory_format=torch.channels_last).eval().requires_grad_(False)
               if cfg.distill_weight else None)
    photos = load_photos(cfg, run, device, report)
    # channels_last pays on CUDA and on the CPU too (measured: flagship 1169 -> 1718 img/s on 2 cores)
    model = model.to(device, memory_format=torch.channels_last)
    if device.type == "cpu":
        # subnormal floats (ConvNeXt's 1e-6 layer scales make some) slow x86 arithmetic by orders of
        # magnitude; flushing them to zero loses nothing a model needs
        torch.set_flush_denormal(True)
    opt = make_optimizer(cfg, model.parameters())
    steps_per_epoch = -(-len(x_train) // cfg.batch_size)
    total_steps = min(steps_per_epoch * cfg.epochs, cfg.max_steps or 10**18)
    sched, per_step = make_scheduler(cfg, opt, total_steps)
    ema = (AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)
           if cfg.ema_decay else None)
    synth = load_generator(cfg.synthetic_from, device) if cfg.synthetic_fraction else None
    s = Session(cfg, run, device, model, opt, sched, per_step, make_loss(cfg, device), ema,
                torch.Generator(device=device).manual_seed(cfg.seed), x_train, y_train, val, photos, synth, teacher,
                steps_per_epoch, total_steps)
    if (run.path / "last.pt").exists():
        resume(s, run.path / "last.pt")
    return s


def resume(s: Session, path: Path) -> None:
    """Restore the weights, optimiser, schedule, EMA, random generators and counters saved by save()."""
    ck = load_checkpoint(path)
    s.model.load_state_dict(ck["model"])
    s.opt.load_state_dict(ck["optimizer"])
    if s.sched is not None and ck.get("scheduler"):
        s.sched.load_state_dict(ck["scheduler"])
    if s.ema is not None and ck.get("ema"):
        s.ema.module.load_state_dict(ck["ema"])
    s.aug_gen.set_state(ck["aug_rng"].to(s.aug_gen.get_state().device))
    torch.set_rng_state(ck["torch_rng"])
    if s.device.type == "cuda" and ck.get("cuda_rng") is not None:  # dropout draws from it there
        torch.cuda.set_rng_state(ck["cuda_rng"], s.device)
    s.epoch, s.batch, s.step = ck["epoch"], ck["batch"], ck["step"]
    if s.ema is not None:  # updates so far: the first copies the weights, the later ones average
        s.ema.n_averaged.fill_(s.step)
    s.best_acc, s.stale, s.elapsed = ck["best_val_acc"], ck["stale_epochs"], ck["train_time_s"]


def save(s: Session, path: Path) -> None:
    """The full training state at (s.epoch, s.batch), written atomically."""
    save_checkpoint(path, {
        "model": s.model.state_dict(), "optimizer": s.opt.state_dict(),
        "scheduler": s.sched.state_dict() if s.sched is not None else None,
        "ema": s.ema.module.state_dict() if s.ema is not None else None,
        "epoch": s.epoch, "batch": s.batch, "step": s.step, "best_val_acc": s.best_acc,
        "stale_epochs": s.stale, "train_time_s": s.elapsed,
        "aug_rng": s.aug_gen.get_state(), "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state(s.device) if s.device.type == "cuda" else None,
    })


def fit(s: Session, report: Progress, stop: Callable[[], bool]) -> None:
    cfg = s.cfg
    for epoch in range(s.epoch, cfg.epochs):
        if cfg.max_steps and s.step >= cfg.max_steps:
            break
        if cfg.early_stop_patience and s.stale >= cfg.early_stop_patience:  # checked first: a resumed
            break  # run that early stopping had ended trains no extra epoch
        s.epoch = epoch
        row = train_one_epoch(s, report, stop)
        end_epoch(s, row)
        report({"phase": "epoch", **row, "epochs": cfg.epochs, "total_steps": s.total_steps})


def training_step(s: Session, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One optimiser step on the images at idx, plus photos and partial garments (scored by
    photo_loss); returns (loss, the batch's own logits, its labels)."""
    cfg, device = s.cfg, s.device
    if s.synth is not None:
        x, y = with_synthetic(s, idx)
    else:
        x, y = to_input(s.x_train[idx]), s.y_train[idx]
    x = augment_batch(x, y, cfg.augment, s.aug_gen)
    extra, sets = [], []
    if s.photos is not None:
        pick = torch.randint(len(s.photos[0]), (cfg.photo_batch,), generator=s.aug_gen, device=device)
        sets.append(s.photos[1][pick])
        extra.append(augment_batch(to_input(s.photos[0][pick]), sets[-1].int().argmax(1), cfg.augment, s.aug_gen))
    if cfg.partial_outliers:
        extra.append(partial_garments(x[:cfg.partial_outliers], s.aug_gen))
        # their targets: no class; a short last batch gives fewer
        sets.append(torch.zeros(len(extra[-1]), len(CLASSES), dtype=torch.bool, device=device))
    x = torch.cat([x, *extra]).contiguous(memory_format=torch.channels_last)
    with autocast(device):
        logits = s.model(x)
        scored = normalise_logits(logits, cfg.logit_norm) if cfg.logit_norm else logits
        loss = s.loss_fn(scored[:len(y)].float(), y)
        if extra:
            loss = loss + photo_loss(scored[len(y):], torch.cat(sets), cfg.outlier_weight, cfg.photo_target)
        if s.teacher is not None:  # keep the start run's answers on the Fashion-MNIST images (not the photos)
            with torch.no_grad():
                kept = s.teacher(x[:len(y)]).float().softmax(1)
            loss = loss + cfg.distill_weight * nn.functional.kl_div(logits[:len(y)].float().log_softmax(1), kept,
                                                                    reduction="batchmean")
    s.opt.zero_grad(set_to_none=True)
    loss.backward()
    s.opt.step()
    if s.sched is not None and s.per_step:
        s.sched.step()
    if s.ema is not None:
        s.ema.update_parameters(s.model)
    s.step += 1
    return loss.detach(), logits[:len(y)].detach(), y


DIFFICULT_CANDIDATES = 4  # synthetic_mode "difficult": generated candidates per image kept


@torch.no_grad()
def with_synthetic(s: Session, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch at idx as model input and labels, its last synthetic_fraction replaced by generated images
    of random classes; in "difficult" mode, of DIFFICULT_CANDIDATES candidates per image, those the model
    being trained gives the lowest probability of their class (wrong or unsure ones first)."""
    k = round(s.cfg.synthetic_fraction * len(idx))
    real = idx[:len(idx) - k]
    n = k * (DIFFICULT_CANDIDATES if s.cfg.synthetic_mode == "difficult" else 1)
    labels = torch.randint(len(CLASSES), (n,), generator=s.aug_gen, device=s.device)
    z = torch.randn(n, s.synth.latent_dim, generator=s.aug_gen, device=s.device)
    fake = to_unit(s.synth(z, labels))
    if n > k:
        s.model.eval()  # scoring must not move batch-norm statistics
        with autocast(s.device):
            p = s.model(fake.contiguous(memory_format=torch.channels_last)).float().softmax(1)
        s.model.train()
        keep = p.gather(1, labels[:, None]).squeeze(1).argsort()[:k]
        fake, labels = fake[keep], labels[keep]
    return torch.cat([to_input(s.x_train[real]), fake]), torch.cat([s.y_train[real], labels])


def train_one_epoch(s: Session, report: Progress, stop: Callable[[], bool]) -> dict:
    """One pass over the training images from batch s.batch on; returns the epoch's metrics row.
    Raises Cancelled, after saving last.pt at the batch it stopped at, when stop() turns true."""
    cfg = s.cfg
    s.model.train()
    # the epoch's order depends only on (seed, epoch), so a resumed epoch replays it exactly
    order = torch.randperm(len(s.x_train), generator=torch.Generator().manual_seed(cfg.seed * 100_003 + s.epoch))
    order = order.to(s.device)
    t0, last_report, seen = time.perf_counter(), 0.0, 0
    loss_sum, correct = torch.zeros((), device=s.device), torch.zeros((), device=s.device)
    for b in range(s.batch, s.steps_per_epoch):
        if stop():
            s.elapsed += time.perf_counter() - t0
            s.batch = b
            save(s, s.run.path / "last.pt")
            raise Cancelled
        loss, logits, y = training_step(s, order[b * cfg.batch_size:(b + 1) * cfg.batch_size])
        seen += len(y)
        loss_sum += loss * len(y)
        correct += (logits.argmax(1) == y).sum()
        now = time.perf_counter() - t0
        if now - last_report >= PROGRESS_EVERY_S or b == s.steps_per_epoch - 1:
            last_report, rate = now, seen / max(now, 1e-9)
            report({"phase": "train", "epoch": s.epoch + 1, "epochs": cfg.epochs, "step": s.step,
                    "total_steps": s.total_steps, "train_loss": loss_sum.item() / seen,
                    "train_acc": correct.item() / seen * 100, "lr": s.opt.param_groups[0]["lr"],
                    "images_per_s": rate, "eta_s": (s.total_steps - s.step) * cfg.batch_size / max(rate, 1e-9)})
        if cfg.max_steps and s.step >= cfg.max_steps:
            break
    s.batch = 0
    s.elapsed += time.perf_counter() - t0
    return {"epoch": s.epoch + 1, "step": s.step, "train_loss": loss_sum.item() / max(seen, 1),
            "train_acc": correct.item() / max(seen, 1) * 100, "lr": s.opt.param_groups[0]["lr"],
            "time_s": s.elapsed, "images_per_s": seen / max(time.perf_counter() - t0, 1e-9)}


def end_epoch(s: Session, row: dict) -> None:
    """Validate, step a validation-driven schedule, record the row, keep the best weights in best.pt
    and the full state in last.pt."""
    improved = True
    if len(s.val):
        row["val_acc"], row["val_loss"] = evaluate(s.ema.module if s.ema is not None else s.model, s.val,
                                                   s.cfg.tta_flip)
        improved = row["val_acc"] > s.best_acc
        if improved:
            s.best_acc, s.stale = row["val_acc"], 0
        else:
            s.stale += 1
        if s.sched is not None and not s.per_step:
            s.sched.step(row["val_acc"])
    s.run.append_metrics(row)
    if improved:  # with no validation split, the latest epoch is the best we know of
        save_checkpoint(s.run.path / "best.pt", {"model": s.model.state_dict(),
                                                 "ema": s.ema.module.state_dict() if s.ema is not None else None,
                                                 "epoch": s.epoch + 1})
    s.epoch += 1
    save(s, s.run.path / "last.pt")


def estimate_seconds(cfg: TrainConfig, steps: int = 10, threads: int | None = None) -> float:
    """About how many seconds cfg trains for on its device (data loading, validation and the test not
    counted): `steps` optimiser steps of its model, optimiser, loss and augmentation on random images,
    timed after three warm-up steps, times the run's steps; on the CPU with `threads` threads (a training
    job's, which the app lowers for itself). Photos, synthetic images and cut garments, which add to
    some batches, are not included."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _timed_steps(cfg, steps) * _steps_of(cfg)
    finally:
        torch.set_num_threads(before)


def _steps_of(cfg: TrainConfig) -> int:
    n = TRAIN_SIZE - val_size(cfg.val_split, TRAIN_SIZE, cfg.val_fraction, cfg.val_count)
    n = min(n, cfg.train_subset) if cfg.train_subset else n
    total = -(-n // cfg.batch_size) * cfg.epochs
    return min(total, cfg.max_steps) if cfg.max_steps else total


def _timed_steps(cfg: TrainConfig, steps: int) -> float:
    """Seconds per optimiser step of cfg's model, optimiser, loss and augmentation on random images."""
    device = resolve_device(cfg.device)
    model = create_model(cfg.model, **cfg.model_kwargs).to(device, memory_format=torch.channels_last).train()
    opt, loss_fn = make_optimizer(cfg, model.parameters()), make_loss(cfg, device)
    gen = torch.Generator(device=device).manual_seed(0)
    images = torch.randint(0, 256, (cfg.batch_size, 28, 28), dtype=torch.uint8, generator=gen, device=device)
    labels = torch.randint(len(CLASSES), (cfg.batch_size,), generator=gen, device=device)
    for i in range(steps + 3):
        if i == 3:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
        x = augment_batch(to_input(images), labels, cfg.augment, gen).contiguous(memory_format=torch.channels_last)
        with autocast(device):
            loss = loss_fn(model(x).float(), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - t0) / steps
