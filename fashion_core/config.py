"""The one frozen training config: UI form -> job -> trainer -> saved run -> Compare page.

`TrainConfig.validate()` rejects bad values before anything starts, naming the field.
"""
from __future__ import annotations

import functools
import inspect
import json
import math
import re
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from fashion_core.augment import PRESETS, AugmentConfig

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "nadam")
SCHEDULES = ("none", "exponential", "plateau", "cosine", "onecycle")
LOSSES = ("ce", "weighted_ce", "focal")
INITS = ("default", "he", "glorot")
VAL_SPLITS = ("random", "stratified", "none")
# report 003 doubles the loss of its four hard classes: T-shirt, Pullover, Coat, Shirt
HARD_CLASS_WEIGHTS = (2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 1.0, 1.0)


# fields that only matter for some values of another field: field -> (that field, the values)
ONLY_WITH = {
    "momentum": ("optimizer", ("sgd", "rmsprop")), "nesterov": ("optimizer", ("sgd",)),
    "beta1": ("optimizer", ("adam", "adamw", "nadam")), "beta2": ("optimizer", ("adam", "adamw", "nadam", "rmsprop")),
    "decay_rate": ("schedule", ("exponential",)), "decay_steps": ("schedule", ("exponential",)),
    "plateau_patience": ("schedule", ("plateau",)), "plateau_factor": ("schedule", ("plateau",)),
    "warmup_frac": ("schedule", ("onecycle",)), "class_weights": ("loss", ("weighted_ce",)),
    "focal_gamma": ("loss", ("focal",)), "focal_alpha": ("loss", ("focal",)),
    "val_fraction": ("val_split", ("random",)), "val_count": ("val_split", ("stratified",)),
}


SPLIT_FIELDS = ("val_split", "val_fraction", "val_count", "seed")  # what decides the validation images

PHOTO_FIELDS = ("photo_shares", "photo_batch", "photo_views", "outlier_weight", "photo_target")


def unused_because(name: str, values: dict) -> str | None:
    """Why field `name` does nothing with the other fields' values (a TrainConfig dict, possibly
    partial), e.g. "used only when optimizer is sgd"; None when it is used."""
    if name in ONLY_WITH:
        other, when = ONLY_WITH[name]
        return None if values.get(other) in when else f"used only when {other} is {' or '.join(when)}"
    if name in PHOTO_FIELDS and not values.get("photo_dir"):
        return "used only with a photo_dir"
    return None


@functools.cache
def field_help(config_class: type | None = None) -> dict[str, str]:
    """Each field's end-of-line comment in the definition of TrainConfig (or AugmentConfig...): the
    Train form's help texts."""
    source = inspect.getsource(config_class or TrainConfig)
    return {m[1]: m[2].strip() for m in re.finditer(r"^    (\w+): [^#\n]*#\s*(.+)$", source, re.M)}


class ConfigError(ValueError):
    """Every problem TrainConfig.validate() found, one "field: what is wrong (got value)" each."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class TrainConfig:
    # model
    model: str = "flagship"  # architecture; the card below says which report it comes from
    model_kwargs: dict = field(default_factory=dict)  # e.g. {"dropout": 0.3}
    init: str = "default"  # default (PyTorch), he (report 004), glorot
    # schedule of work
    epochs: int = 10  # passes over the training images
    batch_size: int = 128  # images per optimiser step
    max_steps: int = 0  # stop after this many optimiser steps (0 = no limit)
    early_stop_patience: int = 0  # epochs without a better val accuracy (0 = off; report 002: 10)
    # optimiser
    optimizer: str = "sgd"  # sgd, adam, adamw, rmsprop or nadam
    lr: float = 0.05  # learning rate (the peak, for one-cycle)
    momentum: float = 0.9  # SGD momentum / RMSprop momentum
    nesterov: bool = True  # SGD only: Nesterov momentum
    beta1: float = 0.9  # Adam-family: first-moment decay
    beta2: float = 0.999  # Adam-family: second-moment decay; RMSprop: its smoothing constant
    weight_decay: float = 5e-4  # L2 penalty (decoupled for AdamW)
    # learning-rate schedule
    schedule: str = "onecycle"  # how lr changes: onecycle, cosine, exponential, plateau or none (constant)
    decay_rate: float = 0.9  # exponential: lr *= decay_rate every decay_steps steps (report 003)
    decay_steps: int = 10_000  # exponential: optimiser steps per decay_rate step
    plateau_patience: int = 1  # epochs (report 001)
    plateau_factor: float = 0.5  # plateau: lr *= this after plateau_patience epochs with no better val accuracy
    warmup_frac: float = 0.2  # one-cycle: fraction of steps spent warming up
    # loss
    loss: str = "ce"  # ce (cross-entropy), weighted_ce (class_weights) or focal
    class_weights: tuple = HARD_CLASS_WEIGHTS  # used by weighted_ce
    focal_gamma: float = 2.0  # focal loss only: how much easy images are down-weighted
    focal_alpha: float = 0.25  # 0 = no alpha balancing
    label_smoothing: float = 0.0  # share of the target spread over the other classes
    logit_norm: float = 0.0  # 0 = off; else LogitNorm: losses see logits scaled to length 1/this (try 0.04)
    # regularisation extras
    ema_decay: float = 0.0  # 0 = off; else keep an exponential moving average of weights
    tta_flip: bool = False  # test-time: average with the horizontally flipped image
    # data
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    val_split: str = "random"  # training images held out to pick the best epoch: random, stratified or none
    val_fraction: float = 0.2  # random split: share held out
    val_count: int = 4000  # stratified split: images held out (equal per class)
    train_subset: int = 0  # use only the first N training images (0 = all), for quick runs
    # fine-tuning
    init_from: str = ""  # a run directory: start from its best weights (same model)
    photo_dir: str = ""  # labelled real photos (fashion_core.photo_set); the photo_shares join each batch
    photo_shares: str = "train"  # which quarters train: 'train', 'calib', 'train,calib' or all four (photo_set.QUARTERS)
    photo_batch: int = 16  # photos added to every batch when photo_dir is set
    photo_views: int = 1  # shots per photo: the photo plus reframed copies (photo_set.reframe)
    outlier_weight: float = 0.5  # weight of the uniform-target loss on photos with no class (hats...)
    photo_target: str = "any"  # shoes: 'any' of Sandal/Sneaker/Ankle boot, or the 'top' one of them
    partial_outliers: int = 0  # per batch, garments cut to their top or bottom part, uniform target
    seed: int = 0  # fixes the split, the initial weights and the batches
    device: str = "auto"  # auto, cpu or cuda
    note: str = ""  # free text: the recipe, where it comes from

    def validate(self) -> "TrainConfig":
        """Raise ConfigError naming every bad field (a wrong type stops the checks there); return self
        when all is well."""
        from fashion_core.models import list_models  # late: models import torch.nn only

        problems: list[str] = []

        def need(ok: bool, name: str, msg: str) -> None:
            if not ok:
                problems.append(f"{name}: {msg} (got {getattr(self, name)!r})")

        for f in fields(self):  # types first, so the range checks below compare like with like
            kind = type(f.default) if f.default is not MISSING else None
            if kind in (int, float, str, bool):
                value = getattr(self, f.name)
                ok = (isinstance(value, kind) if kind in (str, bool) else not isinstance(value, bool) and
                      isinstance(value, (int, float) if kind is float else int))
                need(ok, f.name, {int: "must be an integer", float: "must be a number",
                                  str: "must be text", bool: "must be true or false"}[kind])
        if problems:  # the range checks below would compare unlike types
            raise ConfigError(problems)
        need(self.model in list_models(), "model", "unknown model; see `python -m fashion_core list-models`")
        need(isinstance(self.model_kwargs, dict), "model_kwargs", "must be a dict")
        if self.model_kwargs and not problems:  # a known model and a dict: its own constructor knows the keywords
            from fashion_core.models import create_model  # noqa: PLC0415

            try:
                create_model(self.model, **self.model_kwargs)
            except (TypeError, ValueError) as exc:
                need(False, "model_kwargs", f"{self.model} does not take these ({exc})")
        need(self.init in INITS, "init", f"must be one of {INITS}")
        need(isinstance(self.epochs, int) and 1 <= self.epochs <= 1000, "epochs", "must be an integer 1..1000")
        need(isinstance(self.batch_size, int) and 1 <= self.batch_size <= 8192, "batch_size",
             "must be an integer 1..8192")
        need(isinstance(self.max_steps, int) and self.max_steps >= 0, "max_steps", "must be >= 0")
        need(isinstance(self.early_stop_patience, int) and self.early_stop_patience >= 0,
             "early_stop_patience", "must be >= 0")
        need(self.optimizer in OPTIMIZERS, "optimizer", f"must be one of {OPTIMIZERS}")
        need(0 < self.lr <= 10, "lr", "must be in (0, 10]")
        need(0 <= self.momentum < 1, "momentum", "must be in [0, 1)")
        need(0 <= self.beta1 < 1, "beta1", "must be in [0, 1)")
        need(0 <= self.beta2 < 1, "beta2", "must be in [0, 1)")
        need(0 <= self.weight_decay < 1, "weight_decay", "must be in [0, 1)")
        need(self.schedule in SCHEDULES, "schedule", f"must be one of {SCHEDULES}")
        need(0 < self.decay_rate <= 1, "decay_rate", "must be in (0, 1]")
        need(self.decay_steps >= 1, "decay_steps", "must be >= 1")
        need(self.plateau_patience >= 0, "plateau_patience", "must be >= 0")
        need(0 < self.plateau_factor < 1, "plateau_factor", "must be in (0, 1)")
        need(0 < self.warmup_frac < 1, "warmup_frac", "must be in (0, 1)")
        need(self.loss in LOSSES, "loss", f"must be one of {LOSSES}")
        need(len(self.class_weights) == 10 and all(0 < w < math.inf for w in self.class_weights), "class_weights",
             "must be 10 positive numbers")
        need(0 <= self.focal_gamma <= 10, "focal_gamma", "must be in [0, 10]")
        need(0 <= self.focal_alpha <= 1, "focal_alpha", "must be in [0, 1]")
        need(0 <= self.label_smoothing < 1, "label_smoothing", "must be in [0, 1)")
        need(0 <= self.logit_norm <= 1, "logit_norm", "must be in [0, 1] (0 = off)")
        need(0 <= self.ema_decay < 1, "ema_decay", "must be in [0, 1)")
        need(self.val_split in VAL_SPLITS, "val_split", f"must be one of {VAL_SPLITS}")
        need(0 < self.val_fraction < 1, "val_fraction", "must be in (0, 1)")
        need(10 <= self.val_count < 60_000, "val_count", "must be in [10, 60000)")
        need(self.train_subset >= 0, "train_subset", "must be >= 0")
        if self.init_from:
            src = Path(self.init_from)
            finished = (src / "config.json").exists() and (src / "best.pt").exists()
            need(finished, "init_from", "must be a finished run directory (config.json and best.pt)")
        if self.init_from and finished:  # what it holds is only worth checking when it is there
            try:
                start = json.loads((src / "config.json").read_text())
                other = start.get("model")
            except (OSError, ValueError, AttributeError):
                start, other = {}, None
            need(other is not None, "init_from", "its config.json is unreadable")
            need(other is None or other == self.model, "init_from", f"holds a {other!r} model, not {self.model!r}")
            if self.val_split != "none":  # else validation (best epoch, temperature) scores seen images
                keys = ("val_split", "seed", "val_count" if start.get("val_split") == "stratified" else "val_fraction")
                theirs = {k: start.get(k, getattr(TrainConfig, k)) for k in keys}
                need(theirs == {k: getattr(self, k) for k in keys}, "init_from",
                     "held out a different validation split, so some of this run's validation images were "
                     f"its training images; use the same split ({', '.join(f'{k}={v}' for k, v in theirs.items())})")
        from fashion_core.photo_set import MAPPING, QUARTERS, UNMAPPED  # noqa: PLC0415 (numpy, torch)

        if self.photo_dir:
            root = Path(self.photo_dir)
            need(root.is_dir() and any((root / f).is_dir() for f in (*MAPPING, *UNMAPPED)), "photo_dir",
                 f"must be a folder holding some of the folders {', '.join((*MAPPING, *UNMAPPED))}")
        shares = self.photo_share_names
        need(bool(shares) and set(shares) <= set(QUARTERS) and len(set(shares)) == len(shares), "photo_shares",
             f"must name quarters of the photos, comma-separated, each once: {', '.join(QUARTERS)} (the "
             "photo benchmark measures a run that learned from a held-out quarter only when it learned from all "
             "four, by cross-validation)")
        need(isinstance(self.photo_batch, int) and 1 <= self.photo_batch <= 1024, "photo_batch",
             "must be an integer 1..1024")
        need(isinstance(self.photo_views, int) and 1 <= self.photo_views <= 16, "photo_views",
             "must be an integer 1..16")
        need(0 <= self.outlier_weight <= 10, "outlier_weight", "must be in [0, 10]")
        need(self.photo_target in ("any", "top"), "photo_target", "must be 'any' or 'top'")
        need(isinstance(self.partial_outliers, int) and 0 <= self.partial_outliers <= 1024, "partial_outliers",
             "must be an integer 0..1024")
        need(self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"), "device",
             "must be auto, cpu or cuda")
        need(self.early_stop_patience == 0 or self.val_split != "none", "early_stop_patience",
             "early stopping needs a validation split (val_split is 'none')")
        need(self.schedule != "plateau" or self.val_split != "none", "schedule",
             "reduce-on-plateau needs a validation split (val_split is 'none')")
        try:
            self.augment.validate()
        except ValueError as exc:
            problems.append(str(exc))
        if problems:
            raise ConfigError(problems)
        return self

    # --- JSON round trip ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["class_weights"] = list(self.class_weights)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        """Build from a dict (a saved config.json or a form); unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"{sorted(unknown)[0]}: unknown config field")
        d = dict(d)
        aug = d.get("augment", {})
        if isinstance(aug, str):
            if aug not in PRESETS:
                raise ValueError(f"augment: unknown preset {aug!r}; choose one of {', '.join(PRESETS)}")
            d["augment"] = PRESETS[aug]
        elif isinstance(aug, dict):
            aug_known = {f.name for f in fields(AugmentConfig)}
            bad = set(aug) - aug_known
            if bad:
                raise ValueError(f"augment.{sorted(bad)[0]}: unknown augmentation field")
            d["augment"] = AugmentConfig(**aug)
        elif not isinstance(aug, AugmentConfig):
            raise ValueError(f"augment: must be a preset name or a dict of augmentation fields (got {aug!r})")
        if "class_weights" in d:
            try:
                d["class_weights"] = tuple(float(w) for w in d["class_weights"])
            except (TypeError, ValueError):
                raise ValueError(f"class_weights: must be a list of 10 positive numbers "
                                 f"(got {d['class_weights']!r})") from None
        return cls(**d)

    @property
    def photo_share_names(self) -> tuple[str, ...]:
        """photo_shares as names: 'train,calib' -> ('train', 'calib')."""
        return tuple(self.photo_shares.split(",")) if isinstance(self.photo_shares, str) else ()

    def replace(self, **changes) -> "TrainConfig":
        return replace(self, **changes)


def parse_setting(item: str) -> tuple[str, Any]:
    """`--set FIELD=VALUE`: VALUE read as JSON (3, 0.5, true, [1, 2]), else kept as text ('photo').
    Raises ValueError when there is no '='."""
    key, sep, text = item.partition("=")
    if not sep or not key:
        raise ValueError(f"--set {item}: expected FIELD=VALUE")
    try:
        return key, json.loads(text)
    except json.JSONDecodeError:
        return key, text


# Recipes from the reports, as starting points for the form and the CLI (`--recipe`).
RECIPES: dict[str, dict[str, Any]] = {
    "report002": dict(optimizer="adam", lr=1e-3, weight_decay=0.0, schedule="none", batch_size=128,
                      epochs=100, early_stop_patience=10, val_split="random", val_fraction=0.2),
    "report000": dict(optimizer="rmsprop", lr=1e-3, momentum=0.0, weight_decay=0.0, schedule="none",
                      batch_size=128, val_split="random", val_fraction=0.2, augment="report000"),
    "report003": dict(optimizer="adam", lr=5e-4, weight_decay=0.0, schedule="exponential",
                      decay_rate=0.9, decay_steps=10_000, batch_size=64, val_split="stratified",
                      val_count=4000, augment="report003"),
    "report004": dict(optimizer="adam", lr=1e-3, weight_decay=0.0, schedule="none", batch_size=32,
                      init="he", augment="report004"),
    "report001": dict(optimizer="nadam", lr=1e-3, beta1=0.9, beta2=0.99, weight_decay=0.0,
                      schedule="plateau", plateau_patience=1, augment="report001"),
    "flagship": dict(optimizer="sgd", lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4,
                     schedule="onecycle", batch_size=128, label_smoothing=0.1, augment="flagship"),
}


# What each recipe is, in a line: the Train form shows it under the recipe picker.
RECIPE_NOTES: dict[str, str] = {
    "report000": "Report 000: RMSprop at 1e-3, batch 128, strong Keras-style augmentation (rotation up to 45°, "
                 "both flips, 20% zoom), 20% random validation split.",
    "report001": "Report 001: Nadam at 1e-3 (beta2 0.99), learning rate cut when validation stalls, light "
                 "augmentation (flip, rotation, zoom, shift, brightness, contrast, cutout).",
    "report002": "Report 002: Adam at 1e-3, batch 128, up to 100 epochs with early stopping after 10 without "
                 "improvement, 20% random validation split, no augmentation.",
    "report003": "Report 003: Adam at 5e-4 decayed x0.9 every 10,000 steps, batch 64, 4,000 stratified validation "
                 "images, each augmentation (noise, brightness, class-aware flip, erasing, pad-4 crop) at p 0.3.",
    "report004": "Report 004: Adam at 1e-3, batch 32, He initialisation, horizontal flip and pad-2 crop.",
    "flagship": "Ours, for the flagship models: SGD with Nesterov momentum, one-cycle schedule peaking at "
                "lr 0.05, weight decay 5e-4, label smoothing 0.1, flip + pad-2 crop + light erasing.",
}


def recipe_note(name: str) -> str:
    """The line the Train form shows for a recipe, or for "defaults" (any name not in RECIPES)."""
    if name in RECIPE_NOTES:
        return RECIPE_NOTES[name]
    d = TrainConfig()
    return (f"The plain starting point: {d.optimizer} at lr {d.lr:g}, {d.schedule} schedule, {d.epochs} epochs, "
            f"batch {d.batch_size}, no augmentation. A recipe fills the form with a report's settings instead.")


def recipe(name: str, **overrides) -> TrainConfig:
    if name not in RECIPES:
        raise ValueError(f"recipe: unknown recipe {name!r}; choose one of {', '.join(RECIPES)}")
    return TrainConfig.from_dict({**RECIPES[name], **overrides})
