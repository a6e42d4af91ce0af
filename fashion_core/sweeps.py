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

import json
import math
import os
import re
import socket
import time
import warnings
import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, ClassVar

import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from fashion_core.config import PRESETS, AugmentConfig, ConfigError, TrainConfig, recipe
from fashion_core.evaluation import write_eval
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

    def encoded(self) -> list:
        """The choices as Optuna stores them: a list or tuple (filter widths, say) as its JSON text."""
        return [json.dumps(list(c)) if isinstance(c, (list, tuple)) else c for c in self.choices]

    def decode(self, value: Any) -> Any:
        return json.loads(value) if self.choices and value not in self.choices and isinstance(value, str) else value

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.choices:
            return self.decode(trial.suggest_categorical(self.name, self.encoded()))
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
    reduction_factor: int = 3  # Hyperband's eta: a rung passes on its best 1 in eta trials
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
            (isinstance(self.reduction_factor, int) and 2 <= self.reduction_factor <= 10,
             "reduction_factor: must be 2..10 (Hyperband keeps the best 1 in this many trials at each rung)"),
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
            if name == "augment":  # a preset by name
                d["augment"] = PRESETS[value].to_dict()
            elif name == "augment.p":  # every op the base recipe uses, at this probability (report 003)
                d["augment"] = {k: value if k.endswith("_p") and v > 0 else v for k, v in d["augment"].items()}
            elif key:  # augment.FIELD or model_kwargs.KEY
                d[section] = {**d[section], key: value}
            else:
                d[name] = value
        return TrainConfig.from_dict({**d, "epochs": self.max_epochs, "note": note or self.base.note})

    def grid(self) -> dict[str, list]:
        return {p.name: p.encoded() for p in self.space}

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
            space = tuple(Param(**{**p, "choices": tuple(tuple(c) if isinstance(c, list) else c
                                                         for c in p.get("choices", ()))}) for p in d["space"])
        except TypeError as exc:
            raise ValueError(f"space: each setting is name, low, high, log, integer or choices ({exc})") from None
        return cls(**{**d, "base": TrainConfig.from_dict(d.get("base", {})), "space": space})


def _field_problems(name: str) -> list[str]:
    section, _, key = name.partition(".")
    if name in ("augment", "augment.p"):
        ok = True
    elif key and section == "augment":
        ok = key in {f.name for f in fields(AugmentConfig)}
    elif key:
        ok = section == "model_kwargs"
    else:
        ok = name in {f.name for f in fields(TrainConfig)} and name not in ("augment", "model_kwargs", "epochs")
    return [] if ok else [f"space.{name}: not a setting a sweep can search (a TrainConfig field other than epochs, "
                          "augment (a preset), augment.p, augment.FIELD or model_kwargs.KEY)"]


def _value_problems(sweep: SweepConfig, p: Param) -> list[str]:
    """Each end (or choice) of p set on the base config must be a config TrainConfig.validate accepts."""
    for value in p.corners():
        if p.name == "augment" and value not in PRESETS:
            return [f"space.augment={value!r}: not a preset ({', '.join(PRESETS)})"]
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


def storage_url(name: str, storage: str | None = None, create: bool = True) -> str:
    """The given URL (postgresql://... for many machines; psycopg 3 is its driver), else the sweep's
    embedded SQLite file (its folder made when `create`)."""
    if storage:
        return re.sub(r"^postgres(ql)?://", "postgresql+psycopg://", storage)
    path = (sweeps_dir() / name).resolve()
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path / 'study.db'}"


def open_storage(url: str) -> RDBStorage:
    """RDB storage with heartbeats: a trial whose worker died is failed and queued again."""
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # heartbeats: stable in use
    return RDBStorage(url, engine_kwargs=engine, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                      heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES))


def make_sampler(cfg: SweepConfig, seed: int | None = None) -> optuna.samplers.BaseSampler:
    seed = cfg.seed if seed is None else seed
    if cfg.sampler == "grid":
        return optuna.samplers.GridSampler(cfg.grid(), seed=seed)
    if cfg.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def worker_seed(cfg: SweepConfig, trials_so_far: int) -> int:
    """The sampler's seed for a worker that joins a study holding trials_so_far trials: the sweep's own
    seed for the first worker of a fresh study (a single worker is reproducible), else one of its own.
    With the sweep's seed a resumed or second worker drew the same random start-up points again: a
    report001 study resumed after a kill re-ran trials 0 and 1's exact values as trials 8 and 10."""
    if trials_so_far == 0:
        return cfg.seed
    return hash((cfg.seed, trials_so_far, socket.gethostname(), os.getpid())) % 2**31


def make_pruner(cfg: SweepConfig) -> optuna.pruners.BasePruner:
    """Hyperband over epochs (report 001: successive halving in brackets, epochs as the resource)."""
    if cfg.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=cfg.max_epochs,
                                              reduction_factor=cfg.reduction_factor)
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
    """The sweep's study, with the sampler and pruner its config names, and the config."""
    url = storage_url(name, storage, create=False)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        raise ValueError(f"no sweep named {name!r} (no {url.removeprefix('sqlite:///')})")
    try:
        study = optuna.load_study(study_name=name, storage=open_storage(url))
    except KeyError:
        raise ValueError(f"no sweep named {name!r} in {url}") from None
    cfg = SweepConfig.from_dict(study.user_attrs["sweep"])
    study.sampler, study.pruner = make_sampler(cfg, worker_seed(cfg, len(study.trials))), make_pruner(cfg)
    return study, cfg


def list_sweeps() -> list[str]:
    """The sweeps in the embedded storage under the runs folder (a PostgreSQL sweep is named with its URL)."""
    base = sweeps_dir()
    return sorted(p.parent.name for p in base.glob("*/study.db")) if base.is_dir() else []


def counted(study: optuna.Study) -> int:
    """Trials that used up the budget: finished, or pruned."""
    return len(study.get_trials(deepcopy=False, states=COUNTED))


# --- a worker ----------------------------------------------------------------------------------
def objective(study: optuna.Study, cfg: SweepConfig, trial: optuna.Trial, out_dir: Path,
              should_stop: Callable[[], bool], data_root) -> float:
    """Train one trial into out_dir/NAME-trial-NNNN through the one training loop; its best validation
    accuracy, or TrialPruned with its curves kept and its run saying at which epoch."""
    values = {p.name: p.suggest(trial) for p in cfg.space}
    run_dir = out_dir / f"{study.study_name}-trial-{trial.number:04d}"  # unique among every sweep's runs
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
    if pruned:  # evaluated as it stands, so Overview and Compare show it beside the others
        write_eval(run, data_root)
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


# --- the reports' experiments --------------------------------------------------------------------
# Each at the report's recipe and search; run here at a reduced budget (REDUCED), stated with its table.
SWEEP_PRESETS: dict[str, tuple[str, SweepConfig]] = {
    "report001_hyperband": (
        "Report 001 tuned its CNN with Hyperband (epochs as the resource) over the optimiser (Adam, Nadam, "
        "RMSprop), learning rate, beta1, beta2, weight decay and dropout.",
        SweepConfig(recipe("report001", model="cnn5"), (
            Param("optimizer", choices=("adam", "nadam", "rmsprop")), Param("lr", 1e-4, 1e-2, log=True),
            Param("beta1", 0.8, 0.99), Param("beta2", 0.9, 0.9999), Param("weight_decay", 1e-6, 1e-3, log=True),
            Param("model_kwargs.dropout", 0.0, 0.5)), sampler="tpe", pruner="hyperband", n_trials=30, max_epochs=9)),
    "report000_optimizer_x_augmentation": (
        "Report 000 compared SGD, Adam and RMSprop on its Inception-style net, with and without augmentation.",
        SweepConfig(recipe("report000", model="inception_dilated"), (
            Param("optimizer", choices=("sgd", "adam", "rmsprop")), Param("augment", choices=("none", "report000"))),
            sampler="grid", pruner="none", n_trials=6, max_epochs=10)),
    "report003_augmentation_probability": (
        "Report 003 swept the probability with which each augmentation is applied: 0, 0.05, 0.3 and 0.5.",
        SweepConfig(recipe("report003", model="simple_model_1"), (Param("augment.p", choices=(0.0, 0.05, 0.3, 0.5)),),
                    sampler="grid", pruner="none", n_trials=4, max_epochs=20)),
    "report003_architecture_x_loss": (
        "Report 003 crossed its architectures with cross-entropy, class-weighted cross-entropy and focal loss.",
        SweepConfig(recipe("report003"), (
            Param("model", choices=("simple_model_1", "simple_model_2", "inception", "resnet", "inception_resnet")),
            Param("loss", choices=("ce", "weighted_ce", "focal"))), sampler="grid", pruner="none", n_trials=15,
            max_epochs=20)),
    "report004_alexnet_ablations": (
        "Report 004 ablated its AlexNet: kernel 3 vs 5, dropout 0 to 0.7, filter and dense widths, He vs Glorot "
        "initialisation, and asked about ReLU vs PReLU vs ELU.",
        SweepConfig(recipe("report004", model="alexnet_like"), (
            Param("model_kwargs.kernel", choices=(3, 5)), Param("model_kwargs.dropout", 0.0, 0.7),
            Param("model_kwargs.filters", choices=((16, 32), (32, 64), (64, 128))),
            Param("model_kwargs.fc", choices=((128, 64), (256, 128), (512, 256))), Param("init", choices=("he", "glorot")),
            Param("model_kwargs.activation", choices=("relu", "leaky_relu", "prelu", "elu"))),
            sampler="tpe", pruner="median", n_trials=24, max_epochs=10)),
}


def preset(name: str, **budget) -> SweepConfig:
    """A report's experiment; budget (n_trials, max_epochs, base_changes: a dict of TrainConfig fields such as
    train_subset) shrinks it for a small machine."""
    if name not in SWEEP_PRESETS:
        raise ValueError(f"preset: unknown preset {name!r}; choose one of {', '.join(SWEEP_PRESETS)}")
    cfg = SWEEP_PRESETS[name][1]
    base = cfg.base.replace(**budget.pop("base_changes", {}))
    return dataclasses.replace(cfg, base=base, **budget).validate()


# --- what the Tune page asks ---------------------------------------------------------------------
def searchable() -> list[str]:
    """The settings worth searching, as a space names them: TrainConfig's fields (but epochs, and the note,
    device and paths, which a space may name but no search means to vary), augment (a preset), augment.p
    and every augment.FIELD; model_kwargs.KEY aside, since its keys are the model's."""
    skip = ("augment", "model_kwargs", "epochs", "note", "device", "init_from", "photo_dir")
    plain = [f.name for f in fields(TrainConfig) if f.name not in skip]
    return [*plain, "augment", "augment.p", *(f"augment.{f.name}" for f in fields(AugmentConfig))]


def last_changed(name: str) -> float:
    """When the sweep's embedded study last changed (its SQLite file's time), 0.0 if it has none."""
    try:
        return (sweeps_dir() / name / "study.db").stat().st_mtime
    except OSError:
        return 0.0


def best_trials(study: optuna.Study, k: int) -> list[TrialRow]:
    """The k complete trials with the best validation accuracy, best first."""
    return sorted((r for r in trial_table(study) if r.state == "complete"), key=lambda r: -r.value)[:k]


def trial_values(cfg: SweepConfig, params: dict[str, Any]) -> dict[str, Any]:
    """A trial's params as Optuna stores them, decoded into the values its run trained with (a list of
    filter widths back from its JSON text)."""
    return {p.name: p.decode(params[p.name]) for p in cfg.space if p.name in params}
