"""The model registry: one entry per architecture, with its metadata (description, source report,
reported test accuracy and parameters), read by the UI, the CLI and the tests.

The table is plain data, so listing the models or looking up what a report scored imports no torch: the
Overview draws from it alone. `create_model` imports the entry's module (fashion_core.models.MODULE) the
first time one of its models is built; the builder is the module's function of the model's name.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    import torch.nn as nn


@dataclass(frozen=True)
class ModelInfo:
    name: str
    module: str  # fashion_core.models.MODULE defines the builder, a function named `name`
    description: str
    report: str  # e.g. "002" or "ours"
    reported_accuracy: float | None = None  # % on the official test set, as the report states it
    reported_params: int | None = None  # as the report states it (None when it states none)
    notes: str = ""

    @property
    def builder(self) -> Callable[..., nn.Module]:
        return getattr(importlib.import_module(f"fashion_core.models.{self.module}"), self.name)

    @property
    def num_params(self) -> int:
        return count_params(self.builder())


def _info(name: str, module: str, description: str, report: str, reported_accuracy: float | None = None,
          reported_params: int | None = None, notes: str = "") -> tuple[str, ModelInfo]:
    return name, ModelInfo(name, module, description, report, reported_accuracy, reported_params, notes)


_REGISTRY: dict[str, ModelInfo] = dict([
    _info("flagship", "flagship",
          "Flagship (ours): 3 conv-pool-BN stages 24/48/96, global max-pool; fast on CPU", "ours"),
    _info("flagship_wide", "flagship",
          "Flagship wide (ours): the same stages at 32/64/128/256 for the best accuracy", "ours"),
    _info("quick", "flagship",
          "Quick (ours): a 16-channel 3x3 stem pooled at once to 14x14, then conv-pool-BN stages 32/64/128; "
          "the Train page's default, about a minute on a laptop CPU", "ours"),
    _info("inception_dilated", "report000",
          "Inception-style: 4 multi-kernel blocks (dilated), 1x1 reductions 64/128/256, "
          "dense 256/128 with BN", "000", 91.43,
          notes="RMSprop on augmented data; the report's head uses leaky ReLU, ours ReLU "
                "(Guided Backprop needs ReLU modules); max-pools after the reductions keep "
                "the dense head small, the report does not say where it pooled"),
    _info("cnn5", "report001", "Custom 5-layer CNN: conv 32/64/128 + dense 256, dropout 0.1 (Nadam)", "001", 90.16),
    _info("resnet50", "report001",
          "ResNet50 from scratch (torchvision), 3x3 stride-1 stem for 28x28 greyscale", "001", 90.06,
          notes="Nadam lr 0.01, beta2 0.9999, weight decay 1e-5"),
    _info("convnext_tiny", "report001", "ConvNeXt-Tiny (torchvision) with a 2x2 stem for 28x28 greyscale", "001", 74.23,
          notes="uses ImageNet weights when torchvision's convnext_tiny file is cached in "
                "TORCH_HOME (stem summed to greyscale); otherwise trains from scratch"),
    _info("mlp_baseline", "report002", "MLP baseline: flatten -> softmax layer", "002", 84.60, 7_850),
    _info("mlp_1hidden", "report002", "MLP + 1 hidden layer (256, ReLU)", "002", 89.18, 203_530),
    _info("mlp_3hidden_dropout", "report002", "MLP 3 hidden (256/128/100) + dropout 0.4", "002", 88.99, 247_766),
    _info("cnn1_mlp", "report002", "1 conv (16 3x3) + max-pool + the best MLP", "002", 90.08, 850_038),
    _info("cnn2_mlp", "report002", "2 conv (16, 32 3x3) + max-pools + 1 hidden (256)", "002", 92.72, 409_034),
    _info("simple_model_1", "report003",
          "simple_model_1: four small 3x3 convs, two 3x3/2 max-pools", "003", None, 114_000,
          notes="validation accuracy 92.15% (report 003 gives no test number for it)"),
    _info("simple_model_2", "report003", "simple_model_2: large 7x7/5x5 valid convs (VGG-like)", "003", None, 566_000,
          notes="validation accuracy 93.7%"),
    _info("inception", "report003", "inception: 2 convs, Inception-A, 2 Reduction-A, 1x1 conv", "003", None, 343_000,
          notes="validation accuracy 94.5%"),
    _info("resnet", "report003",
          "resnet: 2 convs, conv+2 identity blocks at 64 and at 128, max-pools", "003", 94.23, 1_274_000,
          notes="validation 95.0% (CE); the 94.23% test number is its final model with focal loss "
                "trained on all 60k images"),
    _info("inception_resnet", "report003",
          "inception_resnet: 2 convs, Inception-ResNet blocks between 2 Reduction-A", "003", None, 982_000,
          notes="validation accuracy 94.8%"),
    _info("alexnet_like", "report004", "AlexNet-like: 5x5 convs 32/64, FC 256/128, dropout 0.7", "004", 74.46,
          notes="report 004's ablations are its keywords: kernel (3 or 5), filters (the two conv widths), "
                "fc (the two dense widths), dropout and activation (relu, leaky_relu, prelu, elu)"),
    _info("vgg_like", "report004", "VGG-like: 3x3 conv pairs 32/64/96 with BN, dropout, global average pooling",
          "004", 94.05, 198_351, notes="report trains it with Adam, batch 32, 100 epochs, "
          "horizontal flip + random crop, He-normal init"),
])


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
