"""Benchmark: the quick recipe (the Train page's default), the flagship recipe and a naive torch
DataLoader loop, in one run on one device.

    FASHION_MNIST_ROOT=... python benchmarks/train_speed.py [--device cuda] [--quick-seeds 3]
        [--quick-epochs N] [--flagship-epochs 4] [--naive-epochs 2]

The quick recipe trains exactly as `python -m fashion_core train --recipe quick` does (its 5,000
stratified validation images held out), once per seed; the flagship recipe trains on all 60k images
with flip + pad-crop, and the naive loop trains the flagship model with the same optimiser, schedule
and augmentation kind through per-sample PIL transforms in a DataLoader, stopping after
--naive-epochs. Every side is scored on the 10k test set after every epoch, averaged with the
flipped image; training time excludes those evaluations and loading the data, which is timed and
printed apart. Prints, for each side, images/s and the training time at which 90/92/93/94% test
accuracy was first reached, the ratios against the naive loop, and the quick recipe's test
accuracy and training time per seed. Last, the flagship's training step alone, on a batch already
in memory: the ceiling no data pipeline can pass. Machines differ by up to 2x, so the flagship's
images/s is printed beside the figures. A benchmark, not a test.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from torchvision import transforms
from torchvision.datasets import FashionMNIST

from fashion_core.augment import AugmentConfig  # noqa: E402
from fashion_core.config import TrainConfig, recipe  # noqa: E402
from fashion_core.data import CACHE_DIR, data_root, load_split  # noqa: E402
from fashion_core.device import describe_device, resolve_device  # noqa: E402
from fashion_core.inference import evaluate  # noqa: E402
from fashion_core.losses import make_loss  # noqa: E402
from fashion_core.models import create_model  # noqa: E402
from fashion_core.optim import make_optimizer, make_scheduler  # noqa: E402
from fashion_core.runs import Run, load_model  # noqa: E402
from fashion_core.train import train  # noqa: E402

TARGETS = (90.0, 92.0, 93.0, 94.0)


def engine(cfg: TrainConfig, test, label: str) -> list[tuple[float, float, float]]:
    """[(train seconds, test accuracy, images/s)] after each epoch, via fashion_core.train."""
    curve = []
    with tempfile.TemporaryDirectory() as tmp:
        def on_progress(p: dict) -> None:
            if p.get("phase") == "epoch":
                model = load_model(Run(Path(tmp)), "last", resolve_device(cfg.device))
                acc, _ = evaluate(model, test, tta_flip=True)
                curve.append((p["time_s"], acc, p["images_per_s"]))
                print(f"  {label} epoch {p['epoch']}: {p['time_s']:.1f}s  test {acc:.2f}%  "
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
        print(f"  naive epoch {epoch + 1}: {elapsed:.1f}s  test {acc:.2f}%  {seen / dt:.0f} img/s", flush=True)
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


def time_to(curve, target: float) -> float | None:
    return next((t for t, acc, _ in curve if acc >= target), None)


def seconds(t: float | None) -> str:
    return f"{t:.0f}s" if t is not None else "not reached"


def ratio(base_curve, ours: float | None, target: float) -> str:
    """How many times sooner ours reached target than the base curve did; a lower bound (>) when the base
    never did in the time it trained."""
    if ours is None:
        return "-"
    base = time_to(base_curve, target)
    return f"{base / ours:.1f}x" if base is not None else f">{base_curve[-1][0] / ours:.1f}x"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ap.add_argument("--quick-seeds", type=int, default=3, help="the quick recipe trains once per seed (0, 1, ...)")
    ap.add_argument("--quick-epochs", type=int, help="default: the recipe's")
    ap.add_argument("--flagship-epochs", type=int, default=4)
    ap.add_argument("--naive-epochs", type=int, default=2, help="the slow baseline stops after this many")
    args = ap.parse_args()
    if args.quick_seeds < 1:
        ap.error("--quick-seeds must be at least 1")
    device = resolve_device(args.device)
    t0 = time.perf_counter()
    test = load_split(False)
    load_split(True)  # cached: every side's loading below is a memory copy
    loading = time.perf_counter() - t0
    quick = recipe("quick", device=args.device, **({"epochs": args.quick_epochs} if args.quick_epochs else {}))
    # flip + pad-crop on both flagship sides so the work per image is comparable
    flagship = recipe("flagship", epochs=args.flagship_epochs, val_split="none", device=args.device,
                      augment=AugmentConfig(hflip_p=0.5, crop_p=1.0, crop_pad=2).to_dict())
    print(f"device: {describe_device(device)}   loading Fashion-MNIST (train + test): {loading:.1f}s, not counted")
    quick_runs = [engine(replace(quick, seed=seed), test, f"quick seed {seed}")
                  for seed in range(args.quick_seeds)]
    ours = engine(flagship, test, "flagship")
    base = naive(flagship, test, device, min(args.naive_epochs, args.flagship_epochs))
    rate = {name: sum(r for *_, r in c) / len(c) for name, c in
            (("quick", quick_runs[0]), ("flagship", ours), ("naive", base))}
    print(f"\nthis machine: the flagship engine trains {rate['flagship']:.0f} images/s on {describe_device(device)}\n")
    print(f"| measure | quick ({quick.epochs} ep, seed 0) | flagship ({len(ours)} ep) | naive ({len(base)} ep) "
          "| quick vs naive | flagship vs naive |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    print(f"| images/s (mean) | {rate['quick']:.0f} | {rate['flagship']:.0f} | {rate['naive']:.0f} "
          f"| {rate['quick'] / rate['naive']:.1f}x | {rate['flagship'] / rate['naive']:.1f}x |")
    for target in TARGETS:
        q, f, n = (time_to(c, target) for c in (quick_runs[0], ours, base))
        print(f"| time to {target:.0f}% test | {seconds(q)} | {seconds(f)} | {seconds(n)} "
              f"| {ratio(base, q, target)} | {ratio(base, f, target)} |")
    print(f"| final test accuracy | {quick_runs[0][-1][1]:.2f}% | {ours[-1][1]:.2f}% | {base[-1][1]:.2f}% | | |")
    print(f"| training time | {quick_runs[0][-1][0]:.0f}s | {ours[-1][0]:.0f}s | {base[-1][0]:.0f}s | | |")
    accs = [c[-1][1] for c in quick_runs]
    times = [c[-1][0] for c in quick_runs]
    print(f"\nquick recipe, {len(accs)} seeds: test " + ", ".join(f"{a:.2f}%" for a in accs)
          + f" (mean {sum(accs) / len(accs):.2f}%, lowest {min(accs):.2f}%); training "
          + ", ".join(f"{t:.0f}s" for t in times) + f" (mean {sum(times) / len(times):.0f}s); "
          f"goal: mean >= 93.0%, each >= 92.7%, <= 60s on a 2-core CPU")
    print(f"quick reaches 90% {ratio(base, time_to(quick_runs[0], 90.0), 90.0)} sooner than the naive loop "
          "(goal >= 5x)")
    ceiling = model_alone(flagship, device)
    print(f"\nflagship alone (its training step on a batch already in memory): {ceiling:.0f} img/s, the ceiling "
          f"for any data pipeline: at most {ceiling / rate['naive']:.2f}x the naive images/s "
          f"(engine at {rate['flagship'] / ceiling:.0%} of it)")


if __name__ == "__main__":
    main()
