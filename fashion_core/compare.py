"""Tables behind the Compare page: hyperparameters side by side, results, the architecture x loss
grid of report 003, published-vs-measured numbers, and a run packed as a zip."""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pandas as pd

from fashion_core.config import RECIPES, TrainConfig, op_groups, unused_because
from fashion_core.data import CLASSES
from fashion_core.models import report_of
from fashion_core.runs import Run, inside_file, read_json, result_row


def config_dict(run: Run) -> dict:
    """The run's config with every field present: fields added since the run was saved get their
    defaults (which leave old behaviour unchanged), so they do not show up as differences. An
    ensemble's holds every training field too, as "—": it trained nothing."""
    try:
        cfg = run.config
    except (ValueError, TypeError):  # written by another version: show it as saved
        return read_json(run.path / "config.json", {}) or {}
    if cfg.kind == "ensemble":  # only its note (members, weights) applies
        unused = {k: {a: "—" for a in v} if k == "augment" else "—" for k, v in TrainConfig().to_dict().items()}
        return {**unused, "model": cfg.model, "note": cfg.note}
    return cfg.to_dict()


def hyperparameters(runs: list[Run], differences_only: bool = False, labels: list[str] | None = None) -> pd.DataFrame:
    """One column per run (headed by labels, default the run names), one row per config field
    (augmentation fields flattened as augment.*), each value as text (JSON for numbers, booleans and
    lists: what `--set` takes)."""
    cols = {}
    for run, label in zip(runs, labels or [r.name for r in runs]):
        d = config_dict(run)
        flat = {k: v for k, v in d.items() if k != "augment"}
        flat.update({f"augment.{k}": v for k, v in (d.get("augment") or {}).items()})
        cols[label] = {k: v if isinstance(v, str) else json.dumps(v) for k, v in flat.items()}
    table = pd.DataFrame(cols)
    return only_differences(table) if differences_only else table


def blank_unused(table: pd.DataFrame) -> pd.DataFrame:
    """A hyperparameters() table with "—" where a setting does nothing for that run: an option the
    run's other choices leave unused (config.unused_because: momentum under adam, say) or the
    strength of an augmentation that is off (its `*_p` is 0). What the page shows; the CSV keeps
    every value."""
    op = {f"augment.{f.name}": f"augment.{group[0].name}" for group in op_groups() for f in group[1:]}
    shown = table.copy()
    for run in table.columns:
        values = table[run].to_dict()
        for name in values:
            p = values.get(op.get(name, ""))
            if (float(p) == 0.0 if isinstance(p, str) and p != "—" else
                    not name.startswith("augment.") and unused_because(name, values)):
                shown.loc[name, run] = "—"
    return shown


def only_differences(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of a hyperparameters() table where the runs disagree (all rows for a single run); a
    field an ensemble does not have ("—") is no difference."""
    if len(table.columns) < 2:
        return table
    return table[table.replace("—", np.nan).nunique(axis=1) > 1]


def results(runs: list[Run], labels: list[str] | None = None) -> pd.DataFrame:
    """One row per run (named by labels, default the run names): measured results (runs.result_row)
    with the report's numbers right beside them."""
    keep = ("model", "loss", "test_accuracy", "reported_accuracy", "params", "reported_params", "report",
            "epochs", "train_time_s", "device", "latency_ms")
    rows = [{"run": label, **{k: row[k] for k in keep}}
            for label, row in zip(labels or [r.name for r in runs], map(result_row, runs))]
    df = pd.DataFrame(rows).rename(columns={"epochs": "epochs_trained"})
    if len(df):
        for col in ("reported_accuracy", "epochs_trained", "train_time_s"):
            df[col] = df[col].astype(float)  # None -> NaN
        gap = (df["test_accuracy"] - df["reported_accuracy"]).round(2)
        df.insert(df.columns.get_loc("reported_accuracy") + 1, "accuracy_gap", gap)
        df["reported_params"] = df["reported_params"].astype("Int64")  # no "7850.0" in the CSV
        df["latency_ms"] = df["latency_ms"].astype(float).round(4)
    return df


def short_of_recipe(run: Run) -> str:
    """How the run falls short of its report's recipe, which its report's number is for ("3,000
    training images", "15 of the recipe's 100 epochs", "epochs capped, as its note says"); "" when
    nothing says so. A run that early stopping ended trained as long as its recipe asks."""
    try:
        cfg = run.config
    except (ValueError, TypeError):  # written by another version
        return ""
    if cfg.kind == "ensemble":
        return ""
    reasons = [f"{cfg.train_subset:,} training images"] if cfg.train_subset > 0 else []
    trained = (run.eval or {}).get("epochs") or cfg.epochs
    planned = RECIPES.get(f"report{report_of(cfg.model)[2]}", {}).get("epochs")
    if trained >= cfg.epochs and planned and cfg.epochs < planned:
        reasons.append(f"{trained} of the recipe's {planned} epochs")
    elif trained >= cfg.epochs and "capped" in (cfg.note or "").lower():  # the shipped reproductions say so
        reasons.append(f"epochs capped at {trained}, as its note says")
    return ", ".join(reasons)


def arch_loss_grid(runs: list[Run]) -> pd.DataFrame | None:
    """Test accuracy with architectures as rows and losses as columns (report 003's experiment).

    Only runs that agree on every other setting are comparable, except how long they trained
    (epochs, early stopping): on a CPU the slow models get fewer epochs. The largest such group is
    used, the best run per cell; grid.attrs["epochs"] maps (model, loss) to that run's epochs.
    Returns None when no group spans two models or two losses.
    """
    length = ("epochs", "early_stop_patience")
    groups: dict[str, list[tuple[str, str, float, int]]] = {}
    for run in runs:
        cfg = config_dict(run)
        if not run.eval or not cfg:
            continue
        rest = {k: v for k, v in cfg.items() if k not in ("model", "model_kwargs", "loss", "note", "focal_gamma",
                                                          "focal_alpha", "class_weights", *length)}
        key = repr(sorted(rest.items()))
        groups.setdefault(key, []).append((cfg["model"], cfg["loss"], run.eval["test_accuracy"],
                                           run.eval.get("epochs", cfg.get("epochs"))))
    best = max(groups.values(), key=lambda g: len({(m, l) for m, l, _, _ in g}), default=[])
    if len({m for m, _, _, _ in best}) < 2 and len({l for _, l, _, _ in best}) < 2:
        return None
    df = (pd.DataFrame(best, columns=["model", "loss", "test_accuracy", "epochs"])
          .sort_values("test_accuracy").drop_duplicates(["model", "loss"], keep="last"))
    grid = df.pivot(index="model", columns="loss", values="test_accuracy")
    grid.attrs["epochs"] = {(m, l): e for m, l, e in zip(df["model"], df["loss"], df["epochs"])}
    return grid


def export(results_table: pd.DataFrame, settings: pd.DataFrame) -> pd.DataFrame:
    """The Compare page's CSV from its two tables, results() and the full hyperparameters(): one row
    per run, its results then every config field (each once)."""
    by_run = results_table.set_index("run")
    return pd.concat([by_run, settings.T.drop(columns=by_run.columns, errors="ignore")], axis=1).rename_axis("run")


def per_class(runs: list[Run], labels: list[str] | None = None) -> pd.DataFrame:
    """Long table: run (labels, default the run names), class, metric (recall, precision, f1), value in %.
    A class's accuracy is its recall (the share of its test images called that class), so it is not
    listed twice."""
    rows = []
    for run, label in zip(runs, labels or [r.name for r in runs]):
        for k, pc in enumerate(run.eval["per_class"]):
            for metric in ("recall", "precision", "f1"):
                rows.append({"run": label, "class": CLASSES[k], "metric": metric, "value": pc[metric]})
    return pd.DataFrame(rows)


def confusion(run: Run, normalise: bool = False) -> np.ndarray:
    """(10, 10) counts, or row-normalised percentages (rows = true class)."""
    cm = np.asarray(run.eval["confusion_matrix"], dtype=float)
    return cm / cm.sum(1, keepdims=True).clip(min=1) * 100 if normalise else cm


def cell_examples(run: Run, test_labels: np.ndarray, true: int, pred: int, limit: int = 40) -> np.ndarray:
    """Indices of test images of class `true` the run predicted as `pred` (its saved predictions)."""
    preds = np.asarray(run.eval["predictions"])
    if len(preds) != len(test_labels):
        raise ValueError(f"{run.name} was evaluated on {len(preds)} test images, the data here has "
                         f"{len(test_labels)}; re-evaluate the run on this test set")
    return np.flatnonzero((test_labels == true) & (preds == pred))[:limit]


def zip_run(run: Run, weights: bool = True) -> bytes:
    """The run folder as a zip (config, metrics, eval, status, and best.pt when asked): its regular
    files only, never what a link in it points to."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(run.path.iterdir()):
            if inside_file(f) and not f.is_symlink() and not f.name.startswith(".") and \
                    (f.suffix != ".pt" or (weights and f.name == "best.pt")):
                z.write(f, f"{run.name}/{f.name}")
    return buf.getvalue()
