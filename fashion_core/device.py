"""Pick the compute device: CUDA when present, else the CPU."""
from __future__ import annotations

import torch

# What a fresh process gets, read when this module loads: a training job's threads, which the app's sidebar
# names although the app process lowers its own (ui/common.py).
DEFAULT_THREADS = torch.get_num_threads()


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' -> cuda if available else cpu; 'cuda' without a GPU raises a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device: 'cuda' was asked for but no CUDA GPU is available; use 'auto' or 'cpu'")
    return torch.device(name)


def describe_device(device: torch.device | None = None, threads: int | None = None) -> str:
    """Human-readable name, e.g. 'NVIDIA H100 80GB HBM3' or 'CPU (2 threads)': this process's threads, or
    `threads`."""
    device = device or resolve_device()
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    n = threads or torch.get_num_threads()
    return f"CPU ({n} thread{'s' * (n != 1)})"
