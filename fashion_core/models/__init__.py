"""Model registry: `create_model(name)` and `list_models()`, one entry per architecture.

Each entry is a plain function registered with its metadata (description, source report,
reported test accuracy); the UI, the CLI and the tests all read this one table.
"""
from __future__ import annotations

from fashion_core.models.registry import (ModelInfo, count_params, create_model, list_models, model_info,  # noqa: F401
                                          register_model, report_of)

__all__ = ["ModelInfo", "count_params", "create_model", "list_models", "model_info", "register_model", "report_of"]

# Registration happens on import of these modules (definitions only, no side effects).
from fashion_core.models import flagship, report000, report001, report002, report003, report004  # noqa: E402,F401
