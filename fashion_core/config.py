"""The one frozen training config: UI form -> job -> trainer -> saved run -> Compare page.

`TrainConfig.validate()` rejects bad values before anything starts, naming the field.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, ClassVar

from fashion_core.models import create_model, list_models


# --- augmentation settings (fashion_core.augment applies them) ------------------------------------
@dataclass(frozen=True)
class AugmentConfig:
    """Probability (`*_p`, 0 = off) and strength of every op; defaults = no augmentation."""

    hflip_p: float = field(default=0.0, metadata={"group": "hflip", "help": "mirror left-right"})
    class_aware_flip: bool = field(default=False, metadata={
        "group": "hflip", "help": "never flip Sandal/Sneaker/Ankle boot"})
    vflip_p: float = field(default=0.0, metadata={
        "group": "vflip", "help": "turn upside down (report 000 does; garments are rarely seen so)"})
    rotate_p: float = field(default=0.0, metadata={
        "group": "rotate", "help": "rotate by a random angle up to rotate_deg"})
    rotate_deg: float = field(default=15.0, metadata={"group": "rotate", "help": "max |angle|, degrees (<= 45)"})
    zoom_p: float = field(default=0.0, metadata={"group": "zoom", "help": "scale in or out by up to zoom"})
    zoom: float = field(default=0.1, metadata={
        "group": "zoom", "help": "max relative scale change (<= 0.2 per report 000)"})
    translate_p: float = field(default=0.0, metadata={
        "group": "translate", "help": "shift by up to translate of the side, each way"})
    translate: float = field(default=0.1, metadata={
        "group": "translate", "help": "max shift, fraction of the image side"})
    brightness_p: float = field(default=0.0, metadata={
        "group": "brightness", "help": "make the whole image lighter or darker"})
    brightness: float = field(default=0.2, metadata={"group": "brightness", "help": "max relative change of intensity"})
    contrast_p: float = field(default=0.0, metadata={
        "group": "contrast", "help": "stretch or flatten intensities around the mean"})
    contrast: float = field(default=0.2, metadata={
        "group": "contrast", "help": "max relative change of contrast around the image mean"})
    noise_p: float = field(default=0.0, metadata={"group": "noise", "help": "add gaussian pixel noise"})
    noise_std: float = field(default=0.05, metadata={
        "group": "noise", "help": "gaussian noise std, intensity units in [0, 1]"})
    erase_p: float = field(default=0.0, metadata={
        "group": "erase", "help": "blank out a random rectangle (random erasing, Zhong et al. 2017)"})
    erase_area: float = field(default=0.25, metadata={
        "group": "erase", "help": "max erased fraction of the image (min is 0.02)"})
    crop_p: float = field(default=0.0, metadata={
        "group": "crop", "help": "pad, then crop 28x28 back at a random place: a small shift"})
    crop_pad: int = field(default=4, metadata={"group": "crop", "help": "pad by this many pixels then crop 28x28 back"})
    # photo-like ops: what a segmented real photo looks like next to a studio shot
    clutter_p: float = field(default=0.0, metadata={
        "group": "clutter", "help": "add faint blobs, like background left over by segmenting a photo"})
    clutter: float = field(default=0.35, metadata={
        "group": "clutter", "help": "max intensity of leftover-background blobs, [0, 1] units"})
    blur_p: float = field(default=0.0, metadata={
        "group": "blur", "help": "gaussian blur, like an out-of-focus or small photo"})
    blur_sigma: float = field(default=1.0, metadata={"group": "blur", "help": "max gaussian blur sigma, pixels"})
    lighting_p: float = field(default=0.0, metadata={
        "group": "lighting", "help": "uneven light: a brightness ramp across the image and a gamma change"})
    lighting: float = field(default=0.5, metadata={
        "group": "lighting", "help": "max relative brightness ramp across the image, plus gamma in [1/(1+l), 1+l]"})
    flatten_p: float = field(default=0.0, metadata={
        "group": "flatten", "help": "wash out the garment's texture toward its mean: a plain garment"})
    flatten: float = field(default=0.8, metadata={
        "group": "flatten", "help": "max blend of the garment's texture toward its mean (a plain garment)"})

    def validate(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            kind = type(f.default)  # float strengths, int crop_pad (pixels), bool class_aware_flip
            if isinstance(v, bool) != (kind is bool) or not isinstance(v, (int, float) if kind is float else kind):
                what = {bool: "true or false", int: "an integer", float: "a number"}[kind]
                raise ValueError(f"augment.{f.name} must be {what}, got {v!r}")
            if f.name.endswith("_p") and not 0.0 <= v <= 1.0:
                raise ValueError(f"augment.{f.name} must be a probability in [0, 1], got {v}")
        limits = {"rotate_deg": 45, "zoom": 0.5, "translate": 0.5, "brightness": 1.0,
                  "contrast": 1.0, "noise_std": 1.0, "erase_area": 1.0, "crop_pad": 14,
                  "clutter": 1.0, "blur_sigma": 3.0, "lighting": 1.0, "flatten": 1.0}
        for name, hi in limits.items():
            v = getattr(self, name)
            if not 0 <= v <= hi:
                raise ValueError(f"augment.{name} must be in [0, {hi}], got {v}")
        if self.erase_p and self.erase_area < 0.02:
            raise ValueError("augment.erase_area must be >= 0.02 when erasing is on")

    @property
    def active(self) -> bool:
        return any(getattr(self, f.name) > 0 for f in fields(self) if f.name.endswith("_p"))

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS: dict[str, AugmentConfig] = {
    "none": AugmentConfig(),
    # report 000: Keras ImageDataGenerator, rotation 45, both flips, zoom 20%
    "report000": AugmentConfig(hflip_p=0.5, vflip_p=0.5, rotate_p=1.0, rotate_deg=45, zoom_p=1.0, zoom=0.2),
    # report 001: brightness, flip, rotation, zoom, translation, cutout, contrast
    "report001": AugmentConfig(hflip_p=0.5, rotate_p=0.3, rotate_deg=10, zoom_p=0.3, translate_p=0.3,
                               brightness_p=0.3, contrast_p=0.3, erase_p=0.3),
    # report 003: noise, brightness, class-aware flip, random erasing, pad-4 crop, AUGMENT_PROB=0.3
    "report003": AugmentConfig(hflip_p=0.3, class_aware_flip=True, noise_p=0.3, brightness_p=0.3,
                               erase_p=0.3, crop_p=0.3),
    # report 004: horizontal flip and random crop only
    "report004": AugmentConfig(hflip_p=0.5, crop_p=1.0, crop_pad=2),
    # our flagship: flip + pad-crop + light erasing
    "flagship": AugmentConfig(hflip_p=0.5, crop_p=1.0, crop_pad=2, erase_p=0.25, erase_area=0.15),
    # flagship + the gap between a segmented photo and a studio shot: framing, clutter, blur,
    # uneven light, plain garments (fashion_core.photos.pipeline.prepare produces the test-time side)
    "photo": AugmentConfig(hflip_p=0.5, class_aware_flip=True, crop_p=1.0, crop_pad=2, erase_p=0.25,
                           erase_area=0.15, rotate_p=0.3, rotate_deg=10, zoom_p=0.4, zoom=0.15,
                           translate_p=0.3, translate=0.05, clutter_p=0.3, clutter=0.35, blur_p=0.3,
                           blur_sigma=1.0, lighting_p=0.4, lighting=0.5, flatten_p=0.3, flatten=0.8),
}


def op_groups() -> list[list]:
    """AugmentConfig's fields grouped per op: each `*_p` field (the op's probability) starts a group,
    its strengths follow."""
    groups: list[list] = []
    for f in fields(AugmentConfig):
        if f.name.endswith("_p") or not groups:
            groups.append([f])
        else:
            groups[-1].append(f)
    return groups



# --- labelled photo folders (fashion_core.photos.folders reads them) -----------------------------
# folder -> the Fashion-MNIST class indices that count as correct (shoes: Sandal, Sneaker, Ankle boot)
PHOTO_MAPPING = {"t-shirt": (0,), "pants": (1,), "longsleeve": (2,), "dress": (3,), "outwear": (4,), "shirt": (6,),
                 "shoes": (5, 7, 9)}
PHOTO_UNMAPPED = ("hat", "shorts", "skirt")  # no Fashion-MNIST class: a model should be unsure


OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop", "nadam")
SCHEDULES = ("none", "exponential", "plateau", "cosine", "onecycle")
LOSSES = ("ce", "weighted_ce", "focal")
INITS = ("default", "he", "glorot")
VAL_SPLITS = ("random", "stratified", "none")
SYNTHETIC_MODES = ("random", "difficult")
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

PHOTO_FIELDS = ("photo_batch", "photo_views", "outlier_weight", "photo_target")


def unused_because(name: str, values: dict) -> str | None:
    """Why field `name` does nothing with the other fields' values (a TrainConfig dict, possibly
    partial), e.g. "used only when optimizer is sgd"; None when it is used."""
    if name in ONLY_WITH:
        other, when = ONLY_WITH[name]
        return None if values.get(other) in when else f"used only when {other} is {' or '.join(when)}"
    if name in PHOTO_FIELDS and not values.get("photo_dir"):
        return "used only with a photo_dir"
    if name == "distill_weight" and not values.get("init_from"):
        return "used only with init_from"
    return None


# The Train form's tabs, in this order; a field whose group is not listed follows them.
GROUPS = ("Model", "Optimiser", "Schedule", "Loss", "Data split", "Fine-tune", "Synthetic data", "Device")


def field_help(config_class: type | None = None) -> dict[str, str]:
    """Each field's help text from its metadata, in TrainConfig (or AugmentConfig...): the Train
    form's help texts."""
    return {f.name: f.metadata["help"] for f in fields(config_class or TrainConfig) if "help" in f.metadata}


def field_groups(config_class: type | None = None) -> dict[str, list[str]]:
    """Field names per metadata group, in field order: TrainConfig's (or AugmentConfig's...) groups
    named in GROUPS first and in that order, then the others as they come; a field with no group is
    in "Other", so a new option still gets a widget."""
    groups: dict[str, list[str]] = {}
    for f in fields(config_class or TrainConfig):
        groups.setdefault(f.metadata.get("group", "Other"), []).append(f.name)
    rank = {g: i for i, g in enumerate(GROUPS)}
    return dict(sorted(groups.items(), key=lambda item: rank.get(item[0], len(rank))))


def _cuda_devices() -> int:
    """How many CUDA GPUs this machine has (torch is imported only when a config names one)."""
    import torch  # noqa: PLC0415

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


class ConfigError(ValueError):
    """Every problem TrainConfig.validate() found, one "field: what is wrong (got value)" each."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = list(problems)


class _Checked:
    """The field checks TrainConfig and GanConfig share: each problem is "field: what is wrong (got value)"."""

    def _failed(self, *checks: tuple[bool, str, str]) -> list[str]:
        """The (ok, field, message) checks that failed, each as "field: message (got value)"."""
        return [f"{name}: {msg} (got {getattr(self, name)!r})" for ok, name, msg in checks if not ok]

    def _type_problems(self) -> list[str]:
        """Every plain field whose value is not of its default's type (an int is a number, a bool is not)."""
        problems = []
        for f in fields(self):
            kind = type(f.default) if f.default is not MISSING else None
            if kind in (int, float, str, bool):
                value = getattr(self, f.name)
                ok = (isinstance(value, kind) if kind in (str, bool) else not isinstance(value, bool) and
                      isinstance(value, (int, float) if kind is float else int))
                problems += self._failed((ok, f.name, {int: "must be an integer", float: "must be a number",
                                                       str: "must be text", bool: "must be true or false"}[kind]))
        return problems


@dataclass(frozen=True)
class TrainConfig(_Checked):
    """Every setting of a training run. Each field's metadata gives the Train form's plain label ("label"),
    tab ("group") and the help text it shows ("help"); see field_groups and field_help."""

    kind: ClassVar[str] = "train"  # saved in config.json: a run of this kind trained a model

    model: str = field(default="flagship", metadata={
        "label": "model", "group": "Model", "help": "architecture; the card below says which report it comes from"})
    model_kwargs: dict = field(default_factory=dict, metadata={
        "label": "model options (JSON)", "group": "Model", "help": 'e.g. {"dropout": 0.3}'})
    init: str = field(default="default", metadata={
        "label": "initial weights", "group": "Model", "help": "default (PyTorch), he (report 004), glorot"})
    epochs: int = field(default=10, metadata={
        "label": "epochs", "group": "Schedule", "help": "passes over the training images"})
    batch_size: int = field(default=128, metadata={
        "label": "images per batch", "group": "Schedule", "help": "images per optimiser step"})
    max_steps: int = field(default=0, metadata={
        "label": "step limit (0 = none)", "group": "Schedule",
        "help": "stop after this many optimiser steps (0 = no limit)"})
    early_stop_patience: int = field(default=0, metadata={
        "label": "early stop after N stale epochs (0 = off)", "group": "Schedule",
        "help": "epochs without a better val accuracy (0 = off; report 002: 10)"})
    optimizer: str = field(default="sgd", metadata={
        "label": "optimiser", "group": "Optimiser", "help": "sgd, adam, adamw, rmsprop or nadam"})
    lr: float = field(default=0.05, metadata={
        "label": "learning rate", "group": "Optimiser", "help": "learning rate (the peak, for one-cycle)"})
    momentum: float = field(default=0.9, metadata={
        "label": "momentum", "group": "Optimiser", "help": "SGD momentum / RMSprop momentum"})
    nesterov: bool = field(default=True, metadata={
        "label": "Nesterov momentum", "group": "Optimiser", "help": "SGD only: Nesterov momentum"})
    beta1: float = field(default=0.9, metadata={
        "label": "beta 1 (Adam family)", "group": "Optimiser", "help": "Adam-family: first-moment decay"})
    beta2: float = field(default=0.999, metadata={
        "label": "beta 2 (Adam family, RMSprop)", "group": "Optimiser",
        "help": "Adam-family: second-moment decay; RMSprop: its smoothing constant"})
    weight_decay: float = field(default=5e-4, metadata={
        "label": "weight decay", "group": "Optimiser", "help": "L2 penalty (decoupled for AdamW)"})
    schedule: str = field(default="onecycle", metadata={
        "label": "learning-rate schedule", "group": "Schedule",
        "help": "how lr changes: onecycle, cosine, exponential, plateau or none (constant)"})
    decay_rate: float = field(default=0.9, metadata={
        "label": "lr decay factor", "group": "Schedule",
        "help": "exponential: lr *= decay_rate every decay_steps steps (report 003)"})
    decay_steps: int = field(default=10_000, metadata={
        "label": "steps between lr decays", "group": "Schedule",
        "help": "exponential: optimiser steps per decay_rate step"})
    plateau_patience: int = field(default=1, metadata={
        "label": "lr cut after N stale epochs", "group": "Schedule", "help": "epochs (report 001)"})
    plateau_factor: float = field(default=0.5, metadata={
        "label": "lr cut factor", "group": "Schedule",
        "help": "plateau: lr *= this after plateau_patience epochs with no better val accuracy"})
    warmup_frac: float = field(default=0.2, metadata={
        "label": "warm-up share of the steps", "group": "Schedule",
        "help": "one-cycle: fraction of steps spent warming up"})
    loss: str = field(default="ce", metadata={
        "label": "loss", "group": "Loss", "help": "ce (cross-entropy), weighted_ce (class_weights) or focal"})
    class_weights: tuple = field(default=HARD_CLASS_WEIGHTS, metadata={
        "label": "class weights (JSON, 10 numbers)", "group": "Loss", "help": "used by weighted_ce"})
    focal_gamma: float = field(default=2.0, metadata={
        "label": "focal gamma", "group": "Loss", "help": "focal loss only: how much easy images are down-weighted"})
    focal_alpha: float = field(default=0.25, metadata={
        "label": "focal alpha", "group": "Loss", "help": "0 = no alpha balancing"})
    label_smoothing: float = field(default=0.0, metadata={
        "label": "label smoothing", "group": "Loss", "help": "share of the target spread over the other classes"})
    logit_norm: float = field(default=0.0, metadata={
        "label": "LogitNorm temperature (0 = off)", "group": "Loss",
        "help": "0 = off; else LogitNorm: losses see logits scaled to length 1/this (try 0.04)"})
    ema_decay: float = field(default=0.0, metadata={
        "label": "weight averaging decay (0 = off)", "group": "Loss",
        "help": "0 = off; else keep an exponential moving average of weights"})
    tta_flip: bool = field(default=False, metadata={
        "label": "average with the flipped image at test time", "group": "Loss",
        "help": "test-time: average with the horizontally flipped image"})
    augment: AugmentConfig = field(default_factory=AugmentConfig, metadata={
        "label": "augmentation", "group": "Augmentation"})
    val_split: str = field(default="random", metadata={
        "label": "validation split", "group": "Data split",
        "help": "training images held out to pick the best epoch: random, stratified or none"})
    val_fraction: float = field(default=0.2, metadata={
        "label": "share held out (random split)", "group": "Data split", "help": "random split: share held out"})
    val_count: int = field(default=4000, metadata={
        "label": "images held out (stratified split)", "group": "Data split",
        "help": "stratified split: images held out (equal per class)"})
    train_subset: int = field(default=0, metadata={
        "label": "training images to use (0 = all)", "group": "Data split",
        "help": "use only the first N training images (0 = all), for quick runs"})
    init_from: str = field(default="", metadata={
        "label": "start from a finished run", "group": "Fine-tune",
        "help": "a run directory: start from its best weights (same model)"})
    distill_weight: float = field(default=0.0, metadata={
        "label": "keep the start run's answers (0 = off)", "group": "Fine-tune",
        "help": "knowledge distillation from init_from: this weight times the KL divergence between the start run's "
                "and this run's answers on each batch's Fashion-MNIST images, so a fine-tune for photos forgets "
                "less of Fashion-MNIST"})
    photo_dir: str = field(default="", metadata={
        "label": "folder of labelled photos", "group": "Fine-tune",
        "help": "a folder of labelled training photos, one folder per garment type (fashion_core.photos.folders): "
                "its train slice joins every batch, and its holdout slice (15% of each folder) picks the unsure "
                "threshold"})
    photo_batch: int = field(default=16, metadata={
        "label": "photos per batch", "group": "Fine-tune", "help": "photos added to every batch when photo_dir is set"})
    photo_views: int = field(default=1, metadata={
        "label": "shots per photo", "group": "Fine-tune",
        "help": "shots per photo: the photo plus reframed copies (photos.folders.reframe)"})
    outlier_weight: float = field(default=0.5, metadata={
        "label": "weight of photos with no class", "group": "Fine-tune",
        "help": "weight of the uniform-target loss on photos with no class (hats...)"})
    photo_target: str = field(default="any", metadata={
        "label": "shoe photo target", "group": "Fine-tune",
        "help": "shoes: 'any' of Sandal/Sneaker/Ankle boot, or the 'top' one of them"})
    partial_outliers: int = field(default=0, metadata={
        "label": "cut garments per batch (0 = off)", "group": "Fine-tune",
        "help": "per batch, garments cut to their top or bottom part, uniform target"})
    synthetic_from: str = field(default="", metadata={
        "label": "generator run", "group": "Synthetic data",
        "help": "a trained GAN's run folder (python -m fashion_core gan train): where synthetic images come from"})
    synthetic_fraction: float = field(default=0.0, metadata={
        "label": "share of each batch generated", "group": "Synthetic data",
        "help": "0 = off; else this share of every batch is drawn from the generator, on the training device"})
    synthetic_mode: str = field(default="random", metadata={
        "label": "which generated images", "group": "Synthetic data",
        "help": "random: any; difficult: of 4 candidates each, the ones the model in training is least sure of "
                "(report 001: GAN images help when they are difficult ones)"})
    seed: int = field(default=0, metadata={
        "label": "random seed", "group": "Data split", "help": "fixes the split, the initial weights and the batches"})
    device: str = field(default="auto", metadata={"label": "device", "group": "Device", "help": "auto, cpu or cuda"})
    note: str = field(default="", metadata={
        "label": "note", "group": "Device", "help": "free text: the recipe, where it comes from"})

    def validate(self) -> "TrainConfig":
        """Raise ConfigError naming every bad field (a wrong type stops the checks there); return self
        when all is well."""
        problems = self._type_problems()
        if problems:  # the range checks below would compare unlike types
            raise ConfigError(problems)
        problems = self._model_problems() + self._range_problems() + self._init_from_problems()
        problems += self._photo_problems((*PHOTO_MAPPING, *PHOTO_UNMAPPED))
        problems += self._synthetic_problems()
        problems += self._failed(
            (re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device) is not None, "device",
             "must be auto, cpu, cuda or cuda:N"),
            (not re.fullmatch(r"cuda(:\d+)?", self.device) or _cuda_devices() > int(self.device[5:] or 0),
             "device", "names a CUDA GPU this machine does not have; use auto or cpu"),
            (self.early_stop_patience == 0 or self.val_split != "none", "early_stop_patience",
             "early stopping needs a validation split (val_split is 'none')"),
            (self.schedule != "plateau" or self.val_split != "none", "schedule",
             "reduce-on-plateau needs a validation split (val_split is 'none')"))
        try:
            self.augment.validate()
        except ValueError as exc:
            problems.append(str(exc))
        if problems:
            raise ConfigError(problems)
        return self

    def _model_problems(self) -> list[str]:
        """A registered model, and keywords its constructor takes."""
        problems = self._failed(
            (self.model in list_models(), "model", "unknown model; see `python -m fashion_core list-models`"),
            (isinstance(self.model_kwargs, dict), "model_kwargs", "must be a dict"))
        if self.model_kwargs and not problems:  # a known model and a dict: its own constructor knows the keywords
            try:
                create_model(self.model, **self.model_kwargs)
            except (TypeError, ValueError) as exc:
                problems += self._failed((False, "model_kwargs", f"{self.model} does not take these ({exc})"))
        return problems + self._failed((self.init in INITS, "init", f"must be one of {INITS}"))

    def _range_problems(self) -> list[str]:
        """Each number in its range and each choice among its options, from epochs to train_subset."""
        return self._failed(
            (isinstance(self.epochs, int) and 1 <= self.epochs <= 1000, "epochs", "must be an integer 1..1000"),
            (isinstance(self.batch_size, int) and 1 <= self.batch_size <= 8192, "batch_size",
             "must be an integer 1..8192"),
            (isinstance(self.max_steps, int) and self.max_steps >= 0, "max_steps", "must be >= 0"),
            (isinstance(self.early_stop_patience, int) and self.early_stop_patience >= 0,
             "early_stop_patience", "must be >= 0"),
            (self.optimizer in OPTIMIZERS, "optimizer", f"must be one of {OPTIMIZERS}"),
            (0 < self.lr <= 10, "lr", "must be in (0, 10]"),
            (0 <= self.momentum < 1, "momentum", "must be in [0, 1)"),
            (0 <= self.beta1 < 1, "beta1", "must be in [0, 1)"),
            (0 <= self.beta2 < 1, "beta2", "must be in [0, 1)"),
            (0 <= self.weight_decay < 1, "weight_decay", "must be in [0, 1)"),
            (self.schedule in SCHEDULES, "schedule", f"must be one of {SCHEDULES}"),
            (0 < self.decay_rate <= 1, "decay_rate", "must be in (0, 1]"),
            (self.decay_steps >= 1, "decay_steps", "must be >= 1"),
            (self.plateau_patience >= 0, "plateau_patience", "must be >= 0"),
            (0 < self.plateau_factor < 1, "plateau_factor", "must be in (0, 1)"),
            (0 < self.warmup_frac < 1, "warmup_frac", "must be in (0, 1)"),
            (self.loss in LOSSES, "loss", f"must be one of {LOSSES}"),
            (len(self.class_weights) == 10 and all(0 < w < math.inf for w in self.class_weights), "class_weights",
             "must be 10 positive numbers"),
            (0 <= self.focal_gamma <= 10, "focal_gamma", "must be in [0, 10]"),
            (0 <= self.focal_alpha <= 1, "focal_alpha", "must be in [0, 1]"),
            (0 <= self.label_smoothing < 1, "label_smoothing", "must be in [0, 1)"),
            (0 <= self.logit_norm <= 1, "logit_norm", "must be in [0, 1] (0 = off)"),
            (0 <= self.ema_decay < 1, "ema_decay", "must be in [0, 1)"),
            (self.val_split in VAL_SPLITS, "val_split", f"must be one of {VAL_SPLITS}"),
            # at most half the 60,000 training images held out: training on (almost) none would still
            # evaluate and put a chance-level run on the leaderboard
            (0 < self.val_fraction <= 0.5, "val_fraction", "must be in (0, 0.5]"),
            (10 <= self.val_count <= 30_000, "val_count", "must be in [10, 30000]"),
            (self.train_subset >= 0, "train_subset", "must be >= 0"),
            (0 <= self.seed < 2**32, "seed", "must be in [0, 2^32)"))

    def _init_from_problems(self) -> list[str]:
        """init_from: a finished run of the same model that held out the same validation split; distill_weight
        in range, and only with a run to distil from."""
        problems = self._failed(
            (isinstance(self.distill_weight, (int, float)) and 0 <= self.distill_weight <= 100, "distill_weight",
             "must be in [0, 100] (0 = off)"),
            (not self.distill_weight or bool(self.init_from), "distill_weight",
             "needs init_from: the run whose answers are kept"))
        if not self.init_from:
            return problems
        src = Path(self.init_from)
        finished = (src / "config.json").exists() and (src / "best.pt").exists()
        if not finished:
            return problems + self._failed((False, "init_from",
                                            "must be a finished run directory (config.json and best.pt)"))
        try:  # what it holds is only worth checking when it is there
            start = json.loads((src / "config.json").read_text())
            other = start.get("model")
        except (OSError, ValueError, AttributeError):
            start, other = {}, None
        problems += self._failed(
            (other is not None, "init_from", "its config.json is unreadable"),
            (other is None or other == self.model, "init_from", f"holds a {other!r} model, not {self.model!r}"))
        if self.val_split != "none":  # else validation (best epoch, temperature) scores seen images
            keys = ("val_split", "seed", "val_count" if start.get("val_split") == "stratified" else "val_fraction")
            theirs = {k: start.get(k, getattr(TrainConfig, k)) for k in keys}
            problems += self._failed((
                theirs == {k: getattr(self, k) for k in keys}, "init_from",
                "held out a different validation split, so some of this run's validation images were "
                f"its training images; use the same split ({', '.join(f'{k}={v}' for k, v in theirs.items())})"))
        return problems

    def _photo_problems(self, folders: tuple[str, ...]) -> list[str]:
        """The photo fine-tune's fields; folders: the garment folders a photo_dir may hold."""
        root = Path(self.photo_dir)
        return self._failed(
            (not self.photo_dir or root.is_dir() and any((root / f).is_dir() for f in folders), "photo_dir",
             f"must be a folder holding some of the folders {', '.join(folders)}"),
            (isinstance(self.photo_batch, int) and 1 <= self.photo_batch <= 1024, "photo_batch",
             "must be an integer 1..1024"),
            (isinstance(self.photo_views, int) and 1 <= self.photo_views <= 16, "photo_views",
             "must be an integer 1..16"),
            (0 <= self.outlier_weight <= 10, "outlier_weight", "must be in [0, 10]"),
            (self.photo_target in ("any", "top"), "photo_target", "must be 'any' or 'top'"),
            (isinstance(self.partial_outliers, int) and 0 <= self.partial_outliers <= 1024, "partial_outliers",
             "must be an integer 0..1024"))

    def _synthetic_problems(self) -> list[str]:
        """A share in [0, 1), a known mode, and a generator run to draw from whenever the share is not 0."""
        problems = self._failed(
            (0 <= self.synthetic_fraction < 1, "synthetic_fraction", "must be in [0, 1) (0 = off)"),
            (self.synthetic_mode in SYNTHETIC_MODES, "synthetic_mode", f"must be one of {SYNTHETIC_MODES}"),
            (not self.synthetic_fraction or bool(self.synthetic_from), "synthetic_from",
             "needs a generator run when synthetic_fraction is above 0"))
        if self.synthetic_from:
            src = Path(self.synthetic_from)
            raw = _json_or_none(src / "config.json")
            kind = raw.get("kind") if isinstance(raw, dict) else None
            problems += self._failed((kind == GanConfig.kind and (src / "best.pt").is_file(), "synthetic_from",
                                      "must be a trained generator's run folder (config.json of kind gan, best.pt)"))
        return problems

    # --- JSON round trip ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["class_weights"] = list(self.class_weights)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        """Build from a dict (a saved config.json or a form); unknown keys are an error."""
        if not isinstance(d, dict):
            raise ValueError(f"a config is a JSON object of TrainConfig fields (got {type(d).__name__})")
        if d.get("kind", cls.kind) != cls.kind:
            raise ValueError(f"kind: a {d['kind']!r} run's config is not a training config")
        # a run's config.json says its kind; runs from before the photo folders had a training slice name the
        # quarters of the photos they learned from (photo_shares), a field that is gone
        d = {k: v for k, v in d.items() if k not in ("kind", "photo_shares")}
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
    # the Train page's default: the most accuracy we measured in about a minute of a 2-core CPU
    # (benchmarks/train_speed.py), model included
    "quick": dict(model="quick", optimizer="sgd", lr=0.2, momentum=0.9, nesterov=True, weight_decay=5e-4,
                  schedule="onecycle", epochs=3, batch_size=128, label_smoothing=0.2, tta_flip=True,
                  val_split="stratified", val_count=5000, augment=dict(hflip_p=0.5, crop_p=1.0, crop_pad=2)),
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
    "quick": "Quick, the default: our small quick model, 3 epochs, about a minute of a 2-core CPU; SGD with "
             "Nesterov momentum, one-cycle schedule peaking at lr 0.2, label smoothing 0.2, flip + pad-2 crop, "
             "averaged with the flipped image at test time.",
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


def _json_or_none(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class GanConfig(_Checked):
    """Every setting of a class-conditional GAN run (fashion_core.gan): the networks' sizes, which are all
    a generator needs to be rebuilt, and the training recipe (hinge loss, spectral norm, Adam, and an
    exponential moving average of the generator, which is what samples come from)."""

    kind: ClassVar[str] = "gan"
    model: ClassVar[str] = "cgan"  # what job and run lists show in their model column
    loss: ClassVar[str] = "hinge"

    latent_dim: int = field(default=64, metadata={"label": "latent size", "help": "numbers per noise vector z"})
    g_width: int = field(default=24, metadata={
        "label": "generator width", "help": "channels of the generator's last block (x2, x4 before it)"})
    d_width: int = field(default=32, metadata={
        "label": "discriminator width", "help": "channels of the discriminator's first conv (x2, x4 after it)"})
    epochs: int = field(default=6, metadata={"label": "epochs", "help": "passes over the training images"})
    batch_size: int = field(default=128, metadata={"label": "images per batch", "help": "real images per step"})
    # the two time-scale rule (SAGAN's settings): at equal rates and beta1 0.5 the spectral-norm discriminator
    # fell behind here (mean scores on real and generated images 0.11 and -0.52 after 2 epochs) and the
    # generator drew one image per class, whatever the noise
    lr_g: float = field(default=1e-4, metadata={"label": "generator learning rate", "help": "Adam"})
    lr_d: float = field(default=4e-4, metadata={"label": "discriminator learning rate", "help": "Adam"})
    beta1: float = field(default=0.0, metadata={"label": "beta 1", "help": "Adam's first-moment decay, both nets"})
    beta2: float = field(default=0.9, metadata={"label": "beta 2", "help": "Adam's second-moment decay, both nets"})
    ema_decay: float = field(default=0.999, metadata={
        "label": "generator averaging decay", "help": "samples come from this moving average of the generator"})
    train_subset: int = field(default=0, metadata={
        "label": "training images to use (0 = all)", "help": "the first N training images (0 = all)"})
    seed: int = field(default=0, metadata={"label": "random seed", "help": "fixes the weights, batches and noise"})
    device: str = field(default="auto", metadata={"label": "device", "help": "auto, cpu or cuda"})
    note: str = field(default="", metadata={"label": "note", "help": "free text"})

    def validate(self) -> "GanConfig":
        """Raise ConfigError naming every bad field; return self when all is well."""
        problems = self._type_problems()
        if not problems:
            problems = self._failed(
                (8 <= self.latent_dim <= 512, "latent_dim", "must be an integer 8..512"),
                (4 <= self.g_width <= 256, "g_width", "must be an integer 4..256"),
                (4 <= self.d_width <= 256, "d_width", "must be an integer 4..256"),
                (1 <= self.epochs <= 1000, "epochs", "must be an integer 1..1000"),
                (2 <= self.batch_size <= 4096, "batch_size", "must be an integer 2..4096"),
                (0 < self.lr_g <= 1, "lr_g", "must be in (0, 1]"), (0 < self.lr_d <= 1, "lr_d", "must be in (0, 1]"),
                (0 <= self.beta1 < 1, "beta1", "must be in [0, 1)"), (0 <= self.beta2 < 1, "beta2", "must be in [0, 1)"),
                (0 <= self.ema_decay < 1, "ema_decay", "must be in [0, 1)"),
                (self.train_subset >= 0, "train_subset", "must be >= 0"),
                (0 <= self.seed < 2**32, "seed", "must be in [0, 2^32)"),
                (re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device) is not None, "device",
                 "must be auto, cpu, cuda or cuda:N"))
        if problems:
            raise ConfigError(problems)
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "GanConfig":
        """Build from a dict (a run's config.json or a form); unknown keys are an error."""
        if not isinstance(d, dict):
            raise ValueError(f"a GAN config is a JSON object of GanConfig fields (got {type(d).__name__})")
        if d.get("kind", cls.kind) != cls.kind:
            raise ValueError(f"kind: a {d['kind']!r} run's config is not a GAN config")
        d = {k: v for k, v in d.items() if k != "kind"}
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"{sorted(unknown)[0]}: unknown GAN config field")
        return cls(**d)

    def replace(self, **changes) -> "GanConfig":
        return replace(self, **changes)
