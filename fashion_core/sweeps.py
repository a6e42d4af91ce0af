"""Hyperparameter sweeps on Optuna: a search space over TrainConfig fields, a sampler (TPE, random,
grid), a pruner (Hyperband as in report 001, median, none) and a budget.

A sweep is an Optuna study. Its SweepConfig is stored in the study itself, so a worker on any machine
that reaches the storage (an embedded SQLite file under the runs folder by default, or a PostgreSQL
URL) can join it with nothing but its name. Every trial trains through the one training loop
(fashion_core.train.train) into an ordinary run folder, reports validation accuracy each epoch to
`trial.report`, and stops when `trial.should_prune()` says so. A worker killed mid-trial stops
sending heartbeats; its trial is marked failed and queued again (RetryHeartbeatStaleTrialCallback,
the current name of RetryFailedTrialCallback) for any worker.
"""
from __future__ import annotations

import math
import os
import re
import time
import warnings
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, ClassVar

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from fashion_core.config import AugmentConfig, ConfigError, TrainConfig
from fashion_core.runs import Run, atomic_write_json, runs_dir
from fashion_core.train import train

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("hyperband", "median", "none")
# a running trial writes a heartbeat every HEARTBEAT_S seconds; one silent for GRACE_S belongs to a dead
# worker: it fails and is queued again (tests shorten both through the environment)
HEARTBEAT_S = int(os.environ.get("FASHION_SWEEP_HEARTBEAT_S", 10))
GRACE_S = int(os.environ.get("FASHION_SWEEP_GRACE_S", 30))
MAX_RETRIES = 2
COUNTED = (TrialState.COMPLETE, TrialState.PRUNED)  # what the budget counts
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class Param:
    """One dimension of the search space: a TrainConfig field, `augment.FIELD` or `model_kwargs.KEY`,
    searched over [low, high] (integer and/or log-scaled) or over choices."""
    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: tuple = ()

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.choices:
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.integer:
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log)

    def corners(self) -> list[Any]:
        """The values that bound what this parameter can take: both ends, or every choice."""
        return list(self.choices) if self.choices else [self.low, self.high]

    def problems(self) -> list[str]:
        """What is wrong with the range itself (not yet whether TrainConfig accepts its values)."""
        where = f"space.{self.name}"
        if self.choices:
            return [] if len(set(map(repr, self.choices))) == len(self.choices) else [f"{where}: choices repeat"]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                   for v in (self.low, self.high)):
            return [f"{where}: needs a numeric low and high, or choices"]
        out = [] if self.low < self.high else [f"{where}: empty range (low {self.low} is not below high {self.high})"]
        if self.log and self.low <= 0:
            out.append(f"{where}: a log scale needs low > 0 (got {self.low})")
        if self.integer and not (float(self.low).is_integer() and float(self.high).is_integer()):
            out.append(f"{where}: an integer range needs whole-number ends")
        return out


@dataclass(frozen=True)
class SweepConfig:
    """What a sweep searches and how: stored in its study, so every worker runs the same sweep."""
    base: TrainConfig
    space: tuple[Param, ...]
    sampler: str = "tpe"
    pruner: str = "hyperband"
    n_trials: int = 20  # trials that finish (complete or pruned)
    max_epochs: int = 10  # epochs per trial: Hyperband's largest resource
    timeout_s: float = 0.0  # a worker starts no trial after this many seconds (0 = no limit)
    seed: int = 0  # the sampler's seed
    note: str = ""
    kind: ClassVar[str] = "sweep"

    def validate(self) -> SweepConfig:
        """Raise ConfigError naming every problem, before any trial starts."""
        problems = [f"{k}: must be one of {opts} (got {v!r})" for k, v, opts in
                    (("sampler", self.sampler, SAMPLERS), ("pruner", self.pruner, PRUNERS)) if v not in opts]
        problems += [msg for ok, msg in (
            (isinstance(self.n_trials, int) and 1 <= self.n_trials <= 10_000, "n_trials: must be 1..10000"),
            (isinstance(self.max_epochs, int) and 1 <= self.max_epochs <= 1000, "max_epochs: must be 1..1000"),
            (self.timeout_s >= 0, "timeout_s: must be >= 0 (0 = no limit)"),
            (bool(self.space), "space: name at least one setting to search"),
            (len({p.name for p in self.space}) == len(self.space), "space: a setting is named twice"),
            (self.sampler != "grid" or all(p.choices for p in self.space), "sampler: a grid needs choices for "
                                                                           "every setting, not ranges")) if not ok]
        for p in self.space:
            problems += _field_problems(p.name) or p.problems() or _value_problems(self, p)
        if problems:
            raise ConfigError(problems)
        return self

    def trial_config(self, values: dict[str, Any], note: str = "") -> TrainConfig:
        """The base config with a trial's values set, trained for max_epochs."""
        d = self.base.to_dict()
        for name, value in values.items():
            section, _, key = name.partition(".")
            if key:  # augment.FIELD or model_kwargs.KEY
                d[section] = {**d[section], key: value}
            else:
                d[name] = value
        return TrainConfig.from_dict({**d, "epochs": self.max_epochs, "note": note or self.base.note})

    def grid(self) -> dict[str, list]:
        return {p.name: list(p.choices) for p in self.space}

    def to_dict(self) -> dict[str, Any]:
        return {"base": self.base.to_dict(), "space": [p.__dict__ | {"choices": list(p.choices)} for p in self.space],
                **{f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("base", "space")}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SweepConfig:
        if not isinstance(d, dict) or not isinstance(d.get("space"), list):
            raise ValueError("a sweep is a JSON object with a base config and a space (a list of settings)")
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"{sorted(unknown)[0]}: unknown sweep field")
        try:
            space = tuple(Param(**{**p, "choices": tuple(p.get("choices", ()))}) for p in d["space"])
        except TypeError as exc:
            raise ValueError(f"space: each setting is name, low, high, log, integer or choices ({exc})") from None
        return cls(**{**d, "base": TrainConfig.from_dict(d.get("base", {})), "space": space})


def _field_problems(name: str) -> list[str]:
    section, _, key = name.partition(".")
    if key and section == "augment":
        ok = key in {f.name for f in fields(AugmentConfig)}
    elif key:
        ok = section == "model_kwargs"
    else:
        ok = name in {f.name for f in fields(TrainConfig)} and name not in ("augment", "model_kwargs", "epochs")
    return [] if ok else [f"space.{name}: not a setting a sweep can search (a TrainConfig field other than epochs, "
                          "augment.FIELD or model_kwargs.KEY)"]


def _value_problems(sweep: SweepConfig, p: Param) -> list[str]:
    """Each end (or choice) of p set on the base config must be a config TrainConfig.validate accepts."""
    for value in p.corners():
        try:
            sweep.trial_config({p.name: int(value) if p.integer else value}).validate()
        except ConfigError as exc:
            return [f"space.{p.name}={value!r}: {problem}" for problem in exc.problems]
        except (ValueError, TypeError) as exc:
            return [f"space.{p.name}={value!r}: {exc}"]
    return []


# --- storage and the study ---------------------------------------------------------------------
def sweeps_dir() -> Path:
    return runs_dir() / "sweeps"


def storage_url(name: str, storage: str | None = None) -> str:
    """The given URL (postgresql://... for many machines; psycopg 3 is its driver), else the sweep's
    embedded SQLite file."""
    if storage:
        return re.sub(r"^postgres(ql)?://", "postgresql+psycopg://", storage)
    path = (sweeps_dir() / name).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path / 'study.db'}"


def open_storage(url: str) -> RDBStorage:
    """RDB storage with heartbeats: a trial whose worker died is failed and queued again."""
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # heartbeats: stable in use
    return RDBStorage(url, engine_kwargs=engine, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                      heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES))


def make_sampler(cfg: SweepConfig) -> optuna.samplers.BaseSampler:
    if cfg.sampler == "grid":
        return optuna.samplers.GridSampler(cfg.grid(), seed=cfg.seed)
    if cfg.sampler == "random":
        return optuna.samplers.RandomSampler(seed=cfg.seed)
    return optuna.samplers.TPESampler(seed=cfg.seed)


def make_pruner(cfg: SweepConfig) -> optuna.pruners.BasePruner:
    """Hyperband over epochs (report 001: successive halving in brackets, epochs as the resource)."""
    if cfg.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=cfg.max_epochs, reduction_factor=3)
    if cfg.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)
    return optuna.pruners.NopPruner()


def create(name: str, cfg: SweepConfig, storage: str | None = None) -> optuna.Study:
    """A new study holding the sweep's config; a grid's cells are queued once each, so workers
    share them and no cell runs twice."""
    if not NAME.fullmatch(name):
        raise ValueError(f"name: {name!r} must be 1..64 letters, digits, '-', '_' or '.', starting with a letter "
                         "or digit")
    cfg.validate()
    try:
        study = optuna.create_study(study_name=name, storage=open_storage(storage_url(name, storage)),
                                    direction="maximize", sampler=make_sampler(cfg), pruner=make_pruner(cfg))
    except optuna.exceptions.DuplicatedStudyError:
        raise ValueError(f"name: a sweep named {name!r} exists already; resume it or pick another name") from None
    study.set_user_attr("sweep", cfg.to_dict())
    if cfg.sampler == "grid":
        cells = [dict(zip(cfg.grid(), values)) for values in _product(list(cfg.grid().values()))]
        for cell in cells:
            study.enqueue_trial(cell)
    return study


def _product(lists: list[list]) -> list[tuple]:
    out: list[tuple] = [()]
    for values in lists:
        out = [prefix + (v,) for prefix in out for v in values]
    return out


def load(name: str, storage: str | None = None) -> tuple[optuna.Study, SweepConfig]:
    url = storage_url(name, storage)
    try:
        summary = optuna.study.load_study(study_name=name, storage=open_storage(url))
    except KeyError:
        raise ValueError(f"no sweep named {name!r} in {url}") from None
    cfg = SweepConfig.from_dict(summary.user_attrs["sweep"])
    return optuna.load_study(study_name=name, storage=summary._storage, sampler=make_sampler(cfg),
                             pruner=make_pruner(cfg)), cfg


def counted(study: optuna.Study) -> int:
    """Trials that used up the budget: finished, or pruned."""
    return len(study.get_trials(deepcopy=False, states=COUNTED))


# --- a worker ----------------------------------------------------------------------------------
def objective(study: optuna.Study, cfg: SweepConfig, trial: optuna.Trial, out_dir: Path,
              should_stop: Callable[[], bool], data_root) -> float:
    """Train one trial into out_dir/trial-NNNN through the one training loop; its best validation
    accuracy, or TrialPruned with its curves kept and its run saying at which epoch."""
    values = {p.name: p.suggest(trial) for p in cfg.space}
    run_dir = out_dir / f"trial-{trial.number:04d}"
    config = cfg.trial_config(values, f"sweep {study.study_name}, trial {trial.number}")
    trial.set_user_attr("run_dir", str(run_dir))
    pruned: list[int] = []

    def on_progress(p: dict) -> None:
        if p.get("phase") == "epoch" and "val_acc" in p:
            trial.report(p["val_acc"], p["epoch"])
            if trial.should_prune():
                pruned.append(p["epoch"])

    run = train(config, run_dir, on_progress, lambda: bool(pruned) or should_stop(), data_root)
    _tag(run, study.study_name, trial.number, pruned[0] if pruned else None)
    if pruned:
        raise optuna.TrialPruned(f"pruned at epoch {pruned[0]}")
    if run.status.get("state") != "done":
        raise Stopped(f"trial {trial.number} was stopped at its worker's request")
    return max(m["val_acc"] for m in run.metrics)


def _tag(run: Run, sweep: str, number: int, pruned_at: int | None) -> None:
    """sweep.json in the trial's run folder: which sweep and trial it is, and where it was pruned."""
    atomic_write_json(run.path / "sweep.json", {"sweep": sweep, "trial": number,
                                                **({"pruned_at_epoch": pruned_at} if pruned_at else {})})
    if pruned_at:
        run.set_status("pruned", pruned_at_epoch=pruned_at)


class Surplus(Exception):
    """This trial would go beyond the budget: another worker took the last slot."""


class Stopped(Exception):
    """The worker was asked to stop mid-trial: its trial fails and is tried again by a later worker."""


def work(name: str, storage: str | None = None, out_dir: Path | None = None,
         should_stop: Callable[[], bool] = lambda: False, data_root=None) -> int:
    """Run trials of the sweep until its budget is spent (or its time is up, or should_stop());
    any number of workers may run this at once on one study. Returns the trials this worker ran.
    One trial per study.optimize call: Optuna keeps its heartbeat and fails stale trials of dead
    workers, which RetryHeartbeatStaleTrialCallback queues again."""
    study, cfg = load(name, storage)
    out_dir = Path(out_dir or sweeps_dir() / name)
    deadline = time.monotonic() + cfg.timeout_s if cfg.timeout_s else math.inf
    ran: list[int] = []

    def one(trial: optuna.Trial) -> float:
        if _surplus(study, cfg, trial):
            raise Surplus
        ran.append(trial.number)
        return objective(study, cfg, trial, out_dir, should_stop, data_root)

    while not should_stop() and time.monotonic() < deadline and counted(study) < cfg.n_trials:
        before = len(ran)
        try:
            study.optimize(one, n_trials=1, catch=(Surplus,))
        except Stopped:  # the same values go first when the sweep resumes (a grid cell is never lost)
            study.enqueue_trial(study.trials[ran[-1]].params, skip_if_exists=False)
            break
        if len(ran) == before:  # a surplus trial: the budget is spent
            break
    return len(ran)


def _surplus(study: optuna.Study, cfg: SweepConfig, trial: optuna.Trial) -> bool:
    """Whether this trial is beyond the budget: as many trials that count (or may) precede it."""
    live = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
    ahead = [t for t in study.get_trials(deepcopy=False, states=live) if t.number < trial.number]
    if len(ahead) >= cfg.n_trials:
        trial.set_user_attr("surplus", "the budget was spent by other workers")
        return True
    return False


@dataclass
class TrialRow:
    number: int
    state: str
    value: float | None
    params: dict = field(default_factory=dict)
    epochs: int = 0
    run_dir: str = ""


def trial_table(study: optuna.Study) -> list[TrialRow]:
    """Every trial but the surplus ones, in order: state, best validation accuracy, epochs trained."""
    return [TrialRow(t.number, t.state.name.lower(), t.value, t.params, len(t.intermediate_values),
                     t.user_attrs.get("run_dir", ""))
            for t in study.get_trials(deepcopy=False) if "surplus" not in t.user_attrs]
