"""The model registry's table: `register_model` adds an entry, `create_model` builds one."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch.nn as nn


@dataclass(frozen=True)
class ModelInfo:
    name: str
    description: str
    report: str  # e.g. "002" or "ours"
    reported_accuracy: float | None  # % on the official test set, as the report states it
    reported_params: int | None  # as the report states it (None when it states none)
    builder: Callable[..., nn.Module]
    notes: str = ""

    @property
    def num_params(self) -> int:
        return count_params(self.builder())


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(description: str, report: str, reported_accuracy: float | None = None,
                   reported_params: int | None = None, notes: str = ""):
    """Decorator: the function's name is the public model name."""
    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _REGISTRY[fn.__name__] = ModelInfo(fn.__name__, description, report, reported_accuracy,
                                           reported_params, fn, notes)
        return fn
    return wrap


def list_models() -> list[str]:
    return list(_REGISTRY)


def model_info(name: str) -> ModelInfo:
    if name not in _REGISTRY:
        raise ValueError(f"model: unknown model {name!r}; choose one of {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def report_of(name: str | None) -> tuple[float | None, int | None, str]:
    """(reported test accuracy, reported params, report) for a model name, Nones and "" where the
    report states none or the name is not a registered model."""
    info = _REGISTRY.get(name)
    return (info.reported_accuracy, info.reported_params, info.report) if info else (None, None, "")


def create_model(name: str, **kwargs) -> nn.Module:
    return model_info(name).builder(**kwargs)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
