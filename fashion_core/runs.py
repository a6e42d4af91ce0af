"""A run is a directory: config.json, metrics.jsonl, status.json, best.pt, last.pt, eval.json, calibration.json.

Every write is atomic (temp file in the same folder, then os.replace) so a killed process never
leaves a half-written file; loading rebuilds the model from config.json alone (weights_only=True).
"""
from __future__ import annotations

import io
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from fashion_core.config import TrainConfig
from fashion_core.models import create_model, report_of

CHECKPOINT_DIR = Path(__file__).resolve().parent.parent / "checkpoints"


def runs_dir() -> Path:
    """Where user runs go: FASHION_RUNS_DIR or ./runs."""
    return Path(os.environ.get("FASHION_RUNS_DIR", "runs"))


# --- atomic writes -------------------------------------------------------------------------
def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=1).encode())


def save_checkpoint(path: Path, state: dict) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: Path) -> dict:
    """weights_only=True: a file holding anything but tensors and plain containers is refused."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle.UnpicklingError, RuntimeError, EOFError...
        raise ValueError(f"{Path(path).name} is not a plain weights file this app can load: "
                         f"{str(exc).splitlines()[0][:200]}") from exc


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return default


# --- the run directory ---------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config(self) -> TrainConfig:
        return TrainConfig.from_dict(read_json(self.path / "config.json"))

    @property
    def metrics(self) -> list[dict]:
        try:
            lines = (self.path / "metrics.jsonl").read_text().splitlines()
        except OSError:
            return []
        return [json.loads(line) for line in lines if line.strip()]

    @property
    def status(self) -> dict:
        return read_json(self.path / "status.json", {"state": "unknown"})

    @property
    def eval(self) -> dict | None:
        return read_json(self.path / "eval.json")

    @property
    def shipped(self) -> bool:
        return self.path.resolve().parent == CHECKPOINT_DIR

    @property
    def has_weights(self) -> bool:
        """Whether a model can be loaded: a checkpoint file, or for an ensemble, one in every member.
        A shipped run may carry its evaluation without weights when they are too large to ship."""
        from fashion_core.ensemble import is_ensemble  # noqa: PLC0415 (import cycle)

        if is_ensemble(self.path):
            members = read_json(self.path / "ensemble.json", {}).get("members", [])
            return bool(members) and all(Run((self.path.parent / m).resolve()).has_weights for m in members)
        return self.checkpoint().exists()

    def set_status(self, state: str, **extra) -> None:
        atomic_write_json(self.path / "status.json", {"state": state, "time": time.time(), **extra})

    def append_metrics(self, row: dict) -> None:
        """Rewrite the whole (small) file atomically so a reader never sees half a line. An epoch
        replayed after a kill (its row written, its checkpoint not) replaces its earlier row."""
        rows = [r for r in self.metrics if r.get("epoch", 0) < row["epoch"]] + [row]
        atomic_write_bytes(self.path / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode())

    def weights_stamp(self) -> float:
        """When the weights a model is loaded from last changed (an ensemble: its members' or its
        own weights); 0.0 when there are none. Caches of models and their outputs key on it."""
        from fashion_core.ensemble import is_ensemble, member_runs  # noqa: PLC0415 (import cycle)

        if is_ensemble(self.path):
            return max([(self.path / "ensemble.json").stat().st_mtime,
                        *(m.weights_stamp() for m in member_runs(self.path))])
        ck = self.checkpoint()
        return ck.stat().st_mtime if ck.exists() else 0.0

    def checkpoint(self, which: str = "best") -> Path:
        path = self.path / f"{which}.pt"
        if which == "best" and not path.exists():
            path = self.path / "last.pt"
        return path


def load_model(run: Run | str | Path, which: str = "best", device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the model from config.json and load its weights (EMA weights when the run kept them)."""
    run = run if isinstance(run, Run) else Run(Path(run))
    if not (run.path / "config.json").exists():
        raise ValueError(f"{run.path} is not a run directory (no config.json)")
    from fashion_core.ensemble import is_ensemble, load_ensemble  # noqa: PLC0415 (import cycle)

    if is_ensemble(run.path):
        return load_ensemble(run.path, device)
    cfg = run.config
    if not run.checkpoint(which).exists():
        why = ("its evaluation ships without them: too large for checkpoints/; retrain it to use the model"
               if run.shipped else "no epoch has finished yet")
        raise ValueError(f"{run.name} has no weights here ({why})")
    model = create_model(cfg.model, **cfg.model_kwargs)
    state = load_checkpoint(run.checkpoint(which))
    weights = state.get("ema") or state.get("model")
    if not isinstance(weights, dict):
        raise ValueError(f"{run.checkpoint(which).name} holds no model weights")
    sd = model.state_dict()
    try:
        model.load_state_dict({k: v.to(sd[k].dtype) if k in sd else v for k, v in weights.items()})
    except RuntimeError as exc:
        raise ValueError(f"the weights in {run.path.name} do not fit model {cfg.model!r}: "
                         f"{str(exc).splitlines()[0][:200]}") from exc
    return model.to(device).eval()


def loss_label(cfg: dict) -> str | None:
    """The loss a run trained with, or "soft vote" for an ensemble (it trained nothing)."""
    return "soft vote" if cfg.get("model") == "ensemble" else cfg.get("loss")


def list_runs(*dirs: Path | str) -> list[Run]:
    """Every run directory (a folder holding config.json) in the given folders, newest first."""
    dirs = dirs or (CHECKPOINT_DIR, runs_dir())
    found = []
    for d in dirs:
        d = Path(d)
        if d.is_dir():
            found += [Run(p) for p in d.iterdir() if (p / "config.json").exists()]
    return sorted(found, key=lambda r: (r.path / "config.json").stat().st_mtime, reverse=True)


def new_run_dir(model: str, base: Path | None = None, name: str = "") -> Path:
    """A fresh, unique folder such as runs/20261124-101500-flagship; named `name` instead when given
    (a job's run takes the job's name), with -1, -2... added if that is taken."""
    base = Path(base or runs_dir())
    name = name or f"{time.strftime('%Y%m%d-%H%M%S')}-{model}"
    for i in range(1000):
        path = base / (name + (f"-{i}" if i else ""))
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
    raise RuntimeError("could not create a unique run directory")


def effort(run: Run) -> tuple[int | None, float | None]:
    """(epochs, training seconds) behind a finished run; an ensemble trained nothing itself: no
    epochs, and the time its members took."""
    from fashion_core.ensemble import is_ensemble, member_runs  # noqa: PLC0415 (ensemble imports this module)

    if not is_ensemble(run.path):
        ev = run.eval or {}
        return ev.get("epochs"), ev.get("train_time_s")

    try:
        times = [(m.eval or {}).get("train_time_s") for m in member_runs(run.path)]
    except (ValueError, OSError, KeyError, TypeError):  # a member gone or an unreadable ensemble.json
        return None, None
    return None, (round(sum(times), 1) if times and None not in times else None)


def leaderboard(runs: list[Run] | None = None) -> list[dict]:
    """One row per finished run, best test accuracy first, with its rank and its model's accuracy as
    its report states it (None where none does): what the Overview page shows."""
    rows = []
    for run in runs if runs is not None else list_runs():
        ev = run.eval
        if not ev:
            continue
        cfg = read_json(run.path / "config.json", {})
        reported, _, report = report_of(cfg.get("model"))
        rows.append({"run": run.name, "model": cfg.get("model"), "loss": loss_label(cfg),
                     "test_accuracy": ev.get("test_accuracy"), "reported_accuracy": reported, "report": report,
                     "params": ev.get("params"),
                     **dict(zip(("epochs", "train_time_s"), effort(run))),
                     "device": ev.get("device"), "shipped": run.shipped, "weights": run.has_weights,
                     "path": str(run.path)})
    rows.sort(key=lambda r: -(r["test_accuracy"] or 0))
    return [{"rank": i, **r} for i, r in enumerate(rows, 1)]
