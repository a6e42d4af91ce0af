"""Benchmark: the engine's training speed vs a naive torch DataLoader pipeline, in the same run.

    FASHION_MNIST_ROOT=... python benchmarks/train_speed.py [--model flagship] [--epochs 4]

Both sides train the same model with the same optimiser, schedule and augmentation kind
(flip + pad-crop) on the full 60k training set and are scored on the 10k test set after every
epoch (both with test-time flip averaging); training time excludes those evaluations. Prints
images/s and the training time at which 90/92/93/94% test accuracy was first reached. The naive
side stops after --naive-epochs (default 2) to keep the run short. Last, the model's training
step alone, on a batch already in memory, gives the ceiling no data pipeline can pass, and so the
largest speed-up over the naive side this model allows on this device. A benchmark, not a test.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from torchvision import transforms
from torchvision.datasets import FashionMNIST

from fashion_core.augment import AugmentConfig
from fashion_core.config import recipe
from fashion_core.data import CACHE_DIR, data_root, load_split
from fashion_core.device import describe_device, resolve_device
from fashion_core.inference import evaluate
from fashion_core.losses import make_loss
from fashion_core.models import create_model
from fashion_core.optim import make_optimizer, make_scheduler
from fashion_core.runs import Run, load_model
from fashion_core.train import train

TARGETS = (90.0, 92.0, 93.0, 94.0)


def engine(cfg, test) -> list[tuple[float, float, float]]:
    """[(train seconds, test accuracy, images/s)] after each epoch, via fashion_core.train."""
    curve = []
    with tempfile.TemporaryDirectory() as tmp:
        def on_progress(p: dict) -> None:
            if p.get("phase") == "epoch":
                model = load_model(Run(Path(tmp)), "last", resolve_device(cfg.device))
                acc, _ = evaluate(model, test, tta_flip=True)
                curve.append((p["time_s"], acc, p["images_per_s"]))
                print(f"  engine epoch {p['epoch']}: {p['time_s']:.1f}s  test {acc:.2f}%  "
                      f"{p['images_per_s']:.0f} img/s", flush=True)
        train(cfg, tmp, on_progress)
    return curve


def naive(cfg, test, device, epochs: int) -> list[tuple[float, float, float]]:
    """The textbook loop: per-sample PIL transforms in a DataLoader, the same model and optimiser.

    It follows the same schedule as the engine (cfg.epochs long) but stops after `epochs`.
    """
    tf = transforms.Compose([transforms.RandomCrop(28, padding=cfg.augment.crop_pad),
                             transforms.RandomHorizontalFlip(), transforms.ToTensor()])
    root = str(data_root())
    ds = FashionMNIST(root if (Path(root) / "FashionMNIST/raw/train-images-idx3-ubyte").exists()
                      else str(CACHE_DIR), train=True, transform=tf)
    loader = DataLoader(ds, batch_size=cfg.batch_size, shuffle=True)
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model).to(device)
    opt = make_optimizer(cfg, model.parameters())
    sched, _ = make_scheduler(cfg, opt, len(loader) * cfg.epochs)
    loss_fn = make_loss(cfg, device)
    curve, elapsed = [], 0.0
    for epoch in range(epochs):
        model.train()
        t0, seen = time.perf_counter(), 0
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            loss = loss_fn(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            seen += len(y)
        dt = time.perf_counter() - t0
        elapsed += dt
        acc, _ = evaluate(model, test, tta_flip=True)
        curve.append((elapsed, acc, seen / dt))
        print(f"  naive  epoch {epoch + 1}: {elapsed:.1f}s  test {acc:.2f}%  {seen / dt:.0f} img/s", flush=True)
    return curve


def model_alone(cfg, device, steps: int = 30) -> float:
    """Images/s of the model's own training step (forward, loss, backward, optimiser) on one batch
    already on the device, as the engine lays it out (channels_last): no data pipeline at all, so
    no pipeline, ours included, can train this model faster."""
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model).to(device, memory_format=torch.channels_last).train()
    opt = make_optimizer(cfg, model.parameters())
    loss_fn = make_loss(cfg, device)
    x = torch.rand(cfg.batch_size, 1, 28, 28, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (cfg.batch_size,), device=device)
    for i in range(steps + 5):  # 5 warm-up steps
        if i == 5:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * cfg.batch_size / (time.perf_counter() - t0)


def time_to(curve, target: float) -> str:
    hit = next((t for t, acc, _ in curve if acc >= target), None)
    return f"{hit:.0f}s" if hit is not None else "not reached"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="flagship")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--naive-epochs", type=int, default=2, help="the slow baseline stops after this many")
    args = ap.parse_args()
    device = resolve_device("auto")
    # flip + pad-crop on both sides so the work per image is comparable
    cfg = recipe("flagship", model=args.model, epochs=args.epochs, batch_size=args.batch_size,
                 val_split="none", augment=AugmentConfig(hflip_p=0.5, crop_p=1.0, crop_pad=2).to_dict())
    test = load_split(False)
    print(f"device: {describe_device(device)}  model: {args.model}  epochs: {args.epochs}  "
          f"batch: {args.batch_size}")
    ours = engine(cfg, test)
    base = naive(cfg, test, device, min(args.naive_epochs, args.epochs))
    rate_ours = sum(r for *_, r in ours) / len(ours)
    rate_base = sum(r for *_, r in base) / len(base)
    print(f"\n{'':24}{f'engine ({len(ours)} ep)':>14}{f'naive ({len(base)} ep)':>14}")
    print(f"{'images/s (mean)':24}{rate_ours:>14.0f}{rate_base:>14.0f}   speed-up {rate_ours / rate_base:.2f}x")
    for target in TARGETS:
        print(f"{f'time to {target:.0f}% test':24}{time_to(ours, target):>14}{time_to(base, target):>14}")
    print(f"{'final test accuracy':24}{ours[-1][1]:>13.2f}%{base[-1][1]:>13.2f}%")
    ceiling = model_alone(cfg, device)
    print(f"\nmodel alone (its training step on a batch already in memory): {ceiling:.0f} img/s, the ceiling "
          f"for any data pipeline on this device: at most {ceiling / rate_base:.2f}x the naive images/s "
          f"(engine at {rate_ours / ceiling:.0%} of it)")


if __name__ == "__main__":
    main()
