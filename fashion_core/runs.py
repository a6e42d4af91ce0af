"""A run is a directory: config.json, metrics.jsonl, status.json, best.pt, last.pt, eval.json, calibration.json.

A run has a kind, saved in config.json: "train" (a TrainConfig and its weights), "ensemble" (an
EnsembleConfig: a soft vote of trained runs) or "gan" (a GanConfig: a generator, fashion_core.gan).
Code loops over `Run.members()` instead of branching.

Every write is atomic (temp file in the same folder, then os.replace) so a killed process never
leaves a half-written file; loading rebuilds the model from config.json alone (weights_only=True).
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from fashion_core.config import GanConfig, TrainConfig
from fashion_core.data import FashionData, load_split, split_indices
from fashion_core.models import create_model, report_of

if TYPE_CHECKING:  # reading and listing runs needs no torch (the app's Overview); loading weights imports it
    import torch
    import torch.nn as nn

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
    import torch  # noqa: PLC0415

    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def inside_file(path: Path) -> bool:
    """A regular file that is, once links are followed, still in its own folder: what a run folder may
    read or hand out (a link to /etc/passwd or /dev/zero is neither)."""
    path = Path(path)
    try:
        return path.is_file() and path.resolve().parent == path.parent.resolve()
    except OSError:
        return False


def load_checkpoint(path: Path) -> dict:
    """weights_only=True: a file holding anything but tensors and plain containers is refused, and so is
    anything but a regular file in its own folder (checked before torch.load reads a byte)."""
    if not inside_file(path):
        raise ValueError(f"{Path(path).name} is not a regular file in its run folder (a link out of it, or a device); "
                         "it is not read")
    import torch  # noqa: PLC0415

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle.UnpicklingError, RuntimeError, EOFError...
        raise ValueError(f"{Path(path).name} is not a plain weights file this app can load: {_plain(exc)}") from exc


def _plain(exc: Exception) -> str:
    """A loader's error in a line for a user: no terminal colour codes, and never torch's advice to load
    with weights_only=False (which would run whatever the file holds)."""
    text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", str(exc)).strip()
    if "weights_only" in text or "Unsupported global" in text:
        return "it holds Python objects other than tensors and plain containers, which are never run"
    return (text.splitlines() or [type(exc).__name__])[0][:200]


def remove_stray_temps(folder: Path) -> None:
    """Temp files a killed atomic write left in folder (they never replaced anything)."""
    for tmp in Path(folder).glob(".*.tmp"):
        with contextlib.suppress(OSError):
            tmp.unlink()


_PARSED: dict[tuple, Any] = {}  # (path, what, the file's stat) -> what was read of it; see _read_once


def _read_once(path: Path, what: str, read):
    """read(path), remembered until the file changes (its inode, size or modification time does; every writer
    here replaces files atomically, so each write changes the inode). Pages read the same eval.json and
    config.json many times a render; parsing them again is most of what the Overview and Compare spend.
    What it returns is shared between callers: only for values nobody changes."""
    try:
        st = os.stat(path)
    except OSError:
        return read(path)
    key = (os.fspath(path), what, st.st_ino, st.st_size, st.st_mtime_ns)
    value = _PARSED.get(key, _PARSED)  # one lookup: another thread may clear the dict in between two
    if value is _PARSED:
        if len(_PARSED) > 512:
            _PARSED.clear()
        value = _PARSED[key] = read(path)
    return value


def read_json(path: Path, default: Any = None) -> Any:
    """The file's JSON, or default when it is missing, unreadable, not JSON or not a regular file in
    its folder (a link to /dev/zero is never read)."""
    if not inside_file(path):
        return default
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return default


def read_json_shared(path: Path) -> Any:
    """read_json(path), parsed once per version of the file and shared between callers: read it, never change it."""
    return _read_once(path, "json", read_json) if inside_file(path) else None


# --- run kinds -----------------------------------------------------------------------------
@dataclass(frozen=True)
class EnsembleConfig:
    """A soft vote of trained runs. It trains nothing, so its members and weights are its whole recipe."""
    members: tuple[str, ...]  # run folders, relative to the ensemble folder's parent (or absolute)
    weights: tuple[float, ...]  # one per member, >= 0, not all 0; a 0 weight is never loaded
    note: str = ""
    kind: ClassVar[str] = "ensemble"
    model: ClassVar[str] = "ensemble"  # what run lists show in their model column
    loss: ClassVar[str] = "soft vote"  # ... and in their loss column: it trained with none
    tta_flip: ClassVar[bool] = False  # each member flips (or not) inside the vote, as it was trained to

    def validate(self) -> EnsembleConfig:
        if not self.members:
            raise ValueError("members: an ensemble needs at least one member")
        if len(self.weights) != len(self.members):
            raise ValueError("weights: need one non-negative weight per member, not all zero")
        if any(not isinstance(w, (int, float)) or isinstance(w, bool) or w < 0 for w in self.weights) \
                or sum(self.weights) <= 0:
            raise ValueError("weights: need one non-negative weight per member, not all zero")
        return self

    def to_dict(self) -> dict[str, Any]:
        return {"members": list(self.members), "weights": list(self.weights), "note": self.note}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EnsembleConfig:
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"{sorted(unknown)[0]}: unknown ensemble field")
        members, weights = d.get("members"), d.get("weights")
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members) \
                or not isinstance(weights, list):
            raise ValueError("ensemble: members must be a list of run folders and weights a list of numbers")
        return cls(tuple(members), tuple(weights), str(d.get("note", ""))).validate()


RunConfig = TrainConfig | EnsembleConfig | GanConfig


def config_json(cfg: RunConfig) -> dict[str, Any]:
    """What config.json holds: the run's kind and its config."""
    return {"kind": cfg.kind, **cfg.to_dict()}


def read_config(path: Path) -> RunConfig:
    """The config in a run folder's config.json, of the run's kind; ValueError when it is unreadable.
    A config is frozen, so one is built per version of the file and shared."""
    file = Path(path) / "config.json"
    if not inside_file(file) or (Path(path) / "ensemble.json").exists():  # a legacy ensemble reads a second file,
        return _read_config(file)  # which the cache key does not cover
    return _read_once(file, "config", _read_config)


def _read_config(file: Path) -> RunConfig:
    path = file.parent
    raw = read_json(file)
    if not isinstance(raw, dict):
        raise ValueError(f"{Path(path).name}/config.json is not a config (a JSON object)")
    kind = raw.get("kind", "train")
    if kind == "ensemble":
        return EnsembleConfig.from_dict({k: v for k, v in raw.items() if k != "kind"})
    if kind == "gan":  # a generator (fashion_core.gan): its runs live in gans/ folders of their own
        return GanConfig.from_dict(raw)
    if kind != "train":
        raise ValueError(f"{Path(path).name}/config.json: unknown run kind {kind!r}")
    legacy = read_json(Path(path) / "ensemble.json")  # an ensemble written before runs had kinds
    if raw.get("model") == "ensemble" and isinstance(legacy, dict):
        return EnsembleConfig.from_dict({**legacy, "note": raw.get("note", "")})
    return TrainConfig.from_dict(raw)


# --- the run directory ---------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config(self) -> RunConfig:
        return read_config(self.path)

    @property
    def kind(self) -> str:
        return self.config.kind

    def members(self) -> list[Run]:
        """The trained runs behind this one: [self] for a trained run (classifier or generator), the voters
        of an ensemble."""
        cfg = self.config
        if cfg.kind != "ensemble":  # a trained classifier, or a generator: its own weights
            return [self]
        found = [Run((self.path.parent / m).resolve()) for m in cfg.members]
        for m in found:
            if m.path == self.path.resolve() or m.config.kind != "train":
                raise ValueError(f"{self.name}: member {m.name} is not a trained run (an ensemble votes with "
                                 "trained runs only)")
        return found

    def voting(self) -> list[tuple[Run, float]]:
        """(member, weight) for the members that vote: a zero weight changes no vote, so it is never loaded."""
        cfg = self.config
        weights = cfg.weights if cfg.kind == "ensemble" else (1.0,)
        return [(m, w) for m, w in zip(self.members(), weights) if w > 0]

    @property
    def metrics(self) -> list[dict]:
        """One row per finished epoch; a line that is not a JSON object is left out (damage names it)."""
        return [row for row in self._metric_lines() if isinstance(row, dict)]

    def _metric_lines(self) -> list[Any]:
        path = self.path / "metrics.jsonl"
        if not inside_file(path):
            return []
        try:
            lines = path.read_text().splitlines()
        except (OSError, UnicodeDecodeError):
            return []
        rows = []
        for line in filter(str.strip, lines):
            try:
                rows.append(json.loads(line))
            except ValueError:
                rows.append(None)
        return rows

    @property
    def damage(self) -> str | None:
        """Why this folder cannot be shown or used as a run (its config, its members, its metrics or its
        evaluation is unreadable or of the wrong shape), or None when nothing is wrong with them.
        Weights are checked when they are loaded (load_model raises ValueError)."""
        try:
            for member in self.members():  # reads (and checks) the config, and every member's
                if member != self and (why := member.damage):
                    return f"member {member.name}: {why}"
        except (ValueError, TypeError, KeyError, OSError) as exc:
            return f"config.json: {exc}"
        bad = [i for i, row in enumerate(self._metric_lines(), 1) if not isinstance(row, dict) or
               not isinstance(row.get("epoch"), int)]
        if bad:
            return f"metrics.jsonl: line {bad[0]} is not an epoch's row"
        return eval_damage(self.path / "eval.json")

    @property
    def status(self) -> dict:
        return read_json(self.path / "status.json", {"state": "unknown"})

    @property
    def eval(self) -> dict | None:
        """eval.json, parsed once per version of the file and shared: read it, never change it."""
        return read_json_shared(self.path / "eval.json")

    @property
    def sweep(self) -> dict | None:
        """{"sweep", "trial"(, "pruned_at_epoch")} for a sweep's trial (its sweep.json), else None."""
        tag = read_json(self.path / "sweep.json")
        return tag if isinstance(tag, dict) else None

    @property
    def finished(self) -> bool:
        """Evaluated, and not stopped part-way through its evaluation (a run trained before status.json
        existed, or an ensemble, has none; a sweep's pruned trial is evaluated as it stands)."""
        return self.status.get("state") in ("done", "pruned", "unknown") and bool(self.eval)

    @property
    def shipped(self) -> bool:
        """In checkpoints/, directly or in a folder of its own kind there (checkpoints/gans/)."""
        return CHECKPOINT_DIR.resolve() in self.path.resolve().parents

    @property
    def has_weights(self) -> bool:
        """Whether a model can be loaded: a checkpoint file in every voting member (a trained run is its
        own). A shipped run may carry its evaluation without weights when they are too large to ship."""
        try:
            return all(m.checkpoint().exists() for m, _ in self.voting())
        except (ValueError, OSError):
            return False

    def set_status(self, state: str, **extra) -> None:
        atomic_write_json(self.path / "status.json", {"state": state, "time": time.time(), **extra})

    def append_metrics(self, row: dict) -> None:
        """Rewrite the whole (small) file atomically so a reader never sees half a line. An epoch
        replayed after a kill (its row written, its checkpoint not) replaces its earlier row."""
        rows = [r for r in self.metrics if r.get("epoch", 0) < row["epoch"]] + [row]
        atomic_write_bytes(self.path / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode())

    def weights_stamp(self) -> float:
        """When the weights a model is loaded from last changed (its config and its voting members'
        checkpoints); 0.0 when there are none. Caches of models and their outputs key on it."""
        stamps = [m.checkpoint().stat().st_mtime for m, _ in self.voting() if m.checkpoint().exists()]
        return max([(self.path / "config.json").stat().st_mtime, *stamps]) if stamps else 0.0

    def checkpoint(self, which: str = "best") -> Path:
        path = self.path / f"{which}.pt"
        if which == "best" and not path.exists():
            path = self.path / "last.pt"
        return path


def eval_damage(path: Path) -> str | None:
    """What is wrong with an eval.json (None when it is missing or sound): what the pages read of it."""
    if not path.exists():
        return None
    ev = read_json_shared(path)
    if not isinstance(ev, dict):
        return "eval.json is not an evaluation (a JSON object)"
    number = (int, float)
    cm, per_class = ev.get("confusion_matrix"), ev.get("per_class")
    checks = [(isinstance(ev.get("test_accuracy"), number) and not isinstance(ev.get("test_accuracy"), bool),
               "its test_accuracy is not a number"),
              (isinstance(cm, list) and len(cm) == 10 and all(isinstance(r, list) and len(r) == 10 and
                                                               all(isinstance(v, number) for v in r) for r in cm),
               "its confusion matrix is missing or not 10 x 10"),
              (isinstance(per_class, list) and len(per_class) == 10 and all(isinstance(r, dict) for r in per_class),
               "its per-class metrics are missing"),
              (isinstance(ev.get("predictions", []), list), "its predictions are not a list")]
    return next((f"eval.json: {why}" for ok, why in checks if not ok), None)


def load_model(run: Run | str | Path, which: str = "best", device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild the model from config.json and load its weights (EMA weights when the run kept them);
    an ensemble's is the soft vote of its voting members."""
    from fashion_core.models.soft_vote import SoftVote  # noqa: PLC0415

    run = run if isinstance(run, Run) else Run(Path(run))
    if not (run.path / "config.json").exists():
        raise ValueError(f"{run.path} is not a run directory (no config.json)")
    voting = run.voting()
    if run.kind == "train":
        return _load_trained(run, which, device)
    return SoftVote([_load_trained(m, "best", device) for m, _ in voting], [w for _, w in voting],
                    [m.config.tta_flip for m, _ in voting]).to(device).eval()


def _load_trained(run: Run, which: str, device: str | torch.device) -> nn.Module:
    cfg = run.config
    if not run.checkpoint(which).exists():
        why = ("its evaluation ships without them: too large for checkpoints/; retrain it to use the model"
               if run.shipped else "no epoch has finished yet")
        raise ValueError(f"{run.name} has no weights here ({why})")
    model = create_model(cfg.model, **cfg.model_kwargs)
    state = load_checkpoint(run.checkpoint(which))
    weights = state.get("ema") or state.get("model") if isinstance(state, dict) else None
    if not isinstance(weights, dict):
        raise ValueError(f"{run.checkpoint(which).name} holds no model weights")
    sd = model.state_dict()
    try:
        model.load_state_dict({k: v.to(sd[k].dtype) if k in sd else v for k, v in weights.items()})
    except (RuntimeError, AttributeError) as exc:
        raise ValueError(f"the weights in {run.path.name} do not fit model {cfg.model!r}: "
                         f"{str(exc).splitlines()[0][:200]}") from exc
    return model.to(device).eval()


def validation_data(runs: list[Run], data_root=None) -> FashionData:
    """Training images that every trained run behind `runs` held out: none of them learned from these.
    A run's own validation split for one run; for an ensemble, what all its members held out."""
    import torch  # noqa: PLC0415

    full = load_split(True, data_root)
    keep = torch.ones(len(full), dtype=torch.bool)
    for member in (m for r in runs for m in r.members()):
        c = member.config
        if c.val_split == "none":
            raise ValueError(f"{member.name} trained without a validation split; no image is unseen by it")
        mask = torch.zeros(len(full), dtype=torch.bool)
        mask[split_indices(full.labels, c.val_split, c.val_fraction, c.val_count, c.seed)[1]] = True
        keep &= mask
    if not keep.any():
        raise ValueError("the runs share no validation images")
    return FashionData(full.images[keep], full.labels[keep])


def list_runs(*dirs: Path | str) -> list[Run]:
    """Every run directory (a folder holding config.json) in the given folders, newest first; by default
    the shipped runs, the user's runs and every sweep's trials (runs/sweeps/NAME/)."""
    sweeps = runs_dir() / "sweeps"
    dirs = dirs or (CHECKPOINT_DIR, runs_dir(), *(sorted(p for p in sweeps.iterdir() if p.is_dir())
                                                  if sweeps.is_dir() else ()))
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


def result_row(run: Run) -> dict:
    """What the run lists show of a finished run: its results, its model's numbers as its report states
    them (None and "" where none does), and the effort behind it. An ensemble trained nothing itself:
    no epochs, and the epochs (member_epochs) and time its voting members took."""
    ev, cfg = run.eval or {}, run.config
    reported, reported_params, report = report_of(cfg.model)
    try:
        voters = [(m.eval or {}) for m, _ in run.voting()]
    except (ValueError, OSError):  # a member gone or unreadable
        voters = []
    times = [v.get("train_time_s") for v in voters]
    return {"run": run.name, "model": cfg.model, "loss": cfg.loss,
            "test_accuracy": ev.get("test_accuracy"), "reported_accuracy": reported,
            "reported_params": reported_params, "report": report, "params": ev.get("params"),
            "epochs": ev.get("epochs") or None,  # an ensemble trained no epoch of its own
            "member_epochs": [v.get("epochs") for v in voters],
            "train_time_s": round(sum(times), 1) if times and None not in times else None,
            "best_val_acc": ev.get("best_val_acc"), "device": ev.get("device"), "latency_ms": ev.get("latency_ms"),
            "sweep": f"{tag['sweep']} #{tag['trial']}" if (tag := run.sweep) else None,
            "shipped": run.shipped, "weights": run.has_weights, "path": str(run.path)}


def damaged(runs: list[Run] | None = None) -> list[tuple[Run, str]]:
    """(run, what is wrong) for every damaged run folder: listed as such, and left out of everything else."""
    return [(run, why) for run in (runs if runs is not None else list_runs()) if (why := run.damage)]


def leaderboard(runs: list[Run] | None = None) -> list[dict]:
    """One row per finished, undamaged run (result_row), best test accuracy first, with its rank: what
    the Overview page shows."""
    rows = [result_row(run) for run in (runs if runs is not None else list_runs()) if run.finished and not run.damage]
    rows.sort(key=lambda r: -(r["test_accuracy"] or 0))
    return [{"rank": i, **r} for i, r in enumerate(rows, 1)]
