"""Model registry: `create_model(name)` and `list_models()`, one entry per architecture.

The table (fashion_core.models.registry) is plain data; each architecture's module (flagship, report000 ...
report004) is imported when one of its models is first built, so reading the table needs no torch.
"""
from __future__ import annotations

from fashion_core.models.registry import ModelInfo, count_params, create_model, list_models, model_info, report_of

__all__ = ["ModelInfo", "count_params", "create_model", "list_models", "model_info", "report_of"]
