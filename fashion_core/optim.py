"""Optimisers, learning-rate schedules and weight initialisation, built from a TrainConfig."""
from __future__ import annotations

import torch
import torch.nn as nn

from fashion_core.config import TrainConfig


def make_optimizer(cfg: TrainConfig, params) -> torch.optim.Optimizer:
    betas = (cfg.beta1, cfg.beta2)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                               nesterov=cfg.nesterov and cfg.momentum > 0)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=betas, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=betas, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "nadam":
        return torch.optim.NAdam(params, lr=cfg.lr, betas=betas, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr, alpha=cfg.beta2, momentum=cfg.momentum,
                                   weight_decay=cfg.weight_decay)
    raise ValueError(f"optimizer: unknown optimizer {cfg.optimizer!r}")


def make_scheduler(cfg: TrainConfig, opt: torch.optim.Optimizer, total_steps: int):
    """Returns (scheduler or None, per_step): per-step schedules step every batch, plateau per epoch."""
    if cfg.schedule == "exponential":  # report 003: lr *= decay_rate every decay_steps steps
        return torch.optim.lr_scheduler.StepLR(opt, cfg.decay_steps, cfg.decay_rate), True
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(1, total_steps)), True
    if cfg.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=cfg.lr, total_steps=max(2, total_steps), pct_start=cfg.warmup_frac,
            cycle_momentum=cfg.optimizer in ("sgd", "rmsprop") and cfg.momentum > 0), True
    if cfg.schedule == "plateau":  # report 001: patience 1 epoch on validation accuracy
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="max", factor=cfg.plateau_factor, patience=cfg.plateau_patience), False
    return None, False


def init_weights(model: nn.Module, scheme: str) -> None:
    """He-normal (report 004) or Glorot-uniform init of conv/linear weights; 'default' keeps PyTorch's."""
    if scheme == "default":
        return
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            if scheme == "he":
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            else:
                nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
