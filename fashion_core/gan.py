"""Training and sampling a class-conditional GAN (fashion_core.models.gan), as a run like any other.

`train_gan(config, run_dir, on_progress, should_stop)` trains with the hinge loss (one discriminator
step, then one generator step, per batch of real images), keeps an exponential moving average of the
generator, and after every epoch writes a sample grid (samples/epoch-NNN.png), a metrics row, best.pt
(the averaged generator, what every sample comes from) and last.pt (everything, to resume from). It
stops within one batch when should_stop() turns true and carries on from last.pt when run again.

A generator run is a folder like a classifier's: config.json (kind "gan"), metrics.jsonl, status.json,
best.pt and last.pt, loadable with weights_only=True and rebuilt from the config alone. Generator runs
live in a gans/ folder of their own (GAN_DIRS), so classifier lists never show them.
"""
from __future__ import annotations

import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image
from torch.optim.swa_utils import AveragedModel

from fashion_core.config import GanConfig
from fashion_core.data import NUM_CLASSES, load_split
from fashion_core.dataset_stats import contact_sheet
from fashion_core.device import describe_device, resolve_device
from fashion_core.models.gan import Discriminator, Generator, build_gan
from fashion_core import runs as run_folders
from fashion_core.runs import (Run, atomic_write_bytes, atomic_write_json, config_json,
                               load_checkpoint, remove_stray_temps, runs_dir, save_checkpoint)

Progress = Callable[[dict], None]
PROGRESS_EVERY_S = 0.5
GRID_PER_CLASS = 10  # a sample grid: one row per class, this many images to a row
GRID_SEED = 1234  # the grids' noise, the same every epoch, so the grids show how one set of images evolves


def gan_dirs() -> tuple[Path, ...]:
    """Where generator runs live: the shipped ones, then the user's (FASHION_RUNS_DIR/gans)."""
    return run_folders.CHECKPOINT_DIR / "gans", runs_dir() / "gans"  # read now: tests move them


def list_generators() -> list[Run]:
    """Every generator run with weights (best.pt), shipped first, newest first within each folder."""
    found = []
    for d in gan_dirs():
        if d.is_dir():
            runs = [Run(p) for p in d.iterdir() if (p / "config.json").is_file() and (p / "best.pt").is_file()]
            found += sorted(runs, key=lambda r: (r.path / "best.pt").stat().st_mtime, reverse=True)
    return [r for r in found if _is_gan(r)]


def _is_gan(run: Run) -> bool:
    try:
        return run.kind == GanConfig.kind
    except ValueError:  # an unreadable config: not listed
        return False


# --- sampling ------------------------------------------------------------------------------------
def load_generator(run: Run | str | Path, device: str | torch.device = "cpu") -> Generator:
    """The run's averaged generator (best.pt), rebuilt from its config, in eval mode."""
    run = run if isinstance(run, Run) else Run(Path(run))
    cfg = run.config
    if cfg.kind != GanConfig.kind:
        raise ValueError(f"{run.name} is not a generator run (its kind is {cfg.kind!r})")
    gen = Generator(cfg.latent_dim, cfg.g_width)
    gen.load_state_dict(load_checkpoint(run.checkpoint("best"))["generator"])
    return gen.to(device).eval().requires_grad_(False)


def noise(n: int, latent_dim: int, seed: int, device: str | torch.device = "cpu") -> torch.Tensor:
    """n latent points drawn from N(0, 1) with this seed (drawn on the CPU: the same points on any device)."""
    return torch.randn(n, latent_dim, generator=torch.Generator().manual_seed(seed)).to(device)


@torch.no_grad()
def generate(gen: Generator, labels: torch.Tensor, z: torch.Tensor | None = None, seed: int = 0) -> torch.Tensor:
    """Images of the given classes as (N, 28, 28) uint8, like the dataset's; z: their latent points
    (by default drawn with seed)."""
    device = next(gen.parameters()).device
    z = noise(len(labels), gen.latent_dim, seed, device) if z is None else z.to(device)
    out = gen(z, labels.to(device)).squeeze(1)
    return ((out + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).cpu()


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """A generator's output in [-1, 1] as the classifiers' input in [0, 1]."""
    return (images + 1) / 2


def per_class(n: int) -> torch.Tensor:
    """Labels 0..9, n of each, in class order."""
    return torch.arange(NUM_CLASSES).repeat_interleave(n)


def sample_grid(gen: Generator, n: int = GRID_PER_CLASS, seed: int = GRID_SEED) -> np.ndarray:
    """One row of n images per class, as a (10*28, n*28) uint8 image."""
    return contact_sheet(generate(gen, per_class(n), seed=seed).numpy(), columns=n)


def interpolate(gen: Generator, label: int, seed_a: int, seed_b: int, steps: int = 8) -> torch.Tensor:
    """Images of one class along the straight line between two latent points: (steps, 28, 28) uint8."""
    a, b = noise(1, gen.latent_dim, seed_a), noise(1, gen.latent_dim, seed_b)
    t = torch.linspace(0, 1, steps)[:, None]
    return generate(gen, torch.full((steps,), label), z=(1 - t) * a + t * b)


# --- training --------------------------------------------------------------------------------------
class Cancelled(Exception):
    """should_stop() said so: last.pt was saved at the batch training stopped at."""


@dataclass
class GanSession:
    cfg: GanConfig
    run: Run
    device: torch.device
    gen: Generator
    disc: Discriminator
    ema: AveragedModel
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    rng: torch.Generator  # the noise and the batches' classes for the generator
    x_train: torch.Tensor  # (N, 28, 28) uint8 on the device
    y_train: torch.Tensor
    steps_per_epoch: int
    epoch: int = 0
    batch: int = 0
    step: int = 0
    elapsed: float = 0.0


def train_gan(config: GanConfig, run_dir: str | Path, on_progress: Progress | None = None,
              should_stop: Callable[[], bool] | None = None, data_root: str | Path | None = None) -> Run:
    """Train (or resume) the generator run in run_dir; returns the Run, done or cancelled. A run given more
    epochs than it has goes on from its last.pt: the learning rates are constant, so that is the same as
    having planned the longer run from the start."""
    config.validate()
    device = resolve_device(config.device)
    run = Run(Path(run_dir))
    if (run.path / "config.json").exists() and run.config != config:
        old = run.config
        longer = (old.kind == "gan" and old.replace(epochs=config.epochs) == config and config.epochs > old.epochs
                  and (run.path / "last.pt").exists())
        if not longer:
            raise ValueError(f"{run.path} already holds a run with a different config (only more epochs can be "
                             "given to a run whose last.pt is there)")
    run.path.mkdir(parents=True, exist_ok=True)
    remove_stray_temps(run.path)
    atomic_write_json(run.path / "config.json", config_json(config))
    report = on_progress or (lambda p: None)
    run.set_status("running", device=describe_device(device))
    try:
        s = setup(config, run, device, report, data_root)
        for epoch in range(s.epoch, config.epochs):
            s.epoch = epoch
            row = train_one_epoch(s, report, should_stop or (lambda: False))
            end_epoch(s, row)
            report({"phase": "epoch", **row, "epochs": config.epochs})
        run.set_status("done", epochs=config.epochs)
        report({"phase": "done"})
    except Cancelled:
        run.set_status("cancelled")
        report({"phase": "cancelled"})
    except BaseException as exc:
        run.set_status("failed", error=f"{type(exc).__name__}: {exc}")
        raise
    return run


def _ema_with_warmup(decay: float):
    """An exponential moving average whose decay grows from 0.1 to `decay` over the first steps, so that
    a short run's samples are not the untrained generator's (the usual EMA warm-up)."""
    def avg(averaged: torch.Tensor, current: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        beta = min(decay, (1 + float(n)) / (10 + float(n)))
        return averaged * beta + current * (1 - beta)
    return avg


def setup(cfg: GanConfig, run: Run, device: torch.device, report: Progress, data_root) -> GanSession:
    report({"phase": "loading data"})
    data = load_split(True, data_root)
    n = cfg.train_subset or len(data.images)
    torch.manual_seed(cfg.seed)
    gen, disc = build_gan(cfg.latent_dim, cfg.g_width, cfg.d_width)
    gen, disc = gen.to(device, memory_format=torch.channels_last), disc.to(device, memory_format=torch.channels_last)
    betas = (cfg.beta1, cfg.beta2)
    s = GanSession(cfg, run, device, gen, disc,
                   AveragedModel(gen, avg_fn=_ema_with_warmup(cfg.ema_decay), use_buffers=True),
                   torch.optim.Adam(gen.parameters(), cfg.lr_g, betas=betas),
                   torch.optim.Adam(disc.parameters(), cfg.lr_d, betas=betas),
                   torch.Generator(device=device).manual_seed(cfg.seed), data.images[:n].to(device),
                   data.labels[:n].to(device), n // cfg.batch_size)
    if s.steps_per_epoch == 0:
        raise ValueError(f"batch_size: {cfg.batch_size} is more than the {n} training images")
    if (run.path / "last.pt").exists():
        resume(s, run.path / "last.pt")
    return s


def resume(s: GanSession, path: Path) -> None:
    ck = load_checkpoint(path)
    s.gen.load_state_dict(ck["generator"])
    s.disc.load_state_dict(ck["discriminator"])
    s.ema.module.load_state_dict(ck["ema"])
    s.ema.n_averaged.fill_(ck["step"])
    s.opt_g.load_state_dict(ck["opt_g"])
    s.opt_d.load_state_dict(ck["opt_d"])
    s.rng.set_state(ck["rng"].to(s.rng.get_state().device))
    torch.set_rng_state(ck["torch_rng"])
    s.epoch, s.batch, s.step, s.elapsed = ck["epoch"], ck["batch"], ck["step"], ck["train_time_s"]


def save(s: GanSession, path: Path) -> None:
    save_checkpoint(path, {
        "generator": s.gen.state_dict(), "discriminator": s.disc.state_dict(), "ema": s.ema.module.state_dict(),
        "opt_g": s.opt_g.state_dict(), "opt_d": s.opt_d.state_dict(), "rng": s.rng.get_state(),
        "torch_rng": torch.get_rng_state(), "epoch": s.epoch, "batch": s.batch, "step": s.step,
        "train_time_s": s.elapsed})


def training_step(s: GanSession, idx: torch.Tensor) -> tuple[float, float, float, float]:
    """One discriminator step on a batch of real images and as many generated ones (hinge loss), then
    one generator step; returns (d_loss, g_loss, mean D score on real, on generated)."""
    real = (s.x_train[idx].float().div_(127.5).sub_(1)).unsqueeze(1).contiguous(memory_format=torch.channels_last)
    y = s.y_train[idx]
    z = torch.randn(len(y), s.cfg.latent_dim, device=s.device, generator=s.rng)
    with torch.no_grad():
        fake = s.gen(z, y)
    d_real, d_fake = s.disc(real, y), s.disc(fake, y)
    d_loss = torch.relu(1 - d_real).mean() + torch.relu(1 + d_fake).mean()
    s.opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    s.opt_d.step()
    # the generator's classes follow the data's (the same batch's labels), with fresh noise
    z = torch.randn(len(y), s.cfg.latent_dim, device=s.device, generator=s.rng)
    g_loss = -s.disc(s.gen(z, y), y).mean()
    s.opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    s.opt_g.step()
    s.ema.update_parameters(s.gen)
    s.step += 1
    return d_loss.item(), g_loss.item(), d_real.mean().item(), d_fake.mean().item()


def train_one_epoch(s: GanSession, report: Progress, stop: Callable[[], bool]) -> dict:
    """One pass over the training images from batch s.batch on (the order depends only on seed and
    epoch, so a resumed epoch replays it); raises Cancelled, after saving last.pt, when stop() turns true."""
    cfg = s.cfg
    s.gen.train()
    s.disc.train()
    order = torch.randperm(len(s.x_train), generator=torch.Generator().manual_seed(cfg.seed * 100_003 + s.epoch))
    order = order.to(s.device)
    t0, last_report, seen = time.perf_counter(), 0.0, 0
    sums = np.zeros(4)
    for b in range(s.batch, s.steps_per_epoch):
        if stop():
            s.elapsed += time.perf_counter() - t0
            s.batch = b
            save(s, s.run.path / "last.pt")
            raise Cancelled
        sums += training_step(s, order[b * cfg.batch_size:(b + 1) * cfg.batch_size])
        seen += cfg.batch_size
        now = time.perf_counter() - t0
        if now - last_report >= PROGRESS_EVERY_S or b == s.steps_per_epoch - 1:
            last_report, rate = now, seen / max(now, 1e-9)
            done = b + 1 - s.batch
            report({"phase": "train", "epoch": s.epoch + 1, "epochs": cfg.epochs, "step": s.step,
                    "total_steps": s.steps_per_epoch * cfg.epochs, "d_loss": sums[0] / done,
                    "g_loss": sums[1] / done, "images_per_s": rate,
                    "eta_s": (s.steps_per_epoch * cfg.epochs - s.step) * cfg.batch_size / max(rate, 1e-9)})
    steps = s.steps_per_epoch - s.batch
    s.batch = 0
    s.elapsed += time.perf_counter() - t0
    d_loss, g_loss, d_real, d_fake = sums / max(steps, 1)
    return {"epoch": s.epoch + 1, "step": s.step, "d_loss": d_loss, "g_loss": g_loss, "d_real": d_real,
            "d_fake": d_fake, "time_s": s.elapsed, "images_per_s": seen / max(time.perf_counter() - t0, 1e-9)}


def end_epoch(s: GanSession, row: dict) -> None:
    """The epoch's sample grid, metrics row, the averaged generator in best.pt and everything in last.pt."""
    gen = s.ema.module.eval()  # never trained itself: it stays in eval mode
    grid = sample_grid(gen)
    path = s.run.path / "samples" / f"epoch-{s.epoch + 1:03d}.png"
    path.parent.mkdir(exist_ok=True)
    atomic_write_bytes(path, _png(grid))
    s.run.append_metrics(row)
    save_checkpoint(s.run.path / "best.pt", {"generator": {k: v.detach().cpu().contiguous()
                                                           for k, v in gen.state_dict().items()},
                                             "epoch": s.epoch + 1})
    s.epoch += 1
    save(s, s.run.path / "last.pt")


def sample_grids(run: Run) -> list[Path]:
    """The run's per-epoch sample grids, in epoch order."""
    folder = run.path / "samples"
    return sorted(p for p in folder.glob("epoch-*.png") if p.is_file() and not p.is_symlink()) \
        if folder.is_dir() else []


def _png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()
