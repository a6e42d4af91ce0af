"""Soft-voting ensembles of runs (report 001 averaged CNN/ResNet50/ConvNeXt at 0.45/0.45/0.10).

An ensemble is a run of kind "ensemble": its config.json holds an EnsembleConfig (member folders and
weights), and it has an eval.json and a calibration.json, so the UI lists and loads it like any other
run. Its model is models.soft_vote.SoftVote, which runs.load_model builds.
"""
from __future__ import annotations

import itertools
from pathlib import Path

import torch

from fashion_core.calibration import calibrate
from fashion_core.evaluation import write_eval
from fashion_core.inference import accuracy, infer
from fashion_core.runs import EnsembleConfig, Run, atomic_write_json, config_json, load_model, validation_data


EXHAUSTIVE_MEMBERS = 5  # the full grid has 21^(M-1) points: 194k for 5 members (~1 min), 1.8e9 for 8


def fit_weights(runs: list[Run], data_root=None, step: float = 0.05) -> list[float]:
    """Weights (summing to 1, in `step`s) that maximise shared-validation accuracy: the whole grid for up
    to EXHAUSTIVE_MEMBERS members, greedy forward selection with replacement beyond (add a `step` of
    weight to whichever member helps most, keep the best mix seen)."""
    try:
        val = validation_data(runs, data_root)
    except ValueError as exc:
        raise ValueError(f"{exc}; give weights explicitly") from None
    probs = torch.stack([infer(load_model(r), val.images, tta_flip=r.config.tta_flip).softmax(1)
                         for r in runs])  # (M, N, 10)

    def vote_accuracy(w: torch.Tensor) -> float:  # any positive scale of w votes the same
        return accuracy((w[:, None, None] * probs).sum(0), val.labels)

    n, m = int(round(1 / step)), len(runs)
    if m <= EXHAUSTIVE_MEMBERS:
        grid = (torch.tensor([*w, n - sum(w)], dtype=torch.float32)
                for w in itertools.product(range(n + 1), repeat=m - 1) if sum(w) <= n)
        best = max(grid, key=vote_accuracy)  # the first of equals: the grid's order decides ties
    else:
        counts, best, best_acc = torch.zeros(m), None, -1.0
        for _ in range(n):
            counts[max(range(m), key=lambda i: vote_accuracy(counts + torch.eye(m)[i]))] += 1
            if (acc := vote_accuracy(counts)) > best_acc:
                best, best_acc = counts.clone(), acc
    return [round(x, 4) for x in (best / best.sum()).tolist()]


def create_ensemble(path: Path, members: list[Path], weights: list[float] | None = None,
                    data_root=None) -> Run:
    """Write an ensemble run (fitting weights on validation when none are given), evaluate it and fit
    its temperature on the images no member trained on."""
    path = Path(path)
    if (path / "config.json").exists():
        raise ValueError(f"{path} already holds a run; name a new folder for the ensemble")
    runs = [Run(Path(m)) for m in members]
    for r in runs:
        if r.kind != "train":
            raise ValueError(f"{r.name} is not a trained run; an ensemble votes with trained runs only")
    if weights is None:
        weights = fit_weights(runs, data_root)
    rel = [str(Path(m).resolve().relative_to(path.resolve().parent)) if Path(m).resolve().parent ==
           path.resolve().parent else str(Path(m).resolve()) for m in members]
    cfg = EnsembleConfig(tuple(rel), tuple(weights), f"soft vote of {', '.join(r.name for r in runs)} "
                                                     f"with weights {weights}").validate()
    path.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path / "config.json", config_json(cfg))
    run = Run(path)
    write_eval(run, data_root)
    calibrate(run, data_root)
    return run
