"""Soft-voting ensembles of runs (report 001 averaged CNN/ResNet50/ConvNeXt at 0.45/0.45/0.10).

An ensemble is a run directory with ensemble.json (member paths + weights), config.json
(model "ensemble") and eval.json, so the UI lists and loads it like any other run.
"""
from __future__ import annotations

import itertools
from pathlib import Path

import torch
import torch.nn as nn

from fashion_core.config import TrainConfig
from fashion_core.data import FashionData, load_split, split_indices
from fashion_core.runs import Run, atomic_write_json, read_json


class SoftVote(nn.Module):
    """Weighted mean of member probabilities; forward returns its log (acts as logits). A member
    trained with test-time flips votes with its logits averaged over the image and its mirror,
    as it does on its own."""

    def __init__(self, members: list[nn.Module], weights: list[float], flips: list[bool] | None = None):
        super().__init__()
        self.members = nn.ModuleList(members)
        w = torch.tensor(weights, dtype=torch.float32)
        self.register_buffer("weights", w / w.sum())
        self.flips = list(flips or [False] * len(members))

    def unflipped(self) -> SoftVote:
        """The same vote with each member seeing the image once: what attributions explain (a
        member's second, mirrored pass would overwrite the layer activations Grad-CAM reads)."""
        return SoftVote(list(self.members), self.weights.tolist())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = 0
        for w, m, flip in zip(self.weights, self.members, self.flips):
            logits = m(x).float()
            if flip:
                logits = (logits + m(x.flip(-1)).float()) / 2
            probs = probs + w * logits.softmax(1)
        return probs.clamp_min(1e-12).log()


def is_ensemble(path: Path) -> bool:
    return (Path(path) / "ensemble.json").exists()


def member_runs(path: Path) -> list[Run]:
    """The runs an ensemble directory votes with (its ensemble.json paths, relative to its parent)."""
    base = Path(path).parent
    return [Run((base / m).resolve()) for m in read_json(Path(path) / "ensemble.json")["members"]]


def voting_members(path: Path) -> list[tuple[Run, float]]:
    """(member, weight) for the members that vote: a zero weight changes no vote, so it is never loaded."""
    weights = read_json(Path(path) / "ensemble.json")["weights"]
    return [(r, w) for r, w in zip(member_runs(path), weights) if w > 0]


def load_ensemble(path: Path, device: str | torch.device = "cpu") -> SoftVote:
    from fashion_core.runs import load_model  # noqa: PLC0415 (runs imports this module lazily)

    voting = voting_members(path)
    return SoftVote([load_model(r, "best", device) for r, _ in voting], [w for _, w in voting],
                    [r.config.tta_flip for r, _ in voting]).to(device).eval()


def validation_data(runs: list[Run], data_root=None) -> FashionData:
    """Images in every run's validation split: none of them trained on these. An ensemble among
    the runs counts as its members."""
    runs = [m for r in runs for m in (member_runs(r.path) if is_ensemble(r.path) else [r])]
    full = load_split(True, data_root)
    keep = torch.ones(len(full), dtype=torch.bool)
    for run in runs:
        c = run.config
        mask = torch.zeros(len(full), dtype=torch.bool)
        mask[split_indices(full.labels, c.val_split, c.val_fraction, c.val_count, c.seed)[1]] = True
        keep &= mask
    if not keep.any():
        raise ValueError("the members share no validation images; give weights explicitly")
    return FashionData(full.images[keep], full.labels[keep])


EXHAUSTIVE_MEMBERS = 5  # the full grid has 21^(M-1) points: 194k for 5 members (~1 min), 1.8e9 for 8


def fit_weights(runs: list[Run], data_root=None, step: float = 0.05) -> list[float]:
    """Weights (summing to 1, in `step`s) that maximise shared-validation accuracy: the whole grid for up
    to EXHAUSTIVE_MEMBERS members, greedy forward selection with replacement beyond (add a `step` of
    weight to whichever member helps most, keep the best mix seen)."""
    from fashion_core.runs import load_model  # noqa: PLC0415
    from fashion_core.train import infer  # noqa: PLC0415

    val = validation_data(runs, data_root)
    probs = torch.stack([infer(load_model(r), val.images, tta_flip=r.config.tta_flip).softmax(1)
                         for r in runs])  # (M, N, 10)

    def accuracy(w: torch.Tensor) -> float:  # any positive scale of w votes the same
        return ((w[:, None, None] * probs).sum(0).argmax(1) == val.labels).float().mean().item()

    n, m = int(round(1 / step)), len(runs)
    if m <= EXHAUSTIVE_MEMBERS:
        grid = (torch.tensor([*w, n - sum(w)], dtype=torch.float32)
                for w in itertools.product(range(n + 1), repeat=m - 1) if sum(w) <= n)
        best = max(grid, key=accuracy)  # the first of equals: the grid's order decides ties
    else:
        counts, best, best_acc = torch.zeros(m), None, -1.0
        for _ in range(n):
            counts[max(range(m), key=lambda i: accuracy(counts + torch.eye(m)[i]))] += 1
            if (acc := accuracy(counts)) > best_acc:
                best, best_acc = counts.clone(), acc
    return [round(x, 4) for x in (best / best.sum()).tolist()]


def create_ensemble(path: Path, members: list[Path], weights: list[float] | None = None,
                    data_root=None) -> Run:
    """Write an ensemble run (fitting weights on validation when none are given) and evaluate it."""
    from fashion_core.train import write_eval  # noqa: PLC0415

    path = Path(path)
    if (path / "config.json").exists():
        raise ValueError(f"{path} already holds a run; name a new folder for the ensemble")
    runs = [Run(Path(m)) for m in members]
    if weights is None:
        weights = fit_weights(runs, data_root)
    if len(weights) != len(runs) or any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError("weights: need one non-negative weight per member, not all zero")
    path.mkdir(parents=True, exist_ok=True)
    rel = [str(Path(m).resolve().relative_to(path.resolve().parent)) if Path(m).resolve().parent ==
           path.resolve().parent else str(Path(m).resolve()) for m in members]
    atomic_write_json(path / "ensemble.json", {"members": rel, "weights": weights})
    atomic_write_json(path / "config.json", TrainConfig(
        model="ensemble", epochs=1, note=f"soft vote of {', '.join(r.name for r in runs)} "
                                         f"with weights {weights}").to_dict())
    run = Run(path)
    write_eval(run, data_root)
    from fashion_core.calibration import calibrate  # noqa: PLC0415 (calibration imports this module)
    calibrate(run, data_root)  # its temperature, on the images no member trained on
    return run
