"""Shared fixtures: tiny IDX data in a tmp root and one tiny trained run (CPU, seconds)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # the suite runs on the CPU, GPU machine or not
import torch  # noqa: E402

from fakedata import write_idx
from fashion_core.config import TrainConfig

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def fake_root(tmp_path_factory) -> Path:
    return write_idx(tmp_path_factory.mktemp("fmnist"), n_train=600, n_test=200)


@pytest.fixture(scope="session")
def tiny_config() -> TrainConfig:
    return TrainConfig(model="cnn2_mlp", epochs=2, batch_size=32, optimizer="adam", lr=2e-3,
                       weight_decay=0.0, schedule="none", val_split="random", val_fraction=0.2)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, fake_root, tiny_config):
    from fashion_core.train import train

    return train(tiny_config, tmp_path_factory.mktemp("runs") / "tiny", data_root=fake_root)


def real_data_root() -> str | None:
    """FASHION_MNIST_ROOT when it holds the real 60k/10k data, else None."""
    from fashion_core.data import is_available

    root = os.environ.get("FASHION_MNIST_ROOT")
    return root if root and is_available(root) else None


def private_runs(tiny_run, base: Path):
    """A copy of the tiny run in base/tiny-runs, so a test (or a job it starts) never adds runs to the
    session's shared folder that later tests would list."""
    import shutil

    from fashion_core.runs import Run

    runs = Path(base) / "tiny-runs"  # not base/runs: tests make their own runs folders there
    if not (runs / tiny_run.name).exists():
        shutil.copytree(tiny_run.path, runs / tiny_run.name)
    return Run(runs / tiny_run.name)
